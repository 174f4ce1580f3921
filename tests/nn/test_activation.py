"""Activations: every functional vs torch (forward + grad), float64 gradcheck, every module vs
torch's with the same weights, reprs, in-place variants and bad input."""

import numpy as np
import pytest
import torch

import ember
from tests.harness import check_gradcheck, check_module, check_op, input_grads

# (name, fn(lib, x)); inputs avoid the kinks at 0 / ±3 / thresholds by construction of the data
ACTS = [
    ("relu", lambda t, x: t.nn.functional.relu(x)),
    ("relu6", lambda t, x: t.nn.functional.relu6(x * 4)),
    ("leaky_relu", lambda t, x: t.nn.functional.leaky_relu(x, 0.2)),
    ("elu", lambda t, x: t.nn.functional.elu(x, alpha=0.7)),
    ("selu", lambda t, x: t.nn.functional.selu(x)),
    ("celu", lambda t, x: t.nn.functional.celu(x, alpha=1.3)),
    ("gelu", lambda t, x: t.nn.functional.gelu(x)),
    ("gelu_tanh", lambda t, x: t.nn.functional.gelu(x, approximate="tanh")),
    ("silu", lambda t, x: t.nn.functional.silu(x)),
    ("mish", lambda t, x: t.nn.functional.mish(x)),
    ("sigmoid", lambda t, x: t.sigmoid(x)),
    ("tanh", lambda t, x: t.tanh(x)),
    ("softplus", lambda t, x: t.nn.functional.softplus(x, beta=2.0, threshold=1.5)),
    ("hardtanh", lambda t, x: t.nn.functional.hardtanh(x, -0.5, 0.8)),
    ("hardswish", lambda t, x: t.nn.functional.hardswish(x * 4)),
    ("hardsigmoid", lambda t, x: t.nn.functional.hardsigmoid(x * 4)),
    ("logsigmoid", lambda t, x: t.nn.functional.logsigmoid(x * 10)),
    ("tanhshrink", lambda t, x: t.nn.functional.tanhshrink(x)),
    ("softsign", lambda t, x: t.nn.functional.softsign(x)),
    ("softshrink", lambda t, x: t.nn.functional.softshrink(x, 0.3)),
    ("hardshrink", lambda t, x: t.nn.functional.hardshrink(x, 0.3)),
    ("threshold", lambda t, x: t.nn.functional.threshold(x, 0.1, -2.0)),
    ("glu", lambda t, x: t.nn.functional.glu(x, dim=1)),
    ("softmax", lambda t, x: t.nn.functional.softmax(x, dim=1)),
    ("softmax_last", lambda t, x: t.nn.functional.softmax(x * 30, dim=-1)),
    ("log_softmax", lambda t, x: t.nn.functional.log_softmax(x * 30, dim=0)),
    ("softmin", lambda t, x: t.nn.functional.softmin(x, dim=2)),
]


