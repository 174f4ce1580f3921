"""pad / interpolate / pixel_shuffle / unfold / fold and their layers against torch."""

import numpy as np
import pytest
import torch

import ember
import ember.nn as nn
from tests.harness import check_gradcheck, check_module, check_op

TOL = dict(rtol=1e-4, atol=1e-5)  # interpolation weights applied as BLAS products


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_modes(mode):
    F = lambda t: t.nn.functional  # noqa: E731
    check_op([(2, 3, 5, 6)], lambda t, x: F(t).pad(x, (1, 2, 3, 1), mode=mode))
    check_op([(2, 3, 5)], lambda t, x: F(t).pad(x, (2, 3), mode=mode))
    check_gradcheck([(2, 2, 4, 5)], lambda t, x: F(t).pad(x, (2, 1, 3, 1), mode=mode))


def test_pad_constant_value_and_negative():
    check_op([(2, 3, 5, 6)], lambda t, x: t.nn.functional.pad(x, (-1, 2, 3, -2), value=1.5))
    check_op([(3, 4, 5)], lambda t, x: t.nn.functional.pad(x, (1, 1, 0, 2, 1, 1)))


@pytest.mark.parametrize("name,args", [("ZeroPad2d", (2,)), ("ZeroPad1d", ((1, 2),)),
                                       ("ConstantPad1d", (2, 3.5)),
                                       ("ConstantPad2d", ((1, 0, 2, 1), -1.0)),
                                       ("ReflectionPad2d", ((1, 2, 3, 2),)),
                                       ("ReflectionPad1d", (2,)), ("ReplicationPad2d", (2,)),
                                       ("ReplicationPad1d", ((3, 1),)), ("CircularPad2d", (1,)),
                                       ("CircularPad1d", (2,))])
def test_padding_layers(name, args):
    t, e = getattr(torch.nn, name)(*args), getattr(nn, name)(*args)
    shape = (2, 3, 5, 6) if name.endswith("2d") else (2, 3, 6)
    check_module(t, e, [shape])
    assert repr(t) == repr(e)


INTERP = [dict(scale_factor=2), dict(size=(7, 5)), dict(scale_factor=(1.7, 0.6)),
          dict(size=(7, 5), mode="nearest-exact"), dict(scale_factor=2, mode="bilinear"),
          dict(scale_factor=2, mode="bilinear", align_corners=True),
          dict(size=(7, 3), mode="bilinear"), dict(scale_factor=1.5, mode="bicubic"),
          dict(size=(9, 4), mode="bicubic", align_corners=True), dict(size=(3, 4), mode="area"),
          dict(scale_factor=1.7, mode="bilinear", recompute_scale_factor=True),
          dict(size=1, mode="bilinear", align_corners=True)]


@pytest.mark.parametrize("kw", INTERP)
def test_interpolate_2d(kw):
    check_op([(2, 3, 5, 6)], lambda t, x: t.nn.functional.interpolate(x, **kw), **TOL)


@pytest.mark.parametrize("kw", [dict(scale_factor=2.5, mode="linear"), dict(size=4),
                                dict(size=8, mode="linear", align_corners=True),
                                dict(size=3, mode="area")])
def test_interpolate_1d(kw):
    check_op([(2, 3, 5)], lambda t, x: t.nn.functional.interpolate(x, **kw), **TOL)


def test_interpolate_gradcheck():
    F = lambda t: t.nn.functional  # noqa: E731
    check_gradcheck([(2, 3, 5, 6)], lambda t, x: F(t).interpolate(x, scale_factor=2,
                                                                   mode="bilinear"))
    check_gradcheck([(1, 2, 4, 4)], lambda t, x: F(t).interpolate(x, size=(6, 3), mode="bicubic"))
    check_gradcheck([(1, 2, 4, 4)], lambda t, x: F(t).interpolate(x, scale_factor=3))


@pytest.mark.parametrize("name,kw", [("Upsample", dict(scale_factor=2)),
                                     ("Upsample", dict(size=(4, 9), mode="bilinear")),
                                     ("UpsamplingNearest2d", dict(scale_factor=2)),
                                     ("UpsamplingBilinear2d", dict(size=(7, 7)))])
