"""default_collate / default_convert against torch's on a zoo of nested samples."""

import collections

import numpy as np
import pytest
import torch
import torch.utils.data as tud

import ember
from ember.utils.data import default_collate, default_convert

Point = collections.namedtuple("Point", "x y")


def canon(obj):
    """A comparable form of either library's output: tensors as (dtype name, shape, values)."""
    if isinstance(obj, (torch.Tensor, ember.Tensor)):
        arr = obj.numpy() if isinstance(obj, ember.Tensor) else obj.detach().numpy()
        return ("tensor", str(obj.dtype).split(".")[-1], arr.shape, arr.tolist())
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return (type(obj).__name__, tuple(canon(v) for v in obj))
    if isinstance(obj, dict):
        return ("dict", type(obj).__name__, {k: canon(v) for k, v in obj.items()})
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [canon(v) for v in obj])
    if isinstance(obj, np.ndarray):
        return ("ndarray", obj.dtype.str, obj.tolist())
    return (type(obj).__name__, obj)


def both(make):
    """The same samples built with ember tensors and with torch tensors."""
    return make(ember), make(torch)


ZOO = {
    "tensors": lambda t: [t.tensor([1.0, 2.0]), t.tensor([3.0, 4.0])],
    "int_tensors": lambda t: [t.tensor([[1, 2]]), t.tensor([[3, 4]])],
    "bool_tensors": lambda t: [t.tensor(True), t.tensor(False)],
    "numpy_f32": lambda t: [np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32)],
    "numpy_u8": lambda t: [np.full((2, 2, 3), 7, np.uint8)] * 3,
    "numpy_i32": lambda t: [np.arange(3, dtype=np.int32)] * 2,
    "numpy_scalars_f32": lambda t: [np.float32(1.5), np.float32(2.5)],
    "numpy_scalars_i64": lambda t: [np.int64(3), np.int64(4)],
    "numpy_scalars_f64": lambda t: [np.float64(3), np.float64(4)],
    "numpy_bool_scalars": lambda t: [np.bool_(True), np.bool_(False)],
    "ints": lambda t: [1, 2, 3],
    "floats": lambda t: [1.0, 2.5],
    "bools": lambda t: [True, False, True],
    "int_then_float": lambda t: [1, 2.5],
    "strings": lambda t: ["a", "bc"],
    "bytes": lambda t: [b"x", b"yz"],
    "tuples": lambda t: [(t.zeros(2), 1, "a"), (t.ones(2), 2, "b")],
    "lists": lambda t: [[1, 2.0], [3, 4.0]],
    "dicts": lambda t: [{"img": np.zeros(3, np.float32), "label": 1, "name": "p"},
                        {"img": np.ones(3, np.float32), "label": 0, "name": "q"}],
    "ordered_dicts": lambda t: [collections.OrderedDict(a=1.0, b=2)] * 2,
    "namedtuples": lambda t: [Point(t.zeros(2), 1), Point(t.ones(2), 2)],
    "nested": lambda t: [{"a": (t.zeros(1), [1.0, {"b": 2}])}, {"a": (t.ones(1), [2.0, {"b": 3}])}],
    "cifar_like": lambda t: [(t.zeros(3, 4, 4), 3), (t.ones(3, 4, 4), 9)],
    # mixed dtypes stack with torch's promotion (NumPy would give float64 for int + float32)
    "mixed_int_f32_tensors": lambda t: [t.tensor([1]), t.tensor([1.5])],
    "mixed_f16_i64_tensors": lambda t: [t.tensor([1.5], dtype=t.float16), t.tensor([2])],
    "mixed_u8_i8_tensors": lambda t: [t.tensor([200], dtype=t.uint8), t.tensor([-1], dtype=t.int8)],
    "mixed_bool_i32_tensors": lambda t: [t.tensor([True]), t.tensor([7], dtype=t.int32)],
    "mixed_numpy": lambda t: [np.arange(2, dtype=np.int32), np.ones(2, np.float32)],
}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_default_collate_matches_torch(name):
    e, t = both(ZOO[name])
    assert canon(default_collate(e)) == canon(tud.default_collate(t))


@pytest.mark.parametrize("name", sorted(ZOO))
def test_default_convert_matches_torch(name):
    e, t = both(ZOO[name])
    for es, ts in zip(e, t):
        assert canon(default_convert(es)) == canon(tud.default_convert(ts))


def test_default_convert_numpy_strings_pass_through():
    arr = np.array(["a", "b"])
    assert default_convert(arr) is arr
    assert canon(default_convert(np.arange(3))) == canon(tud.default_convert(np.arange(3)))


def test_collated_batch_is_a_fresh_writable_tensor():
    samples = [ember.zeros(2), ember.zeros(2)]
    out = default_collate(samples)
    out.add_(1)
    assert samples[0].tolist() == [0.0, 0.0] and out.tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_collate_keeps_the_graph_of_tensors_that_require_grad():
    x = ember.ones(2, requires_grad=True)
    default_collate([x, x * 2]).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_unequal_sizes_name_the_shapes_like_torch():
    msg = r"stack expects each tensor to be equal size, but got \[2\] at entry 0 and \[3\] at entry 1"
    with pytest.raises(RuntimeError, match=msg):
        default_collate([ember.zeros(2), ember.zeros(3)])
    with pytest.raises(RuntimeError, match=msg):
        tud.default_collate([torch.zeros(2), torch.zeros(3)])
    with pytest.raises(RuntimeError, match=msg):
        default_collate([np.zeros(2), np.zeros(3)])


@pytest.mark.parametrize("batch", [[None, None], [object(), object()]])
def test_unsupported_types_raise_torchs_type_error(batch):
    with pytest.raises(TypeError) as e:
        default_collate(batch)
    with pytest.raises(TypeError) as t:
        tud.default_collate(batch)
    assert str(e.value) == str(t.value)
    assert "default_collate: batch must contain tensors, numpy arrays, numbers" in str(e.value)


def test_string_arrays_and_ragged_sequences_error_like_torch():
    batch = [np.array(["a"]), np.array(["b"])]
    with pytest.raises(TypeError) as e:
        default_collate(batch)
    with pytest.raises(TypeError) as t:
        tud.default_collate(batch)
    assert str(e.value) == str(t.value)
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
        default_collate([[1, 2], [3]])
