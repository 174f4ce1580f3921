"""dtypes and PyTorch's type promotion: ember's result dtype equals torch's over a grid of
dtype pairs, zero-dim tensors and Python scalars; conversions ``.to/.float/.long...``."""

import itertools

import numpy as np
import pytest
import torch

import ember

NAMES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]


def _pair(name, shape=(2,)):
    t = torch.ones(shape, dtype=getattr(torch, name))
    e = ember.ones(shape, dtype=getattr(ember, name))
    return e, t


def _name(d):
    return str(d).split(".")[-1]


@pytest.mark.parametrize("a,b", list(itertools.product(NAMES, NAMES)))
def test_promotion_grid_tensor_tensor(a, b):
    ea, ta = _pair(a)
    eb, tb = _pair(b)
    assert _name(ember.promote_types(getattr(ember, a), getattr(ember, b))) == _name(
        torch.promote_types(getattr(torch, a), getattr(torch, b)))
    assert _name((ea * eb).dtype) == _name((ta * tb).dtype)
    if "bool" not in (a, b):
        assert _name((ea + eb).dtype) == _name((ta + tb).dtype)
    # zero-dim tensors only win on a higher category
    ez, tz = _pair(b, ())
    assert _name((ea * ez).dtype) == _name((ta * tz).dtype)
    assert _name(ember.result_type(ea, ez)) == _name(torch.result_type(ta, tz))


@pytest.mark.parametrize("a", NAMES)
@pytest.mark.parametrize("scalar", [True, 2, 2.5])
def test_promotion_with_python_scalars(a, scalar):
    ea, ta = _pair(a)
    assert _name((ea * scalar).dtype) == _name((ta * scalar).dtype)
    assert _name((scalar * ea).dtype) == _name((scalar * ta).dtype)
    if a != "bool":
        assert _name((ea + scalar).dtype) == _name((ta + scalar).dtype)
    assert _name((ea / scalar).dtype) == _name((ta / scalar).dtype)
    assert _name(ember.result_type(ea, scalar)) == _name(torch.result_type(ta, scalar))


@pytest.mark.parametrize("a", NAMES)
def test_comparisons_give_bool_and_division_gives_float(a):
    ea, ta = _pair(a)
    assert (ea < 1).dtype is ember.bool
    assert _name((ea / ea).dtype) == _name((ta / ta).dtype)


def test_conversions():
    x = ember.tensor([1.7, -2.2])
    assert x.long().dtype is ember.int64 and x.long().tolist() == [1, -2]
    assert x.int().dtype is ember.int32
    assert x.double().dtype is ember.float64
    assert x.half().dtype is ember.float16
    assert x.bool().tolist() == [True, True]
    assert x.float() is x
    assert x.to(ember.float64).dtype is ember.float64
    assert x.to("cpu", ember.int16).dtype is ember.int16
    assert x.to(dtype=ember.uint8).dtype is ember.uint8
    assert x.type_as(ember.zeros(1, dtype=ember.int8)).dtype is ember.int8
    assert x.to(ember.zeros(1, dtype=ember.float64)).dtype is ember.float64
    assert x.type() == "ember.FloatTensor" and x.long().type() == "ember.LongTensor"
    assert x.to(float).dtype is ember.float32 and x.to(int).dtype is ember.int64


def test_dtype_objects():
    assert ember.float is ember.float32 and ember.long is ember.int64 and ember.double is ember.float64
    assert repr(ember.float32) == "ember.float32" and str(ember.int8) == "ember.int8"
    assert ember.float32.is_floating_point and not ember.int32.is_floating_point
    assert ember.get_default_dtype() is ember.float32
    assert ember.finfo(ember.float32).eps == torch.finfo(torch.float32).eps
    assert ember.iinfo(ember.int16).max == torch.iinfo(torch.int16).max
    assert ember.tensor([1.0]).dtype is ember.float32
    assert ember.tensor([1]).dtype is ember.int64
    assert ember.from_numpy(np.zeros(2, np.float64)).dtype is ember.float64


def test_default_dtype_switch():
    try:
        ember.set_default_dtype(ember.float64)
        assert ember.tensor([1.0]).dtype is ember.float64 and ember.zeros(2).dtype is ember.float64
        assert (ember.tensor([1, 2]) * 0.5).dtype is ember.float64
    finally:
        ember.set_default_dtype(ember.float32)
    with pytest.raises(TypeError, match="only floating-point types"):
        ember.set_default_dtype(ember.int32)


def test_unknown_dtype_errors():
    with pytest.raises(TypeError, match=r"unknown dtype 'float128'.*ember.float32"):
        ember.ones(2).to(dtype="float128")
    with pytest.raises(TypeError, match="can't convert np.ndarray of type complex128"):
        ember.from_numpy(np.zeros(2, np.complex128))
