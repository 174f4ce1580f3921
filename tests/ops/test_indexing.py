"""Indexing against torch: basic and advanced ``__getitem__``, ``__setitem__``, gather/scatter,
masks, sort/topk, tril/triu; gradients and gradcheck; out-of-range errors."""

import numpy as np
import pytest
import torch

import ember
from tests.harness import check_gradcheck, check_op

IDX = np.array([2, 0, 2])
GETITEM = {
    "int": lambda t, x: x[1],
    "neg_int": lambda t, x: x[-1, 2],
    "slice": lambda t, x: x[1:3],
    "slice_step": lambda t, x: x[::2, 1:],
    "none": lambda t, x: x[None, :, None],
    "ellipsis": lambda t, x: x[..., 1],
    "ellipsis_none": lambda t, x: x[..., None, 1:3],
    "bool_mask": lambda t, x: x[x > 0],
    "bool_row_mask": lambda t, x: x[t.tensor([True, False, True, True])],
    "int_tensor": lambda t, x: x[t.tensor(IDX)],
    "int_list": lambda t, x: x[[0, 3, 3]],
    "int_tensor_dim1": lambda t, x: x[:, t.tensor(IDX)],
    "two_int_tensors": lambda t, x: x[t.tensor([0, 1, 3]), t.tensor([4, 0, 4])],
    "mixed": lambda t, x: x[1:, t.tensor([0, 2])],
    "2d_index": lambda t, x: x[t.tensor([[0, 1], [3, 3]])],
    # an integer beside index tensors: torch applies it first (NumPy moved the dims to front)
    "int_then_list": lambda t, x: x[1, [4, 0, 2]],
    "int_slice_list": lambda t, x: x[None, [0, 3], None, 2],
    "int_tensor0d_none_list": lambda t, x: x[t.tensor(2), None, [3, 1]],
    "neg_int_list_2d": lambda t, x: x[-1, None, [[1], [2]]],
    # a bool beside index lists is a new axis, not the integer 1 (True read as x[1, [0, 1]])
    "true_list": lambda t, x: x[True, [0, 1]],
    "true_int_list": lambda t, x: x[True, 0, [0, 1]],
    "int_list_true": lambda t, x: x[0, [1, 2], True],
    "empty_list": lambda t, x: x[[]],  # was an error: NumPy reads [] as a float index
    "empty_list_dim1": lambda t, x: x[1:, []],
}


@pytest.mark.parametrize("name", sorted(GETITEM))
def test_getitem(name):
    fn = GETITEM[name]
    check_op([(4, 5)], fn)
    check_op([(4, 5)], fn, transpose=(0,), seed=1)
    check_gradcheck([(4, 5)], fn)


def test_getitem_of_a_transpose():
    """An index into a transposed sequence (an LSTM's batch_first output, ``out[:, -1]``): the
    gradient matches torch's and reaches the transpose's input as one contiguous array (laid
    out as the indexed view is, so the layer's backward reads it without a copy)."""
    check_op([(3, 4, 5)], lambda t, x: (x * 2).transpose(0, 1)[:, -1])
    check_op([(3, 4, 5)], lambda t, x: (x * 2).permute(2, 0, 1)[1:, ::2], seed=1)
    check_op([(3, 4, 5)], lambda t, x: x[..., 1:], transpose=(0,), seed=2)
    check_gradcheck([(3, 4, 5)], lambda t, x: (x * 2).transpose(0, 1)[:, -1])
    x = ember.randn(3, 4, 5, requires_grad=True)
    seen = []
    y = x * 2
    y.register_hook(seen.append)
    y.transpose(0, 1)[:, -1].sum().backward()
    assert seen[0].is_contiguous()
    np.testing.assert_array_equal(seen[0].numpy()[:-1], 0)
    np.testing.assert_array_equal(seen[0].numpy()[-1], 1)


