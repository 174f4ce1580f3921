"""Shape ops: views, permutations, joins and splits. Views share memory where NumPy's do."""

from __future__ import annotations

import math
import numbers

import numpy as np

from ember.autograd.function import Function
from ember.backend import unbroadcast
from ember.tensor import Tensor, _view_of, _wrap, _wrap_dim

__all__ = [
    "reshape", "view", "t", "flatten", "unflatten", "permute", "transpose", "swapaxes", "swapdims",
    "movedim", "moveaxis", "squeeze", "unsqueeze", "expand", "expand_as", "broadcast_to", "repeat",
    "tile", "flip", "fliplr", "flipud", "roll", "cat", "concat", "concatenate", "stack", "hstack",
    "vstack", "split", "chunk", "unbind", "narrow", "contiguous", "clone", "view_as", "reshape_as",
    "atleast_1d", "atleast_2d", "broadcast_tensors", "repeat_interleave", "ravel", "dsplit",
    "tensor_split", "column_stack", "meshgrid", "rot90", "select", "hsplit", "vsplit",
    "broadcast_shapes",
]


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.in_shape), None


def _resolve_shape(x, shape, what):
    n = x._data.size
    neg = [i for i, s in enumerate(shape) if s == -1]
    if len(neg) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known = 1
    for s in shape:
        if s != -1:
            if s < 0:
                raise RuntimeError(f"invalid shape dimension {s}")
            known *= s
    if neg:
        if known == 0 or n % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {n}")
        shape = tuple(n // known if s == -1 else s for s in shape)
    elif known != n:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {n}")
    return shape


def reshape(input, *shape):
    shape = _resolve_shape(input, _shape_arg(shape), "reshape")
    if shape == input._data.shape and not input._rg:
        return _view_of(input, _wrap(input._data))
    return _reshaped(input, Reshape.apply(input, shape))


def _reshaped(input, out):
    # reshape is a view when NumPy could reshape without copying (as in PyTorch).
    if np.may_share_memory(out._data, input._data):
        _view_of(input, out)
    return out


def view(input, *shape):
    if len(shape) == 1 and not isinstance(shape[0], (tuple, list, numbers.Integral)):
        from ember.ops.elementwise import cast

        return cast(input, shape[0])
    shape = _resolve_shape(input, _shape_arg(shape), "view")
    if not input._data.flags.c_contiguous and input._data.size > 1:
        try:
            arr = input._data.view()
            arr.shape = shape
        except AttributeError:
            raise RuntimeError(
                "view size is not compatible with input tensor's size and stride (at least one "
                "dimension spans across two contiguous subspaces). Use .reshape(...) instead."
            ) from None
    return _view_of(input, Reshape.apply(input, shape))


def view_as(input, other):
    return view(input, other.shape)


def reshape_as(input, other):
    return reshape(input, other.shape)


def flatten(input, start_dim=0, end_dim=-1):
    nd = input._data.ndim
    if nd == 0:
        return reshape(input, 1)
    s, e = _wrap_dim(start_dim, nd), _wrap_dim(end_dim, nd)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    sh = input._data.shape
    new = sh[:s] + (math.prod(sh[s:e + 1]),) + sh[e + 1:]
    return _reshaped(input, Reshape.apply(input, new))


def ravel(input):
    return reshape(input, -1)


def unflatten(input, dim, sizes):
    nd = input._data.ndim
    d = _wrap_dim(dim, nd)
    sh = input._data.shape
    sizes = tuple(sizes)
    if -1 in sizes:
        known = int(np.prod([s for s in sizes if s != -1]))
        sizes = tuple(sh[d] // known if s == -1 else s for s in sizes)
    if int(np.prod(sizes)) != sh[d]:
        raise RuntimeError(
            f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {dim} "
            f"({sh[d]}) in the input tensor"
        )
    return _reshaped(input, Reshape.apply(input, sh[:d] + sizes + sh[d + 1:]))


class Permute(Function):
    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return x.transpose(axes)

    @staticmethod
    def backward(ctx, g):
        return g.transpose(np.argsort(ctx.axes)), None


def permute(input, *dims):
    dims = _shape_arg(dims)
    nd = input._data.ndim
    if len(dims) != nd:
        raise RuntimeError(
            f"permute(sparse_coo): number of dimensions in the tensor input does not match the "
            f"length of the desired ordering of dimensions i.e. input.dim() = {nd} is not equal "
            f"to len(dims) = {len(dims)}"
        )
    axes = tuple(_wrap_dim(d, nd) for d in dims)
    if len(set(axes)) != nd:
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return _view_of(input, Permute.apply(input, axes))


def transpose(input, dim0, dim1):
    nd = input._data.ndim
    if nd == 0:
        return input
    a, b = _wrap_dim(dim0, nd), _wrap_dim(dim1, nd)
    axes = list(range(nd))
    axes[a], axes[b] = axes[b], axes[a]
    return _view_of(input, Permute.apply(input, tuple(axes)))


swapaxes = swapdims = transpose


def t(input):
    nd = input._data.ndim
    if nd > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {nd}D")
    return input if nd < 2 else _view_of(input, Permute.apply(input, (1, 0)))


def movedim(input, source, destination):
    nd = input._data.ndim
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    src = [_wrap_dim(s, nd) for s in src]
    dst = [_wrap_dim(d, nd) for d in dst]
    order = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return _view_of(input, Permute.apply(input, tuple(order)))


moveaxis = movedim


def squeeze(input, dim=None):
    sh = input._data.shape
    if dim is None:
        new = tuple(s for s in sh if s != 1)
    else:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        dims = {_wrap_dim(d, len(sh)) for d in dims}
        new = tuple(s for i, s in enumerate(sh) if not (i in dims and s == 1))
    return _view_of(input, Reshape.apply(input, new))


def unsqueeze(input, dim):
    sh = input._data.shape
    d = _wrap_dim(dim, len(sh) + 1)
    return _view_of(input, Reshape.apply(input, sh[:d] + (1,) + sh[d:]))


class Expand(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        return np.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.in_shape), None


def expand(input, *sizes):
    sizes = _shape_arg(sizes)
    sh = input._data.shape
    if len(sizes) < len(sh):
        raise RuntimeError(
            f"expand(torch.FloatTensor{{{list(sh)}}}, size=[{', '.join(map(str, sizes))}]): the "
            f"number of sizes provided ({len(sizes)}) must be greater or equal to the number of "
            f"dimensions in the tensor ({len(sh)})"
        )
    lead = len(sizes) - len(sh)
    new = []
    for i, s in enumerate(sizes):
        old = sh[i - lead] if i >= lead else 1
        if s == -1:
            if i < lead:
                raise RuntimeError("expand: -1 is not allowed in a leading, non-existing dimension")
            s = old
        elif old != 1 and old != s:
            raise RuntimeError(
                f"The expanded size of the tensor ({s}) must match the existing size ({old}) at "
                f"non-singleton dimension {i}.  Target sizes: {list(sizes)}.  Tensor sizes: {list(sh)}"
            )
        new.append(s)
    return _view_of(input, Expand.apply(input, tuple(new)))


def expand_as(input, other):
    return expand(input, other.shape)


def broadcast_to(input, size):
    return expand(input, size)


def broadcast_shapes(*shapes):
    """The shape that tensors of these shapes broadcast to (``torch.Size``-like tuple)."""
    from ember.tensor import Size

    try:
        return Size(np.broadcast_shapes(*[(s,) if isinstance(s, int) else tuple(s)
                                          for s in shapes]))
    except ValueError:
        raise RuntimeError(f"Shape mismatch: objects cannot be broadcast to a single shape: "
                           f"{list(map(list, shapes))}") from None


def broadcast_tensors(*tensors):
    shape = np.broadcast_shapes(*[t._data.shape for t in tensors])
    return tuple(expand(t, shape) for t in tensors)


class Tile(Function):
    @staticmethod
    def forward(ctx, x, reps):
        ctx.in_shape = x.shape
        ctx.reps = reps
        return np.tile(x, reps)

    @staticmethod
    def backward(ctx, g):
        sh = ctx.in_shape
        reps = ctx.reps
        full = (1,) * (len(reps) - len(sh)) + sh
        inter = []
        for r, s in zip(reps, full):
            inter += [r, s]
        g = g.reshape(inter).sum(axis=tuple(range(0, 2 * len(reps), 2)))
        return g.reshape(sh), None


def repeat(input, *sizes):
    sizes = _shape_arg(sizes)
    if len(sizes) < input._data.ndim:
        raise RuntimeError(
            "Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor"
        )
    return Tile.apply(input, sizes)


def tile(input, dims):
    dims = tuple(dims)
    dims = (1,) * (input._data.ndim - len(dims)) + dims
    return Tile.apply(input, dims)


class Flip(Function):
    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return np.flip(x, axes).copy()  # PyTorch's flip copies; a NumPy view would alias x

    @staticmethod
    def backward(ctx, g):
        return np.flip(g, ctx.axes), None


def flip(input, dims):
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    return Flip.apply(input, tuple(_wrap_dim(d, input._data.ndim) for d in dims))


def fliplr(input):
    return flip(input, (1,))


def flipud(input):
    return flip(input, (0,))


def rot90(input, k=1, dims=(0, 1)):
    k %= 4
    if k == 0:
        return input
    if k == 2:
        return flip(input, dims)
    if k == 1:
        return transpose(flip(input, (dims[1],)), dims[0], dims[1])
    return flip(transpose(input, dims[0], dims[1]), (dims[1],))


class Roll(Function):
    @staticmethod
    def forward(ctx, x, shifts, axes):
        ctx.sa = (shifts, axes)
        return np.roll(x, shifts, axes)

    @staticmethod
    def backward(ctx, g):
        shifts, axes = ctx.sa
        neg = -shifts if isinstance(shifts, int) else tuple(-s for s in shifts)
        return np.roll(g, neg, axes), None, None


def roll(input, shifts, dims=None):
    return Roll.apply(input, shifts if isinstance(shifts, int) else tuple(shifts),
                      dims if dims is None or isinstance(dims, int) else tuple(dims))


class Cat(Function):
    @staticmethod
    def forward(ctx, axis, *xs):
        ctx.axis = axis
        ctx.sizes = [x.shape[axis] for x in xs]
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx, g):
        idx = np.cumsum(ctx.sizes)[:-1]
        return (None,) + tuple(np.split(g, idx, axis=ctx.axis))


def _check_tensors(tensors, fn):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError(f"{fn}(): expected a non-empty list of Tensors")
    for i, x in enumerate(tensors):
        if not isinstance(x, Tensor):
            raise TypeError(
                f"{fn}(): argument 'tensors' must be tuple of Tensors, not {type(x).__name__} "
                f"(element {i})"
            )
    return tensors


def cat(tensors, dim=0, *, out=None, axis=None):
    if axis is not None:  # NumPy's name, which torch accepts
        dim = axis
    tensors = _check_tensors(tensors, "cat")
    from ember.dtypes import result_type
    from ember.ops.elementwise import cast

    d = result_type(*tensors)
    tensors = [x if x._data.dtype == d.np else cast(x, d) for x in tensors]
    # PyTorch skips 1-D empty tensors in cat.
    kept = [x for x in tensors if not (x._data.ndim == 1 and x._data.size == 0)] or tensors[:1]
    ref = kept[0]._data
    axis = _wrap_dim(dim, ref.ndim)
    for i, x in enumerate(kept):
        s = x._data.shape
        if len(s) != ref.ndim:
            raise RuntimeError(
                f"Tensors must have same number of dimensions: got {ref.ndim} and {len(s)}"
            )
        for j in range(ref.ndim):
            if j != axis and s[j] != ref.shape[j]:
                raise RuntimeError(
                    f"Sizes of tensors must match except in dimension {axis}. Expected size "
                    f"{ref.shape[j]} but got size {s[j]} for tensor number {i} in the list."
                )
    return Cat.apply(axis, *kept)


concat = concatenate = cat


def stack(tensors, dim=0, *, out=None, axis=None):
    if axis is not None:
        dim = axis
    tensors = _check_tensors(tensors, "stack")
    s0 = tensors[0]._data.shape
    for i, x in enumerate(tensors):
        if x._data.shape != s0:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, but got {list(s0)} at entry 0 and "
                f"{list(x._data.shape)} at entry {i}"
            )
    d = _wrap_dim(dim, len(s0) + 1)
    return cat([unsqueeze(x, d) for x in tensors], d)


