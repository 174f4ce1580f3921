"""Single ops and layers through ONNX: each exported, fully checked, and run in onnxruntime
against ember, with a second batch size through a dynamic axis where the op allows one."""

import pytest

import ember
import ember.nn as nn
import ember.nn.functional as F
from tests.onnx._util import Lambda, op_types, roundtrip

B = {"in0": {0: "batch"}}


def _fn(f, shape, dyn=B, other_batch=3, **modules):
    x = ember.randn(*shape)
    x2 = ember.randn(other_batch, *shape[1:])
    return roundtrip(Lambda(lambda m, x: f(m, x), **modules), (x,), dyn, others=[(x2,)])


@pytest.mark.parametrize("f", [
    lambda m, x: F.gelu(x), lambda m, x: F.gelu(x, approximate="tanh"), lambda m, x: F.silu(x),
    lambda m, x: F.leaky_relu(x, 0.2), lambda m, x: F.elu(x, 0.7), lambda m, x: F.selu(x),
    lambda m, x: F.celu(x, 1.5), lambda m, x: F.softplus(x), lambda m, x: F.softplus(x, 2.0),
    lambda m, x: F.hardswish(x), lambda m, x: F.hardsigmoid(x), lambda m, x: F.mish(x),
    lambda m, x: F.relu6(x), lambda m, x: F.logsigmoid(x), lambda m, x: F.softsign(x),
    lambda m, x: F.tanhshrink(x), lambda m, x: F.softshrink(x, 0.3),
    lambda m, x: F.hardshrink(x, 0.3), lambda m, x: F.threshold(x, 0.1, -2.0),
    lambda m, x: F.softmax(x, -1), lambda m, x: F.log_softmax(x, 1), lambda m, x: x.tanh(),
    lambda m, x: x.sigmoid(), lambda m, x: x.exp() - x.abs().sqrt() + x.abs().log1p(),
    lambda m, x: x.abs().rsqrt() + x.square() + x.clamp(-0.5, 0.5) + x.erf(),
    lambda m, x: x.floor() + x.ceil() + x.sign() - x.neg() + x.reciprocal(),
    lambda m, x: ember.maximum(x, 0.2 * x) / (1 + x * x) ** 0.5,
    lambda m, x: ember.where(x > 0, x, 0.5 * x).masked_fill(x < -1.0, 3.0),
    lambda m, x: (x >= 0).float() + (x != 0.5).float() + ((x < 1) & (x > -1)).float(),
], ids=lambda f: None)
def test_elementwise_and_activations(f):
    _fn(f, (2, 4, 6))


@pytest.mark.parametrize("f", [
    lambda m, x: x.sum(), lambda m, x: x.sum(1), lambda m, x: x.mean((1, 2), keepdim=True),
    lambda m, x: x.amax(-1), lambda m, x: x.amin(1, keepdim=True), lambda m, x: x.var(1),
    lambda m, x: x.std(-1, keepdim=True), lambda m, x: x.logsumexp(2), lambda m, x: x.cumsum(1),
    lambda m, x: x @ x.transpose(1, 2), lambda m, x: ember.einsum("bij,bkj->bik", x, x),
], ids=lambda f: None)
def test_reductions_and_matmul(f):
    _fn(f, (2, 4, 6))


@pytest.mark.parametrize("f", [
    lambda m, x: x.view(x.shape[0], -1), lambda m, x: x.reshape(-1, 3),
    lambda m, x: x.flatten(1), lambda m, x: x.permute(2, 0, 1), lambda m, x: x.transpose(0, 1),
    lambda m, x: x.unsqueeze(1).squeeze(1), lambda m, x: x[:, None, 1:3, ::2],
    lambda m, x: x[..., -1], lambda m, x: x[:, 1], lambda m, x: x[:, -2:],
    lambda m, x: x[:, ember.tensor([2, 0, 2])], lambda m, x: ember.cat([x, x * 2], 1),
    lambda m, x: ember.stack([x, x], -1), lambda m, x: x.chunk(2, -1)[1],
    lambda m, x: x.split([1, 3], 1)[0] * 2, lambda m, x: x.unbind(1)[2],
    lambda m, x: x.narrow(2, 1, 3), lambda m, x: x.flip(1), lambda m, x: x.repeat(1, 2, 1),
    lambda m, x: x[:, :1].expand(-1, 5, -1), lambda m, x: x.tril() + x.triu(1),
    lambda m, x: x.index_select(2, ember.tensor([5, 0])),
    lambda m, x: ember.gather(x, 2, (x[:, :, :2] > 10).long()),
    lambda m, x: F.pad(x, (1, 2)), lambda m, x: F.pad(x, (2, 1), mode="reflect"),
    lambda m, x: F.pad(x, (1, 1), mode="replicate"), lambda m, x: x.float().to(ember.float64),
], ids=lambda f: None)
def test_shape_and_indexing(f):
    _fn(f, (2, 4, 6))


def test_reshape_with_two_dynamic_axes_uses_shape_reads():
    proto = roundtrip(Lambda(lambda m, x: x.reshape(x.shape[0], x.shape[1], 2, 3).sum(-1)),
                      (ember.randn(2, 5, 6),), {"in0": {0: "b", 1: "t"}},
                      others=[(ember.randn(4, 3, 6),)])
    assert "Reshape" in op_types(proto)


