"""``ember.autograd.functional``: jacobian and vjp against ``torch.autograd.functional``."""

import re

import numpy as np
import pytest
import torch

import ember


def _np(x):
    assert isinstance(x, (torch.Tensor, ember.Tensor))
    return x.detach().numpy()


def _same(e, t):
    """The same nesting of tuples, and arrays of the same shape, dtype and values."""
    if isinstance(t, tuple):
        assert isinstance(e, tuple) and len(e) == len(t)
        for a, b in zip(e, t):
            _same(a, b)
        return
    e, t = _np(e), _np(t)
    assert e.shape == t.shape and e.dtype == t.dtype
    np.testing.assert_allclose(e, t, rtol=1e-6, atol=1e-7)


X = np.array([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7]], dtype=np.float32)
W = np.array([0.2, -0.4, 1.1], dtype=np.float32)

CASES = [
    ("one in, one out", lambda t, x: x.exp() * x.sum(), (X,)),
    ("one in, tuple out", lambda t, x: (x * 2, x.sum(), t.ones(4)), (X,)),
    ("tuple in, one out", lambda t, x, w: (x * w).tanh(), (X, W)),
    ("tuple in, tuple out", lambda t, x, w: ((x @ w).sin(), w * 3), (X, W)),
    ("unused input", lambda t, x, w: x * 2, (X, W)),
]


@pytest.mark.parametrize("name, fn, arrays", CASES, ids=[c[0] for c in CASES])
def test_jacobian_matches_torch(name, fn, arrays):
    def run(lib):
        ins = tuple(lib.tensor(a) for a in arrays)
        return lib.autograd.functional.jacobian(lambda *a: fn(lib, *a),
                                                ins if len(ins) > 1 else ins[0])

    _same(run(ember), run(torch))


@pytest.mark.parametrize("name, fn, arrays", CASES[:4], ids=[c[0] for c in CASES[:4]])
def test_vjp_matches_torch(name, fn, arrays):
    def run(lib):
        ins = tuple(lib.tensor(a) for a in arrays)
        outs = fn(lib, *ins)
        rng = np.random.default_rng(0)
        v = tuple(lib.tensor(rng.standard_normal(tuple(o.shape)).astype(np.float32))
                  for o in (outs if isinstance(outs, tuple) else (outs,)))
        return lib.autograd.functional.vjp(lambda *a: fn(lib, *a),
                                           ins if len(ins) > 1 else ins[0],
                                           v if isinstance(outs, tuple) else v[0])

    _same(run(ember), run(torch))


def test_vjp_scalar_without_v_and_captured_tensor_untouched():
    def run(lib):
        w = lib.tensor(W, requires_grad=True)
        out = lib.autograd.functional.vjp(lambda x: (x * w).sum(), lib.tensor(W))
        return out, w.grad is None

    (e, e_none), (t, t_none) = run(ember), run(torch)
    _same(e, t)
    assert e_none and t_none


@pytest.mark.parametrize("call, exc, msg", [
    (lambda t, F: F.jacobian(lambda x: x, 1.0), TypeError,
     "The inputs given to jacobian must be either a Tensor or a tuple of Tensors but the given "
     "inputs has type <class 'float'>."),
    (lambda t, F: F.jacobian(lambda x: 3.0, t.ones(2)), TypeError,
     "The outputs of the user-provided function given to jacobian must be either a Tensor or a "
     "tuple of Tensors"),
    (lambda t, F: F.jacobian(lambda x, y: x * 2, (t.ones(2), t.ones(2)), strict=True),
     RuntimeError, "Output 0 of the user-provided function is independent of input 1. This is "
                   "not allowed in strict mode."),
    (lambda t, F: F.vjp(lambda x: x * 2, t.ones(2)), RuntimeError,
     "The vector v can only be None if the user-provided function returns a single Tensor with a "
     "single element."),
])
def test_errors_as_torch(call, exc, msg):
    for t in (torch, ember):
        with pytest.raises(exc, match=re.escape(msg)):
            call(t, t.autograd.functional)


def test_double_backward_helpers_are_clear_errors():
    with pytest.raises(NotImplementedError, match="double backward"):
        ember.autograd.functional.hessian(lambda x: (x * x).sum(), ember.ones(2))
    with pytest.raises(NotImplementedError, match="create_graph"):
        ember.autograd.functional.jacobian(lambda x: x * 2, ember.ones(2), create_graph=True)
