"""Shape ops against torch (forward and gradients, non-contiguous inputs, gradcheck), and the
view semantics that PyTorch promises: shared memory and a shared version counter."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ember
from tests.harness import check_gradcheck, check_op

SHAPE = {
    "reshape": ((2, 3, 4), lambda t, x: x.reshape(4, -1)),
    "reshape_fn": ((2, 3, 4), lambda t, x: t.reshape(x, (3, 8))),
    "view": ((2, 3, 4), lambda t, x: x.contiguous().view(6, 4)),
    "t": ((3, 4), lambda t, x: x.t()),
    "T": ((3, 4), lambda t, x: x.T),
    "mT": ((2, 3, 4), lambda t, x: x.mT),
    "flatten": ((2, 3, 4), lambda t, x: x.flatten()),
    "flatten_1": ((2, 3, 4), lambda t, x: t.flatten(x, 1)),
    "unflatten": ((2, 12), lambda t, x: x.unflatten(1, (3, 4))),
    "permute": ((2, 3, 4), lambda t, x: x.permute(2, 0, 1)),
    "transpose": ((2, 3, 4), lambda t, x: t.transpose(x, 0, 2)),
    "squeeze": ((2, 1, 4), lambda t, x: x.squeeze()),
    "squeeze_dim": ((2, 1, 4), lambda t, x: t.squeeze(x, 1)),
    "unsqueeze": ((2, 3), lambda t, x: x.unsqueeze(1)),
    "unsqueeze_neg": ((2, 3), lambda t, x: t.unsqueeze(x, -1)),
    "expand": ((3, 1), lambda t, x: x.expand(2, 3, 4)),
    "expand_neg": ((3, 1), lambda t, x: x.expand(-1, 5)),
    "expand_as": ((3, 1), lambda t, x: x.expand_as(t.zeros(3, 4))),
    "repeat": ((2, 3), lambda t, x: x.repeat(2, 1, 3)),
    "tile": ((2, 3), lambda t, x: t.tile(x, (2, 2))),
    "flip": ((2, 3, 4), lambda t, x: t.flip(x, (0, 2))),
    "flip_m": ((2, 3), lambda t, x: x.flip(-1)),
    "roll": ((3, 4), lambda t, x: t.roll(x, 1, 0)),
    "roll_multi": ((3, 4), lambda t, x: x.roll((1, -2), (0, 1))),
    "roll_flat": ((3, 4), lambda t, x: t.roll(x, 5)),
    "narrow": ((4, 5), lambda t, x: x.narrow(1, 1, 3)),
    "narrow_fn": ((4, 5), lambda t, x: t.narrow(x, 0, 2, 2)),
    "contiguous": ((3, 4), lambda t, x: x.contiguous() * 2),
    "split": ((5, 4), lambda t, x: x.split(2)),
    "split_sizes": ((5, 4), lambda t, x: t.split(x, [1, 3], dim=1)),
    "chunk": ((5, 4), lambda t, x: x.chunk(3)),
    "chunk_dim": ((5, 4), lambda t, x: t.chunk(x, 2, 1)),
    "unbind": ((3, 4), lambda t, x: x.unbind(1)),
    "unbind_fn": ((3, 4), lambda t, x: t.unbind(x)),
    "movedim": ((2, 3, 4), lambda t, x: t.movedim(x, 0, -1)),
    "clone": ((3, 4), lambda t, x: x.clone()),
    "repeat_interleave": ((3, 2), lambda t, x: x.repeat_interleave(2, dim=0)),
    "select": ((3, 4), lambda t, x: x.select(1, -1)),
    "select_fn": ((2, 3, 4), lambda t, x: t.select(x, 0, 1)),
    "unfold": ((7, 3), lambda t, x: x.unfold(0, 3, 2)),  # overlapping windows
    "unfold_gap": ((3, 8), lambda t, x: x.unfold(1, 2, 3)),  # step > size
    "unfold_twice": ((6, 5), lambda t, x: x.unfold(0, 2, 1).unfold(1, 3, 1)),  # 2-D patches
    # tensor_split by a 1-D tensor of indices (was read wrongly), by a 0-d tensor of sections,
    # by indices out of order or negative (overlapping pieces, gradients added)
    "tensor_split_tensor": ((3, 5), lambda t, x: x.tensor_split(t.tensor([1, 3]), 1)),
    "tensor_split_0d": ((5, 2), lambda t, x: t.tensor_split(x, t.tensor(2))),
    "tensor_split_overlap": ((5, 2), lambda t, x: x.tensor_split([3, 1])),
    "tensor_split_negative": ((5, 2), lambda t, x: x.tensor_split([1, -1, 9])),
    "hsplit": ((2, 6), lambda t, x: t.hsplit(x, 3)),
    "vsplit": ((4, 3), lambda t, x: x.vsplit([1, 3])),
    "dsplit": ((2, 1, 4), lambda t, x: t.dsplit(x, 2)),
}


@pytest.mark.parametrize("name", sorted(SHAPE))
def test_shape_op(name):
    shape, fn = SHAPE[name]
    check_op([shape], fn)
    if len(shape) >= 2:
        check_op([shape], fn, transpose=(0,))
    check_gradcheck([shape], fn)


def test_split_partial_use_gets_zero_grads():
    check_op([(6, 2)], lambda t, x: x.split(2)[1] * 3)
    check_op([(3, 4)], lambda t, x: x.unbind(0)[0] + x.unbind(0)[2])


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat_stack(dim):
    check_op([(2, 3), (2, 3), (2, 3)], lambda t, a, b, c: t.cat([a, b, c], dim if dim != 1 else 1))
    check_op([(2, 3), (2, 3)], lambda t, a, b: t.stack([a, b], dim), transpose=(1,))
    check_gradcheck([(2, 3), (2, 3)], lambda t, a, b: t.stack((a, b), dim))
    check_gradcheck([(2, 3), (2, 3)], lambda t, a, b: t.cat((a, b), dim))


def test_cat_different_sizes_and_promotion():
    check_op([(2, 3), (4, 3)], lambda t, a, b: t.cat([a, b]))
    check_op([(2, 3), (2, 1)], lambda t, a, b: t.cat([a, b], 1))
    check_op([(2, 3), (2, 3)], lambda t, a, b: t.cat([a, b.double()]))


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple), data=st.data())
def test_permute_flatten_hypothesis(shape, data):
    perm = data.draw(st.permutations(range(len(shape))))
    check_op([shape], lambda t, x: x.permute(*perm).flatten())
    check_op([shape], lambda t, x: x.unsqueeze(0).expand(2, *shape).sum(0))


def test_views_share_memory_and_version_counter():
    x = ember.zeros(2, 3)
    for v in (x.view(6), x.reshape(3, 2), x.t(), x.transpose(0, 1), x.permute(1, 0), x[0],
              x.unsqueeze(0), x.narrow(1, 0, 2), x.split(1)[0], x.unbind(0)[1], x.detach(),
              x.expand(4, 2, 3), x[:, 1:], x[None, ..., 0], x.flatten(), x.squeeze()):
        v0 = x._version
        assert v._version == v0
        x.add_(1)
        assert v._version == v0 + 1, "a view must see its base's version change"
    y = x[1]
    y.mul_(2)
    assert x._version == y._version and x.tolist()[1] == [32.0, 32.0, 32.0]


def test_copying_ops_do_not_alias():
    x = ember.zeros(2, 3)
    for c in (x.flip(0), x.clone(), x.repeat(1, 1), x.roll(1), x[[0, 1]], x.contiguous() + 0):
        c.add_(1)
    assert x.sum().item() == 0.0


def test_select_unfold_errors_like_torch():
    for lib in (ember, torch):
        x = lib.zeros(2, 3)
        with pytest.raises(IndexError, match=r"select\(\): index 3 out of range for tensor of "
                                             r"size \[2, 3\] at dimension 1"):
            x.select(1, 3)
        with pytest.raises(RuntimeError, match="maximum size for tensor at dimension 1 is 3 but "
                                               "size is 4"):
            x.unfold(1, 4, 1)
        with pytest.raises(RuntimeError, match="step is 0 but must be > 0"):
            x.unfold(1, 2, 0)


def test_tensor_split_hsplit_errors_like_torch():
    for lib in (ember, torch):
        with pytest.raises(RuntimeError, match="number of sections must be larger than 0, got 0"):
            lib.zeros(4).tensor_split(0)
        with pytest.raises(RuntimeError, match="torch.hsplit attempted to split along dimension 1, "
                                               "but the size of the dimension 3 is not divisible "
                                               "by the split_size 2!"):
            lib.hsplit(lib.zeros(2, 3), 2)
        with pytest.raises(RuntimeError, match="torch.vsplit requires a tensor with at least 2 "
                                               "dimension, but got a tensor with 1 dimensions!"):
            lib.vsplit(lib.zeros(4), 2)


def test_shape_errors():
    x = ember.zeros(2, 3)
    with pytest.raises(RuntimeError, match=r"shape '\[4, 2\]' is invalid for input of size 6"):
        x.reshape(4, 2)
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        x.t().view(6)
    with pytest.raises(RuntimeError, match="expanded size of the tensor"):
        x.expand(2, 4)
    with pytest.raises(RuntimeError, match="Sizes of tensors must match except in dimension 0"):
        ember.cat([x, ember.zeros(2, 4)])
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        ember.stack([x, ember.zeros(3, 2)])
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.transpose(0, 2)
    with pytest.raises(RuntimeError, match="duplicate dims"):
        x.permute(0, 0)
