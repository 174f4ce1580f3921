"""ember.text.BertModel against a plain torch BERT (tests/text/_torch_bert.py) on random weights:
embeddings, self-attention with padding, one layer, the whole model; outputs and all gradients."""

import numpy as np
import pytest
import torch

import ember
from ember.text import BertConfig, BertModel
from ember.text import bert as ebert
from tests.harness import assert_close, check_module, copy_params
from tests.text import _torch_bert as tbert

SMALL = {"vocab_size": 50, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
         "intermediate_size": 64, "max_position_embeddings": 16, "type_vocab_size": 2}


def config(dropout=0.0, **kw):
    return BertConfig(**{**SMALL, **kw}, hidden_dropout_prob=dropout,
                      attention_probs_dropout_prob=dropout)


IDS = np.random.default_rng(0).integers(1, 50, (3, 7)).astype(np.int64)
MASK = np.array([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5], dtype=np.int64)
TYPES = np.array([[0] * 4 + [1] * 3, [0] * 7, [1] * 7], dtype=np.int64)


def _is_torch(m):
    return isinstance(m, torch.nn.Module)


def _mask(m, mask):
    if _is_torch(m):
        return tbert.extended_mask(torch.tensor(mask))
    return ebert._additive_mask(ember.tensor(mask), ember.float32)


