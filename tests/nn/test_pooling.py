"""Pooling layers and functional forms against torch (values, indices, gradients)."""

import numpy as np
import pytest
import torch

import ember
import ember.nn as nn
from tests.harness import check_gradcheck, check_module, check_op

# Max pooling runs as NumPy calls, as the numba kernels of ember.backend.jit, or (float32) on
# oneDNN: every test each way.
pytestmark = pytest.mark.usefixtures("each_kernels", "each_onednn")

MAX2D = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(2, 1)),
    dict(kernel_size=2, ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=3, stride=1, dilation=2),
]


@pytest.mark.parametrize("cfg", MAX2D)
@pytest.mark.parametrize("shape", [(2, 3, 9, 7), (3, 8, 8)])
def test_maxpool2d(cfg, shape):
    check_module(torch.nn.MaxPool2d(**cfg), nn.MaxPool2d(**cfg), [shape])
    check_module(torch.nn.MaxPool2d(**cfg, return_indices=True),
                 nn.MaxPool2d(**cfg, return_indices=True), [shape])


@pytest.mark.parametrize("cfg", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1,
                                                           ceil_mode=True, dilation=1),
                                 dict(kernel_size=2, dilation=3, return_indices=True)])
def test_maxpool1d(cfg):
    check_module(torch.nn.MaxPool1d(**cfg), nn.MaxPool1d(**cfg), [(2, 3, 11)])
    check_module(torch.nn.MaxPool1d(**cfg), nn.MaxPool1d(**cfg), [(3, 11)])


def test_maxpool_ties_go_to_first_and_nan_propagates():
    x = np.ones((1, 2, 4, 4), np.float32)
    check_op([x], lambda t, x: t.nn.functional.max_pool2d(x, 2, return_indices=True))
    check_op([x], lambda t, x: t.nn.functional.max_pool2d(x, 3, 1, 1, return_indices=True))
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = np.nan
    y, i = ember.nn.functional.max_pool2d(ember.tensor(x), 2, return_indices=True)
    ty, ti = torch.nn.functional.max_pool2d(torch.tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(y.numpy(), ty.numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())



@pytest.mark.parametrize("cfg", [c for c in MAX2D if c.get("padding")] + [
    dict(kernel_size=2, ceil_mode=True), dict(kernel_size=3, stride=1, padding=1, dilation=2)])
def test_maxpool_windows_of_neg_inf_match_torch(cfg):
    """Windows holding only -infs (and padding): the value is -inf (oneDNN's maximum would
    start from -FLT_MAX) and the winner is the window's first position inside the input, as
    in PyTorch, so its index and gradient go there (not to the padding before it)."""
    x = np.full((2, 2, 7, 6), -np.inf, np.float32)
    x[0, 0, 2, 2], x[1, 1, 4, 1], x[0, 1, 6, 5] = 1.0, -2.0, 3.0
    out = []
    for lib in (ember, torch):
        t = lib.tensor(x, requires_grad=True)
        y, i = lib.nn.functional.max_pool2d(t, return_indices=True, **cfg)
        y.backward(lib.tensor(np.arange(y.numel(), dtype=np.float32).reshape(tuple(y.shape))))
        out.append([y.detach().numpy(), i.numpy(), t.grad.numpy()])
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


def test_maxpool_2x2_winner_matches_torch_for_every_tie_pattern():
    """The 2x2 tournament's uint8 winner selection, on windows drawn from {0, 1, 2}: all 81
    value patterns (ties of two, three and four included) occur."""
    x = np.random.default_rng(0).integers(0, 3, (2, 3, 40, 40)).astype(np.float32)
    y, i = ember.nn.functional.max_pool2d(ember.tensor(x), 2, return_indices=True)
    ty, ti = torch.nn.functional.max_pool2d(torch.tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(y.numpy(), ty.numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())

AVG2D = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=2, divisor_override=3),
]


@pytest.mark.parametrize("cfg", AVG2D)
@pytest.mark.parametrize("shape", [(2, 3, 9, 7), (3, 8, 8)])
def test_avgpool2d(cfg, shape):
    check_module(torch.nn.AvgPool2d(**cfg), nn.AvgPool2d(**cfg), [shape])


@pytest.mark.parametrize("cfg", [dict(kernel_size=2),
                                 dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                                      count_include_pad=False)])
def test_avgpool1d(cfg):
    check_module(torch.nn.AvgPool1d(**cfg), nn.AvgPool1d(**cfg), [(2, 3, 11)])


