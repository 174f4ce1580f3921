"""``ember.cuda``: the GPU namespace. No GPU backend exists yet, so nothing is available."""

from __future__ import annotations

__all__ = ["is_available", "device_count", "current_device", "manual_seed", "manual_seed_all",
           "synchronize", "empty_cache", "is_bf16_supported"]


def is_available():
    return False


def device_count():
    return 0


def current_device():
    raise RuntimeError("ember.cuda: no CUDA device is available (ember.cuda.is_available() is False)")


def manual_seed(seed):
    pass


manual_seed_all = manual_seed


def synchronize(device=None):
    pass


def empty_cache():
    pass


def is_bf16_supported():
    return False
