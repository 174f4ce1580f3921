"""Linear-algebra layers as ops: fused ``linear`` (x @ W.T + b), ``bilinear``, ``embedding``,
``one_hot``, the dropout family, and the distances ``normalize``/``cosine_similarity``/
``pairwise_distance``.

Example::

    y = F.linear(x, weight, bias)            # x (*, in), weight (out, in), bias (out,)
    e = F.embedding(ids, table, padding_idx=0)
"""

from __future__ import annotations

import warnings

import numpy as np

from ember.autograd.function import Function
from ember.autograd.grad_mode import _State
from ember.backend import onednn
from ember.backend.blas import matmul, matmul_bias, mkl_active, serial_blas
from ember.random import _gen
from ember.tensor import Tensor, _wrap

__all__ = [
    "linear", "bilinear", "embedding", "one_hot", "dropout", "dropout1d", "dropout2d",
    "dropout3d", "alpha_dropout", "feature_alpha_dropout", "normalize", "cosine_similarity",
    "pairwise_distance",
]


# ---------------------------------------------------------------------------- linear
class Linear(Function):
    """``x @ w.T + b`` over any leading batch dims, one GEMM forward and two backward."""

    @staticmethod
    def forward(ctx, x, w, b):
        x2 = x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x
        macs = x2.shape[0] * w.size
        mm = (onednn.MatMul.get(x2, w.T, b is not None)
              if _SMALL_MACS < macs <= _ONEDNN_MAX_MACS else None)
        if mm is not None:
            y = mm(x2, w.T, None if b is None else np.ascontiguousarray(b))
        elif macs <= _SMALL_MACS:
            y = matmul(x2, w.T) if b is None else matmul_bias(x2, w.T, b)
        else:
            with serial_blas(macs):
                y = matmul(x2, w.T) if b is None else matmul_bias(x2, w.T, b)
        ctx.save_for_backward(x2, w)
        ctx.xshape = x.shape
        return y.reshape(x.shape[:-1] + (w.shape[0],)) if x.ndim != 2 else y

    @staticmethod
    def backward(ctx, g):
        x2, w = ctx.saved_tensors
        nx, nw, nb = ctx.needs_input_grad
        g2 = g.reshape(-1, w.shape[0]) if g.ndim != 2 else g
        macs = x2.shape[0] * w.size
        if macs <= _SMALL_MACS:
            gx = matmul(g2, w).reshape(ctx.xshape) if nx else None
            gw = matmul(g2.T, x2) if nw else None
        else:
            mx = mw = None  # oneDNN's products, where it takes them (None: BLAS)
            if _BACKWARD_MIN_MACS <= macs <= _ONEDNN_MAX_MACS and not mkl_active():
                mx = onednn.MatMul.get(g2, w, False) if nx else None
                mw = onednn.MatMul.get(g2.T, x2, False) if nw else None
            with serial_blas(macs):
                gx = (mx or matmul)(g2, w).reshape(ctx.xshape) if nx else None
                gw = (mw or matmul)(g2.T, x2) if nw else None
        gb = g2.sum(axis=0) if nb else None
        return gx, gw, gb


_SMALL_MACS = 1 << 18  # BLAS runs products this small on one thread anyway: skip the switch
# (still through blas.matmul: the same seam as the large ones, which tests send to MKL too)
# The forward runs on oneDNN's matmul (bias in its kernel) up to this many multiply-adds: mlp128's
# step 3.7-4.6% faster, lenet64's 1%. Above, MKL: BERT-MiniLM's (4096, 384) @ (384, 1152) and
# (384, 1536) products (0.6-2.4 G) ran 5-8% slower on oneDNN inside the encoder (9.3 against 8.6
# ms, 12.2 against 11.5) although as fast in a loop of their own.
_ONEDNN_MAX_MACS = 1 << 28
# The backward's two products run there too, from 2^22 multiply-adds, where MKL does not take
# them (mkl.tuned: not installed, or its generic code on AMD's CPUs): mlp128's step on an AMD
# EPYC 7-10% faster than on NumPy's OpenBLAS, 38-45% where OpenBLAS kept to one thread (a
# spinning OpenBLAS: blas.serial_blas). On Intel's CPUs MKL keeps them: there oneDNN's were no
# faster (paired steps 0.998 and 0.973). LeNet at batch 64's (64x400x120, 3 M) ran 2% slower on
# oneDNN against a one-thread OpenBLAS.
_BACKWARD_MIN_MACS = 1 << 22


