"""Shared libraries that pip wheels install next to Python (MKL's, oneDNN's), found by asking
the installed distribution for its files; the callers load them with ctypes."""

from __future__ import annotations

import os

__all__ = ["wheel_library"]


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
