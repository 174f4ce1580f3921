"""Resampling: ``pad``, ``interpolate``/``upsample*``, ``pixel_shuffle``/``unshuffle``,
``unfold``/``fold``.

Interpolation (nearest, nearest-exact, linear, bilinear, bicubic, area) is a separable linear map:
one small matrix per spatial axis (built with PyTorch's source-index rules in float32) applied by
BLAS, so forward and backward are two matrix products each. Non-constant padding gathers along
each axis and its backward adds the few border rows back, one pad position at a time.

Example::

    y = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    y = F.pad(x, (1, 1, 2, 2), mode="reflect")
"""

from __future__ import annotations

import math

import numpy as np

from ember.autograd.function import Function
from ember.backend.im2col import col2im, conv_out_size, im2col, pad_cn, unpad_cn
from ember.ops.conv import _ntuple

__all__ = ["pad", "interpolate", "upsample", "upsample_nearest", "upsample_bilinear",
           "pixel_shuffle", "pixel_unshuffle", "unfold", "fold"]


# ----------------------------------------------------------------------------- pad
def _pad_index(n, lo, hi, mode):
    i = np.arange(-lo, n + hi)
    if mode == "reflect":
        i = np.abs(i)
        return np.where(i >= n, 2 * (n - 1) - i, i)
    if mode == "replicate":
        return np.clip(i, 0, n - 1)
    return i % n  # circular


class PadOp(Function):
    """``pairs``: (before, after) for each of the last len(pairs) axes, first axis first."""

    @staticmethod
    def forward(ctx, x, pairs, mode, value):
        nd = len(pairs)
        ctx.args = (x.shape, pairs, mode)
        if mode == "constant":
            shape = x.shape[:-nd] + tuple(s + lo + hi for s, (lo, hi) in
                                          zip(x.shape[-nd:], pairs))
            out = np.full(shape, value, dtype=x.dtype)
            src, dst = _constant_slices(x.shape[-nd:], pairs)
            out[dst] = x[src]
            return out
        for k, (lo, hi) in enumerate(pairs):
            ax = x.ndim - nd + k
            x = np.take(x, _pad_index(x.shape[ax], lo, hi, mode), axis=ax)
        return x

    @staticmethod
    def backward(ctx, g):
        shape, pairs, mode = ctx.args
        nd = len(pairs)
        if mode == "constant":
            gx = np.zeros(shape, dtype=g.dtype)
            src, dst = _constant_slices(shape[-nd:], pairs)
            gx[src] = g[dst]
            return gx, None, None, None
        for k in range(nd - 1, -1, -1):
            lo, hi = pairs[k]
            ax = g.ndim - nd + k
            n = shape[ax]
            idx = _pad_index(n, lo, hi, mode)
            gm = np.moveaxis(g, ax, 0)
            acc = gm[lo:lo + n].copy()
            for j in list(range(lo)) + list(range(lo + n, lo + n + hi)):
                acc[idx[j]] += gm[j]
            g = np.moveaxis(acc, 0, ax)
        return np.ascontiguousarray(g), None, None, None


def _constant_slices(spatial, pairs):
    src, dst = [Ellipsis], [Ellipsis]
    for n, (lo, hi) in zip(spatial, pairs):
        src.append(slice(max(-lo, 0), n - max(-hi, 0)))
        dst.append(slice(max(lo, 0), max(lo, 0) + n - max(-lo, 0) - max(-hi, 0)))
    return tuple(src), tuple(dst)


