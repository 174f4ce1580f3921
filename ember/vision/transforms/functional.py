"""Functional image transforms (torchvision.transforms.functional): PIL images and CHW tensors.

    >>> import ember.vision.transforms.functional as F
    >>> x = F.to_tensor(pil_img)                  # (C, H, W) float32 in [0, 1]
    >>> x = F.normalize(x, [0.5] * 3, [0.5] * 3)
    >>> y = F.center_crop(F.resize(pil_img, 256), 224)

Each function dispatches on its input: a ``PIL.Image`` goes through Pillow (as torchvision's), an
``ember.Tensor`` of shape (..., C, H, W) through NumPy kernels. ember extension: ``crop``, ``pad``
(constant), ``hflip``, ``vflip`` and ``get_dimensions`` also take an (H, W, C) NumPy array, so a
dataset that keeps raw uint8 arrays can run the CIFAR augmentations without a PIL round trip.
"""

from __future__ import annotations

import numbers
import warnings
from enum import Enum

import numpy as np

from ember.tensor import Tensor, _wrap
from ember.vision._pil import is_pil_image, require_pil
from ember.vision.transforms import _functional_pil as F_pil
from ember.vision.transforms import _functional_tensor as F_t

__all__ = [
    "InterpolationMode",
    "get_dimensions",
    "get_image_size",
    "get_image_num_channels",
    "to_tensor",
    "pil_to_tensor",
    "to_pil_image",
    "normalize",
    "resize",
    "pad",
    "crop",
    "center_crop",
    "resized_crop",
    "hflip",
    "vflip",
    "rotate",
    "affine",
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


class InterpolationMode(Enum):
    """Interpolation modes: PIL images take all, tensors nearest(-exact), bilinear, bicubic."""

    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


# Pillow's resampling constants (NEAREST 0, LANCZOS 1, BILINEAR 2, BICUBIC 3, BOX 4, HAMMING 5).
pil_modes_mapping = {
    InterpolationMode.NEAREST: 0,
    InterpolationMode.NEAREST_EXACT: 0,
    InterpolationMode.BILINEAR: 2,
    InterpolationMode.BICUBIC: 3,
    InterpolationMode.BOX: 4,
    InterpolationMode.HAMMING: 5,
    InterpolationMode.LANCZOS: 1,
}
_from_int = {
    0: InterpolationMode.NEAREST,
    2: InterpolationMode.BILINEAR,
    3: InterpolationMode.BICUBIC,
    4: InterpolationMode.BOX,
    5: InterpolationMode.HAMMING,
    1: InterpolationMode.LANCZOS,
}


def _interpolation(mode):
    if isinstance(mode, InterpolationMode):
        return mode
    if isinstance(mode, int) and mode in _from_int:
        return _from_int[mode]
    raise TypeError(
        "Argument interpolation should be of type InterpolationMode instead of "
        f"{type(mode).__name__} ({mode!r})"
    )


def _is_hwc(img):
    return isinstance(img, np.ndarray) and img.ndim in (2, 3)


def _unexpected(img):
    return TypeError(f"Unexpected type {type(img)}: expected a PIL Image or an ember Tensor")


def get_dimensions(img):
    """``[channels, height, width]`` of a PIL image or a (..., C, H, W) tensor."""
    if isinstance(img, Tensor):
        x = img._data
        F_t.check_image(x)
        return [1 if x.ndim == 2 else x.shape[-3], x.shape[-2], x.shape[-1]]
    if _is_hwc(img):
        return [1 if img.ndim == 2 else img.shape[2], img.shape[0], img.shape[1]]
    if is_pil_image(img):
        return F_pil.get_dimensions(img)
    raise _unexpected(img)


def get_image_size(img):
    """``[width, height]`` (torchvision's order)."""
    _, h, w = get_dimensions(img)
    return [w, h]


def get_image_num_channels(img):
    return get_dimensions(img)[0]


def _tensor_op(img, fn, *args, **kwargs):
    """Run an array kernel on a Tensor (or dispatch to the PIL one) and wrap the result."""
    if isinstance(img, Tensor):
        F_t.check_image(img._data)
        return _wrap(fn(img._data, *args, **kwargs))
    raise _unexpected(img)


def to_tensor(pic):
    """PIL image or (H, W[, C]) ndarray -> (C, H, W) tensor; uint8 input is scaled to [0, 1]."""
    if not (is_pil_image(pic) or isinstance(pic, np.ndarray)):
        raise TypeError(f"pic should be PIL Image or ndarray. Got {type(pic)}")
    if isinstance(pic, np.ndarray):
        if pic.ndim not in (2, 3):
            raise ValueError(f"pic should be 2/3 dimensional. Got {pic.ndim} dimensions.")
        arr = pic[:, :, None] if pic.ndim == 2 else pic
    else:
        nptype = {"I": np.int32, "I;16": np.int16, "F": np.float32}.get(pic.mode, np.uint8)
        arr = np.asarray(pic, dtype=nptype)
        if pic.mode == "1":
            arr = arr * np.uint8(255)
        arr = arr.reshape(pic.size[1], pic.size[0], len(pic.getbands()))
    chw = arr.transpose(2, 0, 1)
    if arr.dtype != np.uint8:
        return _wrap(np.ascontiguousarray(chw))
    from ember.dtypes import get_default_dtype

    out = chw.astype(get_default_dtype().np, order="C")  # cast + make contiguous in one copy
    np.divide(out, out.dtype.type(255), out=out)  # then scale in place (faster than a mixed loop)
    return _wrap(out)


def pil_to_tensor(pic):
    """PIL image -> (C, H, W) tensor of the image's own dtype (no scaling)."""
    if not is_pil_image(pic):
        raise TypeError(f"pic should be PIL Image. Got {type(pic)}")
    arr = np.array(pic, copy=True)
    arr = arr.reshape(pic.size[1], pic.size[0], len(pic.getbands()))
    return _wrap(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def to_pil_image(pic, mode=None):
    """(C, H, W) tensor or (H, W, C) ndarray -> PIL image (float data is scaled by 255)."""
    Image = require_pil()
    if isinstance(pic, Tensor):
        npimg = pic._data
        if npimg.ndim == 3:
            npimg = npimg.transpose(1, 2, 0)
    elif isinstance(pic, np.ndarray):
        npimg = pic
    else:
        raise TypeError(f"pic should be Tensor or ndarray. Got {type(pic)}.")
    if npimg.ndim == 2:
        npimg = npimg[:, :, None]
    if npimg.ndim != 3:
        raise ValueError(f"pic should be 2/3 dimensional. Got {npimg.ndim} dimensions.")
    if npimg.shape[-1] > 4:
        raise ValueError(f"pic should not have > 4 channels. Got {npimg.shape[-1]} channels.")
    if np.issubdtype(npimg.dtype, np.floating) and mode != "F":
        npimg = (npimg * 255).astype(np.uint8)
    c = npimg.shape[2]
    if c == 1:
        npimg = npimg[:, :, 0]
        expected = {
            np.dtype(np.uint8): "L",
            np.dtype(np.int16): "I;16",
            np.dtype(np.int32): "I",
            np.dtype(np.float32): "F",
        }.get(npimg.dtype)
        if mode is not None and mode != expected:
            raise ValueError(
                f"Incorrect mode ({mode}) supplied for input type {npimg.dtype}. "
                f"Should be {expected}"
            )
        mode = expected
    else:
        permitted = {2: ["LA"], 3: ["RGB", "YCbCr", "HSV"], 4: ["RGBA", "CMYK", "RGBX"]}[c]
        if mode is not None and mode not in permitted:
            raise ValueError(f"Only modes {permitted} are supported for {c}D inputs")
        if mode is None and npimg.dtype == np.uint8:
            mode = permitted[0]
    if mode is None:
        raise TypeError(f"Input type {npimg.dtype} is not supported")
    if mode == "I;16":
        npimg = npimg.astype("<u2")
    h, w = npimg.shape[:2]
    return Image.frombuffer(mode, (w, h), np.ascontiguousarray(npimg).tobytes(), "raw", mode, 0, 1)


_STATS = {}  # (mean, std, dtype) -> broadcastable arrays, so a pipeline converts them once


def _channel_stats(mean, std, np_dtype, dtype):
    key = None
    if isinstance(mean, (tuple, list)) and isinstance(std, (tuple, list)):
        key = (tuple(mean), tuple(std), np_dtype)
        try:
            return _STATS[key]
        except KeyError:
            pass
        except TypeError:  # unhashable entries (e.g. arrays): convert every time
            key = None
    m = np.asarray(mean._data if isinstance(mean, Tensor) else mean, dtype=np_dtype)
    s = np.asarray(std._data if isinstance(std, Tensor) else std, dtype=np_dtype)
    if (s == 0).any():
        raise ValueError(
            f"std evaluated to zero after conversion to {dtype}, leading to division by zero."
        )
    m = m.reshape(-1, 1, 1) if m.ndim == 1 else m
    s = s.reshape(-1, 1, 1) if s.ndim == 1 else s
    if key is not None:
        m.flags.writeable = s.flags.writeable = False
        if len(_STATS) > 64:
            _STATS.clear()
        _STATS[key] = (m, s)
    return m, s


def normalize(tensor, mean, std, inplace=False):
    """``(tensor - mean) / std`` per channel of a float (..., C, H, W) tensor."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"img should be Tensor Image. Got {type(tensor)}")
    x = tensor._data
    if x.dtype.kind != "f":
        raise TypeError(f"Input tensor should be a float tensor. Got {tensor.dtype}.")
    if x.ndim < 3:
        raise ValueError(
            "Expected tensor to be a tensor image of size (..., C, H, W). Got "
            f"tensor.size() = {tensor.size()}"
        )
    m, s = _channel_stats(mean, std, x.dtype, tensor.dtype)
    if tensor.requires_grad and not inplace:  # keep the graph: composite of ember ops
        return (tensor - _wrap(m)) / _wrap(s)
    out = x if inplace else np.empty_like(x)
    for stat, op, src in ((m, np.subtract, x), (s, np.divide, out)):
        try:
            op(src, stat, out=out)
        except ValueError:  # more or fewer channels than mean/std: PyTorch's sub_/div_ error
            _broadcast_error(x.shape, stat.shape)
    return tensor if inplace else _wrap(out)


def _broadcast_error(out_shape, stat_shape):
    from ember.ops.elementwise import broadcast_mismatch

    msg = broadcast_mismatch(out_shape, stat_shape)
    if msg is not None:
        raise RuntimeError(msg) from None
    full = list(np.broadcast_shapes(out_shape, stat_shape))
    raise RuntimeError(
        f"output with shape {list(out_shape)} doesn't match the broadcast shape {full}"
    ) from None


def _output_size(h, w, size, max_size):
    if isinstance(size, int):
        size = [size]
    if len(size) == 2:
        return [int(size[0]), int(size[1])]
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size[0], int(size[0] * long / short)
    if max_size is not None:
        if max_size <= size[0]:
            raise ValueError(
                f"max_size = {max_size} must be strictly greater than the requested "
                f"size for the smaller edge size = {size}"
            )
        if new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), max_size
    return [new_long, new_short] if w <= h else [new_short, new_long]


def resize(img, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias=True):
    """Resize to ``size`` (h, w), or make the smaller edge ``size`` keeping the aspect ratio."""
    interpolation = _interpolation(interpolation)
    if isinstance(size, (list, tuple)):
        if len(size) not in (1, 2):
            raise ValueError(
                "Size must be an int or a 1 or 2 element tuple/list, not a "
                f"{len(size)} element tuple/list"
            )
        if max_size is not None and len(size) != 1:
            raise ValueError(
                "max_size should only be passed if size specifies the length of the "
                "smaller edge, i.e. size should be an int or a sequence of length 1"
            )
    elif not isinstance(size, int):
        raise TypeError(f"Size should be int or sequence. Got {type(size)}")
    _, h, w = get_dimensions(img)
    out = _output_size(h, w, size, max_size)
    if [h, w] == out:
        return img
    if isinstance(img, Tensor):
        return _tensor_op(img, F_t.resize, out, interpolation.value, antialias)
    if antialias is False:
        warnings.warn(
            "Anti-alias option is always applied for PIL Image input. Argument "
            "antialias is ignored."
        )
    return F_pil.resize(img, out, pil_modes_mapping[interpolation])


def pad(img, padding, fill=0, padding_mode="constant"):
    """Pad each side; ``padding`` is one int, (left/right, top/bottom) or (l, t, r, b)."""
    if is_pil_image(img):
        return F_pil.pad(img, padding, fill, padding_mode)
    if not isinstance(fill, (numbers.Number, tuple, list)) and fill is not None:
        raise TypeError("Got inappropriate fill arg")
    if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
        raise ValueError("Padding mode should be either constant, edge, reflect or symmetric")
    ltrb = F_pil.parse_padding(padding)
    fill = 0 if fill is None else fill
    if _is_hwc(img):  # ember extension: (H, W, C) arrays pad as CHW would
        hwc = np.moveaxis(img if img.ndim == 3 else img[:, :, None], 2, 0)
        out = np.moveaxis(F_t.pad(hwc, ltrb, fill, padding_mode), 0, 2)
        return np.ascontiguousarray(out if img.ndim == 3 else out[:, :, 0])
    if not isinstance(fill, numbers.Number):
        raise TypeError("Got inappropriate fill arg")  # tensors take one number (torchvision)
    return _tensor_op(img, F_t.pad, ltrb, fill, padding_mode)


def crop(img, top, left, height, width):
    """The region with corner (top, left) and size (height, width); outside pixels are 0."""
    if is_pil_image(img):
        return F_pil.crop(img, top, left, height, width)
    if _is_hwc(img):  # crop the CHW view: a padded result is CHW in memory, as ToTensor wants
        if img.ndim == 2:
            return F_t.crop(img, top, left, height, width)
        return F_t.crop(img.transpose(2, 0, 1), top, left, height, width).transpose(1, 2, 0)
    return _tensor_op(img, F_t.crop, top, left, height, width)


def center_crop(img, output_size):
    """Crop the center; the offset is ``int(round((h - th) / 2.0))`` as torchvision's."""
    if isinstance(output_size, numbers.Number):
        output_size = (int(output_size), int(output_size))
    elif isinstance(output_size, (tuple, list)) and len(output_size) == 1:
        output_size = (output_size[0], output_size[0])
    _, h, w = get_dimensions(img)
    th, tw = output_size
    if tw > w or th > h:
        ltrb = [
            (tw - w) // 2 if tw > w else 0,
            (th - h) // 2 if th > h else 0,
            (tw - w + 1) // 2 if tw > w else 0,
            (th - h + 1) // 2 if th > h else 0,
        ]
        img = pad(img, ltrb, fill=0)
        _, h, w = get_dimensions(img)
        if tw == w and th == h:
            return img
    return crop(img, int(round((h - th) / 2.0)), int(round((w - tw) / 2.0)), th, tw)


def resized_crop(
    img, top, left, height, width, size, interpolation=InterpolationMode.BILINEAR, antialias=True
):
    return resize(crop(img, top, left, height, width), size, interpolation, antialias=antialias)


def hflip(img):
    """Mirror left-right."""
    if is_pil_image(img):
        return F_pil.hflip(img)
    if _is_hwc(img):
        return img[:, ::-1]
    return _tensor_op(img, lambda x: x[..., ::-1].copy())


def vflip(img):
    """Mirror top-bottom."""
    if is_pil_image(img):
        return F_pil.vflip(img)
    if _is_hwc(img):
        return img[::-1]
    return _tensor_op(img, lambda x: x[..., ::-1, :].copy())


def rotate(
    img, angle, interpolation=InterpolationMode.NEAREST, expand=False, center=None, fill=None
):
    """Rotate counter-clockwise by ``angle`` degrees about ``center`` (default: the middle)."""
    interpolation = _interpolation(interpolation)
    if not isinstance(angle, (int, float)):
        raise TypeError("Argument angle should be int or float")
    if center is not None and not isinstance(center, (list, tuple)):
        raise TypeError("Argument center should be a sequence")
    if is_pil_image(img):
        return F_pil.rotate(img, angle, pil_modes_mapping[interpolation], expand, center, fill)
    _, h, w = get_dimensions(img)
    center_f = [0.0, 0.0]
    if center is not None:
        center_f = [1.0 * (c - s * 0.5) for c, s in zip(center, [w, h])]
    # rotate's angle runs opposite to affine's, hence -angle (as torchvision).
    matrix = F_t.inverse_affine_matrix(center_f, -angle, [0.0, 0.0], 1.0, [0.0, 0.0])
    ow, oh = F_t.affine_output_size(matrix, w, h) if expand else (w, h)
    return _tensor_op(
        img, F_t.affine_sample, matrix, ow, oh, interpolation.value, _tensor_fill(fill, img)
    )


def _tensor_fill(fill, img):
    if fill is None:
        return None
    c = get_dimensions(img)[0]
    if isinstance(fill, (int, float)):
        return [float(fill)] * c
    fill = [float(f) for f in fill]
    if len(fill) not in (1, c):
        raise ValueError(
            "The number of elements in 'fill' cannot broadcast to match the number "
            f"of channels of the image ({len(fill)} != {c})"
        )
    return fill


def affine(
    img,
    angle,
    translate,
    scale,
    shear,
    interpolation=InterpolationMode.NEAREST,
    fill=None,
    center=None,
):
    """Rotate by ``angle``, translate, scale and shear (degrees), keeping the image size."""
    interpolation = _interpolation(interpolation)
    if not isinstance(angle, (int, float)):
        raise TypeError("Argument angle should be int or float")
    if not isinstance(translate, (list, tuple)) or len(translate) != 2:
        raise ValueError("Argument translate should be a sequence of length 2")
    if scale <= 0.0:
        raise ValueError("Argument scale should be positive")
    if isinstance(shear, numbers.Number):
        shear = [shear, 0.0]
    shear = list(shear)
    if len(shear) == 1:
        shear = [shear[0], shear[0]]
    if len(shear) != 2:
        raise ValueError(f"Shear should be a sequence containing two values. Got {shear}")
    _, h, w = get_dimensions(img)
    if is_pil_image(img):
        # PIL's center has no 0.5 offset (torchvision: visually better, matches rot90)
        center = [w * 0.5, h * 0.5] if center is None else center
        matrix = F_t.inverse_affine_matrix(center, angle, translate, scale, shear)
        return F_pil.affine(img, matrix, pil_modes_mapping[interpolation], fill)
    center_f = [0.0, 0.0]
    if center is not None:
        center_f = [1.0 * (c - s * 0.5) for c, s in zip(center, [w, h])]
    matrix = F_t.inverse_affine_matrix(
        center_f, float(angle), [1.0 * t for t in translate], scale, shear
    )
    return _tensor_op(
        img, F_t.affine_sample, matrix, w, h, interpolation.value, _tensor_fill(fill, img)
    )


# colour, blur, erase and dtype functions live in their own file; they are part of this API
from ember.vision.transforms._functional_color import (  # noqa: E402
    adjust_brightness,
    adjust_contrast,
    adjust_gamma,
    adjust_hue,
    adjust_saturation,
    convert_image_dtype,
    erase,
    gaussian_blur,
    rgb_to_grayscale,
    to_grayscale,
)
