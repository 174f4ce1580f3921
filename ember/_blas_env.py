"""Let NumPy's OpenBLAS threads go to sleep soon after each product: set before NumPy loads it.

OpenBLAS's worker threads spin for 2^28 cycles (~0.1 s) after every multi-threaded product, waiting
for the next. ember also runs its own kernels on two Python threads (``ember.backend.parallel``),
and a spinning BLAS thread takes the second core from them: on the 2-core reference machine,
with the default spin, splitting made LeNet at batch 64 slower (15.3 -> 16.7 ms a step) and
ResNet-20 (525 -> 576 ms); with ``OPENBLAS_THREAD_TIMEOUT=16`` (2^16 cycles, ~25 us) the split
gives 14.1 -> 9.0-10.5 ms and 551 -> 356-387 ms, and BERT-MiniLM encodes in 635 instead of 775 ms.
The price: back-to-back two-thread products wake the sleeping threads (LSTM 128->256 over 32
steps, 23.7 -> 27.4 ms; the char-LSTM 51 -> 55 ms).

OpenBLAS reads the variable when NumPy loads it and when it starts its threads. ember sets it
only if the user has not. Where NumPy came first (as in most scripts), OpenBLAS has already
started its threads with the long spin: ember has the OpenBLAS of NumPy's wheel read the variable
again and stop its threads (``_restart_openblas``); the next threaded product starts them anew,
with the short spin (once, ~4 ms). On the 2-core AMD machine, NumPy first: a threaded product's
spinning thread took 52 ms of CPU in the next 50 ms, 1 ms after the restart; BERT-MiniLM
(``bench/bert.py``'s encoder) took 393-396 ms a batch without the restart and 327-334 with it
(ember first: 323-344), or 427-498 against 342-411 in alternating runs later.

``BLAS_SLEEPS`` says whether OpenBLAS's threads are known to go to sleep quickly. Where they
are not (the user's long spin, or a NumPy with another OpenBLAS), ember does not split its own
kernels over threads, and where MKL or oneDNN is loaded it keeps its own products off OpenBLAS's
threads (``ember.backend.blas._openblas_spins``): a spinning thread had made mlp128's step 1.7x
slower.
"""

import os
import sys

TIMEOUT = 16  # log2 of the spin, in cycles (OpenBLAS clamps to 4..30)


def _apply():
    value = os.environ.get("OPENBLAS_THREAD_TIMEOUT")
    if value is None:
        os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(TIMEOUT)
        numpy = sys.modules.get("numpy")
        # NumPy first: its OpenBLAS already read its settings
        return numpy is None or _restart_openblas(numpy)
    try:
        return int(value) <= 20
    except ValueError:
        return False


def openblas_library(numpy):
    """Path of the OpenBLAS that the wheel of the imported ``numpy`` ships, or None."""
    import glob

    root = os.path.dirname(numpy.__file__)
    for pattern in (root + ".libs/*openblas*", os.path.join(root, ".dylibs", "*openblas*")):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def _restart_openblas(numpy):
    """Have NumPy's OpenBLAS read ``OPENBLAS_THREAD_TIMEOUT`` again (``openblas_read_env``) and
    stop its threads (``blas_thread_shutdown_``, what OpenBLAS itself runs in a forked child):
    its next threaded product starts them with the new spin. True when that was done; False
    where NumPy's BLAS is not a wheel's OpenBLAS with those functions, or where another Python
    thread runs: a product it had queued on OpenBLAS's threads would be dropped and wait on them
    for ever."""
    import threading

    path = openblas_library(numpy)
    if path is None or threading.active_count() > 1:
        return False
    import ctypes

    try:
        lib = ctypes.CDLL(path)
        read_env, shutdown = lib.openblas_read_env, lib.blas_thread_shutdown_
    except (OSError, AttributeError):
        return False
    read_env.restype = None
    read_env()
    shutdown()
    return True


BLAS_SLEEPS = _apply()