def linear(input, weight, bias=None):
    """``input @ weight.T + bias``: input ``(*, in_features)``, weight ``(out_features,
    in_features)``, bias ``(out_features,)``; result ``(*, out_features)``."""
    if isinstance(input, Tensor) and isinstance(weight, Tensor):
        x, w = input._data, weight._data
        # The common case (2-D weight, matching features and dtypes, 1-D bias) needs no more
        # checks; everything else goes through the checks below.
        if w.ndim == 2 and x.ndim and x.shape[-1] == w.shape[1] and x.dtype == w.dtype and (
                bias is None or isinstance(bias, Tensor) and bias._data.dtype == w.dtype
                and bias._data.shape == w.shape[:1]):
            return Linear.apply(input, weight, bias)
    for name, t in (("input", input), ("weight", weight)):
        if not isinstance(t, Tensor):
            raise TypeError(f"linear(): argument '{name}' must be Tensor, not {type(t).__name__}")
    if weight.ndim != 2 or input.ndim == 0:
        if weight.ndim == 1 and input.ndim >= 1:
            y = input.matmul(weight)
            return y if bias is None else y + bias
        raise RuntimeError(
            f"linear(): expected a 2-D weight (out_features, in_features) and an input with at "
            f"least 1 dim; got input {tuple(input.shape)}, weight {tuple(weight.shape)}")
    xs, ws = input.shape, weight.shape
    if xs[-1] != ws[1]:
        rows = int(np.prod(xs[:-1], dtype=np.int64))
        raise RuntimeError(
            f"mat1 and mat2 shapes cannot be multiplied ({rows}x{xs[-1]} and {ws[1]}x{ws[0]})")
    if input._data.dtype != weight._data.dtype or (
            bias is not None and bias._data.dtype != weight._data.dtype):
        other = bias if input._data.dtype == weight._data.dtype else input
        raise RuntimeError(
            "expected m1 and m2 to have the same dtype, but got: "
            f"{_dt_name(other)} != {_dt_name(weight)}")
    if bias is not None and bias.shape not in ((ws[0],), ()) and bias.shape[-1:] != (ws[0],):
        raise RuntimeError(
            f"linear(): bias of shape {tuple(bias.shape)} does not match out_features={ws[0]}")
    if bias is not None and bias.ndim > 1:
        return Linear.apply(input, weight, None) + bias
    return Linear.apply(input, weight, bias)


def _dt_name(t):
    return {"float64": "double", "float32": "float", "float16": "c10::Half"}.get(
        t._data.dtype.name, t._data.dtype.name)


class Bilinear(Function):
    @staticmethod
    def forward(ctx, x1, x2, w, b):
        y = np.einsum("ni,kij,nj->nk", x1, w, x2, optimize=True)
        if b is not None:
            y += b
        ctx.save_for_backward(x1, x2, w)
        return y

    @staticmethod
    def backward(ctx, g):
        x1, x2, w = ctx.saved_tensors
        n1, n2, nw, nb = ctx.needs_input_grad
        g1 = np.einsum("nk,kij,nj->ni", g, w, x2, optimize=True) if n1 else None
        g2 = np.einsum("nk,kij,ni->nj", g, w, x1, optimize=True) if n2 else None
        gw = np.einsum("nk,ni,nj->kij", g, x1, x2, optimize=True) if nw else None
        gb = g.sum(axis=0) if nb else None
        return g1, g2, gw, gb


def bilinear(input1, input2, weight, bias=None):
    """``y_k = input1 @ weight[k] @ input2 + bias[k]``; inputs ``(*, in1)`` and ``(*, in2)``,
    weight ``(out, in1, in2)``."""
    if weight.ndim != 3 or input1.shape[:-1] != input2.shape[:-1] or \
            input1.shape[-1] != weight.shape[1] or input2.shape[-1] != weight.shape[2]:
        raise RuntimeError(
            f"bilinear(): expected input1 (*, {weight.shape[1] if weight.ndim == 3 else 'in1'}), "
            f"input2 (*, {weight.shape[2] if weight.ndim == 3 else 'in2'}) with the same leading "
            f"dims and weight (out, in1, in2); got input1 {tuple(input1.shape)}, input2 "
            f"{tuple(input2.shape)}, weight {tuple(weight.shape)}")
    lead = input1.shape[:-1]
    y = Bilinear.apply(input1.reshape(-1, input1.shape[-1]), input2.reshape(-1, input2.shape[-1]),
                       weight, bias)
    return y.reshape(tuple(lead) + (weight.shape[0],))


