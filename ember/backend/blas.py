"""Matrix products and their BLAS threads: ``matmul`` (on Intel MKL when installed) and
``serial_blas`` (thread control for small products, through the optional threadpoolctl).

``matmul(a, b, out=None)`` is ``np.matmul`` for every input; large float32/float64 products of
two matrices go to MKL's gemm when the ``mkl`` package is installed (``ember.backend.mkl``), on
the threads that the policy below gives a product that size.

Measured on the 2-core reference machine: a small matmul on two OpenBLAS threads becomes 10-200x
slower whenever the other core is busy, while one thread runs it at full speed. Ops wrap their
small products in ``serial_blas(macs)``; large ones keep every thread. Without threadpoolctl
this does nothing.

Example::

    with serial_blas(o * k * n):        # multiply-adds of the product(s) inside
        y = w @ cols
"""

from __future__ import annotations

import threading

import numpy as np

from ember import _blas_env
from ember.backend import cblas, mkl, onednn, parallel
from ember.backend.threads import machine_busy
from ember.utils import threads as _ut  # read at call time: tests patch get_num_threads

__all__ = ["blas_accumulates", "matmul", "matmul_add", "matmul_bias", "matmul_packed",
           "mkl_active", "packed", "serial_blas", "start", "threads_for", "SERIAL_MACS"]

# Products up to this many multiply-adds run on one thread. On the idle 2-core reference machine
# two OpenBLAS threads beat one from 2^20 multiply-adds up (1.2x at 64x400x120, 1.6x at
# 128x512x512, 1.9x at 128x784x512), so only OpenBLAS's own serial range stays serial; a busy
# machine is handled by machine_busy(). (2^25 before: mlp128 torch/ember 0.65 -> 0.78.)
SERIAL_MACS = 1 << 18
_BLAS_SERIAL_MACS = 1 << 18  # OpenBLAS runs products this small on one thread by itself

class _Serial(threading.local):
    """Per thread: ``depth``, how many serial_blas blocks it is inside; ``threads``, the count
    an OpenBLAS-only block keeps for MKL's products inside it. Class-level defaults, so that
    reading them costs no failed lookup (``getattr`` with a default raises and catches inside:
    ~0.3 us a read, on every product's thread count)."""

    depth = 0
    threads = None


_serial = _Serial()


class serial_blas:
    """Context manager: one BLAS thread inside when ``macs <= serial_macs``.

    Larger products (``macs=math.inf`` for "whatever is inside") keep every thread unless other
    processes keep the other cores busy, or NumPy's OpenBLAS would keep a thread spinning after
    them (``_openblas_spins``): then OpenBLAS alone runs them on one thread.
    """

    __slots__ = ("saved", "openblas_only", "threads")

    def __init__(self, macs, serial_macs=SERIAL_MACS):
        self.openblas_only = False
        if _BLAS_SERIAL_MACS < macs <= serial_macs or (macs > serial_macs and machine_busy()):
            self.saved = ()
        elif macs > _BLAS_SERIAL_MACS and _openblas_spins():
            self.saved, self.openblas_only = (), True
        else:
            self.saved = None

    def __enter__(self):
        if self.saved is not None:
            if self.openblas_only:  # MKL's products inside keep the threads ember was given
                self.threads = _serial.threads
                _serial.threads = self.threads or _ut.get_num_threads()
            else:
                _serial.depth += 1
            self.saved = [(c, n) for c in _ut.blas_controllers() for n in (c.get_num_threads(),)
                          if n != 1 and (not self.openblas_only or c.internal_api == "openblas")]
            for c, _ in self.saved:
                c.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            if self.openblas_only:
                _serial.threads = self.threads
            else:
                _serial.depth -= 1
        for c, n in self.saved or ():
            c.set_num_threads(n)


def _openblas_spins():
    """True when NumPy's OpenBLAS keeps a thread spinning for ~0.1 s after each threaded product
    (the user's long ``OPENBLAS_THREAD_TIMEOUT``, or NumPy imported before ember with an
    OpenBLAS that ember cannot restart: ``ember._blas_env``) while
    MKL's or oneDNN's threads want the cores. The spinning thread took the second core from
    them, and training steps ran 1.7-3x slower on the reference machine (mlp128 5.2 against 3.1
    ms, LeNet at batch 64 11.7 against 4.5; 16.2 against 5.4 without MKL). ember then keeps its
    OpenBLAS products on one thread (``serial_blas``), which leaves OpenBLAS's other threads
    asleep, and sends its two-matrix products from ``SERIAL_MACS`` to MKL, where installed
    (``matmul``). Without either library the spin costs nothing: mlp128 on OpenBLAS alone ran
    3.4 ms a step spinning, 4.8 on one thread."""
    return not _blas_env.BLAS_SLEEPS and (_mkl is True or onednn.loaded())


_mkl = None  # whether MKL takes the large products (decided on the first one)


def mkl_active():
    """True when large products go to MKL: installed, and running code for this CPU
    (``mkl.tuned``; ``EMBER_BLAS=mkl`` takes it either way). Elsewhere they take the paths of
    an install without MKL, which loads MKL all the same for its normal CDF and so that its
    OpenMP runtime is oneDNN's too (``start``)."""
    global _mkl
    if _mkl is None:
        _mkl = mkl.load() and (mkl.tuned() or mkl.choice() == "mkl")
    return _mkl


