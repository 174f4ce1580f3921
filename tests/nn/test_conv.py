"""Convolution layers and functional forms against torch: outputs, input/weight/bias gradients,
float64 gradcheck, default init, state_dict keys, reprs and error messages."""

import numpy as np
import pytest
import torch

import ember
import ember.nn as nn
from tests.harness import assert_close, check_gradcheck, check_module, check_op

# im2col + BLAS sums in a different order than oneDNN: float32 round-off grows with C*kh*kw.
TOL = dict(rtol=1e-4, atol=1e-5)

# col2im (input gradients, transposed convolutions) runs as NumPy adds or as the numba kernel of
# ember.backend.jit: every test both ways.
pytestmark = pytest.mark.usefixtures("each_kernels")

CONV2D = [
    dict(args=(3, 4, 3), kw={}, x=(2, 3, 8, 8)),
    dict(args=(3, 6, (3, 2)), kw=dict(stride=(2, 1), padding=(1, 2)), x=(2, 3, 9, 7)),
    dict(args=(4, 6, 3), kw=dict(dilation=2, groups=2, padding=2, bias=False), x=(2, 4, 9, 9)),
    dict(args=(4, 4, 3), kw=dict(groups=4, padding="same"), x=(2, 4, 6, 7)),
    dict(args=(3, 5, (4, 2)), kw=dict(padding="same", dilation=(1, 2)), x=(1, 3, 7, 8)),
    dict(args=(3, 4, 3), kw=dict(padding="valid", stride=3), x=(2, 3, 10, 11)),
    dict(args=(3, 4, 3), kw=dict(padding=1), x=(3, 6, 5)),  # unbatched
    dict(args=(3, 4, 3), kw=dict(padding=2, padding_mode="reflect"), x=(2, 3, 6, 6)),
    dict(args=(3, 4, 3), kw=dict(padding=1, padding_mode="replicate", stride=2), x=(2, 3, 6, 6)),
    dict(args=(3, 4, 3), kw=dict(padding=(1, 2), padding_mode="circular"), x=(2, 3, 6, 6)),
    dict(args=(2, 4, 4), kw=dict(padding="same", padding_mode="reflect"), x=(2, 2, 6, 6)),
]


@pytest.mark.parametrize("cfg", CONV2D)
@pytest.mark.parametrize("train", [True, False])
def test_conv2d_module(cfg, train, each_onednn):
    t = torch.nn.Conv2d(*cfg["args"], **cfg["kw"])
    e = nn.Conv2d(*cfg["args"], **cfg["kw"])
    check_module(t, e, [cfg["x"]], train=train, **TOL)


CONV1D = [
    dict(args=(3, 4, 3), kw={}, x=(2, 3, 10)),
    dict(args=(4, 6, 3), kw=dict(stride=2, padding=1, dilation=2, groups=2), x=(2, 4, 11)),
    dict(args=(3, 4, 4), kw=dict(padding="same"), x=(3, 9)),
    dict(args=(3, 4, 3), kw=dict(padding=2, padding_mode="circular", bias=False), x=(2, 3, 7)),
]


@pytest.mark.parametrize("cfg", CONV1D)
def test_conv1d_module(cfg, each_onednn):
    t, e = torch.nn.Conv1d(*cfg["args"], **cfg["kw"]), nn.Conv1d(*cfg["args"], **cfg["kw"])
    check_module(t, e, [cfg["x"]], **TOL)


CONVT = [
    dict(args=(3, 4, 3), kw={}, x=(2, 3, 5, 5)),
    dict(args=(4, 6, 3), kw=dict(stride=2, padding=1, output_padding=1, groups=2), x=(2, 4, 4, 5)),
    dict(args=(3, 2, (3, 2)), kw=dict(stride=(2, 3), dilation=(1, 2), output_padding=(1, 2),
                                      bias=False), x=(2, 3, 4, 3)),
    dict(args=(3, 2, 4), kw=dict(stride=2, padding=1), x=(3, 4, 4)),  # unbatched
]


@pytest.mark.parametrize("cfg", CONVT)
def test_conv_transpose2d_module(cfg):
    t = torch.nn.ConvTranspose2d(*cfg["args"], **cfg["kw"])
    e = nn.ConvTranspose2d(*cfg["args"], **cfg["kw"])
    check_module(t, e, [cfg["x"]], **TOL)


