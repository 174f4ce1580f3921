"""``ember.save`` / ``ember.load``: one entry point over the formats ember reads and writes.

    ember.save(sd, "m.pt")                       # ember's checkpoint (zip + JSON, no pickle)
    ember.save(sd, "m.pt", format="torch")       # torch.save's zip format
    ember.save(sd, "m.safetensors", format="safetensors")
    ember.load("m.pt")                           # ember's format, a torch.save file (zip or
                                                 # legacy) or safetensors: the bytes decide
"""

from __future__ import annotations

import io
import os
import zipfile

from ember.io import checkpoint as _checkpoint
from ember.io import torch_format as _torch

__all__ = ["load", "save"]

_FORMATS = ("ember", "torch", "safetensors")


def save(obj, f, pickle_module=None, pickle_protocol=None, _use_new_zipfile_serialization=True,
         _disable_byteorder_record=False, *, format: str | None = None):
    """Save ``obj`` to a path or binary file (see ``ember.io.checkpoint.save``).

    Args:
        format: ``None``/``"ember"`` (default), ``"torch"`` (``torch.load(weights_only=True)``
            reads it) or ``"safetensors"`` (``obj`` must be a flat dict of tensors).
    """
    if format not in (None, *_FORMATS):
        raise ValueError(f"ember.save: unknown format {format!r}; expected one of {_FORMATS}")
    if format == "torch":
        return _torch.save(obj, f)
    if format == "safetensors":
        from ember.io import safetensors

        if hasattr(f, "write"):
            f.write(safetensors.save(obj))
            return None
        return safetensors.save_file(obj, f)
    return _checkpoint.save(obj, f, pickle_module=pickle_module,
                            pickle_protocol=pickle_protocol)


def _kind(fh):
    """``"zip"``/``"legacy"`` for torch.save files, ``"safetensors"``, ``"tar"``, else
    ``None``."""
    start = fh.tell()
    block = fh.read(512)
    fh.seek(start)
    head = block[:32]
    if _torch.sniff(head) == "legacy":
        return "legacy"
    if len(head) > 9 and head[8:10] in (b'{"', b"{}", b"{ ", b"{\n"):
        return "safetensors"  # an 8-byte little-endian header length, then the JSON header
    if head[:2] != b"PK":
        return "tar" if block[257:262] == b"ustar" else None  # a tar header's magic
    try:
        with zipfile.ZipFile(fh) as zf:
            names = set(zf.namelist())
    except _torch._ZIP_ERRORS:  # damaged: ember's checkpoint loader reports it
        names = None
    fh.seek(start)
    return _torch.sniff(head, names)


def load(f, map_location=None, pickle_module=None, *, weights_only=True, mmap=None,
         **pickle_load_args):
    """Load what ``ember.save`` or ``torch.save`` wrote; never runs code from a torch file.

    PyTorch files go through ``ember.io.torch_format`` whatever ``weights_only`` says (there
    is no fallback to full pickle); ember's own files keep ``ember.io.checkpoint.load``'s rules.
    """
    if isinstance(f, (str, os.PathLike)):
        with open(f, "rb") as fh:
            kind = _kind(fh)
            if kind in ("zip", "legacy"):
                _checkpoint._check_map_location(map_location)
                return _torch.load(fh, os.fspath(f))
        if kind == "safetensors":
            from ember.io import safetensors

            return safetensors.load_file(f)
        _refuse_tar(kind, f)
    elif hasattr(f, "read"):
        if not (hasattr(f, "seekable") and f.seekable()):
            f = io.BytesIO(f.read())
        kind = _kind(f)
        if kind in ("zip", "legacy"):
            _checkpoint._check_map_location(map_location)
            return _torch.load(f, _checkpoint._name(f))
        if kind == "safetensors":
            from ember.io import safetensors

            return safetensors.load(f.read())
        _refuse_tar(kind, f)
    return _checkpoint.load(f, map_location=map_location, pickle_module=pickle_module,
                            weights_only=weights_only, mmap=mmap, **pickle_load_args)


def _refuse_tar(kind, f):
    if kind == "tar":
        name = os.fspath(f) if isinstance(f, (str, os.PathLike)) else _checkpoint._name(f)
        raise _torch.TorchFileError(
            f"ember.load: {name!r} is a tar archive, the checkpoint format of the first PyTorch "
            "releases, which ember does not read; load it with torch.load and save it again "
            "with a current torch.save (or as safetensors)")
