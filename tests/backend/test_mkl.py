"""ember.backend.mkl and blas.matmul: MKL's products (the [mkl] extra, installed by the test extra)
equal NumPy's for every operand layout; small, stacked or non-float products stay with NumPy;
EMBER_BLAS chooses; the thread policy. The layers' own tests run on both BLAS (``each_blas``)."""

import sys

import numpy as np
import pytest

from ember.backend import blas, mkl, parallel
from tests.harness import python_output

RNG = np.random.default_rng(0)


def _ref(a, b):
    return np.matmul(a.astype(np.float64), b.astype(np.float64))


def _layouts(dt):
    """(name, a, b) pairs of 2-D operands in every layout gemm takes or copies."""
    a = RNG.standard_normal((37, 53)).astype(dt)
    b = RNG.standard_normal((53, 29)).astype(dt)
    wide = RNG.standard_normal((60, 120)).astype(dt)
    return [
        ("C order", a, b),
        ("Fortran order", np.asfortranarray(a), np.asfortranarray(b)),
        ("transposed views", np.ascontiguousarray(a.T).T, np.ascontiguousarray(b.T).T),
        ("row slices (lda > k)", wide[:37, 7:60], wide[:53, 90:119]),
        ("column slices of a transpose", wide.T[5:42, :53], wide.T[60:113, 3:32]),
        ("negative strides (copied)", a[::-1, ::-1], b[::-1]),
        ("every other row (copied)", wide[::2, :53][:37], b),
        ("one row", a[:1], b),
        ("one column", a, b[:, :1]),
    ]


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_gemm_every_layout(mkl_blas, dt):
    for name, a, b in _layouts(dt):
        got = blas.matmul(a, b)
        assert got.dtype == dt and got.shape == (a.shape[0], b.shape[1]), name
        np.testing.assert_allclose(got, _ref(a, b), rtol=1e-5 if dt == np.float32 else 1e-12,
                                   atol=1e-4 if dt == np.float32 else 1e-12, err_msg=name)


def test_gemm_out_arguments(mkl_blas):
    a = RNG.standard_normal((40, 30)).astype(np.float32)
    b = RNG.standard_normal((30, 20)).astype(np.float32)
    for out in (np.empty((40, 20), np.float32), np.empty((20, 40), np.float32).T,
                np.empty((40, 50), np.float32)[:, 5:25]):
        assert blas.matmul(a, b, out=out) is out
        np.testing.assert_allclose(out, _ref(a, b), rtol=1e-5, atol=1e-4)
    s = RNG.standard_normal((30, 30)).astype(np.float32)
    want = _ref(s, s)
    blas.matmul(s, s, out=s)  # the result overwrites an operand: computed aside first
    np.testing.assert_allclose(s, want, rtol=1e-5, atol=1e-4)


def test_what_stays_with_numpy(monkeypatch):
    """Below MIN_MACS, stacks of matrices, integers, half floats and mixed dtypes never reach
    MKL, and give exactly NumPy's result."""
    assert mkl.load()

    def refuse(*a, **k):
        raise AssertionError("MKL was called")

    monkeypatch.setattr(mkl, "gemm", refuse)
    small = RNG.standard_normal((16, 16)).astype(np.float32)
    assert 16 ** 3 < mkl.MIN_MACS
    big = RNG.standard_normal((64, 64)).astype(np.float32)
    for a, b in [(small, small), (big[None].repeat(3, 0), big[None].repeat(3, 0)),
                 (np.ones((64, 64), np.int64), np.ones((64, 64), np.int64)),
                 (big.astype(np.float16), big.astype(np.float16)), (big, big.astype(np.float64))]:
        np.testing.assert_array_equal(blas.matmul(a, b), np.matmul(a, b))


@pytest.mark.parametrize("tuned, setting, want", [(True, "auto", 1), (False, "auto", 0),
                                                   (False, "mkl", 1)])
