"""Image kernels on ``PIL.Image`` (torchvision's ``_functional_pil``): Pillow does the pixel work.

Each function mirrors torchvision's, including its rounding and fill rules, so the same input and
the same parameters give the same pixels. Users call ``ember.vision.transforms.functional`` instead.
"""

from __future__ import annotations

import numbers

import numpy as np

from ember.vision._pil import is_pil_image, require_pil

__all__ = []  # private: reached through ``functional``


def _check(img):
    if not is_pil_image(img):
        raise TypeError(f"img should be PIL Image. Got {type(img)}")


def get_dimensions(img):
    _check(img)
    width, height = img.size
    return [len(img.getbands()), height, width]


def get_image_num_channels(img):
    _check(img)
    return len(img.getbands())


def hflip(img):
    _check(img)
    return img.transpose(require_pil().Transpose.FLIP_LEFT_RIGHT)


def vflip(img):
    _check(img)
    return img.transpose(require_pil().Transpose.FLIP_TOP_BOTTOM)


def _enhance(img, name, factor):
    _check(img)
    from PIL import ImageEnhance

    return getattr(ImageEnhance, name)(img).enhance(factor)


def adjust_brightness(img, brightness_factor):
    return _enhance(img, "Brightness", brightness_factor)


def adjust_contrast(img, contrast_factor):
    return _enhance(img, "Contrast", contrast_factor)


def adjust_saturation(img, saturation_factor):
    return _enhance(img, "Color", saturation_factor)


def adjust_hue(img, hue_factor):
    if not (-0.5 <= hue_factor <= 0.5):
        raise ValueError(f"hue_factor ({hue_factor}) is not in [-0.5, 0.5].")
    _check(img)
    Image = require_pil()
    input_mode = img.mode
    if input_mode in {"L", "1", "I", "F"}:
        return img
    h, s, v = img.convert("HSV").split()
    np_h = np.array(h, dtype=np.uint8)
    # The hue channel wraps around: uint8 overflow is the intended modular shift (C-style
    # truncation of hue_factor * 255 toward zero, as torchvision's cast does).
    np_h += np.uint8(int(hue_factor * 255) % 256)
    h = Image.fromarray(np_h, "L")
    return Image.merge("HSV", (h, s, v)).convert(input_mode)


def adjust_gamma(img, gamma, gain=1.0):
    _check(img)
    if gamma < 0:
        raise ValueError("Gamma should be a non-negative real number")
    input_mode = img.mode
    img = img.convert("RGB")
    gamma_map = [int((255 + 1 - 1e-3) * gain * pow(ele / 255.0, gamma)) for ele in range(256)] * 3
    return img.point(gamma_map).convert(input_mode)


def _parse_fill(fill, img, name="fillcolor"):
    num_channels = get_image_num_channels(img)
    if fill is None:
        fill = 0
    if isinstance(fill, (int, float)) and num_channels > 1:
        fill = tuple([fill] * num_channels)
    if isinstance(fill, (list, tuple)):
        if len(fill) == 1:
            fill = tuple(fill) * num_channels
        elif len(fill) != num_channels:
            raise ValueError(
                "The number of elements in 'fill' does not match the number of channels "
                f"of the image ({len(fill)} != {num_channels})"
            )
        fill = tuple(fill)
    if img.mode != "F":
        fill = tuple(int(x) for x in fill) if isinstance(fill, tuple) else int(fill)
    return {name: fill}


def parse_padding(padding):
    """``int`` / 1, 2 or 4 numbers -> (left, top, right, bottom), with torchvision's checks."""
    if not isinstance(padding, (numbers.Number, tuple, list)):
        raise TypeError("Got inappropriate padding arg")
    if isinstance(padding, (tuple, list)):
        if len(padding) not in (1, 2, 4):
            raise ValueError(
                "Padding must be an int or a 1, 2, or 4 element tuple, not a "
                f"{len(padding)} element tuple"
            )
        if len(padding) == 1:
            padding = padding[0]
    if isinstance(padding, numbers.Number):
        return [int(padding)] * 4
    if len(padding) == 2:
        return [int(padding[0]), int(padding[1]), int(padding[0]), int(padding[1])]
    return [int(p) for p in padding]


def pad(img, padding, fill=0, padding_mode="constant"):
    _check(img)
    Image = require_pil()
    if fill is not None and not isinstance(fill, (numbers.Number, tuple, list)):
        raise TypeError("Got inappropriate fill arg")
    if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
        raise ValueError("Padding mode should be either constant, edge, reflect or symmetric")
    left, top, right, bottom = parse_padding(padding)
    if padding_mode == "constant":
        from PIL import ImageOps

        opts = _parse_fill(fill, img, name="fill")
        out = ImageOps.expand(img, border=(left, top, right, bottom), **opts)
        if img.mode == "P":
            out.putpalette(img.getpalette())
        return out
    palette = img.getpalette() if img.mode == "P" else None
    arr = np.asarray(img)
    crop = -np.minimum([left, top, right, bottom], 0)
    if crop.any():
        arr = arr[crop[1] : arr.shape[0] - crop[3], crop[0] : arr.shape[1] - crop[2]]
    left, top, right, bottom = np.maximum([left, top, right, bottom], 0)
    widths = ((top, bottom), (left, right)) + (((0, 0),) if arr.ndim == 3 else ())
    out = Image.fromarray(np.pad(arr, widths, padding_mode))
    if palette is not None:
        out = out.convert("P") if out.mode != "P" else out
        out.putpalette(palette)
    return out


def crop(img, top, left, height, width):
    _check(img)
    return img.crop((left, top, left + width, top + height))


def resize(img, size, interpolation):
    _check(img)
    if not (isinstance(size, (list, tuple)) and len(size) == 2):
        raise TypeError(f"Got inappropriate size arg: {size}")
    return img.resize(tuple(int(s) for s in size[::-1]), interpolation)


def to_grayscale(img, num_output_channels):
    _check(img)
    if num_output_channels == 1:
        return img.convert("L")
    if num_output_channels == 3:
        Image = require_pil()
        g = np.array(img.convert("L"), dtype=np.uint8)
        return Image.fromarray(np.dstack([g, g, g]), "RGB")
    raise ValueError("num_output_channels should be either 1 or 3")


def rotate(img, angle, interpolation=0, expand=False, center=None, fill=None):
    _check(img)
    opts = _parse_fill(fill, img)
    return img.rotate(angle, interpolation, expand, center, **opts)


def affine(img, matrix, interpolation=0, fill=None):
    _check(img)
    Image = require_pil()
    opts = _parse_fill(fill, img)
    return img.transform(img.size, Image.Transform.AFFINE, matrix, interpolation, **opts)
