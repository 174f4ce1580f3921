"""Tensor attributes, conversions, repr (checked against torch's string), NumPy memory sharing,
devices, ``__format__``/``__index__``, iteration and Python scalar conversions."""

import numpy as np
import pytest
import torch

import ember

REPR_DATA = [
    [2.0, -1.0], [1e-5, 1.0], [[1, 2], [3, -4]], 3.5, 0.0, -7, [True, False], True,
    [1.5, 2.0], [1e10, 1.0], [float("nan"), 1.0, float("inf")], [0.0, 0.0], [-0.5],
    [[1e-3, 12345.6], [2.0, 3.0]], [100.0, 2.5], [1.0, -float("inf")], [123456789.0],
    [[[1.0, 2.5]], [[-3.25, 4.0]]],
]
REPR_ARRAYS = [
    np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32),
    np.arange(2000, dtype=np.float32),
    np.random.default_rng(1).standard_normal((40, 50)),
    np.arange(24).reshape(2, 3, 4),
    np.random.default_rng(2).standard_normal((2, 3, 4)).astype(np.float16),
    np.zeros((0, 3), np.float32),
    np.zeros(0, np.int64),
    np.zeros(0, np.float32),
    np.random.default_rng(3).standard_normal(30).astype(np.float32) * 100,
    np.arange(5, dtype=np.int8),
    np.arange(-3, 3, dtype=np.int32).reshape(2, 3),
    np.ones((3, 1), np.uint8),
    np.random.default_rng(4).standard_normal((5, 5, 50)).astype(np.float32),
]


def _torch_repr(t):
    return repr(t).replace("torch.", "ember.")


@pytest.mark.parametrize("i", range(len(REPR_DATA)))
def test_repr_matches_torch_data(i):
    d = REPR_DATA[i]
    assert repr(ember.tensor(d)) == _torch_repr(torch.tensor(d))


@pytest.mark.parametrize("i", range(len(REPR_ARRAYS)))
def test_repr_matches_torch_arrays(i):
    a = REPR_ARRAYS[i]
    assert repr(ember.from_numpy(a)) == _torch_repr(torch.from_numpy(a))
    assert str(ember.from_numpy(a)) == str(torch.from_numpy(a)).replace("torch.", "ember.")


def test_repr_autograd_suffixes_and_printoptions():
    e = ember.tensor([1.0, 2.0], requires_grad=True)
    t = torch.tensor([1.0, 2.0], requires_grad=True)
    assert repr(e) == _torch_repr(t)
    assert repr(e + 1) == _torch_repr(t + 1)
    assert repr(e * 2) == _torch_repr(t * 2)
    assert repr(ember.zeros(2, dtype=ember.float64, requires_grad=True)) == _torch_repr(
        torch.zeros(2, dtype=torch.float64, requires_grad=True))
    try:
        ember.set_printoptions(precision=2)
        torch.set_printoptions(precision=2)
        assert repr(ember.tensor([1.23456, -2.0])) == _torch_repr(torch.tensor([1.23456, -2.0]))
    finally:
        ember.set_printoptions(profile="default")
        torch.set_printoptions(profile="default")


def test_attributes():
    x = ember.zeros(2, 3, 4)
    assert x.shape == (2, 3, 4) and x.size() == (2, 3, 4) and x.size(1) == 3 and x.size(-1) == 4
    assert repr(x.shape) == "ember.Size([2, 3, 4])" and x.shape.numel() == 24
    assert x.dim() == 3 and x.ndim == 3 and x.numel() == 24 and len(x) == 2
    assert x.dtype is ember.float32 and x.device == ember.device("cpu") and str(x.device) == "cpu"
    assert not x.requires_grad and x.grad is None and x.grad_fn is None and x.is_leaf
    assert x.T.shape == (4, 3, 2) and x.mT.shape == (2, 4, 3)
    assert x.is_floating_point() and x.is_contiguous() and not x.transpose(0, 1).is_contiguous()
    assert x.stride() == torch.zeros(2, 3, 4).stride() and x.element_size() == 4
    y = ember.tensor([[1.0, 2.0]], requires_grad=True)
    z = y * 2
    assert not z.is_leaf and z.grad_fn is not None and z.requires_grad
    assert z.data.requires_grad is False and z.data.tolist() == [[2.0, 4.0]]


