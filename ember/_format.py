"""``repr`` of tensors in PyTorch's style: ``tensor([[1., 2.], [3., 4.]], requires_grad=True)``."""

from __future__ import annotations

import numpy as np

__all__ = ["tensor_repr"]


def _float_formatter(arr):
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return lambda v: _special(v) or f"{v:.4f}"
    amax = float(np.abs(finite).max())
    nonzero = np.abs(finite[finite != 0])
    amin = float(nonzero.min()) if nonzero.size else 0.0
    ints = bool(np.all(finite == np.round(finite)))
    sci = amax >= 1e8 or (amin and (amin < 1e-4 or amax / amin > 1000.0))
    if ints and amax < 1e8:
        return lambda v: _special(v) or f"{v:.0f}."
    if sci:
        return lambda v: _special(v) or f"{v:.4e}"
    return lambda v: _special(v) or f"{v:.4f}"


def _special(v):
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return None


def tensor_repr(t, prefix="tensor("):
    arr = t._data
    kind = arr.dtype.kind
    opts = {"separator": ", ", "prefix": prefix, "threshold": 1000, "edgeitems": 3,
            "max_line_width": 80}
    if arr.size == 0:
        body = "[]" if arr.ndim == 1 else "[]"
    elif kind == "f":
        fmt = _float_formatter(arr.astype(np.float64))
        body = np.array2string(arr, formatter={"float_kind": fmt}, **opts)
    elif kind == "b":
        body = np.array2string(arr, formatter={"bool": lambda v: "True" if v else "False"}, **opts)
    else:
        body = np.array2string(arr, **opts)
    if arr.ndim == 0:
        body = body.strip()
    extras = []
    from ember import dtypes as _dt

    d = _dt._NP2DT[arr.dtype]
    if arr.size == 0 and arr.ndim != 1:
        extras.append(f"size={tuple(arr.shape)}")
    if d not in (_dt.get_default_dtype(), _dt.int64, _dt.bool):
        extras.append(f"dtype={d!r}")
    elif arr.size == 0 and d is not _dt.get_default_dtype():
        extras.append(f"dtype={d!r}")
    if t.grad_fn is not None:
        extras.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t._rg:
        extras.append("requires_grad=True")
    tail = "".join(", " + e for e in extras)
    return f"{prefix}{body}{tail})"
