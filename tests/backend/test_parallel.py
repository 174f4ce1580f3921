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


def test_no_split_while_blas_threads_may_spin(idle, monkeypatch):
    monkeypatch.setattr(parallel._blas_env, "BLAS_SLEEPS", False)
    assert num_workers() == 1


@pytest.mark.parametrize("code,env,want", [
    ("import ember", None, "True 16"),                      # ember first: ember sets it
    ("import numpy, ember", None, "True 16"),                # NumPy first: OpenBLAS restarted
    ("import numpy, ember", "30", "False 30"),               # NumPy first, the user's long spin
    ("import ember", "4", "True 4"),                         # the user's setting wins
    ("import ember", "30", "False 30"),                      # a long spin: no split
])
def test_openblas_thread_timeout_is_set_before_numpy(code, env, want):
    import os
    import subprocess
    import sys

    e = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if env is not None:
        e["OPENBLAS_THREAD_TIMEOUT"] = env
    out = subprocess.run(
        [sys.executable, "-c", code + "; import os; print(ember._blas_env.BLAS_SLEEPS, "
         "os.environ.get('OPENBLAS_THREAD_TIMEOUT'))"],
        env=e, capture_output=True, text=True, check=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert out.stdout.split("\n")[-2] == want


def test_numpy_first_openblas_restarts_its_threads_with_the_short_spin():
    """NumPy imported before ember: its OpenBLAS started its threads with the long spin (~0.1 s
    after each threaded product). ``import ember`` has it read the setting again and stop them;
    the next threaded product starts them anew, and after it they sleep: the process takes
    little CPU time in the 0.1 s after a product (~0.1 s with the long spin, which the user's
    own setting keeps, threads untouched, as another running thread does)."""
    import os
    import sys

    from tests.harness import numpy_ships_openblas, python_output

    linux = sys.platform.startswith("linux")
    code = (f"import os, time, numpy as np\nlinux = {linux}\n"
            "def tasks(): return len(os.listdir('/proc/self/task')) if linux else 0\n"
            "a = np.ones((512, 512), np.float32)\n"
            "a @ a\n"
            "n0 = tasks()\n"
            "import ember\n"
            "n1 = tasks()\n"
            "a @ a\n"
            "c = time.process_time(); time.sleep(0.1); spin = time.process_time() - c\n"
            "print(ember._blas_env.BLAS_SLEEPS, n0, n1, tasks(), spin)")
    sleeps, n0, n1, n2, spin = python_output(code).split()
    assert sleeps == "True"
    if numpy_ships_openblas() and os.cpu_count() >= 2 and linux:
        assert int(n1) < int(n0) == int(n2)  # the worker threads stopped, then started again
        assert float(spin) < 0.03
    sleeps, n0, n1, n2, _ = python_output(code, OPENBLAS_THREAD_TIMEOUT="28").split()
    assert (sleeps, n1) == ("False", n0)
    # another thread may have a product queued on OpenBLAS's threads: they are left alone
    other = ("import threading; done = threading.Event()\n"
             "threading.Thread(target=done.wait).start()\n")
    sleeps, n0, n1, n2, _ = python_output(other + code + "\ndone.set()").split()
    assert (sleeps, n1) == ("False", n0)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="no fork on this platform")
def test_forked_child_starts_its_own_workers(idle):
    """After the parent split work over its worker thread, a forked child (a DataLoader
    worker) splits too instead of waiting for a thread fork did not copy."""
    from tests.harness import in_forked_child

    parallel.parallel_for(4, lambda lo, hi: None, min_n=1)
    assert parallel._workers

    def child():
        seen = []
        parallel.parallel_for(4, lambda lo, hi: seen.append((lo, hi)), min_n=1)
        return sorted(seen)

    assert in_forked_child(child) == [(0, 2), (2, 4)]