def test_large_products_go_to_mkl_where_it_is_tuned(monkeypatch, tuned, setting, want):
    """Large products go to MKL where it runs code for this CPU (``mkl.tuned``), or where
    EMBER_BLAS=mkl asks for it; elsewhere (MKL's generic code) to NumPy."""
    assert mkl.load()
    monkeypatch.setattr(mkl, "tuned", lambda: tuned)
    monkeypatch.setenv("EMBER_BLAS", setting)
    monkeypatch.setattr(blas, "_mkl", None)  # decided again on the next product
    calls = []
    gemm = mkl.gemm
    monkeypatch.setattr(mkl, "gemm", lambda *a: calls.append(a[3]) or gemm(*a))
    a = RNG.standard_normal((256, 256)).astype(np.float32)
    assert 256 ** 3 >= mkl.MIN_MACS
    np.testing.assert_allclose(blas.matmul(a, a), _ref(a, a), rtol=1e-5, atol=1e-4)
    assert len(calls) == want
    assert blas.mkl_active() is bool(want)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_tuned_is_the_code_mkl_loaded():
    """``mkl.tuned()`` reads MKL's own name for its code path; the kernel library MKL loaded
    for a product says the same: libmkl_def (generic) or one for AVX2/AVX-512."""
    code = ("from ember.backend import mkl\nimport numpy as np\nmkl.load()\n"
            "a = np.ones((256, 256), np.float32)\nmkl.gemm(a, a, None, 1)\n"
            "maps = open('/proc/self/maps').read()\n"
            "print(mkl.tuned(), 'libmkl_def.' in maps, 'libmkl_avx' in maps,"
            " bool(mkl.processor()))")
    tuned, generic, vectorized, named = python_output(code).split()
    assert named == "True"
    assert (tuned, generic, vectorized) in (("True", "False", "True"), ("False", "True", "False"))


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_matmul_bias_in_one_call(each_blas, dt, monkeypatch):
    """``matmul_bias(a, b, bias)`` is ``a @ b + bias``; on MKL one call, into the bias copied
    to every row (``beta = 1``)."""
    calls = []
    gemm_add = mkl.gemm_add
    monkeypatch.setattr(mkl, "gemm_add", lambda *a, **k: calls.append(1) or gemm_add(*a, **k))
    for name, a, b in _layouts(dt):
        bias = RNG.standard_normal(b.shape[1]).astype(dt)
        np.testing.assert_allclose(blas.matmul_bias(a, b, bias), _ref(a, b) + bias,
                                   rtol=1e-5, atol=1e-4, err_msg=name)
    assert len(calls) == (len(_layouts(dt)) if each_blas == "mkl" else 0)


def test_threads_follow_the_policy(idle):
    big = mkl.MIN_MACS
    assert blas.threads_for(big) == 2
    assert blas.threads_for(blas.SERIAL_MACS) == 1  # tests' mkl_blas sends small ones too
    with blas.serial_blas(1 << 20, serial_macs=1 << 21):  # a block that asked for one thread
        assert blas.threads_for(big) == 1
    seen = []
    parallel.parallel_for(4, lambda lo, hi: seen.append(blas.threads_for(big)), min_n=2)
    assert seen == [1, 1]  # each slice of a split is one thread already


def test_spinning_openblas_keeps_embers_products_off_its_threads(idle, monkeypatch):
    """OpenBLAS's threads spin ~0.1 s after each threaded product (a long spin ember could not
    shorten: ``ember._blas_env``), taking the core from MKL's and oneDNN's threads. With either
    loaded, ember's products inside ``serial_blas`` run OpenBLAS on one thread (restored after),
    MKL's inside keep ember's threads, and two-matrix products from SERIAL_MACS go to MKL."""
    from ember.backend import onednn

    import ember.utils.threads as ut

    assert mkl.load(), 'the test extra installs Intel MKL: pip install ".[test]"'
    openblas = ut.blas_controllers()[0]  # NumPy's own (SciPy's may be loaded too)
    assert openblas.internal_api == "openblas"
    before = openblas.get_num_threads()
    openblas.set_num_threads(2)
    # ember's thread count as read from OpenBLAS (the first BLAS threadpoolctl may list)
    monkeypatch.setattr(ut, "get_num_threads", openblas.get_num_threads)
    try:
        _spinning_openblas_checks(openblas, monkeypatch, onednn)
    finally:
        openblas.set_num_threads(before)


def _spinning_openblas_checks(openblas, monkeypatch, onednn):
    calls = []
    gemm = mkl.gemm
    monkeypatch.setattr(mkl, "gemm", lambda *a: calls.append(a[3]) or gemm(*a))
    a, b = RNG.standard_normal((128, 64)).astype(np.float32), RNG.standard_normal(
        (64, 64)).astype(np.float32)
    assert blas.SERIAL_MACS < 128 * 64 * 64 < mkl.MIN_MACS
    blas.matmul(a, b)
    assert calls == []  # OpenBLAS's threads sleep soon: NumPy keeps this product

    monkeypatch.setattr(blas._blas_env, "BLAS_SLEEPS", False)
    monkeypatch.setattr(blas, "_mkl", True)
    seen = []
    with blas.serial_blas(mkl.MIN_MACS):
        with blas.serial_blas(mkl.MIN_MACS):
            seen.append((openblas.get_num_threads(), blas.threads_for(mkl.MIN_MACS)))
        seen.append((openblas.get_num_threads(), blas.threads_for(mkl.MIN_MACS)))
    assert seen == [(1, 2), (1, 2)]
    assert openblas.get_num_threads() == 2
    np.testing.assert_allclose(blas.matmul(a, b), _ref(a, b), rtol=1e-5, atol=1e-4)
    assert calls == [2]  # to MKL, on both threads

    monkeypatch.setattr(blas, "_mkl", False)  # neither MKL nor oneDNN: the spin costs nothing
    monkeypatch.setattr(onednn, "loaded", lambda: False)
    with blas.serial_blas(mkl.MIN_MACS):
        assert openblas.get_num_threads() == 2


