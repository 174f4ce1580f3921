"""Normalisation: ``batch_norm``, ``layer_norm``, ``group_norm``, ``instance_norm``,
``local_response_norm``. Batch, layer and group norm are ONE fused op each with a hand-written
backward on whole float32 arrays; per-channel sums run as BLAS-backed ``vecdot`` reductions.

Example::

    y = F.batch_norm(x, running_mean, running_var, weight, bias, training=True)
    y = F.layer_norm(x, (x.shape[-1],), weight, bias)
"""

from __future__ import annotations

import numbers

import numpy as np

from ember.autograd.function import Function
from ember.backend import jit
from ember.backend.parallel import parallel_for

__all__ = ["batch_norm", "layer_norm", "group_norm", "instance_norm", "local_response_norm",
           "rms_norm"]


def _row_sums(a3, out=None):
    """Sums over the last axis as dot products with ones (BLAS): 2-3x faster than ``sum`` on
    (64, 64, 64) and (64, 16, 1024) float32 (0.035 vs 0.099 ms, 0.17 vs 0.35 ms)."""
    return np.vecdot(a3, np.ones(a3.shape[-1], a3.dtype), out=out)


def _chan_sum(a3):
    """Per-channel sum of ``(N, C, L)``: contiguous last-axis reductions first, then the batch."""
    return _row_sums(a3).sum(axis=0)


def _chan_dot(a3, b3):
    return np.vecdot(a3, b3).sum(axis=0)


def _col(v):
    return v.reshape(-1, 1)


_SPLIT = 1 << 20  # elements from which the samples are shared between threads
_SPLIT_ROWS = 1 << 19  # LayerNorm: elements from which the rows are shared between threads


def _sample_split(x, fn, split=_SPLIT):
    """Run ``fn(n0, n1)`` over the first axis of ``x`` (the samples of ``(N, C, L)``, the rows
    of ``(M, D)``): in the caller, or split between threads from ``split`` elements
    (``parallel_for``)."""
    n = x.shape[0]
    parallel_for(n, fn, min_n=2 if x.size >= split else n + 1)


def _batch_norm_kernels(x3, w, b):
    """The numba BatchNorm kernels of ``ember.backend.jit`` for float32/float64 input with
    parameters of its dtype and rows of more than one element, else None. BatchNorm1d on (N, C)
    (rows of one) keeps NumPy's column reductions: the kernels' per-row partials are (N, C)
    float64 arrays there, and combining them cost twice NumPy's whole forward ((4096, 1024):
    42.9 against 19.2-21.0 ms)."""
    if x3.shape[2] < 2 or any(a is not None and a.dtype != x3.dtype for a in (w, b)):
        return None
    return jit.kernels_for(x3)


