"""The numba kernels behind ``ember.backend.jit`` (imported only through ``jit.kernels()``).

Each kernel is one loop over the rows, windows or elements of its arrays, float32 or float64 (numba
compiles one version per dtype and layout). The constants are float32: they keep float32
arithmetic in float32 (an int literal would promote it to float64) and are exact in float64.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["batch_norm_affine", "batch_norm_input_grad", "batch_norm_moments",
           "batch_norm_sums", "col2im", "gru_cell", "gru_cell_backward", "gru_out", "layer_norm", "lstm_cell",
           "lstm_cell_backward", "max_pool2d", "max_pool2d_backward", "max_pool2x2",
           "max_pool2x2_backward", "relu_backward", "sgd_update"]

_ONE, _HALF = np.float32(1.0), np.float32(0.5)
_jit = numba.njit(cache=True, nogil=True, fastmath=True, error_model="numpy", boundscheck=False)


@_jit
def lstm_cell(g, c_prev, c):
    """One LSTM step after ``np.tanh`` of its pre-activations ``g`` (B, 4H), gates (o, i, f, g)
    with o, i, f pre-scaled by 1/2: o, i, f become sigmoids in place, ``c = f c_prev + i g``."""
    B, H = c.shape
    for b in range(B):
        gb, pb, cb = g[b], c_prev[b], c[b]
        for j in range(H):
            o = _HALF * gb[j] + _HALF
            i = _HALF * gb[H + j] + _HALF
            f = _HALF * gb[2 * H + j] + _HALF
            gb[j] = o
            gb[H + j] = i
            gb[2 * H + j] = f
            cb[j] = f * pb[j] + i * gb[3 * H + j]


@_jit
def lstm_cell_backward(a, tc, c_prev, dh, dc_next, dg, dc_out):
    """Gradients of one LSTM step: ``a`` (B, 4H) its gates (o, i, f, g), ``tc`` tanh(c), ``dh``
    and ``dc_next`` the gradients reaching h and c. Writes the pre-activation gradients ``dg``
    (B, 4H) and the gradient of ``c_prev`` into ``dc_out`` (which may be ``dc_next``)."""
    B, H = tc.shape
    for b in range(B):
        ab, gb, tb, pb, hb, nb, ob = a[b], dg[b], tc[b], c_prev[b], dh[b], dc_next[b], dc_out[b]
        for j in range(H):
            o, i, f, gg = ab[j], ab[H + j], ab[2 * H + j], ab[3 * H + j]
            t, d = tb[j], hb[j]
            gb[j] = d * t * o * (_ONE - o)
            dc = d * o * (_ONE - t * t) + nb[j]
            gb[H + j] = dc * gg * i * (_ONE - i)
            gb[2 * H + j] = dc * pb[j] * f * (_ONE - f)
            gb[3 * H + j] = dc * i * (_ONE - gg * gg)
            ob[j] = dc * f


@_jit
def gru_cell(g, gh, b_hn, ghn):
    """One GRU step, between its two ``np.tanh`` calls: ``g`` (B, 3H) holds tanh of the halved
    r and z pre-activations and the input part of n's; ``gh`` (B, 3H) is ``h @ W_hh.T``. r and z
    become sigmoids in place, ``ghn = gh_n + b_hn`` is kept for the backward pass, and n's
    pre-activation becomes ``g_n + r * ghn``."""
    B, H = ghn.shape
    for b in range(B):
        gb, hb, nb = g[b], gh[b], ghn[b]
        for j in range(H):
            r = _HALF * gb[j] + _HALF
            gb[j] = r
            gb[H + j] = _HALF * gb[H + j] + _HALF
            x = hb[2 * H + j] + b_hn[j]
            nb[j] = x
            gb[2 * H + j] += r * x


@_jit
def gru_out(g, h, out):
    """The GRU step's new state ``out = (1 - z) n + z h`` from its gates ``g`` (r, z, n)."""
    B, H = out.shape
    for b in range(B):
        gb, hb, ob = g[b], h[b], out[b]
        for j in range(H):
            z, n = gb[H + j], gb[2 * H + j]
            ob[j] = n + z * (hb[j] - n)


@_jit
def gru_cell_backward(a, ghn, h_prev, dh, dgx, dgh, dh_prev):
    """Gradients of one GRU step: ``a`` (B, 3H) its gates (r, z, n), ``ghn`` the hidden part of
    n's pre-activation, ``dh`` the gradient reaching the new state. Writes the gradients of the
    input-side pre-activations ``dgx`` (B, 3H), of the hidden-side ones ``dgh`` (B, 3H), and the
    direct part of the gradient of ``h_prev``, ``dh * z``, into ``dh_prev``."""
    B, H = dh.shape
    for b in range(B):
        ab, nb, pb, hb = a[b], ghn[b], h_prev[b], dh[b]
        xb, gb, ob = dgx[b], dgh[b], dh_prev[b]
        for j in range(H):
            r, z, n = ab[j], ab[H + j], ab[2 * H + j]
            d = hb[j]
            dn = d * (_ONE - z) * (_ONE - n * n)
            dz = d * (pb[j] - n) * z * (_ONE - z)
            dr = dn * nb[j] * r * (_ONE - r)
            xb[j] = dr
            xb[H + j] = dz
            xb[2 * H + j] = dn
            gb[j] = dr
            gb[H + j] = dz
            gb[2 * H + j] = dn * r
            ob[j] = d * z


