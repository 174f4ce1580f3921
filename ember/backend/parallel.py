"""Split one whole-array kernel over the cores: ``parallel_for(n, fn)`` runs ``fn(lo, hi)`` on
disjoint slices ``[lo, hi)`` of ``range(n)``, one slice per thread, and returns when all are done.

NumPy releases the GIL inside ufunc loops, copies, reductions and BLAS calls, so Python threads
each running a NumPy kernel on their own slice of the arrays run truly in parallel. That is how
ember uses a second core for the memory-bound parts of a step (im2col copies, normalisation,
pooling, GELU, softmax) that OpenBLAS does not thread. PyTorch does the same with OpenMP.

The split happens only when it pays: ``n`` must reach ``min_n`` (callers pass the size below
which one thread is faster, measured on the 2-core reference machine), the thread count
(``ember.set_num_threads``, i.e. NumPy's BLAS threads) must be above one, the caller must not
already be a worker, the other cores must not be busy with other processes
(``ember.backend.threads.machine_busy``), and OpenBLAS's idle threads must go to sleep rather than
spin on the cores (``ember._blas_env``: ``import ember`` before NumPy, or set
``OPENBLAS_THREAD_TIMEOUT``). Inside the parallel region each slice runs its BLAS
products on one thread (the threads are the parallelism). Exceptions in any slice re-raise in
the caller.

Example::

    def relu_rows(lo, hi):
        np.maximum(x[lo:hi], 0, out=y[lo:hi])

    parallel_for(len(x), relu_rows, min_n=1 << 16)
"""

from __future__ import annotations

import math
import os
import queue
import threading

from ember import _blas_env
from ember.backend.threads import cpu_count, machine_busy
from ember.utils import threads as _ut  # read at call time: tests patch get_num_threads

__all__ = ["parallel_for", "num_workers"]

_MAX_THREADS = 8
_workers = []  # [(thread, task queue)]
class _Local(threading.local):
    inside = False  # whether this thread runs a part of a parallel_for split


_local = _Local()
_lock = threading.Lock()


def _after_fork():
    """Threads do not survive ``fork``: a forked child (a DataLoader worker, a multiprocessing
    pool) forgets the parent's workers and starts its own when it needs them; without this its
    first split waited forever for a thread that is not there."""
    global _lock
    _workers.clear()
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_after_fork)


def _worker(tasks):
    _local.inside = True
    while True:
        fn, lo, hi, done = tasks.get()
        try:
            fn(lo, hi)
            done.put(None)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            done.put(e)


def _ensure_workers(k):
    with _lock:
        while len(_workers) < k:
            tasks = queue.SimpleQueue()
            t = threading.Thread(target=_worker, args=(tasks,), name=f"ember-worker-{len(_workers)}",
                                 daemon=True)
            t.start()
            _workers.append((t, tasks))


def num_workers():
    """Threads a ``parallel_for`` may use now (1 means it runs in the caller only)."""
    if _local.inside:
        return 1
    k = min(_ut.get_num_threads(), cpu_count(), _MAX_THREADS)
    # A spinning OpenBLAS thread would take the second core from the split (see ember._blas_env)
    if k > 1 and (not _blas_env.BLAS_SLEEPS or machine_busy()):
        return 1
    return k


def parallel_for(n, fn, min_n=1, grain=1):
    """Run ``fn(lo, hi)`` over ``range(n)`` split into one slice per available thread.

    ``min_n``: below this ``n`` everything runs in the caller as ``fn(0, n)``.
    ``grain``: slice boundaries are multiples of it (e.g. a cache block of rows).
    """
    k = num_workers() if n >= min_n and n >= 2 * grain else 1
    if k == 1:
        fn(0, n)
        return
    k = min(k, n // grain)
    bounds = [(n * i // k) // grain * grain for i in range(k)] + [n]
    _ensure_workers(k - 1)
    done = queue.SimpleQueue()
    for i in range(1, k):
        _workers[i - 1][1].put((fn, bounds[i], bounds[i + 1], done))
    from ember.backend.blas import serial_blas

    err = None
    _local.inside = True
    try:
        with serial_blas(math.inf, serial_macs=math.inf):  # one BLAS thread per slice
            try:
                fn(bounds[0], bounds[1])
            except BaseException as e:  # noqa: BLE001 - re-raised once the others finished
                err = e
            for _ in range(k - 1):
                e = done.get()
                if err is None and e is not None:
                    err = e
    finally:
        _local.inside = False
    if err is not None:
        raise err
