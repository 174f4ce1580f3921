"""Matrix products against torch: matmul in all its ranks (batched, broadcast, 1-D), mm, bmm,
einsum; gradients, non-contiguous inputs, gradcheck and PyTorch's shape error messages."""

import numpy as np
import pytest
import torch

import ember
from tests.harness import check_gradcheck, check_op

# Every product on NumPy's BLAS, then on MKL (the [mkl] extra)
pytestmark = pytest.mark.usefixtures("each_blas")

# BLAS sums in a different order than torch's kernels: 1e-5 absolute slack on products.
MM = dict(atol=1e-5)

MATMUL_SHAPES = [
    ((3, 4), (4, 5)),
    ((4,), (4, 5)),
    ((3, 4), (4,)),
    ((4,), (4,)),
    ((2, 3, 4), (4, 5)),
    ((3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (3, 4, 2)),
    ((2, 3, 4), (4,)),
    ((4,), (2, 4, 3)),
]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
def test_matmul(sa, sb):
    check_op([sa, sb], lambda t, a, b: a @ b, **MM)
    check_op([sa, sb], lambda t, a, b: t.matmul(a, b), transpose=(0, 1), **MM)
    check_gradcheck([sa, sb], lambda t, a, b: a @ b)


def test_mm_bmm_mv_dot_outer():
    check_op([(3, 4), (4, 2)], lambda t, a, b: t.mm(a, b), transpose=(0, 1), **MM)
    check_op([(3, 4), (4, 2)], lambda t, a, b: a.mm(b), **MM)
    check_op([(2, 3, 4), (2, 4, 5)], lambda t, a, b: t.bmm(a, b), transpose=(0, 1), **MM)
    check_op([(3, 4), (4,)], lambda t, a, b: t.mv(a, b), **MM)
    check_op([(4,), (4,)], lambda t, a, b: t.dot(a, b), **MM)
    check_op([(3,), (4,)], lambda t, a, b: t.outer(a, b), **MM)
    check_op([(3, 4), (3, 2), (2, 4)], lambda t, c, a, b: t.addmm(c, a, b, beta=0.5, alpha=2), **MM)
    check_gradcheck([(2, 3, 4), (2, 4, 5)], lambda t, a, b: t.bmm(a, b))
    check_gradcheck([(3, 4), (4, 2)], lambda t, a, b: t.mm(a, b))


EINSUM = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ij->ji", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("i,i->", [(4,), (4,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij,ij->i", [(3, 4), (3, 4)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 2)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("ij,jk", [(3, 4), (4, 5)]),
]


@pytest.mark.parametrize("eq,shapes", EINSUM)
def test_einsum(eq, shapes):
    check_op(shapes, lambda t, *xs: t.einsum(eq, *xs), **MM)
    check_gradcheck(shapes, lambda t, *xs: t.einsum(eq, *xs))


def test_einsum_list_operands():
    check_op([(3, 4), (4, 5)], lambda t, a, b: t.einsum("ij,jk->ik", [a, b]), **MM)


def test_matmul_shape_errors():
    with pytest.raises(RuntimeError,
                       match=r"mat1 and mat2 shapes cannot be multiplied \(4x400 and 256x120\)"):
        ember.zeros(4, 400) @ ember.zeros(256, 120)
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(1x3 and 4x5\)"):
        ember.matmul(ember.zeros(3), ember.zeros(4, 5))
    with pytest.raises(RuntimeError, match="inconsistent tensor size"):
        ember.dot(ember.zeros(3), ember.zeros(4))
    with pytest.raises(RuntimeError, match=r"\[2, 3, 4\] and \[2, 5, 6\]"):
        ember.zeros(2, 3, 4) @ ember.zeros(2, 5, 6)
    with pytest.raises(RuntimeError, match="both arguments to matmul need to be at least 1D"):
        ember.tensor(1.0) @ ember.zeros(3)
    with pytest.raises(RuntimeError, match="batch1 must be a 3D tensor"):
        ember.bmm(ember.zeros(3, 4), ember.zeros(4, 5))
    with pytest.raises(RuntimeError, match="expected m1 and m2 to have the same dtype"):
        ember.zeros(2, 2) @ ember.zeros(2, 2, dtype=ember.float64)
    with pytest.raises(RuntimeError, match="number of subscripts"):
        ember.einsum("ijk,jk->i", ember.zeros(2, 3), ember.zeros(3, 4))


def test_det_gradient():
    """det was computed outside autograd (no grad_fn); its gradient is det(A) inv(A)^T."""
    check_op([(3, 3)], lambda t, a: t.det(a))
    check_op([(2, 4, 4)], lambda t, a: a.det(), seed=1)
    check_gradcheck([(3, 3)], lambda t, a: a.det())


def test_diagonal_is_a_view():
    """diagonal returned a copy: x.diagonal().fill_(0) left x unchanged and an in-place op on
    the diagonal of a graph tensor did not reach its gradient. In torch it is a view."""
    for lib in (ember, torch):
        x = lib.arange(9.0).view(3, 3)
        x.diagonal().fill_(0)
        x.diagonal(1).add_(10)
        b = lib.arange(18.0).view(2, 3, 3)
        b.diagonal(dim1=-2, dim2=-1).fill_(-1)
        assert x.tolist() == [[0, 11, 2], [3, 0, 15], [6, 7, 0]]
        assert b[1].tolist() == [[-1, 10, 11], [12, -1, 14], [15, 16, -1]]
    w = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)

    def fn(t, x):
        h = x * 1
        h.diagonal(1).mul_(3)
        return h * h

    check_op([w], fn)


def _mul_diagonal_in_place(t, x):
    h = x * 1.5
    h.diagonal(1).mul_(3)
    return h


@pytest.mark.parametrize("shape,fn", [
    ((3, 4), lambda t, x: x.diagonal()),
    ((3, 4), lambda t, x: t.diagonal(x, 1)),
    ((4, 3), lambda t, x: x.diagonal(-1)),
    ((2, 3, 3), lambda t, x: x.diagonal(dim1=-2, dim2=-1)),
    ((3, 2, 4), lambda t, x: x.diagonal(1, 2, 0)),
    ((3, 4), _mul_diagonal_in_place),
], ids=["main", "offset", "negative_offset", "batched", "dims", "in_place_through_view"])
def test_diagonal_view_gradcheck(shape, fn):
    """diagonal became a view since a760f12: float64 gradchecks of it and of an in-place op
    on the diagonal of a graph tensor."""
    check_gradcheck([shape], fn)


def _low_rank(rank, n=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, rank)) @ rng.standard_normal((rank, n))


@pytest.mark.parametrize("a", [(2, 3, 3), (1, 1), (4, 4), _low_rank(2), _low_rank(1),
                               np.zeros((3, 3)), np.array([[0.1, 1.1], [1.1, 0.1]]),
                               np.stack([_low_rank(2), _low_rank(3, seed=1)])],
                         ids=["batched", "1x1", "4x4", "rank2", "rank1", "zeros", "negative",
                              "batched_singular"])
def test_det_gradcheck(a):
    """float64 gradchecks of Det (since a760f12) beyond one 3x3: batches, sizes, a negative
    det and singular matrices (det is a polynomial, so its gradient adj(A)^T is exact there)."""
    check_gradcheck([a], lambda t, x: x.det())