SETITEM = {
    "int": lambda x, v: x.__setitem__(1, v[0]),
    "slice": lambda x, v: x.__setitem__(slice(0, 2), v[:2]),
    "mask": lambda x, v: x.__setitem__(x > 0, 0.5),
    "scalar": lambda x, v: x.__setitem__((0, 1), 7.0),
    "int_tensor": lambda x, v: x.__setitem__(IDX[:2], v[:2]),
    "broadcast": lambda x, v: x.__setitem__((slice(None), 0), v[0, 0]),
    # a value with leading 1s (torch strips them): into a scalar place, a row, an advanced index
    "one_elem_to_scalar": lambda x, v: x.__setitem__((0, 1), v[0, :1]),
    "lead_ones_row": lambda x, v: x.__setitem__(2, v[:1]),
    "lead_ones_scalar_row": lambda x, v: x.__setitem__(2, v[:1, :1]),
    "lead_ones_advanced": lambda x, v: x.__setitem__((slice(None), IDX[:2]), v[None, :1, :2]),
    "int_beside_list": lambda x, v: x.__setitem__((2, None, [4, 0]), v[:1, :2]),
    "true_beside_list": lambda x, v: x.__setitem__((True, [0]), v[:1, :1]),
}


@pytest.mark.parametrize("name", sorted(SETITEM))
def test_setitem(name):
    op = SETITEM[name]

    def fn(t, x, v):
        y = x * 1
        op(y, v)
        return y * 2

    check_op([(4, 5), (3, 5)], fn)
    check_gradcheck([(4, 5), (3, 5)], fn)


def test_setitem_without_grad_writes_in_place():
    x = ember.zeros(3, 4)
    x[1, 2] = 5
    x[0] = ember.ones(4)
    x[x > 4] = -1.0
    assert x.tolist() == [[1, 1, 1, 1], [0, 0, -1, 0], [0, 0, 0, 0]]


def test_gather_scatter_family():
    idx = np.array([[0, 2, 1], [1, 1, 0]])
    check_op([(2, 3), idx], lambda t, x, i: t.gather(x, 1, i))
    check_op([(3, 3), idx], lambda t, x, i: x.gather(0, i))
    check_op([(3, 3), (2, 3), np.array([[0, 1, 2], [2, 0, 1]])],
             lambda t, x, s, i: t.scatter(x, 0, i, s))
    check_op([(3, 3), (2, 3), idx], lambda t, x, s, i: t.scatter_add(x, 0, i, s))
    check_op([(3, 3), (2, 3), idx], lambda t, x, s, i: x.scatter_add(1, i, s))
    check_op([(4, 3), np.array([3, 0, 0])], lambda t, x, i: t.index_select(x, 0, i))
    check_op([(4, 3), np.array([2, 0])], lambda t, x, i: x.index_select(1, i), transpose=(0,))
    for fn in (lambda t, x, i: t.gather(x, 1, i), lambda t, x, i: x.index_select(0, i[0])):
        check_gradcheck([(3, 3), idx], fn)
    check_gradcheck([(3, 3), (2, 3), idx], lambda t, x, s, i: t.scatter_add(x, 0, i, s))
    check_gradcheck([(3, 3), (2, 3), np.array([[0, 1, 2], [2, 0, 1]])],
                    lambda t, x, s, i: t.scatter(x, 0, i, s))


def test_masks_where_nonzero():
    m = np.array([[True, False, True], [False, False, True]])
    check_op([(2, 3), m], lambda t, x, k: x.masked_fill(k, -1.0))
    check_op([(2, 3), m[0]], lambda t, x, k: t.masked_fill(x, k, 2.0))
    check_op([(2, 3), m], lambda t, x, k: t.masked_select(x, k))
    check_op([(2, 3), m[1]], lambda t, x, k: x.masked_select(k))
    check_op([(2, 3), (2, 3), m], lambda t, x, y, k: t.where(k, x, y), transpose=(0,))
    check_op([(2, 3), (3,), m], lambda t, x, y, k: t.where(k, x, y))
    check_op([m], lambda t, k: t.nonzero(k), grad=False)
    check_op([m], lambda t, k: k.nonzero(as_tuple=True), grad=False)
    check_op([m], lambda t, k: t.where(k), grad=False)
    for fn in (lambda t, x, k: x.masked_fill(k, -1.0), lambda t, x, k: x.masked_select(k)):
        check_gradcheck([(2, 3), m], fn)


