"""In-place safety: version counters catch a saved tensor modified before backward (also through
a view), in-place ops on leaves that require grad raise, and correct in-place ops differentiate."""

import numpy as np
import pytest
import torch

import ember
from tests.harness import check_gradcheck, check_op

MODIFIED = "modified by an inplace operation"


def test_modifying_saved_input_raises():
    x = ember.randn(3, requires_grad=True)
    h = x * 1
    y = h.sin()  # sin saves its input
    h.mul_(2)
    with pytest.raises(RuntimeError, match=MODIFIED) as e:
        y.sum().backward()
    assert "is at version 1; expected version 0" in str(e.value)


def test_modifying_saved_output_raises():
    x = ember.randn(3, requires_grad=True)
    y = x.exp()  # exp saves its output
    y.add_(1)
    with pytest.raises(RuntimeError, match=MODIFIED):
        y.sum().backward()


def test_modifying_through_a_view_raises():
    x = ember.randn(2, 3, requires_grad=True)
    h = x * 1
    y = h.sin()
    h[0].mul_(2)
    with pytest.raises(RuntimeError, match=MODIFIED):
        y.sum().backward()
    a = ember.randn(2, 3)
    w = ember.randn(3, requires_grad=True)
    out = (a * w).sum()  # mul saves a
    a.view(6)[0] = 5.0
    with pytest.raises(RuntimeError, match=MODIFIED):
        out.backward()
    b = ember.randn(2, 3)
    out = (b * w).sum()
    b.t().zero_()
    with pytest.raises(RuntimeError, match=MODIFIED):
        out.backward()


def test_modifying_unsaved_tensor_is_fine():
    x = ember.randn(3, requires_grad=True)
    h = x * 1
    y = h + 2  # add saves nothing
    h.mul_(2)
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]


def test_inplace_on_leaf_requiring_grad_raises():
    x = ember.ones(3, requires_grad=True)
    msg = "a leaf Variable that requires grad is being used in an in-place operation"
    for op in (lambda: x.add_(1), lambda: x.mul_(2), lambda: x.zero_(), lambda: x.fill_(1.0),
               lambda: x.copy_(ember.zeros(3)), lambda: x.clamp_(0, 1), lambda: x.exp_(),
               lambda: x.__setitem__(0, 2.0), lambda: x.uniform_()):
        with pytest.raises(RuntimeError, match=msg):
            op()
    with ember.no_grad():
        x.add_(1)  # allowed under no_grad, as in PyTorch (optimizer updates)
        x[0] = 5.0
    assert x.tolist() == [5.0, 2.0, 2.0] and x.requires_grad and x.is_leaf


INPLACE = {
    "add_": lambda h, o: h.add_(o),
    "sub_": lambda h, o: h.sub_(o, alpha=2),
    "mul_": lambda h, o: h.mul_(o),
    "div_": lambda h, o: h.div_(o.abs() + 1),
    "iadd": lambda h, o: h.__iadd__(o),
    "clamp_": lambda h, o: h.clamp_(-0.5, 0.5),
    "exp_": lambda h, o: h.exp_(),
    "tanh_": lambda h, o: h.tanh_(),
    "copy_": lambda h, o: h.copy_(o),
    "masked_fill_": lambda h, o: h.masked_fill_(o > 0, 0.0),
    "setitem": lambda h, o: h.__setitem__(slice(0, 1), o[:1]),
    "zero_": lambda h, o: h.zero_(),
    "fill_": lambda h, o: h.fill_(2.0),
    "pow_": lambda h, o: h.pow_(2),
    "sigmoid_": lambda h, o: h.sigmoid_(),
}


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_ops_differentiate_like_torch(name):
    op = INPLACE[name]

    def fn(t, x, o):
        h = x * 1.5
        r = op(h, o)
        assert r is h or name == "setitem"
        return h * 2

    check_op([(3, 4), (3, 4)], fn)
    check_gradcheck([(3, 4), (3, 4)], fn)


def test_inplace_without_graph_writes_memory():
    a = np.ones(3, dtype=np.float32)
    t = ember.from_numpy(a)
    t.mul_(3).add_(1).sub_(ember.ones(3)).div_(2)
    assert a.tolist() == [1.5, 1.5, 1.5]
    i = ember.tensor([1, 2])
    i.add_(1)
    assert i.tolist() == [2, 3] and i.dtype is ember.int64
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired "
                                           "output type Long"):  # torch's wording
        i.add_(ember.tensor([0.5, 0.5]))
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        ember.ones(3).requires_grad_().mul(1).add_(ember.ones(2, 3))


def test_version_counter_matches_torch():
    e, t = ember.zeros(2), torch.zeros(2)
    for lib, x in ((ember, e), (torch, t)):
        x.add_(1)
        x.mul_(2)
        x[0] = 3
    assert e._version == t._version == 3