@numba.njit(inline="always", fastmath=True, error_model="numpy", boundscheck=False)
def _row_moments(row):
    """(sum, sum of squared deviations from the mean) of a 1-D row, in float64; the second pass
    reads the row from L1."""
    n = len(row)
    t = 0.0
    for j in range(n):
        t += row[j]
    mu = t / n
    v = 0.0
    for j in range(n):
        d = row[j] - mu
        v += d * d
    return t, v


@_jit
def layer_norm(x, w, b, eps, y, xhat, invstd):
    """LayerNorm of each row of ``x`` (M, D): ``y = (x - mean) / sqrt(var + eps) * w + b`` (``w``,
    ``b``: (D,) or None), with the mean and the biased variance summed in float64. Also writes
    x-hat into ``xhat`` and 1/std into ``invstd`` (M, 1) when ``xhat`` is not None."""
    M, D = x.shape
    for m in range(M):
        row, out = x[m], y[m]
        s, v = _row_moments(row)
        mean = s / D
        inv = 1.0 / np.sqrt(v / D + eps)
        mu, r = out.dtype.type(mean), out.dtype.type(inv)
        for j in range(D):
            h = (row[j] - mu) * r
            if xhat is not None:
                xhat[m, j] = h
            if w is not None:
                h = h * w[j]
            if b is not None:
                h = h + b[j]
            out[j] = h
        if xhat is not None:
            invstd[m, 0] = r


@_jit
def batch_norm_moments(x, s, m2):
    """Per (sample, channel) row of ``x`` (N, C, L): its sum into ``s`` and the sum of squared
    deviations from its own mean into ``m2`` (both (N, C) float64). The row is read twice, the
    second time from L1, so the statistics cost one pass over memory."""
    N, C = s.shape
    for n in range(N):
        for c in range(C):
            s[n, c], m2[n, c] = _row_moments(x[n, c])


@_jit
def batch_norm_affine(x, mean, scale, b, y):
    """``y = (x - mean) * scale + b`` per channel of ``x`` (N, C, L) (``b`` may be None)."""
    N, C, L = x.shape
    for n in range(N):
        for c in range(C):
            row, out = x[n, c], y[n, c]
            mu, r = mean[c], scale[c]
            sh = b[c] if b is not None else out.dtype.type(0.0)
            for j in range(L):
                out[j] = (row[j] - mu) * r + sh


@_jit
def batch_norm_sums(g, x, mean, sg, sgx):
    """Per (sample, channel) row: ``sg`` = sum of ``g``, ``sgx`` = sum of ``g * (x - mean)``
    ((N, C) float64)."""
    N, C, L = g.shape
    for n in range(N):
        for c in range(C):
            gr, xr = g[n, c], x[n, c]
            mu = mean[c]
            t = 0.0
            u = 0.0
            for j in range(L):
                t += gr[j]
                u += gr[j] * (xr[j] - mu)
            sg[n, c] = t
            sgx[n, c] = u


@_jit
def batch_norm_input_grad(g, x, mean, a, k1, k2, gx):
    """``gx = g * a - (x - mean) * k1 - k2`` per channel of (N, C, L)."""
    N, C, L = g.shape
    for n in range(N):
        for c in range(C):
            gr, xr, out = g[n, c], x[n, c], gx[n, c]
            mu, ac, c1, c2 = mean[c], a[c], k1[c], k2[c]
            for j in range(L):
                out[j] = gr[j] * ac - (xr[j] - mu) * c1 - c2


# No fastmath here: the NaN test ``v != v`` must survive (PyTorch's max pool propagates NaN).
@numba.njit(cache=True, nogil=True, error_model="numpy", boundscheck=False)
def max_pool2d(xp, kh, kw, sh, sw, dh, dw, best, idx):
    """Max pooling of planes ``xp`` (P, Hp, Wp) into ``best`` (P, Ho, Wo), with the winning
    kernel position ``i * kw + j`` of each window in ``idx``: the first maximal element, or the
    last NaN, as in PyTorch."""
    P, Ho, Wo = best.shape
    for p in range(P):
        plane = xp[p]
        for r in range(Ho):
            for c in range(Wo):
                m = plane[r * sh, c * sw]
                k = 0
                for i in range(kh):
                    row = plane[r * sh + i * dh]
                    for j in range(kw):
                        v = row[c * sw + j * dw]
                        if v > m or v != v:
                            m = v
                            k = i * kw + j
                best[p, r, c] = m
                idx[p, r, c] = k


