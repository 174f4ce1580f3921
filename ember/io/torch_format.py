"""PyTorch's checkpoint files, read without PyTorch and without running code from the file.

    sd = ember.load("resnet18.pth")          # torch.save's zip format, or the legacy pickle one
    model.load_state_dict(sd)
    ember.save(model.state_dict(), "m.pt", format="torch")   # torch.load(weights_only=True) reads it

Reading: the zip format is ``<prefix>/data.pkl`` (a protocol-2 pickle), ``<prefix>/data/<key>``
(the raw bytes of each storage), ``byteorder`` and ``version`` records; the legacy format is a
run of pickles (magic number, protocol version, system info, the object, the storage keys) then
each storage as an int64 element count and its bytes. The pickle goes through
``ember.io._torch_unpickler.TorchUnpickler`` (state_dict globals only). Every storage size is
checked against the bytes in the file, every tensor's offset/size/stride against its storage,
zip members against the archive size (compressed ones against the largest ratio deflate
can reach), and the pickle is capped at ``MAX_PICKLE_BYTES``. Whatever is wrong raises
``TorchFileError`` naming the file; a refused global raises ``UnsafeGlobalError`` (a subclass
that is also a ``pickle.UnpicklingError``). There is no fallback to full pickle.
"""

from __future__ import annotations

import codecs
import collections
import io
import os
import pickle
import struct
import typing
import zipfile
import zlib

import numpy as np

from ember import dtypes as _dt
from ember.backend import device as _device
from ember.io import _torch_unpickler as _tu, _views
from ember.io._atomic import atomic_write
from ember.io._pickle import WeightsOnlyUnpicklingError
from ember.io.checkpoint import CheckpointError
from ember.nn.parameter import Parameter
from ember.tensor import Size, Tensor

__all__ = ["MAX_PICKLE_BYTES", "TorchFileError", "UnsafeGlobalError", "load", "save", "sniff"]

MAX_PICKLE_BYTES = 1 << 28
MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_MAGIC = b"\x8a\x0a" + MAGIC_NUMBER.to_bytes(10, "little")  # LONG1 opcode of the magic number
_LEGACY_PROTOCOL = 1001
_MAX_RATIO = 1100  # deflate cannot expand more than ~1032x; a larger claim is a lie (zip bomb)
_CHUNK = 1 << 24
_PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
                  AttributeError, OverflowError, RecursionError, struct.error, _tu.Malformed)
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError,
               ValueError, OverflowError, struct.error, KeyError)


class TorchFileError(CheckpointError):
    """A PyTorch checkpoint that ember refuses: malformed, truncated, or unsafe."""


class UnsafeGlobalError(TorchFileError, WeightsOnlyUnpicklingError):
    """The checkpoint's pickle needs a global (or opcode) outside the state_dict allow-list."""


def sniff(head: bytes, names=None):
    """``"zip"``, ``"legacy"`` or ``None``: is this a torch.save file? ``head`` is the first
    32 bytes; ``names`` the member names when it is a readable zip."""
    if head[:1] == b"\x80" and _MAGIC in head[:32]:
        return "legacy"
    if names is not None and "data.json" not in names and any(
            n.count("/") == 1 and n.endswith("/data.pkl") for n in names):
        return "zip"
    return None


def load(fh, name):
    """Load the torch checkpoint in the seekable binary file ``fh`` (``name`` for messages)."""
    start = fh.tell()
    size = fh.seek(0, os.SEEK_END) - start
    fh.seek(start)
    head = fh.read(32)
    fh.seek(start)
    try:
        if sniff(head) == "legacy":
            return _LegacyReader(fh, name, size).load()
        try:
            zf = zipfile.ZipFile(fh)
        except _ZIP_ERRORS as e:
            raise _tu.Malformed(f"cannot read the zip directory ({e})") from None
        with zf:
            return _ZipReader(zf, name, size).load()
    except _tu.Forbidden as e:
        raise UnsafeGlobalError(
            f"ember.load: {name!r} needs {e.args[0]}, which is not allowed: ember never runs "
            f"code from a checkpoint. A PyTorch state_dict needs only tensors, storages, "
            f"OrderedDict and plain containers; re-save the file with torch.save(model."
            f"state_dict(), ...).") from None
    except MemoryError:
        raise TorchFileError(f"ember.load: {name!r}: out of memory while reading it") from None
    except (_tu.Malformed, *_PICKLE_ERRORS, *_ZIP_ERRORS) as e:
        if isinstance(e, TorchFileError):
            raise
        what = str(e) if isinstance(e, _tu.Malformed) else f"{type(e).__name__}: {e}"
        if isinstance(e, EOFError):
            what = "the data ends early (truncated)"
        raise TorchFileError(f"ember.load: {name!r} is a malformed or truncated PyTorch "
                             f"checkpoint: {what}") from None


