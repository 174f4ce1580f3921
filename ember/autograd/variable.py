"""``Variable``: PyTorch's legacy wrapper, kept for old code. ``Variable(t, requires_grad=True)``
returns a Tensor sharing ``t``'s data (``t.detach().requires_grad_()``), and every Tensor is an
instance of ``Variable``."""

from __future__ import annotations

import warnings

from ember.tensor import Tensor

__all__ = ["Variable"]


class _VariableMeta(type):
    def __instancecheck__(cls, other):
        return isinstance(other, Tensor)


class Variable(metaclass=_VariableMeta):
    """``Variable(data, requires_grad=False, volatile=False)``: a Tensor, as in PyTorch >= 0.4."""

    def __new__(cls, data, requires_grad=False, volatile=False):
        if not isinstance(data, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
        if volatile:
            warnings.warn("volatile was removed and now has no effect. Use `with torch.no_grad():`"
                          " instead.", UserWarning, stacklevel=2)
        return data.detach().requires_grad_(requires_grad)  # a Parameter's too: a plain Tensor
