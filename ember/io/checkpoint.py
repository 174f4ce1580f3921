"""ember's checkpoint format: ``ember.save`` / ``ember.load`` (PyTorch face: ``ember.serialization``).

A checkpoint is a zip archive (stored, not compressed) holding::

    data.json      {"format": "ember.checkpoint", "version": 1, "kind": "json" | "pickle",
                    "tensors": [{"dtype": "float32", "shape": [3, 4], "nbytes": 48,
                                 "kind": "tensor", "requires_grad": false}, ...],
                    "root": <the object, see ember.io._codec>}
    tensors/<i>    the raw little-endian C-order bytes of tensor i
    data.pkl       only when kind is "pickle" (an object the JSON structure cannot hold)

Version 2 (written only when it is needed) adds views, as torch.save keeps them: tensors that
view one array share a ``"kind": "storage"`` entry, and their own entries have no member but
``"storage": j, "offset": o, "stride": [...]`` (in elements), so they share memory once loaded.

Loading checks every size against data.json and the zip directory, checks CRCs, and never
executes code from the file unless the caller passes ``weights_only=False``.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile
import zlib

import numpy as np

from ember import dtypes as _dt
from ember.io import _pickle, _views
from ember.io._atomic import atomic_write
from ember.io._codec import Encoder, Unencodable, decode
from ember.tensor import Tensor, _wrap

__all__ = ["FORMAT", "VERSION", "CheckpointError", "load", "save"]

FORMAT, VERSION = "ember.checkpoint", 2  # version 2: tensor entries that view a storage
_CHUNK = 1 << 24  # read blobs 16 MiB at a time: bounded extra memory, writable arrays
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same object gives the same bytes


# What zipfile and json raise on damaged bytes (CheckpointError itself is re-raised first).
_DAMAGE = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError,
           ValueError, LookupError, OverflowError, RuntimeError, struct.error, RecursionError)


class CheckpointError(RuntimeError):
    """The file is not a readable ember checkpoint: empty, truncated, corrupted or foreign."""


# ----------------------------------------------------------------------------------- save
class _Blobs:
    """The tensor table: one entry and one zip member per distinct tensor/array object.

    Tensors that view one NumPy array (``t`` and ``t[1]``, ``t.t()``) are, as in torch.save,
    stored once: a ``"storage"`` entry holds the array and each tensor entry says where it
    lies in it (``"storage"``, ``"offset"``, ``"stride"``), so they share memory once loaded.
    """

    def __init__(self):
        # _objs keeps every indexed object alive, so an id is never reused while encoding
        self.meta, self.arrays, self._index, self._objs = [], [], {}, []
        self._roots = {}  # id(root array) -> [root, [(entry, offset, stride), ...]]

    def add(self, obj):
        key = id(obj)
        if key in self._index:
            return self._index[key]
        if isinstance(obj, Tensor):
            arr = obj._data
            kind = "parameter" if type(obj).__name__ == "Parameter" else "tensor"
            extra = {"requires_grad": bool(obj._rg)}
        else:
            arr = np.asarray(obj)
            kind = "ndarray" if isinstance(obj, np.ndarray) else "npscalar"
            extra = {}
        if arr.dtype not in _dt._NP2DT:
            raise TypeError(f"ember.save: cannot save an array of dtype {arr.dtype}")
        self._index[key] = i = len(self.arrays)
        self.arrays.append(arr)
        self._objs.append(obj)
        self.meta.append({"dtype": _dt._NP2DT[arr.dtype].name, "shape": list(arr.shape),
                          "nbytes": int(arr.nbytes), "kind": kind, **extra})
        if isinstance(obj, Tensor):
            self._note_view(i, arr)
        return i

    def _note_view(self, i, arr):
        where = _views.locate(arr) if arr.size else None
        if where is not None:
            root, offset, stride = where
            self._roots.setdefault(id(root), [root, []])[1].append((i, offset, list(stride)))

    def share_views(self):
        """Turn the entries of tensors viewing one array into views of one storage entry;
        returns whether any did (the file is then format version 2)."""
        shared = False
        for root, members in self._roots.values():
            if len(members) < 2:
                continue
            shared = True
            j = len(self.arrays)
            self.arrays.append(root.reshape(-1))
            self.meta.append({"dtype": _dt._NP2DT[root.dtype].name, "shape": [root.size],
                              "nbytes": int(root.nbytes), "kind": "storage"})
            for i, offset, stride in members:
                self.arrays[i] = None
                self.meta[i].update(nbytes=0, storage=j, offset=offset, stride=stride)
        return shared


def _encode(obj, pickle_protocol):
    blobs = _Blobs()
    header = {"format": FORMAT, "version": VERSION, "byteorder": "little"}
    try:
        root = Encoder(blobs.add).encode(obj)
        header.update(kind="json", root=root)
        pkl = None
    except Unencodable:
        blobs = _Blobs()
        pkl = _pickle.dumps(obj, pickle_protocol, blobs.add)
        header["kind"] = "pickle"
    if not blobs.share_views():
        header["version"] = 1  # readable by embers that predate shared storages
    header["tensors"] = blobs.meta
    data = json.dumps(header, allow_nan=False, separators=(",", ":")).encode("utf-8")
    return data, pkl, blobs.arrays


def _write_zip(fh, data, pkl, arrays):
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.writestr(zipfile.ZipInfo("data.json", _ZIP_TIME), data)
        if pkl is not None:
            zf.writestr(zipfile.ZipInfo("data.pkl", _ZIP_TIME), pkl)
        for i, arr in enumerate(arrays):
            if arr is None:  # a view of a storage entry: no bytes of its own
                continue
            le = arr.dtype.newbyteorder("<")
            flat = np.ascontiguousarray(arr, dtype=le).reshape(-1).view(np.uint8)
            info = zipfile.ZipInfo(f"tensors/{i}", _ZIP_TIME)
            info.file_size = flat.nbytes
            with zf.open(info, "w", force_zip64=flat.nbytes >= zipfile.ZIP64_LIMIT) as out:
                out.write(memoryview(flat))


def save(obj, f, pickle_module=None, pickle_protocol=None, _use_new_zipfile_serialization=True,
         _disable_byteorder_record=False):
    """Save ``obj`` (tensors, state_dicts, nested containers) to a path or binary file.

    Writes to a path are atomic: a process killed mid-save leaves the old file intact.
    Containers of tensors, numbers, strings, bools, None, dtypes and numpy arrays are stored
    without pickle; any other object (a whole ``nn.Module``) is pickled, and loading it back
    then needs ``weights_only=False`` or ``ember.serialization.add_safe_globals``.

    Example::

        ember.save({"model": model.state_dict(), "optim": opt.state_dict(), "epoch": 3},
                   "ckpt.pt")
    """
    if pickle_module is not None and pickle_module is not pickle:
        raise TypeError("ember.save supports only the standard pickle module as pickle_module")
    data, pkl, arrays = _encode(obj, pickle_protocol)
    if isinstance(f, (str, os.PathLike)):
        atomic_write(f, lambda fh: _write_zip(fh, data, pkl, arrays))
    elif hasattr(f, "write"):
        _write_zip(f, data, pkl, arrays)
    else:
        raise TypeError(f"ember.save: f must be a path or a writable binary file, got "
                        f"{type(f).__name__}")


# ----------------------------------------------------------------------------------- load
def _name(f):
    if isinstance(f, (str, os.PathLike)):
        return os.fspath(f)
    return getattr(f, "name", None) or f"<{type(f).__name__}>"


def _check_map_location(map_location):
    if map_location is None or callable(map_location):
        return
    if isinstance(map_location, (dict, str)) \
            or hasattr(map_location, "type"):
        return
    raise TypeError("map_location should be a str, a device, a dict or a callable, got "
                    f"{type(map_location).__name__}")


def load(f, map_location=None, pickle_module=None, *, weights_only=True, mmap=None,
         **pickle_load_args):
    """Load an object saved by ``ember.save``.

    Args:
        f: a path or a readable binary file (``io.BytesIO``).
        map_location: accepted for PyTorch compatibility ('cpu', a device, a dict or a
            callable); every tensor loads on the CPU.
        weights_only: ``True`` (default) never runs code from the file; ``False`` unpickles
            objects saved through the pickle fallback (trusted files only).

    Raises ``CheckpointError`` (naming the file) for empty, truncated, corrupted or foreign
    files, and ``WeightsOnlyUnpicklingError`` when a pickled object needs a global that is not
    allow-listed.

    Example::

        ckpt = ember.load("ckpt.pt")
        model.load_state_dict(ckpt["model"])
    """
    _check_map_location(map_location)
    weights_only = True if weights_only is None else weights_only
    name = _name(f)
    if isinstance(f, (str, os.PathLike)):
        with open(f, "rb") as fh:
            return _load(fh, name, weights_only)
    if not hasattr(f, "read"):
        raise TypeError(f"ember.load: f must be a path or a readable binary file, got "
                        f"{type(f).__name__}")
    if not (hasattr(f, "seekable") and f.seekable()):
        f = io.BytesIO(f.read())
    return _load(f, name, weights_only)


def _fail(name, what):
    raise CheckpointError(f"ember.load: {name!r} {what}")


def _load(fh, name, weights_only):
    start = fh.tell()
    head = fh.read(4)
    fh.seek(start)
    if not head:
        _fail(name, "is empty (0 bytes): not an ember checkpoint")
    if head[:2] != b"PK":
        if head[:1] == b"\x80":
            _fail(name, "is a raw pickle file (legacy torch.save format?), not an ember "
                        "checkpoint; ember does not unpickle such files")
        _fail(name, "is not an ember checkpoint (bad zip header)")
    try:
        zf = zipfile.ZipFile(fh)
    except _DAMAGE as e:
        _fail(name, f"is truncated or corrupted (cannot read the zip directory: {e})")
    with zf:
        try:
            obj, pkl, blobs = _read_archive(zf, name)
        except (CheckpointError, MemoryError):
            raise
        except _DAMAGE as e:
            _fail(name, f"is corrupted ({type(e).__name__}: {e})")
    if pkl is None:
        return obj
    try:
        return _pickle.loads(pkl, blobs, weights_only)
    except _pickle.WeightsOnlyUnpicklingError as e:
        raise _pickle.WeightsOnlyUnpicklingError(
            f"ember.load: weights_only=True refused {name!r}: it was saved with pickle (it holds "
            f"an object the safe format cannot, such as a whole nn.Module). {e}") from None
    except (pickle.UnpicklingError, EOFError, LookupError, TypeError, ValueError,
            AttributeError) as e:
        if not weights_only:  # trusted code ran: its own errors are the caller's to see
            raise
        _fail(name, f"has corrupted pickle data ({type(e).__name__}: {e})")


def _read_archive(zf, name):
    """``(obj, None, blobs)`` for the JSON kind, ``(None, pickle_bytes, blobs)`` otherwise."""
    infos = {i.filename: i for i in zf.infolist()}
    if "data.json" not in infos:
        if any(n.endswith("/data.pkl") or n == "data.pkl" for n in infos):
            _fail(name, "is a PyTorch checkpoint (torch.save zip format), not an ember one; "
                        "ember cannot read PyTorch checkpoints yet (issue 7)")
        _fail(name, "is a zip archive without data.json: not an ember checkpoint")
    header = json.loads(zf.read("data.json"))
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        _fail(name, "is not an ember checkpoint (data.json has no ember format marker)")
    version = header.get("version")
    if type(version) is not int or version > VERSION:
        _fail(name, f"was written by a newer ember (format version {version!r}; this ember "
                    f"reads up to {VERSION})")
    table = header.get("tensors")
    if not isinstance(table, list):
        _fail(name, "is corrupted (data.json has no tensor table)")
    views = [isinstance(m, dict) and "storage" in m for m in table]
    blobs = [None if v else _read_blob(zf, infos, name, i, m)
             for i, (v, m) in enumerate(zip(views, table))]
    for i, v in enumerate(views):
        if v:
            blobs[i] = _view_blob(name, i, table[i], blobs, table)
    kind = header.get("kind")
    if kind == "json":
        if "root" not in header:
            _fail(name, "is corrupted (data.json has no root object)")
        return decode(header["root"], blobs), None, blobs
    if kind != "pickle" or "data.pkl" not in infos:
        _fail(name, f"is corrupted (unknown kind {kind!r} or missing data.pkl)")
    return None, zf.read("data.pkl"), blobs


def _read_stored(fp, member, flat, name, i):
    """Read an uncompressed member straight into ``flat`` (one copy), then check its CRC."""
    fp.seek(member.header_offset)
    local = fp.read(30)
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        _fail(name, f"is corrupted (bad local header for tensor {i})")
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    if fp.read(name_len) != member.filename.encode("utf-8"):
        _fail(name, f"is corrupted (local header name mismatch for tensor {i})")
    fp.seek(extra_len, os.SEEK_CUR)
    n = fp.readinto(memoryview(flat)) if flat.nbytes else 0
    if n != flat.nbytes:
        _fail(name, f"is truncated (tensor {i} ends after {n} of {flat.nbytes} bytes)")
    if zlib.crc32(flat) != member.CRC:
        _fail(name, f"is corrupted (CRC check failed for tensor {i})")


def _read_blob(zf, infos, name, i, m):
    try:
        dtype = _dt._NAMES[m["dtype"]].np
        shape = tuple(m["shape"])
        nbytes, kind = m["nbytes"], m.get("kind", "tensor")
    except (KeyError, TypeError) as e:
        _fail(name, f"is corrupted (bad entry {i} in the tensor table: {e!r})")
    count = 1
    for s in shape:
        if type(s) is not int or s < 0:
            _fail(name, f"is corrupted (tensor {i} has shape {list(shape)})")
        count *= s
    member = infos.get(f"tensors/{i}")
    if member is None:
        _fail(name, f"is truncated or corrupted (tensor {i} is missing from the archive)")
    if nbytes != count * dtype.itemsize or member.file_size != nbytes:
        _fail(name, f"is corrupted (tensor {i}: shape {list(shape)} of {dtype} needs "
                    f"{count * dtype.itemsize} bytes, data.json says {nbytes!r}, the archive "
                    f"holds {member.file_size})")
    arr = np.empty(shape, dtype=dtype.newbyteorder("<"))
    flat = arr.reshape(-1).view(np.uint8)
    if member.compress_type == zipfile.ZIP_STORED and not member.flag_bits & 1:
        _read_stored(zf.fp, member, flat, name, i)
    else:
        with zf.open(member) as src:
            pos = 0
            while pos < nbytes:
                n = src.readinto(flat[pos:pos + _CHUNK])
                if not n:
                    _fail(name, f"is truncated (tensor {i} ends after {pos} of {nbytes} bytes)")
                pos += n
            src.read(1)  # reaching the end makes zipfile verify the CRC
    if not arr.dtype.isnative:
        arr = arr.astype(dtype)
    if kind == "storage":
        if len(shape) != 1:
            _fail(name, f"is corrupted (storage {i} has shape {list(shape)})")
        return arr
    return _as_kind(name, i, m, kind, arr)


def _view_blob(name, i, m, blobs, table):
    """Tensor entry ``i``: a strided view of the storage entry it names, bounds-checked."""
    try:
        j, offset, stride = m["storage"], m["offset"], list(m["stride"])
        _dt._NAMES[m["dtype"]]  # a known dtype name (the storage's, checked below)
        shape = list(m["shape"])
        kind = m.get("kind", "tensor")
    except (KeyError, TypeError) as e:
        _fail(name, f"is corrupted (bad entry {i} in the tensor table: {e!r})")
    if type(j) is not int or not 0 <= j < len(table) or not isinstance(table[j], dict) \
            or table[j].get("kind") != "storage" or "storage" in table[j] \
            or table[j].get("dtype") != m["dtype"] or kind not in ("tensor", "parameter"):
        _fail(name, f"is corrupted (tensor {i} views entry {j!r}, not a {m['dtype']} storage)")
    storage = blobs[j]
    ints = [offset, *shape, *stride]
    if len(stride) != len(shape) or any(type(v) is not int or v < 0 for v in ints):
        _fail(name, f"is corrupted (tensor {i}: offset {offset!r}, shape {shape}, stride "
                    f"{stride})")
    if 0 in shape or _views.last_element(offset, shape, stride) >= storage.size:
        _fail(name, f"is corrupted (tensor {i} reaches past the end of storage {j})")
    return _as_kind(name, i, m, kind, _views.strided(storage, shape, offset, stride))


def _as_kind(name, i, m, kind, arr):
    if kind == "tensor":
        t = _wrap(arr)
        if m.get("requires_grad"):
            t.requires_grad_(True)
        return t
    if kind == "parameter":
        from ember.nn.parameter import Parameter

        return Parameter(arr, requires_grad=bool(m.get("requires_grad", True)))
    if kind == "ndarray":
        return arr
    if kind == "npscalar":
        return arr[()]
    _fail(name, f"is corrupted (tensor {i} has unknown kind {kind!r})")
