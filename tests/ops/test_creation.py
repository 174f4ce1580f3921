"""Creation ops against torch: values, shapes, dtypes and defaults; seeded reproducibility."""

import numpy as np
import pytest
import torch

import ember
from tests.harness import assert_close


def _same(e, t):
    assert str(e.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], (e.dtype, t.dtype)
    assert tuple(e.shape) == tuple(t.shape)
    assert_close(e, t)


DETERMINISTIC = [
    lambda t: t.tensor([[1.0, 2.0], [3.0, 4.0]]),
    lambda t: t.tensor([1, 2, 3]),
    lambda t: t.tensor([True, False]),
    lambda t: t.tensor(3.5),
    lambda t: t.tensor([1, 2], dtype=t.float64),
    lambda t: t.tensor(np.arange(6, dtype=np.int32).reshape(2, 3)),
    lambda t: t.as_tensor([1.5, 2.5]),
    lambda t: t.zeros(2, 3),
    lambda t: t.zeros((2, 3), dtype=t.int64),
    lambda t: t.ones(4),
    lambda t: t.ones([2, 2], dtype=t.bool),
    lambda t: t.full((2, 3), 7.0),
    lambda t: t.full((2,), 7),
    lambda t: t.full((2,), True),
    lambda t: t.zeros_like(t.ones(2, 3, dtype=t.int32)),
    lambda t: t.ones_like(t.zeros(3)),
    lambda t: t.full_like(t.zeros(3), 2.5),
    lambda t: t.arange(5),
    lambda t: t.arange(1, 4),
    lambda t: t.arange(0, 1, 0.25),
    lambda t: t.arange(5.0),
    lambda t: t.arange(0, 10, 3, dtype=t.float32),
    lambda t: t.linspace(0, 1, 5),
    lambda t: t.linspace(-2, 2, steps=7, dtype=t.float64),
    lambda t: t.eye(3),
    lambda t: t.eye(2, 4, dtype=t.int64),
    lambda t: t.empty(2, 3).shape and t.zeros(0),
]


@pytest.mark.parametrize("i", range(len(DETERMINISTIC)))
def test_creation_matches_torch(i):
    _same(DETERMINISTIC[i](ember), DETERMINISTIC[i](torch))


def test_empty_and_like_shapes_dtypes():
    for f in ("empty", "zeros", "ones", "rand", "randn"):
        e = getattr(ember, f)(2, 3, dtype=ember.float64)
        assert e.shape == (2, 3) and e.dtype is ember.float64
        like = getattr(ember, f + "_like")(e)
        assert like.shape == (2, 3) and like.dtype is ember.float64
    assert ember.empty_like(ember.zeros(2, dtype=ember.int8)).dtype is ember.int8
    assert ember.zeros(2, requires_grad=True).requires_grad


def test_random_ops_shapes_dtypes_ranges():
    ember.manual_seed(0)
    r = ember.rand(1000)
    assert r.dtype is ember.float32 and 0 <= r.min().item() and r.max().item() < 1
    n = ember.randn(2000)
    assert abs(n.mean().item()) < 0.1 and abs(n.std().item() - 1) < 0.1
    ri = ember.randint(3, 7, (500,))
    assert ri.dtype is ember.int64 and ri.min().item() >= 3 and ri.max().item() <= 6
    assert ember.randint(5, (3, 2)).shape == (3, 2)
    p = ember.randperm(10)
    assert p.dtype is ember.int64 and sorted(p.tolist()) == list(range(10))
    nm = ember.normal(2.0, 0.5, size=(4000,))
    assert abs(nm.mean().item() - 2) < 0.05 and abs(nm.std().item() - 0.5) < 0.05
    nt = ember.normal(ember.zeros(3), ember.ones(3))
    assert nt.shape == (3,)


def test_seed_reproducible_and_generator():
    ember.manual_seed(123)
    a = [ember.randn(3), ember.rand(2), ember.randint(0, 9, (4,)), ember.randperm(5)]
    ember.manual_seed(123)
    b = [ember.randn(3), ember.rand(2), ember.randint(0, 9, (4,)), ember.randperm(5)]
    for x, y in zip(a, b):
        assert x.tolist() == y.tolist()
    g1, g2 = ember.Generator().manual_seed(7), ember.Generator().manual_seed(7)
    assert ember.randn(4, generator=g1).tolist() == ember.randn(4, generator=g2).tolist()
    state = ember.get_rng_state()
    x = ember.rand(3)
    ember.set_rng_state(state)
    assert ember.rand(3).tolist() == x.tolist()


def test_creation_errors():
    with pytest.raises(RuntimeError, match="negative dimension -1"):
        ember.zeros(2, -1)
    with pytest.raises(TypeError, match="unknown dtype"):
        ember.zeros(2, dtype="float128")
    with pytest.raises(TypeError, match="unknown dtype"):
        ember.tensor([1.0], dtype="cheese")
    with pytest.raises(RuntimeError, match="requires_grad|only Tensors of floating point"):
        ember.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="from=5 >= to=5"):
        ember.randint(5, 5, (2,))
    with pytest.raises(ValueError, match="equal-length"):
        ember.tensor([[1, 2], [3]])


@pytest.mark.parametrize("data", [[0.1, 1 / 3], [1e-300, 1e300], 0.1, [[2.0 ** -60]]])
def test_python_floats_keep_float64_precision_when_a_dtype_is_given(data):
    """A dtype given to tensor()/as_tensor() converts the Python floats once: they were
    rounded to the default float32 first (0.1 came back as 0.10000000149011612, 1e-300 as 0)."""
    for make in ("tensor", "as_tensor"):
        e = getattr(ember, make)(data, dtype=ember.float64)
        t = getattr(torch, make)(data, dtype=torch.float64)
        assert e.dtype == ember.float64
        assert e.tolist() == t.tolist()
    assert ember.tensor(data, dtype=ember.float32).tolist() == \
        torch.tensor(data, dtype=torch.float32).tolist()


@pytest.mark.parametrize("name", ["zeros", "ones", "empty", "rand", "randn"])
def test_size_keyword(name):
    """torch.zeros(size=(2, 3)) and its kin take the shape as a keyword (ember: TypeError)."""
    for lib in (ember, torch):
        f = getattr(lib, name)
        assert f(size=(2, 3)).shape == f(size=[2, 3]).shape == f((2, 3)).shape == (2, 3)
        x = f(size=(4,), dtype=lib.float64, requires_grad=True)
        assert x.shape == (4,) and str(x.dtype).endswith("float64") and x.requires_grad
        with pytest.raises(TypeError):
            f(2, size=(2, 3))


def test_arange_refuses_bounds_against_the_step():
    """arange(5, 0) returned an empty tensor; torch refuses bounds against the step's sign."""
    for lib in (ember, torch):
        for args in ((5, 0), (0, 5, -1), (1.5, 0.5, 0.25)):
            with pytest.raises(RuntimeError, match="upper bound and lower bound inconsistent "
                                                   "with step sign"):
                lib.arange(*args)
        assert lib.arange(0, 0).shape == lib.arange(5, 5, -1).shape == (0,)
        assert lib.arange(5, 0, -2).tolist() == [5, 3, 1]
