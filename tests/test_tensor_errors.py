"""Bad input gets a clear error (issue 2's list): each message names the problem and the shapes
or values involved, with PyTorch's exception class; never a NumPy traceback."""

import pytest

import ember

BINARY = {
    "add": lambda a, b: a + b, "radd": lambda a, b: ember.add(a, b), "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b, "div": lambda a, b: a / b, "pow": lambda a, b: a ** b,
    "floordiv": lambda a, b: a // b, "mod": lambda a, b: a % b, "eq": lambda a, b: a == b,
    "lt": lambda a, b: a < b, "ge": lambda a, b: a >= b, "maximum": ember.maximum,
    "minimum": ember.minimum, "atan2": ember.atan2, "and": lambda a, b: (a > 0) & (b > 0),
    "logical_or": lambda a, b: ember.logical_or(a, b), "where": lambda a, b: ember.where(a > 0, a, b),
    "iadd": lambda a, b: a.add_(b), "imul": lambda a, b: a.mul_(b), "lerp": lambda a, b: a.lerp(b, 0.5),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("grad", [False, True])
def test_broadcast_mismatch_is_runtime_error(name, grad):
    a = ember.ones(3, 4)
    b = ember.ones(2, 5, requires_grad=grad)
    with pytest.raises(RuntimeError, match=r"\[3, 4\] and \[2, 5\]|must match the size"):
        BINARY[name](a, b)


def test_broadcast_message_names_sizes_and_dimension():
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(4\) must match the size of "
                                           r"tensor b \(5\) at non-singleton dimension 1"):
        ember.ones(3, 4) + ember.ones(5)


def test_matmul_message():
    with pytest.raises(RuntimeError,
                       match=r"mat1 and mat2 shapes cannot be multiplied \(4x400 and 256x120\)"):
        ember.randn(4, 400, requires_grad=True) @ ember.randn(256, 120)


def test_backward_errors():
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        (ember.ones(2, requires_grad=True) * 2).backward()
    x = ember.ones(2, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time.*"
                                           "retain_graph=True"):
        y.backward()


def test_requires_grad_on_integer_tensor():
    for make in (lambda: ember.tensor([1, 2], requires_grad=True),
                 lambda: ember.zeros(2, dtype=ember.int32).requires_grad_(),
                 lambda: setattr(ember.arange(3), "requires_grad", True)):
        with pytest.raises(RuntimeError, match="only Tensors of floating point and complex dtype "
                                               "can require gradients"):
            make()


def test_index_out_of_range():
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0 with size 2"):
        ember.zeros(2, 3)[5]
    with pytest.raises(IndexError, match="index -4 is out of bounds for dimension 1 with size 3"):
        ember.zeros(2, 3)[:, -4]


def test_unknown_dtype():
    with pytest.raises(TypeError, match=r"unknown dtype 'float8'; expected one of .*bfloat16"):
        ember.zeros(2, dtype="float8")
    with pytest.raises(TypeError, match="unknown dtype"):
        ember.ones(2).to(dtype=complex)


def test_grad_assignment_is_checked_as_in_torch():
    import re

    import torch

    for make in (lambda lib: lib.zeros(4), lambda lib: lib.zeros(3, dtype=lib.float64),
                 lambda lib: lib.zeros(3, dtype=lib.float16), lambda lib: lib.zeros(3, dtype=lib.int64)):
        te, tt = ember.zeros(3, requires_grad=True), torch.zeros(3, requires_grad=True)
        with pytest.raises(RuntimeError) as want:
            tt.grad = make(torch)
        first = str(want.value).split(".")[0]
        with pytest.raises(RuntimeError, match=re.escape(first)):
            te.grad = make(ember)
    t = ember.zeros(3, requires_grad=True)
    with pytest.raises(TypeError, match="expected to be a Tensor or None but got grad of type list"):
        t.grad = [1.0, 2.0, 3.0]
    t.grad = ember.ones(3)
    assert t.grad.tolist() == [1.0, 1.0, 1.0]
    t.grad = None
    assert t.grad is None
