"""Every layer's default initialisation has PyTorch's distribution.

For each parameter and buffer, values pooled over a few seeds in ember and in torch must pass a
two-sample Kolmogorov-Smirnov test (alpha 0.001) and respect the same bounds where torch's is uniform: a kaiming-uniform
weight, a U(-1/sqrt(fan_in), ...) bias, a normal embedding, zeros, ones all show up as distinct
distributions, so a wrong fan, gain or family fails here.
"""

import numpy as np
import pytest
import torch

import ember

LAYERS = {
    "Linear": lambda n: n.Linear(300, 200),
    "Bilinear": lambda n: n.Bilinear(30, 20, 40),
    "Conv1d": lambda n: n.Conv1d(16, 32, 5),
    "Conv2d": lambda n: n.Conv2d(16, 32, 3),
    "Conv2d-groups": lambda n: n.Conv2d(16, 32, 3, groups=4),
    "ConvTranspose2d": lambda n: n.ConvTranspose2d(16, 32, 3),
    "ConvTranspose2d-groups": lambda n: n.ConvTranspose2d(16, 32, 3, groups=4),
    "BatchNorm1d": lambda n: n.BatchNorm1d(50),
    "BatchNorm2d": lambda n: n.BatchNorm2d(50),
    "LayerNorm": lambda n: n.LayerNorm(50),
    "GroupNorm": lambda n: n.GroupNorm(5, 50),
    "Embedding": lambda n: n.Embedding(500, 60, padding_idx=3),
    "PReLU": lambda n: n.PReLU(8),
    "RNN": lambda n: n.RNN(30, 40, 2, bidirectional=True),
    "LSTM": lambda n: n.LSTM(30, 40, proj_size=20),
    "GRU": lambda n: n.GRU(30, 40),
    "RNNCell": lambda n: n.RNNCell(30, 40),
    "LSTMCell": lambda n: n.LSTMCell(30, 40),
    "GRUCell": lambda n: n.GRUCell(30, 40),
    "MultiheadAttention": lambda n: n.MultiheadAttention(64, 4),
    "MultiheadAttention-kdim": lambda n: n.MultiheadAttention(64, 4, kdim=32, vdim=16,
                                                              add_bias_kv=True),
    "TransformerEncoderLayer": lambda n: n.TransformerEncoderLayer(64, 4, 128),
}
REPS = 4


def _pooled(lib, make):
    out = {}
    for seed in range(REPS):
        lib.manual_seed(seed)
        m = make(lib.nn)
        for k, v in list(m.named_parameters()) + list(m.named_buffers()):
            out.setdefault(k, []).append(v.detach().numpy().astype(np.float64).ravel())
    return {k: np.concatenate(v) for k, v in out.items()}


def _ks(a, b):
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    return np.abs(np.searchsorted(a, grid, "right") / a.size
                  - np.searchsorted(b, grid, "right") / b.size).max()


@pytest.mark.parametrize("name", list(LAYERS))
def test_default_init_distribution_matches_torch(name):
    t, e = _pooled(torch, LAYERS[name]), _pooled(ember, LAYERS[name])
    assert list(e) == list(t)
    for k in t:
        a, b = t[k], e[k]
        crit = 1.95 * np.sqrt((a.size + b.size) / (a.size * b.size))  # KS, alpha = 0.001
        assert _ks(a, b) <= crit, f"{name}.{k}: KS distance {_ks(a, b):.3f} > {crit:.3f}"
        c = a - a.mean()
        if a.std() > 0 and (c ** 4).mean() / a.var() ** 2 < 2.2:  # uniform (kurtosis 1.8)
            # ember stays inside torch's bounds, as estimated from torch's sample (the gap
            # between a sample's extreme and the true bound is ~ range / size)
            slack = 10 * (a.max() - a.min()) / a.size + 1e-7
            assert a.min() - slack <= b.min() and b.max() <= a.max() + slack, k


def test_embedding_padding_row_is_zero_and_dtypes_float32():
    m = ember.nn.Embedding(20, 4, padding_idx=3)
    assert not m.weight.detach().numpy()[3].any()
    for make in LAYERS.values():
        for k, v in make(ember.nn).state_dict().items():
            assert v.dtype == (ember.int64 if k.endswith("num_batches_tracked") else ember.float32)