def hstack(tensors):
    tensors = [atleast_1d(x) for x in tensors]
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    return cat([atleast_2d(x) for x in tensors], 0)


def column_stack(tensors):
    return hstack([x.reshape(-1, 1) if x.ndim <= 1 else x for x in tensors])


def atleast_1d(x):
    return reshape(x, 1) if x.ndim == 0 else x


def atleast_2d(x):
    return reshape(x, 1, -1) if x.ndim < 2 else x


class _Slice(Function):
    """Basic slicing along one axis (for split/chunk/narrow/unbind)."""

    @staticmethod
    def forward(ctx, x, axis, start, stop, squeeze):
        ctx.info = (x.shape, x.dtype, axis, start, stop, squeeze)
        idx = [slice(None)] * x.ndim
        idx[axis] = start if squeeze else slice(start, stop)
        return x[tuple(idx)]

    @staticmethod
    def backward(ctx, g):
        shape, dt, axis, start, stop, squeeze = ctx.info
        out = np.zeros(shape, dtype=g.dtype)
        idx = [slice(None)] * len(shape)
        idx[axis] = start if squeeze else slice(start, stop)
        out[tuple(idx)] = g
        return out, None, None, None, None


class SplitOp(Function):
    """All pieces of a split as one node (one gradient buffer instead of one per piece)."""

    @staticmethod
    def forward(ctx, x, axis, bounds, squeeze):
        ctx.info = (x.shape, axis, bounds, squeeze)
        ctx._nout = len(bounds)
        ctx._out_shapes = []
        outs = []
        for s, e in bounds:
            idx = [slice(None)] * x.ndim
            idx[axis] = s if squeeze else slice(s, e)
            o = x[tuple(idx)]
            outs.append(o)
            ctx._out_shapes.append(o.shape)
        return tuple(outs)

    @staticmethod
    def backward(ctx, *gs):
        shape, axis, bounds, squeeze = ctx.info
        if squeeze:
            return np.stack(gs, axis=axis), None, None, None
        if bounds[0][0] == 0 and bounds[-1][1] == shape[axis] and all(
                a[1] == b[0] for a, b in zip(bounds, bounds[1:])):
            return np.concatenate(gs, axis=axis), None, None, None
        out = np.zeros(shape, gs[0].dtype)  # tensor_split's pieces may overlap or leave gaps
        for (s, e), g in zip(bounds, gs):
            out[(slice(None),) * axis + (slice(s, e),)] += g
        return out, None, None, None


