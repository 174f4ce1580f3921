"""Shared array kernels used by several op families (NumPy or CuPy arrays alike)."""

from __future__ import annotations

__all__ = ["unbroadcast"]


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes that broadcasting expanded, so it has ``shape`` again."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, s in enumerate(shape) if s == 1 and grad.shape[i + lead] != 1
    )
    if axes:
        grad = grad.sum(axis=axes)
    return grad.reshape(shape)
