"""Reductions against torch: dim/keepdim variants, (values, indices) returns, non-contiguous
inputs, hypothesis shapes and float64 gradcheck."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ember
from tests.harness import check_gradcheck, check_op

# Reductions sum many float32 terms in a different order than torch: 1e-5 absolute slack.
RED = dict(atol=1e-5)

DIFF = {
    "sum": lambda t, x: x.sum(),
    "sum_dim": lambda t, x: t.sum(x, 1),
    "sum_dims_keep": lambda t, x: x.sum((0, 2), keepdim=True),
    "mean": lambda t, x: x.mean(),
    "mean_dim": lambda t, x: t.mean(x, -1, keepdim=True),
    "mean_dims": lambda t, x: x.mean((0, 1)),
    "prod": lambda t, x: x.prod(),
    "prod_dim": lambda t, x: t.prod(x, 1, keepdim=True),
    "max": lambda t, x: x.max(),
    "min": lambda t, x: t.min(x),
    "max_dim": lambda t, x: x.max(1),
    "min_dim_keep": lambda t, x: t.min(x, 0, keepdim=True),
    "amax": lambda t, x: t.amax(x, (0, 2)),
    "amin": lambda t, x: x.amin(-1, keepdim=True),
    "var": lambda t, x: x.var(),
    "var_dim": lambda t, x: t.var(x, 1, keepdim=True),
    "var_unbiased0": lambda t, x: x.var(2, unbiased=False),
    "var_correction": lambda t, x: t.var(x, (0, 1), correction=0),
    "std": lambda t, x: x.std(),
    "std_dim": lambda t, x: t.std(x, 0),
    "logsumexp": lambda t, x: t.logsumexp(x, 1),
    "logsumexp_keep": lambda t, x: x.logsumexp((1, 2), keepdim=True),
    "norm": lambda t, x: x.norm(),
    "norm_dim": lambda t, x: t.norm(x, dim=1),
    "norm_p1": lambda t, x: x.norm(p=1, dim=-1),
    "norm_p3": lambda t, x: t.norm(x, p=3),
    "cumsum": lambda t, x: t.cumsum(x, 1),
    "cumsum_neg": lambda t, x: x.cumsum(-1),
    "cumprod": lambda t, x: t.cumprod(x, 2),
    "softmax": lambda t, x: t.softmax(x, -1),
    "softmax_dim0": lambda t, x: x.softmax(0),
    "log_softmax": lambda t, x: t.log_softmax(x, 1),
    "log_softmax_m": lambda t, x: x.log_softmax(-1),
}


@pytest.mark.parametrize("name", sorted(DIFF))
def test_reduction(name):
    fn = DIFF[name]
    check_op([(2, 3, 4)], fn, **RED)
    check_op([(4, 3)] if "2" in name or "(0, 1)" in name else [(2, 4, 3)], fn, transpose=(0,),
             **RED)
    check_gradcheck([(2, 3, 4)], fn)


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple),
       data=st.data(),
       op=st.sampled_from(["sum", "mean", "amax", "var", "logsumexp", "softmax"]),
       keepdim=st.booleans())
def test_reduction_hypothesis_shapes(shape, data, op, keepdim):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    fns = {
        "sum": lambda t, x: x.sum(dim, keepdim=keepdim),
        "mean": lambda t, x: x.mean(dim, keepdim=keepdim),
        "amax": lambda t, x: x.amax(dim, keepdim=keepdim),
        "var": lambda t, x: x.var(dim, keepdim=keepdim, correction=0),
        "logsumexp": lambda t, x: t.logsumexp(x, dim, keepdim=keepdim),
        "softmax": lambda t, x: t.softmax(x, dim),
    }
    check_op([shape], fns[op], **RED)


def test_argmax_argmin_all_any():
    x = np.array([[1., 5., 3.], [7., 2., 7.]], dtype=np.float32)
    for fn in (lambda t, a: a.argmax(), lambda t, a: t.argmin(a), lambda t, a: a.argmax(1),
               lambda t, a: t.argmin(a, 0, keepdim=True), lambda t, a: (a > 2).all(),
               lambda t, a: (a > 2).any(1), lambda t, a: t.all(a > 0, 0, keepdim=True),
               lambda t, a: t.any(a > 6), lambda t, a: a.max(1).indices,
               lambda t, a: a.min(0).indices, lambda t, a: t.count_nonzero(a - 1)):
        check_op([x], fn, grad=False)


def test_max_dim_returns_namedtuple():
    x = ember.tensor([[1., 5.], [7., 2.]])
    values, indices = x.max(dim=1)
    r = x.max(1)
    assert r.values.tolist() == [5., 7.] and r.indices.tolist() == [1, 0]
    assert values.tolist() == [5., 7.] and indices.dtype == ember.int64


def test_integer_sum_and_mean_errors():
    check_op([np.array([[1, 2], [3, 4]], dtype=np.int32)], lambda t, a: a.sum(), grad=False)
    check_op([np.array([True, False, True])], lambda t, a: a.sum(), grad=False)
    check_op([np.array([[1, 2], [3, 4]])], lambda t, a: a.sum(0, dtype=t.float32), grad=False)
    with pytest.raises(RuntimeError, match="mean\\(\\): could not infer output dtype"):
        ember.tensor([1, 2]).mean()


def test_empty_reduction_errors():
    with pytest.raises(RuntimeError, match="numel\\(\\) == 0"):  # torch: RuntimeError
        ember.zeros(0).max()
    with pytest.raises(IndexError, match="Dimension out of range"):
        ember.zeros(2, 3).sum(2)


def test_cumprod_gradient_through_zeros():
    # one zero, two zeros, a zero first and last in a line: PyTorch's zero-aware gradient
    x = np.array([[2., 0., 3., -1.], [0., 4., 0., 2.], [1.5, -2., 0.5, 0.], [0., 0., 0., 0.]])
    for dim in (0, 1):
        check_op([x.astype(np.float32)], lambda t, a, d=dim: t.cumprod(a, d))
        check_gradcheck([x], lambda t, a, d=dim: t.cumprod(a, d))


def test_norm_of_zero_has_zero_gradient_like_torch():
    z = np.zeros((2, 3), np.float32)
    z[1] = [3.0, -4.0, 1.0]
    for fn in (lambda t, a: a.norm(), lambda t, a: a.norm(dim=1), lambda t, a: t.norm(a, p=3, dim=1),
               lambda t, a: (a * 0).norm(p=3), lambda t, a: t.norm(a, 2, 1, keepdim=True)):
        check_op([z], fn, **RED)
    check_gradcheck([(3, 4)], lambda t, a: t.norm(a, p=2.5, dim=0))


def test_var_std_of_integers_raise_like_torch():
    for lib in (ember, torch):
        for fn in (lambda x: x.std(), lambda x: x.var(0), lambda x, lib=lib: lib.std_mean(x)):
            with pytest.raises(RuntimeError, match="only support floating point"):
                fn(lib.tensor([1, 2]))


def test_std_of_a_constant_line_has_zero_gradient():
    """Where the std is 0 PyTorch's gradient is 0; sqrt(var) gave 0 * inf = nan there."""
    x = np.array([[4.0, 2.0, 1.0], [3.0, 3.0, 3.0]], np.float32)
    check_op([x], lambda t, x: x.std(1))
    check_op([x], lambda t, x: t.std(x, 1, keepdim=True, correction=0))
    check_op([np.full((2, 3), 5.0, np.float32)], lambda t, x: x.std())


