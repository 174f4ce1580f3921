"""Indexing: ``__getitem__``/``__setitem__``, gather/scatter, masks, sort/topk, tril/triu."""

from __future__ import annotations

import collections
import numbers

import numpy as np

from ember.autograd.function import Function
from ember.backend import unbroadcast
from ember.tensor import Tensor, _bump, _scalar_name, _view_of, _wrap, _wrap_dim

__all__ = [
    "getitem", "setitem", "index_select", "gather", "scatter", "scatter_add", "scatter_reduce",
    "masked_fill", "masked_select", "masked_scatter", "nonzero", "argwhere", "topk", "sort",
    "argsort", "tril", "triu", "take", "take_along_dim", "index_add", "index_fill", "index_copy",
    "unique", "searchsorted", "bucketize", "kthvalue", "msort", "index_put", "put",
    "bincount", "isin",
]

_topk_t = collections.namedtuple("topk", ["values", "indices"])
_sort_t = collections.namedtuple("sort", ["values", "indices"])
_kth_t = collections.namedtuple("kthvalue", ["values", "indices"])
_ndarray = np.ndarray


def _convert_index(idx, shape):
    """Turn an index with Tensors/lists into a NumPy index; check bounds for a clear error."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    out = []
    basic = True
    dim = 0
    nspec = sum(1 for i in idx if i is not None and i is not Ellipsis and not (
        isinstance(i, (Tensor, np.ndarray)) and getattr(i, "dtype", None) in (np.bool_,)))
    for i in idx:
        if isinstance(i, Tensor):
            i = i._data
        if isinstance(i, (list, tuple)):
            i = np.asarray([x._data if isinstance(x, Tensor) else x for x in i]) if len(i) else (
                np.zeros(0, np.int64))  # x[[]]: an empty integer index, as in torch
        if isinstance(i, np.ndarray):
            basic = False
            if i.dtype == np.bool_ or i.dtype == np.uint8 and i.ndim:
                i = i.astype(bool)
                k = i.ndim
                if shape[dim:dim + k] != i.shape and i.ndim:
                    raise IndexError(
                        f"The shape of the mask {list(i.shape)} at index {dim} does not match the "
                        f"shape of the indexed tensor {list(shape[dim:dim + k])} at index {dim}"
                    )
                dim += k
            elif i.dtype.kind in "iu":
                if dim >= len(shape):
                    raise IndexError(f"too many indices for tensor of dimension {len(shape)}")
                n = shape[dim]
                if i.size and (i.max() >= n or i.min() < -n):
                    bad = int(i.max()) if i.max() >= n else int(i.min())
                    raise IndexError(
                        f"index {bad} is out of bounds for dimension {dim} with size {n}"
                    )
                dim += 1
            elif i.ndim == 0 and i.dtype.kind in "iu":
                i = int(i)
            else:
                raise IndexError(
                    f"tensors used as indices must be long, int, byte or bool tensors, got {i.dtype}"
                )
        elif isinstance(i, numbers.Integral) and not isinstance(i, bool):
            if dim >= len(shape):
                raise IndexError(f"too many indices for tensor of dimension {len(shape)}")
            n = shape[dim]
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for dimension {dim} with size {n}")
            i = int(i)
            dim += 1
        elif isinstance(i, slice):
            if i.step is not None and i.step <= 0:
                raise ValueError("step must be greater than zero")
            i = slice(*(int(v) if isinstance(v, Tensor) else v for v in (i.start, i.stop, i.step)))
            dim += 1
        elif i is Ellipsis:
            dim = len(shape) - (nspec - dim) if nspec <= len(shape) else dim
        elif i is None:
            pass
        elif isinstance(i, bool):
            basic = False
            i = np.asarray(i)
        else:
            raise IndexError(
                f"only integers, slices (`:`), ellipsis (`...`), None and long or byte tensors are "
                f"valid indices (got {type(i).__name__})"
            )
        out.append(i)
    if dim > len(shape):
        raise IndexError(
            f"too many indices for tensor of dimension {len(shape)}"
        )
    return tuple(out), basic


def _stride_order(x):
    """The axes of ``x`` from the largest stride down, or None where that is their order (a
    C-contiguous array, or a slice of one)."""
    order = sorted(range(x.ndim), key=lambda i: -x.strides[i])
    return None if order == list(range(x.ndim)) else order


def _zeros_like_layout(shape, order, dtype):
    """Zeros of ``shape`` laid out in memory in the axis ``order`` of ``_stride_order``."""
    if order is None:
        return np.zeros(shape, dtype)
    inverse = [0] * len(order)
    for i, axis in enumerate(order):
        inverse[axis] = i
    return np.zeros([shape[i] for i in order], dtype).transpose(inverse)


class GetItem(Function):
    @staticmethod
    def forward(ctx, x, idx, basic):
        # The gradient is laid out as x is (as zeros_like lays out): an index into a transposed
        # sequence (an LSTM's batch_first output, out[:, -1]) hands its gradient back to the
        # transpose as the contiguous array that the layer's backward reads without a copy.
        ctx.info = (x.shape, idx, basic, None if x.flags.c_contiguous else _stride_order(x))
        y = x[idx]
        return y

    @staticmethod
    def backward(ctx, g):
        shape, idx, basic, order = ctx.info
        out = _zeros_like_layout(shape, order, g.dtype)
        if basic:
            out[idx] = g
        else:
            np.add.at(out, idx, g)
        return out, None, None


def _split_int_index(index):
    """An advanced index with integers in it, as PyTorch reads it: the integers (and slices,
    None) first, as a basic view, then the tensors. NumPy counts an integer as an advanced
    index, which moves the result's dimensions: x[0, :, [1, 2]] is (2, 3) in NumPy, (3, 2) in
    torch. Returns (basic part, advanced part), or None where there is no integer."""
    if not any(type(i) is int or type(i) is _ndarray and i.ndim == 0 and i.dtype.kind in "iu"
               for i in index):
        return None
    first, second = [], []
    for i in index:
        if type(i) is _ndarray and i.ndim:
            first += [slice(None)] * (i.ndim if i.dtype == np.bool_ else 1)
            second.append(i)
        elif type(i) is int or type(i) is _ndarray and i.dtype.kind in "iu":
            first.append(int(i))
        elif type(i) is _ndarray:  # a 0-d bool (x[True]): a new axis, among the advanced part
            second.append(i)
        else:
            first.append(i)
            second.append(i if i is Ellipsis else slice(None))
    return tuple(first), tuple(second)


def getitem(input, idx):
    index, basic = _convert_index(idx, input._data.shape)
    if not basic:
        split = _split_int_index(index)
        if split is not None:
            return getitem(getitem(input, split[0]), split[1])
    if basic and Ellipsis not in index:
        index += (Ellipsis,)  # x[1, 2] is then a 0-d view (NumPy would copy out a scalar)
    if not input._rg:
        out = _wrap(np.asarray(input._data[index]))
    else:
        out = GetItem.apply(input, index, basic)
    return _view_of(input, out) if basic else out


class SetItem(Function):
    @staticmethod
    def forward(ctx, x, idx, v, basic):
        out = x.copy()
        out[idx] = v
        ctx.info = (idx, _shape(v), basic)
        return out

    @staticmethod
    def backward(ctx, g):
        idx, vshape, basic = ctx.info
        nx, _, nv, _ = ctx.needs_input_grad
        gx = gv = None
        if nx:
            gx = g.copy()
            gx[idx] = 0
        if nv and vshape is not None:
            gv = _value_grad(g, idx, vshape)
        return gx, None, gv, None


def _value_grad(g, idx, vshape):
    """The gradient of a value written at ``x[idx]``: g there, summed to the value's shape."""
    gsel = g[idx]
    if len(vshape) > gsel.ndim:  # a value with extra leading 1s: x[1] = v of (1, n)
        gsel = gsel.reshape((1,) * (len(vshape) - gsel.ndim) + gsel.shape)
    return unbroadcast(gsel, vshape)