def _unpickle(fh, persistent_load=None):
    obj = _tu.TorchUnpickler(fh, persistent_load).load()
    _tu.check_depth(obj)
    return obj


def _fill(src_read_into, raw, what):
    """Read exactly ``raw.nbytes`` bytes into ``raw`` through ``src_read_into``."""
    flat = raw.reshape(-1).view(np.uint8)
    pos = 0
    while pos < flat.nbytes:
        n = src_read_into(flat[pos:pos + _CHUNK])
        if not n:
            raise _tu.Malformed(f"{what} ends after {pos} of {flat.nbytes} bytes")
        pos += n


def _convert(raw, stype, big_endian):
    """The storage's elements in their final native dtype (bfloat16 widened to float32)."""
    if big_endian and raw.dtype.itemsize > 1:
        raw = raw.byteswap()
    else:
        raw = raw.view(raw.dtype.newbyteorder("="))
    if stype.name == "BFloat16Storage":
        return (raw.astype(np.uint32) << 16).view(np.float32)
    return raw.view(stype.dtype) if raw.dtype != stype.dtype else raw


class _ZipReader:
    def __init__(self, zf, name, size):
        self.zf, self.name, self.size = zf, name, size
        self.members = {i.filename: i for i in zf.infolist()}
        pkls = [n for n in self.members if n.count("/") == 1 and n.endswith("/data.pkl")]
        if len(pkls) != 1:
            raise _tu.Malformed(f"expected one '<name>/data.pkl' record, found {len(pkls)}")
        self.prefix = pkls[0][:-len("data.pkl")]
        self.storages = {}
        self.budget = 64 * size + (64 << 20)  # bytes the compressed members may expand to

    def member(self, name, limit):
        info = self.members.get(self.prefix + name)
        if info is None:
            return None
        if info.flag_bits & 1:
            raise _tu.Malformed(f"record {info.filename!r} is encrypted")
        end = info.header_offset + 30 + len(info.filename) + info.compress_size
        if info.compress_size > self.size or end > self.size:
            raise _tu.Malformed(f"record {info.filename!r} claims {info.compress_size} bytes "
                                f"past the end of the {self.size}-byte file")
        if info.compress_type == zipfile.ZIP_STORED:
            if info.file_size != info.compress_size:
                raise _tu.Malformed(f"stored record {info.filename!r} declares {info.file_size} "
                                    f"bytes but holds {info.compress_size}")
        else:
            if info.file_size > _MAX_RATIO * info.compress_size + 1024 \
                    or info.file_size > self.budget:
                raise _tu.Malformed(
                    f"record {info.filename!r} declares {info.file_size} bytes from "
                    f"{info.compress_size} compressed bytes (a zip bomb?)")
            self.budget -= info.file_size
        if info.file_size > limit:
            raise _tu.Malformed(f"record {info.filename!r} is {info.file_size} bytes, more than "
                                f"the {limit} allowed")
        return info

    def read_small(self, name, default, limit=64):
        info = self.member(name, limit)
        if info is None:
            return default
        return self.zf.read(info).decode("ascii", "replace").strip()

    def load(self):
        byteorder = self.read_small("byteorder", "little")
        if byteorder not in ("little", "big"):
            raise _tu.Malformed(f"unknown byteorder record {byteorder!r}")
        self.big = byteorder == "big"
        info = self.member("data.pkl", MAX_PICKLE_BYTES)
        data = self.zf.read(info)
        return _unpickle(io.BytesIO(data), self.persistent_load)

    def read_stored(self, info, raw, key):
        """Read an uncompressed record straight into ``raw`` (one copy), then check its CRC."""
        fp = self.zf.fp
        fp.seek(info.header_offset)
        local = fp.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise _tu.Malformed(f"bad local zip header for storage {key!r}")
        fp.seek(sum(struct.unpack("<HH", local[26:30])), os.SEEK_CUR)
        _fill(fp.readinto, raw, f"storage {key!r}")
        if zlib.crc32(raw.reshape(-1).view(np.uint8)) != info.CRC:
            raise _tu.Malformed(f"CRC check failed for storage {key!r}")

    def persistent_load(self, pid):
        stype, key, numel, _ = _tu.parse_pid(pid, 5)
        if key in self.storages:
            st = self.storages[key]
            if st.type is not stype or st.array.size != numel:
                raise _tu.Malformed(f"storage {key!r} is declared twice with different types "
                                    "or sizes")
            return st
        nbytes = numel * stype.raw.itemsize
        info = self.member(f"data/{key}", nbytes)
        if info is None:
            raise _tu.Malformed(f"storage {key!r} is missing from the archive")
        if info.file_size != nbytes:
            raise _tu.Malformed(f"storage {key!r} declares {numel} elements of {stype!r} "
                                f"({nbytes} bytes), but the archive holds {info.file_size}")
        raw = np.empty(numel, dtype=stype.raw)
        if info.compress_type == zipfile.ZIP_STORED:
            self.read_stored(info, raw, key)
        else:
            with self.zf.open(info) as src:
                _fill(src.readinto, raw, f"storage {key!r}")
                if src.read(1):  # reaching the end also makes zipfile check the CRC
                    raise _tu.Malformed(f"storage {key!r} holds more than its declared size")
        st = self.storages[key] = _tu.Storage(_convert(raw, stype, self.big), stype, key)
        return st


