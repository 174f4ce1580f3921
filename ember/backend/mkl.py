"""Intel MKL's matrix products for ember's large ones: the optional extra ``ember[mkl]``.

NumPy's wheels multiply with OpenBLAS. On the 2-core reference machine MKL's sgemm is 1.1-1.3x
faster on MLP and transformer shapes and 1.5x on an LSTM step's (one thread, 32x256x1024: 194 ->
131 us); PyTorch itself multiplies with MKL. ember's core stays NumPy-only: when the ``mkl``
package is installed (``pip install "ember[mkl]"``), ``ember.backend.blas.matmul`` sends float
products of two matrices from ``MIN_MACS`` multiply-adds to ``cblas_?gemm`` through ctypes
(which releases the GIL), and everything else stays with NumPy. Where MKL runs its generic code
instead of code for the CPU's vector units (``tuned``: on AMD's CPUs), it multiplies at half
the speed of NumPy's OpenBLAS, and the products stay with NumPy. ``cdf_norm`` (VML's normal
CDF) serves the exact GELU (``ember.backend.erf``): BERT-MiniLM's (4096, 1536) activation 24.8
-> 7.6 ms on two threads. ``EMBER_BLAS=numpy`` turns MKL off, ``EMBER_BLAS=mkl`` makes a
missing MKL an error and sends the products to MKL on any CPU.

The product itself is read from the arrays' strides: a row-major or transposed (column-major)
operand goes in as it is, anything else is copied first. Results are bitwise MKL's, so they
differ from NumPy's in the last bits, like PyTorch's do.

Example::

    from ember.backend import mkl
    if mkl.load():
        c = mkl.gemm(a, b, threads=2)   # a (m, k) @ b (k, n), float32 or float64
"""

from __future__ import annotations

import ctypes
import os

import numpy as np

from ember.backend import cblas
from ember.backend._libs import address, wheel_library

__all__ = ["load", "loaded", "tuned", "gemm", "gemm_add", "Packed", "axpby", "cdf_norm",
           "MIN_MACS"]

# MKL takes products from this many multiply-adds. Below, a call through ctypes costs ~10 us
# more than NumPy's, which MKL's kernel does not win back: one thread, 64x64x64 15.9 against 5.2
# us, 64x400x120 64.6 against 59.4, 32x256x1024 148 against 188, 128x784x512 793 against 878.
# Two MKL threads on smaller products also left its OpenMP threads in the way of ember's own
# split kernels: LeNet at batch 64 (64x400x120) ran 13.2 ms a step, against 9.9 on one thread.
MIN_MACS = 1 << 22
# MKL's OpenMP threads spin this many ms after a product before sleeping (Intel's default: 200).
# A sleeping thread takes ~100 us to wake, as long as a recurrent step's product on two threads
# (32x256x1024: 200 us a product after a sleep, 102 with the thread still spinning), and the
# products of a time loop or a training step come well within 1 ms of each other. Measured in one
# process on the 2-core reference machine, 1 ms against 0: lstm32 23.0 against 28.7 ms a step,
# gru_char 56.6 against 66.8, mlp128 3.60 against 4.21; LeNet at batch 64 and ResNet-20, whose
# convolutions run on ember's own split kernels (ember.backend.parallel), the same within 1.5%.
# 200 ms slowed LeNet at batch 64 by ~25% (the spinning thread takes the core from those kernels).
# This applies to Intel's OpenMP runtime, which MKL uses unless GNU OpenMP was loaded first (as
# ``import torch`` does); GNU's threads spin as that runtime decides.
BLOCKTIME_MS = "1"

_lib = None  # None: not tried yet; False: unavailable; else the ctypes library
_gemm = {}  # dtype -> cblas_?gemm
_pack = {}  # dtype -> (cblas_?gemm_pack_get_size, cblas_?gemm_pack, cblas_?gemm_compute)
_cdf = {}   # dtype -> v?CdfNorm
_axpby = {}  # dtype -> cblas_?axpby
_set_threads = None


def _library_path():
    """libmkl_rt from the installed ``mkl`` distribution (its wheel puts it in <prefix>/lib)."""
    return wheel_library("mkl", ("libmkl_rt.so", "mkl_rt"))