def test_conv_transpose_output_size_and_1d():
    t, e = torch.nn.ConvTranspose2d(3, 2, 3, stride=2), nn.ConvTranspose2d(3, 2, 3, stride=2)
    check_module(t, e, [(1, 3, 4, 4)], forward=lambda m, x: m(x, output_size=[10, 10]), **TOL)
    t, e = torch.nn.ConvTranspose1d(4, 2, 3, stride=3, padding=1, groups=2), \
        nn.ConvTranspose1d(4, 2, 3, stride=3, padding=1, groups=2)
    check_module(t, e, [(2, 4, 5)], **TOL)
    with pytest.raises(ValueError, match="requested an output size of"):
        e2 = nn.ConvTranspose2d(3, 2, 3, stride=2)
        e2(ember.randn(1, 3, 4, 4), output_size=[20, 20])


def test_functional_forms_vs_torch(each_onednn):
    check_op([(2, 4, 9, 8), (6, 2, 3, 2), (6,)],
             lambda t, x, w, b: t.nn.functional.conv2d(x, w, b, stride=(2, 1), padding=(1, 2),
                                                       dilation=(2, 1), groups=2), **TOL)
    check_op([(2, 4, 9), (6, 2, 3)],
             lambda t, x, w: t.nn.functional.conv1d(x, w, stride=2, groups=2), **TOL)
    check_op([(2, 4, 5, 6), (4, 3, 3, 2)],
             lambda t, x, w: t.nn.functional.conv_transpose2d(
                 x, w, stride=(2, 3), padding=(0, 1), output_padding=(0, 2), dilation=(1, 2)),
             **TOL)
    check_op([(2, 4, 5), (4, 3, 3), (3,)],
             lambda t, x, w, b: t.nn.functional.conv_transpose1d(x, w, b, stride=3, padding=2,
                                                                 output_padding=1), **TOL)
    # weight does not require grad / input does not: only the needed gradients are computed
    check_op([(2, 3, 6, 6), np.ones((4, 3, 3, 3), np.float32)],
             lambda t, x, w: t.nn.functional.conv2d(x, w, padding=1), **TOL)


def test_gradcheck():
    check_gradcheck([(2, 4, 5, 5), (4, 2, 3, 2), (4,)],
                    lambda t, x, w, b: t.nn.functional.conv2d(x, w, b, stride=2, padding=1,
                                                              groups=2, dilation=(1, 2)))
    check_gradcheck([(2, 3, 7), (2, 3, 3)], lambda t, x, w: t.nn.functional.conv1d(x, w, padding=1))
    check_gradcheck([(2, 4, 3, 3), (4, 2, 3, 2), (4,)],
                    lambda t, x, w, b: t.nn.functional.conv_transpose2d(
                        x, w, b, stride=2, padding=1, output_padding=1, groups=2))


def test_float32_stays_float32(each_onednn):
    x = ember.randn(2, 3, 8, 8, requires_grad=True)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    y = conv(x)
    y.sum().backward()
    assert y.dtype == ember.float32 and x.grad.dtype == ember.float32
    assert conv.weight.grad.dtype == ember.float32


@pytest.mark.parametrize("cls,args", [(nn.Conv2d, (6, 8, 3)), (nn.Conv1d, (6, 8, 5)),
                                      (nn.ConvTranspose2d, (6, 8, 3)),
                                      (nn.Conv2d, (6, 8, 3, 1, 0, 1, 2))])
def test_default_init_and_state_dict(cls, args):
    tcls = getattr(torch.nn, cls.__name__)
    e, t = cls(*args), tcls(*args)
    assert list(e.state_dict().keys()) == list(t.state_dict().keys())
    for k, v in t.state_dict().items():
        assert tuple(e.state_dict()[k].shape) == tuple(v.shape)
    fan_in = e.weight.shape[1] * int(np.prod(e.weight.shape[2:]))
    bound = 1 / np.sqrt(fan_in)
    w = e.weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    assert np.abs(e.bias.detach().numpy()).max() <= bound
    # a torch state_dict loads unchanged and ember's loads back into torch
    e.load_state_dict(t.state_dict())
    t.load_state_dict({k: torch.tensor(v.numpy()) for k, v in e.state_dict().items()})


