"""``nn.Parameter``: a leaf tensor that a Module registers as a learnable weight."""

from __future__ import annotations

import numpy as np

from ember.tensor import Tensor, _init_from

__all__ = ["Parameter", "Buffer", "UninitializedParameter"]


class Parameter(Tensor):
    """A Tensor that is a module parameter: ``requires_grad=True`` by default and registered by
    assignment (``self.weight = Parameter(ember.empty(3, 4))``). Shares memory with ``data``."""

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            data = np.empty((0,), dtype=np.float32)
        arr = data._data if isinstance(data, Tensor) else np.asarray(data)
        t = object.__new__(cls)
        _init_from(t, arr, False)
        if requires_grad:
            t.requires_grad_(True)
        return t

    def __init__(self, data=None, requires_grad=True):
        pass

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol):
        return (Parameter, (Tensor.detach(self), self._rg))

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        p = Parameter(self._data.copy(), self._rg)
        if self.grad is not None:
            p.grad = self.grad.clone()
        memo[id(self)] = p
        return p


class Buffer(Tensor):
    """Marks a tensor to register as a buffer on assignment (``self.running = nn.Buffer(t)``)."""

    def __new__(cls, data=None, *, persistent=True):
        arr = data._data if isinstance(data, Tensor) else np.asarray(data)
        t = object.__new__(cls)
        _init_from(t, arr, False)
        t.persistent = persistent
        return t

    def __init__(self, data=None, *, persistent=True):
        pass


UninitializedParameter = Parameter
