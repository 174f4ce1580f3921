"""dropout modules (being written)."""

__all__ = []
