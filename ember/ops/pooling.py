"""Pooling: max/avg (1-D, 2-D), adaptive avg/max, max_unpool2d. Each pooling is ONE op.

Windows are strided views (``ember.backend.im2col.window``); the ops loop over the kernel
positions (4 for the common 2x2 pool), never over the batch, and need no copy of the input when
there is no padding. Max-pool gradients go to the first maximal element of each window and
``return_indices`` gives PyTorch's flat index inside each ``H*W`` channel plane.

Example::

    y, idx = F.max_pool2d(x, 2, return_indices=True)
"""

from __future__ import annotations

import numpy as np

from ember.autograd.function import Function
from ember.backend import jit, onednn
from ember.backend.im2col import window
from ember.backend.parallel import parallel_for
from ember.ops.conv import _ntuple
from ember.tensor import Tensor, _wrap

__all__ = ["max_pool1d", "max_pool2d", "max_pool1d_with_indices", "max_pool2d_with_indices",
           "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
           "adaptive_max_pool1d", "adaptive_max_pool2d", "max_unpool1d", "max_unpool2d",
           "lp_pool1d", "lp_pool2d"]


def _out_len(size, k, s, p, d, ceil):
    eff = d * (k - 1) + 1
    num = size + 2 * p - eff
    o = (num + (s - 1 if ceil else 0)) // s + 1
    if ceil and (o - 1) * s >= size + p:
        o -= 1
    return o


def _pad_to(x, pads, extent, value):
    """Pad the last two axes of ``x`` by ``pads`` (top, left) up to ``extent`` (Hp, Wp)."""
    t, lf = pads
    h, w = x.shape[-2:]
    if t == 0 and lf == 0 and extent[0] <= h and extent[1] <= w:
        return x
    out = np.full(x.shape[:-2] + (max(extent[0], h + t), max(extent[1], w + lf)), value, x.dtype)
    out[..., t:t + h, lf:lf + w] = x
    return out


def _nonoverlap(kernel, stride, dilation):
    return all(s >= d * (k - 1) + 1 for k, s, d in zip(kernel, stride, dilation))


def _scatter_windows(gshape, parts, kernel, stride, dilation, out_hw, nonoverlap, dtype):
    """Sum per-kernel-position gradients ``parts(i, j)`` back onto a zero image ``gshape``."""
    tiles = dilation == (1, 1) and tuple(stride) == tuple(kernel) and all(
        o * s == n for o, s, n in zip(out_hw, stride, gshape[-2:]))
    gx = (np.empty if tiles else np.zeros)(gshape, dtype=dtype)  # tiles: every element written
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            win = window(gx, i, j, stride, dilation, out_hw)
            if nonoverlap:
                parts(i, j, win)
            else:
                win += parts(i, j, None)
    return gx


