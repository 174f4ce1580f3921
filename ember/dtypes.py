"""dtype objects (``ember.float32`` ...) mapped to NumPy dtypes, and PyTorch's type promotion."""

from __future__ import annotations

import numpy as np

__all__ = [
    "dtype", "float32", "float64", "float16", "bfloat16", "int8", "int16", "int32", "int64",
    "uint8", "bool", "float", "double", "half", "long", "int", "short", "get_default_dtype",
    "set_default_dtype", "promote_types", "result_type", "can_cast", "finfo", "iinfo",
]

_builtin_bool, _builtin_float, _builtin_int = bool, float, int


class dtype:
    """A tensor element type, printed and compared as PyTorch's (``ember.float32``)."""

    __slots__ = ("name", "np", "is_floating_point", "is_signed", "itemsize", "_rank", "_kind")

    def __init__(self, name, np_dtype, kind, rank):
        self.name = name
        self.np = np.dtype(np_dtype)
        self._kind = kind  # 0 bool, 1 integer, 2 floating: PyTorch's promotion categories
        self._rank = rank
        self.is_floating_point = kind == 2
        self.is_signed = kind == 2 or (kind == 1 and self.np.kind == "i")
        self.itemsize = self.np.itemsize

    @property
    def is_complex(self):
        return False

    def to_real(self):
        return self

    def __repr__(self):
        return f"ember.{self.name}"

    def __reduce__(self):
        return (_by_name, (self.name,))


bool = dtype("bool", np.bool_, 0, 0)
uint8 = dtype("uint8", np.uint8, 1, 1)
int8 = dtype("int8", np.int8, 1, 1)
int16 = dtype("int16", np.int16, 1, 2)
int32 = dtype("int32", np.int32, 1, 3)
int64 = dtype("int64", np.int64, 1, 4)
float16 = dtype("float16", np.float16, 2, 1)
# NumPy has no bfloat16: it is accepted as a name and stored as float32 (ml_dtypes is optional).
bfloat16 = dtype("bfloat16", np.float32, 2, 1)
float32 = dtype("float32", np.float32, 2, 2)
float64 = dtype("float64", np.float64, 2, 3)
half, float, double = float16, float32, float64
short, int, long = int16, int32, int64

_ALL = [bool, uint8, int8, int16, int32, int64, float16, float32, float64]
_NP2DT = {d.np: d for d in _ALL}
_NAMES = {d.name: d for d in _ALL + [bfloat16]}
_NAMES.update(half=half, float=float, double=double, short=short, int=int, long=long)


def _by_name(name):
    return _NAMES[name]


_default = [float32]


def get_default_dtype():
    """The dtype that Python floats and ``ember.randn`` produce (float32 unless changed)."""
    return _default[0]


def set_default_dtype(d):
    d = to_dtype(d)
    if not d.is_floating_point:
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
    _default[0] = d


def to_dtype(d):
    """Turn an ember dtype, NumPy dtype, Python type or name into an ember dtype."""
    if type(d) is dtype:
        return d
    if d is _builtin_float:
        return _default[0]
    if d is _builtin_int:
        return int64
    if d is _builtin_bool:
        return bool
    if isinstance(d, str) and d in _NAMES:
        return _NAMES[d]
    try:
        return _NP2DT[np.dtype(d)]
    except (TypeError, KeyError):
        pass
    raise TypeError(f"unknown dtype {d!r}; expected one of {sorted(_NAMES)} (e.g. ember.float32)")


def from_numpy_dtype(npd):
    try:
        return _NP2DT[npd]
    except KeyError:
        raise TypeError(
            f"can't convert np.ndarray of type {npd}. The only supported types are: float64, "
            "float32, float16, int64, int32, int16, int8, uint8, and bool."
        ) from None


def promote_types(a, b):
    """PyTorch's promotion of two dtypes (``promote_types(int32, float16) -> float16``)."""
    a, b = to_dtype(a), to_dtype(b)
    if a is b:
        return a
    if a._kind != b._kind:
        return a if a._kind > b._kind else b
    if a._kind == 1 and {a.name, b.name} == {"uint8", "int8"}:
        return int16
    if a._kind == 1 and "uint8" in (a.name, b.name):
        other = b if a.name == "uint8" else a
        return other
    return a if a._rank >= b._rank else b


def _scalar_kind(x):
    if isinstance(x, _builtin_bool) or isinstance(x, np.bool_):
        return 0
    if isinstance(x, (_builtin_int, np.integer)):
        return 1
    return 2


def result_type(*operands):
    """dtype of an op on tensors and Python scalars, by PyTorch's three-tier rule.

    Tensors with dimensions win over zero-dim tensors, which win over Python scalars, unless a
    lower tier holds a higher category (bool < integer < floating); a Python float then gives the
    default float dtype and a Python int gives int64.
    """
    dims = zero = None
    scal_kind = -1
    for x in operands:
        arr = getattr(x, "_data", None)
        if arr is None and isinstance(x, np.ndarray):
            arr = x
        if arr is not None:
            d = _NP2DT[arr.dtype]
            if arr.ndim:
                dims = d if dims is None else promote_types(dims, d)
            else:
                zero = d if zero is None else promote_types(zero, d)
        else:
            scal_kind = max(scal_kind, _scalar_kind(x))
    res = dims
    if zero is not None:
        if res is None or zero._kind > res._kind:
            res = zero
    if scal_kind >= 0 and (res is None or scal_kind > res._kind):
        res = (bool, int64, _default[0])[scal_kind]
    return res


def can_cast(from_, to):
    """Whether PyTorch allows an in-place result of ``from_`` to be written into ``to``."""
    from_, to = to_dtype(from_), to_dtype(to)
    return from_._kind <= to._kind


class finfo:
    """Machine limits of a floating dtype (``ember.finfo(ember.float32).eps``)."""

    def __init__(self, type=None):
        d = to_dtype(type) if type is not None else _default[0]
        fi = np.finfo(d.np)
        self.dtype = d.name
        self.bits, self.eps, self.max, self.min = fi.bits, _builtin_float(fi.eps), _builtin_float(fi.max), _builtin_float(fi.min)
        self.tiny = self.smallest_normal = _builtin_float(fi.tiny)
        self.resolution = _builtin_float(fi.resolution)


class iinfo:
    """Machine limits of an integer dtype."""

    def __init__(self, type):
        d = to_dtype(type)
        ii = np.iinfo(d.np)
        self.dtype, self.bits, self.max, self.min = d.name, ii.bits, _builtin_int(ii.max), _builtin_int(ii.min)
