"""Exact (erf) GELU kernels for float32: a fitted ``erfc``, evaluated in cache-sized chunks.

NumPy has no ``erf``; SciPy's computes float32 in double precision one element at a time
(~40 ns each), which made GELU cost as much as the matrix products around it in a BERT layer.
Here ``Phi(x) = erfc(-x / sqrt(2)) / 2`` uses Numerical Recipes' ``erfcc`` (a Chebyshev fit,
``erfc(z) = t exp(-z^2 + P(t))`` with ``t = 1 / (1 + z/2)``, fractional error below 1.2e-7 for
all z >= 0), so the negative tail keeps its relative accuracy (no ``1 + erf`` cancellation).
Each chunk is small enough that its whole-array NumPy calls run in cache.

Example::

    y = gelu_f32(x)                 # 0.5 * x * (1 + erf(x / sqrt(2))), float32
    dy = gelu_grad_f32(x)           # d gelu / dx = Phi(x) + x phi(x)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["gelu_f32", "gelu_grad_f32"]

_CHUNK = 1 << 15  # elements per block: four 128 KiB temporaries stay in L2
_F = np.float32
# P(t), highest power first; the constant term also holds log(1/2) (we want erfc / 2).
_P = [_F(c) for c in (0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807,
                      -0.18628806, 0.09678418, 0.37409196, 1.00002368,
                      -1.26551223 - math.log(2.0))]
_INV_SQRT2 = _F(1 / math.sqrt(2))
_INV_SQRT_2PI = _F(1 / math.sqrt(2 * math.pi))


def _phi_cdf(xb, z, t, p):
    """Phi(x) = P(X <= x) of a block into ``p`` (z, t: scratch)."""
    np.abs(xb, out=z)
    z *= _INV_SQRT2
    np.minimum(z, _F(10), out=z)       # erfc(10) is below float32's range: no overflow below
    np.multiply(z, _F(0.5), out=t)
    t += _F(1)
    np.reciprocal(t, out=t)
    np.multiply(t, _P[0], out=p)
    p += _P[1]
    for c in _P[2:]:
        p *= t
        p += c
    np.multiply(z, z, out=z)
    p -= z
    np.exp(p, out=p)
    p *= t                             # h = erfc(|x| / sqrt 2) / 2 = Phi(-|x|)
    # Phi(x) = h for x < 0, 1 - h for x >= 0, without a (slow) masked op or a cancelling 1/2 - h:
    # with c = copysign(1/2, x), Phi = (1/2 + c) - 2 c h.
    np.copysign(_F(0.5), xb, out=t)
    np.add(t, _F(0.5), out=z)          # 0 or 1, exactly
    p *= t
    p *= _F(-2)
    p += z
    return p


def _blocks(x, out, body):
    """Run ``body(x_block, out_block, scratch...)`` over flat cache-sized blocks."""
    xf, of = x.reshape(-1), out.reshape(-1)
    n = xf.size
    m = min(n, _CHUNK)
    scratch = [np.empty(m, _F) for _ in range(4)]
    for s in range(0, n, _CHUNK):
        e = min(s + _CHUNK, n)
        k = e - s
        body(xf[s:e], of[s:e], *(a[:k] for a in scratch))
    return out


def gelu_f32(x):
    """``0.5 * x * (1 + erf(x / sqrt(2)))`` of a float32 array (a new C-contiguous array)."""
    x = np.ascontiguousarray(x, dtype=_F)

    def body(xb, ob, z, t, p, _):
        np.multiply(xb, _phi_cdf(xb, z, t, p), out=ob)
    return _blocks(x, np.empty_like(x), body)


def gelu_grad_f32(x):
    """``Phi(x) + x * phi(x)``, the derivative of the exact GELU, of a float32 array."""
    x = np.ascontiguousarray(x, dtype=_F)

    def body(xb, ob, z, t, p, d):
        _phi_cdf(xb, z, t, p)
        np.multiply(xb, xb, out=d)
        d *= _F(-0.5)
        np.exp(d, out=d)
        d *= xb
        d *= _INV_SQRT_2PI             # x phi(x)
        np.add(p, d, out=ob)
    return _blocks(x, np.empty_like(x), body)