class MaxPool2dOp(Function):
    """Max over windows of the last two axes; saves the winning kernel position (uint8/int32)."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, dilation, out_hw, want_idx):
        kh, kw = kernel
        ctx._nout = 2
        ctx.pool = pool = onednn.MaxPool.get((1,) * (4 - x.ndim) + x.shape, kernel, stride,
                                             padding, dilation, out_hw, x.dtype)
        if pool is not None and np.min(x) > -np.inf:
            # oneDNN's pooling (ember.backend.onednn): no padded copy. Its maximum skips NaNs
            # and starts from -FLT_MAX, so inputs with a NaN or a -inf (the min's test) keep
            # ember's paths below, which give PyTorch's NaNs and -infs.
            best, idx = pool.forward(np.ascontiguousarray(x))
            ctx.save_for_backward(idx)
            ctx.xshape = x.shape
            return best.reshape(x.shape[:-2] + best.shape[-2:]), idx.reshape(
                x.shape[:-2] + idx.shape[-2:])
        ctx.pool = None
        ext = tuple((o - 1) * s + d * (k - 1) + 1 for o, s, d, k in
                    zip(out_hw, stride, dilation, kernel))
        xp = _pad_to(x, padding, ext, -np.inf)
        k = _kernels(x)
        if k is not None:
            best, idx = _max_pool_jit(k, xp, kernel, stride, dilation, out_hw)
        elif kh * kw == 4:
            best, idx = _max4(*[window(xp, p // kw, p % kw, stride, dilation, out_hw)
                                for p in range(4)])
        else:
            best = window(xp, 0, 0, stride, dilation, out_hw).copy()
            for p in range(1, kh * kw):
                np.maximum(best, window(xp, p // kw, p % kw, stride, dilation, out_hw), out=best)
            idx = np.empty(best.shape, np.uint8 if kh * kw < 256 else np.int32)
            if not ctx.needs_input_grad[0] and not want_idx:
                return best, idx[..., :0]  # inference: no winner positions needed
            # Descending scan: the first maximal position wins, as in PyTorch.
            for p in range(kh * kw - 1, -1, -1):
                win = window(xp, p // kw, p % kw, stride, dilation, out_hw)
                np.copyto(idx, p, where=win == best)
        if k is None and kh * kw > 1 and np.isnan(best).any():
            for p in range(kh * kw):  # PyTorch picks the last NaN of a window
                win = window(xp, p // kw, p % kw, stride, dilation, out_hw)
                np.copyto(idx, p, where=np.isnan(win))
        if padding[0] or padding[1]:
            _first_inside(best, idx, kernel, stride, padding, dilation)
        ctx.save_for_backward(idx)
        ctx.geom = (x.shape, xp.shape, kernel, stride, padding, dilation, out_hw)
        return best, idx

    @staticmethod
    def backward(ctx, g, _gidx):
        (idx,) = ctx.saved_tensors
        if ctx.pool is not None:
            lead = (1,) * (4 - g.ndim)
            return (ctx.pool.backward(g.reshape(lead + g.shape), idx.reshape(lead + idx.shape))
                    .reshape(ctx.xshape), None, None, None, None, None, None)
        xshape, pshape, kernel, stride, padding, dilation, out_hw = ctx.geom
        kw = kernel[1]
        k = _kernels(g)
        if k is not None:
            tiles = _is_2x2(kernel, stride, dilation) and pshape[-2:] == (2 * out_hw[0],
                                                                           2 * out_hw[1])
            gx = (np.empty if tiles else np.zeros)(pshape, g.dtype)  # tiles: all written
            g3, i3, gx3 = (a.reshape((-1,) + a.shape[-2:]) for a in (g, idx, gx))

            def planes(lo, hi):
                if tiles:
                    k.max_pool2x2_backward(g3[lo:hi], i3[lo:hi], gx3[lo:hi])
                else:
                    k.max_pool2d_backward(g3[lo:hi], i3[lo:hi], kw, *stride, *dilation,
                                          gx3[lo:hi])
            parallel_for(len(g3), planes, min_n=2 if g.size >= _SPLIT else len(g3) + 1)
        else:
            def part(i, j, out):
                return np.multiply(g, idx == i * kw + j, out=out)

            gx = _scatter_windows(pshape, part, kernel, stride, dilation, out_hw,
                                  _nonoverlap(kernel, stride, dilation), g.dtype)
        t, lf = padding
        if gx.shape != xshape:
            gx = np.ascontiguousarray(gx[..., t:t + xshape[-2], lf:lf + xshape[-1]])
        return gx, None, None, None, None, None, None


# Elements (outputs) from which a max pool's planes are shared between the cores (ember's own
# threads); below, the split costs more than it saves.
_SPLIT = 1 << 15


def _first_inside(best, idx, kernel, stride, padding, dilation):
    """A window of -infs (or of padding and -infs) wins at its first position inside the input,
    as in PyTorch, not at the padding ember's paths put before it (-inf too): its gradient and
    index go there."""
    oh, ow = best.shape[-2:]
    first = []
    for o, s, p, d in zip((oh, ow), stride, padding, dilation):
        start = np.arange(o) * s - p  # each window's first row (column) in the input
        first.append(np.where(start < 0, -(start // d), 0))  # ceil(-start / d)
    pos = (first[0][:, None] * kernel[1] + first[1][None, :]).astype(idx.dtype)
    np.copyto(idx, pos, where=best == -np.inf)


def _kernels(a):
    """ember's compiled kernels (``ember.backend.jit``) for ``a``, only where oneDNN is missing:
    with oneDNN, float32 pools run there, and loading numba (~70 MB, 0.6 s) for the rest (float64,
    NaNs) would cost more than it saves."""
    return None if onednn.installed() else jit.kernels_for(a)


def _is_2x2(kernel, stride, dilation):
    return tuple(kernel) == (2, 2) == tuple(stride) and tuple(dilation) == (1, 1)


def _max_pool_jit(k, xp, kernel, stride, dilation, out_hw):
    """Max pool of the padded input ``xp`` (..., Hp, Wp) in one compiled pass per plane (the
    numba kernels of ``ember.backend.jit``). LeNet's (64, 6, 28, 28) 2x2 pool on one thread of
    the reference machine: forward 0.79 -> 0.22 ms, backward 0.74 -> 0.39 ms; LeNet at batch 64
    10.9 against 11.3 ms a training step (same process, alternating)."""
    (kh, kw), lead = kernel, xp.shape[:-2]
    best = np.empty(lead + tuple(out_hw), xp.dtype)
    idx = np.empty(best.shape, np.uint8 if kh * kw < 256 else np.int32)
    x3 = np.ascontiguousarray(xp).reshape((-1,) + xp.shape[-2:])
    b3, i3 = best.reshape((-1,) + best.shape[-2:]), idx.reshape((-1,) + best.shape[-2:])
    two = _is_2x2(kernel, stride, dilation)

    def planes(lo, hi):
        if two:
            k.max_pool2x2(x3[lo:hi], b3[lo:hi], i3[lo:hi])
        else:
            k.max_pool2d(x3[lo:hi], kh, kw, *stride, *dilation, b3[lo:hi], i3[lo:hi])
    parallel_for(len(x3), planes, min_n=2 if best.size >= _SPLIT else len(x3) + 1)
    return best, idx


def _max4(a, b, c, d):
    """Max of four window views and the first winning position (0-3): a pairwise tournament,
    several times faster than a scan for the common 2x2 pool. The winner is picked with uint8
    arithmetic, ``i1 + s * (i2 - i1)`` (mod 256), not ``np.where``, which took 0.32 of the
    0.40 ms of a (64, 6, 28, 28) pool."""
    m1, m2 = np.maximum(a, b), np.maximum(c, d)
    i1 = np.greater(b, a).view(np.uint8)  # ties keep the earlier position
    idx = np.greater(d, c).view(np.uint8)
    sel = np.greater(m2, m1).view(np.uint8)
    idx -= i1
    idx *= sel
    idx += i1
    sel <<= 1
    idx += sel
    return np.maximum(m1, m2, out=m1), idx


def _flat_indices(idx, kernel, stride, padding, dilation, width):
    """Kernel-position indices -> PyTorch's flat index into each input plane (int64)."""
    oh, ow = idx.shape[-2:]
    ki, kj = np.divmod(idx.astype(np.int64), kernel[1])
    rows = (np.arange(oh) * stride[0] - padding[0])[:, None] + ki * dilation[0]
    cols = (np.arange(ow) * stride[1] - padding[1]) + kj * dilation[1]
    return rows * width + cols


