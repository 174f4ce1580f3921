"""activation modules (being written)."""

__all__ = []
