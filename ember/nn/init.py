"""``ember.nn.init`` (being written)."""

__all__ = []
