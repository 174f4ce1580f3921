"""``Rprop``: resilient backpropagation, per-coordinate steps adapted from gradient signs."""

from __future__ import annotations

import numpy as np

from ember.optim.optimizer import Optimizer, _advance, _check, _grad, _new_step
from ember.tensor import _wrap

__all__ = ["Rprop"]


class Rprop(Optimizer):
    """Rprop, as ``torch.optim.Rprop``: where ``g * prev`` is positive the coordinate's step size
    grows by ``etas[1]``, where negative it shrinks by ``etas[0]`` (and that gradient counts as
    0), clamped to ``step_sizes``; then ``p -= sign(g) * step_size``.

    Example::

        opt = ember.optim.Rprop(model.parameters(), lr=0.01, etas=(0.5, 1.2))
    """

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        _check(lr >= 0.0, "learning rate", lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = {"lr": lr, "etas": etas, "step_sizes": step_sizes, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable,
                    "capturable": capturable}
        super().__init__(params, defaults)

    _group_defaults = (("maximize", False),)

    def step(self, closure=None):
        """One Rprop update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            etaminus, etaplus = (float(e) for e in group["etas"])
            lo, hi = (float(s) for s in group["step_sizes"])
            for p, g, state in self._params_with_grad(group):
                w = p._data
                if not state:
                    state["step"] = _new_step()
                    state["prev"] = _wrap(np.zeros_like(w))
                    state["step_size"] = _wrap(np.full_like(w, float(group["lr"])))
                _advance(state)
                g = _grad(g, w, group["maximize"], 0.0)
                prev, step_size = state["prev"]._data, state["step_size"]._data
                prod = g * prev
                factor = np.where(prod > 0, etaplus, np.where(prod < 0, etaminus, 1.0))
                step_size *= factor.astype(w.dtype, copy=False)
                np.clip(step_size, lo, hi, out=step_size)
                g = np.where(prod < 0, w.dtype.type(0), g)  # a sign change: no step this time
                w -= np.sign(g) * step_size
                prev[...] = g
        return loss
