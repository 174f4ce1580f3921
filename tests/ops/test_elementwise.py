"""Elementwise ops against torch: forward, every input gradient, broadcasting, non-contiguous
inputs, hypothesis shapes, and float64 gradcheck."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import ember
from tests.harness import check_gradcheck, check_op

BINARY = {
    "add": lambda t, a, b: a + b,
    "radd": lambda t, a, b: 2.5 + a + b,
    "sub": lambda t, a, b: a - b,
    "rsub": lambda t, a, b: 1.5 - a - b,
    "mul": lambda t, a, b: a * b,
    "rmul": lambda t, a, b: 3 * a * b,
    "div": lambda t, a, b: a / b,
    "rdiv": lambda t, a, b: 2.0 / (a * a + 1) + b,
    "add_fn": lambda t, a, b: t.add(a, b, alpha=2),
    "sub_fn": lambda t, a, b: t.sub(a, b, alpha=0.5),
    "mul_fn": lambda t, a, b: t.mul(a, b),
    "div_fn": lambda t, a, b: t.div(a, b),
    "maximum": lambda t, a, b: t.maximum(a, b),
    "minimum": lambda t, a, b: t.minimum(a, b),
    "atan2": lambda t, a, b: t.atan2(a, b),
    "where": lambda t, a, b: t.where(a > b, a, b),
    "lerp": lambda t, a, b: t.lerp(a, b, 0.3),
    "hypot": lambda t, a, b: t.hypot(a, b),
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_broadcast_transposed(name):
    fn = BINARY[name]
    check_op([(3, 1, 4), (2, 4)], fn)
    check_op([(4, 3), (4, 3)], fn, transpose=(0, 1))
    check_op([(5, 2), (1, 2)], fn, transpose=(0,))
    check_gradcheck([(3, 1, 4), (2, 4)], fn)


def test_pow_forms():
    check_op([(3, 4), (3, 4)], lambda t, a, b: a ** b, positive=True)
    check_op([(3, 4), (4,)], lambda t, a, b: t.pow(a, b), positive=True, transpose=(0,))
    check_op([(3, 4)], lambda t, a: a ** 3)
    check_op([(3, 4)], lambda t, a: a ** 2.5, positive=True)
    check_op([(3, 4)], lambda t, a: a ** 0)
    check_op([(3, 4)], lambda t, a: 2.0 ** a)
    check_op([(3, 4)], lambda t, a: t.pow(a, -1.5), positive=True)
    check_gradcheck([(3, 4), (3, 4)], lambda t, a, b: a ** b, positive=True)
    check_gradcheck([(3, 4)], lambda t, a: 1.7 ** a)
    check_gradcheck([(3, 4)], lambda t, a: a ** 3)


@settings(max_examples=25, deadline=None)
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=4),
       op=st.sampled_from(["add", "sub", "mul", "div", "maximum", "where"]))
def test_binary_hypothesis_shapes(shapes, op):
    sa, sb = shapes.input_shapes
    check_op([sa, sb], BINARY[op])


UNARY = {
    # name: (fn, data options)
    "exp": (lambda t, x: t.exp(x), {}),
    "log": (lambda t, x: t.log(x), {"positive": True}),
    "log1p": (lambda t, x: t.log1p(x), {"positive": True}),
    "expm1": (lambda t, x: t.expm1(x), {}),
    "sqrt": (lambda t, x: t.sqrt(x), {"positive": True}),
    "rsqrt": (lambda t, x: t.rsqrt(x), {"positive": True}),
    "abs": (lambda t, x: t.abs(x), {}),
    "sign": (lambda t, x: t.sign(x), {}),
    "neg": (lambda t, x: -x, {}),
    "reciprocal": (lambda t, x: t.reciprocal(x), {"positive": True}),
    "sin": (lambda t, x: t.sin(x), {}),
    "cos": (lambda t, x: t.cos(x), {}),
    "tan": (lambda t, x: t.tan(x), {"low": -1.2, "high": 1.2}),
    "tanh": (lambda t, x: t.tanh(x), {}),
    "sigmoid": (lambda t, x: t.sigmoid(x), {}),
    "relu": (lambda t, x: t.relu(x), {}),
    "floor": (lambda t, x: t.floor(x), {}),
    "ceil": (lambda t, x: t.ceil(x), {}),
    "round": (lambda t, x: t.round(x), {}),
    "trunc": (lambda t, x: t.trunc(x), {}),
    "clamp": (lambda t, x: t.clamp(x, -0.5, 0.7), {}),
    "clamp_min": (lambda t, x: t.clamp(x, min=-0.2), {}),
    "clamp_max": (lambda t, x: x.clamp(max=0.3), {}),
    "clip": (lambda t, x: t.clip(x, -0.5, 0.5), {}),
    "square": (lambda t, x: t.square(x), {}),
    "exp2": (lambda t, x: t.exp2(x), {}),
    "log2": (lambda t, x: t.log2(x), {"positive": True}),
    "log10": (lambda t, x: t.log10(x), {"positive": True}),
    "asin": (lambda t, x: t.asin(x), {"low": -0.9, "high": 0.9}),
    "acos": (lambda t, x: t.acos(x), {"low": -0.9, "high": 0.9}),
    "atan": (lambda t, x: t.atan(x), {}),
    "sinh": (lambda t, x: t.sinh(x), {}),
    "cosh": (lambda t, x: t.cosh(x), {}),
    "erf": (lambda t, x: t.erf(x), {}),
    "frac": (lambda t, x: t.frac(x), {}),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary(name):
    fn, opts = UNARY[name]
    check_op([(3, 5)], fn, **opts)
    check_op([(4, 3)], fn, transpose=(0,), **opts)
    check_op([()], fn, seed=3, **opts)
    check_gradcheck([(3, 4)], fn, **opts)


def test_unary_methods_match_functions():
    x = ember.randn(3, 4).abs() + 0.1
    for name in ["exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "abs", "sign", "neg",
                 "reciprocal", "sin", "cos", "tan", "tanh", "sigmoid", "relu", "floor", "ceil",
                 "round", "trunc"]:
        np.testing.assert_array_equal(getattr(x, name)().numpy(), getattr(ember, name)(x).numpy())


@settings(max_examples=15, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=0, max_size=4).map(tuple),
       name=st.sampled_from(["exp", "tanh", "sigmoid", "relu", "abs", "sin", "clamp"]))
def test_unary_hypothesis_shapes(shape, name):
    fn, opts = UNARY[name]
    check_op([shape], fn, **opts)


def test_unary_on_integers_promotes_like_torch():
    for fn in (lambda t, x: t.exp(x), lambda t, x: t.sqrt(x), lambda t, x: t.sigmoid(x),
               lambda t, x: x / 2, lambda t, x: x * 1.5, lambda t, x: t.abs(x), lambda t, x: -x,
               lambda t, x: x + True, lambda t, x: t.clamp(x, 1, 3), lambda t, x: t.relu(x)):
        a = np.array([[1, 2, 3], [4, 5, 6]])
        check_op([a], fn, grad=False)


def test_comparisons_and_logical():
    cmps = [lambda t, a, b: a == b, lambda t, a, b: a != b, lambda t, a, b: a < b,
            lambda t, a, b: a <= b, lambda t, a, b: a > b, lambda t, a, b: a >= b,
            lambda t, a, b: t.eq(a, b), lambda t, a, b: t.gt(a, 0.1), lambda t, a, b: a < 0,
            lambda t, a, b: t.logical_and(a > 0, b > 0), lambda t, a, b: t.logical_or(a > 0, b > 0),
            lambda t, a, b: t.logical_xor(a > 0, b > 0), lambda t, a, b: t.logical_not(a > 0),
            lambda t, a, b: (a > 0) & (b > 0), lambda t, a, b: (a > 0) | (b > 0),
            lambda t, a, b: (a > 0) ^ (b > 0), lambda t, a, b: ~(a > 0),
            lambda t, a, b: t.isnan(a / b), lambda t, a, b: t.isfinite(a),
            lambda t, a, b: t.isclose(a, b)]
    a = np.array([[1., 2., -3.], [0., 5., 6.]], dtype=np.float32)
    b = np.array([1., -2., 3.], dtype=np.float32)
    for fn in cmps:
        check_op([a, b], fn, grad=False)
    assert ember.equal(ember.tensor([1, 2]), ember.tensor([1, 2]))
    assert not ember.equal(ember.tensor([1, 2]), ember.tensor([1, 3]))
    assert ember.allclose(ember.tensor([1.0]), ember.tensor([1.0 + 1e-9]))


def test_bitwise_int():
    a = np.array([1, 6, 12], dtype=np.int64)
    b = np.array([3, 5, 10], dtype=np.int64)
    for fn in (lambda t, x, y: x & y, lambda t, x, y: x | y, lambda t, x, y: x ^ y,
               lambda t, x, y: ~x, lambda t, x, y: x // y, lambda t, x, y: x % y,
               lambda t, x, y: x * y, lambda t, x, y: x - y, lambda t, x, y: x / y):
        check_op([a, b], fn, grad=False)


def test_remainder_floor_divide_float():
    check_op([(3, 4), (3, 4)], lambda t, a, b: t.remainder(a, b.abs() + 0.5))
    check_op([(3, 4), (3, 4)], lambda t, a, b: t.fmod(a, b.abs() + 0.5))
    check_op([(3, 4)], lambda t, a: a % 0.7)


def test_maximum_ties_split_gradient():
    check_op([np.array([1., 2., 3.], np.float32), np.array([1., 0., 3.], np.float32)],
             lambda t, a, b: t.maximum(a, b))


def test_where_scalar_branch_and_addcmul():
    check_op([(3, 4), (4,)], lambda t, a, b: t.where(a > 0, a, 0.0))
    check_op([(3, 4), (3, 4), (4,)], lambda t, a, b, c: t.addcmul(a, b, c, value=0.5))
    check_op([(3, 4), (3, 4), (4,)], lambda t, a, b, c: t.addcdiv(a, b, c.abs() + 1, value=2))


def test_clamp_tensor_bounds():
    check_op([(3, 4), (4,), (4,)], lambda t, x, lo, hi: t.clamp(x, lo, lo + hi.abs()))


def test_remainder_fmod_gradient_to_the_divisor_alone():
    # only the divisor requires grad: its gradient (-floor or -trunc of a/b) must not be dropped
    check_op([(3, 4), (3, 4)], lambda t, a, b: t.remainder(a.detach(), b.abs() + 0.5))
    check_op([(3, 4), (3, 4)], lambda t, a, b: t.fmod(a.detach() * 3, b.abs() + 0.5))
    check_op([(3, 4), (4,)], lambda t, a, b: a.detach() % (b.abs() + 0.5))
    num = np.random.default_rng(5).standard_normal((3, 4)) * 3
    check_gradcheck([(3, 4)], lambda t, b: t.remainder(t.tensor(num), b.abs() + 0.5))


def test_integer_division_by_zero_raises_like_torch():
    for fn in (lambda t: t.tensor([3, 4]) // 0, lambda t: t.tensor([3, 4]) % t.tensor([1, 0]),
               lambda t: t.fmod(t.tensor([3]), 0), lambda t: t.floor_divide(t.tensor([3]), 0),
               lambda t: t.div(t.tensor([3]), t.tensor([0]), rounding_mode="trunc")):
        for lib in (ember, torch):
            with pytest.raises(RuntimeError, match="ZeroDivisionError"):
                fn(lib)
    assert (ember.tensor([3.0]) // 0).tolist() == [float("inf")]  # floats follow IEEE, as torch


def test_nan_to_num_gradient():
    """nan_to_num was computed outside autograd (no grad_fn); torch passes the gradient where x
    is finite and gives 0 where a NaN or infinity was replaced."""
    x = np.array([1.0, np.nan, np.inf, -np.inf, -2.0], np.float32)
    check_op([x], lambda t, x: x.nan_to_num())
    check_op([x], lambda t, x: t.nan_to_num(x, nan=1.0, posinf=2.0, neginf=-3.0))


def test_bool_tensor_bitwise_operators_promote_like_torch():
    """mask & 2, mask | int_tensor: ember took & | ^ on a bool tensor as logical ops, giving a
    bool result (mask & 2 was [True, False]); torch promotes to the integer type (0 and 1s)."""
    for expr in ("m & 2", "m | 1", "m ^ i", "i & m", "2 | m", "m & u", "m & t.tensor(1)",
                 "m & True", "m | m", "m ^ t.tensor(True)", "i ^ 3"):
        out = []
        for t in (ember, torch):
            m, i = t.tensor([True, False]), t.tensor([3, 2])
            u = t.tensor([1, 2], dtype=t.uint8)
            r = eval(expr)
            out.append((str(r.dtype).split(".")[-1], r.tolist()))
        assert out[0] == out[1], expr


def test_fmax_fmin_ignore_nan():
    """fmax/fmin were maximum/minimum: a NaN won. torch's (NumPy's) fmax takes the number, and
    sends the gradient to input where input is kept (ties included), to other elsewhere."""
    nan = np.nan
    a = np.array([[1.0, nan, 3.0, 2.0, nan], [0.5, -1.0, 2.0, 2.0, 7.0]], np.float32)
    b = np.array([[0.0, 0.0, 3.0, nan, nan], [1.0, -2.0, 2.0, 5.0, 1.0]], np.float32)
    check_op([a, b], lambda t, x, y: t.fmax(x, y))
    check_op([a, b], lambda t, x, y: x.fmin(y))
    check_op([a, b[:1, :1]], lambda t, x, y: t.fmin(x, y))  # broadcast


def test_clamp_with_tensor_bounds_gradient():
    """clamp with tensor min/max went through maximum/minimum, which split the gradient at a
    bound (0.5 to x where x == min); torch gives x the whole gradient inside [min, max] bounds
    included, min where x is below it, max where above it (or max < min)."""
    x = np.array([[-2.0, -1.0, 0.0, 0.5, 1.0, 2.0], [3.0, 0.5, 0.2, -1.0, 1.0, 2.0]], np.float32)
    lo = np.array([[-1.0], [0.5]], np.float32)
    hi = np.array([1.0, 1.0, 1.0, 0.2, 1.0, 3.0], np.float32)
    check_op([x, lo, hi], lambda t, x, a, b: t.clamp(x, a, b))
    check_op([x, lo, hi], lambda t, x, a, b: x.clamp(b, a))  # min > max in places: max wins
    check_op([x, lo], lambda t, x, a: x.clamp(min=a))
    check_op([x, hi], lambda t, x, b: t.clip(x, max=b))


def test_logit():
    """torch.logit / Tensor.logit(_) were missing."""
    x = np.array([-0.5, 0.0, 1e-7, 0.2, 0.5, 0.9, 1.0, 1.5], np.float32)
    check_op([x], lambda t, x: t.logit(x), rtol=1e-4)
    check_op([x], lambda t, x: x.logit(eps=0.25))
    check_op([x], lambda t, x: t.logit(x, 1e-6), rtol=1e-4)
    check_gradcheck([(3, 4)], lambda t, x: t.logit(t.sigmoid(x)))
    np.testing.assert_allclose(ember.tensor([0.2, 0.7]).logit_(0.3).numpy(),
                               torch.tensor([0.2, 0.7]).logit_(0.3).numpy(), rtol=1e-6)


def _distinct(shape, seed=0):
    """float64 values at least 0.27 apart (no ties between fmax's operands)."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.37 - 1.13 + rng.uniform(0, 0.1, n)).reshape(shape)


_A, _B = _distinct((3, 4)), _distinct((3, 4), 1) + 0.05
_ANAN, _BNAN = _A.copy(), _B.copy()
_ANAN[0, 0] = _BNAN[1, 1] = np.nan
_XINF = _distinct((3, 5))
_XINF[0, 0], _XINF[1, 2], _XINF[2, 4] = np.nan, np.inf, -np.inf
_LO = np.array([-0.5, -0.48, -0.46, -0.44])  # _A keeps 0.09 or more from _LO and _LO + 1
NEW_GRADCHECK = {
    "fmax": ([_A, _B], lambda t, x, y: t.fmax(x, y)),
    "fmin": ([_A, _B], lambda t, x, y: t.fmin(x, y)),
    "fmax_nan": ([_ANAN, _BNAN], lambda t, x, y: t.fmax(x, y)),
    "fmin_nan": ([_ANAN, _BNAN], lambda t, x, y: x.fmin(y)),
    "fmax_broadcast": ([_A, _B[0]], lambda t, x, y: t.fmax(x, y)),
    "nan_to_num": ([_XINF], lambda t, x: x.nan_to_num()),
    "nan_to_num_values": ([_XINF], lambda t, x: t.nan_to_num(x, nan=1.0, posinf=2.0,
                                                             neginf=-3.0)),
    "clamp_tensors": ([_A, _LO, _LO + 1], lambda t, x, a, b: t.clamp(x, a, b)),
    "clamp_tensors_min_over_max": ([_A, _LO, _LO + 1], lambda t, x, a, b: x.clamp(b, a)),
    "clamp_tensor_min": ([_A, _LO], lambda t, x, a: x.clamp(min=a)),
    "clamp_tensor_max": ([_A, _LO + 1], lambda t, x, b: x.clamp(max=b)),
}


@pytest.mark.parametrize("name", sorted(NEW_GRADCHECK))
def test_new_elementwise_ops_gradcheck(name):
    """float64 gradchecks of fmax/fmin (NaN on either side), nan_to_num (NaN/inf replaced) and
    clamp with tensor bounds (every input away from the bounds), ops rewritten since a760f12."""
    specs, fn = NEW_GRADCHECK[name]
    check_gradcheck(specs, fn)


@pytest.mark.parametrize("eps", [None, 0.25, 1e-6])
def test_logit_gradcheck_in_the_unit_interval(eps):
    """float64 gradcheck of logit itself on (0, 1) (the existing one goes through sigmoid),
    with eps clamping 0.05, 0.15, 0.8 and 0.95 (none at a clamp bound)."""
    p = np.array([[0.05, 0.15, 0.3, 0.45], [0.55, 0.7, 0.8, 0.95]])
    check_gradcheck([p], lambda t, x: t.logit(x, eps))


def test_in_place_bitwise_keeps_the_dtype_or_raises_like_torch():
    """mask &= 2 cast the int64 result of mask & 2 back to bool ([False, False], silently);
    torch raises. bitwise_and_/or_/xor_ were missing."""
    for stmt in ("m &= t.tensor([False, True])", "m |= m", "i ^= 3", "i &= m",
                 "i.bitwise_and_(t.tensor([3, 1]))", "i.bitwise_or_(2)",
                 "m.bitwise_xor_(t.tensor(True))"):
        out = []
        for t in (ember, torch):
            m, i = t.tensor([True, False]), t.tensor([3, 6])
            exec(stmt)
            out.append((m.tolist(), str(m.dtype).split(".")[-1], i.tolist()))
        assert out[0] == out[1], stmt
    for t in (ember, torch):
        m = t.tensor([True, False])
        with pytest.raises(RuntimeError, match="result type Long can't be cast to the desired "
                                               "output type Bool"):
            m &= 2
        with pytest.raises(RuntimeError, match="can't be cast"):
            m.bitwise_or_(t.tensor([2, 3]))


def test_comparison_with_a_complex_number_is_not_silently_false():
    """x == 1j returned False (the operand counted as not comparable); ember has no complex
    dtype, so it raises instead of answering wrongly (torch compares elementwise)."""
    with pytest.raises(TypeError):
        ember.tensor([1.0, 2.0]) == 1j  # noqa: B015
    assert (torch.tensor([1.0, 2.0]) == (1 + 0j)).tolist() == [True, False]