class _LegacyReader:
    """``torch.save(..., _use_new_zipfile_serialization=False)`` files."""

    def __init__(self, fh, name, size):
        self.fh, self.name, self.size = fh, name, size
        self.storages = {}
        self.claimed = 0

    def load(self):
        fh = self.fh
        magic, protocol, info = _unpickle(fh), _unpickle(fh), _unpickle(fh)
        if magic != MAGIC_NUMBER or protocol != _LEGACY_PROTOCOL or type(info) is not dict:
            raise _tu.Malformed(f"bad legacy header (magic {magic!r}, protocol {protocol!r})")
        big = info.get("little_endian", True) is False
        obj = _unpickle(fh, self.persistent_load)
        keys = _unpickle(fh)
        if type(keys) is not list or any(type(k) is not str for k in keys) \
                or set(keys) != set(self.storages) or len(keys) != len(set(keys)):
            raise _tu.Malformed("the storage key list does not match the storages the object "
                                "uses")
        for key in keys:
            st = self.storages[key]
            count = fh.read(8)
            if len(count) != 8:
                raise _tu.Malformed(f"storage {key!r} is missing (file ends)")
            n = struct.unpack(">q" if big else "<q", count)[0]
            if n != st.array.size:
                raise _tu.Malformed(f"storage {key!r} holds {n} elements, the pickle says "
                                    f"{st.array.size}")
            direct = not big and st.type.raw == st.array.dtype
            raw = st.array if direct else np.empty(n, dtype=st.type.raw)
            _fill(fh.readinto, raw, f"storage {key!r}")
            if not direct:
                st.array[...] = _convert(raw, st.type, big)
        return obj

    def persistent_load(self, pid):
        if type(pid) is tuple and pid[:1] == ("module",):
            raise _tu.Forbidden("a pickled nn.Module class (persistent id 'module')")
        stype, key, numel, (view,) = _tu.parse_pid(pid, 6)
        if view is not None:
            raise _tu.Malformed("storage views (pre-1.0 legacy files) are not supported")
        if key in self.storages:
            st = self.storages[key]
            if st.type is not stype or st.array.size != numel:
                raise _tu.Malformed(f"storage {key!r} is declared twice with different types "
                                    "or sizes")
            return st
        nbytes = numel * stype.raw.itemsize
        self.claimed += nbytes + 8
        if self.claimed > self.size - self.fh.tell():
            raise _tu.Malformed(f"storage {key!r} declares {nbytes} bytes; the storages "
                                f"together claim more than the {self.size}-byte file holds")
        # Tensors are views of the final array, filled once the storage bytes are read.
        st = _tu.Storage(np.empty(numel, dtype=stype.dtype), stype, key)
        self.storages[key] = st
        return st


# ----------------------------------------------------------------------------------- save
class _Global:
    """Pickled as ``GLOBAL module name`` without importing the module (torch is not here)."""

    __slots__ = ("module", "name")

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):
        raise TypeError(f"{self.module}.{self.name} is a name to pickle, not to call")


class _StorageRef:
    __slots__ = ("array", "key", "type")

    def __init__(self, key, array):
        self.key, self.array = key, array
        self.type = _Global("torch", _STORAGE_NAMES[array.dtype])


_STORAGE_NAMES = {np.dtype(d): n for d, n in [
    (np.float32, "FloatStorage"), (np.float64, "DoubleStorage"), (np.float16, "HalfStorage"),
    (np.int64, "LongStorage"), (np.int32, "IntStorage"), (np.int16, "ShortStorage"),
    (np.int8, "CharStorage"), (np.uint8, "ByteStorage"), (np.bool_, "BoolStorage")]}
