"""``cblas_?gemm`` through ctypes: ``out = a @ b + beta * out`` in one call, for the products that
accumulate (``ember.backend.blas.matmul_add``), on NumPy's own OpenBLAS or on MKL (``mkl.py``).

NumPy has no accumulating product: ``out += a @ b`` writes a temporary and adds it, one more
pass over ``out``. ResNet-20's 3x3 convolutions are nine accumulating products a block of images
(``ember.ops.conv``), and the adds cost a third as much as the products there.

NumPy's wheels (2.x) ship OpenBLAS as ``scipy-openblas64``: a shared library next to NumPy
whose symbols are ``scipy_cblas_sgemm64_`` (64-bit integers). ``openblas()`` finds it among the
files NumPy ships; any other build (a distribution's NumPy, conda's MKL NumPy) finds nothing and
``matmul_add`` falls back to the temporary and the add.
ctypes releases the GIL for the call, so ``ember.backend.parallel`` splits run it side by side;
OpenBLAS's thread count is NumPy's (``serial_blas`` sets it through threadpoolctl).

Example::

    g = cblas.openblas()                # {dtype: function} or None
    if g:
        cblas.call(g[a.dtype], a, b, out, 1.0)   # out += a @ b
"""

from __future__ import annotations

import ctypes

import numpy as np

from ember import _blas_env
from ember.backend._libs import address

__all__ = ["openblas", "call", "operand"]

ROW, NOTRANS, TRANS = 101, 111, 112
_openblas = None  # None: not looked for yet; False: not found; else {dtype: cblas_?gemm}


def operand(x, rows, cols):
    """(array, transpose flag, leading dimension) for a 2-D operand ``x`` of shape (rows, cols):
    a row-major or column-major view goes in as it is, anything else is copied."""
    it = x.itemsize
    s0, s1 = x.strides
    if x.flags.aligned:
        if (s1 == it or cols == 1) and (s0 % it == 0 and s0 >= cols * it or rows == 1):
            return x, NOTRANS, s0 // it if rows > 1 else max(cols, 1)
        if (s0 == it or rows == 1) and (s1 % it == 0 and s1 >= rows * it or cols == 1):
            return x, TRANS, s1 // it if cols > 1 else max(rows, 1)
    x = np.ascontiguousarray(x)
    return x, NOTRANS, max(cols, 1)


def call(gemm, a, b, out, beta):
    """``out = a @ b + beta * out`` with the bound ``cblas_?gemm`` ``gemm``; ``out`` is 2-D with
    unit inner stride (a view is fine) and does not overlap ``a`` or ``b``."""
    m, k = a.shape
    n = b.shape[1]
    a, ta, lda = operand(a, m, k)
    b, tb, ldb = operand(b, k, n)
    ldc = out.strides[0] // out.itemsize if m > 1 else max(n, 1)
    gemm(ROW, ta, tb, m, n, k, 1.0, address(a), lda, address(b), ldb, beta,
         address(out), ldc)
    return out


def openblas():
    """``{dtype: cblas_?gemm}`` of NumPy's own OpenBLAS (64-bit integer interface), or None."""
    global _openblas
    if _openblas is None:
        _openblas = False
        path = _blas_env.openblas_library(np)
        if path is not None:
            try:
                lib = ctypes.CDLL(path)
                _openblas = {np.dtype(dtype): _bind(lib, prefix, scalar)
                             for dtype, prefix, scalar in ((np.float32, "s", ctypes.c_float),
                                                           (np.float64, "d", ctypes.c_double))}
            except (OSError, AttributeError):
                _openblas = False
    return _openblas or None


def _bind(lib, prefix, scalar):
    for name in (f"scipy_cblas_{prefix}gemm64_", f"cblas_{prefix}gemm64_"):
        fn = getattr(lib, name, None)
        if fn is not None:
            i, n, ptr = ctypes.c_int, ctypes.c_int64, ctypes.c_void_p
            fn.restype = None
            fn.argtypes = [i] * 3 + [n] * 3 + [scalar, ptr, n, ptr, n, scalar, ptr, n]
            return fn
    raise AttributeError(f"no 64-bit cblas_{prefix}gemm")
