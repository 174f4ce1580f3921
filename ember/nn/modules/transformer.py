"""transformer modules (being written)."""

__all__ = []