def test_item_tolist_scalars():
    x = ember.tensor([[1.5]])
    assert x.item() == 1.5 and float(x) == 1.5 and int(x) == 1 and bool(x)
    assert ember.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert isinstance(ember.tensor(3).item(), int)
    with pytest.raises(RuntimeError, match="a Tensor with 2 elements cannot be converted to Scalar"):
        ember.tensor([1.0, 2.0]).item()
    with pytest.raises(RuntimeError, match="Boolean value of a Tensor with 2 elements is ambiguous"):
        bool(ember.tensor([1.0, 2.0]))
    for conv in (float, int):
        with pytest.raises(ValueError, match="only one element tensors"):
            conv(ember.tensor([1.0, 2.0]))
        with pytest.raises(ValueError, match="only one element tensors"):
            conv(torch.tensor([1.0, 2.0]))


def test_format_and_index():
    loss = ember.tensor(0.123456)
    assert f"{loss:.2f}" == "0.12" and f"{loss:.3e}" == "1.235e-01"
    assert f"{ember.tensor([2.5]):.1f}" == "2.5"
    assert f"{ember.tensor([1.0, 2.0])}" == str(ember.tensor([1.0, 2.0]))
    i = ember.tensor(2)
    assert [10, 20, 30][i] == 30 and list(range(5))[ember.tensor([1])] == 1
    assert f"{i:d}" == "2"
    with pytest.raises(TypeError, match="only integer tensors of a single element"):
        [1, 2][ember.tensor(1.0)]
    with pytest.raises(TypeError, match="unsupported format string"):
        f"{ember.tensor([1.0, 2.0]):.2f}"
    with pytest.raises(TypeError, match="unsupported format string"):
        f"{torch.tensor([1.0, 2.0]):.2f}"


def test_iteration_and_len():
    x = ember.tensor([[1, 2], [3, 4], [5, 6]])
    rows = list(x)
    assert len(rows) == 3 and rows[1].tolist() == [3, 4] and isinstance(rows[0], ember.Tensor)
    assert [v.item() for v in ember.tensor([7, 8])] == [7, 8]
    w = ember.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    sum(r.sum() * k for k, r in enumerate(w)).backward()
    assert w.grad.tolist() == [[0.0, 0.0], [1.0, 1.0]]
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        iter(ember.tensor(1.0))
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(ember.tensor(1.0))


def test_numpy_memory_sharing_both_ways():
    a = np.zeros(3, dtype=np.float32)
    t = ember.from_numpy(a)
    a[0] = 5
    assert t[0].item() == 5
    t.add_(1)
    assert a.tolist() == [6.0, 1.0, 1.0]
    t[2] = 9
    assert a[2] == 9
    n = t.numpy()
    n[1] = -1
    assert t.tolist() == [6.0, -1.0, 9.0]
    assert np.shares_memory(n, a)
    assert np.asarray(t) is not None and np.shares_memory(np.asarray(t), a)
    x = ember.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Can't call numpy\(\) on Tensor that requires grad"):
        x.numpy()
    assert x.detach().numpy().tolist() == [1.0, 1.0]
    assert ember.as_tensor(a).numpy() is a or np.shares_memory(ember.as_tensor(a).numpy(), a)
    assert not np.shares_memory(ember.tensor(a).numpy(), a)


def test_devices():
    assert ember.device("cpu").type == "cpu" and ember.device("cuda", 0).index == 0
    assert repr(ember.device("cuda:1")) == repr(torch.device("cuda:1"))
    assert repr(ember.device("cpu")) == repr(torch.device("cpu"))
    x = ember.ones(2)
    assert x.to("cpu") is x and x.cpu() is x and x.to(ember.device("cpu")) is x
    assert ember.zeros(2, device="cpu").device.type == "cpu"
    assert ember.cuda.is_available() is False and ember.cuda.device_count() == 0
    assert ember.accelerator.is_available() is False
    assert ember.accelerator.current_accelerator() is None
    for make in (lambda: ember.zeros(2, device="cuda"), lambda: x.to("cuda"), lambda: x.cuda(),
                 lambda: ember.tensor([1.0], device="cuda:0")):
        with pytest.raises(RuntimeError, match="ember.cuda.is_available\\(\\) is False"):
            make()
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda"):
        ember.device("gpu")


