"""Every zoo model, the LSTM examples and the BERT encoder export, pass the full ONNX check and
match ember in onnxruntime (rtol 1e-3, atol 1e-5), also at another batch size (dynamic axis)."""

import importlib.util
import os

import pytest

import ember
import ember.nn as nn
from ember.vision import models
from tests.onnx._util import op_types, roundtrip

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BATCH = {"in0": {0: "batch"}}


def _example(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "examples",
                                                                     name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("build, shape", [
    (lambda: models.MLP(), (1, 8, 8)),
    (lambda: models.LeNet(), (3, 32, 32)),
    (lambda: models.CNN(in_channels=1, image_size=8), (1, 8, 8)),
    (lambda: models.resnet20(), (3, 32, 32)),
    (lambda: models.resnet18(num_classes=10), (3, 64, 64)),
], ids=["mlp", "lenet", "cnn", "resnet20", "resnet18"])
def test_vision_zoo(build, shape):
    proto = roundtrip(build(), (ember.randn(2, *shape),), BATCH,
                      others=[(ember.randn(5, *shape),)])
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == list(shape)


def test_vgg11_small_input():
    net = models.vgg11(num_classes=10)
    proto = roundtrip(net, (ember.randn(1, 3, 32, 32),), BATCH,
                      others=[(ember.randn(2, 3, 32, 32),)])
    assert op_types(proto).count("Conv") == 8
    # 1x1 features pooled to 7x7: the exact averaging-matrix form, not a resize.
    assert "MatMul" in op_types(proto)


def test_vgg_bn_features_full_check():
    net = nn.Sequential(models.make_layers([16, "M", 32, "M"], batch_norm=True),
                        nn.AdaptiveAvgPool2d((7, 7)), nn.Flatten(), nn.Linear(32 * 49, 10))
    roundtrip(net, (ember.randn(2, 3, 16, 16),), BATCH, others=[(ember.randn(3, 3, 16, 16),)])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_rnn_digits_example(cell):
    proto = roundtrip(_example("rnn_digits").RowReader(cell), (ember.randn(2, 1, 8, 8),), BATCH,
                      others=[(ember.randn(7, 1, 8, 8),)])
    assert cell.upper() in op_types(proto)


def test_char_lstm_example_dynamic_batch_and_sequence():
    net = _example("char_lstm").CharLSTM(40, embed=16, hidden=32, layers=2)
    ids = ember.randint(0, 40, (2, 12))
    proto = roundtrip(net, (ids,), {"in0": {0: "batch", 1: "seq"}},
                      others=[(ember.randint(0, 40, (3, 5)),)])
    outs = [o.name for o in proto.graph.output]
    assert len(outs) == 3  # logits, (h_n, c_n)
    assert op_types(proto).count("LSTM") == 2 and "Gather" in op_types(proto)


def _bert_config():
    from ember.text import BertConfig

    return BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=64, max_position_embeddings=64)


def test_bert_encoder_dynamic_batch_and_sequence():
    from ember.text import BertModel

    net = BertModel(_bert_config())
    ids = ember.randint(1, 60, (2, 9))
    proto = roundtrip(net, (ids,), {"in0": {0: "batch", 1: "seq"}},
                      others=[(ember.randint(1, 60, (3, 17)),), (ember.randint(1, 60, (1, 4)),)])
    ops = op_types(proto)
    assert {"Erf", "Softmax", "LayerNormalization", "MatMul"} <= set(ops)


def _padded(n, length, lengths, lo=1, hi=60):
    ids = ember.randint(lo, hi, (n, length))
    mask = ember.tensor([[1] * k + [0] * (length - k) for k in lengths])
    return ids * mask, mask  # padding positions hold token 0 ([PAD]), as a tokenizer writes


def _mean_pooled(m, ids, mask):
    h = m.bert(ids, attention_mask=mask).last_hidden_state
    w = mask.float().unsqueeze(-1)
    return (h * w).sum(1) / w.sum(1)  # mean pooling over the real tokens


def test_bert_encoder_with_a_padding_mask():
    from ember.text import BertModel
    from tests.onnx._util import Lambda

    net = Lambda(_mean_pooled, bert=BertModel(_bert_config(), add_pooling_layer=False))
    axes = {"in0": {0: "batch", 1: "seq"}, "in1": {0: "batch", 1: "seq"}}
    roundtrip(net, _padded(2, 8, [8, 5]), axes,
              others=[_padded(3, 6, [6, 2, 4]), _padded(1, 11, [11])])


def test_bert_exported_with_an_unpadded_mask_still_reads_the_mask():
    # Regression: BertModel drops an all-ones mask (fast path); exported from such an example
    # the graph ignored its mask input and gave silently wrong outputs for padded batches.
    from ember.text import BertModel

    net = BertModel(_bert_config(), add_pooling_layer=False)
    ids = ember.randint(1, 60, (2, 8))
    axes = {"in0": {0: "batch", 1: "seq"}, "in1": {0: "batch", 1: "seq"}}
    roundtrip(net, (ids, ember.ones(2, 8, dtype=ember.int64)), axes,
              others=[_padded(2, 8, [8, 3]), _padded(3, 5, [1, 5, 2])])
    assert not ember.onnx.is_in_onnx_export()


def _minilm(add_pooling_layer=False):
    from ember.text import BertModel

    try:
        return BertModel.from_pretrained("all-MiniLM-L6-v2", add_pooling_layer=add_pooling_layer)
    except (FileNotFoundError, ValueError, ImportError, OSError) as e:
        pytest.skip(f"all-MiniLM-L6-v2 weights not installed: {e}")


def test_pretrained_minilm_encoder():
    net = _minilm()
    ids = ember.randint(1000, 20000, (2, 16))
    roundtrip(net, (ids,), {"in0": {0: "batch", 1: "seq"}},
              others=[(ember.randint(1000, 20000, (3, 40)),)])


def test_pretrained_minilm_sentence_embeddings_with_padding():
    """The real all-MiniLM-L6-v2 encoder + mean pooling, padded attention masks, dynamic batch
    and sequence axes: onnxruntime equals ember (rtol 1e-3, atol 1e-5)."""
    from tests.onnx._util import Lambda

    net = Lambda(_mean_pooled, bert=_minilm())
    axes = {"in0": {0: "batch", 1: "seq"}, "in1": {0: "batch", 1: "seq"}}
    proto = roundtrip(net, _padded(2, 16, [16, 9], 1000, 20000), axes,
                      others=[_padded(4, 40, [40, 1, 23, 7], 1000, 20000),
                              _padded(1, 5, [5], 1000, 20000)])
    dims = [d.dim_param for d in proto.graph.input[1].type.tensor_type.shape.dim]
    assert dims == ["batch", "seq"]
