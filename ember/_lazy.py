"""Import sub-packages on first attribute access, so ``import ember`` stays fast."""

from __future__ import annotations

import importlib

__all__ = ["lazy_submodules"]


def lazy_submodules(package, names):
    names = frozenset(names)

    def __getattr__(attr):
        if attr in names:
            return importlib.import_module(f"{package}.{attr}")
        raise AttributeError(f"module {package!r} has no attribute {attr!r}")

    return __getattr__