def test_median_cummax_with_nan_like_torch():
    """A NaN propagates through median (value NaN, index of the line's first NaN) and through
    cummax/cummin (NaN from there on, index of the latest NaN); nanmedian takes the lower
    median of the rest. median gave the median of the numbers; cummax/cummin ignored the NaN
    (and returned a plain tuple, without .values/.indices)."""
    nan = float("nan")
    x = np.array([[1.0, nan, 3.0, nan, 0.0], [2.0, 1.0, 0.0, 5.0, 4.0], [nan] * 5], np.float32)
    fns = [lambda t, x: x.median(), lambda t, x: x.median(1), lambda t, x: t.median(x, 0, True),
           lambda t, x: x.nanmedian(), lambda t, x: t.nanmedian(x[:2], 1),
           lambda t, x: x[:2].nanmedian(), lambda t, x: x[:2].nanmedian(-1, keepdim=True),
           lambda t, x: x.nanmedian(1).values,  # an all-NaN line's index differs by size in torch
           lambda t, x: x.cummax(1), lambda t, x: t.cummin(x, 1), lambda t, x: x.cummax(0)]
    for fn in fns:
        out = [fn(lib, lib.tensor(x)) for lib in (ember, torch)]
        out = [o if isinstance(o, tuple) else (o,) for o in out]
        for e, t in zip(*out):
            np.testing.assert_array_equal(e.numpy(), t.numpy())
    for lib in (ember, torch):
        r = lib.tensor(x).cummax(1)
        assert r.values.shape == r.indices.shape == (3, 5)