def _randomize(tmod, seed=0):
    """Non-trivial LayerNorm and embedding rows (torch initialises them to 1 / 0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in tmod.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)


@pytest.mark.parametrize("with_types", [False, True])
def test_embeddings(with_types):
    c = config()
    tm, em = tbert.Embeddings(c), ebert.BertEmbeddings(c)
    _randomize(tm)
    check_module(tm, em, [IDS, TYPES],
                 forward=lambda m, ids, types: m(ids, types if with_types else None))


@pytest.mark.parametrize("padded", [False, True])
def test_self_attention(padded):
    c = config()
    tm, em = tbert.SelfAttention(c), ebert.BertSelfAttention(c)
    check_module(tm, em, [(3, 7, 32)],
                 forward=lambda m, h: m(h, _mask(m, MASK) if padded else None))


def test_self_attention_with_a_hooked_projection_runs_it_unfused():
    """query/key/value run as one product only while nothing observes them: a forward hook on
    one of them sees its own output, and the result and gradients are the same."""
    c = config()
    tm, em = tbert.SelfAttention(c), ebert.BertSelfAttention(c)
    seen = []
    em.key.register_forward_hook(lambda mod, args, out: seen.append(tuple(out.shape)))
    check_module(tm, em, [(3, 7, 32)], forward=lambda m, h: m(h, _mask(m, MASK)))
    assert seen and seen[0] == (3, 7, 32)
    assert not ebert._plain_linear(em.key) and ebert._plain_linear(em.query)


def test_self_attention_inference_path_gives_the_training_path_values():
    """Without a gradient, the fused q/k/v product adds its bias in a split pass and attention
    normalises its output instead of the probabilities: values as with gradients."""
    em = ebert.BertSelfAttention(config())
    h = ember.tensor(np.random.default_rng(4).standard_normal((3, 7, 32)).astype(np.float32))
    mask = _mask(em, MASK)
    with ember.no_grad():
        fast = em(h, mask)
    slow = em(h.detach().requires_grad_(True), mask)
    np.testing.assert_allclose(fast.numpy(), slow.detach().numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("with_residual", [False, True])
def test_add_bias_residual_split_over_two_threads(idle, monkeypatch, with_residual):
    monkeypatch.setattr(ebert, "_ADD_BLOCK", 3 * 5)  # 3-row blocks: 40 rows split
    rng = np.random.default_rng(5)
    y, r = (rng.standard_normal((8, 5, 5)).astype(np.float32) for _ in range(2))
    b = rng.standard_normal(5).astype(np.float32)
    want = y + b + r if with_residual else y + b
    ebert._add_bias_residual(y, b, r if with_residual else None)
    np.testing.assert_array_equal(y, want)


def test_intermediate_inference_path_adds_the_bias_inside_gelu():
    """Without a gradient, dense + exact gelu runs as the bias-free product and gelu(y + bias)
    in place: same values as the module path (and torch); with a hook on dense, the hook runs."""
    c = config()
    tm, em = tbert.Intermediate(c), ebert.BertIntermediate(c)
    copy_params(tm, em)
    h = np.random.default_rng(1).standard_normal((3, 7, 32)).astype(np.float32) * 3
    with ember.no_grad():
        fast = em(ember.tensor(h))
        slow = em.intermediate_act_fn(em.dense(ember.tensor(h)))
    np.testing.assert_array_equal(fast.numpy(), slow.numpy())
    h1 = h / 3  # torch's float32 gelu loses ~1e-6 to 1 + erf cancellation below -3
    with torch.no_grad(), ember.no_grad():
        assert_close(em(ember.tensor(h1)), tm(torch.tensor(h1)), 1e-5, 1e-6, "intermediate")
    seen = []
    em.dense.register_forward_hook(lambda mod, args, out: seen.append(out.numpy().copy()))
    with ember.no_grad():
        hooked = em(ember.tensor(h))
        dense = em.dense(ember.tensor(h)).numpy()
    np.testing.assert_array_equal(hooked.numpy(), fast.numpy())
    np.testing.assert_array_equal(seen[0], dense)


@pytest.mark.parametrize("split", [False, True])
def test_output_inference_path_adds_bias_and_residual_in_place(split, idle, monkeypatch):
    """Without a gradient, dense(h) + residual runs as the bias-free product with bias and
    residual added in place (row blocks, split over two threads when large): same values as
    the module path; a hook on the dense or the dropout puts the module path back."""
    if split:
        monkeypatch.setattr(ebert, "_ADD_BLOCK", 2 * 32)  # 2-row blocks: 21 rows split
    c = config()
    tm, em = tbert.AddNorm(c, c.intermediate_size), ebert.BertLayerOutput(c)
    copy_params(tm, em)
    rng = np.random.default_rng(2)
    h, r = rng.standard_normal((3, 7, 64)).astype(np.float32), rng.standard_normal(
        (3, 7, 32)).astype(np.float32)
    calls = []
    real = ebert.parallel_for
    monkeypatch.setattr(ebert, "parallel_for", lambda n, fn, **kw: (calls.append(n),
                                                                    real(n, fn, **kw)))
    with ember.no_grad():
        fast = ebert._dense_residual(em.dense, em.dropout, ember.tensor(h), ember.tensor(r))
        slow = em.dropout(em.dense(ember.tensor(h))) + ember.tensor(r)
        out = em(ember.tensor(h), ember.tensor(r))
    assert calls
    np.testing.assert_array_equal(fast.numpy(), slow.numpy())
    with torch.no_grad():
        assert_close(out, tm(torch.tensor(h), torch.tensor(r)), 1e-5, 1e-6, "output")
    em.dropout.register_forward_hook(lambda *a: calls.append("hook"))
    with ember.no_grad():
        hooked = em(ember.tensor(h), ember.tensor(r))
    assert calls[-1] == "hook"
    np.testing.assert_array_equal(hooked.numpy(), out.numpy())


@pytest.mark.parametrize("act", ["gelu", "gelu_new", "relu"])
def test_layer(act):
    c = config(hidden_act=act)
    tm, em = tbert.Layer(c), ebert.BertLayer(c)
    if act != "gelu":
        tm.intermediate.forward = lambda h, _d=tm.intermediate.dense: (
            torch.nn.functional.gelu(_d(h), approximate="tanh") if act == "gelu_new"
            else torch.relu(_d(h)))
    _randomize(tm)
    check_module(tm, em, [(3, 7, 32)], forward=lambda m, h: m(h, _mask(m, MASK)),
                 atol=1e-5)  # two LayerNorms with random (not unit) scales: float32 rounding


@pytest.mark.parametrize("train", [False, True])
def test_model_padded_with_pooler(train):
    c = config()
    tm, em = tbert.TorchBert(c), BertModel(c)
    _randomize(tm)
    check_module(tm, em, [IDS, MASK, TYPES], train=train, atol=1e-5,  # see test_layer
                 forward=lambda m, ids, mask, types: m(ids, mask, types))


def test_model_dropout_eval_matches_and_train_is_random():
    c = config(dropout=0.3)
    tm, em = tbert.TorchBert(c, add_pooling_layer=False), BertModel(c, add_pooling_layer=False)
    check_module(tm, em, [IDS, MASK], train=False, atol=1e-5,  # see test_layer
                 forward=lambda m, ids, mask: m(ids, mask)[0])
    em.train()
    a = em(ember.tensor(IDS), ember.tensor(MASK)).last_hidden_state.detach().numpy()
    b = em(ember.tensor(IDS), ember.tensor(MASK)).last_hidden_state.detach().numpy()
    assert not np.allclose(a, b)


def test_padding_does_not_change_real_tokens():
    c = config()
    em = BertModel(c).eval()
    short = em(ember.tensor(IDS[1:2, :4])).last_hidden_state.detach().numpy()
    padded = em(ember.tensor(IDS[1:2]), ember.tensor(MASK[1:2])).last_hidden_state.detach().numpy()
    assert_close(padded[:, :4], short, 1e-5, 1e-6)


def test_all_padding_row_matches_torch():
    """A row with no real token: Hugging Face's additive mask gives uniform attention."""
    c = config()
    tm, em = tbert.TorchBert(c), BertModel(c)
    copy_params(tm, em)
    mask = MASK.copy()
    mask[2] = 0
    t = tm.eval()(torch.tensor(IDS), torch.tensor(mask))[0].detach().numpy()
    e = em.eval()(ember.tensor(IDS), ember.tensor(mask)).last_hidden_state.detach().numpy()
    assert_close(e, t, 1e-5, 1e-5)


