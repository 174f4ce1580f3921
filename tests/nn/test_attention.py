"""F.scaled_dot_product_attention (fused op) and nn.MultiheadAttention against torch; float64
gradchecks; masks; parameter layout; errors."""

import numpy as np
import pytest
import torch

import ember
from ember import nn
from tests.harness import check_gradcheck, check_module, check_op


def F(t):
    return t.nn.functional


def _bool(shape, seed=0, p=0.35):
    m = np.random.default_rng(seed).random(shape) > p
    m[..., 0] = True  # every query row keeps one key
    return m


# ---------------------------------------------------------------- scaled_dot_product_attention
@pytest.mark.parametrize("shapes", [
    [(2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7)],
    [(4, 5), (6, 5), (6, 7)],
    [(2, 3, 4, 5), (3, 6, 5), (6, 7)],          # key/value batch dims broadcast
])
def test_sdpa_plain(shapes):
    check_op(shapes, lambda t, q, k, v: F(t).scaled_dot_product_attention(q, k, v))


def test_sdpa_float_masks_get_gradients():
    for mshape in [(4, 6), (2, 1, 4, 6), (2, 3, 4, 6)]:
        check_op([(2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7), mshape],
                 lambda t, q, k, v, m: F(t).scaled_dot_product_attention(q, k, v, attn_mask=m))


def test_sdpa_bool_mask_causal_scale():
    check_op([(2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7), _bool((2, 1, 4, 6))],
             lambda t, q, k, v, m: F(t).scaled_dot_product_attention(q, k, v, attn_mask=m))
    check_op([(2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7)],
             lambda t, q, k, v: F(t).scaled_dot_product_attention(q, k, v, is_causal=True,
                                                                  scale=0.3))
    check_op([(2, 6, 5), (2, 6, 5), (2, 6, 5)],
             lambda t, q, k, v: F(t).scaled_dot_product_attention(q, k, v, is_causal=True))


def test_sdpa_fully_masked_row_gives_zeros():
    m = _bool((4, 6))
    m[1] = False
    check_op([(2, 4, 5), (2, 6, 5), (2, 6, 3), m],
             lambda t, q, k, v, m: F(t).scaled_dot_product_attention(q, k, v, attn_mask=m))


def test_sdpa_gqa():
    check_op([(2, 6, 4, 5), (2, 2, 6, 5), (2, 2, 6, 7)],
             lambda t, q, k, v: F(t).scaled_dot_product_attention(q, k, v, enable_gqa=True))


def test_sdpa_dropout():
    q = ember.randn(2, 3, 4, 5)
    a = F(ember).scaled_dot_product_attention(q, q, q, dropout_p=0.0)
    ember.manual_seed(5)
    b = F(ember).scaled_dot_product_attention(q, q, q, dropout_p=0.5)
    ember.manual_seed(5)
    c = F(ember).scaled_dot_product_attention(q, q, q, dropout_p=0.5)
    np.testing.assert_array_equal(b.numpy(), c.numpy())
    assert not np.allclose(a.numpy(), b.numpy())
    z = F(ember).scaled_dot_product_attention(q, q, q, dropout_p=1.0)
    assert not z.numpy().any()


def test_sdpa_gradcheck():
    fn = F(ember).scaled_dot_product_attention
    check_gradcheck([(2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7), (2, 3, 4, 6)],
                    lambda t, q, k, v, m: fn(q, k, v, attn_mask=m))
    check_gradcheck([(2, 6, 4, 5), (2, 2, 6, 5), (2, 2, 6, 7)],
                    lambda t, q, k, v: fn(q, k, v, enable_gqa=True, is_causal=True))
    check_gradcheck([(4, 5), (3, 6, 5), (6, 7)], lambda t, q, k, v: fn(q, k, v, scale=0.7))


def test_sdpa_float32():
    q = ember.randn(2, 4, 5, requires_grad=True)
    out = F(ember).scaled_dot_product_attention(q, q, q, attn_mask=ember.zeros(4, 4))
    out.sum().backward()
    assert out.dtype == ember.float32 and q.grad.dtype == ember.float32