# ---------------------------------------------------------------------------- embedding
def _sum_rows_by_index(gw, flat, g2):
    """``np.add.at(gw, flat, g2)``: row ``flat[k]`` of ``gw`` += ``g2[k]``, summed one row after
    another in the order of ``k`` (so bitwise as ``np.add.at`` and as PyTorch's CPU embedding
    backward). Few distinct indices among many rows (a character vocabulary) sum faster as
    sorted segments, one sequential ``np.add.reduce`` over rows per index: 2048 x 64 rows
    into 65, 886 -> 209 us; 8192 x 384 into 7164 of 30522, 30 -> 18 ms. ``np.add.at`` costs
    ~7 ns per element, a segment ~1 us, so many distinct indices stay with ``np.add.at``."""
    n = g2.size
    if n >= 1 << 14:
        order = np.argsort(flat, kind="stable")
        s = flat[order]
        starts = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1])))
        if len(starts) * 200 <= n:
            rows = g2[order]
            ends = np.append(starts[1:], len(s)).tolist()
            for a, b, v in zip(starts.tolist(), ends, s[starts].tolist()):
                np.add.reduce(rows[a:b], axis=0, out=gw[v])  # axis 0: sequential row sums
            return gw
    np.add.at(gw, flat, g2)
    return gw


class Embedding(Function):
    @staticmethod
    def forward(ctx, w, idx, padding_idx, scale_grad_by_freq):
        ctx.save_for_backward(idx)
        ctx.meta = (w.shape, padding_idx, scale_grad_by_freq)
        return w[idx]

    @staticmethod
    def backward(ctx, g):
        (idx,) = ctx.saved_tensors
        shape, padding_idx, by_freq = ctx.meta
        flat = idx.ravel()
        g2 = g.reshape(-1, shape[1])
        if by_freq:
            counts = np.bincount(flat, minlength=shape[0])
            g2 = g2 / counts[flat, None].astype(g2.dtype)
        gw = _sum_rows_by_index(np.zeros(shape, dtype=g.dtype), flat, g2)
        if padding_idx is not None:
            gw[padding_idx] = 0
        return gw, None, None, None


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """Rows of ``weight`` picked by the integer ``input``; the ``padding_idx`` row gets no gradient.
    With ``max_norm``, looked-up rows whose norm exceeds it are renormalised in place."""
    if not isinstance(input, Tensor) or input._data.dtype.kind not in "iu":
        got = input.dtype if isinstance(input, Tensor) else type(input).__name__
        raise RuntimeError(
            "Expected tensor for argument #1 'indices' to have one of the following scalar types: "
            f"Long, Int; but got {got} instead (while checking arguments for embedding)")
    if weight.ndim != 2:
        raise RuntimeError("'weight' must be 2-D")
    n = weight.shape[0]
    idx = input._data
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = int(idx.max()) if idx.max() >= n else int(idx.min())
        raise IndexError(
            f"index out of range in self: index {bad} is outside the {n} rows of the "
            f"embedding weight (valid 0..{n - 1})")
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise AssertionError("Padding_idx must be within num_embeddings")
        padding_idx %= n
    if max_norm is not None:
        _renorm_rows(weight, idx, max_norm, norm_type)
    return Embedding.apply(weight, idx, padding_idx, scale_grad_by_freq)


def _renorm_rows(weight, idx, max_norm, norm_type):
    rows = np.unique(idx)
    w = weight._data
    norms = np.linalg.norm(w[rows].astype(np.float64), ord=norm_type, axis=1)
    scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(w.dtype)
    w[rows] *= scale[:, None]
    if weight._vc is not None:
        weight._vc[0] += 1


def one_hot(tensor, num_classes=-1):
    """int64 tensor with a trailing dim of ``num_classes`` holding a 1 at each class index."""
    if not isinstance(tensor, Tensor) or tensor._data.dtype.kind not in "iu":
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    a = tensor._data
    if a.size and a.min() < 0:
        raise RuntimeError("Class values must be non-negative.")
    if num_classes == -1:
        if a.size == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(a.max()) + 1
    elif a.size and a.max() >= num_classes:
        raise RuntimeError("Class values must be smaller than num_classes.")
    out = np.zeros(a.shape + (num_classes,), dtype=np.int64)
    np.put_along_axis(out, a[..., None].astype(np.int64), 1, axis=-1)
    return _wrap(out)


