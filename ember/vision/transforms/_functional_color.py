"""Colour, blur, erase and dtype functions of ``transforms.functional`` (re-exported there).

>>> F.adjust_brightness(img, 1.5); F.rgb_to_grayscale(img); F.convert_image_dtype(x, ember.float32)
"""

from __future__ import annotations

from ember.tensor import Tensor, _wrap
from ember.vision._pil import is_pil_image
from ember.vision.transforms import _functional_pil as F_pil
from ember.vision.transforms import _functional_tensor as F_t
from ember.vision.transforms.functional import _tensor_op, pil_to_tensor, to_pil_image

__all__ = [
    "rgb_to_grayscale",
    "to_grayscale",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_saturation",
    "adjust_hue",
    "adjust_gamma",
    "gaussian_blur",
    "erase",
    "convert_image_dtype",
]


def rgb_to_grayscale(img, num_output_channels=1):
    """ITU-R 601-2 luma (``0.2989 R + 0.587 G + 0.114 B``); 1 or 3 output channels."""
    if is_pil_image(img):
        return F_pil.to_grayscale(img, num_output_channels)
    return _tensor_op(img, F_t.rgb_to_grayscale, num_output_channels)


def to_grayscale(img, num_output_channels=1):
    """PIL-only spelling of ``rgb_to_grayscale``."""
    if is_pil_image(img):
        return F_pil.to_grayscale(img, num_output_channels)
    raise TypeError("Input should be PIL Image")


def adjust_brightness(img, brightness_factor):
    """0 gives black, 1 the original image, 2 twice the brightness."""
    if is_pil_image(img):
        return F_pil.adjust_brightness(img, brightness_factor)
    return _tensor_op(img, F_t.adjust_brightness, brightness_factor)


def adjust_contrast(img, contrast_factor):
    """Blend with the mean gray level: 0 gives solid gray, 1 the original image."""
    if is_pil_image(img):
        return F_pil.adjust_contrast(img, contrast_factor)
    return _tensor_op(img, F_t.adjust_contrast, contrast_factor)


def adjust_saturation(img, saturation_factor):
    """Blend with the grayscale image: 0 gives gray, 1 the original image."""
    if is_pil_image(img):
        return F_pil.adjust_saturation(img, saturation_factor)
    return _tensor_op(img, F_t.adjust_saturation, saturation_factor)


def adjust_hue(img, hue_factor):
    """Shift the hue channel by ``hue_factor`` in [-0.5, 0.5] (a turn of the colour wheel)."""
    if is_pil_image(img):
        return F_pil.adjust_hue(img, hue_factor)
    return _tensor_op(img, F_t.adjust_hue, hue_factor)


def adjust_gamma(img, gamma, gain=1):
    """``gain * I ** gamma`` on the [0, 1] intensity scale."""
    if is_pil_image(img):
        return F_pil.adjust_gamma(img, gamma, gain)
    return _tensor_op(img, F_t.adjust_gamma, gamma, gain)


def gaussian_blur(img, kernel_size, sigma=None):
    """Blur with a Gaussian kernel (odd sizes; reflect padding); PIL images go via a tensor."""
    if not isinstance(kernel_size, (int, list, tuple)):
        raise TypeError(
            f"kernel_size should be int or a sequence of integers. Got {type(kernel_size)}"
        )
    if isinstance(kernel_size, int):
        kernel_size = [kernel_size, kernel_size]
    if len(kernel_size) != 2:
        raise ValueError(
            f"If kernel_size is a sequence its length should be 2. Got {len(kernel_size)}"
        )
    for k in kernel_size:
        if k % 2 == 0 or k < 0:
            raise ValueError(
                f"kernel_size should have odd and positive integers. Got {kernel_size}"
            )
    if sigma is None:
        sigma = [k * 0.15 + 0.35 for k in kernel_size]
    if not isinstance(sigma, (int, float, list, tuple)):
        raise TypeError(f"sigma should be either float or sequence of floats. Got {type(sigma)}")
    if isinstance(sigma, (int, float)):
        sigma = [float(sigma), float(sigma)]
    if len(sigma) == 1:
        sigma = [sigma[0], sigma[0]]
    if len(sigma) != 2:
        raise ValueError(f"If sigma is a sequence, its length should be 2. Got {len(sigma)}")
    if any(s <= 0.0 for s in sigma):
        raise ValueError(f"sigma should have positive values. Got {sigma}")
    if is_pil_image(img):
        out = _tensor_op(pil_to_tensor(img), F_t.gaussian_blur, kernel_size, sigma)
        return to_pil_image(out, mode=img.mode)
    return _tensor_op(img, F_t.gaussian_blur, kernel_size, sigma)


def erase(img, i, j, h, w, v, inplace=False):
    """Set the (h, w) region at (i, j) of a tensor image to ``v`` (a number or a tensor)."""
    if not isinstance(img, Tensor):
        raise TypeError(f"img should be Tensor Image. Got {type(img)}")
    v = v._data if isinstance(v, Tensor) else v
    out = F_t.erase(img._data, i, j, h, w, v, inplace)
    return img if inplace else _wrap(out)


def convert_image_dtype(image, dtype=None):
    """Convert a tensor image's dtype, rescaling values (uint8 255 <-> float 1.0)."""
    from ember import dtypes

    if not isinstance(image, Tensor):
        raise TypeError("Input img should be Tensor Image")
    d = dtypes.to_dtype(dtype) if dtype is not None else dtypes.float32
    return _wrap(F_t.convert_image_dtype(image._data, d.np))
