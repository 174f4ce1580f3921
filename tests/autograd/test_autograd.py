"""The autograd API: backward with and without ``gradient``, accumulation, ``retain_graph``,
``autograd.grad``, grad modes as context managers and decorators, detach, hooks, retain_grad."""

import re
import warnings

import numpy as np
import pytest
import torch

import ember


def _both(fn):
    """Run ``fn(lib)`` for ember and torch; return (ember result, torch result)."""
    return fn(ember), fn(torch)


def _close(e, t):
    np.testing.assert_allclose(np.asarray(e.detach().numpy() if hasattr(e, "detach") else e),
                               t.detach().numpy() if hasattr(t, "detach") else t, rtol=1e-6)


def test_backward_scalar_and_with_gradient():
    def run(t):
        x = t.tensor([1.0, 2.0, 3.0], requires_grad=True)
        (x * x).sum().backward()
        g1 = x.grad.clone()
        y = x * 3
        y.backward(t.tensor([1.0, 0.5, 2.0]))
        return g1, x.grad

    (e1, e2), (t1, t2) = _both(run)
    _close(e1, t1)
    _close(e2, t2)


def test_accumulation_and_zeroing():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    for _ in range(3):
        (x * 2).sum().backward()
    assert x.grad.tolist() == [6.0, 6.0]
    x.grad = None
    (x * x).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]
    x.grad.zero_()
    assert x.grad.tolist() == [0.0, 0.0]


def test_shared_subexpression_and_diamond():
    def run(t):
        x = t.tensor([0.5, -1.0], requires_grad=True)
        a = x.exp()
        b = a * a + a.sin() * x
        c = (b + a).sum()
        c.backward()
        return x.grad

    _close(*_both(run))


def test_retain_graph_and_second_backward_error():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    g = x.grad.clone()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * g.numpy())
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()


def test_backward_non_scalar_needs_gradient():
    y = ember.ones(2, 3, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"grad can be implicitly created only for scalar "
                                           r"outputs; this output has shape \(2, 3\)"):
        y.backward()
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        y.backward(ember.ones(3))


def test_backward_on_tensor_without_grad():
    with pytest.raises(RuntimeError, match="does not require grad and does not have a grad_fn"):
        ember.ones(2).sum().backward()


def test_autograd_grad():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    w = ember.tensor([3.0, 4.0], requires_grad=True)
    unused = ember.tensor([1.0], requires_grad=True)
    y = (x * w).sum()
    gx, gw = ember.autograd.grad(y, (x, w), retain_graph=True)
    assert gx.tolist() == [3.0, 4.0] and gw.tolist() == [1.0, 2.0]
    assert x.grad is None and w.grad is None
    (gx,) = ember.autograd.grad([x * 2], [x], grad_outputs=[ember.tensor([1.0, -1.0])])
    assert gx.tolist() == [2.0, -2.0]
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        ember.autograd.grad(y, [x, unused], retain_graph=True)
    gx, gu = ember.autograd.grad(y, [x, unused], allow_unused=True, retain_graph=True)
    assert gu is None and gx.tolist() == [3.0, 4.0]
    gx, gu = ember.autograd.grad(y, [x, unused], materialize_grads=True, allow_unused=True)
    assert gu.tolist() == [0.0]
    h = x * 2
    z = (h * h).sum()
    (gh,) = ember.autograd.grad(z, h)
    assert gh.tolist() == [4.0, 8.0]


def test_grad_modes_context_and_decorator():
    x = ember.ones(2, requires_grad=True)
    with ember.no_grad():
        assert not (x * 2).requires_grad and not ember.is_grad_enabled()
        with ember.enable_grad():
            assert (x * 2).requires_grad
    assert ember.is_grad_enabled()

    @ember.no_grad()
    def f(a):
        return a * 2

    @ember.no_grad
    def f2(a):
        return a * 2

    @ember.enable_grad()
    def g(a):
        return a * 2

    assert not f(x).requires_grad and not f2(x).requires_grad
    with ember.no_grad():
        assert g(x).requires_grad
    with ember.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad
    ember.set_grad_enabled(False)
    assert not ember.is_grad_enabled()
    ember.set_grad_enabled(True)

    @ember.set_grad_enabled(False)
    def h(a):
        return a * 2

    assert not h(x).requires_grad and ember.is_grad_enabled()
    with ember.inference_mode():
        assert not (x * 2).requires_grad and ember.is_inference_mode_enabled()
    with ember.inference_mode(False):
        assert (x * 2).requires_grad

    @ember.inference_mode()
    def k(a):
        return a * 2

    @ember.inference_mode
    def k2(a):
        return a * 2

    assert not k(x).requires_grad and not k2(x).requires_grad and ember.is_grad_enabled()


