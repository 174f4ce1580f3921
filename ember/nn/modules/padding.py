"""padding modules (being written)."""

__all__ = []
