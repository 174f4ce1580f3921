"""Adaptive pooling and max-unpooling (re-exported by ``ember.ops.pooling``).

Adaptive windows follow PyTorch: output cell ``i`` of ``o`` covers input
``[floor(i*n/o), ceil((i+1)*n/o))``. When the input size is a multiple of the output size the
windows are a plain reshape; otherwise adaptive average pooling is the separable linear map
``A_h @ x @ A_w.T`` (two BLAS products each way) and adaptive max pooling loops over output cells.

Example::

    y = F.adaptive_avg_pool2d(x, 1)                  # global average pool, (N, C, 1, 1)
    y, idx = F.adaptive_max_pool2d(x, (3, 3), return_indices=True)
"""

from __future__ import annotations

import numpy as np

from ember.autograd.function import Function
from ember.ops.conv import _ntuple
from ember.tensor import Tensor

__all__ = ["adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d",
           "adaptive_max_pool2d", "max_unpool1d", "max_unpool2d"]


def _bounds(size, out):
    i = np.arange(out)
    return (i * size) // out, ((i + 1) * size + out - 1) // out


def _avg_matrix(size, out, dtype):
    start, end = _bounds(size, out)
    m = np.zeros((out, size), dtype=dtype)
    for i in range(out):
        m[i, start[i]:end[i]] = 1.0 / (end[i] - start[i])
    return m