@pytest.mark.parametrize("dtype", ["int32", "int16", "uint8", "bool", "float64"])
def test_sum_prod_cumsum_dtype_argument(dtype):
    """sum/prod(dtype=...) return that dtype (NumPy widened int32 to int64); bool gives any/all."""
    x = np.array([[1, 5, 2], [3, 0, 1]], np.int64)
    for fn in (lambda x, d: x.sum(dtype=d), lambda x, d: x.sum(1, dtype=d),
               lambda x, d: x.prod(dtype=d), lambda x, d: x.prod(0, keepdim=True, dtype=d),
               lambda x, d: x.float().sum(0, dtype=d), lambda x, d: x.cumsum(1, dtype=d)):
        if dtype == "bool" and fn.__code__.co_names[-1] == "cumsum":
            continue  # torch has no bool cumsum
        e, t = (fn(lib.tensor(x), getattr(lib, dtype)) for lib in (ember, torch))
        assert str(e.dtype).split(".")[-1] == str(t.dtype).split(".")[-1] == dtype
        np.testing.assert_array_equal(e.numpy(), t.numpy())


ZERO_DIM = {
    "sum": lambda t, x: x.sum(0), "mean": lambda t, x: t.mean(x, -1, keepdim=True),
    "prod": lambda t, x: x.prod(0), "amax": lambda t, x: x.amax(0), "max": lambda t, x: x.max(0),
    "var": lambda t, x: x.var(0, correction=0), "std": lambda t, x: x.std(-1, unbiased=False),
    "logsumexp": lambda t, x: x.logsumexp(0), "norm": lambda t, x: x.norm(dim=0),
    "cumsum": lambda t, x: x.cumsum(0), "cumprod": lambda t, x: t.cumprod(x, -1),
    "cummax": lambda t, x: x.cummax(0), "cummin": lambda t, x: t.cummin(x, 0),
    "mode": lambda t, x: x.mode(0), "median": lambda t, x: x.median(0),
}


@pytest.mark.parametrize("name", sorted(ZERO_DIM))
def test_reductions_of_a_zero_dim_tensor_take_dim_0(name):
    """A 0-d tensor takes dim 0 or -1 and keeps its shape (): sum(0) raised NumPy's AxisError,
    cumsum(0) gave shape (1,)."""
    check_op([np.array(2.5, np.float32)], ZERO_DIM[name])


def test_mode_values_carry_a_gradient():
    """mode's values were built outside autograd (no grad_fn); in torch the gradient goes to the
    element at the returned index."""
    x = np.array([[1.0, 2.0, 2.0, 3.0], [4.0, 4.0, 0.0, 0.0]], np.float32)
    check_op([x], lambda t, x: x.mode(1))
    check_op([x], lambda t, x: t.mode(x, 0, keepdim=True))