def choice():
    """The user's ``EMBER_BLAS``: ``auto`` (the default), ``mkl`` or ``numpy``."""
    chosen = os.environ.get("EMBER_BLAS", "auto").lower()
    if chosen not in ("auto", "mkl", "numpy"):
        raise ValueError(f"EMBER_BLAS must be 'auto', 'mkl' or 'numpy', got {chosen!r}")
    return chosen


def load():
    """Load MKL once; True when it can be used (``EMBER_BLAS`` not ``numpy``, package found)."""
    global _lib, _set_threads
    if _lib is None:
        chosen = choice()
        path = None if chosen == "numpy" else _library_path()
        if path is None:
            if chosen == "mkl":
                raise ImportError("EMBER_BLAS=mkl needs Intel MKL: pip install \"ember[mkl]\"")
            _lib = False
            return False
        os.environ.setdefault("KMP_BLOCKTIME", BLOCKTIME_MS)  # read when MKL starts its threads
        lib = ctypes.CDLL(path)
        ptr, i = ctypes.c_void_p, ctypes.c_int
        for dtype, prefix, scalar in ((np.float32, "s", ctypes.c_float),
                                      (np.float64, "d", ctypes.c_double)):
            g = getattr(lib, f"cblas_{prefix}gemm")
            g.restype = None
            g.argtypes = [i] * 6 + [scalar, ptr, i, ptr, i, scalar, ptr, i]
            _gemm[np.dtype(dtype)] = g
            size = getattr(lib, f"cblas_{prefix}gemm_pack_get_size")
            size.restype, size.argtypes = ctypes.c_size_t, [i] * 4
            pack = getattr(lib, f"cblas_{prefix}gemm_pack")
            pack.restype = None
            pack.argtypes = [i] * 6 + [scalar, ptr, i, ptr]
            compute = getattr(lib, f"cblas_{prefix}gemm_compute")
            compute.restype = None
            compute.argtypes = [i] * 6 + [ptr, i, ptr, i, scalar, ptr, i]
            _pack[np.dtype(dtype)] = (size, pack, compute)
            axpby = getattr(lib, f"cblas_{prefix}axpby")
            axpby.restype = None
            axpby.argtypes = [i, scalar, ptr, i, scalar, ptr, i]
            _axpby[np.dtype(dtype)] = axpby
            cdf = getattr(lib, f"v{prefix}CdfNorm")
            cdf.restype = None
            cdf.argtypes = [i, ptr, ptr]
            _cdf[np.dtype(dtype)] = cdf
        # Each call sets its own thread count on the calling thread and puts the previous one
        # back: MKL reports a thread's local count as its count (MKL_Get_Max_Threads), and
        # threadpoolctl's reading of it is ember's thread count where MKL is the first BLAS it
        # lists (ember.utils.threads.get_num_threads). A one-thread product left there made
        # every later product one-thread too (mlp128 after LeNet at batch 4: 3.7-4.0 ms a
        # step against 2.4-2.6).
        _set_threads = lib.MKL_Set_Num_Threads_Local
        _set_threads.argtypes = [i]
        _set_threads.restype = i
        _lib = lib
    return _lib is not False


def loaded():
    """True once MKL has been loaded into this process."""
    return bool(_lib)


class _Version(ctypes.Structure):  # MKLVersion
    _fields_ = [("major", ctypes.c_int), ("minor", ctypes.c_int), ("update", ctypes.c_int),
                ("status", ctypes.c_char_p), ("build", ctypes.c_char_p),
                ("processor", ctypes.c_char_p), ("platform", ctypes.c_char_p)]


_tuned = None


def processor():
    """The code path MKL runs on this CPU, as MKL names it (``MKL_Get_Version``), or None
    without MKL: "Intel(R) Advanced Vector Extensions 512 (Intel(R) AVX-512) enabled
    processors" on a recent Intel CPU, "Intel(R) Architecture processors" for its generic code."""
    if not load():
        return None
    v = _Version()
    _lib.MKL_Get_Version(ctypes.byref(v))
    return (v.processor or b"").decode(errors="replace")