def _shape(v):
    return v.shape if type(v) is _ndarray else None


def setitem(input, idx, value):
    index, basic = _convert_index(idx, input._data.shape)
    if not basic:
        split = _split_int_index(index)
        if split is not None:  # written through the basic view (torch's order of dimensions)
            view = getitem(input, split[0])
            setitem(view, split[1], value)
            return input
    if basic and Ellipsis not in index:
        index += (Ellipsis,)  # x[0, 0] = a 1-element tensor: NumPy takes a 0-d view, not a scalar
    if isinstance(value, Tensor):
        if value._data.dtype != input._data.dtype:
            value = value.to(input.dtype)
    from ember.autograd.grad_mode import _State

    if _State.enabled and (input._rg or (isinstance(value, Tensor) and value._rg)):
        res = SetItem.apply(input, index, value, basic)
        return input._inplace(res)
    try:
        input._data[index] = value._data if isinstance(value, Tensor) else value
    except ValueError as e:
        raise RuntimeError(f"shape mismatch in index assignment: {e}") from None
    _bump(input)
    return input


class IndexPutAccumulate(Function):
    """out = x, then values added at ``idx`` (repeated places add up: index_put accumulate)."""

    @staticmethod
    def forward(ctx, x, idx, v):
        out = x.copy()
        np.add.at(out, idx, np.broadcast_to(v, out[idx].shape))
        ctx.info = (idx, _shape(v))
        return out

    @staticmethod
    def backward(ctx, g):
        idx, vshape = ctx.info
        gv = None
        if ctx.needs_input_grad[2] and vshape is not None:
            gv = _value_grad(g, idx, vshape)
        return g, None, gv


