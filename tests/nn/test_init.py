"""nn.init: gains equal torch's, distributions have the right bounds and spread, fills are in
place under no_grad, seeds make them reproducible, bad shapes raise torch's errors."""

import math

import numpy as np
import pytest
import torch

import ember
from ember.nn import init


@pytest.mark.parametrize("args", [("linear",), ("conv2d",), ("sigmoid",), ("tanh",), ("relu",),
                                  ("leaky_relu",), ("leaky_relu", 0.2), ("selu",),
                                  ("conv_transpose2d",)])
def test_calculate_gain_matches_torch(args):
    assert init.calculate_gain(*args) == pytest.approx(torch.nn.init.calculate_gain(*args))


def test_calculate_gain_errors():
    with pytest.raises(ValueError, match="Unsupported nonlinearity gelu"):
        init.calculate_gain("gelu")
    with pytest.raises(ValueError, match="negative_slope True not a valid number"):
        init.calculate_gain("leaky_relu", True)


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 2, 2), (6, 2, 7)])
def test_fans_match_torch(shape):
    assert init._calculate_fan_in_and_fan_out(ember.empty(*shape)) == \
        torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))


def _w(*shape):
    return ember.nn.Parameter(ember.empty(*shape))


def test_fills_in_place_without_graph():
    w = _w(300, 200)
    out = init.xavier_uniform_(w)
    assert out is w and w.grad_fn is None and w.requires_grad and w.dtype == ember.float32
    init.zeros_(w)
    assert not w.detach().numpy().any()
    init.ones_(w)
    assert (w.detach().numpy() == 1).all()
    init.constant_(w, 0.3)
    np.testing.assert_allclose(w.detach().numpy(), 0.3, rtol=1e-7)


@pytest.mark.parametrize("fn,bound,std", [
    (lambda w: init.uniform_(w, -0.2, 0.4), (-0.2, 0.4), 0.6 / math.sqrt(12)),
    (lambda w: init.normal_(w, 0.0, 0.05), None, 0.05),
    (lambda w: init.xavier_uniform_(w, gain=2.0), 2 * math.sqrt(6 / 500), 2 * math.sqrt(2 / 500)),
    (lambda w: init.xavier_normal_(w), None, math.sqrt(2 / 500)),
    (lambda w: init.kaiming_uniform_(w, a=math.sqrt(5)), 1 / math.sqrt(200), 1 / math.sqrt(600)),
    (lambda w: init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu"),
     math.sqrt(6 / 300), math.sqrt(2 / 300)),
    (lambda w: init.kaiming_normal_(w, nonlinearity="relu"), None, math.sqrt(2 / 200)),
    (lambda w: init.trunc_normal_(w, std=0.5, a=-0.6, b=0.6), (-0.6, 0.6), None),
])
def test_distributions(fn, bound, std):
    w = _w(300, 200)
    fn(w)
    a = w.detach().numpy()
    if isinstance(bound, tuple):
        assert a.min() >= bound[0] and a.max() <= bound[1]
    elif bound is not None:
        assert np.abs(a).max() <= bound and np.abs(a).max() > 0.95 * bound
    if std is not None:
        assert a.std() == pytest.approx(std, rel=0.02)


def test_trunc_normal_matches_torch_statistics():
    e, t = _w(400, 300), torch.empty(400, 300)
    init.trunc_normal_(e, 0.1, 1.0, -1.0, 1.5)
    torch.nn.init.trunc_normal_(t, 0.1, 1.0, -1.0, 1.5)
    a, b = e.detach().numpy(), t.numpy()
    assert a.mean() == pytest.approx(b.mean(), abs=0.01)
    assert a.std() == pytest.approx(b.std(), rel=0.01)


def test_eye_dirac_orthogonal_sparse():
    w = _w(3, 5)
    init.eye_(w)
    np.testing.assert_array_equal(w.detach().numpy(), np.eye(3, 5))
    for shape, groups in [((4, 2, 3, 3), 1), ((6, 3, 5), 2)]:
        e, t = _w(*shape), torch.empty(*shape)
        init.dirac_(e, groups)
        torch.nn.init.dirac_(t, groups)
        np.testing.assert_array_equal(e.detach().numpy(), t.numpy())
    for shape in [(6, 4), (4, 6), (3, 2, 2)]:
        q = init.orthogonal_(_w(*shape), gain=2.0).detach().numpy().reshape(shape[0], -1)
        small = min(q.shape)
        g = q @ q.T if q.shape[0] == small else q.T @ q
        np.testing.assert_allclose(g, 4 * np.eye(small), atol=1e-5)
    s = init.sparse_(_w(10, 50), sparsity=0.3).detach().numpy()
    assert ((s == 0).sum(0) >= 3).all()


def test_seed_makes_init_reproducible():
    ember.manual_seed(7)
    a = ember.nn.Linear(5, 4).weight.detach().numpy().copy()
    ember.manual_seed(7)
    np.testing.assert_array_equal(ember.nn.Linear(5, 4).weight.detach().numpy(), a)
    g = ember.Generator().manual_seed(1)
    x = init.normal_(_w(3), generator=g).detach().numpy().copy()
    g.manual_seed(1)
    np.testing.assert_array_equal(init.normal_(_w(3), generator=g).detach().numpy(), x)


def test_errors_match_torch():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(_w(3))
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
        init.eye_(_w(2, 2, 2))
    with pytest.raises(ValueError, match="Only tensors with 3, 4, or 5 dimensions"):
        init.dirac_(_w(2, 2))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(_w(2, 2), mode="fan_avg")
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        init.kaiming_uniform_(_w(0, 3))