class BatchNormOp(Function):
    """x viewed as (N, C, L). Training: batch statistics, running stats updated in place
    (``rm``/``rv`` are raw arrays or None). Eval: running statistics.

    Saves the centred input (training) or the input itself (eval) and folds 1/std into the
    per-channel coefficients, so x-hat is never materialised. Training passes run over the
    samples (``_sample_split``), shared between threads for large inputs; the per-(sample,
    channel) partial sums are kept in an (N, C) array and summed over the batch as before.
    Forward + backward, one process, old/new alternated, two threads forced
    (EMBER_DYNAMIC_THREADS=0) on the busy 2-core machine: (64, 64, 32, 32) 23.6 -> 14.7 ms,
    (64, 16, 32, 32) 4.4 -> 3.6 ms; below ``_SPLIT`` (one thread) the BLAS row sums give
    (64, 64, 8, 8) 1.27 -> 1.18 ms. With the split from 2^19 elements (64, 32, 16, 16) measured
    no better. Blocks of channels sized for L2 measured 1.5x slower: a channel of
    (64, 64, 32, 32) is 64 runs of 4 KB at a 256 KB stride, all in the same cache sets."""

    @staticmethod
    def forward(ctx, x, w, b, rm, rv, training, momentum, eps):
        n, c = x.shape[:2]
        x3 = x.reshape(n, c, -1)
        cnt = x3.shape[0] * x3.shape[2]
        dt = x.dtype
        if not training:
            invstd = 1.0 / np.sqrt(rv + dt.type(eps))
            scale = invstd if w is None else invstd * w
            shift = -rm * scale if b is None else b - rm * scale
            y = x3 * _col(scale)
            y += _col(shift)
            ctx.save_for_backward(x3, w)
            ctx.stats = (invstd, cnt, rm.copy())
            return y.reshape(x.shape)
        k = _batch_norm_kernels(x3, w, b)
        if k is not None:
            return BatchNormOp._fused_forward(ctx, k, x3, w, b, rm, rv, momentum, eps, x.shape)
        part = np.empty((n, c), dt)
        mean = _row_sums(x3, out=part).sum(axis=0) / dt.type(cnt)
        xc = np.empty_like(x3)

        def centre(n0, n1):
            np.subtract(x3[n0:n1], _col(mean), out=xc[n0:n1])
            np.vecdot(xc[n0:n1], xc[n0:n1], out=part[n0:n1])

        _sample_split(x3, centre)
        var = part.sum(axis=0) / dt.type(cnt)
        BatchNormOp._update_running(rm, rv, mean, var, momentum, cnt)
        invstd = 1.0 / np.sqrt(var + dt.type(eps))
        scale = _col(invstd if w is None else invstd * w)
        y = np.empty_like(x3)

        def affine(n0, n1):
            np.multiply(xc[n0:n1], scale, out=y[n0:n1])
            if b is not None:
                y[n0:n1] += _col(b)

        _sample_split(x3, affine)
        ctx.save_for_backward(xc, w)
        ctx.stats = (invstd, cnt, None)
        return y.reshape(x.shape)

    @staticmethod
    def _update_running(rm, rv, mean, var, momentum, cnt):
        if rm is not None:
            m = mean.dtype.type(momentum)
            rm *= 1 - m
            rm += m * mean
            rv *= 1 - m
            rv += m * var * mean.dtype.type(cnt / max(cnt - 1, 1))

    @staticmethod
    def _fused_forward(ctx, k, x3, w, b, rm, rv, momentum, eps, shape):
        """Training forward in two compiled passes over ``x3`` (the numba kernels of
        ``ember.backend.jit``): per-row sums and squared deviations (combined over the batch in
        float64, as in Chan et al.'s parallel variance), then the affine map. Saves the input
        itself, not a centred copy: backward recomputes ``x - mean`` on the fly."""
        n, c, length = x3.shape
        cnt = n * length
        dt = x3.dtype
        s, m2 = np.empty((n, c)), np.empty((n, c))
        _sample_split(x3, lambda n0, n1: k.batch_norm_moments(x3[n0:n1], s[n0:n1], m2[n0:n1]))
        mean64 = s.sum(axis=0) / cnt
        var64 = (m2.sum(axis=0) + length * np.square(s / length - mean64).sum(axis=0)) / cnt
        mean, var = mean64.astype(dt), var64.astype(dt)
        BatchNormOp._update_running(rm, rv, mean, var, momentum, cnt)
        invstd = 1.0 / np.sqrt(var + dt.type(eps))
        scale = invstd if w is None else invstd * w
        y = np.empty_like(x3)
        _sample_split(x3, lambda n0, n1: k.batch_norm_affine(x3[n0:n1], mean, scale, b,
                                                            y[n0:n1]))
        ctx.save_for_backward(x3, w)
        ctx.stats = (invstd, cnt, None)
        ctx.mean = mean
        return y.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        xs, w = ctx.saved_tensors
        invstd, cnt, rm = ctx.stats
        g3 = g.reshape(xs.shape)
        need = ctx.needs_input_grad
        if rm is not None:  # eval: xs is the input, x-hat = (x - rm) * invstd
            gb = _chan_sum(g3)
            gw = _chan_dot(g3, xs)
            gw -= rm * gb
            gw *= invstd
            gx = None
            if need[0]:
                gx = (g3 * _col(invstd if w is None else invstd * w)).reshape(g.shape)
            return (gx, gw if need[1] else None, gb if need[2] else None,
                    None, None, None, None, None)
        mean = getattr(ctx, "mean", None)
        k = None if mean is None else jit.kernels_for(g3)
        if k is not None:
            return BatchNormOp._fused_backward(k, g3, xs, w, mean, invstd, cnt, need, g.shape)
        n, c = xs.shape[:2]
        sums, dots = np.empty((n, c), g.dtype), np.empty((n, c), g.dtype)

        def reduce(n0, n1):
            _row_sums(g3[n0:n1], out=sums[n0:n1])
            np.vecdot(g3[n0:n1], xs[n0:n1], out=dots[n0:n1])

        _sample_split(xs, reduce)
        gb = sums.sum(axis=0)
        gw = dots.sum(axis=0)
        gw *= invstd
        gx = None
        if need[0]:
            a = invstd if w is None else invstd * w
            cf = g.dtype.type(1.0 / cnt)
            ga, gxc, gc = _col(a), _col(a * invstd * gw * cf), _col(a * gb * cf)
            gx = np.empty(xs.shape, g.dtype)

            def input_grad(n0, n1):
                out = gx[n0:n1]
                np.multiply(g3[n0:n1], ga, out=out)
                out -= xs[n0:n1] * gxc
                out -= gc

            _sample_split(xs, input_grad)
            gx = gx.reshape(g.shape)
        return (gx, gw if need[1] else None, gb if need[2] else None,
                None, None, None, None, None)

    @staticmethod
    def _fused_backward(k, g3, x3, w, mean, invstd, cnt, need, shape):
        """Training backward in two compiled passes: per-row sums of ``g`` and ``g (x - mean)``
        (float64), then the input gradient."""
        n, c = x3.shape[:2]
        dt = x3.dtype
        sg, sgx = np.empty((n, c)), np.empty((n, c))
        _sample_split(x3, lambda n0, n1: k.batch_norm_sums(g3[n0:n1], x3[n0:n1], mean,
                                                          sg[n0:n1], sgx[n0:n1]))
        gb = sg.sum(axis=0).astype(dt)
        gw = (sgx.sum(axis=0) * invstd).astype(dt)
        gx = None
        if need[0]:
            a = invstd if w is None else invstd * w
            cf = dt.type(1.0 / cnt)
            k1, k2 = a * invstd * gw * cf, a * gb * cf
            gx = np.empty(x3.shape, dt)
            _sample_split(x3, lambda n0, n1: k.batch_norm_input_grad(
                g3[n0:n1], x3[n0:n1], mean, a, k1, k2, gx[n0:n1]))
            gx = gx.reshape(shape)
        return (gx, gw if need[1] else None, gb if need[2] else None,
                None, None, None, None, None)


