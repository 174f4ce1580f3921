"""Thread-count control: ``ember.set_num_threads`` / ``ember.get_num_threads`` over NumPy's BLAS.

NumPy's BLAS (OpenBLAS, MKL, BLIS...) keeps its own thread pool; the optional ``threadpoolctl``
package (extra ``fast``) resizes it at run time. Without threadpoolctl the count is remembered
and reported but the pool keeps the size it started with (set ``OMP_NUM_THREADS`` or
``OPENBLAS_NUM_THREADS`` before starting Python instead).

On top of the count, ember's ops run small products (``ember.backend.blas.serial_blas``) on one
thread, and every product on one thread while other processes keep the other cores busy
(``set_dynamic(False)`` turns that off; see ``ember.backend.threads``).

Example::

    import ember
    ember.set_num_threads(1)          # one BLAS thread everywhere
    ember.get_num_threads()           # -> 1
    ember.utils.threads.set_dynamic(False)   # always use every thread given
"""

from __future__ import annotations

import os

from ember.backend.threads import cpu_count, get_dynamic, machine_busy, set_dynamic

__all__ = ["get_num_threads", "set_num_threads", "set_dynamic", "get_dynamic", "machine_busy",
           "blas_controllers"]

_controllers = None
_requested = None


def blas_controllers():
    """threadpoolctl's controllers of the BLAS libraries loaded in this process ([] without it)."""
    global _controllers
    if _controllers is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _controllers = []
        else:
            _controllers = sorted((c for c in ThreadpoolController().lib_controllers
                                   if c.user_api == "blas"), key=_read_order)
    return _controllers


def _read_order(c):
    """Sort key of the BLAS controllers; the first one is what ``get_num_threads`` reads.
    NumPy's own BLAS first: SciPy's bundled OpenBLAS, in the process when SciPy came first (as
    numba brings it), was listed before it. MKL last: it reports the calling thread's own count,
    which ember sets per product (``ember.backend.mkl``) and which Intel OpenMP's per-thread
    setting for oneDNN's primitives changes too."""
    import numpy

    from ember import _blas_env

    own = _blas_env.openblas_library(numpy)
    return (c.internal_api == "mkl",
            own is None or os.path.realpath(c.filepath) != os.path.realpath(own))


def get_num_threads():
    """The number of threads NumPy's BLAS uses for large products (MKL read last: see
    ``blas_controllers``)."""
    libs = blas_controllers()
    if libs:
        return libs[0].get_num_threads()
    return _requested if _requested is not None else cpu_count()


def set_num_threads(n):
    """Use ``n`` BLAS threads (``n >= 1``) from now on."""
    global _requested
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads expects a positive integer, got {n!r}")
    _requested = n
    for c in blas_controllers():
        c.set_num_threads(n)
