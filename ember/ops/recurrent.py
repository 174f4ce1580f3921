"""Recurrent layers as fused ops: one graph node per layer and direction over the whole sequence.

Each op takes a time-major input ``x`` (T, B, I) and PyTorch's weights (``w_ih`` (G*H, I),
``w_hh`` (G*H, H), biases (G*H,) or None) and returns ``(out (T, B, H), h_n (B, H)[, c_n])``.
The forward pass computes the input projection of all time steps as ONE matmul before the loop, so
the loop only does ``h @ W_hh.T`` and a few in-place elementwise calls on preallocated buffers.
The backward pass runs the loop over time for the gate gradients only; the weight gradients are
single matmuls over all steps afterwards (``dW_ih = dG.T @ X``, ``dW_hh = dG[1:].T @ H[:-1]``).

Internally LSTM gates are reordered from PyTorch's (i, f, g, o) to (o, i, f, g) so the three
sigmoid gates are contiguous, and their weight rows are pre-scaled by 0.5: one ``tanh`` over all
four gates then gives ``sigmoid(x) = 0.5 * tanh(x / 2) + 0.5`` for three of them. GRU does the
same for (r, z). Gradients are mapped back to PyTorch's layout before they leave the op.

With numba installed (the ``[jit]`` extra), each step's gate arithmetic between the ``np.tanh``
calls is one compiled loop (``ember.backend.jit``) instead of a dozen NumPy calls: lstm32
25.4 -> 20.0 ms a training step, gru_char 53.4 -> 42.6 ms, on the 2-core reference machine.

With the ``[onednn]`` extra, float32 LSTM (without projection) and GRU layers over full-length
sequences run on oneDNN's fused layer primitives instead (``ember.backend.onednn.Recurrent``, as
PyTorch's LSTM does): lstm32's layer 3.3 + 6.4 ms forward + backward against 5.2 + 6.6 on the
loop here.

``ember.nn.LSTM`` / ``GRU`` / ``RNN`` and the cells are the public face (``torch.nn.functional``
has no recurrent functions, so neither does ``ember.nn.functional``)::

    out, h_n, c_n = LSTMLayer.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, None, False)
"""

from __future__ import annotations

import contextlib
import functools
import math

import numpy as np

from ember.autograd.function import Function
from ember.backend import jit, mkl, onednn
from ember.backend.blas import matmul, matmul_packed, mkl_active, packed, serial_blas

__all__ = []

_LSTM_PERM = [3, 0, 1, 2]  # internal gate k is PyTorch gate _LSTM_PERM[k]: (o, i, f, g)
_LSTM_INV = [1, 2, 3, 0]
_GRU_ZRN = [1, 0, 2]  # oneDNN's GRU gate k is PyTorch's gate _GRU_ZRN[k]: (z, r, n); its own inverse


def _blas_policy(fn):
    """Run an op's forward or backward with the shared BLAS thread policy for large products
    (one thread while other processes keep the cores busy); the time loops inside wrap their
    per-step products in ``_step_blas``."""

    @functools.wraps(fn)
    def run(ctx, *args):
        with serial_blas(math.inf):
            return fn(ctx, *args)

    return run


# Per-step products this big run 1.3-1.8x faster on two threads than on one when the machine
# is otherwise idle (measured on the 2-core reference machine: (32, 256) @ (256, 1024) 133 -> 82
# us, (32, 1024) @ (1024, 256) 135 -> 96 us), so they follow the policy of the big products.
_STEP_PARALLEL_MACS = 1 << 22
# One-thread per-step products of at least this many multiply-adds are column-chunked.
_CHUNK_MIN_MACS = 1 << 20