@pytest.mark.parametrize("out", [1, (3, 3), (2, 4), (5, 3), (None, 2), (9, 8)])
def test_adaptive_2d(out):
    check_module(torch.nn.AdaptiveAvgPool2d(out), nn.AdaptiveAvgPool2d(out), [(2, 3, 9, 8)])
    check_module(torch.nn.AdaptiveMaxPool2d(out, return_indices=True),
                 nn.AdaptiveMaxPool2d(out, return_indices=True), [(2, 3, 9, 8)])
    check_module(torch.nn.AdaptiveMaxPool2d(out), nn.AdaptiveMaxPool2d(out), [(3, 9, 8)])


@pytest.mark.parametrize("out", [1, 4, 3])
def test_adaptive_1d(out):
    check_module(torch.nn.AdaptiveAvgPool1d(out), nn.AdaptiveAvgPool1d(out), [(2, 3, 9)])
    check_module(torch.nn.AdaptiveMaxPool1d(out, return_indices=True),
                 nn.AdaptiveMaxPool1d(out, return_indices=True), [(2, 3, 9)])


@pytest.mark.parametrize("k,s,p,size", [(2, None, 0, None), (3, 2, 1, (9, 9))])
def test_max_unpool2d(k, s, p, size):
    def fn(t, x):
        y, i = t.nn.functional.max_pool2d(x, k, s, p, return_indices=True)
        return t.nn.functional.max_unpool2d(y, i, k, s, p, output_size=size)

    check_op([(2, 3, 9, 9) if size else (2, 3, 8, 8)], fn)
    m, tm = nn.MaxUnpool2d(k, s, p), torch.nn.MaxUnpool2d(k, s, p)
    assert repr(m) == repr(tm)


def test_max_unpool1d():
    def fn(t, x):
        y, i = t.nn.functional.max_pool1d(x, 2, return_indices=True)
        return t.nn.MaxUnpool1d(2)(y, i)

    check_op([(2, 3, 8)], fn)


def test_gradcheck():
    F = lambda t: t.nn.functional  # noqa: E731
    check_gradcheck([(2, 2, 5, 5)], lambda t, x: F(t).max_pool2d(x, 3, 2, 1))
    check_gradcheck([(2, 2, 6, 6)], lambda t, x: F(t).max_pool2d(x, 2))
    check_gradcheck([(2, 2, 5, 5)], lambda t, x: F(t).avg_pool2d(x, 3, 2, 1, ceil_mode=True,
                                                                  count_include_pad=False))
    check_gradcheck([(2, 2, 7)], lambda t, x: F(t).avg_pool1d(x, 3, 2, 1))
    check_gradcheck([(2, 2, 5, 5)], lambda t, x: F(t).adaptive_avg_pool2d(x, 3))
    check_gradcheck([(2, 2, 6, 6)], lambda t, x: F(t).adaptive_avg_pool2d(x, 2))
    check_gradcheck([(2, 2, 5, 5)], lambda t, x: F(t).adaptive_max_pool2d(x, 3))


def test_reprs():
    pairs = [("MaxPool2d", (2,)), ("MaxPool2d", (3, 2, 1)), ("AvgPool2d", (2,)),
             ("AdaptiveAvgPool2d", ((1, 1),)), ("AdaptiveMaxPool2d", (2,)), ("MaxPool1d", (3,)),
             ("AvgPool1d", (3,)), ("AdaptiveAvgPool1d", (4,))]
    for name, args in pairs:
        assert repr(getattr(nn, name)(*args)) == repr(getattr(torch.nn, name)(*args))


def _msg(fn, lib):
    with pytest.raises(Exception) as ei:
        fn(lib)
    return type(ei.value).__name__, str(ei.value)


@pytest.mark.parametrize("case", [
    lambda L: L.nn.MaxPool2d(3)(L.zeros(1, 1, 2, 2)),
    lambda L: L.nn.MaxPool2d(3, padding=2)(L.zeros(1, 1, 8, 8)),
    lambda L: L.nn.functional.avg_pool2d(L.zeros(1, 1, 8, 8), 3, padding=2),
    lambda L: L.nn.functional.max_pool2d(L.zeros(1, 1, 8, 8), 3, stride=0),
    lambda L: L.nn.functional.max_pool1d(L.zeros(8), 3),
    lambda L: L.nn.functional.adaptive_avg_pool2d(L.zeros(8, 8), 3),
    lambda L: L.nn.functional.adaptive_avg_pool2d(L.zeros(1, 1, 8, 8), (3,)),
    lambda L: L.nn.functional.max_pool2d(L.zeros(1, 1, 4, 4), 2, dilation=(1, 0)),
    lambda L: L.nn.functional.max_pool1d(L.zeros(1, 1, 4), 2, dilation=0),
    lambda L: L.nn.functional.max_pool2d(L.zeros(1, 1, 4, 4), 2, padding=(0, -1)),
    lambda L: L.nn.functional.max_pool1d(L.zeros(1, 1, 4), 2, padding=-1),
    lambda L: L.nn.functional.avg_pool2d(L.zeros(1, 1, 4, 4), 2, padding=-1),
])
def test_errors_match_torch(case):
    assert _msg(case, ember) == _msg(case, torch)