def test_sdpa_errors():
    fn = F(ember).scaled_dot_product_attention
    q = ember.randn(2, 4, 5)
    with pytest.raises(RuntimeError, match="Explicit attn_mask should not be set when is_causal"):
        fn(q, q, q, attn_mask=ember.zeros(4, 4), is_causal=True)
    with pytest.raises(RuntimeError, match=r"query's last dim 5 must equal key's last dim 3"):
        fn(q, ember.randn(2, 4, 3), q)
    with pytest.raises(RuntimeError, match="same sequence length"):
        fn(q, q, ember.randn(2, 3, 5))
    with pytest.raises(RuntimeError, match="Expected query, key, and value to have the same dtype"):
        fn(q, q.double(), q)
    with pytest.raises(RuntimeError, match="enable_gqa=True"):
        fn(ember.randn(1, 4, 3, 5), ember.randn(1, 2, 3, 5), ember.randn(1, 2, 3, 5))
    with pytest.raises(RuntimeError, match="Expected attn_mask dtype to be bool or float"):
        fn(q, q, q, attn_mask=ember.zeros(4, 4, dtype=ember.int64))


@pytest.mark.parametrize("q,k,m,dtype", [
    ((1, 2, 3, 4), (1, 2, 3, 4), (4, 4), "float32"),
    ((1, 2, 3, 4), (1, 2, 3, 4), (4, 4), "bool"),
    ((2, 3, 4), (2, 5, 4), (3, 3, 5), "float32"),
])
def test_sdpa_mask_that_does_not_broadcast_raises_torch_error(q, k, m, dtype):
    # torch: RuntimeError 'The size of tensor a (3) must match the size of tensor b (4) at
    # non-singleton dimension 3'; ember raised NumPy's raw ValueError
    msgs = []
    for lib in (torch, ember):
        with pytest.raises(RuntimeError) as info:
            F(lib).scaled_dot_product_attention(lib.zeros(*q), lib.zeros(*k), lib.zeros(*k),
                                                attn_mask=lib.ones(*m, dtype=getattr(lib, dtype)))
        msgs.append(str(info.value))
    assert msgs[1] == msgs[0]


# ---------------------------------------------------------------- MultiheadAttention
def _pair(*args, **kw):
    torch.manual_seed(0)
    return torch.nn.MultiheadAttention(*args, **kw), nn.MultiheadAttention(*args, **kw)


def _masks(m, *arrays):
    lib = torch if isinstance(m, torch.nn.Module) else ember
    return [None if a is None else lib.tensor(a) for a in arrays]


def test_mha_self_attention_weights():
    tm, em = _pair(8, 2)
    check_module(tm, em, [(5, 3, 8)], forward=lambda m, x: m(x, x, x))
    check_module(tm, em, [(5, 3, 8)], forward=lambda m, x: m(x, x, x, average_attn_weights=False))
    check_module(tm, em, [(5, 8)], forward=lambda m, x: m(x, x, x))


def test_mha_cross_attention_no_weights():
    tm, em = _pair(8, 4, batch_first=True)
    check_module(tm, em, [(3, 5, 8), (3, 7, 8)], forward=lambda m, x, y: m(x, y, y)[0])
    check_module(tm, em, [(3, 5, 8), (3, 7, 8), (3, 7, 8)],
                 forward=lambda m, x, y, z: m(x, y, z, need_weights=False)[0])


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_bool_masks(need_weights):
    tm, em = _pair(8, 2)
    kpm = ~_bool((3, 7), 1)
    am = ~_bool((5, 7), 2)

    def fwd(m, x, y):
        k, a = _masks(m, kpm, am)
        out = m(x, y, y, key_padding_mask=k, attn_mask=a, need_weights=need_weights)
        return out if need_weights else out[0]

    check_module(tm, em, [(5, 3, 8), (7, 3, 8)], forward=fwd)