def test_sort_topk_argsort():
    x = np.array([[3., 1., 2., 5.], [0., -1., 4., 4.5]], dtype=np.float32)
    for fn in (lambda t, a: t.sort(a), lambda t, a: a.sort(dim=0, descending=True),
               lambda t, a: t.topk(a, 2), lambda t, a: a.topk(3, dim=1, largest=False),
               lambda t, a: a.topk(1, 0)):
        check_op([x], fn)
    check_op([x], lambda t, a: t.argsort(a, 1), grad=False)
    check_op([x], lambda t, a: a.argsort(0, descending=True), grad=False)
    check_gradcheck([x.astype(np.float64)], lambda t, a: t.sort(a)[0])
    check_gradcheck([x.astype(np.float64)], lambda t, a: t.topk(a, 2)[0])


@pytest.mark.parametrize("k", [0, 1, -1])
def test_tril_triu(k):
    check_op([(4, 5)], lambda t, x: t.tril(x, k))
    check_op([(2, 4, 4)], lambda t, x: x.triu(k), transpose=(0,))
    check_gradcheck([(4, 5)], lambda t, x: t.triu(x, k))
    check_gradcheck([(2, 4, 4)], lambda t, x: x.tril(k))


def test_index_out_of_range_errors():
    x = ember.zeros(3, 4)
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 0 with size 3"):
        x[3]
    with pytest.raises(IndexError, match="index 7 is out of bounds for dimension 1 with size 4"):
        x[0, 7]
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0 with size 3"):
        x[ember.tensor([0, 5])]
    with pytest.raises(IndexError, match="too many indices for tensor of dimension 2"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match="index out of range in self"):
        x.index_select(0, ember.tensor([3]))
    with pytest.raises(RuntimeError, match="index 9 is out of bounds for dimension 1 with size 4"):
        x.gather(1, ember.tensor([[9]]))
    with pytest.raises(IndexError, match="The shape of the mask"):
        x[ember.tensor([True, False])]
    with pytest.raises(RuntimeError, match="selected index k out of range"):
        x.topk(5)
    # torch agrees that these are errors of the same class
    with pytest.raises(IndexError):
        torch.zeros(3, 4)[3]


def test_integer_index_gives_a_writable_zero_dim_view():
    for lib in (ember, torch):
        x = lib.zeros(2, 3)
        x[1, 2].fill_(7.0)
        x[0, -1].add_(2.0)
        v = x[1, 0]
        v += 5
        assert x.tolist() == [[0.0, 0.0, 2.0], [5.0, 0.0, 7.0]] and v.shape == ()


def test_gather_scatter_refuse_negative_indices_like_torch():
    for lib in (ember, torch):
        x = lib.zeros(2, 3)
        with pytest.raises(RuntimeError, match="index -1 is out of bounds for dimension 1 with size 3"):
            x.gather(1, lib.tensor([[-1]]))
        with pytest.raises(RuntimeError, match="index -1 is out of bounds for dimension 0 with size 2"):
            x.scatter(0, lib.tensor([[-1]]), lib.ones(1, 1))
        with pytest.raises(IndexError, match="index out of range in self"):
            x.index_select(0, lib.tensor([-1]))


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_include_self(reduce, include_self):
    """include_self=False leaves the input out of the places scattered to (sum ignored the flag;
    prod multiplied each first source value in twice)."""
    src = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)
    index = np.array([[0, 0, 2], [2, 2, 1]])
    out = []
    for lib in (ember, torch):
        x = lib.full((2, 3), 3.0)
        out.append(x.scatter_reduce(1, lib.tensor(index), lib.tensor(src), reduce,
                                    include_self=include_self).tolist())
    assert out[0] == out[1]