def _split_bounds(n, sizes):
    bounds, s = [], 0
    for k in sizes:
        bounds.append((s, s + k))
        s += k
    return bounds


def split(tensor, split_size_or_sections, dim=0):
    axis = _wrap_dim(dim, tensor._data.ndim)
    n = tensor._data.shape[axis]
    if isinstance(split_size_or_sections, int):
        k = split_size_or_sections
        if k <= 0 and n:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {n}")
        sizes = [min(k, n - i) for i in range(0, n, k)] if n else [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise RuntimeError(
                f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size "
                f"at dimension {dim}), but got split_sizes={sizes}"
            )
    return _views_of(tensor, SplitOp.apply(tensor, axis, _split_bounds(n, sizes), False))


def _views_of(input, outs):
    for o in outs:
        _view_of(input, o)
    if input._rg:
        from ember.autograd._views import mark_multi_views

        mark_multi_views(outs)
    return outs


def tensor_split(input, indices_or_sections, dim=0):
    axis = _wrap_dim(dim, input._data.ndim)
    n = input._data.shape[axis]
    ios = indices_or_sections
    if isinstance(ios, Tensor):  # a 0-d tensor is a number of sections, a 1-d one indices
        ios = int(ios) if ios._data.ndim == 0 else [int(i) for i in ios._data]
    if isinstance(ios, numbers.Integral):
        if ios <= 0:
            raise RuntimeError(f"number of sections must be larger than 0, got {ios}")
        base, extra = divmod(n, ios)
        bounds = _split_bounds(n, [base + 1] * extra + [base] * (ios - extra))
    else:  # the pieces x[:i0], x[i0:i1], ..., x[ik:] with Python's slice rules
        cut = [0] + [min(max(i + n if i < 0 else i, 0), n) for i in ios] + [n]
        bounds = [(a, max(a, b)) for a, b in zip(cut[:-1], cut[1:])]
    return _views_of(input, SplitOp.apply(input, axis, bounds, False))


def _np_split(input, ios, dim, name, min_ndim):
    """hsplit/vsplit/dsplit: tensor_split, but sections must divide the size (as in NumPy)."""
    x = input._data
    if x.ndim < min_ndim:
        raise RuntimeError(f"torch.{name} requires a tensor with at least {min_ndim} dimension, "
                           f"but got a tensor with {x.ndim} dimensions!")
    if isinstance(ios, numbers.Integral) and (ios == 0 or x.shape[dim] % ios):
        raise RuntimeError(f"torch.{name} attempted to split along dimension {dim}, but the size "
                           f"of the dimension {x.shape[dim]} is not divisible by the split_size "
                           f"{ios}!")
    return tensor_split(input, ios, dim)


def hsplit(input, indices_or_sections):
    return _np_split(input, indices_or_sections, 1 if input._data.ndim > 1 else 0, "hsplit", 1)


def vsplit(input, indices_or_sections):
    return _np_split(input, indices_or_sections, 0, "vsplit", 2)


def dsplit(input, indices_or_sections):
    return _np_split(input, indices_or_sections, 2, "dsplit", 3)


def chunk(input, chunks, dim=0):
    if chunks <= 0:
        raise RuntimeError("chunk expects `chunks` to be greater than 0, got: " + str(chunks))
    n = input._data.shape[_wrap_dim(dim, input._data.ndim)]
    k = -(-n // chunks) if n else 1
    return split(input, k, dim)


def unbind(input, dim=0):
    axis = _wrap_dim(dim, input._data.ndim)
    n = input._data.shape[axis]
    return _views_of(input, SplitOp.apply(input, axis, [(i, i + 1) for i in range(n)], True))


def narrow(input, dim, start, length):
    axis = _wrap_dim(dim, input._data.ndim)
    n = input._data.shape[axis]
    start = int(start)
    if start < 0:
        start += n
    if not (0 <= start and start + length <= n):
        raise IndexError(
            f"start ({start}) + length ({length}) exceeds dimension size ({n})."
        )
    return _view_of(input, _Slice.apply(input, axis, start, start + length, False))


def select(input, dim, index):
    """``input[..., index, ...]`` at ``dim`` (a view without that dimension)."""
    x = input._data
    if x.ndim == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    axis = _wrap_dim(dim, x.ndim)
    n = x.shape[axis]
    if not -n <= index < n:
        raise IndexError(f"select(): index {index} out of range for tensor of size "
                         f"{list(x.shape)} at dimension {axis}")
    from ember.ops.indexing import getitem

    return getitem(input, (slice(None),) * axis + (int(index),))


class Unfold(Function):
    """Tensor.unfold: every window of ``size`` along ``axis``, ``step`` apart, as a new last
    dimension (a copy; torch's is a view of overlapping windows)."""

    @staticmethod
    def forward(ctx, x, axis, size, step):
        w = np.lib.stride_tricks.sliding_window_view(x, size, axis=axis)
        w = w[(slice(None),) * axis + (slice(None, None, step),)]
        ctx.info = (x.shape, axis, size, step, w.shape[axis])
        return np.ascontiguousarray(w)

    @staticmethod
    def backward(ctx, g):
        shape, axis, size, step, n = ctx.info
        out = np.zeros(shape, dtype=g.dtype)
        for k in range(size):  # window offset k: distinct places k, k + step, ... (no clashes)
            idx = (slice(None),) * axis + (slice(k, k + step * (n - 1) + 1, step),)
            out[idx] += g[..., k]
        return out, None, None, None


def unfold(input, dimension, size, step):
    x = input._data
    if x.ndim == 0:
        return reshape(unfold(reshape(input, 1), 0, size, step), -1)
    axis = _wrap_dim(dimension, x.ndim)
    if size > x.shape[axis]:
        raise RuntimeError(f"maximum size for tensor at dimension {axis} is {x.shape[axis]} but "
                           f"size is {size}")
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    return Unfold.apply(input, axis, int(size), int(step))


class Clone(Function):
    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, g):
        return g


def clone(input, *, memory_format=None):
    return Clone.apply(input)


def contiguous(input, memory_format=None):
    if input._data.flags.c_contiguous:
        return input
    return Clone.apply(input)


def repeat_interleave(input, repeats, dim=None, *, output_size=None):
    from ember.ops.indexing import index_select
    from ember.ops.creation import tensor

    if dim is None:
        input = reshape(input, -1)
        dim = 0
    axis = _wrap_dim(dim, input._data.ndim)
    n = input._data.shape[axis]
    r = repeats._data if isinstance(repeats, Tensor) else np.asarray(repeats)
    idx = np.repeat(np.arange(n), np.broadcast_to(r, (n,)))
    return index_select(input, axis, tensor(idx))


def meshgrid(*tensors, indexing="ij"):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    n = len(tensors)
    shape = [t.numel() for t in tensors]
    if indexing == "xy" and n >= 2:
        shape[0], shape[1] = shape[1], shape[0]
    outs = []
    for i, x in enumerate(tensors):
        view_shape = [1] * n
        pos = i
        if indexing == "xy" and n >= 2 and i < 2:
            pos = 1 - i
        view_shape[pos] = -1
        outs.append(expand(reshape(x, view_shape), shape))
    return tuple(outs)
