"""Pillow is an optional extra: import it on first use, with an error naming the extra."""

from __future__ import annotations

__all__ = ["require_pil", "is_pil_image"]


def require_pil():
    """Return the ``PIL.Image`` module, or raise ImportError saying how to install it."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(
            "this part of ember.vision needs Pillow, which is not installed; "
            'install it with: pip install "ember[vision]"'
        ) from None
    return Image


def is_pil_image(img) -> bool:
    """True for a ``PIL.Image.Image``; never imports Pillow (no Pillow means no PIL images)."""
    import sys

    mod = sys.modules.get("PIL.Image")
    return mod is not None and isinstance(img, mod.Image)