def test_scatter_index_add_shape_errors_like_torch():
    """Index/source shapes that torch refuses: scatter with a src smaller than index filled
    places from a broadcast src silently; scatter_add/scatter_reduce with an index wider than
    self, index_add/index_copy with a mismatched source and kthvalue with k out of range raised
    raw NumPy errors."""
    cases = [
        (RuntimeError, r"Expected index \[1, 2\] to be no larger than self \[2, 3\] apart from "
                       r"dimension 1 and to be no larger size than src \[1, 1\]",
         lambda t, x: x.scatter(1, t.tensor([[0, 1]]), t.ones(1, 1))),
        (RuntimeError, r"Expected index \[3, 1\] to be no larger than self",
         lambda t, x: x.scatter_add(1, t.tensor([[0], [1], [1]]), t.ones(3, 1))),
        (RuntimeError, "Index tensor must have the same number of dimensions as self tensor",
         lambda t, x: x.scatter(1, t.tensor([0, 1]), t.ones(1, 2))),
        (RuntimeError, "index 3 is out of bounds for dimension 1 with size 3",
         lambda t, x: x.scatter_reduce(1, t.tensor([[2, 3]]), t.ones(1, 2), "amax")),
        (RuntimeError, r"source tensor shape must match self tensor shape, excluding the "
                       r"specified dimension. Got self.shape = \[2, 3\] source.shape = \[2, 4\]",
         lambda t, x: x.index_add(0, t.tensor([1, 1]), t.ones(2, 4))),
        (RuntimeError, r"index_add_\(\): Number of indices \(2\) should be equal to "
                       r"source.size\(dim\): \(3\), for dim: 0",
         lambda t, x: x.index_add(0, t.tensor([1, 1]), t.ones(3, 3))),
        (IndexError, r"index_copy_\(\): Number of indices \(2\) should be equal to "
                     r"source.size\(dim\) \(3\)",
         lambda t, x: x.index_copy(0, t.tensor([1, 0]), t.ones(3, 3))),
        (IndexError, r"index_add_\(\): Index is supposed to be a vector",
         lambda t, x: x.index_add(0, t.tensor([[1]]), t.ones(1, 3))),
        (RuntimeError, r"kthvalue\(\): selected number k out of range for dimension 1",
         lambda t, x: x.kthvalue(4, 1)),
    ]
    for exc, msg, fn in cases:
        for lib in (ember, torch):
            with pytest.raises(exc, match=msg):
                fn(lib, lib.zeros(2, 3))
    # what torch accepts still works: a scalar value scattered by an index wider than self
    # along dim, a source no larger than index anywhere
    check_op([(2, 3)], lambda t, x: x.scatter(1, t.tensor([[0, 1, 2, 0]]), 1.5), grad=False)
    check_op([(2, 3), (1, 3)], lambda t, x, s: x.scatter(0, t.tensor([[1, 0, 1]]), s))
    check_op([(2, 3), (2, 2)], lambda t, x, s: x.index_add(1, t.tensor([0, 2]), s, alpha=3))


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_gradients(reduce, include_self):
    """scatter_reduce other than sum with include_self returned a tensor without grad_fn (no
    gradient reached input or src); amax/amin share the gradient between ties as torch does."""
    x = np.array([[1, -2, 2, 1], [2, 1, -1, 2], [1, 2, 2, -2]], np.float32)
    src = np.array([[2, 2, -1, 1], [2, 1, 2, 2], [-2, 1, 2, 2]], np.float32)  # ties with x
    idx = np.array([[0, 1, 1, 3], [2, 2, 2, 2], [0, 0, 3, 3]])
    check_op([x, src], lambda t, x, s: x.scatter_reduce(1, t.tensor(idx), s, reduce,
                                                        include_self=include_self))
    check_op([(3, 4), (3, 4)], lambda t, x, s: t.scatter_reduce(x, 1, t.tensor(idx), s, reduce,
                                                               include_self=include_self), seed=1)
    e = ember.tensor([[5, 2, 7], [1, 1, 1]]).scatter_reduce(
        1, ember.tensor([[0, 0], [2, 2]]), ember.tensor([[2, 3], [-4, 1]]), reduce,
        include_self=include_self)
    t = torch.tensor([[5, 2, 7], [1, 1, 1]]).scatter_reduce(
        1, torch.tensor([[0, 0], [2, 2]]), torch.tensor([[2, 3], [-4, 1]]), reduce,
        include_self=include_self)
    assert e.tolist() == t.tolist()  # integer mean rounds down, as in torch


