"""State_dicts in the safetensors format (Hugging Face's), through the ``safetensors`` package.

    from ember.io.safetensors import load_file, save_file
    save_file(model.state_dict(), "model.safetensors", metadata={"arch": "resnet18"})
    model.load_state_dict(load_file("model.safetensors"))

``safetensors`` (and ``ml_dtypes`` for bfloat16) are optional: ``pip install "ember[safetensors]"``.
A safetensors file holds only a JSON header and raw bytes, so loading never runs code.

bfloat16: ember tensors have no bfloat16 storage (``ember.bfloat16`` is kept as float32), so BF16
tensors load as float32 ember tensors (exactly: every bfloat16 is a float32). With
``numpy=True`` they stay ``ml_dtypes.bfloat16`` arrays unless ``dtype=`` asks for another type.
``dtype=`` (e.g. ``ember.float32``) converts every floating-point tensor on load; integer and
bool tensors keep their type. ``save_file(..., dtype=ember.bfloat16)`` writes floating-point
tensors as BF16 (half the size; rounded to nearest even, as torch's ``.to(torch.bfloat16)``).
"""

from __future__ import annotations

import os

import numpy as np

from ember import dtypes as _dt
from ember.io._atomic import atomic_write
from ember.io.checkpoint import CheckpointError
from ember.tensor import Tensor, _wrap

__all__ = ["load", "load_file", "metadata", "save", "save_file"]

_INSTALL = 'pip install "ember[safetensors]"'


def _package():
    try:
        import safetensors
        import safetensors.numpy
    except ImportError:
        raise ImportError(f"ember.io.safetensors needs the 'safetensors' package: {_INSTALL}"
                          ) from None
    return safetensors


def _bfloat16():
    try:
        import ml_dtypes
    except ImportError:
        raise ImportError(f"bfloat16 tensors need the 'ml_dtypes' package: {_INSTALL}") from None
    return np.dtype(ml_dtypes.bfloat16)


def _float_dtype(dtype):
    if dtype is None:
        return None
    d = _dt.to_dtype(dtype)
    if not d.is_floating_point:
        raise TypeError(f"dtype must be a floating-point type, got {d}")
    return d


def _to_arrays(tensors, dtype):
    if not isinstance(tensors, dict):
        raise TypeError(f"expected a dict of name -> tensor, got {type(tensors).__name__}")
    bf16 = _bfloat16() if dtype is _dt.bfloat16 else None
    out = {}
    for k, v in tensors.items():
        if type(k) is not str:
            raise TypeError(f"safetensors keys must be str, got {k!r}")
        if isinstance(v, Tensor):
            v = v._data
        if not isinstance(v, np.ndarray) or v.dtype not in _dt._NP2DT:
            raise TypeError(f"{k!r}: expected a tensor or a NumPy array of an ember dtype, got "
                            f"{type(v).__name__}")
        if dtype is not None and v.dtype.kind == "f":
            v = v.astype(bf16 if bf16 is not None else dtype.np)
        out[k] = v if v.flags.c_contiguous else v.copy(order="C")  # keeps 0-d as 0-d
    return out


def save(tensors, metadata=None, *, dtype=None) -> bytes:
    """The safetensors bytes of ``tensors`` (a dict of name -> tensor); see ``save_file``."""
    st = _package()
    return st.numpy.save(_to_arrays(tensors, _float_dtype(dtype)), metadata=metadata)


def save_file(tensors, filename, metadata=None, *, dtype=None) -> None:
    """Write ``tensors`` (a dict of name -> ember tensor or NumPy array) to ``filename``.

    Args:
        metadata: a ``dict[str, str]`` stored in the header (``metadata(filename)`` reads it).
        dtype: convert floating-point tensors first (``ember.bfloat16`` writes BF16).

    The write is atomic: a crash leaves the previous file intact.

    Example::

        save_file(model.state_dict(), "model.safetensors", metadata={"epochs": "10"})
    """
    data = save(tensors, metadata, dtype=dtype)
    atomic_write(filename, lambda fh: fh.write(data), who="ember.io.safetensors.save_file")


def _convert(name, arr, dtype, numpy):
    if arr.dtype.name == "bfloat16":
        if dtype is None and numpy:
            return arr
        arr = arr.astype(np.float32)
    elif arr.dtype not in _dt._NP2DT:
        if numpy and dtype is None:
            return arr
        raise TypeError(f"tensor {name!r} has dtype {arr.dtype}, which ember tensors do not "
                        "support (load it with numpy=True to get the NumPy array)")
    if dtype is not None and arr.dtype.kind == "f":
        arr = arr.astype(dtype.np, copy=False)
    if not arr.flags.writeable:
        arr = arr.copy()
    return arr if numpy else _wrap(arr)


def _finish(items, dtype, numpy, device):
    dtype = _float_dtype(dtype)
    if dtype is _dt.bfloat16:
        dtype = _dt.float32  # ember's bfloat16 tensors are float32 arrays
    out = {k: _convert(k, a, dtype, numpy) for k, a in items}
    if device not in (None, "cpu") and not numpy:
        out = {k: v.to(device) for k, v in out.items()}
    return out


def load_file(filename, device="cpu", *, dtype=None, numpy=False) -> dict:
    """Read a safetensors file into a dict of ember tensors (``Module.load_state_dict`` takes it).

    Args:
        device: where the tensors go (``"cpu"``).
        dtype: convert floating-point tensors to this dtype (``ember.float32``...).
        numpy: return NumPy arrays instead (BF16 stays ``ml_dtypes.bfloat16`` without ``dtype``).

    Example::

        model.load_state_dict(load_file("model.safetensors"))
        sd = load_file("llm.safetensors", dtype=ember.float32)   # BF16 weights as float32
    """
    st = _package()
    name = os.fspath(filename)
    try:
        with st.safe_open(name, framework="np") as f:
            keys = list(f.keys())
            if any(f.get_slice(k).get_dtype() == "BF16" for k in keys):
                _bfloat16()  # registers the dtype NumPy needs to build these arrays
            items = [(k, f.get_tensor(k)) for k in keys]
    except st.SafetensorError as e:
        raise CheckpointError(f"ember.io.safetensors: {name!r} is not a valid safetensors "
                              f"file: {e}") from None
    return _finish(items, dtype, numpy, device)


_CODES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
          "I8": "i1", "U8": "u1", "BOOL": "?", "U16": "<u2", "U32": "<u4", "U64": "<u8"}


def load(data: bytes, *, dtype=None, numpy=False) -> dict:
    """Like ``load_file`` for the bytes of a safetensors file."""
    st = _package()
    try:
        flat = st.deserialize(bytes(data))
    except st.SafetensorError as e:
        raise CheckpointError(f"ember.io.safetensors: not valid safetensors bytes: {e}") from None
    items = []
    for k, v in flat:
        code = v["dtype"]
        if code not in _CODES and code != "BF16":
            raise TypeError(f"tensor {k!r} has safetensors dtype {code}, which ember does not "
                            "support")
        npd = _bfloat16() if code == "BF16" else np.dtype(_CODES[code])
        arr = np.frombuffer(v["data"], dtype=npd).reshape(v["shape"])
        items.append((k, arr.astype(npd.newbyteorder("="), copy=False)))
    return _finish(items, dtype, numpy, "cpu")


def metadata(filename) -> dict | None:
    """The ``metadata`` dict stored in a safetensors file's header (``None`` if there is none)."""
    st = _package()
    with st.safe_open(os.fspath(filename), framework="np") as f:
        return f.metadata()