class AdaptiveAvgPool2dOp(Function):
    @staticmethod
    def forward(ctx, x, out_hw):
        (h, w), (oh, ow) = x.shape[-2:], out_hw
        ctx.shape = x.shape
        if h % oh == 0 and w % ow == 0:
            ctx.mats = None
            r = x.reshape(x.shape[:-2] + (oh, h // oh, ow, w // ow))
            return r.mean(axis=(-3, -1), dtype=x.dtype)
        ah, aw = _avg_matrix(h, oh, x.dtype), _avg_matrix(w, ow, x.dtype)
        ctx.mats = (ah, aw)
        t = (x.reshape(-1, w) @ aw.T).reshape(x.shape[:-1] + (ow,))
        return np.matmul(ah, t)

    @staticmethod
    def backward(ctx, g):
        shape = ctx.shape
        (h, w), (oh, ow) = shape[-2:], g.shape[-2:]
        if ctx.mats is None:
            kh, kw = h // oh, w // ow
            gs = (g / np.asarray(kh * kw, g.dtype))[..., :, None, :, None]
            gx = np.broadcast_to(gs, g.shape[:-2] + (oh, kh, ow, kw)).reshape(shape)
            return gx, None
        ah, aw = ctx.mats
        t = (g.reshape(-1, ow) @ aw).reshape(g.shape[:-1] + (w,))
        return np.matmul(ah.T, t), None


class AdaptiveMaxPool2dOp(Function):
    """Loops over output cells (each a reduction over the whole batch); saves flat indices."""

    @staticmethod
    def forward(ctx, x, out_hw):
        (h, w), (oh, ow) = x.shape[-2:], out_hw
        lead = x.shape[:-2]
        hs, he = _bounds(h, oh)
        ws, we = _bounds(w, ow)
        y = np.empty(lead + (oh, ow), dtype=x.dtype)
        idx = np.empty(lead + (oh, ow), dtype=np.int64)
        for i in range(oh):
            for j in range(ow):
                cell = (he[i] - hs[i]) * (we[j] - ws[j])  # not -1: an empty batch reshapes too
                flat = x[..., hs[i]:he[i], ws[j]:we[j]].reshape(lead + (cell,))
                a = np.argmax(flat, axis=-1)
                y[..., i, j] = np.take_along_axis(flat, a[..., None], -1)[..., 0]
                rw = we[j] - ws[j]
                idx[..., i, j] = (hs[i] + a // rw) * w + ws[j] + a % rw
        ctx.save_for_backward(idx)
        ctx.shape = x.shape
        ctx._nout = 2
        return y, idx

    @staticmethod
    def backward(ctx, g, _gidx):
        (idx,) = ctx.saved_tensors
        return _scatter_planes(g, idx, ctx.shape), None


def _scatter_planes(g, idx, shape):
    """Add ``g`` at flat plane indices ``idx`` into zeros of ``shape`` (one output cell at a
    time, so no index repeats inside one fancy-index update)."""
    plane = shape[-2] * shape[-1]
    gx = np.zeros((int(np.prod(shape[:-2], dtype=np.int64)), plane), dtype=g.dtype)
    cells = g.shape[-2] * g.shape[-1]
    g2 = g.reshape(gx.shape[0], cells)
    i2 = idx.reshape(gx.shape[0], cells)
    rows = np.arange(gx.shape[0])
    for c in range(g2.shape[1]):
        gx[rows, i2[:, c]] += g2[:, c]
    return gx.reshape(shape)


def _adaptive_args(input, output_size, nd, name):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): argument 'input' must be Tensor, not {type(input).__name__}")
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"{name}(): Expected {nd + 1}D or {nd + 2}D tensor, but got "
                           f"{list(input.shape)}")
    if isinstance(output_size, (tuple, list)) and len(output_size) != nd:
        raise RuntimeError(f"{name}: output_size must be {nd}")
    out = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * nd
    out = tuple(int(s) if s is not None else input.shape[-nd + i] for i, s in enumerate(out))
    if any(o <= 0 for o in out):
        raise RuntimeError(f"{name}: elements of output_size must be greater than or equal to 1 "
                           f"but received {list(out)}")
    return out


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a fixed ``output_size`` (int, pair; ``None`` keeps that size).

    Example::

        F.adaptive_avg_pool2d(ember.randn(2, 8, 7, 7), 1).shape   # (2, 8, 1, 1)
    """
    out = _adaptive_args(input, output_size, 2, "adaptive_avg_pool2d")
    return AdaptiveAvgPool2dOp.apply(input, out)


def adaptive_avg_pool1d(input, output_size):
    """Average pooling of ``(N, C, L)`` or ``(C, L)`` to length ``output_size``."""
    out = _adaptive_args(input, output_size, 1, "adaptive_avg_pool1d")
    return AdaptiveAvgPool2dOp.apply(input.unsqueeze(-2), (1,) + out).squeeze(-2)


def _adaptive_max(input, out, return_indices):
    y, idx = AdaptiveMaxPool2dOp.apply(input, out)
    return (y, idx) if return_indices else y


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max pooling to a fixed ``output_size``; ``return_indices`` gives flat per-plane indices."""
    out = _adaptive_args(input, output_size, 2, "adaptive_max_pool2d")
    return _adaptive_max(input, out, return_indices)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Max pooling of ``(N, C, L)`` or ``(C, L)`` to length ``output_size``."""
    out = _adaptive_args(input, output_size, 1, "adaptive_max_pool1d")
    y, idx = AdaptiveMaxPool2dOp.apply(input.unsqueeze(-2), (1,) + out)
    y, idx = y.squeeze(-2), idx.squeeze(-2)
    return (y, idx) if return_indices else y


class MaxUnpoolOp(Function):
    @staticmethod
    def forward(ctx, x, idx, out_shape):
        b = int(np.prod(x.shape[:-2], dtype=np.int64))
        out = np.zeros((b, out_shape[-2] * out_shape[-1]), dtype=x.dtype)
        i2 = idx.reshape(b, x.shape[-2] * x.shape[-1])
        if i2.size and (i2.min() < 0 or i2.max() >= out.shape[1]):
            raise RuntimeError(f"Found an invalid max index: {int(i2.max())} (output volumes are "
                               f"of size {out_shape[-2]}x{out_shape[-1]})")
        rows = np.arange(b)[:, None]
        out[rows, i2] = x.reshape(i2.shape)
        ctx.save_for_backward(idx)
        ctx.xshape = x.shape
        return out.reshape(x.shape[:-2] + tuple(out_shape[-2:]))

    @staticmethod
    def backward(ctx, g):
        (idx,) = ctx.saved_tensors
        cells = idx.shape[-2] * idx.shape[-1]
        b = idx.size // cells if cells else 0
        gx = g.reshape(b, g.shape[-2] * g.shape[-1])[np.arange(b)[:, None], idx.reshape(b, cells)]
        return gx.reshape(ctx.xshape), None, None


def _unpool(input, indices, kernel_size, stride, padding, output_size, nd):
    k = _ntuple(kernel_size, nd, "kernel_size")
    s = k if stride is None else _ntuple(stride, nd, "stride")
    p = _ntuple(padding, nd, "padding")
    default = tuple((n - 1) * sv - 2 * pv + kv for n, sv, pv, kv in
                    zip(input.shape[-nd:], s, p, k))
    out = default if output_size is None else tuple(int(v) for v in tuple(output_size)[-nd:])
    if tuple(indices.shape) != tuple(input.shape):
        raise RuntimeError(f"Expected shape of indices to be same as that of the input tensor "
                           f"({list(input.shape)}) but got indices tensor with shape: "
                           f"{list(indices.shape)}")
    if nd == 1:
        return MaxUnpoolOp.apply(input.unsqueeze(-2), indices.unsqueeze(-2), (1,) + out).squeeze(-2)
    return MaxUnpoolOp.apply(input, indices, out)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Inverse of ``max_pool2d`` given its indices: maxima back in place, zeros elsewhere."""
    return _unpool(input, indices, kernel_size, stride, padding, output_size, 2)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Inverse of ``max_pool1d`` given its indices."""
    return _unpool(input, indices, kernel_size, stride, padding, output_size, 1)