def index_put(input, indices, values, accumulate=False):
    """``x[indices] = values`` (or ``+=`` with repeats adding up) on a copy of x."""
    if not isinstance(indices, (tuple, list)):
        raise TypeError("index_put(): argument 'indices' must be a tuple of Tensors")
    indices = tuple(indices)
    if not isinstance(values, Tensor):
        values = _wrap(np.asarray(values, dtype=input._data.dtype))
    elif values._data.dtype != input._data.dtype:
        raise RuntimeError(
            f"Index put requires the source and destination dtypes match, got "
            f"{_scalar_name(input._data.dtype)} for the destination and "
            f"{_scalar_name(values._data.dtype)} for the source.")
    from ember.ops.shape import clone

    if not accumulate:
        out = clone(input)
        setitem(out, indices, values)
        return out
    index, _ = _convert_index(indices, input._data.shape)
    return IndexPutAccumulate.apply(input, index, values)


def put(input, index, source, accumulate=False):
    """index_put on the flattened tensor (``torch.put``)."""
    from ember.ops.shape import reshape

    flat = index_put(reshape(input, -1), (reshape(index, -1),), reshape(source, -1), accumulate)
    return reshape(flat, input._data.shape)


def _fill_diagonal(input, fill_value, wrap=False):
    x = input._data
    if x.ndim < 2:
        raise RuntimeError("dimensions must larger than 1")
    if x.ndim > 2 and len(set(x.shape)) != 1:
        raise RuntimeError("all dimensions of input must be of equal length")
    m = np.zeros(x.shape, bool)
    np.fill_diagonal(m, True, wrap=wrap)
    return masked_fill(input, _wrap(m), fill_value)


def bincount(input, weights=None, minlength=0):
    """How often each value 0..max occurs in a 1-D non-negative integer tensor (summed weights
    when given: float32 weights give float32, others float64, as in PyTorch)."""
    x = input._data
    if x.ndim != 1 or x.dtype.kind not in "iu" or x.size and x.min() < 0:
        if x.dtype.kind == "f":
            raise NotImplementedError(
                f'"bincount_cpu" not implemented for \'{_scalar_name(x.dtype)}\'')
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    if weights is None:
        return _wrap(np.bincount(x, minlength=minlength).astype(np.int64))
    w = weights._data if isinstance(weights, Tensor) else np.asarray(weights)
    dt = np.float32 if w.dtype == np.float32 else np.float64
    return _wrap(np.bincount(x, weights=w, minlength=minlength).astype(dt))


def isin(elements, test_elements, *, assume_unique=False, invert=False):
    """Whether each of ``elements`` is among ``test_elements`` (either may be a number)."""
    e = elements._data if isinstance(elements, Tensor) else np.asarray(elements)
    t = test_elements._data if isinstance(test_elements, Tensor) else np.asarray(test_elements)
    return _wrap(np.asarray(np.isin(e, t, assume_unique=assume_unique, invert=invert)))


class IndexSelect(Function):
    @staticmethod
    def forward(ctx, x, axis, idx):
        ctx.info = (x.shape, axis, idx)
        return np.take(x, idx, axis=axis)

    @staticmethod
    def backward(ctx, g):
        shape, axis, idx = ctx.info
        out = np.zeros(shape, dtype=g.dtype)
        moved = np.moveaxis(out, axis, 0)
        np.add.at(moved, idx, np.moveaxis(g, axis, 0))
        return out, None, None