def test_no_grad_restores_on_exception():
    with pytest.raises(ValueError), ember.no_grad():
        raise ValueError
    assert ember.is_grad_enabled()


def test_detach_requires_grad_():
    x = ember.ones(2, requires_grad=True)
    y = (x * 2).detach()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    z = ember.ones(2).requires_grad_()
    assert z.requires_grad and z.is_leaf
    z.requires_grad_(False)
    assert not z.requires_grad
    with pytest.raises(RuntimeError, match="only Tensors of floating point and complex dtype "
                                           r"can require gradients \(got ember.int64\)"):
        ember.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf"):
        (x * 2).requires_grad_(False)


def test_retain_grad_and_hooks():
    def run(t):
        x = t.tensor([1.0, 2.0], requires_grad=True)
        h = x * 3
        h.retain_grad()
        seen = []
        h.register_hook(lambda g: seen.append(g.clone()))
        x.register_hook(lambda g: g * 10)  # leaf hook replaces the gradient
        (h * h).sum().backward()
        return h.grad, seen[0], x.grad, h.retains_grad

    (eh, es, ex, er), (th, ts, tx, tr) = _both(run)
    _close(eh, th)
    _close(es, ts)
    _close(ex, tx)
    assert er == tr is True


def test_hook_handle_remove_and_nonleaf_replace():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    handle = h.register_hook(lambda g: g * 0)
    handle.remove()
    h.register_hook(lambda g: g + 1)
    h.sum().backward()
    assert x.grad.tolist() == [4.0, 4.0]
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't"):
        ember.ones(2).register_hook(lambda g: g)


def test_backward_inputs_argument():
    a = ember.tensor([1.0], requires_grad=True)
    b = ember.tensor([2.0], requires_grad=True)
    (a * b).sum().backward(inputs=[a])
    assert a.grad.tolist() == [2.0] and b.grad is None


def test_create_graph_is_a_clear_error():
    x = ember.ones(1, requires_grad=True)
    with pytest.raises(NotImplementedError, match="create_graph=True"):
        (x * x).sum().backward(create_graph=True)


