"""ember.backend.parallel: slices cover the range exactly once, errors re-raise, no nesting
(the ``idle`` fixture, in conftest.py, makes it split)."""

import threading

import numpy as np
import pytest

from ember.backend import parallel, threads
from ember.backend.parallel import num_workers, parallel_for


@pytest.mark.parametrize("n,grain", [(2, 1), (7, 1), (1000, 1), (1000, 64), (130, 64)])
def test_slices_cover_range_once(idle, n, grain):
    seen = np.zeros(n, dtype=np.int64)
    names = set()

    def fn(lo, hi):
        assert lo % grain == 0 and lo < hi
        seen[lo:hi] += 1
        names.add(threading.current_thread().name)

    parallel_for(n, fn, grain=grain)
    np.testing.assert_array_equal(seen, 1)
    assert len(names) == 2  # the caller and one worker


def test_small_n_runs_in_caller(idle):
    calls = []
    parallel_for(10, lambda lo, hi: calls.append((lo, hi, threading.current_thread().name)),
                 min_n=11)
    assert calls == [(0, 10, threading.current_thread().name)]


def test_worker_exception_reraises_in_caller(idle):
    def fn(lo, hi):
        if lo > 0:
            raise ValueError(f"bad slice {lo}")

    with pytest.raises(ValueError, match="bad slice"):
        parallel_for(100, fn)
    parallel_for(100, lambda lo, hi: None)  # the worker survives


def test_no_nested_split(idle):
    inner = []

    def fn(lo, hi):
        inner.append(num_workers())

    parallel_for(100, fn)
    assert inner == [1, 1]
    assert num_workers() == 2


def test_busy_machine_runs_serially(idle, monkeypatch):
    monkeypatch.setattr(parallel, "machine_busy", lambda: True)
    names = set()
    parallel_for(1000, lambda lo, hi: names.add(threading.current_thread().name))
    assert names == {threading.current_thread().name}


def test_results_match_serial(idle):
    x = np.random.default_rng(0).standard_normal((300, 50)).astype(np.float32)
    y = np.empty_like(x)

    def fn(lo, hi):
        np.tanh(x[lo:hi], out=y[lo:hi])

    parallel_for(len(x), fn)
    np.testing.assert_array_equal(y, np.tanh(x))
    assert threads.cpu_count() >= 1