def _index_arr(index, name):
    if not isinstance(index, Tensor):
        index = _wrap(np.asarray(index))
    a = index._data
    if a.dtype.kind not in "iu":
        raise RuntimeError(f"{name}(): Expected dtype int32/int64 for index, got {index.dtype}")
    return a


def index_select(input, dim, index):
    axis = _wrap_dim(dim, input._data.ndim)
    idx = _index_arr(index, "index_select")
    if idx.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    n = input._data.shape[axis] if input._data.ndim else 1
    if idx.size and (idx.max() >= n or idx.min() < 0):
        raise IndexError(
            f"index out of range in self: index {int(idx.max() if idx.max() >= n else idx.min())} "
            f"for dimension {axis} with size {n}"
        )
    return IndexSelect.apply(input, axis, idx.reshape(-1))


def take(input, index):
    from ember.ops.shape import reshape

    idx = _index_arr(index, "take")
    flat = reshape(input, -1)
    return reshape(index_select(flat, 0, _wrap(idx.reshape(-1))), idx.shape)


class Gather(Function):
    @staticmethod
    def forward(ctx, x, axis, idx):
        ctx.info = (x.shape, axis, idx)
        return np.take_along_axis(x, idx, axis)

    @staticmethod
    def backward(ctx, g):
        shape, axis, idx = ctx.info
        out = np.zeros(shape, dtype=g.dtype)
        _scatter_add_np(out, axis, idx, g)
        return out, None, None


def _scatter_add_np(out, axis, idx, src):
    """out[..., idx[i], ...] += src[i] along ``axis`` (duplicates accumulate)."""
    full = list(np.indices(idx.shape, sparse=True))
    full[axis] = idx
    np.add.at(out, tuple(full), src[tuple(slice(0, s) for s in idx.shape)])


def _check_gather(input, axis, idx, name):
    x = input._data
    if idx.ndim != x.ndim:
        raise RuntimeError(
            f"Index tensor must have the same number of dimensions as input tensor "
            f"({idx.ndim} vs {x.ndim}) in {name}"
        )
    n = x.shape[axis]
    if idx.size and (idx.max() >= n or idx.min() < 0):
        raise RuntimeError(
            f"index {int(idx.max() if idx.max() >= n else idx.min())} is out of bounds for "
            f"dimension {axis} with size {n}"
        )


def gather(input, dim, index, *, sparse_grad=False):
    axis = _wrap_dim(dim, input._data.ndim)
    idx = _index_arr(index, "gather")
    _check_gather(input, axis, idx, "gather")
    x = input._data
    if any(idx.shape[d] > x.shape[d] for d in range(x.ndim) if d != axis):
        return Gather.apply(_SliceTo(input, idx.shape, axis), axis, idx)
    if idx.shape != x.shape:
        # take_along_axis needs matching non-axis sizes: view only the used part of input.
        sl = tuple(slice(0, idx.shape[d]) if d != axis else slice(None) for d in range(x.ndim))
        from ember.ops.indexing import getitem as _gi

        return Gather.apply(_gi(input, sl), axis, idx)
    return Gather.apply(input, axis, idx)


def _SliceTo(input, shape, axis):
    raise RuntimeError(
        f"Size does not match at some dimension: index {list(shape)} is larger than input "
        f"{list(input.shape)} outside dimension {axis}"
    )


def take_along_dim(input, indices, dim=None):
    """``gather`` along ``dim`` with input and indices broadcast against each other in the
    other dimensions; without ``dim`` both are flattened (as in PyTorch)."""
    from ember.ops.shape import expand, reshape

    if dim is None:
        return take(input, reshape(indices, -1))
    x, idx = input._data, _index_arr(indices, "take_along_dim")
    if idx.ndim != x.ndim:
        raise RuntimeError(
            f"torch.take_along_dim(): input and indices should have the same number of "
            f"dimensions, but got {x.ndim} dimensions for input, and {idx.ndim} dimensions for "
            f"indices")
    axis = _wrap_dim(dim, x.ndim)
    other = [a.shape[:axis] + (1,) + a.shape[axis + 1:] for a in (x, idx)]
    try:
        shape = list(np.broadcast_shapes(*other))
    except ValueError:
        from ember.ops.elementwise import broadcast_mismatch

        raise RuntimeError(broadcast_mismatch(*other)) from None
    shape[axis] = x.shape[axis]
    input = expand(input, *shape) if tuple(shape) != x.shape else input
    shape[axis] = idx.shape[axis]
    return gather(input, axis, _wrap(np.ascontiguousarray(np.broadcast_to(idx, shape))))


