"""Every layer of issue 3: a PyTorch state_dict loads into ember's layer unchanged (same keys,
shapes and dtypes) and gives the same outputs; ember's state_dict loads back into PyTorch and
gives the same outputs there."""

import numpy as np
import pytest
import torch

import ember
from tests.harness import assert_close

TOL = dict(rtol=1e-4, atol=1e-5)  # a few layers in a row (transformer): float32 sum order

rng = np.random.default_rng(0)
IDX = rng.integers(0, 10, (4, 5)).astype(np.int64)

# name -> (make(nn), inputs, forward(module, *inputs) or None)
LAYERS = {
    "Linear": (lambda n: n.Linear(5, 3), [(4, 5)], None),
    "Linear-nobias": (lambda n: n.Linear(5, 3, bias=False), [(2, 4, 5)], None),
    "Bilinear": (lambda n: n.Bilinear(3, 4, 5), [(6, 3), (6, 4)], None),
    "Identity": (lambda n: n.Identity(), [(2, 3)], None),
    "Flatten": (lambda n: n.Flatten(), [(2, 3, 4)], None),
    "Unflatten": (lambda n: n.Unflatten(1, (3, 4)), [(2, 12)], None),
    "Conv1d": (lambda n: n.Conv1d(4, 6, 3, stride=2, padding=1, groups=2), [(2, 4, 9)], None),
    "Conv2d": (lambda n: n.Conv2d(3, 4, 3, padding="same", dilation=2), [(2, 3, 7, 7)], None),
    "Conv2d-groups": (lambda n: n.Conv2d(4, 6, (3, 2), stride=(2, 1), groups=2, bias=False),
                      [(2, 4, 8, 7)], None),
    "Conv2d-valid": (lambda n: n.Conv2d(3, 4, 3, padding="valid"), [(3, 8, 8)], None),
    "ConvTranspose2d": (lambda n: n.ConvTranspose2d(4, 6, 3, stride=2, padding=1,
                                                    output_padding=1, groups=2), [(2, 4, 4, 5)],
                        None),
    "MaxPool1d": (lambda n: n.MaxPool1d(3, 2, ceil_mode=True), [(2, 3, 8)], None),
    "MaxPool2d": (lambda n: n.MaxPool2d(2, return_indices=True), [(2, 3, 6, 6)], None),
    "AvgPool1d": (lambda n: n.AvgPool1d(3, 2, 1), [(2, 3, 8)], None),
    "AvgPool2d": (lambda n: n.AvgPool2d(3, 2, 1, count_include_pad=False), [(2, 3, 7, 7)], None),
    "AdaptiveAvgPool2d": (lambda n: n.AdaptiveAvgPool2d((3, 2)), [(2, 3, 7, 7)], None),
    "AdaptiveMaxPool2d": (lambda n: n.AdaptiveMaxPool2d(3), [(2, 3, 7, 7)], None),
    "BatchNorm1d": (lambda n: n.BatchNorm1d(5), [(8, 5)], None),
    "BatchNorm2d": (lambda n: n.BatchNorm2d(3, momentum=0.3), [(4, 3, 5, 5)], None),
    "LayerNorm": (lambda n: n.LayerNorm((4, 5)), [(2, 3, 4, 5)], None),
    "GroupNorm": (lambda n: n.GroupNorm(2, 4), [(2, 4, 5, 5)], None),
    "Dropout": (lambda n: n.Dropout(0.3), [(4, 5)], None),
    "Dropout2d": (lambda n: n.Dropout2d(0.3), [(2, 3, 4, 4)], None),
    "Embedding": (lambda n: n.Embedding(10, 4, padding_idx=2), [IDX], None),
    "RNN": (lambda n: n.RNN(4, 6, num_layers=2, bidirectional=True, nonlinearity="relu"),
            [(5, 3, 4)], None),
    "LSTM": (lambda n: n.LSTM(4, 6, num_layers=2, bidirectional=True, batch_first=True),
             [(3, 5, 4)], None),
    "LSTM-proj": (lambda n: n.LSTM(4, 6, proj_size=3), [(5, 3, 4)], None),
    "GRU": (lambda n: n.GRU(4, 6, num_layers=2, bias=False), [(5, 3, 4)], None),
    "RNNCell": (lambda n: n.RNNCell(4, 6), [(3, 4)], None),
    "LSTMCell": (lambda n: n.LSTMCell(4, 6), [(3, 4)], None),
    "GRUCell": (lambda n: n.GRUCell(4, 6), [(3, 4)], None),
    "MultiheadAttention": (lambda n: n.MultiheadAttention(8, 2), [(5, 3, 8)],
                           lambda m, x: m(x, x, x)),
    "MultiheadAttention-kdim": (lambda n: n.MultiheadAttention(8, 2, kdim=5, vdim=6,
                                                               add_bias_kv=True, batch_first=True),
                                [(3, 4, 8), (3, 6, 5), (3, 6, 6)], None),
    "TransformerEncoderLayer": (lambda n: n.TransformerEncoderLayer(8, 2, 16), [(5, 3, 8)], None),
    "TransformerEncoder": (
        lambda n: n.TransformerEncoder(n.TransformerEncoderLayer(8, 2, 16, norm_first=True), 2,
                                       n.LayerNorm(8),
                                       **({"enable_nested_tensor": False} if n is torch.nn
                                          else {})), [(5, 3, 8)], None),
    "PReLU": (lambda n: n.PReLU(3), [(2, 3, 4)], None),
    "CrossEntropyLoss": (lambda n: n.CrossEntropyLoss(
        weight=(torch if n is torch.nn else ember).tensor(np.linspace(0.5, 2, 10, dtype=np.float32)),
        label_smoothing=0.1), [(4, 10), IDX[:, 0].copy()], None),
    "BCEWithLogitsLoss": (lambda n: n.BCEWithLogitsLoss(
        pos_weight=(torch if n is torch.nn else ember).full((3,), 2.0)),
        [(4, 3), rng.uniform(0, 1, (4, 3)).astype(np.float32)], None),
}
LAYERS.update({a: (lambda n, a=a: getattr(n, a)(), [(2, 3, 4)], None) for a in [
    "ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "Mish", "Sigmoid", "Tanh", "Softplus",
    "Hardtanh", "ReLU6"]})
