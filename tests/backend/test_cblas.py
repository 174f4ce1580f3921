"""ember.backend.cblas and blas.matmul_add: ``out += a @ b`` (or ``out = a @ b``) in one BLAS call
on MKL or NumPy's own OpenBLAS, or through NumPy, for every operand layout and for ``out`` views."""

import numpy as np
import pytest

from ember.backend import blas, cblas
from tests.backend.test_mkl import _layouts, _ref
from tests.harness import numpy_ships_openblas


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("accumulate", [True, False])
def test_matmul_add_every_layout(each_gemm_add, dt, accumulate):
    rng = np.random.default_rng(1)
    tol = dict(rtol=1e-5, atol=1e-4) if dt == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for name, a, b in _layouts(dt):
        m, n = a.shape[0], b.shape[1]
        base = rng.standard_normal((m + 3, n + 5)).astype(dt)
        before = base.copy()
        out = base[1:m + 1, 2:n + 2]  # a view: row stride n + 5
        got = blas.matmul_add(a, b, out, accumulate=accumulate)
        assert got is out, name
        want = _ref(a, b) + (before[1:m + 1, 2:n + 2] if accumulate else 0)
        np.testing.assert_allclose(out, want, err_msg=name, **tol)
        rest = np.ones(base.shape, bool)
        rest[1:m + 1, 2:n + 2] = False
        np.testing.assert_array_equal(base[rest], before[rest], err_msg=name)  # nothing else


def test_matmul_add_sums_a_sequence_of_shifted_views(each_gemm_add):
    """The convolutions' use: kernel positions as shifted views of one padded row buffer."""
    rng = np.random.default_rng(2)
    xp = rng.standard_normal((16, 300)).astype(np.float32)
    ws = rng.standard_normal((5, 8, 16)).astype(np.float32)
    out = np.empty((8, 250), np.float32)
    for t, off in enumerate((0, 1, 2, 20, 40)):
        blas.matmul_add(ws[t], xp[:, off:off + 250], out, accumulate=t > 0)
    want = sum(_ref(ws[t], xp[:, o:o + 250]) for t, o in enumerate((0, 1, 2, 20, 40)))
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-4)


def test_other_dtypes_and_strided_results_go_through_numpy(monkeypatch):
    monkeypatch.setattr(cblas, "call", None)  # would raise if it were used
    monkeypatch.setattr(blas, "_mkl", False)
    a = np.ones((3, 4), np.float16)
    out = np.ones((3, 2), np.float16)
    blas.matmul_add(a, np.ones((4, 2), np.float16), out)
    np.testing.assert_array_equal(out, np.full((3, 2), 5, np.float16))
    out = np.zeros((3, 4), np.float32)[:, ::2]  # no unit inner stride
    blas.matmul_add(np.ones((3, 4), np.float32), np.ones((4, 2), np.float32), out)
    np.testing.assert_array_equal(out, np.full((3, 2), 4, np.float32))


def test_numpys_openblas_is_found_and_bound():
    """NumPy's wheels built with scipy-openblas64 ship it; its 64-bit cblas gemms are bound for
    both dtypes. Other builds (Accelerate on macOS) find nothing."""
    g = cblas.openblas()
    if not numpy_ships_openblas():
        assert g is None
        return
    assert g is not None and set(g) == {np.dtype(np.float32), np.dtype(np.float64)}
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    out = np.full((2, 2), 1.0)
    cblas.call(g[a.dtype], a, a.T, out, 1.0)
    np.testing.assert_array_equal(out, a @ a.T + 1)


def test_no_openblas_found(monkeypatch):
    monkeypatch.setattr(cblas, "_openblas", None)
    monkeypatch.setattr(cblas._blas_env, "openblas_library", lambda numpy: None)
    assert cblas.openblas() is None
    monkeypatch.setattr(cblas, "_openblas", None)
    monkeypatch.setattr(cblas._blas_env, "openblas_library",
                        lambda numpy: "/nonexistent/libopenblas.so")
    assert cblas.openblas() is None  # a library that does not load: NumPy's path, no error


def test_results_blas_cannot_take_go_through_numpy(each_gemm_add):
    """An ``out`` whose rows run backwards (BLAS rejects a negative leading dimension and writes
    nothing) and mismatched shapes (BLAS would write past ``out``) go through NumPy."""
    a = np.ones((3, 4), np.float32)
    b = np.ones((4, 2), np.float32)
    out = np.ones((3, 2), np.float32)[::-1]
    blas.matmul_add(a, b, out)
    np.testing.assert_array_equal(out, np.full((3, 2), 5, np.float32))
    with pytest.raises(ValueError):
        blas.matmul_add(a, np.ones((4, 3), np.float32), np.ones((3, 2), np.float32))
    with pytest.raises(ValueError):
        blas.matmul_add(a, np.ones((5, 2), np.float32), np.ones((3, 2), np.float32))
