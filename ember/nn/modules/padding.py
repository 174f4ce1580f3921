"""Padding layers: zero, constant, reflection, replication and circular, 1-D and 2-D.

Example::

    pad = nn.ReflectionPad2d((1, 1, 2, 2))       # (left, right, top, bottom)
    y = pad(ember.randn(1, 3, 8, 8))             # (1, 3, 12, 10)
"""

from __future__ import annotations

from ember.nn.modules.module import Module
from ember.ops.sampling import pad

__all__ = ["ZeroPad1d", "ZeroPad2d", "ConstantPad1d", "ConstantPad2d", "ReflectionPad1d",
           "ReflectionPad2d", "ReplicationPad1d", "ReplicationPad2d", "CircularPad1d",
           "CircularPad2d"]


def _pads(padding, nd):
    if isinstance(padding, (tuple, list)):
        if len(padding) != 2 * nd:
            raise ValueError(f"expected padding of {2 * nd} values, got {tuple(padding)}")
        return tuple(int(p) for p in padding)
    return (int(padding),) * (2 * nd)


class _PadNd(Module):
    _nd = 2
    _mode = "constant"

    def __init__(self, padding):
        super().__init__()
        self.padding = _pads(padding, self._nd)

    def forward(self, input):
        return pad(input, self.padding, self._mode)

    def extra_repr(self):
        return f"{self.padding}"


class _ConstantPadNd(Module):
    _nd = 2

    def __init__(self, padding, value):
        super().__init__()
        self.padding, self.value = _pads(padding, self._nd), value

    def forward(self, input):
        return pad(input, self.padding, "constant", self.value)

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pad the last dimension with ``value``; ``padding`` is int or (left, right)."""

    _nd = 1


class ConstantPad2d(_ConstantPadNd):
    """Pad the last two dimensions with ``value``; (left, right, top, bottom)."""

    _nd = 2


class ZeroPad1d(ConstantPad1d):
    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    """Zero padding of the last two dimensions; (left, right, top, bottom)."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ReflectionPad1d(_PadNd):
    _nd, _mode = 1, "reflect"


class ReflectionPad2d(_PadNd):
    """Mirror padding (the edge not repeated); each pad must be smaller than its dimension."""

    _nd, _mode = 2, "reflect"


class ReplicationPad1d(_PadNd):
    _nd, _mode = 1, "replicate"


class ReplicationPad2d(_PadNd):
    """Repeat the edge values."""

    _nd, _mode = 2, "replicate"


class CircularPad1d(_PadNd):
    _nd, _mode = 1, "circular"


class CircularPad2d(_PadNd):
    """Wrap around (periodic) padding."""

    _nd, _mode = 2, "circular"
