"""Fused elementwise kernels for the recurrent time loops, compiled by numba: the optional extra
``ember[jit]``.

Inside an LSTM or GRU time loop each step's gate arithmetic is a dozen NumPy calls on arrays of
a few thousand elements (lstm32: (32, 1024) gates), and each call costs 5-15 us, most of it
walking strided gate blocks, so the step's elementwise work costs more than its product: 190 us
of NumPy calls per backward step against 17 us for one numba loop over the same numbers
(measured on the 2-core reference machine). When numba is installed (``pip install
"ember[jit]"``) ``ember.ops.recurrent`` runs each step's gate arithmetic as one of the kernels
below; transcendental functions stay with NumPy (``np.tanh`` is vectorised, numba's scalar one
is 25x slower). ``EMBER_JIT=numpy`` turns the kernels off, ``EMBER_JIT=numba`` makes a missing
numba an error.

numba is imported and the kernels compiled on the first recurrent op, never at ``import ember``;
compiled code is cached in ``__pycache__`` (numba's ``cache=True``). The kernels themselves are
in ``ember/backend/_numba_kernels.py``.

Example::

    from ember.backend import jit
    k = jit.kernels()
    if k is not None:
        k.lstm_cell(g, c_prev, c)
"""

from __future__ import annotations

import importlib
import os

__all__ = ["kernels"]

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
                    raise ImportError('EMBER_JIT=numba needs numba: pip install "ember[jit]"') from None
        _kernels = found or False
    return _kernels or None