def test_nansum_nanmean_of_integers_like_torch():
    """nansum of an integer tensor is int64 (it was float32); nanmean and mean of one raise
    torch's RuntimeError (nanmean returned a float)."""
    x = np.array([[1, 5, 2], [3, 0, -1]], np.int64)
    for fn in (lambda t, x: x.nansum(), lambda t, x: t.nansum(x, 1, keepdim=True),
               lambda t, x: x.bool().nansum(0), lambda t, x: x.float().nanmean(1, dtype=t.float64)):
        e, t = fn(ember, ember.tensor(x)), fn(torch, torch.tensor(x))
        assert str(e.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
        np.testing.assert_allclose(e.numpy(), t.numpy())
    for lib in (ember, torch):
        with pytest.raises(RuntimeError, match="nanmean\\(\\): expected input to have floating "
                                               "point or complex dtype but got Long"):
            lib.tensor(x).nanmean(0)
        with pytest.raises(RuntimeError, match="Input dtype must be either a floating point or "
                                               "complex dtype. Got: Long"):
            lib.tensor(x).mean()


EMPTY = {
    "max_dim": lambda t, x: x.max(1), "min_keep": lambda t, x: t.min(x, -1, keepdim=True),
    "amax": lambda t, x: x.amax(1), "argmax": lambda t, x: x.argmax(1),
    "argmin_keep": lambda t, x: t.argmin(x, 1, keepdim=True),
    "aminmax": lambda t, x: t.aminmax(x, dim=1), "logsumexp": lambda t, x: x.logsumexp(0),
    "logsumexp_all": lambda t, x: t.logsumexp(x, (0, 1)), "median_all": lambda t, x: x.median(),
}


@pytest.mark.parametrize("name", sorted(EMPTY))
def test_reductions_of_an_empty_tensor_like_torch(name):
    """(0, 3) reduced along its non-empty dim 1 is empty, not an error; logsumexp of nothing is
    -inf and median of nothing NaN (both raised NumPy errors)."""
    check_op([np.zeros((0, 3), np.float32)], EMPTY[name], grad=False)


def test_reductions_over_an_empty_dim_raise_like_torch():
    for lib in (ember, torch):
        x = lib.zeros(0, 3)
        for fn in (lambda: x.max(), lambda: x.amin()):
            with pytest.raises(RuntimeError, match="Expected reduction dim to be specified for "
                                                   "input.numel\\(\\) == 0"):
                fn()
        with pytest.raises(IndexError, match="input.numel\\(\\) == 0"):
            x.argmax()
        for fn in (lambda: x.max(0), lambda: x.argmin(0), lambda: x.median(0),
                   lambda: x.mode(0)):
            with pytest.raises(IndexError, match="Expected reduction dim 0 to have non-zero "
                                                 "size"):
                fn()


def test_median_of_all_elements_shares_the_gradient_between_ties():
    """median() without dim gave the whole gradient to one element; torch shares it evenly
    between the elements equal to the median (NaNs with a NaN median), as for max()."""
    nan = float("nan")
    for x in ([[4.0, 2.0], [4.0, 4.0]], [1.0, 2.0, 2.0, 3.0], [1.0, nan, 2.0, nan],
              [3.0, 1.0, 2.0]):
        check_op([np.array(x, np.float32)], lambda t, x: x.median())
    check_op([np.array([1.0, 2.0, 2.0, 3.0], np.float32)], lambda t, x: t.nanmedian(x))


NUMPY_NAMES = ["sum", "mean", "prod", "max", "min", "amax", "amin", "argmax", "argmin", "var",
               "std", "all", "any", "median", "nansum"]


@pytest.mark.parametrize("name", NUMPY_NAMES)
def test_reductions_take_numpy_axis_and_keepdims(name):
    """x.sum(axis=1, keepdims=True): torch accepts NumPy's names for dim/keepdim; ember raised
    'unexpected keyword argument axis'."""
    check_op([(2, 3)], lambda t, x: getattr(x, name)(axis=1), grad=False)
    check_op([(2, 3)], lambda t, x: getattr(t, name)(x, axis=0, keepdims=True), grad=False)
    check_op([(2, 3)], lambda t, x: getattr(x, name)(-1, keepdims=True), grad=False)


def test_cat_stack_take_numpy_axis():
    check_op([(2, 3), (2, 3)], lambda t, a, b: t.cat([a, b], axis=1))
    check_op([(2, 3), (2, 3)], lambda t, a, b: t.stack((a, b), axis=-1))


QUANTILE = {
    "all": lambda t, x: t.quantile(x, 0.3),
    "dim": lambda t, x: x.quantile(0.5, dim=1),
    "dim_keep_lower": lambda t, x: t.quantile(x, 0.7, 0, True, interpolation="lower"),
    "qs": lambda t, x: t.quantile(x, t.tensor([0.25, 0.5, 0.9]), dim=-1),
    "qs_keep_midpoint": lambda t, x: x.quantile(t.tensor([0.1, 1.0]), 1, keepdim=True,
                                                interpolation="midpoint"),
    "qs_all_keep_nearest": lambda t, x: t.quantile(x, t.tensor([0.4, 0.6]), keepdim=True,
                                                   interpolation="nearest"),
    "nan": lambda t, x: t.nanquantile(x, 0.4, dim=1, interpolation="higher"),
}


@pytest.mark.parametrize("name", sorted(QUANTILE))
def test_quantile(name):
    """torch.quantile / nanquantile (and the methods) were missing."""
    check_op([(3, 5)], QUANTILE[name])
    check_gradcheck([(3, 5)], QUANTILE[name])
    x = np.array([[1.0, 5.0, np.nan, 2.0], [4.0, 2.0, 6.0, 0.5]], np.float32)
    check_op([x], QUANTILE[name], grad=False)  # a line with a NaN: NaN, or without it (nan*)
    for lib in (ember, torch):
        with pytest.raises(RuntimeError, match=r"quantile\(\) q must be in the range \[0, 1\]"):
            lib.quantile(lib.zeros(3), 1.5)
        with pytest.raises(RuntimeError, match="input tensor must be either float or double"):
            lib.quantile(lib.tensor([1, 2]), 0.5)


def _distinct(shape, seed=0):
    """float64 values at least 0.27 apart: median, mode and cummax have no ties to split."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.37 - 1.13 + rng.uniform(0, 0.1, n)).reshape(shape)


_X = _distinct((3, 5))
_XNAN = _X.copy()
_XNAN[0, 1] = _XNAN[2, 3] = np.nan
ORDER_GRADCHECK = {
    "median_all": ([_X], lambda t, x: x.median()),
    "median_all_even": ([_distinct((2, 3))], lambda t, x: x.median()),
    "nanmedian_all": ([_X], lambda t, x: x.nanmedian()),
    "nanmedian_all_with_nan": ([_XNAN], lambda t, x: x.nanmedian()),
    "nanmedian_dim_with_nan": ([_XNAN], lambda t, x: x.nanmedian(1)[0]),
    "median_dim": ([_X], lambda t, x: x.median(1)),
    "median_dim0_keep": ([_X], lambda t, x: t.median(x, 0, True)),
    "nanmedian_dim": ([_X], lambda t, x: x.nanmedian(-1, keepdim=True)),
    "cummax": ([_X], lambda t, x: x.cummax(1)),
    "cummin": ([_X], lambda t, x: t.cummin(x, 0)),
    "mode": ([_X], lambda t, x: x.mode(1)),
    "mode_dim0_keep": ([_X], lambda t, x: t.mode(x, 0, keepdim=True)),
}


@pytest.mark.parametrize("name", sorted(ORDER_GRADCHECK))
def test_order_reductions_gradcheck(name):
    """float64 gradchecks of median/nanmedian (all and dim), cummax/cummin and mode, whose
    gradients were rewritten since a760f12; distinct values, so each is differentiable."""
    specs, fn = ORDER_GRADCHECK[name]
    check_gradcheck(specs, fn)


@pytest.mark.parametrize("name", sorted(ZERO_DIM))
def test_reductions_of_a_zero_dim_tensor_gradcheck(name):
    """float64 gradchecks of the dim-0 reductions of a 0-d tensor (fixed since a760f12)."""
    check_gradcheck([np.array(2.5)], ZERO_DIM[name])


@pytest.mark.parametrize("fn", [lambda t, x: t.std(x, (0, 2), keepdim=True, correction=0),
                                lambda t, x: x.std(-1, unbiased=False),
                                lambda t, x: t.std_mean(x, 1)],
                         ids=["dims_keepdim_correction0", "unbiased_false", "std_mean"])
def test_std_variants_gradcheck(fn):
    """std became its own op (Std) since a760f12: float64 gradchecks beyond DIFF's two uses."""
    check_gradcheck([(2, 3, 4)], fn)


_XNAN3 = _distinct((3, 5))
_XNAN3[0, 1] = _XNAN3[2, 3] = _XNAN3[2, 0] = np.nan


@pytest.mark.parametrize("interpolation", ["linear", "lower", "higher", "midpoint", "nearest"])
def test_nanquantile_gradcheck_with_nans(interpolation):
    """float64 gradcheck of nanquantile on lines holding NaNs (QUANTILE's gradcheck has none)."""
    check_gradcheck([_XNAN3], lambda t, x: t.nanquantile(x, 0.4, dim=1,
                                                         interpolation=interpolation))
    check_gradcheck([_XNAN3], lambda t, x: x.nanquantile(t.tensor([0.3, 0.8]),
                                                         interpolation=interpolation))
