"""Non-contiguous (transposed, strided) inputs and hypothesis shapes for the ops whose family
files test them only on contiguous data: each against torch, with input gradients."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

from tests.harness import check_gradcheck, check_op

IDX = np.array([[0, 2, 1, 0], [1, 1, 0, 2], [2, 0, 0, 1]])
IDX_UNIQUE = np.array([[0, 2, 1, 0], [1, 1, 0, 2], [2, 0, 2, 1]])  # scatter: no index twice
MASK = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, True]])

# name: (specs, fn); input 0 is passed transposed (a non-contiguous view)
TRANSPOSED = {
    "einsum": ([(4, 3), (3, 5)], lambda t, a, b: t.einsum("ij,jk->ik", a, b)),
    "gather": ([(4, 3), IDX], lambda t, x, i: t.gather(x, 1, i)),
    "scatter": ([(3, 4), (3, 4), IDX_UNIQUE], lambda t, x, s, i: x.scatter(0, i, s)),
    "scatter_add": ([(3, 4), (3, 4), IDX], lambda t, x, s, i: t.scatter_add(x, 0, i, s)),
    "masked_fill": ([(3, 4), MASK], lambda t, x, m: x.masked_fill(m, 0.5)),
    "masked_select": ([(3, 4), MASK], lambda t, x, m: t.masked_select(x, m)),
    "sort": ([(4, 3)], lambda t, x: x.sort(1)),
    "topk": ([(4, 3)], lambda t, x: t.topk(x, 2, dim=0)),
    "cat": ([(4, 3), (4, 2)], lambda t, a, b: t.cat([a, b], 1)),
    "pow": ([(4, 3), (4, 3)], lambda t, a, b: a.abs() ** b),
    "cumsum": ([(4, 3)], lambda t, x: x.cumsum(0)),
    "argsort": ([(4, 3)], lambda t, x: x.argsort(1).float() + x),
    "compare": ([(4, 3), (4, 3)], lambda t, a, b: t.where(a > b, a, b)),
    "getitem_adv": ([(4, 3)], lambda t, x: x[t.tensor([2, 0, 2]), 1:]),
    "setitem": ([(4, 3), (4,)],
                lambda t, x, v: (lambda y: (y.__setitem__((slice(None), 1), v), y)[1])(x * 1)),
    "inplace_add_": ([(4, 3), (4, 3)], lambda t, x, o: (x * 1).add_(o)),
    "matmul_bmm": ([(2, 4, 3), (2, 3, 5)], lambda t, a, b: t.bmm(a, b)),
}


@pytest.mark.parametrize("name", sorted(TRANSPOSED))
def test_transposed_inputs(name):
    specs, fn = TRANSPOSED[name]
    check_op(specs, fn, transpose=(0,), atol=1e-5)
    check_gradcheck(specs, fn)


def test_strided_and_offset_views():
    # every other column, a reversed (flipped-copy) input and a column slice
    check_op([(4, 6)], lambda t, x: (x[:, ::2] * x[:, 1::2]).exp().sum(1))
    check_op([(4, 6), (3, 5)], lambda t, a, b: a[1:, ::2] @ b[:, 1:])
    check_op([(5, 4)], lambda t, x: t.softmax(x[::2].t(), 0))


@settings(max_examples=25, deadline=None)
@given(shapes=mutually_broadcastable_shapes(signature="(m,n),(n,p)->(m,p)",
                                            max_dims=2, max_side=4))
def test_matmul_hypothesis_batch_broadcast(shapes):
    sa, sb = shapes.input_shapes
    check_op([sa, sb], lambda t, a, b: a @ b, atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple), data=st.data())
def test_getitem_hypothesis_slices(shape, data):
    idx = tuple(slice(data.draw(st.integers(0, n - 1)), data.draw(st.integers(1, n)),
                      data.draw(st.integers(1, 2))) for n in shape)
    check_op([shape], lambda t, x: x[idx] * 2)


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple), data=st.data())
def test_cat_stack_hypothesis(shape, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    check_op([shape, shape], lambda t, a, b: t.cat([a, b * 2], dim))
    check_op([shape, shape], lambda t, a, b: t.stack([a, b], dim))

