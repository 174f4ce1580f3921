"""Shared libraries that pip wheels install next to Python (MKL's, oneDNN's), found by asking
the installed distribution for its files; the callers load them with ctypes and pass them
NumPy arrays by ``address``."""

from __future__ import annotations

import ctypes
import os

__all__ = ["wheel_library", "address"]

_from_buffer, _addressof = ctypes.c_char.from_buffer, ctypes.addressof


def address(a):
    """``a.ctypes.data``, the address of ``a``'s first element, for the C calls. A writable
    C- or F-contiguous array (nearly every operand) takes the buffer protocol, ~0.3 us, where
    ``a.ctypes`` builds a Python object each time, ~0.9 us (MKL's and oneDNN's calls take two
    to fifteen addresses each)."""
    f = a.flags
    if f.writeable and a.size:
        if f.c_contiguous:
            return _addressof(_from_buffer(a))
        if f.f_contiguous:  # a transposed matrix: the same first element
            return _addressof(_from_buffer(a.T))
    return a.ctypes.data


def wheel_library(distribution, prefixes):
    """Path of the first file of the installed ``distribution`` whose name starts with one of
    ``prefixes`` (static archives and import libraries skipped), or None when it is not
    installed."""
    from importlib import metadata

    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if f.name.startswith(prefixes) and not f.name.endswith((".a", ".lib")):
            path = f.locate()
            if os.path.exists(path):
                return str(path)
    return None