@pytest.mark.parametrize("fn", [
    lambda L, x: L.nn.functional.max_pool2d(x, 2),
    lambda L, x: L.nn.functional.max_pool2d(x, 3, 2, 1, return_indices=True),
    lambda L, x: L.nn.functional.avg_pool2d(x, 3, 2, 1, ceil_mode=True),
    lambda L, x: L.nn.functional.max_pool1d(x[:, :, 0], 2),
    lambda L, x: L.nn.functional.avg_pool1d(x[:, :, 0], 2),
    lambda L, x: L.nn.functional.adaptive_max_pool2d(x, (2, 3), return_indices=True),
    lambda L, x: L.nn.functional.adaptive_max_pool1d(x[:, :, 0], 3),
    lambda L, x: L.nn.functional.adaptive_avg_pool2d(x, 3),
    lambda L, x: L.nn.functional.max_unpool2d(*L.nn.functional.max_pool2d(
        x, 2, return_indices=True), 2),
])
def test_empty_batch_matches_torch(fn):
    # torch pools a batch of 0 samples ("optional 0 dim batch size"); ember raised or crashed
    check_op([(0, 3, 6, 5)], fn)


@pytest.mark.parametrize("p", [2, 1, 3, float("inf")])
def test_lp_pool_layers_match_torch(p):
    # nn.LPPool1d/2d and F.lp_pool1d/2d were missing
    from ember.nn.modules.pooling import LPPool1d, LPPool2d  # torch.nn.modules.pooling's path

    assert (LPPool1d, LPPool2d) == (nn.LPPool1d, nn.LPPool2d)
    for args, kw, shape in [((p, 2), {}, (2, 3, 6, 5)),
                            ((p, (3, 2)), dict(stride=(2, 1), ceil_mode=True), (3, 7, 6))]:
        t, e = torch.nn.LPPool2d(*args, **kw), nn.LPPool2d(*args, **kw)
        check_module(t, e, [shape])
        assert repr(e) == repr(t)
    t, e = torch.nn.LPPool1d(p, 3, stride=2), nn.LPPool1d(p, 3, stride=2)
    check_module(t, e, [(2, 3, 8)])
    assert repr(e) == repr(t)
    check_op([(1, 2, 4, 4)], lambda L, x: L.nn.functional.lp_pool2d(x, -p, 2))


def test_avg_pool_of_int64_truncates_like_torch():
    # torch averages int64 input (quotient truncated toward zero) and refuses other integer
    # types; ember crashed in NumPy's in-place true division of an integer array
    x = np.array([[[[200, 250, 3, 4], [100, 100, 0, 1]]]], np.int64) - 175
    for fn in (lambda L, x: L.nn.functional.avg_pool2d(x, 2),
               lambda L, x: L.nn.functional.avg_pool2d(x, 2, divisor_override=3),
               lambda L, x: L.nn.functional.avg_pool2d(x, 3, 2, 1, ceil_mode=True,
                                                       count_include_pad=False),
               lambda L, x: L.nn.functional.avg_pool1d(x[0], 2)):
        check_op([x], fn)
    for dt in ("int32", "uint8"):
        def case(L):
            return L.nn.functional.avg_pool2d(L.zeros(1, 1, 4, 4, dtype=getattr(L, dt)), 2)

        assert _msg(case, ember)[0] == _msg(case, torch)[0] == "NotImplementedError"


def test_empty_non_batch_dim_still_raises():
    case = lambda L: L.nn.functional.max_pool2d(L.zeros(2, 0, 4, 4), 2)  # noqa: E731
    assert _msg(case, ember)[0] == _msg(case, torch)[0] == "RuntimeError"


def test_maxpool_inference_path():
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    with ember.no_grad():
        y = nn.MaxPool2d(3, 2, 1)(ember.tensor(x))
        y2, i2 = nn.MaxPool2d(2, return_indices=True)(ember.tensor(x))
    ty2, ti2 = torch.nn.MaxPool2d(2, return_indices=True)(torch.tensor(x))
    np.testing.assert_array_equal(y.numpy(), torch.nn.MaxPool2d(3, 2, 1)(torch.tensor(x)).numpy())
    np.testing.assert_array_equal(y2.numpy(), ty2.numpy())
    np.testing.assert_array_equal(i2.numpy(), ti2.numpy())


