"""The safe checkpoint structure: Python containers <-> plain JSON, tensors as blob references.

Plain JSON carries ``None``, bools, ints, finite floats, strings, lists and dicts whose keys are
strings not starting with ``$``. Everything else is an object with a ``"$type"`` key::

    {"$type": "tensor", "id": 3}             a tensor (blob 3 in the archive's tensor table)
    {"$type": "dict", "items": [[0, ...]]}   a dict with other keys (an optimizer's {0: state})
    {"$type": "odict", "items": [...], "attrs": {...}}   OrderedDict (+ a state_dict's _metadata)
    {"$type": "tuple" | "size" | "set" | "frozenset" | "counter", "items": [...]}
    {"$type": "float", "value": "nan" | "inf" | "-inf"}, {"$type": "complex", ...},
    {"$type": "bytes" | "bytearray", "base64": ...}, {"$type": "dtype", "name": "float32"},
    {"$type": "device", "name": "cpu"}, {"$type": "ndarray" | "npscalar", "id": 4}

Decoding builds only these types: no name in the file ever selects code to run.
"""

from __future__ import annotations

import base64
import math
from collections import Counter, OrderedDict

import numpy as np

from ember import dtypes as _dt
from ember.backend import device as _device
from ember.tensor import Size, Tensor

__all__ = ["DecodeError", "Encoder", "Unencodable", "decode"]


class Unencodable(Exception):
    """The object needs pickle (an arbitrary class, a cycle...): the caller falls back to it."""


class DecodeError(ValueError):
    """The JSON structure is malformed (the caller names the file)."""


_SEQ_TAGS = {tuple: "tuple", Size: "size", set: "set", frozenset: "frozenset"}
_SEQ_TYPES = {"tuple": tuple, "size": Size, "set": set, "frozenset": frozenset}


class Encoder:
    """Encode one object tree; ``blobs`` collects ``(kind, array, requires_grad)`` per tensor.

    A tensor object that appears twice (tied weights) is stored once and loads as one object.
    """

    def __init__(self, add_blob):
        self._add_blob = add_blob  # add_blob(obj) -> int: the blob index for a tensor or array
        self._stack = set()

    def encode(self, obj):
        t = type(obj)
        if obj is None or t is bool or t is int or t is str:
            return obj
        if t is float:
            return obj if math.isfinite(obj) else {"$type": "float", "value": repr(obj)}
        if isinstance(obj, Tensor) or t is np.ndarray:
            return {"$type": "ndarray" if t is np.ndarray else "tensor", "id": self._add_blob(obj)}
        if isinstance(obj, np.generic) and obj.dtype in _dt._NP2DT:
            return {"$type": "npscalar", "id": self._add_blob(obj)}
        if t is _dt.dtype:
            return {"$type": "dtype", "name": obj.name}
        if t is _device:
            return {"$type": "device", "name": str(obj)}
        if t is complex:
            return {"$type": "complex", "real": self.encode(obj.real),
                    "imag": self.encode(obj.imag)}
        if t is bytes or t is bytearray:
            return {"$type": t.__name__, "base64": base64.b64encode(obj).decode("ascii")}
        if t not in (list, dict, OrderedDict, Counter) and t not in _SEQ_TAGS:
            raise Unencodable(f"{t.__module__}.{t.__qualname__}")
        if id(obj) in self._stack:
            raise Unencodable("a container that contains itself")
        self._stack.add(id(obj))
        try:
            return self._container(obj, t)
        finally:
            self._stack.discard(id(obj))

    def _container(self, obj, t):
        if t is list:
            return [self.encode(v) for v in obj]
        if t in _SEQ_TAGS:
            return {"$type": _SEQ_TAGS[t], "items": [self.encode(v) for v in obj]}
        if t is dict and all(type(k) is str and not k.startswith("$") for k in obj):
            return {k: self.encode(v) for k, v in obj.items()}
        items = [[self.encode(k), self.encode(v)] for k, v in obj.items()]
        if t is dict:
            return {"$type": "dict", "items": items}
        if t is Counter:
            return {"$type": "counter", "items": items}
        out = {"$type": "odict", "items": items}
        attrs = getattr(obj, "__dict__", None)
        if attrs:  # Module.state_dict() keeps version info in ``_metadata``
            out["attrs"] = self.encode(dict(attrs))
        return out


def decode(node, blobs):
    """Rebuild the object tree; ``blobs[i]`` is the already-loaded tensor/array of blob ``i``."""
    if isinstance(node, list):
        return [decode(v, blobs) for v in node]
    if not isinstance(node, dict):
        return node
    tag = node.get("$type")
    if tag is None:
        return {k: decode(v, blobs) for k, v in node.items()}
    try:
        return _decode_tag(tag, node, blobs)
    except (KeyError, TypeError, ValueError, IndexError) as e:
        if isinstance(e, DecodeError):
            raise
        raise DecodeError(f"bad {tag!r} entry in data.json ({type(e).__name__}: {e})") from None


def _decode_tag(tag, node, blobs):
    if tag in ("tensor", "ndarray", "npscalar"):
        i = node["id"]
        if type(i) is not int or not 0 <= i < len(blobs):
            raise DecodeError(f"data.json refers to tensor {i!r}, but the archive holds "
                              f"{len(blobs)}")
        return blobs[i]
    if tag in _SEQ_TYPES:
        return _SEQ_TYPES[tag](decode(v, blobs) for v in node["items"])
    if tag in ("dict", "odict", "counter"):
        cls = {"dict": dict, "odict": OrderedDict, "counter": Counter}[tag]
        pairs = [(_key(decode(k, blobs)), decode(v, blobs)) for k, v in node["items"]]
        out = Counter(dict(pairs)) if cls is Counter else cls(pairs)
        if tag == "odict" and "attrs" in node:
            for k, v in decode(node["attrs"], blobs).items():
                setattr(out, k, v)
        return out
    if tag == "float":
        if node["value"] not in ("nan", "inf", "-inf"):
            raise DecodeError(f"bad float value {node['value']!r} in data.json")
        return float(node["value"])
    if tag == "complex":
        return complex(decode(node["real"], blobs), decode(node["imag"], blobs))
    if tag == "bytes":
        return base64.b64decode(node["base64"], validate=True)
    if tag == "bytearray":
        return bytearray(base64.b64decode(node["base64"], validate=True))
    if tag == "dtype":
        if node["name"] not in _dt._NAMES:
            raise DecodeError(f"unknown dtype {node['name']!r} in data.json")
        return _dt._NAMES[node["name"]]
    if tag == "device":
        return _device(node["name"])
    raise DecodeError(f"unknown entry type {tag!r} in data.json (written by a newer ember?)")


def _key(k):
    try:
        hash(k)
    except TypeError:
        raise DecodeError(f"unhashable dict key of type {type(k).__name__} in data.json") from None
    return k