def _pool_args(x, kernel_size, stride, padding, dilation, nd, name, ndims=(3, 4)):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument 'input' must be Tensor, not {type(x).__name__}")
    if x.ndim not in ndims or 0 in x.shape[x.ndim - ndims[0]:]:  # an empty batch is fine
        raise RuntimeError(f"{name}: Expected {ndims[0]}D or {ndims[1]}D (batch mode) tensor with "
                           f"optional 0 dim batch size for input, but got:{list(x.shape)}")
    k = _ntuple(kernel_size, nd, "kernel_size")
    s = k if stride is None or (isinstance(stride, (tuple, list)) and not stride) else \
        _ntuple(stride, nd, "stride")
    if any(v == 0 for v in s):
        raise RuntimeError("stride should not be zero")
    p, d = _ntuple(padding, nd, "padding"), _ntuple(dilation, nd, "dilation")
    if min(p) < 0:  # torch's wordings
        raise RuntimeError(f"max_pool1d() padding must be non-negative, but got {p[0]}"
                           if name == "max_pool1d" else
                           f"pad must be non-negative, but got pad: {min(p)}")
    if min(d) <= 0:
        raise RuntimeError(f"max_pool1d() dilation must be greater than zero, but got {d[0]}"
                           if name == "max_pool1d" else
                           "dilation should be greater than zero, but got dilationH: "
                           f"{d[0]} dilationW: {d[-1]}")
    return k, s, p, d