def test_upsample_layers(name, kw):
    t, e = getattr(torch.nn, name)(**kw), getattr(nn, name)(**kw)
    check_module(t, e, [(2, 3, 5, 6)], **TOL)
    assert repr(t) == repr(e)


def test_pixel_shuffle():
    check_module(torch.nn.PixelShuffle(2), nn.PixelShuffle(2), [(2, 8, 3, 4)])
    check_module(torch.nn.PixelUnshuffle(2), nn.PixelUnshuffle(2), [(2, 2, 4, 6)])
    check_module(torch.nn.PixelShuffle(3), nn.PixelShuffle(3), [(9, 2, 2)])
    assert repr(nn.PixelShuffle(2)) == repr(torch.nn.PixelShuffle(2))


def test_unfold_fold(each_kernels):
    F = lambda t: t.nn.functional  # noqa: E731
    check_op([(2, 3, 7, 6)], lambda t, x: F(t).unfold(x, (3, 2), dilation=(1, 2), padding=1,
                                                       stride=2))
    check_op([(3, 5, 5)], lambda t, x: F(t).unfold(x, 2))
    check_op([(2, 12, 9)], lambda t, x: F(t).fold(x, (5, 5), 2, padding=1, stride=2))
    check_gradcheck([(2, 12, 9)], lambda t, x: F(t).fold(x, (5, 5), 2, padding=1, stride=2))
    check_gradcheck([(1, 2, 4, 5)], lambda t, x: F(t).unfold(x, 2, padding=1))


def test_unfold_fold_empty_batch(each_kernels):
    # torch unfolds/folds a batch of 0 samples; ember's unfold crashed in NumPy's reshape(-1)
    check_op([(0, 3, 4, 4)], lambda t, x: t.nn.functional.unfold(x, 2, padding=1))
    check_op([(0, 12, 25)], lambda t, x: t.nn.functional.fold(x, (4, 4), 2, padding=1))


def test_unfold_fold_layers():
    from ember.nn.modules.fold import Fold, Unfold  # torch.nn.modules.fold's path

    assert (Fold, Unfold) == (nn.Fold, nn.Unfold)
    kw = dict(dilation=(1, 2), padding=1, stride=2)
    check_module(torch.nn.Unfold((3, 2), **kw), nn.Unfold((3, 2), **kw), [(2, 3, 7, 6)])
    check_module(torch.nn.Unfold(2), nn.Unfold(2), [(3, 5, 5)])
    check_module(torch.nn.Fold((5, 5), 2, padding=1, stride=2),
                 nn.Fold((5, 5), 2, padding=1, stride=2), [(2, 12, 9)])
    check_module(torch.nn.Fold(4, 2), nn.Fold(4, 2), [(8, 9)])
    assert repr(nn.Unfold((3, 2), **kw)) == repr(torch.nn.Unfold((3, 2), **kw))
    assert repr(nn.Fold((5, 5), 2)) == repr(torch.nn.Fold((5, 5), 2))


def _msg(fn, lib):
    with pytest.raises(Exception) as ei:
        fn(lib)
    return type(ei.value).__name__, str(ei.value)


