"""Transformer encoder/decoder layers and stacks against torch with the same weights."""

import numpy as np
import pytest
import torch

import ember
from ember import nn
from tests.harness import check_module

# LayerNorm + attention + two Linear layers in a row: float32 sums differ in order from torch's
RT, AT = 1e-4, 1e-5


def _pair(name, *args, **kw):
    torch.manual_seed(0)
    return getattr(torch.nn, name)(*args, **kw), getattr(nn, name)(*args, **kw)


def _enc_pair(layers, norm, **kw):
    torch.manual_seed(0)
    tl = torch.nn.TransformerEncoderLayer(8, 2, **kw)
    el = nn.TransformerEncoderLayer(8, 2, **kw)
    tn = torch.nn.LayerNorm(8) if norm else None
    en = nn.LayerNorm(8) if norm else None
    return (torch.nn.TransformerEncoder(tl, layers, tn, enable_nested_tensor=False),
            nn.TransformerEncoder(el, layers, en))


def _mask(m, a):
    return None if a is None else (torch if isinstance(m, torch.nn.Module) else ember).tensor(a)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_eval_and_train(norm_first, activation):
    kw = {"dim_feedforward": 16, "norm_first": norm_first, "activation": activation}
    tm, em = _pair("TransformerEncoderLayer", 8, 2, **kw)
    check_module(tm, em, [(5, 3, 8)], train=False, rtol=RT, atol=AT)
    tm, em = _pair("TransformerEncoderLayer", 8, 2, dropout=0.0, **kw)
    check_module(tm, em, [(5, 3, 8)], train=True, rtol=RT, atol=AT)


def test_encoder_layer_batch_first_masks_callable_activation():
    tm, em = _pair("TransformerEncoderLayer", 8, 2, dim_feedforward=16, dropout=0.0,
                   batch_first=True, activation=torch.nn.functional.silu)
    em.activation = nn.functional.silu
    kpm = np.zeros((3, 5), bool)
    kpm[0, 3:] = True
    cm = np.triu(np.full((5, 5), -np.inf, np.float32), 1)
    check_module(tm, em, [(3, 5, 8)], rtol=RT, atol=AT,
                 forward=lambda m, x: m(x, src_mask=_mask(m, cm), src_key_padding_mask=_mask(m, kpm)))
    check_module(tm, em, [(3, 5, 8)], rtol=RT, atol=AT,
                 forward=lambda m, x: m(x, src_mask=_mask(m, cm), is_causal=True))


def test_encoder_layer_unbatched_and_no_bias():
    tm, em = _pair("TransformerEncoderLayer", 8, 2, dim_feedforward=16, dropout=0.0, bias=False)
    check_module(tm, em, [(5, 8)], rtol=RT, atol=AT)


@pytest.mark.parametrize("norm", [False, True])
def test_encoder_stack(norm):
    tm, em = _enc_pair(2, norm, dim_feedforward=16, dropout=0.0)
    assert list(em.state_dict()) == list(tm.state_dict())
    check_module(tm, em, [(5, 3, 8)], rtol=RT, atol=AT)
    cm = nn.Transformer.generate_square_subsequent_mask(5).numpy()
    check_module(tm, em, [(5, 3, 8)], rtol=RT, atol=AT, train=False,
                 forward=lambda m, x: m(x, mask=_mask(m, cm)))


def test_encoder_layer_state_dict_names():
    tm, em = _pair("TransformerEncoderLayer", 8, 2)
    assert list(em.state_dict()) == list(tm.state_dict())
    assert [n for n, _ in em.named_children()] == [n for n, _ in tm.named_children()]


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer(norm_first):
    tm, em = _pair("TransformerDecoderLayer", 8, 2, dim_feedforward=16, dropout=0.0,
                   norm_first=norm_first)
    assert list(em.state_dict()) == list(tm.state_dict())
    cm = np.triu(np.full((4, 4), -np.inf, np.float32), 1)
    check_module(tm, em, [(4, 3, 8), (5, 3, 8)], rtol=RT, atol=AT,
                 forward=lambda m, t, mem: m(t, mem, tgt_mask=_mask(m, cm)))


def test_transformer_full():
    torch.manual_seed(0)
    kw = {"d_model": 8, "nhead": 2, "num_encoder_layers": 2, "num_decoder_layers": 1,
          "dim_feedforward": 16, "dropout": 0.0, "batch_first": True}
    tm, em = torch.nn.Transformer(**kw), nn.Transformer(**kw)
    assert list(em.state_dict()) == list(tm.state_dict())
    cm = nn.Transformer.generate_square_subsequent_mask(4).numpy()
    np.testing.assert_array_equal(cm, torch.nn.Transformer.generate_square_subsequent_mask(4))
    check_module(tm, em, [(3, 5, 8), (3, 4, 8)], rtol=RT, atol=AT,
                 forward=lambda m, s, t: m(s, t, tgt_mask=_mask(m, cm)))


def test_errors_and_dropout():
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")
    m = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                       dim_feedforward=16)
    with pytest.raises(RuntimeError, match="the batch number of src and tgt must be equal"):
        m(ember.randn(5, 3, 8), ember.randn(4, 2, 8))
    with pytest.raises(RuntimeError, match="the feature number of src and tgt must be equal"):
        m(ember.randn(5, 3, 6), ember.randn(4, 3, 6))
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.5)
    x = ember.randn(5, 3, 8)
    assert not np.allclose(layer(x).detach().numpy(), layer(x).detach().numpy())
    layer.eval()
    np.testing.assert_array_equal(layer(x).detach().numpy(), layer(x).detach().numpy())