def pad(input, pad, mode="constant", value=None):
    """Pad the last ``len(pad) // 2`` dimensions: ``pad = (left, right, top, bottom, ...)``,
    last dimension first. Modes: ``'constant'`` (negative pads crop), ``'reflect'``,
    ``'replicate'``, ``'circular'``.

    Example::

        F.pad(x, (1, 1), value=0.5)            # pads the last dimension by one on each side
        F.pad(x, (2, 2, 2, 2), mode="reflect")
    """
    pad = [int(p) for p in pad]
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    nd = len(pad) // 2
    if nd > input.ndim:
        raise RuntimeError(f"Padding length should be less than or equal to two times the input "
                           f"dimension but got padding length {len(pad)} and input of dimension "
                           f"{input.ndim}")
    pairs = tuple((pad[2 * k], pad[2 * k + 1]) for k in range(nd))[::-1]
    if mode == "constant":
        spatial = input.shape[input.ndim - nd:]
        if any(n + lo + hi < 0 for n, (lo, hi) in zip(spatial, pairs)):
            raise RuntimeError(f"The input size {list(spatial)}, plus negative padding "
                               f"{pad} resulted in a negative output size")
        return PadOp.apply(input, pairs, mode, 0.0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    if value:  # torch accepts None or 0 here, nothing else
        raise RuntimeError(f'Padding mode "{mode}" doesn\'t take in value argument')
    if not (input.ndim - 1 <= nd + 1 <= input.ndim) or nd > 3:
        raise NotImplementedError(
            f"Padding size {len(pad)} is not supported for {input.ndim}D input tensor.\n"
            "Supported combinations for non-constant padding:\n"
            "  - 2D or 3D input: padding size = 2 (pads last dimension)\n"
            "  - 3D or 4D input: padding size = 4 (pads last 2 dimensions)\n"
            "  - 4D or 5D input: padding size = 6 (pads last 3 dimensions)")
    for k, (lo, hi) in enumerate(pairs):
        dim = input.ndim - nd + k
        n = input.shape[dim]
        if mode == "reflect" and (lo >= n or hi >= n):
            raise RuntimeError(f"Argument #4: Padding size should be less than the corresponding "
                               f"input dimension, but got: padding ({lo}, {hi}) at dimension "
                               f"{dim} of input {list(input.shape)}")
        if mode == "circular" and (lo > n or hi > n):
            raise RuntimeError("Padding value causes wrapping around more than once.")
    return PadOp.apply(input, pairs, mode, None)


# ----------------------------------------------------------------------------- interpolate
def _interp_matrix(n_in, n_out, mode, align_corners, scale):
    """(n_out, n_in) float32 matrix of one axis; ``scale`` is PyTorch's in/out ratio or None."""
    f32 = np.float32
    dst = np.arange(n_out, dtype=f32)
    m = np.zeros((n_out, n_in), dtype=f32)
    rows = np.arange(n_out)
    if scale is None:
        scale = n_in / n_out
    if mode in ("nearest", "nearest-exact"):
        s = f32(scale)
        src = np.floor((dst + f32(0.5)) * s if mode == "nearest-exact" else dst * s)
        m[rows, np.minimum(src.astype(np.int64), n_in - 1)] = 1.0
        return m
    if align_corners:
        s = f32((n_in - 1) / (n_out - 1)) if n_out > 1 else f32(0.0)
        src = dst * s
    else:
        s = f32(scale)
        src = s * (dst + f32(0.5)) - f32(0.5)
        if mode != "bicubic":
            src = np.maximum(src, f32(0.0))
    i0 = np.floor(src).astype(np.int64)
    t = src - i0.astype(f32)
    if mode == "bicubic":
        a = f32(-0.75)
        x1, x2 = t + f32(1.0), f32(1.0) - t
        ws = [((a * x1 - 5 * a) * x1 + 8 * a) * x1 - 4 * a,
              ((a + 2) * t - (a + 3)) * t * t + 1,
              ((a + 2) * x2 - (a + 3)) * x2 * x2 + 1,
              ((a * (x2 + 1) - 5 * a) * (x2 + 1) + 8 * a) * (x2 + 1) - 4 * a]
        for k, w in enumerate(ws):  # one tap per row at a time: no repeated index in an update
            m[rows, np.clip(i0 - 1 + k, 0, n_in - 1)] += w
        return m
    i1 = np.minimum(i0 + 1, n_in - 1)
    m[rows, i0] += f32(1.0) - t
    m[rows, i1] += t
    return m


class SeparableOp(Function):
    """y = A_1 . x . A_k over the trailing axes (one (out, in) matrix per spatial axis)."""

    @staticmethod
    def forward(ctx, x, mats):
        ctx.mats = mats
        return _apply_mats(x, mats, transpose=False)

    @staticmethod
    def backward(ctx, g):
        return _apply_mats(g, ctx.mats, transpose=True), None


def _apply_mats(x, mats, transpose):
    nd = len(mats)
    for k, m in enumerate(mats):
        m = m.T if transpose else m
        ax = x.ndim - nd + k
        pre, post = x.shape[:ax], x.shape[ax + 1:]
        if not post:  # explicit sizes, not -1: an empty batch reshapes too
            rows = int(np.prod(pre, dtype=np.int64))
            x = (x.reshape(rows, x.shape[-1]) @ m.T).reshape(pre + (m.shape[0],))
        else:
            cols = int(np.prod(post, dtype=np.int64))
            x = np.matmul(m, x.reshape(pre + (x.shape[ax], cols)))
            x = x.reshape(pre + (m.shape[0],) + post)
    return np.ascontiguousarray(x)


_MODES = {"nearest": None, "nearest-exact": None, "area": None, "linear": 1, "bilinear": 2,
          "bicubic": 2, "trilinear": 3}


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize the spatial dimensions of ``(N, C, *)`` input to ``size`` or by ``scale_factor``.

    Modes: ``nearest``, ``nearest-exact``, ``linear`` (3-D), ``bilinear`` / ``bicubic`` (4-D),
    ``area``; ``align_corners`` for the interpolating modes.

    Example::

        y = F.interpolate(x, scale_factor=2, mode="nearest")
        y = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=True)
    """
    nd = input.ndim - 2
    if mode not in _MODES or nd < 1 or nd > 3:
        raise NotImplementedError(
            f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.ndim}D) for the "
            "modes: nearest | linear | bilinear | bicubic | trilinear | lanczos | area | "
            f"nearest-exact (got {mode})")
    if mode in ("nearest", "nearest-exact", "area"):
        if align_corners is not None:
            raise ValueError("align_corners option can only be set with the interpolating modes: "
                             "linear | bilinear | bicubic | trilinear")
    else:
        if _MODES[mode] != nd:
            raise NotImplementedError(f"Got {input.ndim}D input, but {mode} mode needs "
                                      f"{_MODES[mode] + 2}D input")
        align_corners = bool(align_corners)
    if antialias:
        raise NotImplementedError("antialias=True is not supported by ember's interpolate")
    if (size is None) == (scale_factor is None):
        raise ValueError("only one of size or scale_factor should be defined" if size is not None
                         else "either size or scale_factor should be defined")
    spatial = tuple(input.shape[2:])
    if input.shape[1] == 0:  # an empty batch is fine, no channels is not
        raise RuntimeError(f"Non-empty {input.ndim}D data tensor expected but got a tensor with "
                           f"sizes {list(input.shape)}")
    if size is not None:
        out = tuple(size) if isinstance(size, (tuple, list)) else (size,) * nd
        if len(out) != nd:
            raise ValueError(
                f"Input and output must have the same number of spatial dimensions, but got input "
                f"with spatial dimensions of {list(spatial)} and output size of {size}. Please "
                "provide input tensor in (N, C, d1, d2, ...,dK) format and output size in "
                "(o1, o2, ...,oK) format.")
        out = tuple(int(o) for o in out)
        scales = (None,) * nd
    else:
        sf = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else \
            (scale_factor,) * nd
        if len(sf) != nd:
            raise ValueError(
                f"Input and scale_factor must have the same number of spatial dimensions, but got "
                f"input with spatial dimensions of {list(spatial)} and scale_factor of shape "
                f"{scale_factor}. Please provide input tensor in (N, C, d1, d2, ...,dK) format "
                "and scale_factor in (s1, s2, ...,sK) format.")
        out = tuple(int(math.floor(n * float(f))) for n, f in zip(spatial, sf))
        scales = (None,) * nd if recompute_scale_factor else tuple(1.0 / float(f) for f in sf)
    if any(o <= 0 for o in out) or 0 in spatial:
        raise RuntimeError(f"Input and output sizes should be greater than 0, but got input "
                           f"({', '.join(map(str, spatial))}) and output "
                           f"({', '.join(map(str, out))})")
    if mode == "area":
        from ember.ops.pooling import adaptive_avg_pool1d, adaptive_avg_pool2d

        if nd == 1:
            return adaptive_avg_pool1d(input, out)
        if nd == 2:
            return adaptive_avg_pool2d(input, out)
        mats = tuple(_area_matrix(n, o) for n, o in zip(spatial, out))
        return SeparableOp.apply(input, mats)
    mats = tuple(_interp_matrix(n, o, mode, align_corners, s)
                 for n, o, s in zip(spatial, out, scales))
    return SeparableOp.apply(input, mats)


def _area_matrix(n, o):
    from ember.ops._adaptive_pool import _avg_matrix

    return _avg_matrix(n, o, np.float32)


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Deprecated alias of ``interpolate`` (as in PyTorch)."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# ----------------------------------------------------------------------------- pixel shuffle
def pixel_shuffle(input, upscale_factor):
    """``(*, C*r*r, H, W)`` -> ``(*, C, H*r, W*r)`` (a reshape/permute composite)."""
    r = int(upscale_factor)
    if r <= 0:
        raise RuntimeError(f"pixel_shuffle expects a positive upscale_factor, but got {r}")
    if input.ndim < 3:
        raise RuntimeError(f"pixel_shuffle expects input to have at least 3 dimensions, but got "
                           f"input with {input.ndim} dimension(s)")
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be divisible "
                           f"by the square of upscale_factor, but input.size(-3)={c} is not "
                           f"divisible by {r * r}")
    nl = len(lead)
    x = input.reshape(*lead, c // (r * r), r, r, h, w)
    x = x.permute(*range(nl), nl, nl + 3, nl + 1, nl + 4, nl + 2)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input, downscale_factor):
    """``(*, C, H*r, W*r)`` -> ``(*, C*r*r, H, W)``, the inverse of ``pixel_shuffle``."""
    r = int(downscale_factor)
    if r <= 0:
        raise RuntimeError(f"pixel_unshuffle expects a positive downscale_factor, but got {r}")
    if input.ndim < 3:
        raise RuntimeError(f"pixel_unshuffle expects input to have at least 3 dimensions, but got "
                           f"input with {input.ndim} dimension(s)")
    *lead, c, h, w = input.shape
    for name, n, d in (("height", h, -2), ("width", w, -1)):
        if n % r:
            raise RuntimeError(f"pixel_unshuffle expects {name} to be divisible by "
                               f"downscale_factor, but input.size({d})={n} is not divisible by {r}")
    nl = len(lead)
    x = input.reshape(*lead, c, h // r, r, w // r, r)
    x = x.permute(*range(nl), nl, nl + 2, nl + 4, nl + 1, nl + 3)
    return x.reshape(*lead, c * r * r, h // r, w // r)


# ----------------------------------------------------------------------------- unfold / fold
def _unfold_arr(x, k, d, p, s, out_hw):
    n, c = x.shape[:2]
    cols = im2col(pad_cn(x, (p[0], p[0], p[1], p[1])), k, s, d, out_hw)
    blocks = out_hw[0] * out_hw[1]  # not -1: an empty batch reshapes too
    return np.ascontiguousarray(cols.reshape(c * k[0] * k[1], n, blocks).transpose(1, 0, 2))


def _fold_arr(cols, shape, k, d, p, s, out_hw):
    n, c = shape[:2]
    ct = np.ascontiguousarray(cols.transpose(1, 0, 2)).reshape((c,) + tuple(k) + (n,) + out_hw)
    padded = (shape[2] + 2 * p[0], shape[3] + 2 * p[1])
    return unpad_cn(col2im(ct, padded, s, d), (p[0], p[0], p[1], p[1]), shape)


class UnfoldOp(Function):
    @staticmethod
    def forward(ctx, x, k, d, p, s, out_hw):
        ctx.args = (x.shape, k, d, p, s, out_hw)
        return _unfold_arr(x, k, d, p, s, out_hw)

    @staticmethod
    def backward(ctx, g):
        return (_fold_arr(g, *ctx.args),) + (None,) * 5


class FoldOp(Function):
    @staticmethod
    def forward(ctx, cols, shape, k, d, p, s, out_hw):
        ctx.args = (k, d, p, s, out_hw)
        return _fold_arr(cols, shape, k, d, p, s, out_hw)

    @staticmethod
    def backward(ctx, g):
        return (_unfold_arr(g, *ctx.args),) + (None,) * 6


def _blocks(spatial, k, d, p, s):
    return tuple(conv_out_size(n, kv, sv, 2 * pv, dv) for n, kv, sv, pv, dv in
                 zip(spatial, k, s, p, d))


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Extract sliding blocks: ``(N, C, H, W)`` -> ``(N, C*kh*kw, L)`` (im2col).

    Example::

        cols = F.unfold(x, kernel_size=3, padding=1)    # (N, C*9, H*W)
    """
    if input.ndim not in (3, 4):
        raise RuntimeError(f"Input Error: Only 3D or 4D input Tensors are supported (got "
                           f"{input.ndim}D)")
    k, d = _ntuple(kernel_size, 2, "kernel_size"), _ntuple(dilation, 2, "dilation")
    p, s = _ntuple(padding, 2, "padding"), _ntuple(stride, 2, "stride")
    x = input if input.ndim == 4 else input.unsqueeze(0)
    out_hw = _blocks(x.shape[2:], k, d, p, s)
    if any(o <= 0 for o in out_hw):
        raise RuntimeError(f"Given input with spatial size {list(x.shape[2:])}, kernel_size="
                           f"{k}, dilation={d}, padding={p}, calculated shape of the array of "
                           f"sliding blocks as {list(out_hw)}, but its components must be at "
                           "least one.")
    y = UnfoldOp.apply(x, k, d, p, s, out_hw)
    return y if input.ndim == 4 else y.squeeze(0)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Combine sliding blocks ``(N, C*kh*kw, L)`` into ``(N, C, *output_size)`` summing overlaps
    (col2im); the adjoint of ``unfold``."""
    if input.ndim not in (2, 3):
        raise RuntimeError(f"Input Error: Only unbatched (2D) or batched (3D) input Tensors are "
                           f"supported (got {input.ndim}D)")
    size = _ntuple(output_size, 2, "output_size")
    k, d = _ntuple(kernel_size, 2, "kernel_size"), _ntuple(dilation, 2, "dilation")
    p, s = _ntuple(padding, 2, "padding"), _ntuple(stride, 2, "stride")
    x = input if input.ndim == 3 else input.unsqueeze(0)
    out_hw = _blocks(size, k, d, p, s)
    if x.shape[1] % (k[0] * k[1]):
        raise RuntimeError(f"Expected size of input's dimension 1 to be divisible by the product "
                           f"of kernel_size, but got input.size(1)={x.shape[1]} and kernel_size="
                           f"{k}")
    if x.shape[2] != out_hw[0] * out_hw[1]:
        raise RuntimeError(
            f"Given output_size={size}, kernel_size={k}, dilation={d}, padding={p}, stride={s}, "
            f"expected size of input's dimension 2 to match the calculated number of sliding "
            f"blocks {out_hw[0]} * {out_hw[1]} = {out_hw[0] * out_hw[1]}, but got "
            f"input.size(2)={x.shape[2]}.")
    shape = (x.shape[0], x.shape[1] // (k[0] * k[1])) + size
    y = FoldOp.apply(x, shape, k, d, p, s, out_hw)
    return y if input.ndim == 3 else y.squeeze(0)