def _check_out(x, out_hw, nd):
    if any(o <= 0 for o in out_hw):
        lead = "x".join(str(v) for v in (x.shape[-nd - 1],) + tuple(x.shape[-nd:]))
        outs = "x".join(str(v) for v in (x.shape[-nd - 1],) + tuple(out_hw))
        raise RuntimeError(f"Given input size: ({lead}). Calculated output size: ({outs}). "
                           "Output size is too small")


_ARGS = {}  # the arguments of a max pooling that passed the checks -> (k, s, p, d, out)
_ARGS_MAX = 512


def _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, nd, name):
    # The checks depend only on these (the same layer's every call: 4 of 4.3 us saved)
    try:
        key = (input._data.shape, kernel_size, stride, padding, dilation, ceil_mode, nd)
        args = _ARGS.get(key)
    except (AttributeError, TypeError):  # not a Tensor, or a list argument: no shortcut
        key = args = None
    if args is None:
        args = _max_pool_args(input, kernel_size, stride, padding, dilation, ceil_mode, nd, name)
        if key is not None and len(_ARGS) < _ARGS_MAX:
            _ARGS[key] = args
    k, s, p, d, out = args
    if nd == 1:
        k, s, p, d, out = (1,) + k, (1,) + s, (0,) + p, (1,) + d, (1,) + out
        x = input.unsqueeze(-2)
    else:
        x = input
    y, idx = MaxPool2dOp.apply(x, k, s, p, d, out, return_indices)
    if not return_indices:
        return y.squeeze(-2) if nd == 1 else y
    flat = _flat_indices(idx._data, k, s, p, d, x.shape[-1])
    if nd == 1:
        y, flat = y.squeeze(-2), flat.squeeze(-2)
    return y, _wrap(np.ascontiguousarray(flat, dtype=np.int64))


