"""ember.ops.attention's blocked forward: each of its paths against torch (the base-2 softmax
with no shift, with the block's maximum as the shift, the row-wise fallback), the output without
a gradient (normalised after the product, in q's memory order), blocks split over two threads
(fixture ``idle``), and masks whose finite minimum overflows in base 2."""

import math

import numpy as np
import pytest
import torch

import ember
from ember.ops import attention as A
from tests.harness import check_op


def _sdpa(t, q, k, v, m=None):
    return t.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m)


def _qkv(seed, shape=(2, 3, 6, 8), scale=1.0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(np.float32) * scale for _ in range(3)]


def _both(q, k, v, m=None):
    """(ember without grad, ember with grad, torch) outputs of the same inputs."""
    with ember.no_grad():
        e0 = _sdpa(ember, *(ember.tensor(a) for a in (q, k, v)),
                   None if m is None else ember.tensor(m)).numpy()
    eg = _sdpa(ember, *(ember.tensor(a, requires_grad=True) for a in (q, k, v)),
               None if m is None else ember.tensor(m))
    t = _sdpa(torch, *(torch.tensor(a) for a in (q, k, v)),
              None if m is None else torch.tensor(m)).numpy()
    return e0, eg.detach().numpy(), t


@pytest.mark.parametrize("scale,offset,passes", [
    (1.0, 0.0, 1),    # base-2 scores up to ~5: no shift
    (1.0, 100.0, 1),  # a float mask lifts every score by 100: the block's maximum as the shift
    (12.0, 0.0, 2),   # ~700 apart: rows underflow under a common shift, the block goes row-wise
])
def test_block_shift_paths_match_torch(monkeypatch, scale, offset, passes):
    q, k, v = _qkv(0, scale=scale)
    m = np.full((6, 6), offset, np.float32)
    calls = []
    real = A._scores
    monkeypatch.setattr(A, "_scores", lambda *a: (calls.append(1), real(*a)))
    e0, eg, t = _both(q, k, v, m)
    assert len(calls) == 2 * passes
    np.testing.assert_allclose(e0, t, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(eg, t, rtol=1e-4, atol=1e-5)
    if not offset:  # (+100 costs both libraries digits, rounded at different places)
        check_op([q.shape] * 3, lambda lib, q, k, v: _sdpa(lib, q, k, v))


def test_row_far_below_the_block_top_takes_the_row_wise_path(monkeypatch):
    q, k, v = _qkv(1)
    m = np.zeros((2, 3, 6, 6), np.float32)
    m[0, 1, 2] = -200.0  # 2^(score - 200 log2 e) underflows: this row needs its own shift
    calls = []
    real = A._scores
    monkeypatch.setattr(A, "_scores", lambda *a: (calls.append(1), real(*a)))
    e0, eg, t = _both(q, k, v, m)
    assert len(calls) == 4  # the block ran twice in each of the two ember calls
    np.testing.assert_allclose(e0, t, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(eg, t, rtol=1e-4, atol=1e-5)


def test_fully_masked_rows_finite_minimum_is_uniform_and_bool_is_zero():
    q, k, v = _qkv(2)
    m = np.zeros((2, 1, 1, 6), np.float32)
    m[1] = np.finfo(np.float32).min  # Hugging Face's padding: overflows when scaled to base 2
    e0, eg, t = _both(q, k, v, m)
    np.testing.assert_allclose(e0, t, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(eg, t, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(e0[1], np.broadcast_to(v[1].mean(-2, keepdims=True), e0[1].shape),
                               rtol=1e-5, atol=1e-6)
    b = np.ones((2, 3, 6, 6), bool)
    b[0, 0, 3] = False
    with ember.no_grad():
        out = _sdpa(ember, *(ember.tensor(a) for a in (q, k, v)), ember.tensor(b)).numpy()
    assert not out[0, 0, 3].any()
    np.testing.assert_allclose(out[1], e0[1] * 0 + _both(q, k, v)[2][1], rtol=1e-4, atol=1e-5)


def test_output_comes_back_in_the_memory_order_of_q():
    """BERT's heads are a transposed view of (N, L, heads, d): so is the output, and undoing the
    transpose is free."""
    rng = np.random.default_rng(3)
    x = [rng.standard_normal((2, 5, 3, 4)).astype(np.float32) for _ in range(3)]
    q, k, v = (ember.tensor(a).transpose(1, 2) for a in x)
    with ember.no_grad():
        out = _sdpa(ember, q, k, v)
    assert out.transpose(1, 2).numpy().flags.c_contiguous
    t = _sdpa(torch, *(torch.tensor(a).transpose(1, 2) for a in x))
    np.testing.assert_allclose(out.numpy(), t.numpy(), rtol=1e-4, atol=1e-5)


def test_expanded_query_gets_a_plain_output():
    """An expanded (zero-stride) q does not lend its memory order to the output."""
    check_op([(1, 3, 6, 8), (4, 3, 6, 8), (4, 3, 6, 8)],
             lambda lib, q, k, v: _sdpa(lib, q.expand(4, 3, 6, 8), k, v))


@pytest.mark.parametrize("grad", [False, True])
def test_blocks_split_over_two_threads(idle, monkeypatch, grad):
    monkeypatch.setattr(A, "_BLOCK_SCORES", 2 * 3 * 6 * 6)  # two batch entries a block
    monkeypatch.setattr(A, "_SPLIT_SCORES", 1)
    q, k, v = _qkv(4, (7, 3, 6, 8))
    m = np.where(np.random.default_rng(5).random((7, 1, 6, 6)) < 0.3, -np.inf, 0).astype(
        np.float32)
    m[..., 0] = 0
    ts = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    t = _sdpa(torch, *ts, torch.tensor(m))
    t.sum().backward()
    es = [ember.tensor(a, requires_grad=grad) for a in (q, k, v)]
    e = _sdpa(ember, *es, ember.tensor(m))
    np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), rtol=1e-4, atol=1e-5)
    if grad:
        e.sum().backward()
        for a, b in zip(es, ts):
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_need_weights_with_dropout_returns_the_dropped_probabilities():
    q, k, v = _qkv(6, (2, 3, 6, 8))
    ember.manual_seed(0)
    out, w = A.Attention.apply(*(ember.tensor(a) for a in (q, k, v)), None, 0.5, False,
                               1 / math.sqrt(8), 1, True)
    np.testing.assert_allclose(out.numpy(), w.numpy() @ v, rtol=1e-5, atol=1e-6)
    assert (w.numpy() == 0).any()


@pytest.mark.parametrize("shapes", [
    [(2, 3, 0, 4), (2, 3, 5, 4), (2, 3, 5, 6)],  # no queries
    [(2, 3, 2, 4), (2, 3, 0, 4), (2, 3, 0, 6)],  # no keys: zeros
])
def test_empty_queries_or_keys(shapes):
    check_op(shapes, lambda lib, q, k, v: _sdpa(lib, q, k, v), grad=False)
