"""rnn modules (being written)."""

__all__ = []