def test_repr_matches_torch():
    for args, kw in [((3, 6, (3, 5)), dict(stride=2, padding=1, groups=3, bias=False)),
                     ((3, 6, 3), dict(padding_mode="reflect", dilation=2)),
                     ((3, 6, 3), dict(padding="same"))]:
        assert repr(nn.Conv2d(*args, **kw)) == repr(torch.nn.Conv2d(*args, **kw))
    assert repr(nn.Conv1d(3, 6, 3)) == repr(torch.nn.Conv1d(3, 6, 3))
    kw = dict(stride=2, output_padding=1)
    assert repr(nn.ConvTranspose2d(3, 6, 3, **kw)) == repr(torch.nn.ConvTranspose2d(3, 6, 3, **kw))


def _msg(fn, lib):
    with pytest.raises(Exception) as ei:
        fn(lib)
    return type(ei.value).__name__, str(ei.value)


@pytest.mark.parametrize("case", [
    lambda L: L.nn.Conv2d(3, 6, 5)(L.zeros(2, 3)),
    lambda L: L.nn.Conv2d(3, 6, 5)(L.zeros(1, 2, 3, 4, 5)),
    lambda L: L.nn.Conv2d(3, 6, 5)(L.zeros(4, 1, 32, 32)),
    lambda L: L.nn.Conv2d(3, 6, 5)(L.zeros(1, 32, 32)),
    lambda L: L.nn.Conv2d(3, 6, 5)(L.zeros(4, 3, 2, 2)),
    lambda L: L.nn.Conv2d(3, 6, 3, dilation=2, padding=1)(L.zeros(4, 3, 2, 2)),
    lambda L: L.nn.Conv1d(3, 6, 5)(L.zeros(4, 1, 32)),
    lambda L: L.nn.Conv1d(3, 6, 5)(L.zeros(4, 3, 2)),
    lambda L: L.nn.Conv1d(3, 6, 5)(L.zeros(4, 3, 2, 2)),
    lambda L: L.nn.Conv2d(4, 6, 3, groups=2)(L.zeros(4, 3, 8, 8)),
    lambda L: L.nn.Conv2d(3, 6, 3, groups=2),
    lambda L: L.nn.Conv2d(4, 6, 3, padding="same", stride=2),
])
def test_errors_match_torch(case):
    assert _msg(case, ember) == _msg(case, torch)


def test_bad_padding_string():
    # torch prints the allowed values as a Python set, whose order varies between runs
    with pytest.raises(ValueError, match="Invalid padding string 'foo', should be one of"):
        nn.Conv2d(4, 6, 3, padding="foo")


def test_kernel_larger_than_input_message():
    with pytest.raises(RuntimeError, match=r"padded input size per channel: \(2 x 2\). Kernel "
                                           r"size: \(5 x 5\)"):
        nn.Conv2d(3, 6, 5)(ember.zeros(4, 3, 2, 2))


def test_noncontiguous_inputs(each_onednn):
    check_op([(2, 3, 8, 8), (4, 3, 3, 3)],
             lambda t, x, w: t.nn.functional.conv2d(x, w, padding=1), transpose=(0, 1), **TOL)
    check_op([(2, 3, 8, 8), (3, 4, 3, 3)],
             lambda t, x, w: t.nn.functional.conv_transpose2d(x, w, stride=2), transpose=(0,),
             **TOL)


BLOCKED = [  # (x, w, kwargs): correlation and col2im input gradients, strides, groups, 1x1
    ((5, 4, 7, 6), (4, 4, 3, 3), dict(padding=1)),
    ((5, 3, 7, 6), (6, 3, 3, 3), dict(padding=1)),
    ((5, 4, 9, 8), (6, 2, 3, 2), dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)),
    ((5, 4, 6, 6), (8, 4, 1, 1), dict(stride=2)),
]


@pytest.mark.parametrize("split,keep,chunk", [(True, True, False), (True, False, True),
                                              (False, True, True), (False, False, False)])
@pytest.mark.parametrize("case", BLOCKED)
def test_conv2d_in_blocks_split_over_threads(case, keep, split, chunk, without_onednn, monkeypatch,
                                             request):
    """One image per block (and kept or rebuilt columns), the blocks run on two threads or one,
    the products whole or in small-kernel column chunks: the same results as torch's."""
    from ember.ops import conv

    if split:
        request.getfixturevalue("idle")
    monkeypatch.setattr(conv, "_BLOCK_BYTES", 1)
    monkeypatch.setattr(conv, "_SPLIT_MACS", 0)
    monkeypatch.setattr(conv, "_KEEP_COLS_BYTES", 1 << 30 if keep else 0)
    if chunk:
        monkeypatch.setattr(conv, "_SMALL_KERNEL_MACS", 60)
    xs, ws, kw = case
    check_op([xs, ws, ws[:1]], lambda t, x, w, b: t.nn.functional.conv2d(x, w, b, **kw), **TOL)


