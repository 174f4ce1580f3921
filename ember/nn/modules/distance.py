"""distance modules (being written)."""

__all__ = []