@pytest.mark.filterwarnings("ignore:Creating a tensor from a list of numpy")
def test_tensor_dtype_inference_matches_torch():
    for data in ([1, 2.5], [True, 1], [True, False], [[1, 2], [3.5, 4]], np.float64(3.0),
                 np.array(3.0), np.int32(3), [], [np.float32(1), np.float32(2)],
                 [np.float64(1), 2.0], [np.zeros(2, np.float64), np.ones(2)],
                 [np.int32(1), np.int32(2)], [np.int16(1), 2], [ember.tensor(1.0), 2.0],
                 np.arange(3, dtype=np.int8), np.ones(2, np.float16), 2**40, ((1, 2), (3, 4))):
        tdata = [torch.tensor(1.0), 2.0] if isinstance(data, list) and data and isinstance(
            data[0], ember.Tensor) else data
        e, t = ember.tensor(data), torch.tensor(tdata)
        assert str(e.dtype) == str(t.dtype).replace("torch", "ember"), (data, e.dtype, t.dtype)
        assert e.tolist() == t.tolist()


def test_tensor_refuses_dtypes_it_cannot_hold():
    for arr in (np.ones(2, np.uint16), np.ones(2, np.uint32), np.ones(2, np.complex64)):
        with pytest.raises(TypeError, match=f"can't convert np.ndarray of type {arr.dtype}"):
            ember.tensor(arr)
        with pytest.raises(TypeError, match=f"can't convert np.ndarray of type {arr.dtype}"):
            ember.as_tensor(arr)
    assert ember.tensor(np.ones(2, np.uint16), dtype=ember.int32).dtype is ember.int32
    with pytest.raises(TypeError, match="invalid data type 'str'"):
        ember.tensor("abc")


def test_legacy_constructor_and_array_protocol():
    assert ember.Tensor(2, 3).shape == (2, 3) and ember.Tensor([1, 2]).dtype is ember.float32
    x = ember.tensor([1.0, 2.0])
    assert np.array(x).tolist() == [1.0, 2.0] and np.array(x, dtype=np.float64).dtype == np.float64
    assert (np.ones(2, np.float32) + x).__class__ is ember.Tensor


def test_comparison_with_none_or_a_non_number_like_torch():
    """``x == None`` is False and ``x != None`` True (ember raised a TypeError from building a
    tensor of None); ``x < None`` is Python's TypeError; a list is not compared elementwise."""
    for lib in (ember, torch):
        x = lib.tensor([1.0, 2.0])
        assert (x == None) is False and (x != None) is True  # noqa: E711
        assert (None == x) is False and (x == "a") is False and (x == [1.0, 2.0]) is False  # noqa
        assert x not in [None, "a"]
        with pytest.raises(TypeError, match="'<' not supported between instances of 'Tensor' "
                                            "and 'NoneType'"):
            x < None  # noqa: B015
        assert (x == 2).tolist() == [False, True] and (x >= lib.tensor(1.5)).tolist() == [0, 1]


def test_contains_and_reversed_like_torch():
    """``row in x`` raised 'Boolean value ... is ambiguous' (Python compared row with each
    sub-tensor); reversed(x) gave a Python iterator. torch: (row == x).any(), and x.flip(0)."""
    for lib in (ember, torch):
        x = lib.tensor([[1, 2], [3, 4]])
        assert lib.tensor([1, 2]) in x and lib.tensor([1, 5]) in x and 2.0 in x and 7 not in x
        assert lib.tensor([9, 9]) not in x
        with pytest.raises(RuntimeError, match="Tensor.__contains__ only supports Tensor or "
                                               "scalar"):
            "a" in x  # noqa: B015
        r = reversed(x)
        assert isinstance(r, lib.Tensor) and r.tolist() == [[3, 4], [1, 2]]
        assert reversed(lib.tensor(3)).tolist() == 3