def test_chunked_products_match_whole_ones():
    """The small-kernel chunking of Conv2dOp's products (column chunks; summed chunks for the
    weight gradient), including lengths with no usable divisor, against plain np.matmul."""
    from ember.ops import conv

    rng = np.random.default_rng(0)
    for g, m, k, n in [(1, 6, 75, 3136), (2, 16, 144, 3072), (1, 4, 9, 7919), (1, 64, 50, 400)]:
        a = rng.standard_normal((g, m, k)).astype(np.float32)
        b = rng.standard_normal((g, k, n)).astype(np.float32)
        np.testing.assert_allclose(conv._product(a, b), np.matmul(a, b), rtol=1e-5, atol=1e-4)
        gt = rng.standard_normal((g, m, n)).astype(np.float32)
        np.testing.assert_allclose(conv._weight_product(b, gt), np.matmul(b, gt.transpose(0, 2, 1)),
                                   rtol=1e-4, atol=1e-3)


SHIFTED = [  # (x, w, kwargs) of stride-1 convolutions run as shifted products (_conv_shifted)
    ((3, 5, 7, 6), (4, 5, 3, 3), dict(padding=1)),
    ((2, 4, 8, 9), (6, 4, 3, 2), dict(padding=(1, 0), dilation=(2, 1))),
    ((2, 3, 6, 7), (5, 3, 4, 4), dict(padding="same")),  # asymmetric padding
    ((3, 4, 5, 5), (7, 4, 1, 1), dict()),
    ((2, 3, 6, 6), (4, 3, 5, 5), dict(padding=0)),  # a 2x2 output
    ((2, 3, 6, 6), (4, 3, 3, 3), dict(padding=2)),  # the output fills the shared grid
    ((2, 4, 7, 7), (3, 4, 3, 3), dict(padding=2, dilation=2)),
]


@pytest.fixture
def shifted_everywhere(without_onednn, monkeypatch):
    """Every stride-1, ungrouped convolution through ember.ops._conv_shifted, however thin or
    small, and whatever BLAS accumulates (oneDNN off)."""
    from ember.ops import _conv_shifted

    monkeypatch.setattr(_conv_shifted, "_MIN_CHANNELS", 1)
    monkeypatch.setattr(_conv_shifted, "_MAX_WASTE", 1e9)
    monkeypatch.setattr(_conv_shifted, "blas_accumulates", lambda: True)
    taken = []
    forward = _conv_shifted.Shifted.forward
    monkeypatch.setattr(_conv_shifted.Shifted, "forward",
                        lambda self, *a: taken.append(self) or forward(self, *a))
    return taken


@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("case", SHIFTED)
def test_conv2d_by_shifted_products(case, split, each_gemm_add, shifted_everywhere, monkeypatch,
                                    request):
    """Outputs and every gradient as torch's, with the products accumulated on MKL, on NumPy's
    OpenBLAS or through NumPy; one image per block, the blocks on one thread or two."""
    from ember.ops import _conv_shifted

    if split:
        request.getfixturevalue("idle")
        monkeypatch.setattr(_conv_shifted, "_SPLIT_MACS", 0)
        monkeypatch.setattr(_conv_shifted, "_BLOCK_BYTES", 1)
    xs, ws, kw = case
    check_op([xs, ws, ws[:1]], lambda t, x, w, b: t.nn.functional.conv2d(x, w, b, **kw), **TOL)
    check_op([xs, ws], lambda t, x, w: t.nn.functional.conv2d(x, w, **kw), **TOL)
    assert shifted_everywhere


def test_shifted_products_gradcheck(shifted_everywhere):
    check_gradcheck([(2, 3, 5, 6), (4, 3, 3, 2), (4,)],
                    lambda t, x, w, b: t.nn.functional.conv2d(x, w, b, padding=(1, 2),
                                                              dilation=(1, 2)))
    assert shifted_everywhere


