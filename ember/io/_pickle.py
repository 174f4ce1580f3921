"""The pickle fallback, for objects the safe format cannot hold (``ember.save(model)``).

Tensors, arrays and dtypes never go through pickle's reduce machinery: the pickler replaces
them by persistent ids that point at the archive's raw tensor blobs. Loading with
``weights_only=True`` uses ``RestrictedUnpickler``, whose ``find_class`` returns only allow-listed
globals (plain containers plus what ``add_safe_globals`` registered); anything else raises
``WeightsOnlyUnpicklingError`` naming the global, before it is imported or called.
"""

from __future__ import annotations

import collections
import contextlib
import io
import pickle

import numpy as np

from ember import dtypes as _dt
from ember.tensor import Tensor

__all__ = [
    "WeightsOnlyUnpicklingError",
    "add_safe_globals",
    "clear_safe_globals",
    "dumps",
    "get_safe_globals",
    "loads",
    "safe_globals",
]


class WeightsOnlyUnpicklingError(pickle.UnpicklingError):
    """``ember.load(weights_only=True)`` met a global outside the allow-list."""


# Globals a state_dict-like pickle may need; none of them runs user code when called.
_DEFAULT_SAFE = {
    "collections.OrderedDict": collections.OrderedDict,
    "collections.Counter": collections.Counter,
    "collections.defaultdict": collections.defaultdict,
    "builtins.set": set,
    "builtins.frozenset": frozenset,
    "builtins.complex": complex,
    "builtins.slice": slice,
    "builtins.range": range,
    "_codecs.encode": __import__("codecs").encode,  # bytes in protocol-2 pickles
}
_user_safe: dict = {}


def _global_name(obj):
    return f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', None)}"


def add_safe_globals(safe_globals):
    """Allow these classes/functions in ``ember.load(weights_only=True)``.

    Args:
        safe_globals: a list of objects, or of ``(obj, "module.name")`` pairs for objects
            pickled under another name.

    Example::

        ember.serialization.add_safe_globals([MyConfig])
        cfg = ember.load("ckpt.pt")            # weights_only=True, MyConfig now allowed
    """
    for g in safe_globals:
        if isinstance(g, tuple):
            if len(g) != 2 or not isinstance(g[1], str):
                raise TypeError(f"expected an object or an (object, 'module.name') pair, got {g!r}")
            _user_safe[g[1]] = g[0]
        else:
            _user_safe[_global_name(g)] = g


def get_safe_globals():
    """The user allow-list (what ``add_safe_globals`` added), as a list."""
    return list(_user_safe.values())


def clear_safe_globals():
    """Forget everything ``add_safe_globals`` added."""
    _user_safe.clear()


@contextlib.contextmanager
def safe_globals(safe_globals):
    """Context manager: ``add_safe_globals(safe_globals)`` for the duration of the block.

    Example::

        with ember.serialization.safe_globals([MyConfig]):
            ckpt = ember.load("ckpt.pt")
    """
    saved = dict(_user_safe)
    add_safe_globals(safe_globals)
    try:
        yield
    finally:
        _user_safe.clear()
        _user_safe.update(saved)


class _Pickler(pickle.Pickler):
    def __init__(self, file, protocol, add_blob):
        super().__init__(file, protocol=protocol)
        self._add_blob = add_blob

    def persistent_id(self, obj):
        t = type(obj)
        if isinstance(obj, Tensor) and t.__name__ in ("Tensor", "Parameter", "Buffer") \
                and t.__module__ in ("ember.tensor", "ember.nn.parameter"):
            return ("tensor", self._add_blob(obj))
        if t is np.ndarray and obj.dtype in _dt._NP2DT:
            return ("ndarray", self._add_blob(obj))
        if t is _dt.dtype:
            return ("dtype", obj.name)
        return None


def dumps(obj, protocol, add_blob):
    """Pickle ``obj`` with tensors/arrays/dtypes as blob references."""
    buf = io.BytesIO()
    _Pickler(buf, protocol if protocol is not None else pickle.DEFAULT_PROTOCOL,
             add_blob).dump(obj)
    return buf.getvalue()


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, blobs):
        super().__init__(file)
        self._blobs = blobs

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 2 and isinstance(pid[0], str)):
            raise pickle.UnpicklingError(f"bad persistent id {pid!r}")
        kind, key = pid
        if kind in ("tensor", "ndarray") and type(key) is int and 0 <= key < len(self._blobs):
            return self._blobs[key]
        if kind == "dtype" and key in _dt._NAMES:
            return _dt._NAMES[key]
        raise pickle.UnpicklingError(f"bad persistent id {pid!r}")


class RestrictedUnpickler(_Unpickler):
    """Resolves only allow-listed globals; refuses the rest by name, without importing them."""

    def find_class(self, module, name):
        key = f"{module}.{name}"
        obj = _user_safe.get(key, _DEFAULT_SAFE.get(key))
        if obj is None:
            raise WeightsOnlyUnpicklingError(
                f"Unsupported global: GLOBAL {key} was not an allowed global by default. "
                f"If you trust this file, either load it with weights_only=False, or allow this "
                f"global with ember.serialization.add_safe_globals([{name}]) or the "
                f"ember.serialization.safe_globals([{name}]) context manager.")
        return obj


def loads(data, blobs, weights_only):
    """Unpickle ``data``; ``weights_only`` restricts globals to the allow-list."""
    cls = RestrictedUnpickler if weights_only else _Unpickler
    return cls(io.BytesIO(data), blobs).load()
