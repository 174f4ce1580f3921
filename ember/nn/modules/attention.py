"""attention modules (being written)."""

__all__ = []
