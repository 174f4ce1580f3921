"""Creation ops: ``tensor``, ``zeros``, ``arange``, ``randn``... with PyTorch's signatures."""

from __future__ import annotations

import numbers

import numpy as np

from ember import dtypes as _dt
from ember.backend import check_device
from ember.random import _gen
from ember.tensor import Tensor, _wrap

__all__ = [
    "tensor", "as_tensor", "asarray", "from_numpy", "zeros", "ones", "full", "empty", "zeros_like",
    "ones_like", "full_like", "empty_like", "arange", "range", "linspace", "logspace", "eye", "rand",
    "randn", "randint", "randperm", "normal", "rand_like", "randn_like", "randint_like",
    "bernoulli", "multinomial", "scalar_tensor", "empty_strided", "poisson", "tril_indices",
    "triu_indices",
]

_builtin_range = range


def _finish(arr, requires_grad, device=None):
    check_device(device)
    t = _wrap(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _infer(data, typed=False):
    """NumPy array for Python data, with PyTorch's dtype inference (floats -> default dtype).
    ``typed``: the caller casts to a dtype it was given, so Python floats stay float64 until
    then (``tensor([0.1], dtype=float64)`` holds 0.1, not 0.1 rounded to float32)."""
    if isinstance(data, Tensor):
        return data._data
    if isinstance(data, np.ndarray):
        return data
    first = data
    while isinstance(first, (list, tuple)) and first:
        first = first[0]
    if isinstance(first, (np.ndarray, np.generic)):
        return _infer_numpy_items(data)
    if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in _flat(data)):
        data = _tensors_to_lists(data)
    try:
        arr = np.array(data)
    except ValueError as e:
        raise ValueError(f"expected a sequence of equal-length sequences for a tensor: {e}") from None
    if arr.dtype == object or arr.dtype.kind in "USO":
        raise TypeError(
            f"new(): invalid data type '{type(data).__name__}': ember.tensor takes numbers, "
            "(nested) lists/tuples of numbers, NumPy arrays or tensors"
        )
    if typed and arr.dtype.kind != "c":
        return arr
    if arr.dtype.kind == "f" and arr.dtype != np.float16 and not isinstance(data, np.generic):
        arr = arr.astype(_dt.get_default_dtype().np)
    elif arr.dtype.kind in "iu" and not isinstance(data, np.generic):
        arr = arr.astype(np.int64)
    elif arr.dtype.kind == "c":
        raise TypeError("complex tensors are not supported by ember")
    return arr


def _infer_numpy_items(data):
    """A list holding NumPy scalars/arrays: PyTorch promotes the items' own dtypes (Python
    floats count as the default dtype), so ``[np.float64(1), np.float64(2)]`` stays float64."""
    if isinstance(data, np.generic):
        return np.asarray(data)
    dt = None
    for x in _flat(data):
        if isinstance(x, (np.ndarray, np.generic)):
            d = _dt.from_numpy_dtype(x.dtype)
        elif isinstance(x, bool):
            d = _dt.bool
        elif isinstance(x, numbers.Integral):
            d = _dt.int64
        elif isinstance(x, numbers.Real):
            d = _dt.get_default_dtype()
        else:
            d = None
        if d is not None:
            dt = d if dt is None else _dt.promote_types(dt, d)
    try:
        arr = np.array(data, dtype=None if dt is None else dt.np)
    except ValueError as e:
        raise ValueError(f"expected a sequence of equal-length sequences for a tensor: {e}") from None
    if arr.dtype == object or arr.dtype.kind in "USOc":
        raise TypeError(f"new(): invalid data type '{type(data).__name__}'")
    return arr


def _flat(x):
    if isinstance(x, (list, tuple)):
        for y in x:
            yield from _flat(y)
    else:
        yield x


def _tensors_to_lists(x):
    if isinstance(x, Tensor):
        return x._data.tolist()
    if isinstance(x, (list, tuple)):
        return [_tensors_to_lists(y) for y in x]
    return x


def tensor(data, *, dtype=None, device=None, requires_grad=False, pin_memory=False):
    """Copy ``data`` into a new tensor (``ember.tensor([[1., 2.], [3., 4.]])``)."""
    arr = _infer(data, dtype is not None)
    if dtype is None:
        _dt.from_numpy_dtype(arr.dtype)  # a clear TypeError for uint16, complex, object...
    arr = np.array(arr, dtype=_dt.to_dtype(dtype).np if dtype is not None else None, copy=True)
    return _finish(arr, requires_grad, device)


def as_tensor(data, dtype=None, device=None):
    """Like ``tensor`` but shares memory with a NumPy array or Tensor when the dtype allows."""
    if isinstance(data, Tensor):
        return data if dtype is None else data.to(dtype)
    if isinstance(data, np.ndarray):
        _dt.from_numpy_dtype(data.dtype)
        if dtype is None or _dt.to_dtype(dtype).np == data.dtype:
            return _finish(data, False, device)
        return _finish(data.astype(_dt.to_dtype(dtype).np), False, device)
    return tensor(data, dtype=dtype, device=device)


