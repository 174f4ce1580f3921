"""Image kernels on (..., C, H, W) NumPy arrays: the tensor path of torchvision's transforms.

Every function takes and returns arrays (``functional`` wraps them as Tensors). Arithmetic follows
torchvision's tensor kernels: float32 work for integer images, the same blend/clamp/truncation
rules, the same grid and interpolation conventions (``align_corners=False``).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = []  # private: reached through ``functional``


def max_value(dtype):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return 1
    if dtype.kind in "iu":
        return int(np.iinfo(dtype).max)
    return 1.0


def check_image(x):
    if x.ndim < 2:
        raise TypeError(
            f"Tensor is not a torch image: expected (..., C, H, W) or (H, W), got "
            f"shape {tuple(x.shape)}"
        )


def check_channels(x, permitted):
    c = 1 if x.ndim == 2 else x.shape[-3]
    if c not in permitted:
        raise TypeError(
            f"Input image tensor permitted channel values are {permitted}, but found {c}"
        )


def _float(x):
    return x if x.dtype.kind == "f" else x.astype(np.float32)


def _to_dtype(x, dtype, round_=False):
    """Cast a float result back to the image dtype (rounding first when torchvision does)."""
    if np.dtype(dtype).kind in "iub":
        if round_:
            x = np.round(x)
        return x.astype(dtype)
    return x.astype(dtype, copy=False)


def convert_image_dtype(x, dtype):
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    if x.dtype.kind == "f":
        if dtype.kind == "f":
            return x.astype(dtype)
        if (x.dtype == np.float32 and dtype in (np.int32, np.int64)) or (
            x.dtype == np.float64 and dtype == np.int64
        ):
            raise RuntimeError(
                f"The cast from {_tname(x.dtype)} to {_tname(dtype)} cannot be performed safely."
            )
        # (max + 1 - eps) maps [0, 1] evenly onto the integers (torchvision's rule).
        return (x * x.dtype.type(max_value(dtype) + 1.0 - 1e-3)).astype(dtype)
    in_max = max_value(x.dtype)
    if dtype.kind == "f":
        return x.astype(dtype) / dtype.type(in_max)
    out_max = max_value(dtype)
    if in_max > out_max:
        return (x // ((in_max + 1) // (out_max + 1))).astype(dtype)
    return x.astype(dtype) * ((out_max + 1) // (in_max + 1))


def _tname(dtype):
    return "torch." + np.dtype(dtype).name


def rgb_to_grayscale(x, num_output_channels=1):
    if x.ndim < 3:
        raise TypeError(
            f"Input image tensor should have at least 3 dimensions, but found {x.ndim}"
        )
    check_channels(x, [1, 3])
    if num_output_channels not in (1, 3):
        raise ValueError("num_output_channels should be either 1 or 3")
    if x.shape[-3] == 3:
        r, g, b = x[..., 0, :, :], x[..., 1, :, :], x[..., 2, :, :]
        ft = x.dtype.type if x.dtype.kind == "f" else np.float32
        gray = ft(0.2989) * r + ft(0.587) * g + ft(0.114) * b
        gray = gray.astype(x.dtype)[..., None, :, :]
    else:
        gray = x.copy()
    if num_output_channels == 3:
        return np.broadcast_to(gray, x.shape[:-3] + (3,) + x.shape[-2:]).copy()
    return gray


def _blend(x1, x2, ratio):
    ratio = float(ratio)
    bound = max_value(x1.dtype)
    ft = x1.dtype.type if x1.dtype.kind == "f" else np.float32
    out = ft(ratio) * x1 + ft(1.0 - ratio) * x2
    return np.clip(out, 0, bound).astype(x1.dtype)


def adjust_brightness(x, factor):
    if factor < 0:
        raise ValueError(f"brightness_factor ({factor}) is not non-negative.")
    check_channels(x, [1, 3])
    return _blend(x, np.zeros_like(x), factor)


def adjust_contrast(x, factor):
    if factor < 0:
        raise ValueError(f"contrast_factor ({factor}) is not non-negative.")
    check_channels(x, [3, 1])
    gray = rgb_to_grayscale(x) if x.shape[-3] == 3 else x
    mean = _float(gray).mean(axis=(-3, -2, -1), keepdims=True, dtype=np.float64)
    return _blend(x, mean.astype(x.dtype if x.dtype.kind == "f" else np.float32), factor)


def adjust_saturation(x, factor):
    if factor < 0:
        raise ValueError(f"saturation_factor ({factor}) is not non-negative.")
    check_channels(x, [1, 3])
    if x.shape[-3] == 1:
        return x
    return _blend(x, rgb_to_grayscale(x), factor)


def _rgb2hsv(x):
    r, g, b = x[..., 0, :, :], x[..., 1, :, :], x[..., 2, :, :]
    maxc, minc = x.max(axis=-3), x.min(axis=-3)
    eqc = maxc == minc
    cr = maxc - minc
    ones = np.ones_like(maxc)
    s = cr / np.where(eqc, ones, maxc)
    crd = np.where(eqc, ones, cr)
    rc, gc, bc = (maxc - r) / crd, (maxc - g) / crd, (maxc - b) / crd
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    h = np.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0)
    return h.astype(x.dtype), s, maxc


def _hsv2rgb(h, s, v):
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.astype(np.int32) % 6
    p = np.clip(v * (1.0 - s), 0.0, 1.0)
    q = np.clip(v * (1.0 - s * f), 0.0, 1.0)
    t = np.clip(v * (1.0 - s * (1.0 - f)), 0.0, 1.0)
    table = ((v, q, p, p, t, v), (t, v, v, q, p, p), (p, p, t, v, v, q))
    return np.stack([np.choose(i, row) for row in table], axis=-3).astype(h.dtype)


def adjust_hue(x, hue_factor):
    if not (-0.5 <= hue_factor <= 0.5):
        raise ValueError(f"hue_factor ({hue_factor}) is not in [-0.5, 0.5].")
    check_channels(x, [1, 3])
    if x.shape[-3] == 1:
        return x
    orig = x.dtype
    f = convert_image_dtype(x, np.float32)
    h, s, v = _rgb2hsv(f)
    h = np.mod(h + np.float32(hue_factor), np.float32(1.0))
    return convert_image_dtype(_hsv2rgb(h, s, v), orig)


def adjust_gamma(x, gamma, gain=1.0):
    if gamma < 0:
        raise ValueError("Gamma should be a non-negative real number")
    orig = x.dtype
    f = x if x.dtype.kind == "f" else convert_image_dtype(x, np.float32)
    f = np.clip(np.float32(gain) * f ** np.float32(gamma), 0, 1)
    return convert_image_dtype(f.astype(f.dtype), orig)


def pad(x, ltrb, fill=0, padding_mode="constant"):
    left, top, right, bottom = ltrb
    crop = [-min(p, 0) for p in (left, top, right, bottom)]
    if any(crop):
        x = x[..., crop[1] : x.shape[-2] - crop[3], crop[0] : x.shape[-1] - crop[2]]
    left, top, right, bottom = (max(p, 0) for p in (left, top, right, bottom))
    if padding_mode == "reflect":
        _check_reflect(x, left, right, top, bottom)
    widths = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
    if padding_mode == "constant":
        if x.dtype.kind in "iub":
            fill = int(fill)
        return np.pad(x, widths, "constant", constant_values=fill)
    return np.pad(x, widths, padding_mode)


def _check_reflect(x, left, right, top, bottom):
    """torch.nn.functional.pad's error: a reflection needs padding < the padded dimension."""
    shape = list(x.shape) if x.ndim >= 4 else [1, *x.shape]  # torchvision's unsqueeze(0)
    for arg, (a, b), dim in ((4, (left, right), -1), (6, (top, bottom), -2)):
        if a >= shape[dim] or b >= shape[dim]:
            raise RuntimeError(
                f"Argument #{arg}: Padding size should be less than the corresponding input "
                f"dimension, but got: padding ({a}, {b}) at dimension {len(shape) + dim} of "
                f"input {shape}"
            )


