"""``SGD``: stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

import numpy as np

from ember.backend import blas, jit, mkl
from ember.optim.optimizer import Optimizer, _check, _grad
from ember.tensor import _wrap

__all__ = ["SGD"]

_CHUNK = 1 << 16  # elements per chunk of the update: four float32 chunks stay in L2
# Parameters from this many elements go to MKL or numba (below, a ctypes or numba call costs
# about what it saves over NumPy's three whole-array calls)
_LARGE = 1 << 15


class SGD(Optimizer):
    """Stochastic gradient descent, as ``torch.optim.SGD``.

    With momentum ``m``: ``buf = m * buf + (1 - dampening) * g`` (``buf = g`` on the first step),
    then ``p -= lr * (g + m * buf if nesterov else buf)``; ``g`` includes ``weight_decay * p``.

    Example::

        opt = ember.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                 *, maximize=False, foreach=None, differentiable=False, fused=None):
        _check(lr >= 0.0, "learning rate", lr)
        _check(momentum >= 0.0, "momentum value", momentum)
        _check(weight_decay >= 0.0, "weight_decay value", weight_decay)
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay,
                        "nesterov": nesterov, "maximize": maximize, "foreach": foreach,
                        "differentiable": differentiable, "fused": fused}
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)

    _group_defaults = (("nesterov", False), ("maximize", False))

    def step(self, closure=None):
        """One update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = self._eval_closure(closure)
        scratch = {}  # dtype -> the chunk temporary of _chunked_update, shared by the parameters
        for group in self.param_groups:
            lr, momentum = float(group["lr"]), float(group["momentum"])
            dampening, nesterov = float(group["dampening"]), group["nesterov"]
            wd, maximize = float(group["weight_decay"]), group["maximize"]
            for p, g, state in self._params_with_grad(group, momentum != 0):
                w = p._data
                d = _grad(g, w, maximize, wd)
                b = None
                if momentum != 0:
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = _wrap(np.array(d, copy=True))
                        d = d + momentum * buf._data if nesterov else buf._data
                    else:
                        b = buf._data
                large = w.size >= _LARGE and _chunkable(w, d, b)
                # MKL's axpby, also where its generic code runs (mkl.tuned: AMD's CPUs), whose
                # mlp128 update (185 us on an AMD EPYC) beats NumPy's chunks (272) but not
                # numba's loop (122), which would load numba into every training process.
                if large and not nesterov and w.dtype.char in "fd" and mkl.load():
                    _mkl_update(w.reshape(-1), d.reshape(-1), None if b is None else
                                b.reshape(-1), lr, momentum, dampening)
                    continue
                k = jit.kernels_for(w, d) if large else None
                if k is not None:
                    # One compiled pass (ember.backend.jit), the same float operations: mlp128's
                    # update 0.52 -> 0.33 ms on the reference machine.
                    k.sgd_update(w.reshape(-1), d.reshape(-1), None if b is None else
                                 b.reshape(-1), lr, momentum, dampening, nesterov)
                    continue
                if w.size > _CHUNK and _chunkable(w, d, b):
                    t = scratch.get(w.dtype)
                    if t is None:
                        t = scratch[w.dtype] = np.empty(_CHUNK, w.dtype)
                    _chunked_update(w.reshape(-1), d.reshape(-1), None if b is None else
                                    b.reshape(-1), t, lr, momentum, dampening, nesterov)
                    continue
                if b is not None:
                    b *= momentum
                    b += d if dampening == 0 else (1 - dampening) * d
                    d = d + momentum * b if nesterov else b
                w -= lr * d
        return loss


def _chunkable(w, d, b):
    return (w.flags.c_contiguous and d.flags.c_contiguous and d.dtype == w.dtype
            and (b is None or b.flags.c_contiguous))


def _mkl_update(w, d, b, lr, momentum, dampening):
    """The update of a large parameter (flat arrays) in MKL's ``axpby``: one pass each for
    ``b = momentum * b + (1 - dampening) * d`` and ``w -= lr * b`` (``w -= lr * d`` without
    ``b``), on two threads from 2^16 elements. mlp128's whole update on the reference machine:
    0.28-0.32 ms, against 0.31-0.32 in numba's single pass and 0.53 in NumPy's chunks (NumPy's
    OpenBLAS has ``axpby`` too, but ran it at 0.53 ms). MKL may fuse each multiply and add (one
    rounding instead of two), as PyTorch's own kernels may."""
    threads = blas.threads_for(4 * w.size)
    if b is not None:
        mkl.axpby(1.0 - dampening, d, momentum, b, threads)
        d = b
    mkl.axpby(-lr, d, 1.0, w, threads)


def _chunked_update(w, d, b, t, lr, momentum, dampening, nesterov):
    """The update of a large parameter, flat arrays: ``b = momentum * b + (1 - dampening) * d``
    (when ``b`` is given), then ``w -= lr * (d + momentum * b if nesterov else b)`` (``w -= lr * d``
    without ``b``), the same float operations as the whole-array path.

    It runs chunk by chunk of ``_CHUNK`` elements with ``t`` as the temporary, so that the four or
    five NumPy passes over a chunk hit L2 and memory sees one read of each array and one write of
    ``w`` and ``b``, instead of whole-array passes and a fresh ``lr * b`` temporary each step:
    mlp128's SGD.step (668k parameters, momentum) 0.60 -> 0.44 ms of CPU on the 2-core machine.
    Sharing the chunks between two threads (``parallel_for``) measured slower (0.54 -> 0.74 ms)."""
    n = w.size
    for lo in range(0, n, _CHUNK):
        hi = min(lo + _CHUNK, n)
        wc, dc, tc = w[lo:hi], d[lo:hi], t[:hi - lo]
        if b is not None:
            bc = b[lo:hi]
            bc *= momentum
            if dampening == 0:
                bc += dc
            else:
                np.multiply(dc, 1 - dampening, out=tc)
                bc += tc
            if nesterov:
                np.multiply(bc, momentum, out=tc)
                tc += dc
                dc = tc
            else:
                dc = bc
        np.multiply(dc, lr, out=tc)
        wc -= tc
