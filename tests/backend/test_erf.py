"""ember.backend.erf: the float32 exact-GELU kernels against float64 references."""

import math
import threading

import numpy as np
import pytest

import ember
from ember.backend import erf as E
from tests.harness import check_op

# The fitted erfc (NumPy only), then MKL's normal CDF (the [mkl] extra)
pytestmark = pytest.mark.usefixtures("each_blas")

GRID = np.concatenate([np.linspace(-16, 12, 280_001), [0.0, -0.0, 1e-30, -1e-8, 14.1, 14.2]])


def _ref(x):
    """float64 gelu and its derivative via erfc (``1 + erf`` would cancel in the tail)."""
    x = x.astype(np.float64)
    cdf = 0.5 * np.vectorize(math.erfc, otypes=[float])(-x / math.sqrt(2))
    return x * cdf, cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def test_gelu_and_grad_match_float64_torch():
    x = GRID.astype(np.float32)
    y, dy = _ref(x)
    # float32 rounding of exp's argument (-x^2/2) limits the tail to a few 1e-6 relative
    np.testing.assert_allclose(E.gelu_f32(x), y, rtol=1e-5, atol=1e-30)
    np.testing.assert_allclose(E.gelu_grad_f32(x), dy, rtol=1e-5, atol=2e-7)


def test_negative_tail_keeps_relative_accuracy():
    """No ``1 + erf`` cancellation: gelu(-5) ~ -1.4e-6 is right to float32 precision."""
    x = np.array([-2.5, -4.0, -5.0, -8.0, -12.0], np.float32)
    np.testing.assert_allclose(E.gelu_f32(x), _ref(x)[0], rtol=2e-5)


@pytest.mark.parametrize("shape", [(0,), (1,), (3, 5), (E._CHUNK + 7,), (2, E._CHUNK // 2 + 1)])
def test_shapes_chunks_and_dtype(shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32) * 3
    for f in (E.gelu_f32, E.gelu_grad_f32):
        y = f(x)
        assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(E.gelu_f32(x), _ref(x)[0].reshape(shape), rtol=1e-5, atol=1e-30)


def test_non_contiguous_input_and_specials():
    x = np.random.default_rng(1).standard_normal((40, 30)).astype(np.float32)
    np.testing.assert_array_equal(E.gelu_f32(x.T), E.gelu_f32(x).T)
    g = E.gelu_f32(np.array([np.inf, -20.0, np.nan, -0.0], np.float32))
    assert g[0] == np.inf and abs(g[1]) < 1e-40 and np.isnan(g[2]) and g[3] == 0
    d = E.gelu_grad_f32(np.array([np.inf, -np.inf, 30.0], np.float32))
    np.testing.assert_array_equal(d[2:], [1.0])


def test_f_gelu_uses_it_and_still_matches_torch():
    # torch's float32 gelu loses ~1e-6 to ``1 + erf`` cancellation beyond |x| ~ 3: keep x normal
    check_op([(64, 257)], lambda lib, x: lib.nn.functional.gelu(x))
    x = ember.randn(1000) * 4
    np.testing.assert_array_equal(ember.nn.functional.gelu(x).numpy(), E.gelu_f32(x.numpy()))


def test_split_over_two_threads_gives_the_same_bits(idle, monkeypatch):
    x = np.random.default_rng(2).standard_normal(3 * E._CHUNK + 5).astype(np.float32) * 4
    x[E._CHUNK + 3] = np.inf  # one block takes the clamp
    serial = E.gelu_f32(x)  # below _SPLIT: one thread
    monkeypatch.setattr(E, "_SPLIT", 1)
    monkeypatch.setattr(E, "_SPLIT_CHUNK", E._CHUNK)
    threads = set()
    real = E.parallel_for

    def spy(n, fn, **kw):
        return real(n, lambda lo, hi: (threads.add(threading.current_thread().name),
                                       fn(lo, hi)), **kw)
    monkeypatch.setattr(E, "parallel_for", spy)
    np.testing.assert_array_equal(E.gelu_f32(x), serial)
    assert len(threads) == 2 and serial[E._CHUNK + 3] == np.inf


@pytest.mark.parametrize("shape", [(5, 7), (E._CHUNK // 100 + 3, 100), (3, E._CHUNK + 1)])
def test_bias_and_in_place(shape, idle, monkeypatch):
    monkeypatch.setattr(E, "_SPLIT", 1)  # split whatever the size, in the one-thread blocks
    monkeypatch.setattr(E, "_SPLIT_CHUNK", E._CHUNK)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(np.float32) * 3
    b = rng.standard_normal(shape[-1]).astype(np.float32)
    want = E.gelu_f32(x + b)
    np.testing.assert_array_equal(E.gelu_f32(x, b), want)
    y = x.copy()
    assert E.gelu_f32(y, b, y) is y
    np.testing.assert_array_equal(y, want)
