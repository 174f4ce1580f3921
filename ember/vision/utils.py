"""torchvision.utils: ``make_grid`` (tile a batch of images) and ``save_image`` (PNG via Pillow).

>>> grid = make_grid(images, nrow=8, padding=2, normalize=True)   # (3, H', W')
>>> save_image(images, "batch.png", nrow=4)
"""

from __future__ import annotations

import math

import numpy as np

from ember.tensor import Tensor, _wrap
from ember.vision._pil import require_pil

__all__ = ["make_grid", "save_image"]


def make_grid(
    tensor, nrow=8, padding=2, normalize=False, value_range=None, scale_each=False, pad_value=0.0
):
    """Tile a (B, C, H, W) tensor (or a list of (C, H, W) tensors) into one (C, H', W') image.

    Args:
        nrow: images per row; padding: pixels between images (filled with ``pad_value``).
        normalize: shift to [0, 1] by ``value_range`` (min, max), default the data's min/max
            (per image when ``scale_each``). One-channel images become three channels.
    """
    if isinstance(tensor, list):
        for t in tensor:
            if not isinstance(t, Tensor):
                raise TypeError(
                    f"tensor or list of tensors expected, got a list containing {type(t)}"
                )
        x = np.stack([t._data for t in tensor], axis=0)
    elif isinstance(tensor, Tensor):
        x = tensor._data
    else:
        raise TypeError(f"tensor or list of tensors expected, got {type(tensor)}")
    if x.ndim == 2:
        x = x[None]
    if x.ndim == 3:
        if x.shape[0] == 1:
            x = np.concatenate((x, x, x), 0)
        x = x[None]
    if x.ndim == 4 and x.shape[1] == 1:
        x = np.concatenate((x, x, x), 1)
    if x.ndim != 4:
        raise ValueError(f"make_grid expected (B, C, H, W), (C, H, W) or (H, W), got {x.shape}")
    if normalize is True:
        x = x.copy()
        if value_range is not None and not isinstance(value_range, tuple):
            raise TypeError(
                "value_range has to be a tuple (min, max) if specified. min and max are numbers"
            )

        def norm_range(t):
            low, high = value_range if value_range is not None else (float(t.min()), float(t.max()))
            np.clip(t, low, high, out=t)
            t -= t.dtype.type(low)
            t /= t.dtype.type(max(high - low, 1e-5))

        for t in x if scale_each is True else [x]:
            norm_range(t)
    if x.shape[0] == 1:
        return _wrap(x[0])
    nmaps = x.shape[0]
    xmaps = min(nrow, nmaps)
    ymaps = int(math.ceil(float(nmaps) / xmaps))
    height, width = int(x.shape[2] + padding), int(x.shape[3] + padding)
    grid = np.full(
        (x.shape[1], height * ymaps + padding, width * xmaps + padding), pad_value, dtype=x.dtype
    )
    for k in range(nmaps):
        y0, x0 = (k // xmaps) * height + padding, (k % xmaps) * width + padding
        grid[:, y0 : y0 + height - padding, x0 : x0 + width - padding] = x[k]
    return _wrap(grid)


def save_image(tensor, fp, format=None, **kwargs):
    """``make_grid(tensor, **kwargs)`` saved as an 8-bit image (PNG unless format/suffix say)."""
    Image = require_pil()
    grid = make_grid(tensor, **kwargs)._data
    # +0.5 after scaling to [0, 255] rounds to the nearest integer (torchvision's rule)
    arr = np.clip(grid * 255 + 0.5, 0, 255).transpose(1, 2, 0).astype(np.uint8)
    Image.fromarray(np.ascontiguousarray(arr)).save(fp, format=format)
