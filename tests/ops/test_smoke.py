import pytest

from tests.harness import check_gradcheck, check_op


@pytest.mark.parametrize("fn", [
    lambda t, a, b: a + b, lambda t, a, b: a * b, lambda t, a, b: a - b, lambda t, a, b: a / b,
    lambda t, a, b: t.maximum(a, b),
])
def test_binary_broadcast(fn):
    check_op([(3, 1, 4), (2, 4)], fn)
    check_gradcheck([(3, 1, 4), (2, 4)], fn)


def test_matmul_relu_mean():
    check_op([(5, 3), (3, 4)], lambda t, a, b: (a @ b).relu().mean(), transpose=(0,))
    check_gradcheck([(5, 3), (3, 4)], lambda t, a, b: (a @ b).tanh().sum())