def test_mha_float_and_3d_masks():
    tm, em = _pair(8, 2, batch_first=True)
    check_module(tm, em, [(3, 5, 8), (6, 5, 7)], forward=lambda m, x, a: m(x, x[:, :1].expand(
        3, 7, 8), x[:, :1].expand(3, 7, 8), attn_mask=a))
    kpm = np.where(_bool((3, 5), 3), 0.0, -np.inf).astype(np.float32)
    check_module(tm, em, [(3, 5, 8), kpm], forward=lambda m, x, k: m(x, x, x, key_padding_mask=k))


def test_mha_causal():
    tm, em = _pair(8, 2, batch_first=True)
    cm = np.triu(np.full((5, 5), -np.inf, np.float32), 1)
    check_module(tm, em, [(3, 5, 8), cm],
                 forward=lambda m, x, a: m(x, x, x, attn_mask=a, is_causal=True,
                                           need_weights=False)[0])
    check_module(tm, em, [(3, 5, 8), cm], train=False,
                 forward=lambda m, x, a: m(x, x, x, attn_mask=a, is_causal=True))


def test_mha_kdim_vdim_bias_kv_zero_attn():
    tm, em = _pair(8, 4, kdim=5, vdim=6, batch_first=True, add_bias_kv=True, add_zero_attn=True)
    assert [n for n, _ in em.named_parameters()] == [n for n, _ in tm.named_parameters()]
    check_module(tm, em, [(3, 5, 8), (3, 7, 5), (3, 7, 6), (12, 5, 7)],
                 forward=lambda m, x, y, z, a: m(x, y, z, attn_mask=a))
    tm, em = _pair(8, 2, bias=False)
    check_module(tm, em, [(5, 3, 8)], forward=lambda m, x: m(x, x, x))


def test_mha_eval_with_dropout_and_train_without():
    tm, em = _pair(8, 2, dropout=0.3, batch_first=True)
    check_module(tm, em, [(3, 5, 8)], train=False, forward=lambda m, x: m(x, x, x))
    tm, em = _pair(8, 2, batch_first=True)
    check_module(tm, em, [(3, 5, 8)], train=True, forward=lambda m, x: m(x, x, x))


def test_mha_dropout_in_train_mode():
    m = nn.MultiheadAttention(8, 2, dropout=0.5)
    x = ember.randn(5, 3, 8)
    a, b = m(x, x, x)[0], m(x, x, x)[0]
    assert not np.allclose(a.detach().numpy(), b.detach().numpy())


def test_mha_state_dict_and_init():
    tm, em = _pair(16, 4)
    assert list(em.state_dict()) == list(tm.state_dict())
    assert repr(em) == repr(tm)
    w = em.in_proj_weight.detach().numpy()
    bound = np.sqrt(6 / (16 + 48))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    assert not em.in_proj_bias.detach().numpy().any()
    assert not em.out_proj.bias.detach().numpy().any()
    tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in em.state_dict().items()})


def test_mha_errors():
    m = nn.MultiheadAttention(8, 2)
    x = ember.randn(5, 3, 8)
    with pytest.raises(AssertionError, match="embed_dim must be divisible by num_heads"):
        nn.MultiheadAttention(8, 3)
    with pytest.raises(ValueError, match="embed_dim and num_heads must be greater than 0"):
        nn.MultiheadAttention(0, 2)
    with pytest.raises(AssertionError, match="was expecting embedding dimension of 8, but got 6"):
        m(ember.randn(5, 3, 6), ember.randn(5, 3, 6), ember.randn(5, 3, 6))
    with pytest.raises(AssertionError, match="expected `key` and `value` to be 3-D"):
        m(x, ember.randn(5, 8), ember.randn(5, 8))
    with pytest.raises(RuntimeError, match=r"The shape of the 2D attn_mask is .*\[4, 5\].*"
                                           r"should be \(5, 5\)"):
        m(x, x, x, attn_mask=ember.zeros(4, 5))
    with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
        m(x, x, x, is_causal=True)
    with pytest.raises(AssertionError, match=r"Expected key_padded_mask.shape\[1\] to be 5"):
        m(x, x, x, key_padding_mask=ember.zeros(3, 4, dtype=ember.bool))