def test_state_dict_keys_are_hugging_faces():
    keys = set(BertModel(config()).state_dict())
    assert "embeddings.position_ids" not in keys
    for k in ["embeddings.word_embeddings.weight", "embeddings.LayerNorm.bias",
              "encoder.layer.1.attention.self.query.weight",
              "encoder.layer.0.attention.output.LayerNorm.weight",
              "encoder.layer.0.intermediate.dense.bias", "encoder.layer.1.output.dense.weight",
              "pooler.dense.weight"]:
        assert k in keys
    assert set(tbert.TorchBert(config()).state_dict()) == keys
    assert not any(k.startswith("pooler") for k in BertModel(config(), False).state_dict())


def test_config_from_dict_ignores_unknown_keys():
    c = BertConfig.from_dict({**SMALL, "architectures": ["BertModel"], "layer_norm_eps": 1e-7})
    assert c.hidden_size == 32 and c.layer_norm_eps == 1e-7
    assert BertModel(c).embeddings.LayerNorm.eps == 1e-7


@pytest.mark.parametrize("kw, msg", [
    ({"num_attention_heads": 5}, "hidden_size (32) must be a multiple of num_attention_heads"),
    ({"hidden_act": "swish2"}, "hidden_act 'swish2' is not supported"),
    ({"position_embedding_type": "relative_key"}, "position_embedding_type='absolute'"),
])
def test_config_errors(kw, msg):
    with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        config(**kw)


def test_input_errors():
    m = BertModel(config())
    with pytest.raises(ValueError, match="integer Tensor .batch, seq_len., got shape .2, 3, 4."):
        m(ember.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="got list"):
        m([[1, 2]])
    with pytest.raises(ValueError, match=r"attention_mask shape \(3, 6\) must equal input_ids"):
        m(ember.tensor(IDS), ember.tensor(MASK[:, :6]))
    with pytest.raises(ValueError, match="sequence length 20 exceeds max_position_embeddings 16"):
        m(ember.ones(1, 20, dtype=ember.int64))


def test_onnx_export_under_no_grad_traces_the_module_path(tmp_path):
    """The inference-only fused paths work on raw arrays: an export traced under no_grad must
    not take them (its graph would lack the biases and gelu)."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from ember.onnx import export

    model = BertModel(config(), add_pooling_layer=False).eval()
    ids, mask = ember.tensor(IDS), ember.tensor(MASK)
    path = str(tmp_path / "bert.onnx")
    with ember.no_grad():
        export(model, (ids, mask), path, input_names=["ids", "mask"], output_names=["h"])
        want = model(ids, attention_mask=mask).last_hidden_state.numpy()
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"ids": IDS, "mask": MASK})[0]
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)