@pytest.mark.parametrize("name,fn", ACTS, ids=[a[0] for a in ACTS])
def test_functional_matches_torch(name, fn):
    check_op([(3, 4, 5)], fn, rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("name,fn", ACTS, ids=[a[0] for a in ACTS])
def test_functional_gradcheck(name, fn):
    check_gradcheck([(2, 4, 3)], fn)


def test_softmax_dtype_and_implicit_dim():
    check_op([(4, 6)], lambda t, x: t.nn.functional.softmax(x, -1, dtype=t.float64))
    x = ember.randn(2, 3)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        y = ember.nn.functional.softmax(x)
    np.testing.assert_allclose(y.sum(1).numpy(), np.ones(2), rtol=1e-6)


def test_softmax_extreme_values_are_stable():
    x = ember.tensor([[1000.0, -1000.0, 0.0]])
    assert np.isfinite(ember.nn.functional.log_softmax(x, 1).numpy()).all()
    assert np.isfinite(ember.nn.functional.softmax(x, 1).numpy()).all()


def test_prelu_functional():
    w = np.array([0.1, 0.2, 0.3], np.float32)
    check_op([(2, 3, 4), w], lambda t, x, a: t.nn.functional.prelu(x, a))
    check_op([(2, 3), np.array([0.25], np.float32)], lambda t, x, a: t.nn.functional.prelu(x, a))
    check_gradcheck([(2, 3, 4), w.astype(np.float64)], lambda t, x, a: t.nn.functional.prelu(x, a))
    with pytest.raises(RuntimeError, match="parameter numbers = 3 and channel size = 1"):
        ember.nn.functional.prelu(ember.randn(3), ember.tensor(w))


MODULES = [
    lambda n: n.ReLU(), lambda n: n.ReLU6(), lambda n: n.LeakyReLU(0.3), lambda n: n.ELU(0.5),
    lambda n: n.SELU(), lambda n: n.CELU(0.8), lambda n: n.GELU(), lambda n: n.GELU("tanh"),
    lambda n: n.SiLU(), lambda n: n.Mish(), lambda n: n.Sigmoid(), lambda n: n.Tanh(),
    lambda n: n.Softmax(dim=1), lambda n: n.LogSoftmax(dim=-1), lambda n: n.Softmin(0),
    lambda n: n.Softmax2d(), lambda n: n.Softplus(2.0, 5.0), lambda n: n.Hardtanh(-2.0, 2.0),
    lambda n: n.PReLU(), lambda n: n.PReLU(4, init=0.1), lambda n: n.Hardswish(),
    lambda n: n.Hardsigmoid(), lambda n: n.LogSigmoid(), lambda n: n.Tanhshrink(),
    lambda n: n.Softsign(), lambda n: n.Softshrink(0.2), lambda n: n.Hardshrink(0.2),
    lambda n: n.Threshold(0.1, 20.0), lambda n: n.GLU(1), lambda n: n.RReLU(),
]


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("make", MODULES)
def test_module_matches_torch(make, train):
    tm, em = make(torch.nn), make(ember.nn)
    assert repr(em) == repr(tm)
    assert list(em.state_dict()) == list(tm.state_dict())
    if isinstance(tm, torch.nn.RReLU) and train:
        return  # random slopes: compared in eval mode only
    check_module(tm, em, [(2, 4, 3, 2) if isinstance(tm, torch.nn.Softmax2d) else (2, 4, 3)],
                 train=train)


def test_module_reprs_with_options():
    for make in [lambda n: n.ReLU(inplace=True), lambda n: n.LeakyReLU(0.1, True),
                 lambda n: n.ELU(inplace=True), lambda n: n.Hardtanh(inplace=True),
                 lambda n: n.ReLU6(inplace=True), lambda n: n.Softmax(), lambda n: n.GLU(),
                 lambda n: n.Threshold(0.5, 1.0, True), lambda n: n.RReLU(0.1, 0.2, True)]:
        assert repr(make(ember.nn)) == repr(make(torch.nn))


@pytest.mark.parametrize("fn", [
    lambda t, x: t.nn.functional.relu(x, inplace=True),
    lambda t, x: t.nn.functional.leaky_relu(x, 0.1, inplace=True),
    lambda t, x: t.nn.functional.elu(x, inplace=True),
    lambda t, x: t.nn.functional.hardtanh(x, inplace=True),
    lambda t, x: t.nn.functional.silu(x, inplace=True),
])
def test_inplace_on_non_leaf(fn):
    def run(t, x):
        y = x * 2
        out = fn(t, y)
        assert out is y
        return out * 1.5

    check_op([(3, 4)], run)


def test_inplace_on_leaf_requiring_grad_raises():
    x = ember.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        ember.nn.functional.relu(x, inplace=True)


def test_inplace_without_grad_overwrites_input():
    x = ember.tensor([-1.0, 2.0])
    ember.nn.functional.relu_(x)
    assert x.tolist() == [0.0, 2.0]


def test_bad_arguments():
    F = ember.nn.functional
    with pytest.raises(RuntimeError, match="approximate argument must be either none or tanh"):
        F.gelu(ember.randn(2), approximate="fast")
    with pytest.raises(RuntimeError, match="Halving dimension must be even, but dimension 1 is size 3"):
        F.glu(ember.randn(2, 3), 1)
    with pytest.raises(RuntimeError, match="not implemented for 'int64'"):
        F.gelu(ember.tensor([1, 2]))
    with pytest.raises(TypeError, match="must be Tensor"):
        F.silu([1.0, 2.0])
    with pytest.raises(ValueError, match="Softmax2d: expected input to be 3D or 4D"):
        ember.nn.Softmax2d()(ember.randn(2, 3))


@pytest.mark.parametrize("name", ["relu", "relu6", "hardtanh", "hardswish", "hardsigmoid",
                                  "elu", "softshrink", "hardshrink"])
def test_gradient_at_the_kinks_matches_torch(name):
    # torch's subgradient at each breakpoint (hardswish: 0 at -3 and 1 at 3; ember's was
    # -0.5 and 1.5)
    x = np.array([-6, -3, -1, -0.5, 0, 0.5, 1, 3, 6, 6.5], np.float32)
    ge, gt = input_grads(name, x, np.ones_like(x))
    np.testing.assert_allclose(ge, gt, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("dim", [-1, 0])
def test_gumbel_softmax_matches_torch_for_the_same_noise(hard, dim):
    # F.gumbel_softmax was missing; ember's noise is drawn as torch's (-log of Exponential(1)),
    # so with that noise replayed, torch's formula gives the same samples and gradients
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    g = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32)
    ember.manual_seed(3)
    xe = ember.tensor(x, requires_grad=True)
    ye = ember.nn.functional.gumbel_softmax(xe, tau=0.7, hard=hard, dim=dim)
    (ye * ember.tensor(g)).sum().backward()
    ember.manual_seed(3)
    noise = -ember.empty(4, 6).exponential_().log()
    xt = torch.tensor(x, requires_grad=True)
    soft = ((xt + torch.tensor(noise.numpy())) / 0.7).softmax(dim)
    yt = soft
    if hard:
        one_hot = torch.zeros_like(xt).scatter_(dim, soft.max(dim, keepdim=True)[1], 1.0)
        yt = one_hot - soft.detach() + soft
        rows = ye.detach().numpy().sum(dim)
        np.testing.assert_array_equal(rows, np.ones_like(rows))
    (yt * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_float32_stays_float32():
    x = ember.randn(4, 5, requires_grad=True)
    F = ember.nn.functional
    for f in [F.gelu, F.silu, F.mish, F.elu, F.softplus, F.logsigmoid, F.hardswish,
              lambda v: F.softmax(v, 1), lambda v: F.log_softmax(v, 1)]:
        y = f(x)
        assert y.dtype == ember.float32
        y.sum().backward()
        assert x.grad.dtype == ember.float32
        x.grad = None


@pytest.mark.parametrize("shape", [(5, 7), (3, 6, 28, 28), (4, 1 << 15)])
def test_relu_gradient_of_nonfinite_values_matches_torch(shape, each_kernels, each_onednn):
    """Every path (NumPy's bit mask, numba's kernel, oneDNN's from 2^17 elements) gives
    PyTorch's gradient: 0 where the output is <= 0 even for an infinite or NaN upstream
    gradient (oneDNN's NaN there sends the op to NumPy's path), the gradient where the input
    is NaN (its output is NaN). NumPy's and numba's zeros are +0 like PyTorch's; oneDNN's
    multiply gives -0 for a negative gradient."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    x.flat[::7], x.flat[3::11] = np.nan, 0.0
    g.flat[::5], g.flat[1::13] = np.inf, np.nan
    grads = input_grads("relu", x, g)
    np.testing.assert_array_equal(*grads)
    if each_onednn == "without" or x.size < 1 << 17:
        assert (np.signbit(grads[0]) == np.signbit(grads[1])).all()  # +0 where inactive
    g[np.isnan(g) | np.isinf(g)] = 1.0  # finite gradients stay on oneDNN: equal values
    np.testing.assert_array_equal(*input_grads("relu", x, g))


@pytest.mark.parametrize("shape", [(5, 7), (300, 500)])
def test_relu_gradient_of_a_strided_upstream_gradient(shape, each_onednn):
    """A non-contiguous upstream gradient (a transpose's backward hands one down) gets PyTorch's
    ReLU gradient too: 0 where the output is <= 0 even for an infinite or NaN gradient."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape[::-1]).astype(np.float32)
    x.flat[::7] = np.nan
    g.flat[::5], g.flat[1::13] = np.inf, np.nan
    grads = input_grads("relu", x, g, then=lambda y: y.t())
    np.testing.assert_array_equal(*grads)
    assert (np.signbit(grads[0]) == np.signbit(grads[1])).all()


@pytest.mark.parametrize("shape", [(5, 7), (3, 6, 28, 28), (8, 16, 64, 64)])
def test_relu_gradient_with_and_without_kernels(shape, each_kernels, each_onednn, idle):
    """ReLU's gradient (on oneDNN from 2^17 elements; else one compiled pass with numba, split
    over two threads from 2^19 elements) against torch, for a contiguous upstream gradient (the
    harness's) and a broadcast one."""
    check_op([shape], lambda t, x: t.nn.functional.relu(x))
    check_op([shape], lambda t, x: t.nn.functional.relu(x).sum())


def _gumbel_softmax(t, x, **kw):
    t.manual_seed(3)  # the same noise for every evaluation of the finite differences
    return t.nn.functional.gumbel_softmax(x, tau=0.7, **kw)


@pytest.mark.parametrize("dim", [-1, 0])
def test_gumbel_softmax_gradcheck(dim):
    """float64 gradcheck of F.gumbel_softmax (added since a760f12) with fixed noise. hard=True
    is left out: its straight-through gradient is by design not the derivative of its
    (piecewise constant) output, in torch as here."""
    check_gradcheck([(3, 5)], lambda t, x: _gumbel_softmax(t, x, dim=dim))


def test_hardswish_gradcheck_beside_its_breakpoints():
    """hardswish's gradient was rewritten at +-3 since a760f12: float64 gradcheck on each
    piece close to (not at) the breakpoints, where the pieces meet."""
    x = np.array([-3.2, -3.05, -2.95, -2.5, -0.3, 0.4, 2.5, 2.95, 3.05, 3.2])
    check_gradcheck([x], lambda t, x: t.nn.functional.hardswish(x))
