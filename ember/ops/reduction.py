"""Reductions: sum, mean, prod, max/min (with indices), var/std, logsumexp, norm, cumsum..."""

from __future__ import annotations

import builtins
import collections

import numpy as np

from ember import dtypes as _dt
from ember.autograd.function import Function
from ember.ops.activation import LogSoftmax, Softmax
from ember.tensor import Tensor, _scalar_name, _wrap, _wrap_dim

__all__ = [
    "sum", "mean", "prod", "max", "min", "amax", "amin", "argmax", "argmin", "var", "std",
    "var_mean", "std_mean", "logsumexp", "norm", "cumsum", "cumprod", "all", "any", "count_nonzero",
    "nansum", "nanmean", "median", "nanmedian", "mode", "aminmax", "cummax", "cummin", "diff",
    "dist", "softmax", "log_softmax", "quantile", "nanquantile",
]

_ndarray = np.ndarray
return_types_max = collections.namedtuple("max", ["values", "indices"])
return_types_min = collections.namedtuple("min", ["values", "indices"])
return_types_median = collections.namedtuple("median", ["values", "indices"])
return_types_nanmedian = collections.namedtuple("nanmedian", ["values", "indices"])
return_types_mode = collections.namedtuple("mode", ["values", "indices"])
return_types_cummax = collections.namedtuple("cummax", ["values", "indices"])
return_types_cummin = collections.namedtuple("cummin", ["values", "indices"])
return_types_aminmax = collections.namedtuple("aminmax", ["min", "max"])


def _axes(dim, ndim):
    """Normalise ``dim`` (None, int, tuple, list) into a tuple of axes or None for all."""
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        if len(dim) == 0:
            return None
        axes = tuple(sorted(_wrap_dim(d, ndim) for d in dim))
    else:
        axes = (_wrap_dim(dim, ndim),)
    return axes if ndim else ()  # a 0-d tensor takes dim 0 or -1 and has no axis to reduce


def _numpy_names(dim, keepdim, axis, keepdims):
    """``axis``/``keepdims``, the NumPy spellings that PyTorch accepts for dim/keepdim."""
    if axis is not None:
        dim = axis
    return dim, keepdim if keepdims is None else keepdims


def _expand_back(g, in_shape, axes, keepdim):
    """Reshape a reduced gradient so it broadcasts against the input."""
    if axes is None:
        return g.reshape((1,) * len(in_shape)) if len(in_shape) else g
    if not keepdim:
        shape = list(in_shape)
        for a in axes:
            shape[a] = 1
        return g.reshape(shape)
    return g


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdim):
        ctx.info = (x.shape, axes, keepdim)
        return np.asarray(x.sum(axis=axes, keepdims=keepdim, dtype=x.dtype))  # int32 stays

    @staticmethod
    def backward(ctx, g):
        shape, axes, keepdim = ctx.info
        return np.broadcast_to(_expand_back(g, shape, axes, keepdim), shape), None, None


class Mean(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdim):
        ctx.info = (x.shape, axes, keepdim)
        n = x.size if axes is None else int(np.prod([x.shape[a] for a in axes]))
        ctx.n = n
        return np.asarray(x.mean(axis=axes, keepdims=keepdim), dtype=x.dtype)

    @staticmethod
    def backward(ctx, g):
        shape, axes, keepdim = ctx.info
        g = _expand_back(g, shape, axes, keepdim) * g.dtype.type(1.0 / ctx.n if ctx.n else np.nan)
        return np.broadcast_to(g, shape), None, None


def _int_sum_dtype(x, dtype):
    if dtype is not None:
        return x.to(dtype)
    if x._data.dtype.kind in "biu":
        return x.to(_dt.int64)
    return x