def test_calls_leave_mkls_thread_count_as_it_was():
    """Each MKL call sets its own thread count on the calling thread and puts the previous one
    back: MKL reports that local count as its own, and where threadpoolctl lists MKL first it
    is ember's thread count. A one-thread call left there had made every later product (and
    oneDNN primitive) run on one thread."""
    from threadpoolctl import ThreadpoolController

    assert mkl.load(), 'the test extra installs Intel MKL: pip install ".[test]"'
    (c,) = [c for c in ThreadpoolController().lib_controllers if c.internal_api == "mkl"]
    before = c.get_num_threads()
    c.set_num_threads(2)
    try:
        a = RNG.standard_normal((64, 64)).astype(np.float32)
        x = np.ones(1000, np.float32)
        mkl.gemm(a, a, None, 1)
        mkl.gemm_add(a, a, np.zeros((64, 64), np.float32), 1)
        mkl.Packed(a, 64).matmul(a, np.empty((64, 64), np.float32), 1)
        mkl.axpby(1.0, x, 1.0, x.copy(), 1)
        mkl.cdf_norm(x, x.copy())
        assert c.get_num_threads() == 2
    finally:
        c.set_num_threads(before)


def test_ember_blas_setting(monkeypatch):
    monkeypatch.setattr(mkl, "_lib", None)
    monkeypatch.setenv("EMBER_BLAS", "numpy")
    assert mkl.load() is False
    monkeypatch.setattr(mkl, "_lib", None)
    monkeypatch.setenv("EMBER_BLAS", "openblas")
    with pytest.raises(ValueError, match="EMBER_BLAS must be 'auto', 'mkl' or 'numpy'"):
        mkl.load()
    monkeypatch.setattr(mkl, "_library_path", lambda: None)  # as without the mkl package
    monkeypatch.setenv("EMBER_BLAS", "mkl")
    with pytest.raises(ImportError, match=r'pip install "ember\[mkl\]"'):
        mkl.load()
    monkeypatch.setenv("EMBER_BLAS", "auto")
    assert mkl.load() is False


def test_loaded_on_the_first_large_product_only():
    """``import ember`` does not load MKL; the first large product does, unless EMBER_BLAS=numpy."""
    code = ("import ember, numpy as np\nfrom ember.backend import mkl\n"
            "a = ember.randn(256, 256, requires_grad=True)\nprint(mkl.loaded(), end=' ')\n"
            "(a @ a).sum().backward()\nprint(mkl.loaded())")
    for setting, want in (("auto", "False True"), ("numpy", "False False")):
        assert python_output(code, EMBER_BLAS=setting) == want


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_start_loads_mkl_on_intel_openmp_before_torch():
    """``blas.start()`` starts MKL's threads on Intel's OpenMP, which then stays MKL's runtime
    when torch (GNU OpenMP) is imported after it; with EMBER_BLAS=numpy it does nothing."""
    code = ("import ember\nfrom ember.backend import blas, mkl\nblas.start()\nimport torch\n"
            "maps = open('/proc/self/maps').read()\n"
            "print(mkl.loaded(), 'libmkl_intel_thread' in maps, 'libmkl_gnu_thread' in maps)")
    for setting, want in (("auto", "True True False"), ("numpy", "False False False")):
        assert python_output(code, EMBER_BLAS=setting) == want


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_packed_weight_products(mkl_blas, dt):
    """A weight packed once (MKL's packed gemm) multiplies every operand layout like gemm."""
    w = RNG.standard_normal((53, 29)).astype(dt)
    p = blas.packed(w, 37)
    assert p is not None and p.shape == (37, 53, 29)
    for name, a, _ in _layouts(dt):
        if a.shape != (37, 53):
            continue
        out = np.empty((37, 29), dt)
        assert blas.matmul_packed(a, p, out) is out
        np.testing.assert_allclose(out, _ref(a, w), rtol=1e-5 if dt == np.float32 else 1e-12,
                                   atol=1e-4 if dt == np.float32 else 1e-12, err_msg=name)


def test_no_packed_weights_without_mkl(numpy_blas):
    assert blas.packed(np.ones((4, 4), np.float32), 2) is None


def test_recurrent_loops_multiply_by_packed_weights(mkl_blas, without_onednn, monkeypatch):
    """With MKL the LSTM's time loop multiplies by its packed recurrent weight, forward and
    backward, and the gradients are the ones of the unpacked products."""
    import ember

    calls = []
    matmul = mkl.Packed.matmul
    monkeypatch.setattr(mkl.Packed, "matmul", lambda self, *a: calls.append(1) or matmul(self, *a))

    def run():
        ember.manual_seed(0)
        lstm = ember.nn.LSTM(6, 8)
        x = ember.randn(5, 3, 6, requires_grad=True)
        lstm(x)[0].sum().backward()
        return [x.grad.numpy()] + [p.grad.numpy() for p in lstm.parameters()]

    packed = run()
    assert len(calls) >= 8  # 4 steps after the first forward, 4 backward
    from ember.ops import recurrent

    monkeypatch.setattr(recurrent, "packed", lambda w, m: None)
    calls.clear()
    unpacked = run()
    assert not calls
    for a, b in zip(packed, unpacked):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
