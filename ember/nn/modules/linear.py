"""linear modules (being written)."""

__all__ = []