def start():
    """Load MKL (when installed) and start its threads now, with one product on every thread.

    MKL picks its OpenMP runtime on its first threaded product: Intel's, unless GNU OpenMP is
    already in the process (``import torch`` loads it), whose idle threads then spin where
    ember's own split kernels (``ember.backend.parallel``) want the cores. A process that also
    imports torch, like ``bench/``, calls this first. Measured on the 2-core reference machine,
    BERT-MiniLM encoding a batch (32 x 128): 496-528 ms without torch in the process, 572-590
    with torch imported first, 582-613 with ``start()`` before ``import torch``."""
    if mkl.load():
        a = np.ones((256, 256), np.float32)
        mkl.gemm(a, a, None, threads_for(a.size * 256))


def matmul(a, b, out=None):
    """``np.matmul(a, b, out=out)``; large float products of two matrices on MKL when it is
    installed. Stacks of matrices stay with NumPy: measured in place on the reference machine,
    MKL's batched products ran attention's (12, 128, 32) @ (12, 32, 128) and the convolutions'
    per-block products (inside ember's own two-thread split) up to 2-3x slower than OpenBLAS."""
    threads = _on_mkl(a, b)
    if threads:
        return mkl.gemm(a, b, out, threads)
    return np.matmul(a, b, out=out)


def matmul_bias(a, b, bias):
    """``a @ b + bias`` (``bias`` broadcast over the rows) for 2-D ``a`` and ``b``: on MKL, one
    call into ``bias`` copied to every row (``beta = 1``, as PyTorch's ``addmm`` runs a Linear
    layer) instead of a product and an add over its result: (128, 784) @ (784, 512) 438 -> 400
    us on two threads of the reference machine."""
    threads = _on_mkl(a, b) if bias.dtype == a.dtype else 0
    if threads:
        out = np.empty((a.shape[0], b.shape[1]), a.dtype)
        out[...] = bias
        return mkl.gemm_add(a, b, out, threads)
    out = matmul(a, b)
    out += bias
    return out


def _on_mkl(a, b):
    """MKL's thread count for the product ``a @ b`` where MKL takes it (large float products of
    two matrices of one dtype), else 0."""
    if _mkl is not False and a.ndim == 2 == b.ndim and a.dtype == b.dtype and a.dtype.char in "fd":
        m, k = a.shape
        n = b.shape[1]
        least = mkl.MIN_MACS if _blas_env.BLAS_SLEEPS else min(mkl.MIN_MACS, SERIAL_MACS)
        if m * k * n >= least and b.shape[0] == k and (_mkl or mkl_active()):
            return threads_for(m * k * n)
    return 0


def packed(w, m):
    """``w`` (k, n) packed for the products ``x @ w`` of a loop over ``m``-row ``x`` (MKL's
    packed gemm, ``mkl.Packed``), or None where that is not available (no MKL, not float32/64)."""
    if w.ndim == 2 and w.dtype.char in "fd" and mkl_active():
        return mkl.Packed(w, m)
    return None


def matmul_packed(x, p, out):
    """``out[...] = x @ w`` for the weight ``p = packed(w, m)`` and ``x`` of its ``m`` rows
    and dtype, on the threads the policy gives a product that size."""
    m, k, n = p.shape
    return p.matmul(x, out, threads_for(m * k * n))


def blas_accumulates():
    """True when ``matmul_add`` accumulates inside BLAS (MKL or NumPy's own OpenBLAS) rather than
    through a temporary and an add."""
    return mkl_active() or cblas.openblas() is not None


def matmul_add(a, b, out, accumulate=True):
    """``out += a @ b`` (``out[...] = a @ b`` when not ``accumulate``) for 2-D float arrays of one
    dtype, in one BLAS call where there is one to make (``ember.backend.cblas``: MKL when
    installed, else NumPy's own OpenBLAS), else through NumPy (a temporary and an add). ``out``
    may be a view with unit inner stride; it must not overlap ``a`` or ``b``."""
    m, n = out.shape
    if (a.dtype == b.dtype == out.dtype and a.dtype.char in "fd" and out.flags.writeable
            and out.flags.aligned and a.shape[0] == m and b.shape == (a.shape[1], n)
            and (out.strides[1] == out.itemsize or n == 1)
            and (m == 1 or out.strides[0] >= n * out.itemsize)):
        beta = 1.0 if accumulate else 0.0
        if _mkl is not False and (_mkl or mkl_active()):
            return mkl.gemm_add(a, b, out, threads_for(a.shape[0] * a.shape[1] * b.shape[1]),
                                beta)
        g = cblas.openblas()
        if g is not None:
            return cblas.call(g[a.dtype], a, b, out, beta)
    if not accumulate:
        return np.matmul(a, b, out=out)
    out += np.matmul(a, b)
    return out


def threads_for(macs):
    """Threads for one product that takes its thread count per call (MKL, oneDNN): the policy
    of ``serial_blas``, and one inside a ``parallel_for`` split."""
    if macs <= SERIAL_MACS or _serial.depth or parallel._local.inside or machine_busy():
        return 1
    return _serial.threads or _ut.get_num_threads()