class Scatter(Function):
    @staticmethod
    def forward(ctx, x, axis, idx, src, reduce):
        out = x.copy()
        full = list(np.indices(idx.shape, sparse=True))
        full[axis] = idx
        full = tuple(full)
        s = src[tuple(slice(0, k) for k in idx.shape)] if type(src) is _ndarray else src
        if reduce == "add":
            np.add.at(out, full, s)
        elif reduce == "multiply":
            np.multiply.at(out, full, s)
        else:
            out[full] = s
        ctx.info = (axis, full, reduce, _shape(src))
        return out

    @staticmethod
    def backward(ctx, g):
        axis, full, reduce, sshape = ctx.info
        nx, _, _, ns, _ = ctx.needs_input_grad
        gx = gs = None
        if reduce == "multiply":
            raise RuntimeError("scatter with reduce='multiply' is not differentiable in ember")
        if nx:
            gx = g.copy()
            if reduce is None:
                gx[full] = 0
        if ns and sshape is not None:
            gs = np.zeros(sshape, dtype=g.dtype)
            sub = tuple(slice(0, k) for k in full[axis].shape)
            gs[sub] = g[full]
        return gx, None, None, gs, None


def scatter(input, dim, index, src=None, *, value=None, reduce=None):
    axis = _wrap_dim(dim, input._data.ndim)
    idx = _index_arr(index, "scatter")
    if src is None:
        src = value
    if isinstance(src, Tensor) and src._data.dtype != input._data.dtype:
        raise RuntimeError(
            f"scatter(): Expected self.dtype to be equal to src.dtype ({input.dtype} vs {src.dtype})"
        )
    _check_scatter_index(input._data, axis, idx, src)
    return Scatter.apply(input, axis, idx, src, reduce)


def _check_scatter_index(x, axis, idx, src):
    _check_scatter_shapes(x, axis, idx, src)
    n = x.shape[axis]
    if idx.size and (idx.max() >= n or idx.min() < 0):
        raise RuntimeError(
            f"index {int(idx.max() if idx.max() >= n else idx.min())} is out of bounds for "
            f"dimension {axis} with size {n}"
        )


def _check_scatter_shapes(x, axis, idx, src):
    """As PyTorch: index has self's number of dimensions, and is no larger than self (apart
    from ``axis``) nor than a tensor src anywhere (src is read only where index reaches)."""
    if idx.ndim != x.ndim and idx.size:
        raise RuntimeError("Index tensor must have the same number of dimensions as self tensor")
    s = src._data.shape if isinstance(src, Tensor) else None
    if (any(idx.shape[d] > x.shape[d] for d in range(x.ndim) if d != axis)
            or s is not None and (len(s) != idx.ndim or any(map(int.__gt__, idx.shape, s)))):
        raise RuntimeError(
            f"Expected index {list(idx.shape)} to be no larger than self {list(x.shape)} apart "
            f"from dimension {axis}" + ("" if s is None else
                                          f" and to be no larger size than src {list(s)}"))


def scatter_add(input, dim, index, src):
    return scatter(input, dim, index, src, reduce="add")


