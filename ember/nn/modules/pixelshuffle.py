"""pixelshuffle modules (being written)."""

__all__ = []