def _row_norm(x2, eps, xc=None, invstd=None):
    """Normalise each row of ``(M, D)``: returns x-hat and 1/std per row ``(M, 1)`` (written into
    ``xc`` and ``invstd`` when given, else fresh arrays)."""
    d = x2.shape[1]
    dt = x2.dtype
    mean = _row_sums(x2)[:, None] / dt.type(d)
    xc = np.subtract(x2, mean, out=xc)
    var = np.vecdot(xc, xc)[:, None] / dt.type(d)
    invstd = np.divide(1.0, np.sqrt(var + dt.type(eps)), out=invstd)
    xc *= invstd
    return xc, invstd


def _row_norm_backward(gxhat, xhat, invstd):
    """Input gradient of row normalisation given the gradient with respect to x-hat."""
    d = xhat.shape[1]
    cf = gxhat.dtype.type(1.0 / d)
    m1 = _row_sums(gxhat)[:, None] * cf
    m2 = np.vecdot(gxhat, xhat)[:, None] * cf
    gx = gxhat - m1
    gx -= xhat * m2
    gx *= invstd
    return gx


def _layer_norm_kernel(x2, w, b):
    """The numba LayerNorm of ``ember.backend.jit`` for float32/float64 rows with parameters of
    their dtype, else None."""
    if any(a is not None and a.dtype != x2.dtype for a in (w, b)):
        return None
    k = jit.kernels_for(x2)
    return None if k is None else k.layer_norm