def test_gradcheck_api():
    x = ember.tensor([0.3, -0.7], dtype=ember.float64, requires_grad=True)
    assert ember.autograd.gradcheck(lambda a: (a.sin() * a).sum(), (x,))
    for lib in (torch, ember):  # float32: PyTorch's warning, then (likely) a mismatch
        with pytest.warns(UserWarning, match="Input #0 requires gradient and is not a double "
                                             "precision floating point"), \
                pytest.raises(RuntimeError, match="Jacobian mismatch"):  # GradcheckError
            lib.autograd.gradcheck(lambda a: a.sum(), (lib.ones(2, requires_grad=True),))
        with pytest.raises(ValueError, match="at least one input tensor to require gradient"):
            lib.autograd.gradcheck(lambda a: a * 2, (lib.ones(2, dtype=lib.float64),))
    # an output that does not require grad before the checked one
    assert ember.autograd.gradcheck(lambda a: (a.argmax(), a.exp()), (x,))

    class Wrong(ember.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return g * 3

    with pytest.raises(ember.autograd.GradcheckError, match="Jacobian mismatch"):
        ember.autograd.gradcheck(Wrong.apply, (x,))
    assert ember.autograd.gradcheck(Wrong.apply, (x,), raise_exception=False) is False


def test_grad_mode_decorates_generator_functions():
    # As PyTorch: the body of a decorated generator runs in the mode at every resumption, the
    # caller's loop outside it (a sampling loop that yields tokens under @no_grad()).
    def run(t):
        x = t.tensor([1.0], requires_grad=True)
        seen = []

        @t.no_grad()
        def gen():
            for _ in range(2):
                seen.append(t.is_grad_enabled())
                yield x * 2

        @t.enable_grad()
        def gen2():
            got = yield (x * 2).requires_grad
            yield got

        outside = []
        for y in gen():
            outside.append((t.is_grad_enabled(), y.requires_grad))
        with t.no_grad():
            g = gen2()
            first = next(g)
            second = g.send("sent")
        return seen, outside, first, second, t.is_grad_enabled()

    e, tt = _both(run)
    assert e == tt == ([False, False], [(True, False), (True, False)], True, "sent", True)


@pytest.mark.parametrize("leaf", [True, False])
@pytest.mark.parametrize("ret, exc, msg", [
    (lambda t: t.ones(3), RuntimeError, "hook '<lambda>' has changed the size of value"),
    (lambda t: t.ones(2, dtype=t.float64), RuntimeError,
     "hook '<lambda>' has changed the type of value"),
    (lambda t: 5, TypeError, "expected Variable, but hook returned 'int'"),
])
def test_hook_returning_another_shape_dtype_or_type_is_an_error(leaf, ret, exc, msg):
    for t in (torch, ember):
        x = t.ones(2, requires_grad=True)
        y = x if leaf else x * 2
        y.register_hook(lambda g: ret(t))
        with pytest.raises(exc, match=re.escape(msg)):
            (y * y).sum().backward()


def test_retain_grad_twice_hooks_order_and_error():
    def run(t):
        x = t.ones(2, requires_grad=True)
        y = x * 2
        y.retain_grad()
        y.retain_grad()  # idempotent: the gradient is kept once, not summed twice
        y.register_hook(lambda g: g * 10)  # retain_grad's hook runs after the others
        (y * y).sum().backward()
        return y.grad.tolist(), x.grad.tolist(), y.retains_grad

    assert run(ember) == run(torch) == ([40.0, 40.0], [80.0, 80.0], True)
    for t in (torch, ember):
        with pytest.raises(RuntimeError, match="can't retain_grad on Tensor that has "
                                               "requires_grad=False"):
            t.ones(2).retain_grad()


def test_non_leaf_grad_access_warns_as_torch():
    def run(t):
        x = t.ones(2, requires_grad=True)
        y = x * 2
        kept = x * 3
        kept.retain_grad()
        with t.no_grad():
            z = x * 2
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            got = [y.grad, kept.grad, x.grad, z.grad]
        return [g is None for g in got], [str(m.message)[:60] for m in w]

    e, tt = run(ember), run(torch)
    assert e == tt
    assert len(e[1]) == 1
    assert e[1][0].startswith("The .grad attribute of a Tensor that is not a leaf")


@pytest.mark.parametrize("call, exc, msg", [
    (lambda t, x: (x * 2).sum().backward(inputs=[]), RuntimeError,
     "`inputs` argument to `backward()` cannot be empty."),
    (lambda t, x: t.autograd.grad((x * 2).sum(), [x, t.ones(2, requires_grad=True)],
                                  allow_unused=False, materialize_grads=True), ValueError,
     "Expected allow_unused to be True or not passed when materialize_grads=True"),
    (lambda t, x: t.autograd.grad((x * 2).sum(), [x, t.ones(2, requires_grad=True)]),
     RuntimeError, "The differentiated Tensor at index 1 appears to not have been used in the "
                   "graph. Set allow_unused=True if this is the desired behavior."),
    (lambda t, x: t.set_grad_enabled("yes"), TypeError,
     "set_grad_enabled(): argument 'enabled' (position 1) must be bool, not str"),
])
def test_autograd_argument_errors_as_torch(call, exc, msg):
    for t in (torch, ember):
        with pytest.raises(exc, match=re.escape(msg)):
            call(t, t.ones(2, requires_grad=True))
        assert t.is_grad_enabled()


def test_detect_anomaly_raises_on_nan_gradients():
    def run(t):
        out = [t.is_anomaly_enabled()]
        x = t.tensor([0.0, 1.0], requires_grad=True)
        with pytest.warns(UserWarning, match="Anomaly Detection has been enabled"):
            ctx = t.autograd.detect_anomaly()
        with ctx:
            out.append(t.is_anomaly_enabled())
            with pytest.raises(RuntimeError, match=r"Function 'SqrtBackward0' returned nan "
                                                   r"values in its 0th output\."), \
                    warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch's forward-traceback warning
                (x.sqrt() * 0).sum().backward()
        out.append(t.is_anomaly_enabled())
        (x.sqrt() * 0).sum().backward()  # off again: the NaN gradient is accumulated
        out.append(bool(t.isnan(x.grad).any()))
        t.autograd.set_detect_anomaly(True)
        out.append((t.is_anomaly_enabled(), t.is_anomaly_check_nan_enabled()))
        with t.autograd.set_detect_anomaly(False, check_nan=False):
            out.append((t.is_anomaly_enabled(), t.is_anomaly_check_nan_enabled()))
        out.append((t.is_anomaly_enabled(), t.is_anomaly_check_nan_enabled()))
        t.autograd.set_detect_anomaly(False)
        return out

    assert run(ember) == run(torch) == [False, True, False, True, (True, True), (False, False),
                                        (True, True)]


def test_grad_is_grads_batched():
    # Each row of grad_outputs is one vector-Jacobian product (a Jacobian from the identity).
    def run(t):
        x = t.tensor([1.0, 2.0, 3.0], requires_grad=True)
        z = t.ones(2, requires_grad=True)
        y = x.exp() * x
        jac = t.autograd.grad(y, x, grad_outputs=t.eye(3), is_grads_batched=True,
                              retain_graph=True)
        two = t.autograd.grad([y, (z * 3).sum()], [x, z],
                              grad_outputs=[t.eye(3)[:2], t.tensor([1.0, 2.0])],
                              is_grads_batched=True, retain_graph=True)
        unused = t.autograd.grad(y, [x, z], grad_outputs=t.eye(3), is_grads_batched=True,
                                 allow_unused=True)
        return [jac[0], two[0], two[1], unused[0]], unused[1]

    (e, eu), (tt, tu) = _both(run)
    assert eu is None and tu is None
    for a, b in zip(e, tt):
        _close(a, b)
        assert tuple(a.shape) == tuple(b.shape)


def test_inference_mode_false_and_non_tensor_gradient():
    def run(t):
        x = t.ones(2, requires_grad=True)
        out = []
        for outer in (t.inference_mode(), t.no_grad()):
            with outer:
                with t.inference_mode(False):
                    out.append((t.is_grad_enabled(), t.is_inference_mode_enabled(),
                                (x * 2).requires_grad))
                out.append((t.is_grad_enabled(), t.is_inference_mode_enabled()))
        with pytest.raises(TypeError, match="gradients can be either Tensors or None, but got "
                                            "list"):
            t.autograd.backward([x * x], [[1.0, 1.0]])
        return out

    assert run(ember) == run(torch)


def test_register_post_accumulate_grad_hook():
    def run(t):
        x = t.ones(2, requires_grad=True)
        w = t.full((2,), 2.0, requires_grad=True)
        seen = []
        h = x.register_post_accumulate_grad_hook(lambda p: seen.append(("x", p.grad.tolist())))
        x.register_hook(lambda g: g * 3)  # a gradient hook runs before accumulation
        w.register_post_accumulate_grad_hook(lambda p: seen.append(("w", p.grad.tolist())))
        (x * x * w).sum().backward()
        t.autograd.grad((x * w).sum(), [x, w])  # .grad is not accumulated: no post hooks
        (x * w).sum().backward(inputs=[w])
        h.remove()
        (x * w).sum().backward()
        with pytest.raises(RuntimeError, match="non-leaf"):
            (x * 2).register_post_accumulate_grad_hook(lambda p: None)
        return sorted(seen[:2]) + seen[2:]

    assert run(ember) == run(torch)


def test_legacy_variable():
    def run(t):
        base = t.ones(2)
        v = t.autograd.Variable(base, requires_grad=True)
        (v * 3).sum().backward()
        y = t.ones(2, requires_grad=True) * 2
        out = [v.requires_grad, v.is_leaf, v.grad.tolist(), base.grad is None,
               base.requires_grad, isinstance(base, t.autograd.Variable),
               type(t.autograd.Variable(t.nn.Parameter(t.ones(2)))) is t.Tensor,
               t.autograd.Variable(y).requires_grad, t.autograd.Variable(y).is_leaf]
        with pytest.raises(TypeError, match="Variable data has to be a tensor, but got list"):
            t.autograd.Variable([1.0])
        return out

    assert run(ember) == run(torch) == [True, True, [3.0, 3.0], True, False, True, True, False,
                                        True]


def test_grad_mode_inside_inference_mode_records_nothing():
    def run(t):
        x = t.ones(2, requires_grad=True)
        out = []
        with t.inference_mode():
            with t.enable_grad():
                out.append((t.is_grad_enabled(), t.is_inference_mode_enabled(),
                            (x * 2).requires_grad))
            with t.set_grad_enabled(True):
                out.append((t.is_grad_enabled(), (x * 2).requires_grad))
            out.append((t.is_grad_enabled(), (x * 2).requires_grad))
        out.append((t.is_grad_enabled(), t.is_inference_mode_enabled(), (x * 2).requires_grad))
        return out

    assert run(ember) == run(torch)
