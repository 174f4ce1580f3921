"""Gradient clipping: ``clip_grad_norm_`` (any p-norm, incl. inf) and ``clip_grad_value_``.

Example::

    loss.backward()
    total = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()
"""

from __future__ import annotations

import math

import numpy as np

from ember.tensor import Tensor, _wrap

__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm",
           "clip_grads_with_norm_"]


def _grads(tensors):
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    return [t.grad for t in tensors if t.grad is not None]


def _norm(a, p):
    if p == math.inf:
        return np.abs(a).max(initial=0).astype(a.dtype)
    if p == -math.inf:
        return np.abs(a).min(initial=np.inf).astype(a.dtype)
    if p == 0:
        return np.asarray(np.count_nonzero(a), dtype=a.dtype)
    if p == 2:
        return np.sqrt(np.vdot(a, a)).astype(a.dtype)
    return (np.abs(a) ** p).sum(dtype=a.dtype) ** (1.0 / p)


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """The ``norm_type``-norm of all ``tensors`` together (the norm of their norms)."""
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    arrs = [t._data for t in tensors]
    p = float(norm_type)
    if not arrs:
        return _wrap(np.asarray(0.0, dtype=np.float32))
    norms = np.stack([_norm(a.ravel(), p) for a in arrs]).astype(arrs[0].dtype)
    total = _norm(norms, p)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"The total norm of order {p} for gradients from `parameters` is non-finite, so it "
            "cannot be clipped. To disable this error and scale the gradients by the non-finite "
            "norm anyway, set `error_if_nonfinite=False`")
    return _wrap(np.asarray(total))


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    """Scale the gradients by ``min(1, max_norm / (total_norm + 1e-6))``, in place."""
    grads = _grads(parameters)
    if not grads:
        return
    t = total_norm._data if isinstance(total_norm, Tensor) else total_norm
    coef = np.minimum(max_norm / (t + 1e-6), 1.0)
    for g in grads:
        g._data *= coef.astype(g._data.dtype)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Rescale the gradients of ``parameters`` in place so their joint ``norm_type``-norm is at
    most ``max_norm``; returns the norm before clipping."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    parameters = list(parameters)
    grads = _grads(parameters)
    total = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(parameters, float(max_norm), total, foreach)
    return total


def clip_grad_norm(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Deprecated alias of :func:`clip_grad_norm_`."""
    import warnings

    warnings.warn("`torch.nn.utils.clip_grad_norm` is now deprecated in favor of "
                  "`torch.nn.utils.clip_grad_norm_`.", FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient of ``parameters`` to ``[-clip_value, clip_value]``, in place."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        np.clip(g._data, -clip_value, clip_value, out=g._data)
