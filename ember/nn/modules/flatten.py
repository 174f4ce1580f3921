"""flatten modules (being written)."""

__all__ = []
