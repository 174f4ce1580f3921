"""Fused elementwise kernels compiled by numba: the optional extra ``ember[jit]``.

Some of ember's work is a chain of NumPy calls over the same small arrays, and each call costs
5-15 us, mostly walking strided views: an LSTM step's gate arithmetic (190 us of NumPy calls per
backward step of lstm32, 17 us as one compiled loop over the same numbers), LayerNorm's row
statistics, max pooling's window scan, col2im's kh*kw strided adds and SGD's per-parameter
update. When numba is installed (``pip install "ember[jit]"``, part of ``[all]``) those ops run
the kernels of ``ember/backend/_numba_kernels.py`` instead, with the same results (each op's
tests run both ways, ``each_kernels``); without it, or with ``EMBER_JIT=numpy``, they keep to
NumPy. Where oneDNN is installed, max pooling and ReLU's gradient run there instead, and with
MKL so does SGD's update of large parameters (``ember.backend.onednn``, ``ember.optim.sgd``):
numba's ~70 MB (its LLVM) is then not loaded by LeNet-, MLP- or LSTM-sized training at all.
``EMBER_JIT=numba`` makes a missing numba an error. Transcendental functions stay with NumPy
(``np.tanh`` is vectorised; numba's scalar one was 25x slower here).

numba is imported by the first op that uses a kernel (~0.6 s, once per process), never at
``import ember``; compiled code is cached in ``__pycache__`` (numba's ``cache=True``), so the
~1 s of compiling is paid once per installation. Kernels release the GIL (``nogil``), so
``ember.backend.parallel`` can split them over the cores.

Example::

    from ember.backend import jit
    k = jit.kernels_for(g, c_prev, c)
    if k is not None:
        k.lstm_cell(g, c_prev, c)
"""

from __future__ import annotations

import importlib
import os

import numpy as np

__all__ = ["kernels", "kernels_for"]

_kernels = None  # None: not tried yet; False: unavailable; else the module of compiled kernels


def kernels():
    """The module of compiled kernels, or None (numba not installed, or ``EMBER_JIT=numpy``)."""
    global _kernels
    if _kernels is None:
        choice = os.environ.get("EMBER_JIT", "auto").lower()
        if choice not in ("auto", "numba", "numpy"):
            raise ValueError(f"EMBER_JIT must be 'auto', 'numba' or 'numpy', got {choice!r}")
        found = None
        if choice != "numpy":
            try:
                found = importlib.import_module("ember.backend._numba_kernels")
            except ImportError:
                if choice == "numba":
                    raise ImportError(
                        'EMBER_JIT=numba needs numba: pip install "ember[jit]"') from None
        _kernels = found or False
    return _kernels or None


def kernels_for(*arrays):
    """``kernels()`` when every one of ``arrays`` is a float32/float64 NumPy array (the dtypes
    and the array type the kernels are compiled for), else None: other dtypes (float16) and
    other array types keep to the NumPy path."""
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype.char not in "fd":
            return None
    return kernels()