# ---------------------------------------------------------------------------- dropout
class _MulMask(Function):
    @staticmethod
    def forward(ctx, x, mask):
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        return g * mask, None


def _check_p(p):
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _apply_mask(input, mask, inplace):
    if not inplace:
        return _MulMask.apply(input, mask)
    src = input.clone() if (_State.enabled and input._rg) else input
    return input._inplace(_MulMask.apply(src, mask))


def _keep_mask(shape, p, dtype):
    if p == 1.0:
        return np.zeros(shape, dtype=dtype)
    return (_gen().random(shape, dtype=np.float32) >= p).astype(dtype) * dtype.type(1 / (1 - p))


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``
    (identity when ``training`` is False). Draws from ember's default generator."""
    _check_p(p)
    if not training or p == 0:
        return input
    return _apply_mask(input, _keep_mask(input.shape, p, input._data.dtype), inplace)


def _feature_dropout(input, p, training, inplace, batched_ndim, name):
    _check_p(p)
    nd = input.ndim
    if nd not in (batched_ndim, batched_ndim - 1):
        raise RuntimeError(
            f"{name}: Expected {batched_ndim - 1}D or {batched_ndim}D input, but received a "
            f"{nd}D input. Note that {name} exists to provide channel-wise dropout on inputs with "
            f"{batched_ndim - 2} spatial dimension(s), a channel dimension, and an optional batch "
            "dimension (i.e. " + ("(N, C, L) or (C, L))." if batched_ndim == 3 else
                                  f"{batched_ndim - 2}D or {batched_ndim - 1}D input)."))
    if not training or p == 0:
        return input
    lead = 2 if nd == batched_ndim else 1
    shape = tuple(input.shape[:lead]) + (1,) * (nd - lead)
    return _apply_mask(input, _keep_mask(shape, p, input._data.dtype), inplace)


def dropout1d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of a ``(N, C, L)`` or ``(C, L)`` input."""
    return _feature_dropout(input, p, training, inplace, 3, "dropout1d")


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of a ``(N, C, H, W)`` input (a 3-D input is treated as ``(N, C, L)``
    with a warning, as PyTorch does)."""
    _check_p(p)
    if input.ndim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout "
            "behavior is desired - input is interpreted as shape (N, C, L), where C is the channel "
            "dim. This behavior will change in a future release to interpret the input as one "
            "without a batch dimension, i.e. shape (C, H, W). To maintain the 1D channel-wise "
            "dropout behavior, please switch to using dropout1d instead.", stacklevel=2)
        return _feature_dropout(input, p, training, inplace, 3, "dropout2d")
    return _feature_dropout(input, p, training, inplace, 4, "dropout2d")


def dropout3d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of a ``(N, C, D, H, W)`` or ``(C, D, H, W)`` input."""
    return _feature_dropout(input, p, training, inplace, 5, "dropout3d")


_ALPHA = 1.7580993408473766  # -SELU scale * SELU alpha, the value SELU saturates to


def _alpha_dropout(input, p, training, mask_shape):
    _check_p(p)
    if not training or p == 0:
        return input
    dt = input._data.dtype
    if p == 1:
        return input * 0.0
    keep = (_gen().random(mask_shape, dtype=np.float32) >= p).astype(dt)
    a = 1.0 / np.sqrt((_ALPHA * _ALPHA * p + 1) * (1 - p))
    b = ((keep - 1) * (_ALPHA * a) + _ALPHA * a * p).astype(dt)
    return _MulMask.apply(input, (keep * a).astype(dt)) + _wrap(b)


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Dropout that keeps SELU's self-normalising mean and variance."""
    return _alpha_dropout(input, p, training, input.shape)


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    lead = min(2, input.ndim)
    return _alpha_dropout(input, p, training,
                          tuple(input.shape[:lead]) + (1,) * (input.ndim - lead))


# ---------------------------------------------------------------------------- distances
def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """``input / max(||input||_p, eps)`` along ``dim``."""
    n = input.norm(p, dim, keepdim=True).clamp_min(eps)
    return input / n


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """``sum(x1 * x2, dim) / (max(||x1||, eps) * max(||x2||, eps))`` (inputs broadcast)."""
    n1 = x1.norm(2, dim, keepdim=True).clamp_min(eps)
    n2 = x2.norm(2, dim, keepdim=True).clamp_min(eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """``||x1 - x2 + eps||_p`` over the last dim."""
    nd = max(x1.ndim, x2.ndim)
    return (x1 - x2 + eps).norm(p, nd - 1 if nd else None, keepdim=keepdim)
