"""Tensors that view one array, as both file formats store them: once, as a storage that each
tensor addresses by (offset, stride) in elements, as torch.save does."""

from __future__ import annotations

import numpy as np


def locate(arr):
    """``(root, offset, stride)``: where ``arr`` lies in the array whose memory it views, or
    None where it cannot be addressed so (another dtype, a root not C-contiguous, negative or
    misaligned strides)."""
    root = arr
    while isinstance(root.base, np.ndarray):
        root = root.base
    item = arr.itemsize
    delta = arr.__array_interface__["data"][0] - root.__array_interface__["data"][0]
    if root.dtype != arr.dtype or not root.flags.c_contiguous or delta % item \
            or any(s < 0 or s % item for s in arr.strides):
        return None
    offset, stride = delta // item, tuple(s // item for s in arr.strides)
    if arr.size and (offset < 0 or last_element(offset, arr.shape, stride) >= root.size):
        return None
    return root, offset, stride


def last_element(offset, shape, stride):
    """The index in its storage of a (non-empty) view's last element."""
    return offset + sum((n - 1) * s for n, s in zip(shape, stride))


def strided(storage, shape, offset, stride):
    """The view of a 1-D ``storage`` that the caller has bounds-checked. Its ``.base`` is the
    storage (``as_strided``'s is not), so saving it again keeps the sharing."""
    item = storage.itemsize
    return np.ndarray(shape, storage.dtype, buffer=storage, offset=offset * item,
                      strides=[s * item for s in stride])
