"""torchvision.io's image functions, on Pillow: ``read_image``, ``decode_image``, ``write_png``.

>>> img = read_image("cat.png")                       # uint8 (C, H, W) tensor
>>> img = read_image("cat.jpg", ImageReadMode.RGB)
>>> write_png(img, "copy.png")
"""

from __future__ import annotations

import io as _io
from enum import Enum

import numpy as np

from ember.tensor import Tensor, _wrap
from ember.vision._pil import require_pil

__all__ = [
    "ImageReadMode",
    "read_file",
    "write_file",
    "decode_image",
    "read_image",
    "write_png",
    "encode_png",
]


class ImageReadMode(Enum):
    UNCHANGED = 0
    GRAY = 1
    GRAY_ALPHA = 2
    RGB = 3
    RGB_ALPHA = 4


_PIL_MODES = {
    ImageReadMode.GRAY: "L",
    ImageReadMode.GRAY_ALPHA: "LA",
    ImageReadMode.RGB: "RGB",
    ImageReadMode.RGB_ALPHA: "RGBA",
}


def read_file(path):
    """The bytes of a file as a uint8 1-D tensor."""
    with open(path, "rb") as f:
        return _wrap(np.frombuffer(f.read(), dtype=np.uint8).copy())


def write_file(filename, data):
    with open(filename, "wb") as f:
        f.write(np.ascontiguousarray(data._data, dtype=np.uint8).tobytes())


def decode_image(input, mode=ImageReadMode.UNCHANGED):
    """Decode PNG/JPEG/... bytes (a uint8 tensor or a path) into a uint8 (C, H, W) tensor."""
    Image = require_pil()
    if isinstance(input, Tensor):
        img = Image.open(_io.BytesIO(input._data.tobytes()))
    else:
        img = Image.open(input)
    with img:
        if mode != ImageReadMode.UNCHANGED:
            img = img.convert(_PIL_MODES[mode])
        elif img.mode in ("P", "1", "CMYK", "YCbCr"):
            img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        arr = np.array(img)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return _wrap(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def read_image(path, mode=ImageReadMode.UNCHANGED):
    """Read an image file into a uint8 (C, H, W) tensor."""
    return decode_image(path, mode)


def encode_png(input, compression_level=6):
    """A uint8 (C, H, W) tensor -> PNG bytes as a uint8 1-D tensor."""
    Image = require_pil()
    x = input._data
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[0] not in (1, 2, 3, 4):
        raise ValueError(
            f"encode_png expects a uint8 (C, H, W) tensor with 1-4 channels, got "
            f"{x.dtype} {x.shape}"
        )
    arr = x.transpose(1, 2, 0)
    arr = np.ascontiguousarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    buf = _io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=compression_level)
    return _wrap(np.frombuffer(buf.getvalue(), dtype=np.uint8).copy())


def write_png(input, filename, compression_level=6):
    write_file(filename, encode_png(input, compression_level))