@pytest.mark.parametrize("layer, shape", [
    (lambda: nn.Conv1d(4, 6, 3, padding=2, dilation=2, groups=2), (2, 4, 11)),
    (lambda: nn.Conv2d(3, 6, (3, 2), stride=(2, 1), padding=(1, 0), groups=3), (2, 3, 9, 8)),
    (lambda: nn.Conv2d(3, 4, 3, padding="same", dilation=2, bias=False), (2, 3, 8, 8)),
    (lambda: nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1), (2, 4, 5, 5)),
    (lambda: nn.ConvTranspose1d(4, 2, 4, stride=2), (2, 4, 6)),
    (lambda: nn.MaxPool2d(3, 2, padding=1, ceil_mode=True), (2, 3, 8, 8)),
    (lambda: nn.MaxPool1d(2), (2, 3, 9)),
    (lambda: nn.AvgPool2d(3, 2, padding=1, count_include_pad=False), (2, 3, 8, 8)),
    (lambda: nn.AvgPool2d(2, ceil_mode=True), (2, 3, 7, 7)),
    (lambda: nn.AvgPool1d(3, 1, 1), (2, 3, 7)),
    (lambda: nn.AdaptiveAvgPool2d((7, 7)), (2, 3, 3, 3)),
    (lambda: nn.AdaptiveAvgPool2d((2, 3)), (2, 3, 5, 7)),
    (lambda: nn.AdaptiveAvgPool2d(2), (2, 3, 4, 4)),
    (lambda: nn.AdaptiveAvgPool1d(4), (2, 3, 10)),
    (lambda: nn.AdaptiveMaxPool2d(1), (2, 3, 5, 5)),
    (lambda: nn.BatchNorm1d(5), (2, 5)), (lambda: nn.BatchNorm1d(5, affine=False), (2, 5, 7)),
    (lambda: nn.BatchNorm2d(3), (2, 3, 4, 4)), (lambda: nn.LayerNorm(6), (2, 4, 6)),
    (lambda: nn.LayerNorm((4, 6), elementwise_affine=False), (2, 4, 6)),
    (lambda: nn.GroupNorm(2, 4), (2, 4, 3, 3)), (lambda: nn.InstanceNorm2d(3), (2, 3, 4, 4)),
    (lambda: nn.PReLU(3), (2, 3, 4)), (lambda: nn.Linear(6, 5), (2, 4, 6)),
    (lambda: nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(24, 3)), (2, 4, 6)),
], ids=lambda v: None)
def test_layers(layer, shape):
    m = layer()
    for name, b in m.named_buffers():  # non-trivial running statistics
        if name.endswith("running_mean"):
            b.copy_(ember.randn(*b.shape) * 0.1)
        elif name.endswith("running_var"):
            b.copy_(ember.rand(*b.shape) + 0.5)
    _fn(lambda mm, x: mm.layer(x), shape, layer=m)


@pytest.mark.parametrize("make", [
    lambda: nn.LSTM(5, 7, num_layers=2, bidirectional=True, batch_first=True),
    lambda: nn.GRU(5, 7, num_layers=2, bidirectional=True),
    lambda: nn.RNN(5, 7, nonlinearity="relu", batch_first=True),
    lambda: nn.LSTM(5, 7, bias=False),
], ids=["lstm-bi-2", "gru-bi-2", "rnn-relu", "lstm-nobias"])
def test_recurrent_layers_with_initial_state(make):
    rnn = make()
    lstm = isinstance(rnn, nn.LSTM)
    bdim = 0 if rnn.batch_first else 1
    layers = rnn.num_layers * (2 if rnn.bidirectional else 1)

    def inputs(b, t):
        x = ember.randn(*((b, t, 5) if rnn.batch_first else (t, b, 5)))
        return (x, ember.randn(layers, b, 7)) + ((ember.randn(layers, b, 7),) if lstm else ())

    def fwd(m, x, h, c=None):
        return m.rnn(x, (h, c) if lstm else h)

    dyn = {"in0": {bdim: "batch"}, "in1": {1: "batch"}, "in2": {1: "batch"}}
    roundtrip(Lambda(fwd, rnn=rnn), inputs(2, 4), dyn, others=[inputs(3, 4)])


def test_multihead_attention_and_transformer_layer():
    mha = nn.MultiheadAttention(16, 4, batch_first=True)
    roundtrip(Lambda(lambda m, x: m.mha(x, x, x)[0], mha=mha), (ember.randn(2, 5, 16),), B,
              others=[(ember.randn(3, 5, 16),)])
    layer = nn.TransformerEncoderLayer(16, 4, 32, batch_first=True)
    roundtrip(layer, (ember.randn(2, 5, 16),), B, others=[(ember.randn(3, 5, 16),)])


def test_sdpa_masks():
    causal = Lambda(lambda m, q: F.scaled_dot_product_attention(q, q, q, is_causal=True))
    roundtrip(causal, (ember.randn(2, 3, 5, 4),), B, others=[(ember.randn(1, 3, 5, 4),)])
    keep = ember.tensor([[True, True, False, True, False]])
    boolmask = Lambda(lambda m, q: F.scaled_dot_product_attention(q, q, q, attn_mask=keep))
    roundtrip(boolmask, (ember.randn(2, 3, 5, 4),), B, others=[(ember.randn(1, 3, 5, 4),)])


def test_embedding_and_int_inputs():
    emb = nn.Embedding(10, 4, padding_idx=0)
    roundtrip(Lambda(lambda m, i: m.emb(i).sum(1), emb=emb), (ember.tensor([[1, 2, 0]]),),
              {"in0": {0: "b", 1: "t"}}, others=[(ember.tensor([[3, 4], [5, 9]]),)])
