"""recurrent ops (being written)."""

__all__ = []
