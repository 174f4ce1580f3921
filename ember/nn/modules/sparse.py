"""sparse modules (being written)."""

__all__ = []