class LayerNormOp(Function):
    """Normalise over the last ``d`` elements (flattened); affine weight/bias of shape (d,)."""

    @staticmethod
    def forward(ctx, x, w, b, d, eps):
        x2 = x.reshape(-1, d)
        xhat, y = np.empty_like(x2), np.empty_like(x2)
        invstd = np.empty((len(x2), 1), dtype=x2.dtype)
        k = _layer_norm_kernel(x2, w, b)
        if k is not None:
            # One compiled pass per row (ember.backend.jit): BERT-MiniLM's (4096, 384) on one
            # thread 4.9 -> 1.1 ms, 0.7 ms without x-hat (inference), on the reference machine.
            keep = any(ctx.needs_input_grad)
            w1, b1 = (None if a is None else a.reshape(-1) for a in (w, b))

            def rows(lo, hi):
                k(x2[lo:hi], w1, b1, float(eps), y[lo:hi], xhat[lo:hi] if keep else None,
                  invstd[lo:hi])
        else:
            def rows(lo, hi):
                xh, _ = _row_norm(x2[lo:hi], eps, xhat[lo:hi], invstd[lo:hi])
                if w is not None:
                    np.multiply(xh, w.reshape(-1), out=y[lo:hi])
                else:
                    y[lo:hi] = xh
                if b is not None:
                    y[lo:hi] += b.reshape(-1)

        # Rows shared between threads for large inputs: BERT-MiniLM's (4096, 384) LayerNorm
        # (13 a batch) ran 4.9 ms on one thread.
        _sample_split(x2, rows, _SPLIT_ROWS)
        ctx.save_for_backward(xhat, w)
        ctx.invstd = invstd
        ctx.bshape = None if b is None else b.shape
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        xhat, w = ctx.saved_tensors
        g2 = g.reshape(xhat.shape)
        need = ctx.needs_input_grad
        gx = gw = gb = None
        if need[0]:
            gxhat = g2 * w.reshape(-1) if w is not None else g2
            gx = _row_norm_backward(gxhat, xhat, ctx.invstd).reshape(g.shape)
        if need[1]:
            # Column dot products: einsum 0.26 ms on (1024, 768), vecdot of the transposes 2.3 ms
            gw = np.einsum("ij,ij->j", g2, xhat).reshape(w.shape)
        if need[2]:
            gb = g2.sum(axis=0).reshape(ctx.bshape)
        return gx, gw, gb, None, None


class GroupNormOp(Function):
    """x (N, C, *) normalised per (sample, group); per-channel affine."""

    @staticmethod
    def forward(ctx, x, w, b, groups, eps):
        n, c = x.shape[:2]
        xhat, invstd = _row_norm(x.reshape(n * groups, -1), eps)
        xh3 = xhat.reshape(n, c, -1)
        y = xh3 * _col(w) if w is not None else xh3.copy()
        if b is not None:
            y += _col(b)
        ctx.save_for_backward(xhat, w)
        ctx.invstd = invstd
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        xhat, w = ctx.saved_tensors
        n, c = g.shape[:2]
        g3 = g.reshape(n, c, -1)
        need = ctx.needs_input_grad
        gx = gw = gb = None
        if need[0]:
            gxhat = g3 * _col(w) if w is not None else g3
            gx = _row_norm_backward(gxhat.reshape(xhat.shape), xhat, ctx.invstd).reshape(g.shape)
        if need[1]:
            gw = _chan_dot(g3, xhat.reshape(g3.shape))
        if need[2]:
            gb = _chan_sum(g3)
        return gx, gw, gb, None, None


# ----------------------------------------------------------------------------- public API
def _size(shape):
    return "[" + ", ".join(str(s) for s in shape) + "]"


def _empty_batch(input, *params):
    """torch's result for an input with no elements (an empty batch): the empty output, the
    running statistics untouched and zero gradients for the affine parameters."""
    out = input * 1
    for p in params:
        if p is not None:
            out = out + p.sum() * 0
    return out


