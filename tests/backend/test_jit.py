"""ember.backend.jit: the numba kernels (the [jit] extra, installed by the test extra) equal the
NumPy arithmetic they replace, in float32 and float64, on strided and aliased arguments;
EMBER_JIT chooses; numba loads with the first op that uses it only. The layers' own tests run on
both (``each_kernels`` in tests/nn/test_rnn.py and tests/nn/test_norm.py)."""

import sys

import numpy as np
import pytest

from ember.backend import jit
from tests.harness import python_output

RNG = np.random.default_rng(0)
B, H = 5, 7


def _tol(dt):
    return {"rtol": 1e-6, "atol": 1e-6} if dt == np.float32 else {"rtol": 1e-13, "atol": 1e-13}


def _gates(dt, n):
    """(B, n*H) gate values in (0, 1), like sigmoids and tanh's of small numbers."""
    return RNG.uniform(0.05, 0.95, (B, n * H)).astype(dt)


@pytest.fixture
def k(numba_kernels):
    return jit.kernels()


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_lstm_cell(k, dt):
    g = RNG.uniform(-1, 1, (B, 4 * H)).astype(dt)  # tanh of the (halved) pre-activations
    c_prev = RNG.standard_normal((B, H)).astype(dt)
    want_g = g.copy()
    want_g[:, : 3 * H] = 0.5 * g[:, : 3 * H] + 0.5
    _, i, f, gg = np.split(want_g, 4, axis=1)
    c = np.empty((B, H), dt)
    k.lstm_cell(g, c_prev, c)
    np.testing.assert_allclose(g, want_g, **_tol(dt))
    np.testing.assert_allclose(c, f * c_prev + i * gg, **_tol(dt))
    assert g.dtype == c.dtype == dt


