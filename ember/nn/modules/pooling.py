"""pooling modules (being written)."""

__all__ = []
