"""ember.nn against torch.nn as an API: module paths, the functional list, reprs of nested models.

PyTorch users import layers from ``torch.nn.modules.<file>``; every layer ember has must resolve
at the same path, and a nested model must print as PyTorch prints it (with "torch." -> "ember.").
"""

import importlib
import pkgutil

import torch
import torch.nn.modules

import ember
import ember.nn.functional as F


def test_every_layer_resolves_at_pytorchs_module_path():
    wrong = []
    for info in pkgutil.iter_modules(torch.nn.modules.__path__):
        names = getattr(importlib.import_module(f"torch.nn.modules.{info.name}"), "__all__", [])
        for n in names:
            if not hasattr(ember.nn, n):
                continue  # a layer ember does not have (Conv3d, LazyLinear, ...)
            try:
                mod = importlib.import_module(f"ember.nn.modules.{info.name}")
            except ImportError:
                mod = None
            if getattr(mod, n, None) is not getattr(ember.nn, n):
                wrong.append(f"ember.nn.modules.{info.name}.{n}")
    assert wrong == []


def test_named_paths_of_the_issue():
    from ember.nn.modules.activation import MultiheadAttention
    from ember.nn.modules.conv import Conv2d
    from ember.nn.modules.rnn import LSTM

    assert (LSTM, Conv2d, MultiheadAttention) == (ember.nn.LSTM, ember.nn.Conv2d,
                                                  ember.nn.MultiheadAttention)


ISSUE_LAYERS = """Module Sequential ModuleList ModuleDict ParameterList Linear Bilinear Identity Flatten
Unflatten Conv1d Conv2d ConvTranspose2d MaxPool1d MaxPool2d AvgPool1d AvgPool2d AdaptiveAvgPool2d
AdaptiveMaxPool2d BatchNorm1d BatchNorm2d LayerNorm GroupNorm Dropout Dropout2d Embedding RNN LSTM
GRU RNNCell LSTMCell GRUCell MultiheadAttention TransformerEncoderLayer TransformerEncoder ReLU
LeakyReLU ELU GELU SiLU Mish Sigmoid Tanh Softmax LogSoftmax Softplus Hardtanh ReLU6 PReLU
CrossEntropyLoss NLLLoss MSELoss L1Loss SmoothL1Loss HuberLoss BCELoss BCEWithLogitsLoss KLDivLoss
CosineEmbeddingLoss Parameter""".split()
ISSUE_FUNCTIONAL = """cross_entropy nll_loss mse_loss l1_loss smooth_l1_loss huber_loss
binary_cross_entropy binary_cross_entropy_with_logits kl_div cosine_embedding_loss softmax
log_softmax one_hot pad interpolate scaled_dot_product_attention normalize cosine_similarity linear
bilinear conv1d conv2d conv_transpose2d max_pool1d max_pool2d avg_pool1d avg_pool2d
adaptive_avg_pool2d adaptive_max_pool2d batch_norm layer_norm group_norm dropout dropout2d embedding
relu leaky_relu elu gelu silu mish sigmoid tanh softplus hardtanh relu6 prelu""".split()


def test_issue_lists_exist():
    assert [n for n in ISSUE_LAYERS if not hasattr(ember.nn, n)] == []
    assert [n for n in ISSUE_FUNCTIONAL if not callable(getattr(F, n, None))] == []
    importlib.import_module("ember.nn.utils.rnn")
    for n in ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector",
              "vector_to_parameters"]:
        assert callable(getattr(ember.nn.utils, n))
    assert callable(ember.nn.utils.rnn.pad_sequence)


def _model(n, lib):
    class Block(n.Module):
        def __init__(self):
            super().__init__()
            self.conv = n.Conv2d(3, 8, 3, padding=1, bias=False)
            self.bn = n.BatchNorm2d(8)
            self.layers = n.ModuleList([n.Linear(4, 4) for _ in range(3)] + [n.ReLU()])
            self.d = n.ModuleDict({"a": n.Dropout(0.2), "b": n.Sequential()})
            self.rnn = n.LSTM(4, 8, num_layers=2, batch_first=True)
            self.mha = n.MultiheadAttention(8, 2)
            kw = {"enable_nested_tensor": False} if lib is torch else {}
            self.enc = n.TransformerEncoder(n.TransformerEncoderLayer(8, 2, 16), 2, **kw)
            self.pl = n.ParameterList([n.Parameter(lib.ones(2)), n.Parameter(lib.ones(3, 2))])
            self.pd = n.ParameterDict({"w": n.Parameter(lib.ones(2, dtype=lib.float64))})
            self.emb = n.Embedding(10, 3, padding_idx=0)
            self.seq = n.Sequential(
                n.Flatten(), n.Unflatten(1, (2, 2)), n.Identity(), n.MaxPool2d(2, ceil_mode=True),
                n.AdaptiveAvgPool2d((1, 1)), n.GroupNorm(2, 4), n.LayerNorm([4]),
                n.Softmax(dim=1), n.PReLU(), n.GELU("tanh"), n.Dropout2d(), n.Linear(2, 2),
                n.Linear(2, 2), n.ConvTranspose2d(2, 2, 3, stride=2, output_padding=1),
                n.GRU(3, 4, bidirectional=True), n.CrossEntropyLoss(label_smoothing=0.1))

    return Block()


def test_nested_repr_equals_torchs():
    assert repr(_model(ember.nn, ember)) == repr(_model(torch.nn, torch)).replace("torch.", "ember.")


def test_container_reprs():
    for make in [lambda n, L: n.ModuleList(),
                 lambda n, L: n.ModuleList([n.ReLU(), n.ReLU(), n.Tanh(), n.ReLU()]),
                 lambda n, L: n.Sequential(n.ModuleList([n.Linear(1, 1)] * 2), n.Linear(1, 2)),
                 lambda n, L: n.ParameterList([n.Parameter(L.ones(1))]),
                 lambda n, L: n.ParameterDict({"a": n.Parameter(L.ones(2, 3))})]:
        assert repr(make(ember.nn, ember)) == repr(make(torch.nn, torch)).replace("torch.", "ember.")
