"""cross_entropy's lean common-case op (2-D logits, valid int64 indices, mean) against torch,
and the cases that must leave it: ignore_index among the targets, bad targets, int32 targets."""

import numpy as np
import pytest

import ember
from tests.harness import check_gradcheck, check_op

T8 = np.array([0, 3, 9, 2, 2, 7, 1, 5], np.int64)


def F(t):
    return t.nn.functional


def test_fast_path_vs_torch():
    check_op([(8, 10), T8], lambda t, x, y: F(t).cross_entropy(x, y))
    check_gradcheck([(8, 10), T8], lambda t, x, y: F(t).cross_entropy(x, y))


def test_ignore_index_among_targets_takes_general_path():
    check_op([(8, 10), T8], lambda t, x, y: F(t).cross_entropy(x, y, ignore_index=2))


def test_module_default_is_fast_and_matches_general():
    from ember.ops.loss import CrossEntropy

    ember.manual_seed(0)
    x = ember.randn(8, 10, requires_grad=True)
    y = ember.tensor(T8)
    fast = ember.nn.CrossEntropyLoss()(x, y)
    assert type(fast.grad_fn).__name__ == "CrossEntropyMean"
    general = CrossEntropy.apply(x, T8, None, -100, "mean", 0.0)
    np.testing.assert_array_equal(fast.detach().numpy(), general.detach().numpy())
    assert fast.dtype == ember.float32


def test_out_of_range_target_still_raises():
    x = ember.randn(2, 3)
    with pytest.raises(IndexError, match="Target 3 is out of bounds"):
        F(ember).cross_entropy(x, ember.tensor([0, 3]))
