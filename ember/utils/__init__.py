"""``ember.utils``: data loading (``ember.utils.data``) and helpers, imported on first use."""

import importlib

_SUBMODULES = ("data", "threads", "checkpoint", "hooks")


def __getattr__(name):
    if name in _SUBMODULES:
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
