import os
import sys

# Tests import the in-tree package and the harness next to them.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import ember  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    ember.manual_seed(0)
    np.random.seed(0)
    yield


@pytest.fixture
def idle(monkeypatch):
    """Pretend the machine is idle with two threads, so ``parallel_for`` splits its work and
    large products get both threads."""
    from ember.backend import blas, parallel
    import ember.utils.threads as ut

    monkeypatch.setattr(parallel, "machine_busy", lambda: False)
    monkeypatch.setattr(blas, "machine_busy", lambda: False)
    monkeypatch.setattr(parallel._blas_env, "BLAS_SLEEPS", True)
    monkeypatch.setattr(parallel, "cpu_count", lambda: 2)
    monkeypatch.setattr(ut, "get_num_threads", lambda: 2)


@pytest.fixture
def numpy_blas(monkeypatch):
    """Every product on NumPy's BLAS and nothing on MKL (the core install), even where MKL is
    installed."""
    from ember.backend import blas, mkl

    monkeypatch.setattr(blas, "_mkl", False)
    monkeypatch.setattr(mkl, "load", lambda: False)


@pytest.fixture
def mkl_blas(monkeypatch):
    """Every float product of two matrices on MKL, however small."""
    from ember.backend import blas, mkl

    assert mkl.load(), 'the test extra installs Intel MKL: pip install ".[test]"'
    monkeypatch.setattr(blas, "_mkl", True)
    monkeypatch.setattr(mkl, "MIN_MACS", 1)


@pytest.fixture(params=["numpy", "mkl"])
def each_blas(request):
    """Run a test once on NumPy's BLAS and once with every product on MKL."""
    request.getfixturevalue(request.param + "_blas")
    return request.param


@pytest.fixture(params=["mkl", "openblas", "numpy"])
def each_gemm_add(request, monkeypatch):
    """Run a test with ``blas.matmul_add`` accumulating on MKL, on NumPy's own OpenBLAS (through
    ctypes), and through NumPy (a temporary and an add: a NumPy without a findable OpenBLAS)."""
    from ember.backend import blas, cblas

    if request.param == "mkl":
        request.getfixturevalue("mkl_blas")
    else:
        monkeypatch.setattr(blas, "_mkl", False)
        if request.param == "openblas":
            from tests.harness import numpy_ships_openblas

            if not numpy_ships_openblas():
                pytest.skip("this NumPy was not built with scipy-openblas (e.g. Accelerate)")
            assert cblas.openblas() is not None, "NumPy's wheel ships OpenBLAS: none found"
        else:
            monkeypatch.setattr(cblas, "_openblas", False)
    return request.param


@pytest.fixture
def without_onednn(monkeypatch):
    """Convolutions and LSTM layers on ember's own paths (im2col, shifted products, its time
    loop), even where oneDNN is installed."""
    from ember.backend import onednn

    monkeypatch.setattr(onednn, "_lib", False)


@pytest.fixture
def with_onednn():
    """float32 convolutions and LSTM layers on oneDNN (``ember.backend.onednn``), which the test
    extra installs on x86-64 Linux."""
    import platform
    import sys

    from ember.backend import onednn

    if not (sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")):
        pytest.skip("oneDNN's wheel (onednn-cpu-gomp) exists for x86-64 Linux only")
    assert onednn.load(), 'the test extra installs oneDNN: pip install ".[test]"'


@pytest.fixture(params=["without", "with"])
def each_onednn(request):
    """Run a test once on ember's own convolutions and LSTM and once on oneDNN's."""
    request.getfixturevalue(request.param + "_onednn")
    return request.param


@pytest.fixture
def numpy_kernels(monkeypatch):
    """The recurrent layers' gate arithmetic in NumPy calls (the core install)."""
    from ember.backend import jit

    monkeypatch.setattr(jit, "_kernels", False)


@pytest.fixture
def numba_kernels(monkeypatch):
    """The recurrent layers' gate arithmetic in the numba kernels of ``ember.backend.jit``."""
    from ember.backend import jit

    monkeypatch.setattr(jit, "_kernels", None)
    monkeypatch.delenv("EMBER_JIT", raising=False)
    assert jit.kernels() is not None, 'the test extra installs numba: pip install ".[test]"'


@pytest.fixture(params=["numpy", "numba"])
def each_kernels(request):
    """Run a test once with NumPy's gate arithmetic and once with the numba kernels."""
    request.getfixturevalue(request.param + "_kernels")
    return request.param