VIEW_INPLACE = {
    # an in-place op through a view changes the base: the base's gradient must see it
    "row_mul_": lambda h, o: (h[0].mul_(2), h)[1],
    "col_exp_": lambda h, o: (h[:, 1].exp_(), h * h)[1],
    "t_row_mul_": lambda h, o: (h.t()[0].mul_(o[0, :3]), h)[1],
    "view_add_": lambda h, o: (h.view(12).add_(o.reshape(12)), h)[1],
    "narrow_copy_": lambda h, o: (h.narrow(1, 1, 2).copy_(o[:, :2]), h)[1],
    "view_of_view": lambda h, o: (h[1:][0, 1:].mul_(o[0, 1:]), h)[1],
    "setitem_on_view": lambda h, o: (h[1].__setitem__(slice(0, 2), o[0, :2]), h)[1],
    # the base changes in place: a view taken before sees the new values and gradient
    "stale_view": lambda h, o: (lambda v: (h.mul_(o), v * 1)[1])(h[1]),
    "stale_sibling": lambda h, o: (lambda a, b: (a.mul_(3), b + a)[1])(h[0:2], h[1:3]),
}


@pytest.mark.parametrize("name", sorted(VIEW_INPLACE))
def test_inplace_through_views_differentiates_like_torch(name):
    op = VIEW_INPLACE[name]

    def fn(t, x, o):
        return op(x * 1.5, o)

    check_op([(3, 4), (3, 4)], fn)
    check_gradcheck([(3, 4), (3, 4)], lambda t, x, o: fn(t, x, o))


def test_copy_into_a_view_of_a_plain_tensor_carries_the_gradient():
    check_op([(2, 3)], lambda t, x: (lambda y: (y[1].copy_(x[0] * 2), y)[1])(t.zeros(2, 3)))


def test_inplace_on_an_output_of_split_or_unbind_raises_like_torch():
    for lib in (ember, torch):
        h = lib.ones(3, 4, requires_grad=True) * 2
        for op in (lambda h=h: h.unbind(0)[2].zero_(), lambda h=h: h.split(2)[0].mul_(2),
                   lambda h=h: h.chunk(2, 1)[1].add_(1)):
            with pytest.raises(RuntimeError, match="is a view and is being modified inplace. This "
                                                   "view is the output of a function that returns "
                                                   "multiple views"):
                op()
    h = ember.ones(3, 4, requires_grad=True) * 2
    with ember.no_grad():
        h.unbind(0)[0].zero_()  # no graph is recorded: allowed
    assert h[0].tolist() == [0.0] * 4


def test_inplace_on_view_of_leaf_requiring_grad_raises():
    x = ember.ones(2, 3, requires_grad=True)
    for op in (lambda: x[0].add_(1), lambda: x.t().mul_(2), lambda: x.view(6).zero_()):
        with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad is "
                                               "being used in an in-place operation"):
            op()
    with ember.no_grad():
        x[0].add_(1)
    assert x.tolist() == [[2.0] * 3, [1.0] * 3]


def test_random_fill_of_a_graph_tensor_cuts_its_gradient_like_torch():
    x = ember.ones(2, 3, requires_grad=True)
    h = x * 2
    h[1].uniform_(5.0, 6.0)
    (h * 3).sum().backward()
    assert x.grad.tolist() == [[6.0] * 3, [0.0] * 3] and 5.0 <= h[1].min().item() < 6.0
    t = torch.ones(2, 3, requires_grad=True)
    g = t * 2
    g[1].uniform_(5.0, 6.0)
    (g * 3).sum().backward()
    assert t.grad.tolist() == x.grad.tolist()


def test_div_inplace_rounding_mode():
    """x.div_(y, rounding_mode=...) raised a TypeError (the in-place fast path did not take the
    keyword); an unknown rounding_mode is torch's RuntimeError, not a plain division."""
    for lib in (ember, torch):
        x = lib.tensor([4.0, -3.0])
        assert x.div_(2, rounding_mode="floor").tolist() == [2.0, -2.0]
        i = lib.tensor([7, -7])
        assert i.div_(2, rounding_mode="trunc").tolist() == [3, -3] and i.dtype == lib.int64
        assert lib.tensor([7, -7]).div_(lib.tensor([2, 2]), rounding_mode="floor").tolist() == [
            3, -4]
        with pytest.raises(RuntimeError, match="div expected rounding_mode to be one of None, "
                                               "'trunc', or 'floor' but found 'bad'"):
            lib.tensor([4.0]).div(2, rounding_mode="bad")


@pytest.mark.parametrize("view", ["x[0]", "x.t()", "x.view(9)", "x[:, 1:]", "x.unsqueeze(0)"])
def test_inplace_on_a_view_of_a_leaf_that_is_itself_a_view(view):
    """A leaf made from a view (randn(6).view(2, 3).requires_grad_()) let an in-place op through
    one of its own views change it silently (its views' base was the memory's owner, which does
    not require grad); torch refuses it. Under no_grad it writes through, as in torch."""
    for lib in (ember, torch):
        x = lib.ones(9).view(3, 3).requires_grad_()
        with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad is "
                                               "being used in an in-place operation"):
            eval(view).mul_(2)
        with lib.no_grad():
            eval(view).mul_(2)
        assert x.sum().item() > 9 and x.is_leaf and x.requires_grad
        (x * x)[0].sum().backward()
        assert x.grad[0].tolist() == (2 * x[0]).tolist()