LAYERS.update({a: (lambda n, a=a: getattr(n, a)(dim=1), [(2, 3, 4)], None)
               for a in ["Softmax", "LogSoftmax"]})


def _inputs(lib, specs, seed=1):
    arrays = []
    r = np.random.default_rng(seed)
    for s in specs:
        arrays.append(s if isinstance(s, np.ndarray) else r.standard_normal(s).astype(np.float32))
    return [lib.tensor(a) for a in arrays]


def _out(m, lib, specs, fwd):
    with (torch.no_grad() if lib is torch else ember.no_grad()):
        out = (fwd or (lambda mod, *xs: mod(*xs)))(m, *_inputs(lib, specs))
    flat, stack = [], [out]
    while stack:
        o = stack.pop(0)
        if isinstance(o, (tuple, list)):
            stack[:0] = list(o)
        elif o is not None:
            flat.append(o)
    return flat


def _torch_trained(make, specs, fwd):
    """A torch layer whose weights and running statistics are not the defaults."""
    torch.manual_seed(0)
    t = make(torch.nn)
    with torch.no_grad():
        for p in t.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    t.train()
    for seed in (2, 3):  # moves BatchNorm's running stats and num_batches_tracked
        with torch.no_grad():
            (fwd or (lambda m, *xs: m(*xs)))(t, *_inputs(torch, specs, seed))
    return t.eval()


@pytest.mark.parametrize("name", list(LAYERS))
def test_torch_state_dict_loads_and_gives_same_outputs(name):
    make, specs, fwd = LAYERS[name]
    t = _torch_trained(make, specs, fwd)
    e = make(ember.nn).eval()
    tsd, esd = t.state_dict(), e.state_dict()
    assert [(k, tuple(v.shape), str(v.dtype).split(".")[1]) for k, v in esd.items()] == \
        [(k, tuple(v.shape), str(v.dtype).split(".")[1]) for k, v in tsd.items()]
    assert repr(e.load_state_dict(tsd)) == "<All keys matched successfully>"  # torch tensors
    for k, v in tsd.items():
        assert_close(e.state_dict()[k], v, rtol=0, atol=0, what=k)
    for i, (eo, to) in enumerate(zip(_out(e, ember, specs, fwd), _out(t, torch, specs, fwd),
                                     strict=True)):
        assert_close(eo, to, what=f"{name} output {i}", **TOL)


@pytest.mark.parametrize("name", list(LAYERS))
def test_ember_state_dict_loads_into_torch_and_gives_same_outputs(name):
    make, specs, fwd = LAYERS[name]
    src = _torch_trained(make, specs, fwd)
    e = make(ember.nn).eval()
    e.load_state_dict({k: ember.tensor(v.numpy()) for k, v in src.state_dict().items()})
    t = make(torch.nn).eval()
    t.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in e.state_dict().items()})
    for i, (eo, to) in enumerate(zip(_out(e, ember, specs, fwd), _out(t, torch, specs, fwd),
                                     strict=True)):
        assert_close(eo, to, what=f"{name} output {i}", **TOL)