_REBUILD = _Global("torch._utils", "_rebuild_tensor_v2")
_REBUILD_PARAM = _Global("torch._utils", "_rebuild_parameter")
_TORCH_SIZE, _TORCH_DEVICE = _Global("torch", "Size"), _Global("torch", "device")
_PLAIN = (type(None), bool, int, float, complex, str, bytes, bytearray, list, tuple, dict, set,
          frozenset, collections.OrderedDict, collections.Counter)
# What pickle itself emits for OrderedDict, Counter, sets, complex and (protocol 2) bytes.
_PLAIN_GLOBALS = (collections.OrderedDict, collections.Counter, set, frozenset, complex, bytearray,
                  codecs.encode)


def _save_global(pickler, obj):
    pickler.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
    pickler.memoize(obj)


class _TorchPickler(pickle._Pickler):
    """Pickles as torch.save does (protocol 2, torch's globals, storages as persistent ids)."""

    dispatch: typing.ClassVar[dict] = {
        **pickle._Pickler.dispatch, _Global: _save_global,
        _dt.dtype: lambda self, d: _save_global(self, _Global("torch", d.name))}

    def __init__(self, file):
        super().__init__(file, protocol=2)
        self.storages = {}  # id(root array) -> _StorageRef; the roots stay referenced there

    def persistent_id(self, obj):
        if type(obj) is _StorageRef:
            return ("storage", obj.type, obj.key, "cpu", obj.array.size)
        return None

    def storage_of(self, arr):
        """``(storage, offset, stride)``: tensors viewing one array share one storage."""
        where = _views.locate(arr)
        if where is None:
            root, offset = arr.copy(order="C"), 0
            stride = tuple(s // arr.itemsize for s in root.strides)
        else:
            root, offset, stride = where
        if id(root) not in self.storages:
            self.storages[id(root)] = _StorageRef(str(len(self.storages)), root.reshape(-1))
        return self.storages[id(root)], offset, stride

    def reducer_override(self, obj):
        t = type(obj)
        if isinstance(obj, Tensor):
            arr = obj._data
            if arr.dtype not in _STORAGE_NAMES:
                raise TypeError(f"ember.save(format='torch'): cannot save a {arr.dtype} tensor")
            storage, offset, stride = self.storage_of(arr)
            if t is Parameter:
                return (_REBUILD_PARAM, (obj.detach(), obj._rg, collections.OrderedDict()))
            return (_REBUILD, (storage, offset, tuple(arr.shape), stride, bool(obj._rg),
                               collections.OrderedDict()))
        if t is Size:
            return (_TORCH_SIZE, (tuple(obj),))
        if t is _device:
            return (_TORCH_DEVICE, (str(obj),))
        if t in _PLAIN or t is _Global or t is _dt.dtype or any(obj is g for g in _PLAIN_GLOBALS):
            return NotImplemented
        raise TypeError(f"ember.save(format='torch'): cannot save an object of type "
                        f"{t.__module__}.{t.__qualname__}; the torch format holds tensors, "
                        "dtypes, devices and plain containers (what torch.load(weights_only="
                        "True) reads)")


def _write_record(zf, name, data, align=64):
    info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
    info.file_size = len(data)
    # Pad the local header (as torch does, extra field id "FB") so the data starts aligned.
    start = zf.fp.tell() + 30 + len(name.encode("utf-8"))
    pad = (-(start + 4)) % align
    info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
    with zf.open(info, "w", force_zip64=len(data) >= zipfile.ZIP64_LIMIT) as out:
        out.write(data)


def _write_zip(fh, pkl, storages):
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        _write_record(zf, "archive/data.pkl", pkl)
        _write_record(zf, "archive/.format_version", b"1")
        _write_record(zf, "archive/.storage_alignment", b"64")
        _write_record(zf, "archive/byteorder", b"little")
        for ref in storages:
            le = np.ascontiguousarray(ref.array, dtype=ref.array.dtype.newbyteorder("<"))
            _write_record(zf, f"archive/data/{ref.key}", memoryview(le.view(np.uint8)))
        _write_record(zf, "archive/version", b"3\n")


def save(obj, f):
    """Write ``obj`` in torch.save's zip format, readable by ``torch.load(weights_only=True)``.

    Example::

        ember.io.torch_format.save(model.state_dict(), "model.pt")
        # elsewhere: model.load_state_dict(torch.load("model.pt", weights_only=True))
    """
    buf = io.BytesIO()
    pickler = _TorchPickler(buf)
    pickler.dump(obj)
    storages = list(pickler.storages.values())
    if isinstance(f, (str, os.PathLike)):
        atomic_write(f, lambda fh: _write_zip(fh, buf.getvalue(), storages))
    elif hasattr(f, "write"):
        _write_zip(f, buf.getvalue(), storages)
    else:
        raise TypeError(f"ember.save: f must be a path or a writable binary file, got "
                        f"{type(f).__name__}")
