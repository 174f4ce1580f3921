"""Thread-count control (ember.set_num_threads) and the busy-machine check."""

import time

import numpy as np
import pytest

import ember
from ember.backend import threads as bt
from ember.backend.blas import serial_blas
from ember.utils import threads


def test_set_get_num_threads_roundtrip():
    before = ember.get_num_threads()
    try:
        ember.set_num_threads(1)
        assert ember.get_num_threads() == 1
    finally:
        ember.set_num_threads(before)
    assert ember.get_num_threads() == before


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_rejects(bad):
    with pytest.raises(ValueError, match="positive integer"):
        ember.set_num_threads(bad)


def test_machine_busy_is_a_cached_bool():
    first = bt.machine_busy()
    assert isinstance(first, bool)
    assert bt.machine_busy() is first  # within the sampling window: the cached verdict
    bt._last[0] = time.monotonic() - 1.0
    assert isinstance(bt.machine_busy(), bool)


def test_set_dynamic_off_never_busy_on_multicore():
    was = threads.get_dynamic()
    try:
        threads.set_dynamic(False)
        assert threads.machine_busy() is (bt.cpu_count() < 2)
    finally:
        threads.set_dynamic(was)


def test_deterministic_algorithms_keep_the_thread_count_whatever_the_load(monkeypatch):
    """use_deterministic_algorithms(True): the busy check (which changes the thread count, so
    the rounding) stops looking at the machine; False gives it back. The flags and the error
    for a non-bool are PyTorch's."""
    import torch

    monkeypatch.setattr(bt, "_ncpu", 2)
    monkeypatch.setattr(bt, "_dynamic", True)
    monkeypatch.setattr(bt, "_watch", True)
    clock = iter(range(0, 10 ** 6, 100))  # other processes take 100 s of CPU every sample
    monkeypatch.setattr(bt, "_busy_seconds", lambda: next(clock))

    def busy():
        bt._last[0] = time.monotonic() - 1.0
        return bt.machine_busy()

    busy()
    assert busy() is True
    try:
        for lib in (ember, torch):
            assert lib.are_deterministic_algorithms_enabled() is False
            lib.use_deterministic_algorithms(True, warn_only=True)
            assert lib.are_deterministic_algorithms_enabled() is True
            assert lib.is_deterministic_algorithms_warn_only_enabled() is True
        assert busy() is False
    finally:
        for lib in (ember, torch):
            lib.use_deterministic_algorithms(False)
            assert lib.are_deterministic_algorithms_enabled() is False
    busy()
    assert busy() is True
    for lib in (ember, torch):
        with pytest.raises(TypeError, match="argument 'mode' .* must be bool, not int"):
            lib.use_deterministic_algorithms(1)


def test_serial_blas_restores_thread_count():
    before = threads.get_num_threads()
    a = np.ones((256, 256), np.float32)
    with serial_blas(1 << 20):
        np.matmul(a, a)
    assert threads.get_num_threads() == before


def test_linear_results_unchanged_across_thread_paths():
    ember.manual_seed(0)
    x = ember.randn(128, 784)
    m = ember.nn.Linear(784, 512)
    y1 = m(x)
    was = threads.get_dynamic()
    try:
        threads.set_dynamic(False)
        y2 = m(x)
    finally:
        threads.set_dynamic(was)
    np.testing.assert_allclose(y1.detach().numpy(), y2.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_numpy_blas_is_read_first_with_scipy_loaded_before():
    """SciPy bundles an OpenBLAS of its own; imported before ember's first thread-count read
    (as numba brings it), it was listed first and its count read as NumPy's. NumPy's own BLAS
    is read first, MKL (where loaded) last."""
    from tests.harness import python_output

    code = (
        "import os, numpy, scipy.linalg, ember\n"
        "from ember.backend import blas\n"
        "blas.start()\n"
        "from ember.utils import threads\n"
        "libs = threads.blas_controllers()\n"
        "print(len(libs) > 1, os.path.realpath(libs[0].filepath) =="
        " os.path.realpath(ember._blas_env.openblas_library(numpy)),"
        " [c.internal_api for c in libs][-1])")
    assert python_output(code) == "True True mkl"
