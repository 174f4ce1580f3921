"""The restricted unpickler for PyTorch checkpoints: state_dict globals only, mapped to ember.

``torch.save`` pickles a state_dict as calls of a handful of globals (``torch._utils.
_rebuild_tensor_v2``, ``torch.FloatStorage``, ``collections.OrderedDict``...) with tensor bytes
referenced through persistent ids. ``TorchUnpickler`` maps exactly those globals to small
validating functions that build NumPy-backed ember tensors; every other global is refused by
name before anything is imported. It runs on the pure-Python unpickler so that opcodes that
build arbitrary objects (``INST``, ``OBJ``, ``NEWOBJ``, ``EXT*``) are refused outright, ``BUILD``
only sets attributes of an ``OrderedDict`` (a state_dict's ``_metadata``), and the memo is a
dict (no giant ``LONG_BINPUT`` allocations).
"""

from __future__ import annotations

import codecs
import collections
import pickle

import numpy as np

from ember import dtypes as _dt
from ember.backend import device as _device
from ember.io import _views
from ember.tensor import Size, Tensor, _wrap

__all__ = ["Forbidden", "Malformed", "Storage", "StorageType", "TorchUnpickler", "check_depth"]

_MAX_DIMS = 64
_MAX_INT = 1 << 62
_MAX_DEPTH = 1000


class Malformed(Exception):
    """The pickle is not a well-formed state_dict pickle (the loader names the file)."""


class Forbidden(Exception):
    """The pickle needs a global or opcode that is not allowed (its ``args[0]`` names it)."""


class StorageType:
    """What ``torch.FloatStorage`` & co. stand for: the dtype of the bytes in the archive."""

    __slots__ = ("dtype", "name", "raw")

    def __init__(self, name, raw, dtype):
        self.name, self.raw, self.dtype = name, np.dtype(raw), np.dtype(dtype)

    def __repr__(self):
        return f"torch.{self.name}"


# bfloat16 bytes are read as uint16 and widened to float32 (ember.bfloat16's storage).
_STORAGE_TYPES = {n: StorageType(n, r, d) for n, r, d in [
    ("FloatStorage", "<f4", np.float32), ("DoubleStorage", "<f8", np.float64),
    ("HalfStorage", "<f2", np.float16), ("BFloat16Storage", "<u2", np.float32),
    ("LongStorage", "<i8", np.int64), ("IntStorage", "<i4", np.int32),
    ("ShortStorage", "<i2", np.int16), ("CharStorage", "i1", np.int8),
    ("ByteStorage", "u1", np.uint8), ("BoolStorage", "?", np.bool_),
    ("UntypedStorage", "u1", np.uint8),
]}


class Storage:
    """A storage's elements as a 1-D NumPy array (filled later in the legacy format)."""

    __slots__ = ("array", "key", "type")

    def __init__(self, array, stype, key):
        self.array, self.type, self.key = array, stype, key


def _int(x, what):
    if type(x) is not int or not 0 <= x < _MAX_INT:
        raise Malformed(f"{what} must be a non-negative int, got {x!r}")
    return x


def _ints(x, what):
    if type(x) not in (tuple, list, Size) or len(x) > _MAX_DIMS:
        raise Malformed(f"{what} must be a tuple of at most {_MAX_DIMS} ints, got {x!r}")
    return tuple(_int(v, what) for v in x)


def _hooks(h):
    if h is not None and not (type(h) is collections.OrderedDict and not h):
        raise Malformed("a tensor carries backward hooks; a state_dict never does")


def _view(storage, offset, size, stride, dtype=None):
    if type(storage) is not Storage:
        raise Malformed(f"a tensor's storage must come from the archive, got {storage!r}")
    offset = _int(offset, "storage offset")
    size, stride = _ints(size, "tensor size"), _ints(stride, "tensor stride")
    if len(size) != len(stride):
        raise Malformed(f"tensor size {list(size)} and stride {list(stride)} differ in length")
    base = storage.array
    if dtype is not None and dtype != base.dtype:  # _rebuild_tensor_v3 over untyped bytes
        if base.dtype != np.uint8 or base.size % dtype.itemsize:
            raise Malformed(f"cannot view a {storage.type!r} of {base.size} elements as {dtype}")
        base = base.view(dtype)
    numel = 1
    for s in size:
        numel *= s
    last = _views.last_element(offset, size, stride) if numel else offset - 1
    if last >= base.size:
        raise Malformed(
            f"a tensor of size {list(size)}, stride {list(stride)} at offset {offset} reaches "
            f"element {last} of a storage that holds {base.size} (storage {storage.key!r})")
    if not numel:
        return np.empty(size, dtype=base.dtype)
    # A view, as torch gives: tensors saved from one storage share memory again
    return _views.strided(base, size, offset, stride)