def test_masked_scatter_gradient_and_error():
    """masked_scatter was computed outside autograd (no grad_fn): torch's gradient is g where
    the mask is False for input, and the i-th True place's g for the i-th source element."""
    mask = np.array([[True, False, True], [False, True, True]])
    check_op([(2, 3), (2, 3)], lambda t, x, s: x.masked_scatter(t.tensor(mask), s))
    check_op([(2, 3), (7,)], lambda t, x, s: x.masked_scatter(t.tensor(mask[0]), s), seed=1)
    for lib in (ember, torch):
        with pytest.raises(RuntimeError, match="Number of elements of source < number of ones"):
            lib.zeros(2, 3).masked_scatter(lib.tensor(mask), lib.ones(3))


def test_take_along_dim_like_torch():
    """Without dim the indices are flattened too (ember kept their shape); with dim, input and
    indices broadcast against each other outside dim (ember only expanded the indices)."""
    fns = [lambda t, x: x.take_along_dim(t.tensor([[0], [5]])),
           lambda t, x: t.take_along_dim(x, x.argsort(1), 1),
           lambda t, x: x.take_along_dim(x.argmax(-1, keepdim=True), dim=-1),
           lambda t, x: t.take_along_dim(x[:1], t.tensor([[0, 1], [2, 2]]), 1),
           lambda t, x: t.take_along_dim(x[:, :1], t.tensor([[0, 0, 0]]), 0)]
    for fn in fns:
        check_op([(2, 3)], fn)
    for lib in (ember, torch):
        with pytest.raises(RuntimeError, match="input and indices should have the same number "
                                               "of dimensions"):
            lib.zeros(2, 3).take_along_dim(lib.tensor([[[0]]]), 1)


def test_index_put_put_fill_diagonal():
    """index_put(_), put(_) and fill_diagonal_ were missing (AttributeError)."""
    ii = (np.array([0, 0, 1]), np.array([1, 1, 2]))
    check_op([(2, 3), (3,)], lambda t, x, v: x.index_put(tuple(map(t.tensor, ii)), v))
    check_op([(2, 3), (3,)], lambda t, x, v: t.index_put(x, tuple(map(t.tensor, ii)), v,
                                                        accumulate=True))
    check_op([(2, 3), (1, 3)], lambda t, x, v: x.index_put([t.tensor([1, 1])], v, True))
    check_op([(2, 3), (3,)], lambda t, x, v: x.put(t.tensor([5, 0, 5]), v, accumulate=True))

    def fill(t, x, **kw):
        y = x * 2
        return y.fill_diagonal_(-1.5, **kw)

    check_op([(3, 3)], fill)
    check_op([(5, 2)], lambda t, x: fill(t, x, wrap=True))
    check_op([(2, 2, 2)], fill)
    for lib in (ember, torch):
        x = lib.zeros(2, 3)
        assert x.index_put_((lib.tensor([1]), lib.tensor([2])), lib.tensor(9.0)) is x
        assert x.put_(lib.tensor([0]), lib.tensor([4.0])).tolist() == [[4, 0, 0], [0, 0, 9]]
        with pytest.raises(RuntimeError, match="all dimensions of input must be of equal length"):
            lib.zeros(2, 3, 2).fill_diagonal_(1)