def _lstm_backward_ref(a, tc, c_prev, dh, dc_next):
    o, i, f, g = np.split(a.astype(np.float64), 4, axis=1)
    tc, c_prev, dh, dc_next = (x.astype(np.float64) for x in (tc, c_prev, dh, dc_next))
    dc = dh * o * (1 - tc**2) + dc_next
    dg = np.concatenate([dh * tc * o * (1 - o), dc * g * i * (1 - i), dc * c_prev * f * (1 - f),
                         dc * i * (1 - g**2)], axis=1)
    return dg, dc * f


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_lstm_cell_backward(k, dt):
    a, tc = _gates(dt, 4), RNG.uniform(-1, 1, (B, H)).astype(dt)
    c_prev, dc_next = RNG.standard_normal((2, B, H)).astype(dt)
    dh = RNG.standard_normal((3, B, H)).astype(dt)[::-1][1]  # a view with a negative stride
    want_dg, want_dc = _lstm_backward_ref(a, tc, c_prev, dh, dc_next)
    dg = np.empty((B, 4 * H), dt)
    k.lstm_cell_backward(a, tc, c_prev, dh, dc_next, dg, dc_next)  # dc_out may be dc_next
    np.testing.assert_allclose(dg, want_dg, **_tol(dt))
    np.testing.assert_allclose(dc_next, want_dc, **_tol(dt))


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_gru_cell_and_out(k, dt):
    g = RNG.uniform(-1, 1, (B, 3 * H)).astype(dt)
    gh = RNG.standard_normal((B, 3 * H)).astype(dt)
    b_hn = RNG.standard_normal(H).astype(dt)
    r = 0.5 * g[:, :H] + 0.5
    z = 0.5 * g[:, H : 2 * H] + 0.5
    want_ghn = gh[:, 2 * H :] + b_hn
    want_n = g[:, 2 * H :] + r * want_ghn
    ghn = np.empty((B, H), dt)
    k.gru_cell(g, gh, b_hn, ghn)
    np.testing.assert_allclose(g, np.concatenate([r, z, want_n], axis=1), **_tol(dt))
    np.testing.assert_allclose(ghn, want_ghn, **_tol(dt))
    h = RNG.standard_normal((B, H)).astype(dt)
    out = np.empty((B, H), dt)
    k.gru_out(g, h, out)
    np.testing.assert_allclose(out, (1 - z) * want_n + z * h, **_tol(dt))


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_gru_cell_backward(k, dt):
    a = _gates(dt, 3)
    ghn, h_prev, dh = RNG.standard_normal((3, B, H)).astype(dt)
    r, z, n = np.split(a.astype(np.float64), 3, axis=1)
    d = dh.astype(np.float64)
    dn = d * (1 - z) * (1 - n**2)
    dz = d * (h_prev - n) * z * (1 - z)
    dr = dn * ghn * r * (1 - r)
    dgx, dgh, dh_prev = np.empty((B, 3 * H), dt), np.empty((B, 3 * H), dt), np.empty((B, H), dt)
    k.gru_cell_backward(a, ghn, h_prev, dh, dgx, dgh, dh_prev)
    np.testing.assert_allclose(dgx, np.concatenate([dr, dz, dn], axis=1), **_tol(dt))
    np.testing.assert_allclose(dgh, np.concatenate([dr, dz, dn * r], axis=1), **_tol(dt))
    np.testing.assert_allclose(dh_prev, d * z, **_tol(dt))


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_layer_norm(k, dt):
    x = (RNG.standard_normal((B, 33)) * 4 + 3).astype(dt)
    w, b = RNG.standard_normal((2, 33)).astype(dt)
    x64 = x.astype(np.float64)
    xhat = (x64 - x64.mean(1, keepdims=True)) / np.sqrt(x64.var(1, keepdims=True) + 1e-5)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dt == np.float32 else {"rtol": 1e-12, "atol": 1e-12}
    for wb, want in (((w, b), xhat * w + b), ((None, None), xhat), ((w, None), xhat * w)):
        y, xh, inv = np.empty_like(x), np.empty_like(x), np.empty((B, 1), dt)
        k.layer_norm(x, *wb, 1e-5, y, xh, inv)
        np.testing.assert_allclose(y, want, **tol)
        np.testing.assert_allclose(xh, xhat, **tol)
        np.testing.assert_allclose(inv, 1 / np.sqrt(x64.var(1, keepdims=True) + 1e-5), **tol)
        y2 = np.empty_like(x)
        k.layer_norm(x, *wb, 1e-5, y2, None, None)  # inference: x-hat not kept
        np.testing.assert_allclose(y2, y, **tol)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_batch_norm_kernels(k, dt):
    """Row moments (float64 sums), the affine map, the backward row sums and the input gradient,
    on a strided (channel-sliced) input with a large mean."""
    x = (RNG.standard_normal((4, 6, 29)) * 3 + 500).astype(dt)[:, 1:5]
    g = RNG.standard_normal((4, 4, 29)).astype(dt)
    mean, scale, b, a, k1, k2 = RNG.standard_normal((6, 4)).astype(dt)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    tol = _tol(dt) if dt == np.float64 else {"rtol": 1e-5, "atol": 1e-4}
    s, m2 = np.empty((4, 4)), np.empty((4, 4))
    k.batch_norm_moments(x, s, m2)
    np.testing.assert_allclose(s, x64.sum(2), rtol=1e-12 if dt == np.float64 else 1e-7)
    np.testing.assert_allclose(m2, ((x64 - x64.mean(2, keepdims=True)) ** 2).sum(2),
                               rtol=1e-9 if dt == np.float64 else 1e-5)
    c = (x64 - mean[:, None].astype(np.float64))
    for bias in (b, None):
        y = np.empty_like(x)
        k.batch_norm_affine(x, mean, scale, bias, y)
        want = c * scale[:, None] + (0 if bias is None else bias[:, None])
        np.testing.assert_allclose(y, want, **tol)
    sg, sgx = np.empty((4, 4)), np.empty((4, 4))
    k.batch_norm_sums(g, x, mean, sg, sgx)
    np.testing.assert_allclose(sg, g64.sum(2), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(sgx, (g64 * c).sum(2), rtol=1e-9 if dt == np.float64 else 1e-5)
    gx = np.empty_like(x)
    k.batch_norm_input_grad(g, x, mean, a, k1, k2, gx)
    np.testing.assert_allclose(gx, g64 * a[:, None] - c * k1[:, None] - k2[:, None], **tol)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_max_pool_kernels(k, dt):
    """The 2x2 kernel equals the general one (ties to the first, NaN to the last), and each
    backward puts every output gradient on its window's winner."""
    x = RNG.integers(0, 3, (6, 8, 10)).astype(dt)  # many ties
    x[0, 0, :4] = np.nan
    x[1, 2:4, 2:4] = [[np.nan, 1], [2, np.nan]]
    best, idx = np.empty((6, 4, 5), dt), np.empty((6, 4, 5), np.uint8)
    b2, i2 = np.empty_like(best), np.empty_like(idx)
    k.max_pool2d(x, 2, 2, 2, 2, 1, 1, best, idx)
    k.max_pool2x2(x, b2, i2)
    np.testing.assert_array_equal(b2, best)
    np.testing.assert_array_equal(i2, idx)
    win = x.reshape(6, 4, 2, 5, 2).transpose(0, 1, 3, 2, 4).reshape(6, 4, 5, 4)
    want = np.where(np.isnan(win).any(-1), 3 - np.argmax(np.isnan(win)[..., ::-1], -1),
                    np.argmax(win, -1))
    np.testing.assert_array_equal(idx, want)
    g = RNG.standard_normal((6, 4, 5)).astype(dt)
    gx, gx2 = np.zeros_like(x), np.full_like(x, np.nan)
    k.max_pool2d_backward(g, idx, 2, 2, 2, 1, 1, gx)
    k.max_pool2x2_backward(g, idx, gx2)
    np.testing.assert_array_equal(gx2, gx)
    assert gx.sum() == pytest.approx(g.sum()) and np.count_nonzero(gx) == g.size


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("stride,dilation", [((1, 1), (1, 1)), ((2, 1), (1, 2)), ((2, 3), (2, 1))])
def test_col2im(k, dt, stride, dilation, monkeypatch):
    """The compiled col2im equals the kh*kw strided NumPy adds it replaces."""
    from ember.backend import im2col

    cols = RNG.standard_normal((3, 2, 3, 2, 4, 5)).astype(dt)
    padded = tuple((o - 1) * s + d * (kk - 1) + 2 for o, s, d, kk in
                   zip((4, 5), stride, dilation, (2, 3)))
    got = im2col.col2im(cols, padded, stride, dilation)
    monkeypatch.setattr(jit, "_kernels", False)
    want = im2col.col2im(cols, padded, stride, dilation)
    np.testing.assert_allclose(got, want, **_tol(dt))
    assert got.dtype == dt and got.shape == (3, 2) + padded


def test_kernels_for_float32_and_float64_numpy_arrays_only(k):
    f32, f64 = np.zeros(3, np.float32), np.zeros(3)
    assert jit.kernels_for(f32, f64) is k and jit.kernels_for() is k
    assert jit.kernels_for(f32, np.zeros(3, np.float16)) is None
    assert jit.kernels_for(np.zeros(3, np.int64)) is None
    class Sub(np.ndarray):
        pass

    assert jit.kernels_for(f32.view(Sub)) is None  # a subclass may carry other semantics


def test_float16_layers_keep_to_numpy(k, monkeypatch):
    """float16 LSTM, GRU, LayerNorm, BatchNorm, max pool, ReLU and SGD run the NumPy path with numba
    installed (the kernels are compiled for float32/float64): the same results as without it."""
    import ember

    def run():
        ember.manual_seed(0)
        layers = [ember.nn.LSTM(3, 4), ember.nn.GRU(3, 4), ember.nn.LayerNorm(4),
                  ember.nn.BatchNorm2d(3)]
        for m in layers:
            m.to(ember.float16)
        x = ember.randn(5, 2, 3).to(ember.float16).requires_grad_()
        img = ember.randn(2, 3, 4, 4).to(ember.float16).requires_grad_()
        h = layers[0](x)[0] + layers[1](x)[0]
        y = layers[2](h).sum() + ember.nn.functional.max_pool2d(layers[3](img).relu(), 2).sum()
        y.backward()
        opt = ember.optim.SGD([p for m in layers for p in m.parameters()], lr=0.1, momentum=0.9)
        opt.step()
        opt.step()
        return [x.grad.numpy(), img.grad.numpy()] + [
            p.detach().numpy() for m in layers for p in m.parameters()]

    with_kernels = run()
    monkeypatch.setattr(jit, "_kernels", False)
    for a, b in zip(with_kernels, run()):
        assert a.dtype == np.float16
        np.testing.assert_array_equal(a, b)


def test_ember_jit_setting(monkeypatch):
    monkeypatch.setattr(jit, "_kernels", None)
    monkeypatch.setenv("EMBER_JIT", "numpy")
    assert jit.kernels() is None
    monkeypatch.setattr(jit, "_kernels", None)
    monkeypatch.setenv("EMBER_JIT", "cython")
    with pytest.raises(ValueError, match="EMBER_JIT must be 'auto', 'numba' or 'numpy'"):
        jit.kernels()
    monkeypatch.setitem(sys.modules, "ember.backend._numba_kernels", None)  # as without numba
    monkeypatch.setenv("EMBER_JIT", "numba")
    with pytest.raises(ImportError, match=r'pip install "ember\[jit\]"'):
        jit.kernels()
    monkeypatch.setenv("EMBER_JIT", "auto")
    assert jit.kernels() is None


def test_numba_loads_with_the_first_recurrent_op_only():
    """``import ember`` does not import numba; an LSTM's forward on ember's own loop does,
    unless EMBER_JIT=numpy (on oneDNN's layer it needs no numba)."""
    code = ("import sys, ember\nprint('numba' in sys.modules, end=' ')\n"
            "ember.nn.LSTM(3, 4)(ember.randn(2, 1, 3))\nprint('numba' in sys.modules)")
    for setting, want in (("auto", "False True"), ("numpy", "False False")):
        assert python_output(code, EMBER_JIT=setting, EMBER_ONEDNN="0") == want