class ScatterReduce(Function):
    """scatter_reduce for prod/mean/amax/amin (sum without include_self too); the gradient of
    amax/amin is shared evenly between the elements equal to the result, as in PyTorch."""

    @staticmethod
    def forward(ctx, x, src, axis, idx, reduce, include_self):
        full = list(np.indices(idx.shape, sparse=True))
        full[axis] = idx
        full = tuple(full)
        s = src[tuple(slice(0, k) for k in idx.shape)]
        out = x.copy()
        hit = np.zeros(x.shape, bool)
        hit[full] = True
        if reduce == "mean":
            cnt = np.where(hit & (not include_self), 0, 1).astype(x.dtype)  # the terms
            if not include_self:
                out[full] = 0
            np.add.at(out, full, s)
            np.add.at(cnt, full, 1)
            out = out // cnt if x.dtype.kind in "biu" else (out / cnt).astype(x.dtype)
        else:
            ufunc = {"sum": np.add, "prod": np.multiply, "amax": np.maximum,
                     "amin": np.minimum}[reduce]
            if not include_self:  # the scattered-to places start from the identity
                out[full] = ufunc.identity if ufunc.identity is not None else s
            ufunc.at(out, full, s)
            cnt = None
        ctx.save_for_backward(x, s, out)
        ctx.info = (full, reduce, include_self, hit, cnt, src.shape)
        return out

    @staticmethod
    def backward(ctx, g):
        x, s, y = ctx.saved_tensors
        full, reduce, include_self, hit, cnt, sshape = ctx.info
        keep_x = ~hit | include_self  # the places where x took part in the result
        if reduce == "sum":
            gx, gs = np.where(keep_x, g, 0), g[full]
        elif reduce == "mean":
            gx, gs = np.where(keep_x, g / cnt, 0), (g / cnt)[full]
        elif reduce == "prod":
            if (x[hit & keep_x] == 0).any() or (s == 0).any():
                raise RuntimeError("scatter_reduce(reduce='prod') backward through zeros is "
                                   "not supported in ember")
            gx = np.where(hit & keep_x, g * y / np.where(x == 0, 1, x), np.where(keep_x, g, 0))
            gs = (g * y)[full] / s
        else:  # amax / amin: shared between the elements equal to the result
            mx = x == y  # PyTorch counts an equal x even where include_self=False left it out
            ms = s == y[full]
            n = mx.astype(g.dtype)
            np.add.at(n, full, ms)
            share = g / np.maximum(n, 1)
            gx = np.where(hit, np.where(mx & keep_x, share, 0), g)
            gs = np.where(ms, share[full], 0)
        gsrc = np.zeros(sshape, g.dtype)
        gsrc[tuple(slice(0, k) for k in s.shape)] = gs
        return gx.astype(g.dtype, copy=False), gsrc, None, None, None, None


