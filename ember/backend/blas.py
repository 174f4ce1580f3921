"""BLAS thread control for small products (NumPy's BLAS, through the optional threadpoolctl).

Measured on the 2-core reference machine: a small matmul on two OpenBLAS threads becomes 10-200x
slower whenever the other core is busy, while one thread runs it at full speed. Ops wrap their
small products in ``serial_blas(macs)``; large ones keep every thread. Without threadpoolctl
this does nothing.

Example::

    with serial_blas(o * k * n):        # multiply-adds of the product(s) inside
        y = w @ cols
"""

from __future__ import annotations

from ember.backend.threads import machine_busy

__all__ = ["serial_blas", "SERIAL_MACS"]

# Products up to this many multiply-adds run on one thread. On the idle 2-core reference machine
# two OpenBLAS threads beat one from 2^20 multiply-adds up (1.2x at 64x400x120, 1.6x at
# 128x512x512, 1.9x at 128x784x512), so only OpenBLAS's own serial range stays serial; a busy
# machine is handled by machine_busy(). (2^25 before: mlp128 torch/ember 0.65 -> 0.78.)
SERIAL_MACS = 1 << 18
_BLAS_SERIAL_MACS = 1 << 18  # OpenBLAS runs products this small on one thread by itself

_libs = None


def _controllers():
    global _libs
    if _libs is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _libs = []
        else:
            _libs = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
    return _libs


class serial_blas:
    """Context manager: one BLAS thread inside when ``macs <= serial_macs``.

    Larger products (``macs=math.inf`` for "whatever is inside") keep every thread unless other
    processes keep the other cores busy.
    """

    __slots__ = ("saved",)

    def __init__(self, macs, serial_macs=SERIAL_MACS):
        self.saved = (() if _BLAS_SERIAL_MACS < macs <= serial_macs or
                      (macs > serial_macs and machine_busy()) else None)

    def __enter__(self):
        if self.saved is not None:
            self.saved = [(c, n) for c in _controllers() for n in (c.get_num_threads(),)
                          if n != 1]
            for c, _ in self.saved:
                c.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        for c, n in self.saved or ():
            c.set_num_threads(n)