def test_bincount_isin_tri_indices_broadcast_shapes():
    """torch.bincount, isin, tril_indices, triu_indices and broadcast_shapes were missing."""
    x = np.array([1, 1, 3, 0])
    cases = [
        lambda t: t.bincount(t.tensor(x)), lambda t: t.tensor(x).bincount(minlength=6),
        lambda t: t.bincount(t.tensor(x), weights=t.tensor([0.5, 1.0, 2.0, 0.25])),
        lambda t: t.bincount(t.tensor(x), t.tensor([1, 2, 3, 4])),  # int weights: float64
        lambda t: t.isin(t.tensor([[1, 2], [3, 4]]), t.tensor([4, 1])),
        lambda t: t.isin(t.tensor([1.0, 2.0]), 2.0, invert=True), lambda t: t.isin(2, t.tensor(x)),
        lambda t: t.tril_indices(3, 4, 1), lambda t: t.triu_indices(4, 3, -1, dtype=t.int32),
    ]
    for fn in cases:
        e, t = fn(ember), fn(torch)
        assert str(e.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
        np.testing.assert_array_equal(e.numpy(), t.numpy())
    assert ember.broadcast_shapes((2, 1), 3) == torch.broadcast_shapes((2, 1), 3) == (2, 3)
    for lib in (ember, torch):
        with pytest.raises(RuntimeError, match="bincount only supports 1-d non-negative"):
            lib.bincount(lib.tensor([-1, 2]))
        with pytest.raises(RuntimeError):
            lib.broadcast_shapes((2,), (3,))


def _distinct(shape, seed=0):
    """float64 values at least 0.27 apart (no ties for amax/amin), none near 0 (prod)."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.37 - 1.13 + rng.uniform(0, 0.1, n)).reshape(shape)


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_gradcheck(reduce, include_self):
    idx = np.array([[0, 1, 1, 3], [2, 2, 2, 2], [0, 0, 3, 3]])
    check_gradcheck([_distinct((3, 4)), _distinct((3, 4), 1) + 0.05],
                    lambda t, x, s: x.scatter_reduce(1, t.tensor(idx), s, reduce,
                                                     include_self=include_self))


GRADCHECK_NEW = {
    "masked_scatter": ([(2, 3), (2, 3)], lambda t, x, s: x.masked_scatter(
        t.tensor([[True, False, True], [False, True, True]]), s)),
    "masked_scatter_broadcast_mask": ([(2, 3), (7,)], lambda t, x, s: x.masked_scatter(
        t.tensor([True, False, True]), s)),
    "take_along_dim_flat": ([(2, 3)], lambda t, x: x.take_along_dim(t.tensor([[0], [5], [5]]))),
    "take_along_dim_sort": ([(2, 3)], lambda t, x: t.take_along_dim(x, x.argsort(1), 1)),
    "take_along_dim_broadcast": ([(2, 3)], lambda t, x: t.take_along_dim(
        x[:1], t.tensor([[0, 1], [2, 2]]), 1)),
    "take_along_dim_broadcast0": ([(2, 3)], lambda t, x: t.take_along_dim(
        x[:, :1], t.tensor([[0, 0, 1]]), 0)),
    "index_put": ([(2, 3), (3,)], lambda t, x, v: x.index_put(
        (t.tensor([0, 1]), t.tensor([1, 2])), v[:2])),
    "index_put_accumulate": ([(2, 3), (3,)], lambda t, x, v: t.index_put(
        x, (t.tensor([0, 0, 1]), t.tensor([1, 1, 2])), v, accumulate=True)),
    "index_put_rows_accumulate": ([(2, 3), (1, 3)], lambda t, x, v: x.index_put(
        [t.tensor([1, 1])], v, True)),
    "put": ([(2, 3), (3,)], lambda t, x, v: x.put(t.tensor([5, 0, 2]), v)),
    "put_accumulate": ([(2, 3), (3,)], lambda t, x, v: x.put(t.tensor([5, 0, 5]), v,
                                                              accumulate=True)),
    "fill_diagonal_": ([(3, 3)], lambda t, x: (x * 2).fill_diagonal_(-1.5)),
    "fill_diagonal_wrap": ([(5, 2)], lambda t, x: (x * 2).fill_diagonal_(-1.5, wrap=True)),
    "fill_diagonal_3d": ([(2, 2, 2)], lambda t, x: (x * 2).fill_diagonal_(-1.5)),
}


@pytest.mark.parametrize("name", sorted(GRADCHECK_NEW))
def test_new_indexing_ops_gradcheck(name):
    """float64 gradchecks of the ops added or moved into autograd since a760f12."""
    specs, fn = GRADCHECK_NEW[name]
    check_gradcheck(specs, fn)