def tuned():
    """True when MKL runs code written for this CPU's vector units (its AVX, AVX2 or AVX-512
    paths, which it picks on Intel's CPUs), False where it runs its generic code (it does on
    AMD's). On a 2-core AMD EPYC with AVX-512, MKL 2026.2's generic sgemm ran mlp128's products
    at 163-177 GF/s, PyTorch's (MKL's too) at 165-187, NumPy's OpenBLAS at 320-372 and oneDNN's
    matmul at 376-398; its generic axpby ran mlp128's SGD update in 199 us, numba's loop in
    122. Its normal CDF stays faster than ember's own there (a (4096, 1536) GELU 5.7-6.2 against
    9.3-9.9 ms), and its axpby than NumPy's (SGD: 185 against 272 us), so neither asks this."""
    global _tuned
    if _tuned is None:
        name = processor()
        _tuned = name is not None and "Advanced Vector Extensions" in name
    return _tuned


def _result(out, a, b, shape):
    """``out`` when MKL can write into it directly (C-ordered, not overlapping an operand)."""
    if out is not None and out.flags.c_contiguous and out.dtype == a.dtype and not (
            np.may_share_memory(out, a) or np.may_share_memory(out, b)):
        return out
    return np.empty(shape, a.dtype)


def _written(out, c):
    if out is None or c is out:
        return c
    out[...] = c
    return out


def _on_threads(threads, fn, *args):
    """``fn(*args)`` on ``threads`` of MKL's threads, set for the calling thread and put back
    after (see ``load``: MKL reports that count as its own)."""
    prev = _set_threads(threads)
    try:
        fn(*args)
    finally:
        _set_threads(prev)


def gemm(a, b, out=None, threads=1):
    """``a @ b`` for 2-D float32/float64 arrays of one dtype (``out``: a C-ordered result array)."""
    m, n = a.shape[0], b.shape[1]
    c = _result(out, a, b, (m, n))
    _on_threads(threads, cblas.call, _gemm[a.dtype], a, b, c, 0.0)
    return _written(out, c)


def gemm_add(a, b, out, threads=1, beta=1.0):
    """``out = a @ b + beta * out`` in one call; ``out`` has unit inner stride (a view is fine)
    and does not overlap ``a`` or ``b``."""
    _on_threads(threads, cblas.call, _gemm[a.dtype], a, b, out, beta)
    return out


class Packed:
    """A weight ``b`` (k, n) packed once in MKL's internal layout for products ``a @ b`` with
    ``m``-row ``a`` (``cblas_?gemm_pack``), as oneDNN does for a recurrent layer's weights: a
    time loop's products then skip packing the whole weight on every step (one LSTM step,
    32x256x1024 on two threads, 88 -> 65 us on the reference machine)."""

    __slots__ = ("buf", "ptr", "shape", "dtype")

    def __init__(self, b, m):
        k, n = b.shape
        self.dtype = b.dtype
        size, pack, _ = _pack[b.dtype]
        nbytes = size(_PACKED_B, m, n, k)
        self.buf = np.empty(nbytes + 64, np.uint8)  # MKL wants the buffer 64-byte aligned
        start = address(self.buf)
        self.ptr = start + (-start) % 64
        self.shape = (m, k, n)
        b, tb, ldb = cblas.operand(b, k, n)
        pack(cblas.ROW, _PACKED_B, tb, m, n, k, 1.0, address(b), ldb, self.ptr)

    def matmul(self, a, out, threads=1):
        """``out[...] = a @ b`` for ``a`` (m, k) and a C-ordered ``out`` (m, n)."""
        m, k, n = self.shape
        a, ta, lda = cblas.operand(a, m, k)
        _on_threads(threads, _pack[self.dtype][2], cblas.ROW, ta, _PACKED, m, n, k,
                    address(a), lda, self.ptr, n, 0.0, address(out), n)
        return out


_PACKED_B, _PACKED = 162, 151  # CblasBMatrix, CblasPacked


def axpby(a, x, b, y, threads=1):
    """``y = a * x + b * y`` in place, in one pass (``cblas_?axpby``), for contiguous 1-D
    float32/float64 arrays ``x`` and ``y`` of one dtype and size (SGD's update)."""
    _on_threads(threads, _axpby[y.dtype], y.size, a, address(x), 1, b, address(y), 1)
    return y


def cdf_norm(x, out):
    """The standard normal CDF ``Phi(x)`` of a contiguous float32/float64 array into ``out``
    (VML's ``v?CdfNorm``, accurate in both tails), on the calling thread only."""
    _on_threads(1, _cdf[x.dtype], x.size, address(x), address(out))
    return out

