"""The backend seam: which array module (NumPy, later CuPy) holds a tensor, and devices.

This is the only place that may import cupy. Ops call ``get_array_module(x)`` (``xp``) instead of
naming numpy where the same code should run on a GPU array.
"""

from __future__ import annotations

import numpy as np

from ember.backend.kernels import unbroadcast

__all__ = ["get_array_module", "device", "cpu", "to_device", "unbroadcast", "cuda_available"]


def get_array_module(x):
    """NumPy for NumPy arrays (and anything else); CuPy for CuPy arrays once that backend exists."""
    return np


def cuda_available():
    return False


class device:
    """A device as PyTorch names it: ``ember.device("cpu")``, ``ember.device("cuda", 0)``."""

    __slots__ = ("type", "index")

    def __init__(self, type, index=None):
        if isinstance(type, device):
            type, index = type.type, type.index
        type = str(type)
        if ":" in type:
            type, idx = type.split(":", 1)
            if index is not None:
                raise ValueError(f"device string {type}:{idx} already has an index; got index={index}")
            index = int(idx)
        if type not in ("cpu", "cuda", "meta"):
            raise RuntimeError(
                f"Expected one of cpu, cuda, meta device type at start of device string: {type}"
            )
        self.type, self.index = type, index

    def __repr__(self):
        return f"device(type='{self.type}')" if self.index is None else (
            f"device(type='{self.type}', index={self.index})")

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other):
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))


cpu = device("cpu")


def check_device(d):
    """Validate a ``device=`` argument; only the CPU exists until a GPU backend lands."""
    if d is None:
        return cpu
    d = d if isinstance(d, device) else device(d)
    if d.type != "cpu":
        raise RuntimeError(
            f"device {str(d)!r} is not available: ember has no {d.type.upper()} backend on this "
            "machine (ember.cuda.is_available() is False); use device='cpu'"
        )
    return cpu


def to_device(arr, d):
    check_device(d)
    return arr