def crop(x, top, left, height, width):
    h, w = x.shape[-2:]
    right, bottom = left + width, top + height
    if left < 0 or top < 0 or right > w or bottom > h:
        if 0 < right and 0 < bottom and left < w and top < h:
            # overlaps the image: zero padding fused into the crop (one zero array, one copy)
            out = np.zeros(x.shape[:-2] + (height, width), dtype=x.dtype)
            t0, l0 = max(top, 0), max(left, 0)
            out[..., t0 - top : min(bottom, h) - top, l0 - left : min(right, w) - left] = x[
                ..., t0:bottom, l0:right
            ]
            return out
        ltrb = [
            max(-left + min(0, right), 0),
            max(-top + min(0, bottom), 0),
            max(right - max(w, left), 0),  # a box wholly past the edge is all padding
            max(bottom - max(h, top), 0),
        ]
        return pad(x[..., max(top, 0) : bottom, max(left, 0) : right], ltrb, 0)
    return x[..., top:bottom, left:right]


def _cubic(t, a):
    t = np.abs(t)
    return np.where(
        t <= 1,
        ((a + 2) * t - (a + 3)) * t * t + 1,
        np.where(t < 2, (((t - 5) * t + 8) * t - 4) * a, 0.0),
    )


def _weights(in_size, out_size, mode, antialias):
    """(out, in) float64 weights of one axis, as PyTorch's interpolate computes them."""
    scale = in_size / out_size
    w = np.zeros((out_size, in_size))
    rows = np.arange(out_size)
    if antialias and mode in ("bilinear", "bicubic"):
        # PIL-style filtering (torch's _upsample_*_aa): support widens when downsampling.
        half = 1.0 if mode == "bilinear" else 2.0
        support = half * scale if scale >= 1.0 else half
        invscale = 1.0 / scale if scale >= 1.0 else 1.0
        for i in range(out_size):
            center = scale * (i + 0.5)
            lo = max(int(center - support + 0.5), 0)
            hi = min(int(center + support + 0.5), in_size)
            t = (np.arange(lo, hi) - center + 0.5) * invscale
            k = np.maximum(0.0, 1.0 - np.abs(t)) if mode == "bilinear" else _cubic(t, -0.5)
            w[i, lo:hi] = k / k.sum() if k.sum() != 0 else k
        return w
    src = (rows + 0.5) * scale - 0.5
    if mode == "bilinear":
        src = np.maximum(src, 0.0)
        x0 = np.floor(src).astype(np.int64)
        lam = src - x0
        x1 = np.minimum(x0 + 1, in_size - 1)
        np.add.at(w, (rows, x0), 1.0 - lam)
        np.add.at(w, (rows, x1), lam)
        return w
    x0 = np.floor(src).astype(np.int64)
    t = src - x0
    for k in range(-1, 3):
        np.add.at(w, (rows, np.clip(x0 + k, 0, in_size - 1)), _cubic(t - k, -0.75))
    return w


