"""Attention as one fused op: ``softmax(Q K^T * scale + mask) V`` with a hand-written backward.

``scaled_dot_product_attention`` is PyTorch's ``F.scaled_dot_product_attention``; the same op also
serves ``multi_head_attention_forward`` (below), which asks it for the attention weights as a
second output.

Example::

    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # q (N,H,L,E), k/v (N,H,S,E)
"""

from __future__ import annotations

import math
import warnings

import numpy as np

import ember
from ember.autograd.function import Function
from ember.backend import unbroadcast
from ember.backend.blas import serial_blas
from ember.backend.parallel import parallel_for
from ember.ops import linear as _linear
from ember.random import _gen
from ember.tensor import Tensor, _wrap

__all__ = ["multi_head_attention_forward", "scaled_dot_product_attention"]


def _bmm(a, b):
    """``a @ b`` over batch dims; one BLAS thread when each matrix product is small (OpenBLAS
    would split every small product of the batch over its threads and wait for all of them)."""
    with serial_blas(a.shape[-2] * a.shape[-1] * b.shape[-1]):
        return np.matmul(a, b)


def _repeat_heads(a, groups):
    return a if groups == 1 else np.repeat(a, groups, axis=-3)


def _sum_heads(g, groups):
    if groups == 1:
        return g
    return g.reshape(g.shape[:-3] + (g.shape[-3] // groups, groups) + g.shape[-2:]).sum(-3)


_BLOCK_SCORES = 1 << 18  # scores per block (1 MiB of float32): the block's passes stay in L2
_SPLIT_SCORES = 1 << 18  # two threads from here (~0.5 ms of attention; a split costs ~0.1 ms)
_LOG2E = 1 / math.log(2)


def _scores(q, kt, mask, not_causal, s):
    """``s = q @ kt`` (``kt``: the keys transposed and scaled by ``scale * log2(e)``), then the
    masks: -inf where a bool mask (or the causal triangle) says no, a float mask (also in base
    2) added."""
    np.matmul(q, kt, out=s)
    if not_causal is not None:
        np.copyto(s, -np.inf, where=not_causal)
    if mask is not None:
        if mask.dtype == np.bool_:
            np.copyto(s, -np.inf, where=~mask)
        else:
            s += mask


def _limits(dt):
    """(safe, tiny) of a float dtype: 2^score up to ``safe`` cannot overflow, even summed over a
    long row (float32: 64); a row sum above ``tiny`` kept its largest terms normal (1e-19)."""
    fi = np.finfo(dt)
    return float(np.log2(fi.max)) / 2, float(np.sqrt(fi.tiny))


def _softmax_block(q, kt, mask, not_causal, s, ones, safe, tiny):
    """A block's unnormalised softmax ``2^(s - shift)`` into ``s``; returns the row sums
    (..., L, 1).

    Measured per score (float32, one thread): the stable softmax's per-row maximum over short
    rows costs 0.82 ns, more than the exp itself (exp 0.40, exp2 0.23). Any shift common to a
    row gives the same softmax: none when every score is at most ``safe`` (BERT's always
    are), else the block's maximum (0.05 + 0.08 ns). The row sums are one matrix-vector product
    (0.06 ns; ``sum(-1)``: 0.26). A row whose sum falls below ``tiny`` (its scores far
    below the block's top, or fully masked) or a nan/inf sends the block through the row-wise
    path: there a fully masked row gives zeros (under a float mask of finite minima, a uniform
    row), as PyTorch does."""
    _scores(q, kt, mask, not_causal, s)
    if not s.size:  # no queries, or no keys: the output is empty, or zeros as in PyTorch
        return np.ones(s.shape[:-1] + (1,), s.dtype)
    top = s.max()
    if top > safe and np.isfinite(top):
        s -= top
    if top <= safe or np.isfinite(top):
        np.exp2(s, out=s)
        tot = (s.reshape(-1, s.shape[-1]) @ ones).reshape(s.shape[:-1] + (1,))
        if tot.min() >= tiny and np.isfinite(tot.max()):
            return tot
        _scores(q, kt, mask, not_causal, s)
    m = s.max(-1, keepdims=True)
    m[~np.isfinite(m)] = 0
    s -= m
    np.exp2(s, out=s)
    tot = s.sum(-1, keepdims=True)
    tot[tot == 0] = 1
    return tot


def _base2_mask(mask):
    """A float mask times log2(e) (a bool mask as is); a finite mask value that overflows (the
    dtype's minimum, Hugging Face's padding) stays the finite minimum."""
    if mask is None or mask.dtype == np.bool_:
        return mask
    with np.errstate(over="ignore"):
        m2 = mask * mask.dtype.type(_LOG2E)
    over = np.isinf(m2) & np.isfinite(mask)
    if over.any():
        m2[over] = np.copysign(np.finfo(mask.dtype).max, mask[over])
    return m2


class Attention(Function):
    """(q, k, v, mask, dropout_p, is_causal, scale, groups, need_weights) -> out[, weights].

    ``mask``: None, a bool array (True = attend) or a float array added to the scores, any shape
    that broadcasts to (..., L, S). ``groups``: query heads per key/value head (GQA).
    ``weights`` (returned when ``need_weights``) are the attention probabilities after dropout.

    Forward runs in blocks of the first batch dim (``_BLOCK_SCORES`` scores each, so the scores
    stay in cache from product to product), split over the cores (``parallel_for``). In each:
    the keys are transposed and scaled by ``scale * log2(e)`` in one copy (a contiguous
    right-hand side: the product 3.8 ms instead of 6.0 for BERT-MiniLM's layer), the softmax is
    taken in base 2 (``_softmax_block``), and without a gradient the output, four times
    smaller than the probabilities here, is normalised instead of them. MiniLM layer (batch 32,
    12 heads, 128 tokens), one thread: 40 ms -> 15 ms.
    """

    @staticmethod
    def forward(ctx, q, k, v, mask, dropout_p, is_causal, scale, groups, need_weights):
        kr, vr = _repeat_heads(k, groups), _repeat_heads(v, groups)
        (L, E), S, Ev, dt = q.shape[-2:], k.shape[-2], v.shape[-1], q.dtype
        batch = np.broadcast_shapes(q.shape[:-2], kr.shape[:-2], vr.shape[:-2],
                                    () if mask is None else mask.shape[:-2])
        fb = batch or (1,)  # >= 3-D views; a block is a range of the first batch dim
        qb, kb, vb = (np.broadcast_to(a, fb + a.shape[-2:]) for a in (q, kr, vr))
        m2 = _base2_mask(mask)
        mb = None if m2 is None else np.broadcast_to(m2, fb + (L, S))
        # In q's memory order: BERT's heads (a transposed view) come back as a free view.
        own = (q.shape == fb + (L, E) and Ev == E and all(q.strides)  # not expanded, and rows
               and q.strides[-1] == q.itemsize)                      # that BLAS can write
        out = np.empty_like(q) if own else np.empty(fb + (L, Ev), dt)
        keep = pd_all = None
        if dropout_p > 0:
            if dropout_p >= 1:
                keep = np.zeros(fb + (L, S), dt)
            else:
                keep = (_gen().random(batch + (L, S), dtype=np.float32) >= dropout_p).astype(dt)
                keep *= dt.type(1 / (1 - dropout_p))
                keep = keep.reshape(fb + (L, S))
            if need_weights:
                pd_all = np.empty(fb + (L, S), dt)
        p_all = np.empty(fb + (L, S), dt) if need_weights or any(ctx.needs_input_grad) else None
        not_causal = ~np.tri(L, S, dtype=bool) if is_causal else None
        ones, limits = np.ones((S, 1), dt), _limits(dt)
        kscale = dt.type(scale * _LOG2E)
        row = int(np.prod(fb[1:], dtype=np.int64)) * L * S  # scores per index of the first dim
        step = max(1, _BLOCK_SCORES // max(row, 1))

        def run(lo, hi):
            inner = (min(step, hi - lo),) + fb[1:]
            kt = np.empty(inner + (E, S), dt)
            s_buf = np.empty(inner + (L, S), dt) if p_all is None else None
            o_buf = np.empty(inner + (L, Ev), dt) if p_all is None and keep is None else None
            d_buf = np.empty(inner + (L, S), dt) if keep is not None and pd_all is None else None
            with serial_blas(L * E * S):
                for a in range(lo, hi, step):
                    b = min(a + step, hi)
                    n = b - a
                    np.multiply(np.swapaxes(kb[a:b], -1, -2), kscale, out=kt[:n])
                    s = p_all[a:b] if p_all is not None else s_buf[:n]
                    tot = _softmax_block(qb[a:b], kt[:n], None if mb is None else mb[a:b],
                                         not_causal, s, ones, *limits)
                    np.reciprocal(tot, out=tot)
                    if o_buf is not None:  # no probabilities wanted: normalise the output
                        np.matmul(s, vb[a:b], out=o_buf[:n])
                        np.multiply(o_buf[:n], tot, out=out[a:b])
                        continue
                    s *= tot
                    if keep is not None:
                        s = np.multiply(s, keep[a:b], out=d_buf[:n] if pd_all is None
                                        else pd_all[a:b])
                    np.matmul(s, vb[a:b], out=out[a:b])

        parallel_for(fb[0], run, min_n=max(2, -(-_SPLIT_SCORES // max(row, 1))))
        if need_weights:
            ctx._nout = 2
        ctx.scale, ctx.groups = scale, groups
        ctx.shapes = (q.shape, k.shape, v.shape, None if mask is None else mask.shape)
        shape = batch + (L, S)
        if any(ctx.needs_input_grad):
            ctx.save_for_backward(q, kr, vr, p_all.reshape(shape),
                                  None if keep is None else keep.reshape(shape))
        out = out.reshape(batch + (L, Ev))
        if need_weights:
            return out, (p_all if pd_all is None else pd_all).reshape(shape)
        return out

    @staticmethod
    def backward(ctx, dout, dw=None):
        q, kr, vr, p, keep = ctx.saved_tensors
        qs, ks, vs, ms = ctx.shapes
        nig = ctx.needs_input_grad
        pd = p if keep is None else p * keep
        dq = dk = dv = dm = None
        if dout is not None:
            dpd = _bmm(dout, np.swapaxes(vr, -1, -2))
            if dw is not None:
                dpd += dw
            if nig[2]:
                dv = _sum_heads(unbroadcast(_bmm(np.swapaxes(pd, -1, -2), dout),
                                            _bshape(vr.shape, qs)), ctx.groups)
        else:
            dpd = dw
        if keep is not None:
            dpd = dpd * keep
        ds = dpd * p
        ds -= p * ds.sum(-1, keepdims=True)
        if nig[3]:
            dm = unbroadcast(ds, ms)
        if dm is ds:
            ds = ds * ds.dtype.type(ctx.scale)
        else:
            ds *= ds.dtype.type(ctx.scale)
        if nig[0]:
            dq = unbroadcast(_bmm(ds, kr), qs)
        if nig[1]:
            dk = _bmm(np.swapaxes(ds, -1, -2), q)
            dk = _sum_heads(unbroadcast(dk, _bshape(kr.shape, qs)), ctx.groups)
        if dv is not None:
            dv = unbroadcast(dv, vs)
        if dk is not None:
            dk = unbroadcast(dk, ks)
        return dq, dk, dv, dm, None, None, None, None, None


def _bshape(shape, other):
    """``shape`` with its batch dims broadcast against ``other``'s (last two dims kept)."""
    batch = np.broadcast_shapes(shape[:-2], other[:-2])
    return tuple(batch) + tuple(shape[-2:])


def _dt(t):
    return str(t.dtype).replace("ember.", "")


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                                 scale=None, enable_gqa=False):
    """``softmax(query @ key.T * scale + mask) @ value`` as one fused op (PyTorch's signature).

    Args:
        query: (..., L, E); key: (..., S, E); value: (..., S, Ev).
        attn_mask: bool (True = take part in attention) or float (added to the scores), broadcast
            to (..., L, S).
        dropout_p: dropout on the attention probabilities (always applied when > 0, as in PyTorch).
        is_causal: use a lower-triangular mask (attn_mask must then be None).
        scale: defaults to 1 / sqrt(E).
        enable_gqa: allow fewer key/value heads (dim -3) than query heads (grouped-query attention).
    Returns: (..., L, Ev).
    """
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"scaled_dot_product_attention(): argument '{name}' must be Tensor, "
                            f"not {type(t).__name__}")
    if not (query.dtype == key.dtype == value.dtype):
        raise RuntimeError("Expected query, key, and value to have the same dtype, but got "
                           f"query.dtype: {_dt(query)} key.dtype: {_dt(key)} and value.dtype: "
                           f"{_dt(value)} instead.")
    if query.dim() < 2 or key.dim() < 2 or value.dim() < 2:
        raise RuntimeError("scaled_dot_product_attention: query, key and value must be at least "
                           f"2-D, got {query.dim()}-D, {key.dim()}-D and {value.dim()}-D")
    if query.shape[-1] != key.shape[-1]:
        raise RuntimeError(f"scaled_dot_product_attention: query's last dim {query.shape[-1]} "
                           f"must equal key's last dim {key.shape[-1]} (query {tuple(query.shape)},"
                           f" key {tuple(key.shape)})")
    if key.shape[-2] != value.shape[-2]:
        raise RuntimeError(f"scaled_dot_product_attention: key and value must have the same "
                           f"sequence length, got key {tuple(key.shape)} and value "
                           f"{tuple(value.shape)}")
    if is_causal and attn_mask is not None:
        raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set "
                           "when is_causal=True")
    groups = 1
    hq = query.shape[-3] if query.dim() >= 3 else 1
    hk = key.shape[-3] if key.dim() >= 3 else 1
    if hq != hk and hq != 1 and hk != 1:
        if not enable_gqa or hq % hk or value.dim() < 3 or value.shape[-3] != hk:
            raise RuntimeError(
                f"scaled_dot_product_attention: query has {hq} heads (dim -3) and key {hk}: "
                "they must match, or pass enable_gqa=True with the query heads a multiple of "
                "the key/value heads")
        groups = hq // hk
    if attn_mask is not None and not isinstance(attn_mask, Tensor):
        raise TypeError(f"attn_mask must be a Tensor or None, got {type(attn_mask).__name__}")
    if attn_mask is not None and attn_mask.dtype.name != "bool" and \
            attn_mask.dtype != query.dtype:
        raise RuntimeError(f"Expected attn_mask dtype to be bool or float or to match query dtype,"
                           f" but got attn_mask.dtype: {_dt(attn_mask)} and query.dtype: "
                           f"{_dt(query)} instead.")
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    try:
        return Attention.apply(query, key, value, attn_mask, float(dropout_p), bool(is_causal),
                               float(scale), groups, False)
    except ValueError:
        if attn_mask is not None:
            _mask_broadcast_check(query, key, attn_mask)
        raise


def _mask_broadcast_check(query, key, attn_mask):
    """Raise torch's broadcast error when ``attn_mask`` does not broadcast to the scores
    ``(..., L, S)`` (called only after NumPy refused, so it costs nothing otherwise)."""
    from ember.ops.elementwise import broadcast_mismatch

    try:
        lead = np.broadcast_shapes(tuple(query.shape[:-2]), tuple(key.shape[:-2]))
    except ValueError:
        lead = tuple(query.shape[:-2])
    scores = tuple(lead) + (query.shape[-2], key.shape[-2])
    msg = broadcast_mismatch(scores, attn_mask.shape)
    if msg is not None:
        raise RuntimeError(msg) from None


# ---------------------------------------------------------------- multi-head attention
def _mha_shape_check(query, key, value, key_padding_mask, attn_mask, num_heads):
    qd, kd, vd = query.dim(), key.dim(), value.dim()
    if qd not in (2, 3):
        raise AssertionError("query should be unbatched 2D or batched 3D tensor but received "
                             f"{qd}-D query tensor")
    kind, want = ("batched (3-D)", 3) if qd == 3 else ("unbatched (2-D)", 2)
    if kd != want or vd != want:
        raise AssertionError(f"For {kind} `query`, expected `key` and `value` to be {want}-D but "
                             f"found {kd}-D and {vd}-D tensors respectively")
    if key_padding_mask is not None and key_padding_mask.dim() != want - 1:
        raise AssertionError(f"For {kind} `query`, expected `key_padding_mask` to be `None` or "
                             f"{want - 1}-D but found {key_padding_mask.dim()}-D tensor instead")
    if attn_mask is not None:
        if attn_mask.dim() not in (2, 3):
            raise AssertionError(f"For {kind} `query`, expected `attn_mask` to be `None`, 2-D or "
                                 f"3-D but found {attn_mask.dim()}-D tensor instead")
        if qd == 2 and attn_mask.dim() == 3:
            expected = (num_heads, query.shape[0], key.shape[0])
            if tuple(attn_mask.shape) != expected:
                raise AssertionError(f"Expected `attn_mask` shape to be {expected} but got "
                                     f"{tuple(attn_mask.shape)}")
    return qd == 3


def _canonical_mask(mask, name, other, other_name, dtype):
    """A float mask Tensor (-inf where a bool mask is True; a float mask as is), or None."""
    if mask is None:
        return None
    if mask.dtype.name != "bool" and not mask.dtype.is_floating_point:
        raise AssertionError(f"only bool and floating types of {name} are supported")
    if other is not None and mask.dtype != other.dtype:
        warnings.warn(f"Support for mismatched {name} and {other_name} is deprecated. Use same "
                      "type for both instead.", stacklevel=3)
    a = mask._data
    if a.dtype == np.bool_:
        return _wrap(np.where(a, dtype.type(-np.inf), dtype.type(0)))
    return mask


def _pad_col(a):
    if a is None:
        return None
    return ember.cat([a, ember.zeros(tuple(a.shape[:-1]) + (1,), dtype=a.dtype)], -1)


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads, in_proj_weight,
                                 in_proj_bias, bias_k, bias_v, add_zero_attn, dropout_p,
                                 out_proj_weight, out_proj_bias, training=True,
                                 key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None,
                                 k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights=True, is_causal=False):
    """PyTorch's ``F.multi_head_attention_forward``: sequence-first (L, N, E) inputs (or (L, E)
    unbatched); returns ``(attn_output, attn_weights or None)``. Masks: ``key_padding_mask``
    (N, S) and ``attn_mask`` (L, S) or (N*num_heads, L, S), bool (True = ignore) or float (added).
    Masks are constants (no gradient flows into them)."""
    batched = _mha_shape_check(query, key, value, key_padding_mask, attn_mask, num_heads)
    if not batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    L, N, E = query.shape
    dt = query._data.dtype
    kpm = _canonical_mask(key_padding_mask, "key_padding_mask", attn_mask, "attn_mask", dt)
    if is_causal and attn_mask is None:
        raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the "
                           "Transformer module method `generate_square_subsequent_mask` to create "
                           "this mask.")
    if is_causal and kpm is None and not need_weights:
        am = None
    else:
        am = _canonical_mask(attn_mask, "attn_mask", None, "", dt)
        is_causal = is_causal and kpm is None and am is None
    if E != embed_dim_to_check:
        raise AssertionError(f"was expecting embedding dimension of {embed_dim_to_check}, but got "
                             f"{E}")
    hd = E // num_heads
    if hd * num_heads != E:
        raise AssertionError(f"embed_dim {E} not divisible by num_heads {num_heads}")
    if use_separate_proj_weight:
        if tuple(key.shape[:2]) != tuple(value.shape[:2]):
            raise AssertionError(f"key's sequence and batch dims {tuple(key.shape[:2])} do not "
                                 f"match value's {tuple(value.shape[:2])}")
        bq = bk = bv = None
        if in_proj_bias is not None:
            bq, bk, bv = in_proj_bias.chunk(3)
        q = _linear.linear(query, q_proj_weight, bq)
        k = _linear.linear(key, k_proj_weight, bk)
        v = _linear.linear(value, v_proj_weight, bv)
    else:
        if tuple(key.shape) != tuple(value.shape):
            raise AssertionError(f"key shape {tuple(key.shape)} does not match value shape "
                                 f"{tuple(value.shape)}")
        if query is key and key is value:
            q, k, v = _linear.linear(query, in_proj_weight, in_proj_bias).chunk(3, -1)
        else:
            ws = in_proj_weight.chunk(3)
            bs = (None,) * 3 if in_proj_bias is None else in_proj_bias.chunk(3)
            q = _linear.linear(query, ws[0], bs[0])
            if key is value:
                k, v = _linear.linear(key, ember.cat(ws[1:]),
                                      None if bs[1] is None else ember.cat(bs[1:])).chunk(2, -1)
            else:
                k, v = _linear.linear(key, ws[1], bs[1]), _linear.linear(value, ws[2], bs[2])
    S = key.shape[0]
    if am is not None:
        if am.dim() == 2 and tuple(am.shape) != (L, S):
            raise RuntimeError(f"The shape of the 2D attn_mask is {am.shape}, but should be "
                               f"{(L, S)}.")
        if am.dim() == 3 and tuple(am.shape) != (N * num_heads, L, S):
            raise RuntimeError(f"The shape of the 3D attn_mask is {am.shape}, but should be "
                               f"{(N * num_heads, L, S)}.")
        am = am.reshape(N, num_heads, L, S) if am.dim() == 3 else am
    if bias_k is not None and bias_v is not None:
        if static_k is not None or static_v is not None:
            raise AssertionError("bias cannot be added to static key.")
        k = ember.cat([k, bias_k.expand(1, N, E)])
        v = ember.cat([v, bias_v.expand(1, N, E)])
        am, kpm = _pad_col(am), _pad_col(kpm)
    elif bias_k is not None or bias_v is not None:
        raise AssertionError("bias_k is set but bias_v is None" if bias_k is not None
                             else "bias_v is set but bias_k is None")
    # (len, N, E) -> (N, heads, len, head_dim)
    q = q.reshape(L, N, num_heads, hd).permute(1, 2, 0, 3)
    k = _heads(k, static_k, N, num_heads, hd, "k")
    v = _heads(v, static_v, N, num_heads, hd, "v")
    if add_zero_attn:
        k = ember.cat([k, ember.zeros(N, num_heads, 1, hd, dtype=k.dtype)], 2)
        v = ember.cat([v, ember.zeros(N, num_heads, 1, hd, dtype=v.dtype)], 2)
        am, kpm = _pad_col(am), _pad_col(kpm)
    S = k.shape[2]
    if kpm is not None:
        if kpm.shape[0] != N:
            raise AssertionError(f"Expected key_padded_mask.shape[0] to be {N}, but got "
                                 f"{kpm.shape[0]}")
        if kpm.shape[1] != S:
            raise AssertionError(f"Expected key_padded_mask.shape[1] to be {S}, but got "
                                 f"{kpm.shape[1]}")
        kpm = kpm.reshape(N, 1, 1, S)
        am = kpm if am is None else am + kpm
    if not training:
        dropout_p = 0.0
    res = Attention.apply(q, k, v, am, float(dropout_p),
                          bool(is_causal), 1.0 / math.sqrt(hd), 1, bool(need_weights))
    out, w = res if need_weights else (res, None)
    out = out.permute(2, 0, 1, 3).reshape(L * N, E)
    out = _linear.linear(out, out_proj_weight, out_proj_bias).reshape(L, N, E)
    if w is not None and average_attn_weights:
        w = w.mean(1)
    if not batched:
        out = out.squeeze(1)
        w = None if w is None else w.squeeze(0)
    return out, w


def _heads(t, static, N, nh, hd, name):
    if static is None:
        return t.reshape(t.shape[0], N, nh, hd).permute(1, 2, 0, 3)
    if static.size(0) != N * nh:
        raise AssertionError(f"expecting static_{name}.size(0) of {N * nh}, but got "
                             f"{static.size(0)}")
    if static.size(2) != hd:
        raise AssertionError(f"expecting static_{name}.size(2) of {hd}, but got {static.size(2)}")
    return static.reshape(N, nh, static.size(1), hd)

