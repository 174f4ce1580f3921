"""Accepted for PyTorch compatibility: ``torch.backends.cudnn.benchmark = True`` is harmless."""

enabled = False
benchmark = False
deterministic = False


def is_available():
    return False