def _nearest_index(in_size, out_size, exact):
    scale = np.float32(in_size) / np.float32(out_size)
    pos = np.arange(out_size, dtype=np.float32) + (np.float32(0.5) if exact else np.float32(0))
    return np.minimum(np.floor(pos * scale).astype(np.int64), in_size - 1)


def resize(x, size, interpolation="bilinear", antialias=True):
    if interpolation not in ("nearest", "nearest-exact", "bilinear", "bicubic"):
        raise ValueError(
            "This interpolation mode is unsupported with Tensor input: "
            f"{interpolation}; use nearest, nearest-exact, bilinear or bicubic"
        )
    (ih, iw), (oh, ow) = x.shape[-2:], size
    if interpolation.startswith("nearest"):
        exact = interpolation == "nearest-exact"
        return x[..., _nearest_index(ih, oh, exact)[:, None], _nearest_index(iw, ow, exact)]
    ft = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    wh = _weights(ih, oh, interpolation, antialias).astype(ft)
    ww = _weights(iw, ow, interpolation, antialias).astype(ft)
    out = np.matmul(np.matmul(wh, x.astype(ft, copy=False)), ww.T)
    if x.dtype.kind != "f":
        if interpolation == "bicubic":
            np.clip(out, 0, max_value(x.dtype), out=out)
        return _to_dtype(out, x.dtype, round_=True)
    return out


def affine_output_size(matrix, w, h):
    pts = np.array(
        [
            [-0.5 * w, -0.5 * h, 1.0],
            [-0.5 * w, 0.5 * h, 1.0],
            [0.5 * w, 0.5 * h, 1.0],
            [0.5 * w, -0.5 * h, 1.0],
        ],
        dtype=np.float32,
    )
    new = pts @ np.asarray(matrix, dtype=np.float32).reshape(2, 3).T
    lo, hi = new.min(0) + [w * 0.5, h * 0.5], new.max(0) + [w * 0.5, h * 0.5]
    tol = 1e-4  # truncate to 1e-4 so that a ceil of 1e-15 does not add a pixel
    size = np.ceil(np.trunc(hi / tol) * tol) - np.floor(np.trunc(lo / tol) * tol)
    return int(size[0]), int(size[1])