class _StepProduct:
    """``x @ w`` for the per-step products of a time loop (``x``: (B, K), ``w``: (K, N)), with
    the thread policy of ``_step_blas``; ``with prod: ... prod(x, out)`` inside the loop.

    OpenBLAS packs the whole (K, N) weight for every call; for the few-row products of a time
    loop that copy costs as much as the arithmetic. On one thread, column chunks of at most
    1024 outputs and 2^19 multiply-adds each, computed by one stacked ``np.matmul`` straight
    into the row-major result, run 1.2-1.9x faster (2-core reference machine, OpenBLAS 0.3.31:
    (32, 256) @ (256, 1024) 183 -> 120 us, (16, 256) @ (256, 1024) 115 -> 61 us) and give the
    same sums in the same order. A product at least twice as deep as wide (the backward
    ``dG @ W_hh``) is also split in two halves of its depth, summed after: (32, 1024) @
    (1024, 256) 198 -> 175 us chunked, -> 151 us chunked and split. Where two BLAS threads are
    used (idle machine, 2^22+ multiply-adds) the product stays whole: 82 us. With MKL (the
    [mkl] extra, ``ember.backend.blas.matmul``) every product stays whole: MKL packs no more than
    it needs (lstm32 step 27-34 -> 22-26 ms on the reference machine).

    Example::

        prod = _StepProduct(w_hh_T, B)
        with prod:
            for t in range(T):
                prod(h, buf)               # buf[:] = h @ w_hh_T
    """

    __slots__ = ("blas", "c", "halves", "w", "packed")

    def __init__(self, w, B):
        K, N = w.shape
        macs = B * K * N
        fast = mkl_active()  # MKL's kernels take few-row products whole, on its policy's threads
        self.blas = serial_blas(macs) if fast else _step_blas(macs)
        c = None
        one = not fast and (macs < _STEP_PARALLEL_MACS or self.blas.saved is not None
                            or _one_thread())
        split = one and K >= 2 * N and K % 2 == 0
        depth = K // 2 if split else K
        if one and macs >= _CHUNK_MIN_MACS:
            c = 1 << 10
            while c >= 16 and (N % c or c >= N or B * c > 1024 or B * depth * c > 1 << 19):
                c //= 2
            c = c if c >= 16 else None
        self.c, self.halves, self.packed = c, None, None
        if fast and macs >= mkl.MIN_MACS:
            # MKL packs the weight once for the whole loop (oneDNN does the same)
            self.packed = packed(w, B)
        if c is None:
            self.w = _c_order(w)
        elif not split:
            self.w = np.ascontiguousarray(w.reshape(K, N // c, c).transpose(1, 0, 2))
        else:
            self.w = np.ascontiguousarray(w.reshape(2, depth, N // c, c).transpose(0, 2, 1, 3))
            self.halves = np.empty((2, B, N), w.dtype)

    def __enter__(self):
        return self.blas.__enter__()

    def __exit__(self, *exc):
        self.blas.__exit__(*exc)

    def __call__(self, x, out):
        c, halves, p = self.c, self.halves, self.packed
        if (p is not None and len(out) == p.shape[0] and x.dtype == p.dtype == out.dtype
                and out.flags.c_contiguous):
            return matmul_packed(x, p, out)
        if c is None:
            return matmul(x, self.w, out=out)
        B = len(out)
        if halves is None:
            np.matmul(x, self.w, out=out.reshape(B, -1, c).transpose(1, 0, 2))
            return out
        xh = x.reshape(B, 2, -1).transpose(1, 0, 2)[:, None]
        np.matmul(xh, self.w, out=halves.reshape(2, B, -1, c).transpose(0, 2, 1, 3))
        return np.add(halves[0], halves[1], out=out)


def _c_order(w):
    """``w`` (K, N) in C order, the layout of the fastest per-step product (~1.4x NT's here).
    The transpose of a C-order weight is copied in blocks of 32 columns, which reads and
    writes cache lines whole: (256, 1024) 0.37 -> 0.22 ms."""
    K, N = w.shape
    if w.flags.c_contiguous or not w.T.flags.c_contiguous or N % 32:
        return np.ascontiguousarray(w)
    out = np.empty((K, N), w.dtype)
    blocks = w.T.reshape(N // 32, 32, K).transpose(0, 2, 1)  # (N/32, K, 32)
    out.reshape(K, N // 32, 32).transpose(1, 0, 2)[...] = blocks
    return out


def _one_thread():
    from ember.utils.threads import get_num_threads  # lazily: ember.utils sits above ops

    return get_num_threads() == 1


def _step_blas(macs):
    """BLAS thread policy for the per-step products of a time loop (multiply-adds of one)."""
    return serial_blas(macs, serial_macs=_STEP_PARALLEL_MACS - 1)


def _blocks(w, perm, n):
    """Rows of ``w`` regrouped in ``n`` gate blocks taken in ``perm`` order (a fresh array)."""
    return w.reshape((n, -1) + w.shape[1:])[perm].reshape(w.shape)


def _prep_input(x, reverse):
    """(T*B, I) contiguous input rows in processing order (time reversed for ``reverse``)."""
    if reverse:
        x = x[::-1]
    return np.ascontiguousarray(x).reshape(-1, x.shape[-1])


def _weight_grads(dG, x2, hall, h0, need, perm=None):
    """(d w_ih, d w_hh, d b) from the pre-activation gradients ``dG`` (T, B, G*H) of all steps:
    one matmul each. ``hall`` holds the outputs (h_1..h_T); ``need`` flags the three results;
    ``perm`` maps internal gate blocks back to PyTorch's order."""
    T, B, GH = dG.shape
    dG2 = dG.reshape(T * B, GH)
    dwi = dwh = db = None
    if need[0]:
        dwi = matmul(dG2.T, x2)
    if need[1]:
        P = hall.shape[-1]
        if T > 1:
            dwh = matmul(dG2[B:].T, hall[:-1].reshape(-1, P))
            if h0 is not None:
                dwh += matmul(dG2[:B].T, h0)
        else:
            dwh = dG2.T @ h0 if h0 is not None else np.zeros((GH, P), dG.dtype)
    if need[2]:
        db = dG2.sum(0)
    if perm is not None:
        n = len(perm)
        dwi = None if dwi is None else _blocks(dwi, perm, n)
        dwh = None if dwh is None else _blocks(dwh, perm, n)
        db = None if db is None else _blocks(db, perm, n)
    return dwi, dwh, db


def _flip(a, reverse):
    return a[::-1] if reverse else a


def _steps(batch_sizes, reverse):
    """Rows active at each processing step (a packed batch, sorted by decreasing length)."""
    if batch_sizes is None:
        return None
    return batch_sizes[::-1] if reverse else batch_sizes


def _onednn_saved(ctx, dnnl, reverse, workspace, *arrays):
    """What a layer run on oneDNN (``ember.backend.onednn.Recurrent``) keeps for its backward:
    the arrays the primitive read and wrote, and its workspace."""
    ctx.reverse, ctx.dnnl = reverse, dnnl
    if any(ctx.needs_input_grad):
        ctx.save_for_backward(*arrays)
        ctx.workspace = workspace


def _dh_total(dout, dh_rec, t, buf):
    """The gradient reaching h_t: from the output at step t plus from step t + 1."""
    if dout is None:
        if dh_rec is None:
            buf[...] = 0
            return buf
        return dh_rec
    if dh_rec is None:
        return dout[t]
    return np.add(dout[t], dh_rec, out=buf)


def _lstm_cells(A, B, H):
    """``(cell, cell_backward)``: one LSTM step's gate arithmetic for the gates ``A`` (T, B, 4H),
    as the numba kernels of ``ember.backend.jit`` (see ``_numba_kernels`` for what they compute)
    or, without numba or for a dtype other than float32/float64, as the same functions in NumPy
    calls on buffers for ``B`` rows of ``H`` units."""
    k = jit.kernels_for(A)
    dt = A.dtype
    if k is not None:
        return k.lstm_cell, k.lstm_cell_backward
    tmp = np.empty((B, H), dt)
    F = np.empty((B, 4, H), dt)  # per-step factors of the four gate gradients
    S3, Fg = F[:, :3], F[:, 3]
    dc = np.empty((B, H), dt)

    def cell(g, c_prev, c):
        s = g[:, : 3 * H]
        s *= 0.5
        s += 0.5
        np.multiply(g[:, 2 * H : 3 * H], c_prev, out=c)
        np.multiply(g[:, H : 2 * H], g[:, 3 * H :], out=tmp)
        c += tmp

    def cell_backward(a, tc, c_prev, dh, dc_next, dg, dc_out):
        # dpre_o = dh * tc*o(1-o); dpre_{i,f,g} = dc * {g*i(1-i), c_prev*f(1-f), i*(1-g^2)};
        # dc = dh * o*(1-tc^2) + dc_next, on the step's cache-resident rows: whole-array passes
        # over all steps streamed (T, B, 4H) arrays through memory (3.5 -> 2.4 ms in lstm32).
        a, dg = a.reshape(B, 4, H), dg.reshape(B, 4, H)
        mul = np.multiply
        np.subtract(1, a[:, :3], out=S3)
        mul(S3, a[:, :3], out=S3)
        mul(S3[:, 0], tc, out=S3[:, 0])
        mul(S3[:, 1], a[:, 3], out=S3[:, 1])
        mul(S3[:, 2], c_prev, out=S3[:, 2])
        mul(a[:, 3], a[:, 3], out=Fg)
        np.subtract(1, Fg, out=Fg)
        mul(Fg, a[:, 1], out=Fg)
        mul(tc, tc, out=tmp)
        np.subtract(1, tmp, out=tmp)
        mul(tmp, a[:, 0], out=tmp)
        mul(dh, F[:, 0], out=dg[:, 0])
        mul(dh, tmp, out=dc)
        np.add(dc, dc_next, out=dc)
        mul(dc[:, None, :], F[:, 1:], out=dg[:, 1:])
        mul(dc, a[:, 2], out=dc_out)

    return cell, cell_backward


class LSTMLayer(Function):
    """One LSTM layer, one direction: (x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, reverse,
    batch_sizes) -> (out, h_n, c_n). ``w_hr``: projection (proj_size > 0) or None."""

    @staticmethod
    @_blas_policy
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, reverse, batch_sizes=None):
        T, B = x.shape[0], x.shape[1]
        H = w_ih.shape[0] // 4
        P = w_hh.shape[1]
        dt = x.dtype
        x2 = _prep_input(x, reverse)
        bs = _steps(batch_sizes, reverse)
        dnnl = (onednn.Recurrent.get("lstm", T, B, x.shape[2], H, dt)
                if w_hr is None and batch_sizes is None else None)
        if dnnl is not None:  # oneDNN's fused layer, when installed (ember.backend.onednn)
            return LSTMLayer._onednn_forward(ctx, dnnl, x2, h0, c0, w_ih, w_hh, b_ih, b_hh,
                                             reverse)
        # Reordered, pre-scaled weights built in one pass each (weights change every step).
        wi_s = np.empty(w_ih.shape, w_ih.dtype)
        wh_s = np.empty(w_hh.shape, w_hh.dtype)
        for k, p in enumerate(_LSTM_PERM):
            src = slice(p * H, (p + 1) * H)
            dst = slice(k * H, (k + 1) * H)
            if k < 3:
                np.multiply(w_ih[src], 0.5, out=wi_s[dst])
                np.multiply(w_hh[src], 0.5, out=wh_s[dst])
            else:
                wi_s[dst] = w_ih[src]
                wh_s[dst] = w_hh[src]
        A = matmul(x2, wi_s.T).reshape(T, B, 4 * H)
        if b_ih is not None:
            b = _blocks(b_ih + b_hh, _LSTM_PERM, 4)
            b[: 3 * H] *= 0.5
            A += b
        C = np.empty((T + 1, B, H), dt)
        if c0 is None:
            C[0] = 0
        else:
            C[0] = c0
        TC = np.empty((T, B, H), dt)
        out = np.empty((T, B, P), dt)
        HR = out if w_hr is None else np.empty((T, B, H), dt)
        buf = np.empty((B, 4 * H), dt)
        h = h0
        prod = _StepProduct(wh_s.T, B)
        cell = _lstm_cells(A, B, H)[0]
        with prod:
            for t in range(T):
                g = A[t]
                if h is not None:
                    g += prod(h, buf)
                np.tanh(g, out=g)
                c = C[t + 1]
                cell(g, C[t], c)
                np.tanh(c, out=TC[t])
                np.multiply(g[:, :H], TC[t], out=HR[t])
                if w_hr is not None:
                    matmul(HR[t], w_hr.T, out=out[t])
                if bs is not None and bs[t] < B:
                    n = bs[t]
                    C[t + 1, n:] = C[t, n:]
                    out[t, n:] = 0 if h is None else h[n:]
                h = out[t]
        ctx._nout = 3
        ctx.reverse, ctx.dims, ctx.bs = reverse, (T, B, H, P), bs
        if any(ctx.needs_input_grad):
            ctx.save_for_backward(x2, h0, A, C, TC, out, HR, w_ih, w_hh, w_hr)
        return _flip(out, reverse), out[T - 1].copy(), C[T].copy()

    @staticmethod
    def _onednn_forward(ctx, dnnl, x2, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse):
        T, B, I, H = dnnl.dims
        b = (np.zeros(4 * H, x2.dtype) if b_ih is None else b_ih + b_hh if b_hh is not None
             else b_ih)
        out, hn, cn, ws = dnnl.forward(x2.reshape(T, B, I), h0, c0, w_ih, w_hh, b)
        _onednn_saved(ctx, dnnl, reverse, ws, x2, h0, c0, w_ih, w_hh, b, out, hn, cn)
        ctx._nout = 3
        return _flip(out, reverse), hn.copy(), cn.copy()

    @staticmethod
    def _onednn_backward(ctx, dout, dh_n, dc_n):
        x2, h0, c0, w_ih, w_hh, b, out, hn, cn = ctx.saved_tensors
        dnnl = ctx.dnnl
        gx, gh0, gc0, gwi, gwh, gb = dnnl.backward(
            x2.reshape(dnnl.dims[0], dnnl.dims[1], -1), h0, c0, w_ih, w_hh, b, out, hn, cn,
            ctx.workspace, None if dout is None else _flip(dout, ctx.reverse), dh_n, dc_n)
        nig = ctx.needs_input_grad
        return (_flip(gx, ctx.reverse) if nig[0] else None, gh0 if nig[1] else None,
                gc0 if nig[2] else None, gwi if nig[3] else None, gwh if nig[4] else None,
                gb if nig[5] else None, gb.copy() if nig[6] else None, None, None, None)

    @staticmethod
    @_blas_policy
    def backward(ctx, dout, dh_n, dc_n):
        if getattr(ctx, "dnnl", None) is not None:
            return LSTMLayer._onednn_backward(ctx, dout, dh_n, dc_n)
        x2, h0, A, C, TC, out, HR, w_ih, w_hh, w_hr = ctx.saved_tensors
        T, B, H, P = ctx.dims
        dt = A.dtype
        nig = ctx.needs_input_grad
        need_h0 = h0 is not None and nig[1]
        prod = _StepProduct(_blocks(w_hh, _LSTM_PERM, 4), B) if T > 1 or need_h0 else None
        if dout is not None:
            dout = _flip(dout, ctx.reverse)
        dG = np.empty((T, B, 4 * H), dt)
        dh_buf = np.empty((B, P), dt)
        dhr = np.empty((B, P), dt)
        dcn = np.empty((B, H), dt)
        dhh = np.empty((B, H), dt) if w_hr is not None else None
        dHP = np.empty((T, B, P), dt) if w_hr is not None else None
        dh_rec, dc_next = dh_n, dc_n if dc_n is not None else np.zeros((B, H), dt)
        cell_backward = _lstm_cells(A, B, H)[1]
        with prod or contextlib.nullcontext():
            for t in range(T - 1, -1, -1):
                dh = _dh_total(dout, dh_rec, t, dh_buf)
                n = B if ctx.bs is None else ctx.bs[t]
                if n < B:  # finished (or not yet started) sequences pass their state through
                    tail_dh = dh[n:].copy()
                    tail_dc = dc_next[n:].copy()
                if w_hr is not None:
                    dHP[t] = dh
                    if n < B:
                        dHP[t, n:] = 0
                    dh = matmul(dh, w_hr, out=dhh)
                cell_backward(A[t], TC[t], C[t], dh, dc_next, dG[t], dcn)
                dc_next = dcn
                if n < B:
                    dG[t, n:] = 0
                    dc_next[n:] = tail_dc
                if t > 0 or need_h0:
                    dh_rec = prod(dG[t], dhr)
                    if n < B:
                        dh_rec[n:] = tail_dh
        dx = None
        if nig[0]:
            wi = _blocks(w_ih, _LSTM_PERM, 4)
            dx = _flip(matmul(dG.reshape(T * B, 4 * H), wi).reshape(T, B, wi.shape[1]), ctx.reverse)
        dwi, dwh, db = _weight_grads(dG, x2, out, h0, (nig[3], nig[4], nig[5] or nig[6]), _LSTM_INV)
        dwr = None
        if w_hr is not None and nig[7]:
            dwr = matmul(dHP.reshape(T * B, P).T, HR.reshape(T * B, H))
        dh0 = dh_rec if need_h0 else None
        dc0 = dc_next if nig[2] else None
        return (dx, dh0, dc0, dwi, dwh, db if nig[5] else None, db if nig[6] else None, dwr,
                None, None)


class GRULayer(Function):
    """One GRU layer, one direction: (x, h0, w_ih, w_hh, b_ih, b_hh, reverse, batch_sizes)
    -> (out, h_n).

    PyTorch's gates: r, z = sigmoid(.), n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),
    h' = (1 - z) * n + z * h.
    """

    @staticmethod
    @_blas_policy
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, reverse, batch_sizes=None):
        T, B = x.shape[0], x.shape[1]
        H = w_hh.shape[1]
        dt = x.dtype
        x2 = _prep_input(x, reverse)
        bs = _steps(batch_sizes, reverse)
        dnnl = (onednn.Recurrent.get("gru", T, B, x.shape[2], H, dt)
                if batch_sizes is None else None)
        if dnnl is not None:  # oneDNN's fused layer, when installed (ember.backend.onednn)
            return GRULayer._onednn_forward(ctx, dnnl, x2, h0, w_ih, w_hh, b_ih, b_hh, reverse)
        wi_s = w_ih.copy()
        wi_s[: 2 * H] *= 0.5
        wh_s = w_hh.copy()
        wh_s[: 2 * H] *= 0.5
        A = matmul(x2, wi_s.T).reshape(T, B, 3 * H)
        bhn = None
        if b_ih is not None:
            b = b_ih.copy()
            b[: 2 * H] += b_hh[: 2 * H]
            b[: 2 * H] *= 0.5
            A += b
            bhn = b_hh[2 * H :]
        GHN = np.empty((T, B, H), dt)
        out = np.empty((T, B, H), dt)
        buf = np.empty((B, 3 * H), dt)
        h = h0 if h0 is not None else np.zeros((B, H), dt)
        prod = _StepProduct(wh_s.T, B)
        k = jit.kernels_for(A)
        if k is not None and bhn is None:
            bhn = np.zeros(H, dt)
        with prod:
            for t in range(T):
                g = A[t]
                prod(h, buf)
                rz = g[:, : 2 * H]
                rz += buf[:, : 2 * H]
                np.tanh(rz, out=rz)
                ghn = GHN[t]
                n = g[:, 2 * H :]
                o = out[t]
                if k is not None:
                    k.gru_cell(g, buf, bhn, ghn)
                    np.tanh(n, out=n)
                    k.gru_out(g, h, o)
                else:
                    rz *= 0.5
                    rz += 0.5
                    if bhn is None:
                        ghn[...] = buf[:, 2 * H :]
                    else:
                        np.add(buf[:, 2 * H :], bhn, out=ghn)
                    np.multiply(g[:, :H], ghn, out=buf[:, :H])
                    n += buf[:, :H]
                    np.tanh(n, out=n)
                    np.subtract(h, n, out=o)
                    o *= g[:, H : 2 * H]
                    o += n
                if bs is not None and bs[t] < B:
                    o[bs[t]:] = h[bs[t]:]
                h = o
        ctx._nout = 2
        ctx.reverse, ctx.dims, ctx.bs = reverse, (T, B, H), bs
        if any(ctx.needs_input_grad):
            ctx.save_for_backward(x2, h0, A, GHN, out, w_ih, w_hh)
        return _flip(out, reverse), out[T - 1].copy()

    @staticmethod
    def _onednn_forward(ctx, dnnl, x2, h0, w_ih, w_hh, b_ih, b_hh, reverse):
        T, B, I, H = dnnl.dims
        b = np.zeros(4 * H, x2.dtype)  # oneDNN's (z, r, n, hidden n) from PyTorch's (r, z, n)
        if b_ih is not None:
            b[:H] = b_ih[H:2 * H] + b_hh[H:2 * H]
            b[H:2 * H] = b_ih[:H] + b_hh[:H]
            b[2 * H:3 * H] = b_ih[2 * H:]
            b[3 * H:] = b_hh[2 * H:]
        wi, wh = _blocks(w_ih, _GRU_ZRN, 3), _blocks(w_hh, _GRU_ZRN, 3)
        out, hn, _, ws = dnnl.forward(x2.reshape(T, B, I), h0, None, wi, wh, b)
        _onednn_saved(ctx, dnnl, reverse, ws, x2, h0, wi, wh, b, out, hn)
        ctx._nout = 2
        return _flip(out, reverse), hn.copy()

    @staticmethod
    def _onednn_backward(ctx, dout, dh_n):
        x2, h0, wi, wh, b, out, hn = ctx.saved_tensors
        dnnl = ctx.dnnl
        H = dnnl.dims[3]
        gx, gh0, _, gwi, gwh, gb = dnnl.backward(
            x2.reshape(dnnl.dims[0], dnnl.dims[1], -1), h0, None, wi, wh, b, out, hn, None,
            ctx.workspace, None if dout is None else _flip(dout, ctx.reverse), dh_n, None)
        nig = ctx.needs_input_grad
        z, r, n, hn_ = gb[:H], gb[H:2 * H], gb[2 * H:3 * H], gb[3 * H:]
        return (_flip(gx, ctx.reverse) if nig[0] else None, gh0 if nig[1] else None,
                _blocks(gwi, _GRU_ZRN, 3) if nig[2] else None,
                _blocks(gwh, _GRU_ZRN, 3) if nig[3] else None,
                np.concatenate([r, z, n]) if nig[4] else None,
                np.concatenate([r, z, hn_]) if nig[5] else None, None, None)

    @staticmethod
    @_blas_policy
    def backward(ctx, dout, dh_n):
        if getattr(ctx, "dnnl", None) is not None:
            return GRULayer._onednn_backward(ctx, dout, dh_n)
        x2, h0, A, GHN, out, w_ih, w_hh = ctx.saved_tensors
        T, B, H = ctx.dims
        dt = A.dtype
        nig = ctx.needs_input_grad
        if dout is not None:
            dout = _flip(dout, ctx.reverse)
        k = jit.kernels_for(A)
        F = None if k is not None else _gru_factors(A, GHN, out, h0)
        A3 = A.reshape(T, B, 3, H)
        r, z = A3[:, :, 0], A3[:, :, 1]
        dGx = np.empty((T, B, 3 * H), dt)
        dGh = np.empty((T, B, 3 * H), dt)
        dh_buf = np.empty((B, H), dt)
        dhr = np.empty((B, H), dt)
        tmp = np.empty((B, H), dt)
        h_first = h0 if h0 is not None else np.zeros((B, H), dt)
        need_h0 = h0 is not None and nig[1]
        dh_rec = dh_n
        prod = _StepProduct(w_hh, B)
        with prod:
            for t in range(T - 1, -1, -1):
                dh = _dh_total(dout, dh_rec, t, dh_buf)
                n = B if ctx.bs is None else ctx.bs[t]
                if n < B:
                    tail_dh = dh[n:].copy()
                gx, gh = dGx[t], dGh[t]
                if k is not None:
                    k.gru_cell_backward(A[t], GHN[t], out[t - 1] if t else h_first, dh, gx, gh, tmp)
                else:
                    dn = np.multiply(dh, F[t, :, 2], out=gx[:, 2 * H :])
                    np.multiply(dh, F[t, :, 1], out=gx[:, H : 2 * H])
                    np.multiply(dn, F[t, :, 0], out=gx[:, :H])
                    gh[:, : 2 * H] = gx[:, : 2 * H]
                    np.multiply(dn, r[t], out=gh[:, 2 * H :])
                    np.multiply(dh, z[t], out=tmp)
                if n < B:
                    gx[n:] = 0
                    gh[n:] = 0
                if t > 0 or need_h0:
                    dh_rec = prod(gh, dhr)
                    dh_rec += tmp
                    if n < B:
                        dh_rec[n:] = tail_dh
        dx = None
        if nig[0]:
            dx = _flip(matmul(dGx.reshape(T * B, 3 * H), w_ih).reshape(T, B, w_ih.shape[1]),
                       ctx.reverse)
        dwi, _, dbi = _weight_grads(dGx, x2, None, None, (nig[2], False, nig[4]))
        _, dwh, dbh = _weight_grads(dGh, None, out, h0, (False, nig[3], nig[5]))
        return dx, dh_rec if need_h0 else None, dwi, dwh, dbi, dbh, None, None


def _gru_factors(A, GHN, out, h0):
    """Per-step factors of the GRU gate gradients for all steps at once, (T, B, 3, H):
    dpre_r = dpre_n * ghn*r(1-r); dpre_z = dh * (h_prev-n)*z(1-z); dpre_n = dh * (1-z)(1-n^2)."""
    T, B, H = out.shape
    A3 = A.reshape(T, B, 3, H)
    z, n = A3[:, :, 1], A3[:, :, 2]
    F = np.empty((T, B, 3, H), A.dtype)
    S = F[:, :, :2]
    np.subtract(1, A3[:, :, :2], out=S)
    S *= A3[:, :, :2]
    F[:, :, 0] *= GHN
    hp = np.empty((T, B, H), A.dtype)
    np.subtract(out[:-1], n[1:], out=hp[1:])
    np.subtract(h0 if h0 is not None else 0, n[0], out=hp[0])
    F[:, :, 1] *= hp
    Fn = F[:, :, 2]
    np.multiply(n, n, out=Fn)
    np.subtract(1, Fn, out=Fn)
    np.subtract(1, z, out=hp)
    Fn *= hp
    return F


class RNNLayer(Function):
    """One Elman RNN layer, one direction: (x, h0, w_ih, w_hh, b_ih, b_hh, relu, reverse)
    -> (out, h_n) with h' = act(W_ih x + b_ih + W_hh h + b_hh), act tanh or relu."""

    @staticmethod
    @_blas_policy
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, relu, reverse, batch_sizes=None):
        T, B = x.shape[0], x.shape[1]
        H = w_hh.shape[1]
        dt = x.dtype
        x2 = _prep_input(x, reverse)
        bs = _steps(batch_sizes, reverse)
        out = matmul(x2, w_ih.T).reshape(T, B, H)
        if b_ih is not None:
            out += b_ih + b_hh
        buf = np.empty((B, H), dt)
        h = h0
        prod = _StepProduct(w_hh.T, B)
        with prod:
            for t in range(T):
                o = out[t]
                if h is not None:
                    prod(h, buf)
                    o += buf
                if relu:
                    np.maximum(o, 0, out=o)
                else:
                    np.tanh(o, out=o)
                if bs is not None and bs[t] < B:
                    o[bs[t]:] = 0 if h is None else h[bs[t]:]
                h = o
        ctx._nout = 2
        ctx.reverse, ctx.relu, ctx.dims, ctx.bs = reverse, relu, (T, B, H), bs
        if any(ctx.needs_input_grad):
            ctx.save_for_backward(x2, h0, out, w_ih, w_hh)
        return _flip(out, reverse), out[T - 1].copy()

    @staticmethod
    @_blas_policy
    def backward(ctx, dout, dh_n):
        x2, h0, out, w_ih, w_hh = ctx.saved_tensors
        T, B, H = ctx.dims
        dt = out.dtype
        nig = ctx.needs_input_grad
        if dout is not None:
            dout = _flip(dout, ctx.reverse)
        if ctx.relu:
            D = (out > 0).astype(dt)
        else:
            D = np.multiply(out, out)
            np.subtract(1, D, out=D)
        dG = np.empty((T, B, H), dt)
        dh_buf = np.empty((B, H), dt)
        dhr = np.empty((B, H), dt)
        need_h0 = h0 is not None and nig[1]
        dh_rec = dh_n
        prod = _StepProduct(w_hh, B)
        with prod:
            for t in range(T - 1, -1, -1):
                dh = _dh_total(dout, dh_rec, t, dh_buf)
                np.multiply(dh, D[t], out=dG[t])
                n = B if ctx.bs is None else ctx.bs[t]
                if n < B:
                    dG[t, n:] = 0
                    tail_dh = dh[n:].copy()
                if t > 0 or need_h0:
                    dh_rec = prod(dG[t], dhr)
                    if n < B:
                        dh_rec[n:] = tail_dh
        dx = None
        if nig[0]:
            dx = _flip(matmul(dG.reshape(T * B, H), w_ih).reshape(T, B, w_ih.shape[1]), ctx.reverse)
        dwi, dwh, db = _weight_grads(dG, x2, out, h0, (nig[2], nig[3], nig[4] or nig[5]))
        return (dx, dh_rec if need_h0 else None, dwi, dwh, db if nig[4] else None,
                db if nig[5] else None, None, None, None)