@_jit
def max_pool2d_backward(g, idx, kw, sh, sw, dh, dw, gx):
    """Adjoint of ``max_pool2d``: adds each output gradient of ``g`` (P, Ho, Wo) to its window's
    winner in ``gx`` (P, Hp, Wp), which the caller zeroes."""
    P, Ho, Wo = g.shape
    for p in range(P):
        for r in range(Ho):
            for c in range(Wo):
                k = idx[p, r, c]
                gx[p, r * sh + (k // kw) * dh, c * sw + (k % kw) * dw] += g[p, r, c]


@numba.njit(cache=True, nogil=True, error_model="numpy", boundscheck=False)
def max_pool2x2(xp, best, idx):
    """``max_pool2d`` for 2x2 windows at stride 2 (the common pool), without branches: one
    select per candidate, which the compiler vectorises along the output row."""
    P, Ho, Wo = best.shape
    for p in range(P):
        for r in range(Ho):
            r0, r1 = xp[p, 2 * r], xp[p, 2 * r + 1]
            bo, io = best[p, r], idx[p, r]
            for c in range(Wo):
                m = r0[2 * c]
                k = 0
                v = r0[2 * c + 1]
                t = (v > m) | (v != v)
                m = v if t else m
                k = 1 if t else k
                v = r1[2 * c]
                t = (v > m) | (v != v)
                m = v if t else m
                k = 2 if t else k
                v = r1[2 * c + 1]
                t = (v > m) | (v != v)
                m = v if t else m
                k = 3 if t else k
                bo[c] = m
                io[c] = k


@_jit
def max_pool2x2_backward(g, idx, gx):
    """Adjoint of ``max_pool2x2`` writing every element of ``gx`` (P, 2 Ho, 2 Wo): the output
    gradient at each window's winner, zero elsewhere."""
    P, Ho, Wo = g.shape
    zero = g.dtype.type(0)
    for p in range(P):
        for r in range(Ho):
            r0, r1 = gx[p, 2 * r], gx[p, 2 * r + 1]
            gr, ir = g[p, r], idx[p, r]
            for c in range(Wo):
                k, v = ir[c], gr[c]
                r0[2 * c] = v if k == 0 else zero
                r0[2 * c + 1] = v if k == 1 else zero
                r1[2 * c] = v if k == 2 else zero
                r1[2 * c + 1] = v if k == 3 else zero


# No fastmath: the same float operations, in the same order, as ember.optim.sgd's NumPy path.
@numba.njit(cache=True, nogil=True, error_model="numpy", boundscheck=False)
def sgd_update(w, d, b, lr, momentum, dampening, nesterov):
    """SGD's update of one flat parameter ``w`` by its gradient ``d`` in one pass: with a
    momentum buffer ``b``, ``b = momentum * b + (1 - dampening) * d`` and ``w -= lr * (d +
    momentum * b if nesterov else b)``; without (None), ``w -= lr * d``."""
    m, l = w.dtype.type(momentum), w.dtype.type(lr)
    damp = w.dtype.type(1 - dampening)
    for k in range(w.size):
        if b is None:
            w[k] -= l * d[k]
        else:
            bk = b[k] * m + (d[k] if dampening == 0 else d[k] * damp)
            b[k] = bk
            w[k] -= l * (d[k] + m * bk if nesterov else bk)


@_jit
def col2im(cols, sh, sw, dh, dw, out):
    """Adds columns ``cols`` (C, kh, kw, N, Ho, Wo) into the channel-major padded image ``out``
    (C, N, Hp, Wp) that the caller zeroes: the adjoint of ``ember.backend.im2col.im2col``."""
    C, kh, kw, N, Ho, Wo = cols.shape
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                for n in range(N):
                    for y in range(Ho):
                        src, dst = cols[c, i, j, n, y], out[c, n, y * sh + i * dh]
                        if sw == 1:  # contiguous: the compiler vectorises this loop
                            for x in range(Wo):
                                dst[x + j * dw] += src[x]
                        else:
                            for x in range(Wo):
                                dst[x * sw + j * dw] += src[x]


# No fastmath: a NaN output must get a zero gradient, as in PyTorch's threshold_backward.
@numba.njit(cache=True, nogil=True, error_model="numpy", boundscheck=False)
def relu_backward(g, y, out):
    """ReLU's input gradient from flat, same-length ``g`` and ReLU output ``y``: 0 where
    ``y <= 0``, else ``g`` (a NaN ``y`` passes it, as in PyTorch)."""
    zero = g.dtype.type(0)
    for i in range(g.size):
        out[i] = zero if y[i] <= zero else g[i]