def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):
    if reduce == "sum" and include_self:
        return scatter_add(input, dim, index, src)
    if reduce not in ("sum", "prod", "mean", "amax", "amin"):
        raise RuntimeError(
            f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")
    axis = _wrap_dim(dim, input._data.ndim)
    idx = _index_arr(index, "scatter_reduce")
    _check_scatter_index(input._data, axis, idx, src)
    return ScatterReduce.apply(input, src, axis, idx, reduce, include_self)


class MaskedFill(Function):
    @staticmethod
    def forward(ctx, x, mask, value):
        ctx.info = (mask, x.shape)
        return np.where(mask, np.asarray(value, dtype=x.dtype), x)

    @staticmethod
    def backward(ctx, g):
        mask, shape = ctx.info
        nx = ctx.needs_input_grad[0]
        nv = ctx.needs_input_grad[2]
        gx = unbroadcast(np.where(mask, 0, g), shape) if nx else None
        gv = np.asarray(np.where(mask, g, 0).sum(), dtype=g.dtype) if nv else None
        return gx, None, gv


def _mask_arr(mask, name):
    m = mask._data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        if m.dtype == np.uint8:
            return m.astype(bool)
        raise RuntimeError(f"{name} only supports boolean masks, but got mask with dtype {m.dtype}")
    return m


def masked_fill(input, mask, value):
    m = _mask_arr(mask, "masked_fill_")
    try:
        np.broadcast_shapes(m.shape, input._data.shape)
    except ValueError:
        raise RuntimeError(
            f"The size of tensor a ({input._data.shape[-1] if input._data.ndim else 1}) must match "
            f"the size of tensor b ({m.shape[-1] if m.ndim else 1}); mask shape {list(m.shape)} "
            f"cannot broadcast to input shape {list(input._data.shape)}"
        ) from None
    if isinstance(value, Tensor):
        if value._data.ndim:
            raise RuntimeError(
                f"masked_fill_ only supports a 0-dimensional value tensor, but got tensor with "
                f"{value._data.ndim} dimension(s)."
            )
        if value._rg:
            return MaskedFill.apply(input, m, value.to(input.dtype))
        value = value.item()
    if m.shape != input._data.shape and np.broadcast_shapes(m.shape, input._data.shape) != input._data.shape:
        from ember.ops.shape import expand

        input = expand(input, np.broadcast_shapes(m.shape, input._data.shape))
    return MaskedFill.apply(input, m, value)


def masked_select(input, mask):
    m = _mask_arr(mask, "masked_select")
    shape = np.broadcast_shapes(m.shape, input._data.shape)
    from ember.ops.shape import expand

    x = expand(input, shape) if input._data.shape != shape else input
    return getitem(x, _wrap(np.broadcast_to(m, shape)))


class MaskedScatter(Function):
    @staticmethod
    def forward(ctx, x, m, source):
        out = x.copy()
        n = int(m.sum())
        out[m] = source.reshape(-1)[:n]
        ctx.info = (m, n, source.shape)
        return out

    @staticmethod
    def backward(ctx, g):
        m, n, sshape = ctx.info
        gs = np.zeros(int(np.prod(sshape)), g.dtype)
        gs[:n] = g[m]  # the i-th True place took the i-th source element
        return np.where(m, g.dtype.type(0), g), None, gs.reshape(sshape)


def masked_scatter(input, mask, source):
    m = np.broadcast_to(_mask_arr(mask, "masked_scatter"), input._data.shape)
    if source._data.size < m.sum():
        raise RuntimeError("Number of elements of source < number of ones in mask")
    return MaskedScatter.apply(input, m, source)


def nonzero(input, *, as_tuple=False):
    nz = np.nonzero(input._data)
    if as_tuple:
        if input._data.ndim == 0:
            return (_wrap(np.zeros(int(bool(input._data)), dtype=np.int64)),)
        return tuple(_wrap(a.astype(np.int64)) for a in nz)
    return _wrap(np.stack(nz, axis=1).astype(np.int64) if nz else
                 np.zeros((int(bool(input._data)), 0), dtype=np.int64))


def argwhere(input):
    return nonzero(input)


def _sorted_idx(x, axis, descending, stable=True):
    if descending:
        # Stable descending: sort the negated order of ranks so ties keep original order.
        if x.dtype.kind == "b":
            x = x.astype(np.int8)
        idx = np.flip(np.argsort(np.flip(x, axis), axis=axis, kind="stable"), axis)
        idx = x.shape[axis] - 1 - idx
        return idx
    return np.argsort(x, axis=axis, kind="stable")


def sort(input, dim=-1, descending=False, stable=False):
    x = input._data
    if x.ndim == 0:
        return _sort_t(input, _wrap(np.zeros((), dtype=np.int64)))
    axis = _wrap_dim(dim, x.ndim)
    idx = _sorted_idx(x, axis, descending)
    return _sort_t(gather(input, axis, _wrap(idx)), _wrap(idx.astype(np.int64)))


def msort(input):
    return sort(input, 0).values


def argsort(input, dim=-1, descending=False, stable=False):
    x = input._data
    axis = _wrap_dim(dim, x.ndim)
    return _wrap(_sorted_idx(x, axis, descending).astype(np.int64))


def topk(input, k, dim=-1, largest=True, sorted=True):
    x = input._data
    axis = _wrap_dim(dim, x.ndim)
    n = x.shape[axis] if x.ndim else 1
    if not 0 <= k <= n:
        raise RuntimeError(f"selected index k out of range: k={k} but dimension {axis} has size {n}")
    idx = _sorted_idx(x, axis, largest)
    idx = np.take(idx, np.arange(k), axis=axis)
    return _topk_t(gather(input, axis, _wrap(idx)), _wrap(idx.astype(np.int64)))


def kthvalue(input, k, dim=-1, keepdim=False):
    x = input._data
    axis = _wrap_dim(dim, x.ndim)
    if not 1 <= k <= (x.shape[axis] if x.ndim else 1):
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {axis}")
    idx = np.take(np.argsort(x, axis=axis, kind="stable"), [k - 1], axis=axis)
    v = gather(input, axis, _wrap(idx))
    if not keepdim:
        v = v.squeeze(axis)
        idx = np.squeeze(idx, axis)
    return _kth_t(v, _wrap(idx.astype(np.int64)))


class _Tri(Function):
    @staticmethod
    def forward(ctx, x, k, upper):
        ctx.info = (k, upper)
        return np.triu(x, k) if upper else np.tril(x, k)

    @staticmethod
    def backward(ctx, g):
        k, upper = ctx.info
        return (np.triu(g, k) if upper else np.tril(g, k)), None, None


def tril(input, diagonal=0):
    if input._data.ndim < 2:
        raise RuntimeError("tril: input tensor must have at least 2 dimensions")
    return _Tri.apply(input, diagonal, False)


def triu(input, diagonal=0):
    if input._data.ndim < 2:
        raise RuntimeError("triu: input tensor must have at least 2 dimensions")
    return _Tri.apply(input, diagonal, True)


def _check_index_source(input, axis, idx, source, name):
    """index_add/index_copy: a vector index, one per source slice along ``axis``, and source
    shaped as input apart from ``axis`` (PyTorch's errors)."""
    if idx.ndim > 1:
        raise IndexError(f"{name}(): Index is supposed to be a vector, but got dim: {idx.ndim} "
                         f"with type: Long and size: {list(idx.shape)}")
    x, s = input._data.shape, source._data.shape
    if len(s) != len(x) or any(a != b for d, (a, b) in enumerate(zip(x, s)) if d != axis):
        raise RuntimeError(
            "source tensor shape must match self tensor shape, excluding the specified "
            f"dimension. Got self.shape = {list(x)} source.shape = {list(s)}")
    if idx.size != s[axis] and name == "index_copy_":
        raise IndexError(f"index_copy_(): Number of indices ({idx.size}) should be equal to "
                         f"source.size(dim) ({s[axis]})")
    if idx.size != s[axis]:
        raise RuntimeError(f"{name}(): Number of indices ({idx.size}) should be equal to "
                           f"source.size(dim): ({s[axis]}), for dim: {axis}")


def index_add(input, dim, index, source, *, alpha=1):
    from ember.ops.elementwise import mul

    axis = _wrap_dim(dim, input._data.ndim)
    idx = _index_arr(index, "index_add")
    _check_index_source(input, axis, idx, source, "index_add_")
    shape = [1] * input._data.ndim
    shape[axis] = -1
    full_idx = np.broadcast_to(idx.reshape(shape), source._data.shape)
    src = mul(source, alpha) if alpha != 1 else source
    return scatter(input, axis, _wrap(np.ascontiguousarray(full_idx)), src, reduce="add")


def index_fill(input, dim, index, value):
    axis = _wrap_dim(dim, input._data.ndim)
    idx = _index_arr(index, "index_fill")
    m = np.zeros(input._data.shape[axis], dtype=bool)
    m[idx] = True
    shape = [1] * input._data.ndim
    shape[axis] = -1
    return masked_fill(input, _wrap(m.reshape(shape)), value)


def index_copy(input, dim, index, source):
    axis = _wrap_dim(dim, input._data.ndim)
    idx = _index_arr(index, "index_copy")
    _check_index_source(input, axis, idx, source, "index_copy_")
    shape = [1] * input._data.ndim
    shape[axis] = -1
    full_idx = np.broadcast_to(idx.reshape(shape), source._data.shape)
    return scatter(input, axis, _wrap(np.ascontiguousarray(full_idx)), source)


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    x = input._data
    res = np.unique(x if dim is None else x, return_inverse=return_inverse,
                    return_counts=return_counts, axis=dim)
    if not isinstance(res, tuple):
        return _wrap(res)
    out = [_wrap(res[0])]
    k = 1
    if return_inverse:
        out.append(_wrap(res[k].reshape(x.shape if dim is None else -1).astype(np.int64)))
        k += 1
    if return_counts:
        out.append(_wrap(res[k].astype(np.int64)))
    return tuple(out)


def searchsorted(sorted_sequence, values, *, out_int32=False, right=False, side=None, sorter=None):
    s = sorted_sequence._data
    v = values._data if isinstance(values, Tensor) else np.asarray(values)
    side = side or ("right" if right else "left")
    if s.ndim == 1:
        r = np.searchsorted(s, v, side=side)
    else:
        r = np.stack([np.searchsorted(a, b, side=side) for a, b in zip(s.reshape(-1, s.shape[-1]),
                      v.reshape(-1, v.shape[-1]))]).reshape(v.shape)
    return _wrap(np.asarray(r).astype(np.int32 if out_int32 else np.int64))


def bucketize(input, boundaries, *, out_int32=False, right=False):
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)
