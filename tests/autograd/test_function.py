"""Custom ``ember.autograd.Function`` exactly as PyTorch's: save_for_backward/saved_tensors,
needs_input_grad, mark_non_differentiable, non-tensor arguments, several outputs."""

import re

import numpy as np
import pytest
import torch

import ember
from tests.harness import check_op


def _square_cls(lib):
    class Square(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale):
            ctx.save_for_backward(x)
            ctx.scale = scale
            return x * x * scale

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 2 * x * grad * ctx.scale, None

    return Square


def test_custom_function_matches_torch():
    sq = {ember: _square_cls(ember), torch: _square_cls(torch)}
    check_op([(3, 4)], lambda t, x: sq[t].apply(x.sin(), 1.5).sum(dim=0))
    check_op([(3, 4)], lambda t, x: sq[t].apply(x, 2.0), transpose=(0,))


def test_custom_function_gradcheck():
    sq = _square_cls(ember)
    x = ember.randn(3, dtype=ember.float64, requires_grad=True)
    assert ember.autograd.gradcheck(lambda a: sq.apply(a, 3.0), (x,))


def test_needs_input_grad_and_multiple_outputs():
    seen = {}

    class SplitMul(ember.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            seen["needs"] = ctx.needs_input_grad
            return a * b, a + b

        @staticmethod
        def backward(ctx, g1, g2):
            a, b = ctx.saved_tensors
            ga = g1 * b + g2 if ctx.needs_input_grad[0] else None
            gb = g1 * a + g2 if ctx.needs_input_grad[1] else None
            return ga, gb

    a = ember.tensor([1.0, 2.0], requires_grad=True)
    b = ember.tensor([3.0, 4.0])
    p, s = SplitMul.apply(a, b)
    assert seen["needs"] == (True, False)
    assert p.grad_fn is s.grad_fn and p.grad_fn.name() == "SplitMulBackward"
    (p.sum() + 2 * s.sum()).backward()
    assert a.grad.tolist() == [5.0, 6.0] and b.grad is None
    a.grad = None
    p, s = SplitMul.apply(a, b)
    p.sum().backward()  # the unused output's gradient arrives as zeros
    assert a.grad.tolist() == [3.0, 4.0]


def test_mark_non_differentiable_and_no_grad_inside_forward():
    class SortIdx(ember.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            assert not ember.is_grad_enabled()
            vals, idx = x.sort()
            ctx.mark_non_differentiable(idx)
            ctx.save_for_backward(idx)
            return vals, idx

        @staticmethod
        def backward(ctx, gv, gi):
            (idx,) = ctx.saved_tensors
            out = ember.zeros(gv.shape)
            out[idx] = gv
            return out

    x = ember.tensor([3.0, 1.0, 2.0], requires_grad=True)
    v, i = SortIdx.apply(x)
    assert v.requires_grad and not i.requires_grad and i.dtype is ember.int64
    (v * ember.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [3.0, 1.0, 2.0]


def test_function_without_grad_inputs_returns_plain_tensor():
    sq = _square_cls(ember)
    y = sq.apply(ember.ones(2), 1.0)
    assert not y.requires_grad and y.grad_fn is None


def test_saved_tensors_freed_after_backward():
    sq = _square_cls(ember)
    x = ember.ones(2, requires_grad=True)
    y = sq.apply(x, 1.0).sum()
    fn = y.grad_fn
    y.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()
    del fn


def test_wrong_number_of_gradients_is_clear():
    class Bad(ember.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, g):
            return g

    y = Bad.apply(ember.ones(2, requires_grad=True), ember.ones(2, requires_grad=True))
    with pytest.raises(RuntimeError, match="returned an incorrect number of gradients"):
        y.sum().backward()


def test_array_face_function_for_ops():
    from ember.autograd.function import Function

    class Cube(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            assert isinstance(x, np.ndarray)
            return 3 * x * x * g

    x = ember.tensor([1.0, 2.0], requires_grad=True)
    Cube.apply(x).sum().backward()
    assert x.grad.tolist() == [3.0, 12.0]


def _returning(lib, make_grad):
    class Ret(lib.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return make_grad(lib)

    return Ret


@pytest.mark.parametrize("make_grad, error", [
    (lambda t: t.ones(3, 2), None),                          # broadcastable: summed to (2,)
    (lambda t: t.ones(2, dtype=t.float64), None),            # cast to the input's float32
    (lambda t: (t.ones(2), None), None),                     # extra None gradients are fine
    (lambda t: (t.ones(2), t.ones(2)), "incorrect number of gradients"),
    (lambda t: t.ones(3), "returned an invalid gradient at index 0 - got \\[3\\] but expected "
                          "shape compatible with \\[2\\]"),
    (lambda t: 3.0, "expected Variable or None \\(got float\\)"),
])
def test_returned_gradients_checked_as_torch(make_grad, error):
    def run(lib):
        x = lib.ones(2, requires_grad=True)
        (_returning(lib, make_grad).apply(x) * 1).sum().backward()
        return x.grad

    if error is None:
        e, t = run(ember), run(torch)
        assert e.dtype == ember.float32
        np.testing.assert_array_equal(e.numpy(), t.numpy())
        return
    for lib in (torch, ember):
        with pytest.raises(RuntimeError, match=error):
            run(lib)


def test_setup_context_style_and_keyword_arguments():
    # PyTorch's second style: forward without ctx, setup_context(ctx, inputs, output); apply
    # binds keyword and default arguments to forward's signature.
    def run(lib):
        class Scale(lib.autograd.Function):
            @staticmethod
            def forward(x, k=2.0):
                return x * k

            @staticmethod
            def setup_context(ctx, inputs, output):
                ctx.k = inputs[1]
                ctx.grad_on = lib.is_grad_enabled()

            @staticmethod
            def backward(ctx, g):
                return g * ctx.k, None

        class KwFirstStyle(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x, k=1.0):
                return x * k

            @staticmethod
            def vjp(ctx, g):  # vjp is backward's alias
                return g * 7, None

        x = lib.ones(2, requires_grad=True)
        out = []
        for y in (Scale.apply(x), Scale.apply(x, k=5.0), KwFirstStyle.apply(x, k=3.0)):
            x.grad = None
            y.sum().backward()
            out.append((y.tolist(), x.grad.tolist()))
        out.append(y.grad_fn.name())
        return out

    assert run(ember) == run(torch)


def test_set_materialize_grads_false_passes_none():
    def run(lib):
        class Two(lib.autograd.Function):
            @staticmethod
            def forward(ctx, a):
                ctx.set_materialize_grads(False)
                return a * 2, a * 3

            @staticmethod
            def backward(ctx, g1, g2):
                return (g1 * 2 if g1 is not None else 0) + (g2 * 3 if g2 is not None else 100)

        a = lib.ones(2, requires_grad=True)
        Two.apply(a)[0].sum().backward()
        return a.grad.tolist()

    assert run(ember) == run(torch) == [102.0, 102.0]


@pytest.mark.parametrize("body, exc, msg", [
    ("save", TypeError, "save_for_backward can only save variables, but argument 1 is of type int"),
    ("no_backward", NotImplementedError, "You must implement either the backward or vjp"),
    ("both", RuntimeError, "Implementing both 'backward' and 'vjp'"),
])
def test_function_definition_errors(body, exc, msg):
    for lib in (torch, ember):
        ns = {"forward": staticmethod(lambda ctx, a: (ctx.save_for_backward(a, 1) if body == "save"
                                                     else None) or a * 2)}
        if body == "both":
            ns["backward"] = ns["vjp"] = staticmethod(lambda ctx, g: g)
        F = type("F", (lib.autograd.Function,), ns)
        with pytest.raises(exc, match=re.escape(msg)):
            F.apply(lib.ones(2, requires_grad=True)).sum().backward()