def asarray(obj, *, dtype=None, device=None, copy=None, requires_grad=False):
    t = as_tensor(obj, dtype=dtype, device=device) if not copy else tensor(obj, dtype=dtype)
    if requires_grad:
        t.requires_grad_(True)
    return t


def from_numpy(ndarray):
    """A tensor sharing memory with ``ndarray`` (changes to one show in the other)."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    _dt.from_numpy_dtype(ndarray.dtype)
    return _wrap(ndarray)


def _size(size):
    if len(size) == 1 and isinstance(size[0], (list, tuple)):
        size = tuple(size[0])
    out = []
    for s in size:
        if isinstance(s, Tensor):
            s = int(s)
        if not isinstance(s, numbers.Integral):
            raise TypeError(
                f"size must be a tuple of ints, but got an element of type {type(s).__name__}"
            )
        if s < 0:
            raise RuntimeError(
                f"Trying to create tensor with negative dimension {s}: {list(size)}"
            )
        out.append(int(s))
    return tuple(out)


def _dtype(dtype, default=None):
    if dtype is None:
        return (default or _dt.get_default_dtype()).np
    return _dt.to_dtype(dtype).np


def _size_arg(args, size, fn):
    """The shape from ``zeros(2, 3)``, ``zeros((2, 3))`` or ``zeros(size=(2, 3))``."""
    if size is not None:
        if args:
            raise TypeError(f"{fn}() got multiple values for argument 'size'")
        args = (size,)
    return _size(args)


def zeros(*args, size=None, out=None, dtype=None, layout=None, device=None, requires_grad=False,
          pin_memory=False):
    shape = _size_arg(args, size, "zeros")
    return _finish(np.zeros(shape, dtype=_dtype(dtype)), requires_grad, device)


def ones(*args, size=None, out=None, dtype=None, layout=None, device=None, requires_grad=False,
         pin_memory=False):
    shape = _size_arg(args, size, "ones")
    return _finish(np.ones(shape, dtype=_dtype(dtype)), requires_grad, device)


def empty(*args, size=None, out=None, dtype=None, layout=None, device=None, requires_grad=False,
          pin_memory=False, memory_format=None):
    shape = _size_arg(args, size, "empty")
    return _finish(np.empty(shape, dtype=_dtype(dtype)), requires_grad, device)


def empty_strided(size, stride, *, dtype=None, device=None, requires_grad=False):
    return empty(size, dtype=dtype, device=device, requires_grad=requires_grad)


def full(size, fill_value, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    if dtype is None:
        dtype = _dt.result_type(fill_value)
    return _finish(np.full(_size((size,) if isinstance(size, int) else (tuple(size),)),
                           fill_value, dtype=_dtype(dtype)), requires_grad, device)


def scalar_tensor(s, *, dtype=None, device=None, requires_grad=False):
    return _finish(np.array(s, dtype=_dtype(dtype)), requires_grad, device)


def _like(input, dtype):
    return input._data.shape, (_dt.to_dtype(dtype).np if dtype is not None else input._data.dtype)


def zeros_like(input, *, dtype=None, layout=None, device=None, requires_grad=False, memory_format=None):
    s, d = _like(input, dtype)
    return _finish(np.zeros(s, dtype=d), requires_grad, device)


def ones_like(input, *, dtype=None, layout=None, device=None, requires_grad=False, memory_format=None):
    s, d = _like(input, dtype)
    return _finish(np.ones(s, dtype=d), requires_grad, device)


def empty_like(input, *, dtype=None, layout=None, device=None, requires_grad=False, memory_format=None):
    s, d = _like(input, dtype)
    return _finish(np.empty(s, dtype=d), requires_grad, device)


def full_like(input, fill_value, *, dtype=None, layout=None, device=None, requires_grad=False,
              memory_format=None):
    s, d = _like(input, dtype)
    return _finish(np.full(s, fill_value, dtype=d), requires_grad, device)


def arange(start=0, end=None, step=1, *, out=None, dtype=None, layout=None, device=None,
           requires_grad=False):
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if vals[2] > 0 and vals[0] > vals[1] or vals[2] < 0 and vals[0] < vals[1]:
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    if dtype is None:
        dtype = _dt.int64 if all(isinstance(v, numbers.Integral) for v in vals) else None
    return _finish(np.arange(*vals, dtype=_dtype(dtype)), requires_grad, device)


def range(start=0, end=None, step=1, *, dtype=None, device=None, requires_grad=False):
    """Deprecated in PyTorch: like arange but includes ``end``."""
    if end is None:
        start, end = 0, start
    n = int((end - start) // step) + 1
    return _finish((start + np.arange(n) * step).astype(_dtype(dtype)), requires_grad, device)


def linspace(start, end, steps, *, out=None, dtype=None, layout=None, device=None,
             requires_grad=False):
    return _finish(np.linspace(start, end, int(steps), dtype=_dtype(dtype)), requires_grad, device)


def logspace(start, end, steps, base=10.0, *, dtype=None, device=None, requires_grad=False):
    return _finish(np.logspace(start, end, int(steps), base=base, dtype=_dtype(dtype)),
                   requires_grad, device)


def eye(n, m=None, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    return _finish(np.eye(n, m, dtype=_dtype(dtype)), requires_grad, device)


def _tri_indices(row, col, offset, dtype, upper):
    r, c = np.nonzero((np.triu if upper else np.tril)(np.ones((row, col), bool), offset))
    return _wrap(np.stack([r, c]).astype(_dtype(dtype, _dt.int64)))


def tril_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    """Row and column indices (2, n) of the lower triangle of a row x col matrix."""
    return _tri_indices(row, col, offset, dtype, False)


def triu_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    return _tri_indices(row, col, offset, dtype, True)


def _float_dtype(dtype, fn):
    d = _dtype(dtype)
    if d.kind != "f":
        raise RuntimeError(f"\"{fn}\" not implemented for '{_dt._NP2DT[d].name}'")
    return d


def rand(*args, size=None, generator=None, out=None, dtype=None, layout=None, device=None,
         requires_grad=False, pin_memory=False):
    d = _float_dtype(dtype, "check_uniform_bounds")
    shape = _size_arg(args, size, "rand")
    arr = _gen(generator).random(shape, dtype=np.float64 if d == np.float16 else d)
    return _finish(arr.astype(d, copy=False), requires_grad, device)


def randn(*args, size=None, generator=None, out=None, dtype=None, layout=None, device=None,
          requires_grad=False, pin_memory=False):
    d = _float_dtype(dtype, "normal_kernel_cpu")
    shape = _size_arg(args, size, "randn")
    arr = _gen(generator).standard_normal(shape, dtype=np.float64 if d == np.float16 else d)
    return _finish(arr.astype(d, copy=False), requires_grad, device)


def randint(low=0, high=None, size=None, *, generator=None, out=None, dtype=None, layout=None,
            device=None, requires_grad=False):
    if size is None:
        # randint(high, size) form
        low, high, size = 0, low, high
    if high is None:
        raise TypeError("randint() missing required argument 'high'")
    if low >= high:
        raise RuntimeError(
            f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}"
        )
    arr = _gen(generator).integers(low, high, size=_size((tuple(size),)))
    return _finish(arr.astype(_dtype(dtype, _dt.int64)), requires_grad, device)


def randperm(n, *, generator=None, out=None, dtype=None, layout=None, device=None,
             requires_grad=False, pin_memory=False):
    return _finish(_gen(generator).permutation(int(n)).astype(_dtype(dtype, _dt.int64)),
                   requires_grad, device)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, out=None, dtype=None, device=None,
           requires_grad=False):
    g = _gen(generator)
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        m = mean._data if isinstance(mean, Tensor) else mean
        s = std._data if isinstance(std, Tensor) else std
        if np.any(np.asarray(s) < 0):
            raise RuntimeError("normal expects all elements of std >= 0.0")
        shape = np.broadcast_shapes(np.shape(m), np.shape(s))
        ref = mean if isinstance(mean, Tensor) else std
        arr = (m + s * g.standard_normal(shape)).astype(ref._data.dtype)
        return _finish(arr, requires_grad, device)
    if std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    if size is None:
        raise TypeError("normal() with float mean and std needs size=")
    arr = g.normal(mean, std, _size((tuple(size),))).astype(_dtype(dtype))
    return _finish(arr, requires_grad, device)


def rand_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    return rand(input._data.shape, dtype=dtype or _dt._NP2DT[input._data.dtype], device=device,
                requires_grad=requires_grad)


def randn_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    return randn(input._data.shape, dtype=dtype or _dt._NP2DT[input._data.dtype], device=device,
                 requires_grad=requires_grad)


def randint_like(input, low=0, high=None, *, dtype=None, device=None, requires_grad=False):
    if high is None:
        low, high = 0, low
    return randint(low, high, input._data.shape, dtype=dtype or _dt._NP2DT[input._data.dtype],
                   device=device)


def bernoulli(input, p=None, *, generator=None, out=None):
    prob = input._data if p is None else np.full(input._data.shape, p)
    if np.any((prob < 0) | (prob > 1)):
        raise RuntimeError("bernoulli expects all elements of p to be in [0, 1]")
    arr = (_gen(generator).random(prob.shape) < prob).astype(input._data.dtype)
    return _wrap(arr)


def poisson(input, generator=None):
    return _wrap(_gen(generator).poisson(input._data).astype(input._data.dtype))


def multinomial(input, num_samples, replacement=False, *, generator=None, out=None):
    p = input._data.astype(np.float64)
    if np.any(p < 0) or not np.all(np.isfinite(p)):
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    g = _gen(generator)
    rows = p.reshape(-1, p.shape[-1])
    out = np.empty((rows.shape[0], num_samples), dtype=np.int64)
    for i, r in enumerate(rows):
        s = r.sum()
        if s <= 0:
            raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
        if not replacement and num_samples > np.count_nonzero(r):
            raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
        out[i] = g.choice(r.size, size=num_samples, replace=replacement, p=r / s)
    return _wrap(out.reshape(p.shape[:-1] + (num_samples,)))
