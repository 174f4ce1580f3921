"""``default_collate`` and ``default_convert``: samples -> batches, with PyTorch's rules.

=====================================  ==========================================
sample element                          batch
=====================================  ==========================================
Tensor / NumPy array (numbers)          Tensor stacked on a new dim 0
NumPy scalar                            1-D Tensor of its dtype
int / bool                              int64 / bool Tensor
float                                   float64 Tensor (as PyTorch does)
str / bytes                             the list, unchanged
Mapping / namedtuple / list / tuple     the same structure, collated per field
                                        (a tuple becomes a list, as in PyTorch)
=====================================  ==========================================

Example::

    >>> b = default_collate([(ember.zeros(3), 1), (ember.ones(3), 2)])
    >>> b[0].shape, b[1].dtype
    (ember.Size([2, 3]), ember.int64)
"""

from __future__ import annotations

import collections.abc
import copy
import functools
import re

import numpy as np

from ember import dtypes as _dt
from ember.tensor import Tensor, _wrap

__all__ = ["default_collate", "default_convert", "collate", "default_collate_fn_map"]

np_str_obj_array_pattern = re.compile(r"[SaUO]")

default_collate_err_msg_format = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"
)


def _tensor_from_array(arr):
    _dt.from_numpy_dtype(arr.dtype)  # PyTorch's TypeError for dtypes tensors cannot hold
    return _wrap(arr)


def default_convert(data):
    """Turn NumPy arrays and scalars (also inside containers) into Tensors; leave the rest.

    The ``collate_fn`` a DataLoader uses when ``batch_size=None`` (no auto-batching).
    """
    elem_type = type(data)
    if isinstance(data, Tensor):
        return data
    if elem_type.__module__ == "numpy" and elem_type.__name__ not in ("str_", "string_"):
        if elem_type.__name__ == "ndarray" and np_str_obj_array_pattern.search(data.dtype.str):
            return data
        return _tensor_from_array(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        try:
            if isinstance(data, collections.abc.MutableMapping):
                clone = copy.copy(data)
                clone.update({key: default_convert(data[key]) for key in data})
                return clone
            return elem_type({key: default_convert(data[key]) for key in data})
        except TypeError:
            return {key: default_convert(data[key]) for key in data}
    if isinstance(data, tuple) and hasattr(data, "_fields"):  # namedtuple
        return elem_type(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        try:
            if isinstance(data, collections.abc.MutableSequence):
                clone = copy.copy(data)
                for i, d in enumerate(data):
                    clone[i] = default_convert(d)
                return clone
            return elem_type([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data


def collate(batch, *, collate_fn_map=None):
    """Collate ``batch`` (a list of samples) using ``collate_fn_map`` ({type: fn}) for leaves
    and PyTorch's rules for containers. Build custom collate functions on it::

        def collate_str_len(batch, *, collate_fn_map=None):
            return ember.tensor([len(s) for s in batch])
        my_map = {**default_collate_fn_map, str: collate_str_len}
        collate_fn = functools.partial(collate, collate_fn_map=my_map)
    """
    elem = batch[0]
    elem_type = type(elem)
    if collate_fn_map is not None:
        if elem_type in collate_fn_map:
            return collate_fn_map[elem_type](batch, collate_fn_map=collate_fn_map)
        for collate_type in collate_fn_map:
            if isinstance(elem, collate_type):
                return collate_fn_map[collate_type](batch, collate_fn_map=collate_fn_map)
    if isinstance(elem, collections.abc.Mapping):
        try:
            if isinstance(elem, collections.abc.MutableMapping):
                clone = copy.copy(elem)
                clone.update({key: collate([d[key] for d in batch], collate_fn_map=collate_fn_map)
                              for key in elem})
                return clone
            return elem_type({key: collate([d[key] for d in batch], collate_fn_map=collate_fn_map)
                              for key in elem})
        except TypeError:
            return {key: collate([d[key] for d in batch], collate_fn_map=collate_fn_map)
                    for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return elem_type(*(collate(samples, collate_fn_map=collate_fn_map)
                           for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        it = iter(batch)
        elem_size = len(next(it))
        if not all(len(e) == elem_size for e in it):
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = list(zip(*batch))
        if isinstance(elem, tuple):
            return [collate(samples, collate_fn_map=collate_fn_map) for samples in transposed]
        try:
            if isinstance(elem, collections.abc.MutableSequence):
                clone = copy.copy(elem)
                for i, samples in enumerate(transposed):
                    clone[i] = collate(samples, collate_fn_map=collate_fn_map)
                return clone
            return elem_type([collate(samples, collate_fn_map=collate_fn_map)
                              for samples in transposed])
        except TypeError:
            return [collate(samples, collate_fn_map=collate_fn_map) for samples in transposed]
    raise TypeError(default_collate_err_msg_format.format(elem_type))


def _stack_arrays(arrays):
    """One ``np.stack`` into a fresh array, with PyTorch's error for unequal shapes and
    PyTorch's dtype promotion for mixed dtypes (int64 with float32 gives float32, not
    NumPy's float64)."""
    s0, d0 = arrays[0].shape, arrays[0].dtype
    mixed = False
    for i, a in enumerate(arrays):
        if a.shape != s0:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(s0)} "
                               f"at entry 0 and {list(a.shape)} at entry {i}")
        mixed = mixed or a.dtype != d0
    if mixed:
        dtype = functools.reduce(_dt.promote_types, [_dt.from_numpy_dtype(a.dtype)
                                                     for a in arrays])
        return np.stack(arrays, dtype=dtype.np)
    return np.stack(arrays)


def collate_tensor_fn(batch, *, collate_fn_map=None):
    if any(t._rg for t in batch):  # keep the graph: the differentiable stack
        from ember.ops.shape import stack

        return stack(list(batch), 0)
    return _wrap(_stack_arrays([t._data for t in batch]))


def collate_numpy_array_fn(batch, *, collate_fn_map=None):
    elem = batch[0]
    if np_str_obj_array_pattern.search(elem.dtype.str) is not None:
        raise TypeError(default_collate_err_msg_format.format(elem.dtype))
    _dt.from_numpy_dtype(elem.dtype)
    return _tensor_from_array(_stack_arrays(batch))


def collate_numpy_scalar_fn(batch, *, collate_fn_map=None):
    return _tensor_from_array(np.array(batch))


def collate_float_fn(batch, *, collate_fn_map=None):
    return _wrap(np.array(batch, dtype=np.float64))


def collate_int_fn(batch, *, collate_fn_map=None):
    # torch.tensor(batch): ints -> int64, all bools -> bool, any float -> the default dtype.
    from ember.ops.creation import tensor

    return tensor(batch)


def collate_str_fn(batch, *, collate_fn_map=None):
    return batch


default_collate_fn_map = {
    Tensor: collate_tensor_fn,
    np.ndarray: collate_numpy_array_fn,
    (np.bool_, np.number, np.object_): collate_numpy_scalar_fn,
    float: collate_float_fn,
    int: collate_int_fn,
    str: collate_str_fn,
    bytes: collate_str_fn,
}


def default_collate(batch):
    """Stack a list of samples into a batch (the DataLoader's default ``collate_fn``).

    Example::

        >>> out = default_collate([{"x": np.zeros(2, np.float32), "y": 0.5}] * 4)
        >>> out["x"].shape, out["y"].dtype
        (ember.Size([4, 2]), ember.float64)
    """
    return collate(batch, collate_fn_map=default_collate_fn_map)