def _max_pool_args(input, kernel_size, stride, padding, dilation, ceil_mode, nd, name):
    """Check a max pooling's arguments (PyTorch's errors); returns (k, s, p, d, output size)."""
    k, s, p, d = _pool_args(input, kernel_size, stride, padding, dilation, nd, name,
                            (nd + 1, nd + 2))
    for pv, kv, dv in zip(p, k, d):
        if pv > (dv * (kv - 1) + 1) // 2:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got "
                               f"pad={pv}, kernel_size={kv} and dilation={dv}")
    spatial = tuple(input.shape[-nd:])
    out = tuple(_out_len(n, kv, sv, pv, dv, ceil_mode) for n, kv, sv, pv, dv in
                zip(spatial, k, s, p, d))
    _check_out(input, out, nd)
    return k, s, p, d, out


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling over ``(N, C, H, W)`` or ``(C, H, W)``; ``stride`` defaults to the kernel.

    Example::

        y = F.max_pool2d(x, 2)                     # halves H and W
        y, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    """
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 2,
                     "max_pool2d")


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """1-D max pooling over ``(N, C, L)`` or ``(C, L)``."""
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 1,
                     "max_pool1d")


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, True, 2,
                     "max_pool2d")


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, True, 1,
                     "max_pool1d")


# ----------------------------------------------------------------------------- average
def _divisors(size, k, s, p, o, include_pad):
    """Per-output-position divisor along one axis (PyTorch's pool_size rule)."""
    start = np.arange(o) * s - p
    end = np.minimum(start + k, size + p)
    if include_pad:
        return (end - start).astype(np.float64)
    return (np.minimum(end, size) - np.maximum(start, 0)).astype(np.float64)


class AvgPool2dOp(Function):
    """Sum over windows of the last two axes divided by a per-position divisor map."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, out_hw, div):
        ext = tuple((o - 1) * s + k for o, s, k in zip(out_hw, stride, kernel))
        xp = _pad_to(x, padding, ext, 0.0)
        acc = window(xp, 0, 0, stride, (1, 1), out_hw).copy()
        for p in range(1, kernel[0] * kernel[1]):
            acc += window(xp, p // kernel[1], p % kernel[1], stride, (1, 1), out_hw)
        div = div.astype(x.dtype)
        ctx.geom = (x.shape, xp.shape, kernel, stride, padding, out_hw, div)
        if x.dtype.kind == "i":  # int64, as torch: the quotient truncated toward zero
            return np.sign(acc) * (np.abs(acc) // div)
        acc /= div
        return acc

    @staticmethod
    def backward(ctx, g):
        xshape, pshape, kernel, stride, padding, out_hw, div = ctx.geom
        gs = g / div

        def part(i, j, out):
            if out is None:
                return gs
            out[...] = gs

        gx = _scatter_windows(pshape, part, kernel, stride, (1, 1), out_hw,
                              _nonoverlap(kernel, stride, (1, 1)), g.dtype)
        t, lf = padding
        if gx.shape != xshape:
            gx = np.ascontiguousarray(gx[..., t:t + xshape[-2], lf:lf + xshape[-1]])
        return gx, None, None, None, None, None


def _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
              nd, name):
    k, s, p, _ = _pool_args(input, kernel_size, stride, padding, 1, nd, name, (nd + 1, nd + 2))
    if input._data.dtype.kind not in "fc" and input._data.dtype != np.int64:
        raise NotImplementedError(f'"{name}" not implemented for \'{input.dtype.name}\'')
    for pv, kv in zip(p, k):
        if pv > kv // 2:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got "
                               f"pad={pv}, kernel_size={kv} and dilation=1")
    spatial = tuple(input.shape[-nd:])
    out = tuple(_out_len(n, kv, sv, pv, 1, ceil_mode) for n, kv, sv, pv in zip(spatial, k, s, p))
    _check_out(input, out, nd)
    if divisor_override:
        div = np.full(out, float(divisor_override))
    elif nd == 1:
        div = _divisors(spatial[0], k[0], s[0], p[0], out[0], count_include_pad)[None, :]
    else:
        div = np.multiply.outer(*[_divisors(n, kv, sv, pv, o, count_include_pad)
                                  for n, kv, sv, pv, o in zip(spatial, k, s, p, out)])
    if nd == 1:
        return AvgPool2dOp.apply(input.unsqueeze(-2), (1,) + k, (1,) + s, (0,) + p, (1,) + out,
                                 div).squeeze(-2)
    return AvgPool2dOp.apply(input, k, s, p, out, div)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """2-D average pooling over ``(N, C, H, W)`` or ``(C, H, W)``.

    Example::

        y = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
    """
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 2, "avg_pool2d")


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """1-D average pooling over ``(N, C, L)`` or ``(C, L)``."""
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, 1,
                     "avg_pool1d")


def _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, nd):
    """PyTorch's composite: ``(sum over the window of x ** p) ** (1 / p)`` through avg pooling
    (negative window sums of odd powers give 0); p = +-inf is the max of ``|x|`` (min for -inf)."""
    from ember.ops.elementwise import relu

    pool, avg = (max_pool1d, avg_pool1d) if nd == 1 else (max_pool2d, avg_pool2d)
    if norm_type == float("inf"):
        return pool(input.abs(), kernel_size, stride, 0, 1, ceil_mode)
    if norm_type == -float("inf"):
        return -pool(-input.abs(), kernel_size, stride, 0, 1, ceil_mode)
    k = _ntuple(kernel_size, nd, "kernel_size")
    out = avg(input.pow(norm_type), kernel_size, stride, 0, ceil_mode)
    cells = k[0] if nd == 1 else k[0] * k[1]
    return (out.sign() * relu(out.abs())).mul(cells).pow(1.0 / norm_type)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Power-average pooling over ``(N, C, L)`` or ``(C, L)``: ``(sum x ** p) ** (1 / p)``."""
    return _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 1)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Power-average pooling over ``(N, C, H, W)`` or ``(C, H, W)``: ``(sum x ** p) ** (1 / p)``
    over each window."""
    return _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 2)


from ember.ops._adaptive_pool import (  # noqa: E402
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    max_unpool1d,
    max_unpool2d,
)
