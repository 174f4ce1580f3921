"""Anomaly detection, as ``torch.autograd.detect_anomaly``: while it is on, the engine checks each
backward function's gradients and raises on NaN ("Function 'SqrtBackward0' returned nan values in
its 0th output."). ember records no forward tracebacks, so only the check is done.

    with ember.autograd.detect_anomaly():
        loss.backward()
    ember.autograd.set_detect_anomaly(True)     # a function call or a context manager
"""

from __future__ import annotations

import warnings

__all__ = ["detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled",
           "is_anomaly_check_nan_enabled"]


class _Anomaly:
    enabled = False  # read once per backward node by the engine
    check_nan = True


def is_anomaly_enabled():
    return _Anomaly.enabled


def is_anomaly_check_nan_enabled():
    return _Anomaly.check_nan


def _set(mode, check_nan):
    _Anomaly.enabled, _Anomaly.check_nan = bool(mode), bool(check_nan)


class detect_anomaly:
    """Context manager that turns anomaly detection on inside the block."""

    def __init__(self, check_nan=True):
        self.prev = _Anomaly.enabled
        self.check_nan = check_nan
        self.prev_check_nan = _Anomaly.check_nan
        warnings.warn("Anomaly Detection has been enabled. This mode will increase the runtime "
                      "and should only be enabled for debugging.", stacklevel=2)

    def __enter__(self):
        _set(True, self.check_nan)

    def __exit__(self, *exc):
        _set(self.prev, self.prev_check_nan)
        return False


class set_detect_anomaly:
    """Turn anomaly detection on or off: at once, or for a ``with`` block."""

    def __init__(self, mode, check_nan=True):
        self.prev = _Anomaly.enabled
        self.prev_check_nan = _Anomaly.check_nan
        _set(mode, check_nan)

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        _set(self.prev, self.prev_check_nan)
        return False