@pytest.mark.parametrize("case", [
    lambda L: L.nn.functional.pad(L.zeros(1, 1, 4, 4), (5, 5), mode="reflect"),
    lambda L: L.nn.functional.pad(L.zeros(1, 1, 4, 4), (5, 5, 1, 1), mode="reflect"),
    lambda L: L.nn.functional.pad(L.zeros(1, 1, 4, 4), (5, 5, 1, 1), mode="circular"),
    lambda L: L.nn.functional.pad(L.zeros(1, 1, 4, 4), (1, 1, 1, 1), mode="foo"),
    lambda L: L.nn.functional.pad(L.zeros(4, 4), (1, 1, 1, 1, 1, 1, 1, 1)),
    lambda L: L.nn.functional.pad(L.zeros(1, 1, 4, 4), (1, 1, 1)),
    lambda L: L.nn.functional.interpolate(L.zeros(1, 1, 4, 4)),
    lambda L: L.nn.functional.interpolate(L.zeros(1, 1, 4, 4), size=3, scale_factor=2),
    lambda L: L.nn.functional.interpolate(L.zeros(1, 1, 4, 4), size=3, mode="bilinearx"),
    lambda L: L.nn.functional.interpolate(L.zeros(1, 4, 4), size=3, mode="bilinear"),
    lambda L: L.nn.functional.interpolate(L.zeros(1, 1, 4, 4), size=(3, 4, 5)),
    lambda L: L.nn.functional.interpolate(L.zeros(1, 1, 4, 4), scale_factor=2,
                                          align_corners=True),
    lambda L: L.nn.functional.pixel_shuffle(L.zeros(1, 3, 4, 4), 2),
    lambda L: L.nn.functional.pixel_unshuffle(L.zeros(1, 3, 5, 4), 2),
    lambda L: L.nn.functional.fold(L.zeros(1, 12, 4), (4, 4), 2),
    lambda L: L.nn.functional.interpolate(L.zeros(2, 0, 4, 4), size=(3, 3)),
    lambda L: L.nn.functional.pad(L.zeros(1, 1, 4), (1, 1), mode="reflect", value=1.0),
    lambda L: L.nn.functional.pixel_shuffle(L.zeros(1, 4, 2, 2), 0),
    lambda L: L.nn.functional.pixel_unshuffle(L.zeros(1, 1, 4, 4), -2),
    lambda L: L.nn.functional.pad(L.zeros(1, 1, 4), (1, 1), mode="circular", value=-0.5),
])
def test_errors_match_torch(case):
    assert _msg(case, ember) == _msg(case, torch)


@pytest.mark.parametrize("kw", [dict(scale_factor=2), dict(size=(3, 5), mode="bilinear"),
                                dict(size=(3, 5), mode="bicubic", align_corners=True),
                                dict(size=(3, 5), mode="area"),
                                dict(scale_factor=1.5, mode="nearest-exact")])
def test_interpolate_empty_batch(kw):
    # torch resizes a batch of 0 samples; ember crashed in NumPy's reshape(-1) of a size-0 array
    check_op([(0, 3, 4, 4)], lambda t, x: t.nn.functional.interpolate(x, **kw))


@pytest.mark.parametrize("shape,kw", [((2, 3, 0), dict(size=3, mode="linear")),
                                      ((2, 3, 0, 4), dict(size=(2, 2)))])
def test_interpolate_empty_spatial_input_raises(shape, kw):
    # torch: RuntimeError 'Input and output sizes should be greater than 0'; ember: IndexError
    for lib in (torch, ember):
        with pytest.raises(RuntimeError, match="Input and output sizes should be greater than 0"):
            lib.nn.functional.interpolate(lib.zeros(*shape), **kw)


def test_non_constant_pad_takes_value_none_or_zero():
    # torch accepts value=None or 0 with reflect/replicate/circular (ignored) and raises otherwise
    for mode in ("reflect", "replicate", "circular"):
        check_op([(1, 2, 4)], lambda t, x: t.nn.functional.pad(x, (1, 2), mode=mode, value=0.0))


def test_interpolate_keeps_float32():
    y = ember.nn.functional.interpolate(ember.randn(1, 2, 3, 3), scale_factor=2, mode="bicubic")
    assert y.dtype == ember.float32
    assert np.isfinite(y.numpy()).all()


def test_unfold_fold_layers_gradcheck():
    """float64 gradchecks through nn.Fold / nn.Unfold (added since a760f12)."""
    check_gradcheck([(2, 12, 9)], lambda t, x: nn.Fold((5, 5), 2, padding=1, stride=2)(x))
    check_gradcheck([(2, 3, 7, 6)], lambda t, x: nn.Unfold((3, 2), dilation=(1, 2), padding=1,
                                                           stride=2)(x))
