"""linear ops (being written)."""

__all__ = []