def _tensor(arr, requires_grad):
    if type(requires_grad) is not bool:
        raise Malformed(f"requires_grad must be a bool, got {requires_grad!r}")
    t = _wrap(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _wrap(_view(storage, storage_offset, size, stride))


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                       metadata=None):
    _hooks(backward_hooks)
    return _tensor(_view(storage, storage_offset, size, stride), requires_grad)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                       dtype, metadata=None):
    _hooks(backward_hooks)
    if type(dtype) is not _dt.dtype or dtype is _dt.bfloat16:
        raise Malformed(f"_rebuild_tensor_v3 needs a dtype, got {dtype!r}")
    return _tensor(_view(storage, storage_offset, size, stride, dtype.np), requires_grad)


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    from ember.nn.parameter import Parameter

    _hooks(backward_hooks)
    if type(data) is not Tensor or type(requires_grad) is not bool:
        raise Malformed(f"a Parameter must wrap a tensor, got {type(data).__name__}")
    if state:
        raise Malformed("a Parameter carries extra Python attributes (a subclass?)")
    return Parameter(data, requires_grad=requires_grad)


def _size(dims=()):
    return Size(_ints(dims, "torch.Size"))


def _make_device(kind, index=None):
    if type(kind) is not str or (index is not None and type(index) is not int):
        raise Malformed(f"bad torch.device arguments {kind!r}, {index!r}")
    try:
        return _device(kind, index)
    except (ValueError, RuntimeError) as e:
        raise Malformed(f"bad torch.device {kind!r}: {e}") from None


def _latin1_bytes(text, encoding):
    # How protocol-2 pickles spell bytes; only this encoding (no codec lookup by name).
    if type(text) is not str or encoding != "latin1":
        raise Malformed(f"_codecs.encode is allowed only as (str, 'latin1'), got {encoding!r}")
    return codecs.latin_1_encode(text)[0]


def _set(items=()):
    return set(items)


def _frozenset(items=()):
    return frozenset(items)


def _bytearray(data=b""):
    # protocol 2 spells bytearray(b"..") as bytearray(_codecs.encode(text, "latin1"))
    if type(data) is not bytes:
        raise Malformed(f"bytearray is allowed only from bytes, got {type(data).__name__}")
    return bytearray(data)


def _complex(real=0.0, imag=0.0):
    if type(real) not in (int, float) or type(imag) not in (int, float):
        raise Malformed(f"complex is allowed only from two numbers, got {real!r:.50}, "
                        f"{imag!r:.50}")
    return complex(real, imag)


def _counter(items=()):
    if type(items) is not dict:
        raise Malformed(f"Counter is allowed only from a dict, got {type(items).__name__}")
    return collections.Counter(items)


_GLOBALS = {
    "collections.OrderedDict": collections.OrderedDict,
    "torch._utils._rebuild_tensor": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
    "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "torch.Size": _size,
    "torch.device": _make_device,
    "_codecs.encode": _latin1_bytes,
    "builtins.set": _set,
    "builtins.frozenset": _frozenset,
    # the rest of torch.load(weights_only=True)'s plain-data globals
    "builtins.bytearray": _bytearray,
    "builtins.complex": _complex,
    "collections.Counter": _counter,
    "torch.storage.UntypedStorage": _STORAGE_TYPES["UntypedStorage"],
}
_GLOBALS.update((f"torch.{n}", t) for n, t in _STORAGE_TYPES.items())
_GLOBALS.update((f"torch.{n}", _dt._NAMES[n]) for n in (
    "float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8",
    "bool", "float", "double", "half", "long", "int", "short"))