def test_which_convolutions_take_shifted_products(monkeypatch):
    """ResNet-20's 3x3 stride-1 layers do (with a BLAS that accumulates); strided, grouped,
    thin (LeNet's 3 and 6 channels) and small-image (2x2: 2.25x the work on the grid) ones keep
    im2col, and so do paddings wider than the grid shares (3 rows above and below a 1x1)."""
    from ember.ops import _conv_shifted

    monkeypatch.setattr(_conv_shifted, "blas_accumulates", lambda: True)
    pays = _conv_shifted.Shifted.pays
    one, same = (1, 1), (1, 1, 1, 1)
    assert pays((64, 16, 32, 32), (16, 16, 3, 3), one, same, one, 1) is not None
    assert pays((64, 32, 16, 16), (32, 32, 3, 3), one, same, one, 1) is not None
    assert pays((64, 16, 32, 32), (32, 16, 3, 3), (2, 2), same, one, 1) is None
    assert pays((64, 32, 16, 16), (32, 16, 3, 3), one, same, one, 2) is None
    assert pays((64, 6, 14, 14), (16, 6, 5, 5), one, (0,) * 4, one, 1) is None
    assert pays((64, 64, 8, 8), (64, 64, 3, 3), one, same, one, 1) is not None
    assert pays((64, 64, 4, 4), (64, 64, 3, 3), one, same, one, 1) is not None
    assert pays((64, 64, 2, 2), (64, 64, 3, 3), one, same, one, 1) is None
    assert pays((64, 64, 8, 8), (64, 64, 1, 1), one, (3, 3, 0, 0), one, 1) is None
    assert pays((64, 16, 32, 32), (16, 16, 3, 3), one, same, one, 1, np.float16) is None
    assert pays((64, 16, 32, 32), (16, 16, 3, 3), one, same, one, 1, np.float64) is not None
    monkeypatch.setattr(_conv_shifted, "blas_accumulates", lambda: False)
    assert pays((64, 16, 32, 32), (16, 16, 3, 3), one, same, one, 1) is None


def test_shifted_products_bias_gradient_only(shifted_everywhere, monkeypatch):
    """Only the bias needs a gradient: backward runs no products, and the bias gradient is the
    output gradient's sum, as in torch."""
    from ember.ops import _conv_shifted

    x, w = np.random.randn(2, 3, 5, 5).astype(np.float32), np.random.randn(4, 3, 3, 3)
    b = ember.zeros(4, requires_grad=True)
    y = ember.nn.functional.conv2d(ember.tensor(x), ember.tensor(w.astype(np.float32)), b,
                                   padding=1)
    g = np.random.randn(*y.shape).astype(np.float32)
    monkeypatch.setattr(_conv_shifted, "matmul_add", None)  # would raise if called
    y.backward(ember.tensor(g))
    np.testing.assert_allclose(b.grad.numpy(), g.sum(axis=(0, 2, 3)), rtol=1e-5)
    assert shifted_everywhere


def test_argument_checks_still_run_after_a_call_passed_them():
    """conv2d and max_pool2d remember the arguments of calls that passed their checks: a call
    that differs in any of them is checked again (torch's errors), lists work, and the output
    is the same as the first call's."""
    import ember.nn.functional as F

    x, w = ember.randn(2, 3, 9, 9), ember.randn(4, 3, 3, 3)
    first = F.conv2d(x, w, None, 2, 1)
    assert_close(F.conv2d(x, w, None, [2, 2], [1, 1]), first)
    assert_close(F.conv2d(x, w, None, 2, 1), first)
    for bad, match in [(dict(input=ember.randn(2, 4, 9, 9)), "expected input.*to have 3 channels"),
                       (dict(stride=0), "non-positive stride"),
                       (dict(padding=-1), "negative padding"),
                       (dict(weight=w.double()), "should be the same"),
                       (dict(bias=ember.randn(3)), "expected bias to be 1-dimensional with 4")]:
        args = dict(input=x, weight=w, bias=None, stride=2, padding=1) | bad
        with pytest.raises(RuntimeError, match=match):
            F.conv2d(**args)
    y = F.max_pool2d(x, 2)
    assert_close(F.max_pool2d(x, [2, 2]), y)
    with pytest.raises(RuntimeError, match="pad should be at most half"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(RuntimeError, match="Output size is too small"):
        F.max_pool2d(ember.randn(2, 3, 1, 1), 2)