def sum(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    if axis is not None or keepdims is not None:  # NumPy's names, which torch accepts
        dim, keepdim = _numpy_names(dim, keepdim, axis, keepdims)
    if dim is None and dtype is None and input._data.dtype.kind == "f":
        return Sum.apply(input, None, keepdim)
    input = _int_sum_dtype(input, dtype)
    return Sum.apply(input, _axes(dim, input._data.ndim), keepdim)


def nansum(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    if axis is not None or keepdims is not None:
        dim, keepdim = _numpy_names(dim, keepdim, axis, keepdims)
    from ember.ops.elementwise import where, isnan

    if input._data.dtype.kind != "f":  # no NaN to drop; integers sum to int64 as in sum
        return sum(input, dim, keepdim, dtype=dtype)
    return sum(where(isnan(input), 0.0, input), dim, keepdim, dtype=dtype)


def mean(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    if axis is not None or keepdims is not None:
        dim, keepdim = _numpy_names(dim, keepdim, axis, keepdims)
    if dtype is not None:
        input = input.to(dtype)
    if input._data.dtype.kind != "f":
        raise RuntimeError(
            f"mean(): could not infer output dtype. Input dtype must be either a floating point "
            f"or complex dtype. Got: {_scalar_name(input._data.dtype)}"
        )
    return Mean.apply(input, _axes(dim, input._data.ndim), keepdim)


def nanmean(input, dim=None, keepdim=False, *, dtype=None):
    from ember.ops.elementwise import isnan, logical_not

    if input._data.dtype.kind != "f":
        raise RuntimeError(f"nanmean(): expected input to have floating point or complex dtype "
                           f"but got {_scalar_name(input._data.dtype)}")
    if dtype is not None:
        input = input.to(dtype)
    keep = logical_not(isnan(input))
    return nansum(input, dim, keepdim) / sum(keep, dim, keepdim).to(input.dtype)


class Prod(Function):
    @staticmethod
    def forward(ctx, x, axis, keepdim):
        y = np.asarray(x.prod(axis=axis, keepdims=keepdim, dtype=x.dtype))
        ctx.save_for_backward(x)
        ctx.info = (axis, keepdim)
        return y

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        axis, keepdim = ctx.info
        axes = None if axis is None else (axis,)
        ge = _expand_back(g, x.shape, axes, keepdim)
        # Product of all other elements, exact even where x has zeros.
        if axis is None:
            flat = x.reshape(-1)
            left = np.cumprod(np.concatenate([[1], flat[:-1]])).astype(x.dtype)
            right = np.cumprod(np.concatenate([[1], flat[::-1][:-1]]))[::-1].astype(x.dtype)
            return (ge * (left * right).reshape(x.shape)), None, None
        xm = np.moveaxis(x, axis, -1)
        ones = np.ones(xm.shape[:-1] + (1,), dtype=x.dtype)
        left = np.cumprod(np.concatenate([ones, xm[..., :-1]], -1), -1)
        right = np.flip(np.cumprod(np.concatenate([ones, np.flip(xm, -1)[..., :-1]], -1), -1), -1)
        others = np.moveaxis(left * right, -1, axis)
        return ge * others, None, None


def prod(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    if axis is not None or keepdims is not None:
        dim, keepdim = _numpy_names(dim, keepdim, axis, keepdims)
    input = _int_sum_dtype(input, dtype)
    axis = None if dim is None else _wrap_dim(dim, input._data.ndim)
    return Prod.apply(input, axis if input._data.ndim else None, keepdim)


class _Extreme(Function):
    """max/min/amax/amin over axes: the gradient is shared evenly between ties (as amax does)."""

    @staticmethod
    def forward(ctx, x, axes, keepdim, is_max):
        y = (np.max if is_max else np.min)(x, axis=axes, keepdims=True)
        ctx.save_for_backward(x, y)
        ctx.info = (axes, keepdim)
        return y if keepdim else np.asarray(y.reshape([s for i, s in enumerate(y.shape)
                                                       if axes is not None and i not in axes]))

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        axes, keepdim = ctx.info
        mask = x == y
        cnt = mask.sum(axis=axes, keepdims=True)
        ge = _expand_back(g, x.shape, axes, keepdim)
        return (ge * mask / cnt).astype(x.dtype, copy=False), None, None, None


class _ExtremeDim(Function):
    """max(dim)/min(dim): the gradient goes to the element at the returned index."""

    @staticmethod
    def forward(ctx, x, axis, keepdim, idx):
        y = np.take_along_axis(x, np.expand_dims(idx, axis), axis)
        ctx.info = (x.shape, axis, keepdim, idx)
        return y if keepdim else np.squeeze(y, axis)

    @staticmethod
    def backward(ctx, g):
        shape, axis, keepdim, idx = ctx.info
        out = np.zeros(shape, dtype=g.dtype)
        gi = g if keepdim else np.expand_dims(g, axis)
        np.put_along_axis(out, np.expand_dims(idx, axis), gi, axis)
        return out, None, None, None


def _check_nonempty(input, name, axes):
    """A reduction without identity refuses an empty reduced dimension (an empty tensor reduced
    along a dimension that is not empty gives an empty result, as in PyTorch)."""
    x = input._data
    if x.size:
        return
    if axes is None:
        raise RuntimeError(
            f"{name}(): Expected reduction dim to be specified for input.numel() == 0. Specify "
            "the reduction dim with the 'dim' argument.")
    for a in axes:
        if x.ndim and x.shape[a] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {a} to have non-zero size.")


def _max_min(input, dim, keepdim, is_max, other=None):
    name = "max" if is_max else "min"
    if isinstance(dim, Tensor):
        from ember.ops.elementwise import maximum, minimum

        return (maximum if is_max else minimum)(input, dim)
    if dim is None:
        _check_nonempty(input, name, None)
        return _Extreme.apply(input, None, False, is_max)
    axis = _wrap_dim(dim, input._data.ndim)
    _check_nonempty(input, name, (axis,))
    x = input._data
    rt = return_types_max if is_max else return_types_min
    if x.ndim == 0:
        from ember.ops.shape import clone

        return rt(clone(input), _wrap(np.zeros((), dtype=np.int64)))
    idx = (np.argmax if is_max else np.argmin)(x, axis=axis)
    vals = _ExtremeDim.apply(input, axis, keepdim, idx)
    return rt(vals, _wrap(np.expand_dims(idx, axis) if keepdim else idx))


def max(input, dim=None, keepdim=False, *, out=None, axis=None, keepdims=None):
    """``max(x)`` -> scalar; ``max(x, dim)`` -> (values, indices); ``max(x, other)`` elementwise."""
    if axis is not None or keepdims is not None:
        dim, keepdim = _numpy_names(dim, keepdim, axis, keepdims)
    return _max_min(input, dim, keepdim, True)


def min(input, dim=None, keepdim=False, *, out=None, axis=None, keepdims=None):
    if axis is not None or keepdims is not None:
        dim, keepdim = _numpy_names(dim, keepdim, axis, keepdims)
    return _max_min(input, dim, keepdim, False)


def amax(input, dim=(), keepdim=False, *, axis=None, keepdims=None):
    if axis is not None or keepdims is not None:
        dim, keepdim = _numpy_names(dim, keepdim, axis, keepdims)
    axes = _axes(dim, input._data.ndim)
    _check_nonempty(input, "amax", axes)
    return _Extreme.apply(input, axes, keepdim, True)


def amin(input, dim=(), keepdim=False, *, axis=None, keepdims=None):
    if axis is not None or keepdims is not None:
        dim, keepdim = _numpy_names(dim, keepdim, axis, keepdims)
    axes = _axes(dim, input._data.ndim)
    _check_nonempty(input, "amin", axes)
    return _Extreme.apply(input, axes, keepdim, False)


def aminmax(input, *, dim=None, keepdim=False):
    return return_types_aminmax(amin(input, () if dim is None else dim, keepdim),
                                amax(input, () if dim is None else dim, keepdim))


def _arg(input, dim, keepdim, f, name):
    x = input._data
    if dim is None:
        if x.size == 0:
            raise IndexError(
                f"{name}(): Expected reduction dim to be specified for input.numel() == 0.")
        r = np.asarray(f(x.reshape(-1)))
        return _wrap(r.reshape((1,) * x.ndim) if keepdim else r.astype(np.int64))
    axis = _wrap_dim(dim, x.ndim)
    _check_nonempty(input, name, (axis,))
    if x.ndim == 0:
        return _wrap(np.zeros((), dtype=np.int64))
    return _wrap(np.asarray(f(x, axis=axis, keepdims=keepdim)).astype(np.int64))


def argmax(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    if axis is not None or keepdims is not None:
        dim, keepdim = _numpy_names(dim, keepdim, axis, keepdims)
    return _arg(input, dim, keepdim, np.argmax, "argmax")


def argmin(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    if axis is not None or keepdims is not None:
        dim, keepdim = _numpy_names(dim, keepdim, axis, keepdims)
    return _arg(input, dim, keepdim, np.argmin, "argmin")


class Var(Function):
    @staticmethod
    def forward(ctx, x, axes, correction, keepdim):
        m = x.mean(axis=axes, keepdims=True)
        d = x - m
        n = x.size if axes is None else int(np.prod([x.shape[a] for a in axes]))
        denom = builtins.max(n - correction, 0)  # ``max`` here is the op
        v = np.asarray((d * d).sum(axis=axes, keepdims=keepdim) / x.dtype.type(denom) if denom else
                       np.full((d * d).sum(axis=axes, keepdims=keepdim).shape, np.nan, x.dtype))
        ctx.save_for_backward(d)
        ctx.info = (axes, keepdim, denom)
        return v.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (d,) = ctx.saved_tensors
        axes, keepdim, denom = ctx.info
        ge = _expand_back(g, d.shape, axes, keepdim)
        return (ge * d * d.dtype.type(2.0 / denom if denom else np.nan)), None, None, None


class Std(Function):
    """sqrt(var); where the std is 0 (a constant line) the gradient is 0, as in PyTorch (the
    chain through sqrt would give 0 * inf = nan there)."""

    @staticmethod
    def forward(ctx, x, axes, correction, keepdim):
        v = Var.forward(ctx, x, axes, correction, keepdim)
        y = np.sqrt(v)
        ctx.save_for_backward(ctx.saved_tensors[0], y)
        return y

    @staticmethod
    def backward(ctx, g):
        d, y = ctx.saved_tensors
        axes, keepdim, denom = ctx.info
        ge = _expand_back(g, d.shape, axes, keepdim)
        ye = _expand_back(y, d.shape, axes, keepdim)
        with np.errstate(divide="ignore", invalid="ignore"):
            gx = ge * d / (ye * d.dtype.type(denom if denom else np.nan))
        return np.where(ye == 0, d.dtype.type(0), gx).astype(d.dtype, copy=False), None, None, None


def _correction(unbiased, correction):
    if correction is not None:
        return correction
    if unbiased is None:
        return 1
    return 1 if unbiased else 0


def _check_var_dtype(input):
    if input._data.dtype.kind != "f":
        raise RuntimeError(
            f"std and var only support floating point and complex dtypes (got {input.dtype}); "
            f"convert first, e.g. x.float().var()"
        )


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None,
        keepdims=None):
    if axis is not None or keepdims is not None:
        dim, keepdim = _numpy_names(dim, keepdim, axis, keepdims)
    _check_var_dtype(input)
    if isinstance(dim, bool):
        unbiased, dim = dim, None
    return Var.apply(input, _axes(dim, input._data.ndim), _correction(unbiased, correction), keepdim)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None,
        keepdims=None):
    if axis is not None or keepdims is not None:
        dim, keepdim = _numpy_names(dim, keepdim, axis, keepdims)
    _check_var_dtype(input)
    if isinstance(dim, bool):
        unbiased, dim = dim, None
    axes = _axes(dim, input._data.ndim)
    return Std.apply(input, axes, _correction(unbiased, correction), keepdim)


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return var(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return std(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


class LogSumExp(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdim):
        m = np.max(x, axis=axes, keepdims=True, initial=-np.inf)  # empty: log(0) = -inf
        m = np.where(np.isfinite(m), m, 0).astype(x.dtype, copy=False)
        s = np.exp(x - m).sum(axis=axes, keepdims=True)
        with np.errstate(divide="ignore"):
            y = np.log(s) + m
        ctx.save_for_backward(x, y)
        ctx.info = (axes, keepdim)
        return y if keepdim else np.asarray(np.squeeze(y, axis=axes))

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        axes, keepdim = ctx.info
        ge = _expand_back(g, x.shape, axes, keepdim)
        return ge * np.exp(x - y), None, None


def logsumexp(input, dim, keepdim=False):
    if input._data.dtype.kind != "f":
        input = input.to(_dt.get_default_dtype())
    return LogSumExp.apply(input, _axes(dim, input._data.ndim), keepdim)


def _softmax_input(input, dim, dtype, name):
    if dim is None:
        raise TypeError(f"{name}() missing required argument 'dim' (int)")
    if dtype is not None:
        input = input.to(dtype)
    elif input._data.dtype.kind != "f":
        raise RuntimeError(f'"{name}_lastdim_kernel_impl" not implemented for '
                           f"'{input.dtype.name.capitalize()}'")
    return input, _wrap_dim(dim, input._data.ndim)


def softmax(input, dim=None, dtype=None):
    """``exp(x) / exp(x).sum(dim, keepdim=True)``, computed stably (``ember.softmax(x, dim=-1)``).

    ``torch.softmax`` needs ``dim``; the op itself is the one ``nn.functional.softmax`` uses."""
    input, axis = _softmax_input(input, dim, dtype, "softmax")
    if input._data.ndim == 0:
        return Softmax.apply(input, None)
    return Softmax.apply(input, axis)


def log_softmax(input, dim=None, dtype=None):
    """``x - logsumexp(x, dim, keepdim=True)`` (``ember.log_softmax(x, dim=-1)``)."""
    input, axis = _softmax_input(input, dim, dtype, "log_softmax")
    if input._data.ndim == 0:
        return LogSoftmax.apply(input, None)
    return LogSoftmax.apply(input, axis)


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    from ember.ops import elementwise as E

    if dtype is not None:
        input = input.to(dtype)
    if p in ("fro", 2, 2.0, None):
        return _PNorm.apply(input, 2, _axes(dim, input._data.ndim), keepdim)
    if p == "nuc":
        raise NotImplementedError("nuclear norm is not supported")
    if p == float("inf"):
        return amax(E.abs(input), () if dim is None else dim, keepdim)
    if p == float("-inf"):
        return amin(E.abs(input), () if dim is None else dim, keepdim)
    if p == 0:
        return sum(E.ne(input, 0).to(input.dtype), dim, keepdim)
    if p == 1:
        return sum(E.abs(input), dim, keepdim)
    if p > 1:
        return _PNorm.apply(input, p, _axes(dim, input._data.ndim), keepdim)
    return E.pow(sum(E.pow(E.abs(input), p), dim, keepdim), 1.0 / p)


class _PNorm(Function):
    """``(sum |x|^p)^(1/p)`` for p > 1; a zero norm gets a zero gradient, as in PyTorch (the
    chain of sqrt/pow would give 0/0 = nan there)."""

    @staticmethod
    def forward(ctx, x, p, axes, keepdim):
        if p == 2:
            r = np.sqrt(np.asarray((x * x).sum(axis=axes, keepdims=keepdim)))
        else:
            r = np.asarray((np.abs(x) ** p).sum(axis=axes, keepdims=keepdim)) ** (1.0 / p)
        ctx.save_for_backward(x, r)
        ctx.info = (p, axes, keepdim)
        return r

    @staticmethod
    def backward(ctx, g):
        x, r = ctx.saved_tensors
        p, axes, keepdim = ctx.info
        r = _expand_back(r, x.shape, axes, keepdim)
        g = _expand_back(g, x.shape, axes, keepdim)
        with np.errstate(divide="ignore", invalid="ignore"):
            if p == 2:
                gx = g * x / r
            else:
                gx = g * np.sign(x) * np.abs(x) ** (p - 1) / r ** (p - 1)
        return np.where(r == 0, x.dtype.type(0), gx).astype(x.dtype, copy=False), None, None, None


def dist(input, other, p=2):
    from ember.ops.elementwise import sub

    return norm(sub(input, other), p)


class CumSum(Function):
    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = axis
        return np.cumsum(x, axis=axis, dtype=x.dtype)

    @staticmethod
    def backward(ctx, g):
        a = ctx.axis
        return np.flip(np.cumsum(np.flip(g, a), axis=a), a), None


def _on_1d(fn, input, dim, *args, **kw):
    """``fn`` of a 0-d tensor along dim 0/-1: the same op on its 1-element 1-d view, its
    results reshaped back to 0-d (as PyTorch gives)."""
    _wrap_dim(dim, 0)
    out = fn(input.reshape(1), 0, *args, **kw)
    if isinstance(out, tuple):
        return type(out)(*(o.reshape(()) for o in out))
    return out.reshape(())


def cumsum(input, dim, *, dtype=None):
    if input._data.ndim == 0:
        return _on_1d(cumsum, input, dim, dtype=dtype)
    input = _int_sum_dtype(input, dtype)
    return CumSum.apply(input, _wrap_dim(dim, input._data.ndim))


def cumprod(input, dim, *, dtype=None):
    if input._data.ndim == 0:
        return _on_1d(cumprod, input, dim, dtype=dtype)
    input = _int_sum_dtype(input, dtype)
    axis = _wrap_dim(dim, input._data.ndim)
    return _CumProd.apply(input, axis)


class _CumProd(Function):
    @staticmethod
    def forward(ctx, x, axis):
        y = np.cumprod(x, axis=axis, dtype=x.dtype)
        ctx.save_for_backward(x, y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        a = ctx.axis
        # Before a line's first zero: sum_{j>=k} g_j y_j / x_k. After it every product holds
        # that zero: 0. At it (k = z): y_{z-1} * sum_{j>=z} g_j prod_{z<i<=j} x_i.
        s = np.flip(np.cumsum(np.flip(g * y, a), axis=a), a)
        zero = x == 0
        with np.errstate(divide="ignore", invalid="ignore"):
            gx = np.where(zero, 0, s / x).astype(x.dtype)
        if zero.any():
            first = zero & (np.cumsum(zero, axis=a) == 1)
            after = np.cumsum(first, axis=a) > 0  # j >= z
            c = np.cumprod(np.where(after & ~first, x, 1), axis=a)
            tail = np.flip(np.cumsum(np.flip(np.where(after, g * c, 0), a), axis=a), a)
            prefix = np.concatenate(
                [np.ones_like(np.take(y, [0], axis=a)), np.take(y, range(y.shape[a] - 1), axis=a)],
                axis=a)
            gx = np.where(first, prefix * tail, gx).astype(x.dtype)
        return gx, None


def _cumext(input, dim, is_max):
    if input._data.ndim == 0:
        return _on_1d(cummax if is_max else cummin, input, dim)
    x = input._data
    axis = _wrap_dim(dim, x.ndim)
    f = np.maximum if is_max else np.minimum
    vals = f.accumulate(x, axis=axis)
    n = x.shape[axis]
    ar = np.arange(n).reshape([-1 if i == axis else 1 for i in range(x.ndim)])
    hit = np.where((x == vals) | (x != x), ar, 0)  # a NaN propagates: its index is kept
    idx = np.maximum.accumulate(hit, axis=axis).astype(np.int64)
    from ember.ops.indexing import gather

    v = gather(input, axis, _wrap(idx))
    return (return_types_cummax if is_max else return_types_cummin)(v, _wrap(idx))


def cummax(input, dim):
    return _cumext(input, dim, True)


def cummin(input, dim):
    return _cumext(input, dim, False)


def all(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    if axis is not None or keepdims is not None:
        dim, keepdim = _numpy_names(dim, keepdim, axis, keepdims)
    return _wrap(np.asarray(np.all(input._data, axis=_axes(dim, input._data.ndim), keepdims=keepdim)))


def any(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    if axis is not None or keepdims is not None:
        dim, keepdim = _numpy_names(dim, keepdim, axis, keepdims)
    return _wrap(np.asarray(np.any(input._data, axis=_axes(dim, input._data.ndim), keepdims=keepdim)))


def count_nonzero(input, dim=None):
    return _wrap(np.asarray(np.count_nonzero(input._data, axis=_axes(dim, input._data.ndim)),
                            dtype=np.int64))


def _median_index(x, axis, ignore_nan):
    """Index along ``axis`` of the lower median; a line with a NaN gives its first NaN (NaN
    propagates, as in PyTorch) unless ``ignore_nan`` (nanmedian: the median of the rest)."""
    order = np.argsort(x, axis=axis, kind="stable")  # NaNs sort last, in order
    nan = np.isnan(x) if x.dtype.kind == "f" else None
    if ignore_nan and nan is not None:
        k = np.maximum((x.shape[axis] - nan.sum(axis=axis, keepdims=True) - 1) // 2, 0)
        return np.take_along_axis(order, k, axis).squeeze(axis)
    idx = np.take(order, (x.shape[axis] - 1) // 2, axis=axis)
    if nan is not None:
        idx = np.where(nan.any(axis=axis), np.argmax(nan, axis=axis), idx)
    return idx


class _MedianAll(Function):
    """median() of all elements: the gradient is shared between the elements equal to the
    median (NaNs count as equal to a NaN median), as PyTorch does."""

    @staticmethod
    def forward(ctx, x, i):
        ctx.save_for_backward(x)
        ctx.i = i
        return np.asarray(x.reshape(-1)[i])

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        v = x.reshape(-1)[ctx.i]
        tie = (x == v) | (np.isnan(x) & np.isnan(v)) if x.dtype.kind == "f" else x == v
        return (g * tie / tie.sum()).astype(x.dtype, copy=False), None


def _median(input, dim, keepdim, ignore_nan, rt):
    x = input._data
    if dim is None:
        if x.size == 0:
            return _wrap(np.array(np.nan, x.dtype))
        return _MedianAll.apply(input, int(_median_index(x.reshape(-1), 0, ignore_nan)))
    axis = _wrap_dim(dim, x.ndim)
    if x.ndim == 0:
        from ember.ops.shape import clone

        return rt(clone(input), _wrap(np.zeros((), dtype=np.int64)))
    _check_nonempty(input, rt.__name__, (axis,))
    idx = _median_index(x, axis, ignore_nan)
    vals = _ExtremeDim.apply(input, axis, keepdim, idx)
    return rt(vals, _wrap(np.expand_dims(idx, axis) if keepdim else idx))


def median(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    if axis is not None or keepdims is not None:
        dim, keepdim = _numpy_names(dim, keepdim, axis, keepdims)
    return _median(input, dim, keepdim, False, return_types_median)


def nanmedian(input, dim=None, keepdim=False):
    return _median(input, dim, keepdim, True, return_types_nanmedian)


def _quantile(input, q, dim, keepdim, interpolation, ignore_nan, name):
    from ember.ops import elementwise as E
    from ember.ops.indexing import gather, sort
    from ember.ops.shape import movedim, reshape, unsqueeze

    if input._data.dtype.kind != "f":
        raise RuntimeError(f"{name}() input tensor must be either float or double dtype")
    qs = np.asarray(q._data if isinstance(q, Tensor) else q, np.float64)
    if qs.ndim > 1:
        raise RuntimeError(f"{name}() q must be a scalar or 1D tensor")
    if ((qs < 0) | (qs > 1)).any():
        raise RuntimeError(f"{name}() q must be in the range [0, 1] but got {qs.max()}"
                           if (qs > 1).any() else
                           f"{name}() q must be in the range [0, 1] but got {qs.min()}")
    if interpolation not in ("linear", "lower", "higher", "midpoint", "nearest"):
        raise RuntimeError(f"{name}() interpolation must be one of linear, lower, higher, "
                           f"midpoint or nearest. Got {interpolation}")
    nd = input._data.ndim
    x = reshape(input, -1) if dim is None else input
    axis = 0 if dim is None else _wrap_dim(dim, nd)
    v = sort(x, axis).values  # NaNs last
    n = v._data.shape[axis]
    nan = np.isnan(v._data).sum(axis=axis, keepdims=True)
    shape = [1] * v._data.ndim
    shape[axis] = qs.size
    # the rank of each quantile in each line; a line with a NaN (or only NaNs, for nanquantile)
    # takes its last element, a NaN
    cnt = n - nan if ignore_nan else np.full_like(nan, n)
    last = (nan > 0) if not ignore_nan else (cnt == 0)
    pos = np.where(last, n - 1, qs.reshape(shape) * np.maximum(cnt - 1, 0))
    if interpolation == "nearest":
        pos = np.round(pos)
    lo, hi = np.floor(pos).astype(np.int64), np.ceil(pos).astype(np.int64)
    vlo, vhi = gather(v, axis, _wrap(lo)), gather(v, axis, _wrap(hi))
    if interpolation in ("lower", "nearest"):
        out = vlo
    elif interpolation == "higher":
        out = vhi
    else:
        w = 0.5 if interpolation == "midpoint" else (pos - lo).astype(v._data.dtype)
        out = E.lerp(vlo, vhi, _wrap(np.asarray(w, v._data.dtype)))
    if qs.ndim:
        out = movedim(out, axis, 0)  # one quantile per q, first
    elif not keepdim or dim is None:
        out = reshape(out, [s for i, s in enumerate(out._data.shape) if i != axis])
    if keepdim:
        if dim is None:
            out = reshape(out, tuple(out._data.shape[:qs.ndim]) + (1,) * nd)
        elif qs.ndim:
            out = unsqueeze(out, axis + 1)
    elif qs.ndim and dim is not None:
        out = reshape(out, [s for i, s in enumerate(out._data.shape) if i != axis + 1])
    return out


def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear", out=None):
    """The q-th quantiles along dim (of all elements without dim), interpolated between the
    sorted values as ``interpolation`` says; a line holding a NaN gives NaN."""
    return _quantile(input, q, dim, keepdim, interpolation, False, "quantile")


def nanquantile(input, q, dim=None, keepdim=False, *, interpolation="linear", out=None):
    """quantile ignoring NaNs (NaN only where a line holds nothing else)."""
    return _quantile(input, q, dim, keepdim, interpolation, True, "nanquantile")


def mode(input, dim=-1, keepdim=False):
    if input._data.ndim == 0:
        return _on_1d(mode, input, dim)
    x = input._data
    axis = _wrap_dim(dim, x.ndim)
    _check_nonempty(input, "mode", (axis,))
    xm = np.moveaxis(x, axis, -1)
    flat = xm.reshape(-1, xm.shape[-1])
    idxs = []
    for row in flat:
        u, c = np.unique(row, return_counts=True)
        v = u[np.argmax(c)]
        idxs.append(np.nonzero(row == v)[0][-1])
    i = np.array(idxs, dtype=np.int64).reshape(xm.shape[:-1])
    v = _ExtremeDim.apply(input, axis, keepdim, i)  # the gradient goes to the indexed element
    return return_types_mode(v, _wrap(np.expand_dims(i, axis) if keepdim else i))


def diff(input, n=1, dim=-1):
    from ember.ops.elementwise import sub
    from ember.ops.shape import narrow

    out = input
    for _ in range(n):
        m = out.shape[dim]
        out = sub(narrow(out, dim, 1, m - 1), narrow(out, dim, 0, m - 1))
    return out