_UNSUPPORTED_DTYPES = {"complex32", "complex64", "complex128", "cfloat", "cdouble", "uint16",
                       "uint32", "uint64", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz",
                       "float8_e5m2fnuz", "qint8", "quint8", "qint32"}
ALLOWED = sorted(_GLOBALS)

_REFUSED_OPCODES = {"INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "EXT1", "EXT2", "EXT4", "PERSID",
                    "NEXT_BUFFER", "READONLY_BUFFER", "BYTEARRAY8"}


def _refuse(code):
    def load(self):
        raise Forbidden(f"the pickle opcode {code}")
    return load


def _load_inst(self):
    # INST names its class inline: report it as the global it would have imported.
    module = self.readline()[:-1].decode("utf-8", "replace")
    name = self.readline()[:-1].decode("utf-8", "replace")
    raise Forbidden(f"the global '{module}.{name}' (pickle opcode INST)")


def _load_build(self):
    state = self.stack.pop()
    inst = self.stack[-1]
    # Only a state_dict's OrderedDict takes attributes (``_metadata``); the instance dict is
    # plain data, so no name in it can select code.
    if type(inst) is not collections.OrderedDict or type(state) is not dict \
            or not all(type(k) is str for k in state):
        raise Malformed(f"BUILD on a {type(inst).__name__} with a {type(state).__name__} state")
    inst.__dict__.update(state)


class _Dispatch(dict):
    def __missing__(self, code):
        raise Malformed(f"unknown pickle opcode {code:#04x}")


_DISPATCH = _Dispatch(pickle._Unpickler.dispatch)
_DISPATCH.update({getattr(pickle, code)[0]: _refuse(code) for code in _REFUSED_OPCODES})
_DISPATCH[pickle.INST[0]] = _load_inst
_DISPATCH[pickle.BUILD[0]] = _load_build


class TorchUnpickler(pickle._Unpickler):
    """Unpickle one torch pickle; ``persistent_load(pid)`` is supplied by the loader."""

    dispatch = _DISPATCH

    def __init__(self, file, persistent_load=None):
        super().__init__(file, encoding="utf-8")
        self._persistent = persistent_load

    def find_class(self, module, name):
        module = "builtins" if module == "__builtin__" else module
        key = f"{module}.{name}"
        obj = _GLOBALS.get(key)
        if obj is None:
            if module == "torch" and (name in _UNSUPPORTED_DTYPES or name.endswith("Storage")):
                raise Malformed(f"it holds a tensor of dtype torch.{name}, which ember does not "
                                "support")
            raise Forbidden(f"the global '{key}'")
        return obj

    def persistent_load(self, pid):
        if self._persistent is None:
            raise Malformed(f"unexpected persistent id {pid!r}")
        return self._persistent(pid)


def parse_pid(pid, n):
    """``(storage_type, key, numel, extra)`` from a ``('storage', type, key, location, numel
    [, view])`` persistent id of ``n`` items, validated."""
    if type(pid) is not tuple or len(pid) != n or pid[0] != "storage":
        raise Malformed(f"bad persistent id {pid!r:.200} (expected a {n}-tuple "
                        "('storage', type, key, location, numel...))")
    stype, key, location, numel = pid[1:5]
    if type(stype) is not StorageType:
        raise Malformed(f"persistent id names storage type {stype!r}, not a torch storage class")
    if type(key) is not str or not 0 < len(key) <= 64 or type(location) is not str:
        raise Malformed(f"bad storage key or location in persistent id {pid!r:.200}")
    return stype, key, _int(numel, "storage size"), pid[5:]


def check_depth(obj):
    """Refuse containers nested deeper than any real checkpoint (no recursion used)."""
    depth = {}
    stack = [(obj, 1)]
    while stack:
        o, d = stack.pop()
        t = type(o)
        if t not in (dict, list, tuple, set, frozenset, collections.OrderedDict, Size):
            continue
        if depth.get(id(o), 0) >= d:
            continue  # seen at this depth or deeper: shared objects are walked once per level
        if d > _MAX_DEPTH:
            raise Malformed(f"containers are nested more than {_MAX_DEPTH} levels deep (or "
                            "contain themselves)")
        depth[id(o)] = d
        children = o.values() if isinstance(o, dict) else o
        stack.extend((c, d + 1) for c in children)