def test_noncontiguous_inputs():
    check_op([(2, 3, 8, 8)], lambda t, x: t.nn.functional.max_pool2d(x, 2), transpose=(0,))
    check_op([(2, 3, 8, 8)], lambda t, x: t.nn.functional.avg_pool2d(x, 3, 1, 1), transpose=(0,))


def test_maxpool_split_over_threads(idle, monkeypatch):
    """Planes shared between two threads (both directions) give the same values and gradients."""
    from ember.ops import pooling

    monkeypatch.setattr(pooling, "_SPLIT", 0)
    for cfg in MAX2D[:3]:
        check_module(torch.nn.MaxPool2d(**cfg), nn.MaxPool2d(**cfg), [(4, 5, 9, 8)])



def test_lp_pool_gradcheck():
    """float64 gradchecks of F.lp_pool1d/2d and nn.LPPool2d (added since a760f12); p = 3 and
    1.5 on positive inputs (x ** p of a negative x), p = inf on distinct values (max pooling
    without ties)."""
    F = ember.nn.functional
    check_gradcheck([(2, 3, 7)], lambda t, x: F.lp_pool1d(x, 2, 3, 2))
    check_gradcheck([(2, 3, 7)], lambda t, x: F.lp_pool1d(x, 1, 3, 2))
    check_gradcheck([(2, 3, 7)], lambda t, x: F.lp_pool1d(x, 1.5, 2), positive=True)
    check_gradcheck([(2, 2, 5, 5)], lambda t, x: F.lp_pool2d(x, 2, 2))
    check_gradcheck([(2, 2, 5, 6)], lambda t, x: F.lp_pool2d(x, 3, (2, 3), ceil_mode=True),
                    positive=True)
    x = (np.random.default_rng(0).permutation(50) * 0.1 - 2.5).reshape(1, 2, 5, 5)
    check_gradcheck([x], lambda t, x: F.lp_pool2d(x, float("inf"), 2))
    check_gradcheck([(2, 2, 5, 5)], lambda t, x: nn.LPPool2d(2, 2, 1)(x))


def test_avg_pool_empty_batch_gradcheck():
    """avg_pool1d/2d on an empty batch (allowed since a760f12): the gradcheck of nothing runs."""
    check_gradcheck([(0, 3, 6, 5)], lambda t, x: t.nn.functional.avg_pool2d(x, 2))
    check_gradcheck([(0, 3, 6)], lambda t, x: t.nn.functional.avg_pool1d(x, 2))


def _distinct(shape, seed=0):
    """float64 values at least 0.27 apart: max pooling without ties."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.37 - 1.13 + rng.uniform(0, 0.1, n)).reshape(shape)


def test_max_pool1d_adaptive_max_and_unpool_gradcheck():
    """float64 gradchecks of max_pool1d, adaptive_max_pool1d/2d (non-dividing sizes) and
    max_unpool1d/2d (fixed indices), whose backwards were reshaped for empty batches since
    a760f12, on distinct values."""
    F = ember.nn.functional
    check_gradcheck([_distinct((2, 3, 9))], lambda t, x: F.max_pool1d(x, 3, 2, 1))
    check_gradcheck([_distinct((2, 3, 9))], lambda t, x: F.max_pool1d(x, 2, dilation=2,
                                                                      ceil_mode=True))
    check_gradcheck([_distinct((2, 3, 7))], lambda t, x: F.adaptive_max_pool1d(x, 3))
    check_gradcheck([_distinct((2, 2, 5, 7))], lambda t, x: F.adaptive_max_pool2d(x, (2, 3)))
    check_gradcheck([_distinct((2, 2, 5, 7))], lambda t, x: F.adaptive_max_pool2d(
        x, (3, 2), return_indices=True)[0])
    check_gradcheck([(0, 2, 5, 7)], lambda t, x: F.adaptive_max_pool2d(x, (2, 3)))
    _, i2 = F.max_pool2d(ember.tensor(_distinct((2, 2, 4, 6))), 2, return_indices=True)
    check_gradcheck([(2, 2, 2, 3)], lambda t, x: F.max_unpool2d(x, i2, 2))
    check_gradcheck([(2, 2, 2, 3)], lambda t, x: F.max_unpool2d(x, i2, 2, output_size=(5, 7)))
    check_gradcheck([(2, 2, 2, 3)], lambda t, x: nn.MaxUnpool2d(2)(x, i2))
    _, i1 = F.max_pool1d(ember.tensor(_distinct((2, 3, 8))), 2, return_indices=True)
    check_gradcheck([(2, 3, 4)], lambda t, x: F.max_unpool1d(x, i1, 2))