def affine_sample(x, matrix, out_w, out_h, interpolation="nearest", fill=None):
    """Sample ``x`` at the inverse-affine grid (torchvision's _gen_affine_grid + grid_sample)."""
    if interpolation not in ("nearest", "bilinear"):
        raise ValueError(f"Interpolation mode '{interpolation}' is unsupported with Tensor input")
    h, w = x.shape[-2:]
    ft = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    theta = np.asarray(matrix, dtype=ft).reshape(2, 3)
    xs = np.linspace(-out_w * 0.5 + 0.5, out_w * 0.5 - 0.5, out_w, dtype=ft)
    ys = np.linspace(-out_h * 0.5 + 0.5, out_h * 0.5 - 0.5, out_h, dtype=ft)[:, None]
    # grid_sample(align_corners=False) maps the normalised grid back to pixel index space
    sx = theta[0, 0] * xs + theta[0, 1] * ys + theta[0, 2] + ft.type((w - 1) * 0.5)
    sy = theta[1, 0] * xs + theta[1, 1] * ys + theta[1, 2] + ft.type((h - 1) * 0.5)
    src = _float(x).astype(ft, copy=False)
    if interpolation == "nearest":
        ix, iy = np.rint(sx).astype(np.int64), np.rint(sy).astype(np.int64)
        inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
        out = src[..., np.clip(iy, 0, h - 1), np.clip(ix, 0, w - 1)] * inside
        mask = inside.astype(ft)
    else:
        x0, y0 = np.floor(sx).astype(np.int64), np.floor(sy).astype(np.int64)
        out = np.zeros(x.shape[:-2] + sx.shape, dtype=ft)
        mask = np.zeros(sx.shape, dtype=ft)
        for dy in (0, 1):
            for dx in (0, 1):
                cx, cy = x0 + dx, y0 + dy
                wgt = ((1 - np.abs(sx - cx)) * (1 - np.abs(sy - cy))).astype(ft)
                ok = (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)
                wgt = wgt * ok
                out += src[..., np.clip(cy, 0, h - 1), np.clip(cx, 0, w - 1)] * wgt
                mask += wgt
    if fill is not None:
        fill = np.asarray(fill, dtype=ft).reshape(-1, 1, 1)
        if interpolation == "nearest":
            out = np.where(mask < 0.5, fill, out)
        else:
            out = out * mask + (1.0 - mask) * fill
    return _to_dtype(out, x.dtype, round_=True)


def gaussian_kernel1d(kernel_size, sigma):
    half = (kernel_size - 1) * 0.5
    t = np.linspace(-half, half, kernel_size, dtype=np.float32)
    pdf = np.exp(np.float32(-0.5) * (t / np.float32(sigma)) ** 2)
    return pdf / pdf.sum()


def gaussian_blur(x, kernel_size, sigma):
    ft = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    kx = gaussian_kernel1d(kernel_size[0], sigma[0]).astype(ft)
    ky = gaussian_kernel1d(kernel_size[1], sigma[1]).astype(ft)
    px, py = kernel_size[0] // 2, kernel_size[1] // 2
    src = pad(x.astype(ft), [px, py, px, py], padding_mode="reflect")
    h, w = x.shape[-2:]
    tmp = sum(ky[k] * src[..., k : k + h, :] for k in range(len(ky)))
    out = sum(kx[k] * tmp[..., :, k : k + w] for k in range(len(kx)))
    return _to_dtype(out, x.dtype, round_=True)


def erase(x, i, j, h, w, v, inplace=False):
    if not inplace:
        x = x.copy()
    x[..., i : i + h, j : j + w] = v
    return x


def inverse_affine_matrix(center, angle, translate, scale, shear):
    rot, sx, sy = math.radians(angle), math.radians(shear[0]), math.radians(shear[1])
    cx, cy = center
    tx, ty = translate
    a = math.cos(rot - sy) / math.cos(sy)
    b = -math.cos(rot - sy) * math.tan(sx) / math.cos(sy) - math.sin(rot)
    c = math.sin(rot - sy) / math.cos(sy)
    d = -math.sin(rot - sy) * math.tan(sx) / math.cos(sy) + math.cos(rot)
    m = [x / scale for x in (d, -b, 0.0, -c, a, 0.0)]
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty) + cx
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty) + cy
    return m