def _check_vec(name, t, c):
    if t is not None and t.numel() != c:
        raise RuntimeError(f"{name} should contain {c} elements not {t.numel()}")


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalisation over the channel axis 1 of ``(N, C, *)`` input.

    In training mode the batch statistics normalise and ``running_mean``/``running_var`` (when
    given) are updated in place with ``momentum`` (the variance unbiased); otherwise the running
    statistics normalise.

    Example::

        y = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1)
    """
    if input.ndim < 2:
        raise ValueError(f"batch_norm expected at least 2D input (got {input.ndim}D input)")
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_vec(name, t, c)
    if training:
        size = input.numel() // c
        if size == 1:
            raise ValueError("Expected more than 1 value per channel when training, got input "
                             f"size ember.Size({list(input.shape)})")
    elif running_mean is None or running_var is None:
        raise RuntimeError("running_mean and running_var must be defined in evaluation mode")
    if input.numel() == 0:
        return _empty_batch(input, weight, bias)
    rm = None if running_mean is None else running_mean._data
    rv = None if running_var is None else running_var._data
    out = BatchNormOp.apply(input, weight, bias, rm, rv, bool(training),
                            0.0 if momentum is None else momentum, eps)
    if training and rm is not None:
        for t in (running_mean, running_var):
            if t._vc is not None:
                t._vc[0] += 1
    return out


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the trailing ``normalized_shape`` dimensions, then scale and shift.

    Example::

        y = F.layer_norm(x, (64,), weight, bias)       # x (..., 64)
    """
    shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else \
        tuple(int(s) for s in normalized_shape)
    nd = len(shape)
    if input.ndim < nd or tuple(input.shape[input.ndim - nd:]) != shape:
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape "
                           f"[*, {', '.join(map(str, shape))}], but got input of size"
                           f"{_size(input.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != shape:
            raise RuntimeError(f"Expected {name} to be of same shape as normalized_shape, but got "
                               f"{name} of shape {_size(t.shape)} and normalized_shape = "
                               f"{_size(shape)}")
    d = 1
    for s in shape:
        d *= s
    return LayerNormOp.apply(input, weight, bias, d, eps)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """Root-mean-square normalisation over the trailing ``normalized_shape`` dimensions:
    ``x / sqrt(mean(x ** 2) + eps) * weight``; ``eps=None`` is the dtype's machine epsilon.
    A composite of ops (autograd through them)."""
    shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else \
        tuple(int(s) for s in normalized_shape)
    nd = len(shape)
    if input.ndim < nd or tuple(input.shape[input.ndim - nd:]) != shape:
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape "
                           f"[*{', '.join(map(str, shape))}], but got input of size"
                           f"{_size(input.shape)}")
    if weight is not None and tuple(weight.shape) != shape:
        raise RuntimeError(f"Expected weight to be of same shape as normalized_shape, but got "
                           f"weight of shape {_size(weight.shape)} and normalized_shape = "
                           f"{_size(shape)}")
    if eps is None:
        eps = float(np.finfo(input._data.dtype).eps)
    dims = tuple(range(input.ndim - nd, input.ndim))
    y = input * ((input * input).mean(dims, keepdim=True) + eps).rsqrt()
    return y if weight is None else y * weight


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Group normalisation of ``(N, C, *)``: statistics per sample over ``C / num_groups``
    channels each; per-channel affine ``weight``/``bias``."""
    if input.ndim < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received "
                           f"{input.ndim}")
    c = input.shape[1]
    if c % num_groups:
        raise RuntimeError(f"Expected number of channels in input to be divisible by num_groups, "
                           f"but got input of shape {_size(input.shape)} and num_groups="
                           f"{num_groups}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and (t.ndim != 1 or t.numel() != c):
            raise RuntimeError(f"Expected {name} to be a vector of size equal to the number of "
                               f"channels in input, but got {name} of shape {_size(t.shape)} and "
                               f"input of shape {_size(input.shape)}")
    if input.numel() == 0:
        return _empty_batch(input, weight, bias)
    return GroupNormOp.apply(input, weight, bias, int(num_groups), eps)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Instance normalisation: statistics per (sample, channel); running statistics (when given)
    track the batch average of the instance statistics, as in PyTorch."""
    if input.ndim < 3:
        raise ValueError(f"instance_norm expected at least 3D input (got {input.ndim}D input)")
    c = input.shape[1]
    if input.numel() == 0:
        return _empty_batch(input, weight, bias)
    if not use_input_stats:
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    if running_mean is not None and running_var is not None:
        x3 = input._data.reshape(input.shape[0], c, -1)
        n = x3.shape[2]
        m = x3.dtype.type(momentum)
        mean = x3.mean(axis=2, dtype=x3.dtype)
        var = x3.var(axis=2, dtype=x3.dtype) * x3.dtype.type(n / max(n - 1, 1))
        running_mean._data *= 1 - m
        running_mean._data += m * mean.mean(axis=0)
        running_var._data *= 1 - m
        running_var._data += m * var.mean(axis=0)
    return GroupNormOp.apply(input, weight, bias, c, eps)


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """Local response normalisation across channels (a composite of pooling ops)."""
    from ember.ops.pooling import avg_pool2d
    from ember.ops.sampling import pad

    if input.ndim < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {input.ndim} "
                         "dimensions)")
    if input.numel() == 0:
        return input
    n, c = input.shape[:2]
    div = (input * input).reshape(n, 1, c, -1)
    div = pad(div, (0, 0, size // 2, (size - 1) // 2))
    div = avg_pool2d(div, (size, 1), stride=1).reshape(input.shape)
    div = (div * alpha + k) ** beta
    return input / div
