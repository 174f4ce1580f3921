"""``ember.accelerator``: the device-agnostic accelerator API (no accelerator backend yet)."""

from __future__ import annotations

__all__ = ["is_available", "current_accelerator", "device_count"]


def is_available():
    return False


def current_accelerator(check_available=False):
    return None


def device_count():
    return 0
