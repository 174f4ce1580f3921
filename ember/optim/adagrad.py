"""``Adagrad``: per-coordinate learning rates from the sum of squared gradients."""

from __future__ import annotations

import numpy as np

from ember.optim.optimizer import Optimizer, _advance, _check, _grad, _new_step
from ember.tensor import _wrap

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad, as ``torch.optim.Adagrad``: ``s += g*g``; ``p -= clr * g / (sqrt(s) + eps)`` with
    ``clr = lr / (1 + (t-1) * lr_decay)``. The state exists from construction (``s`` filled with
    ``initial_accumulator_value``), as in PyTorch.

    Example::

        opt = ember.optim.Adagrad(model.parameters(), lr=0.1, initial_accumulator_value=0.1)
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, foreach=None, *, maximize=False, differentiable=False, fused=None):
        _check(lr >= 0.0, "learning rate", lr)
        _check(lr_decay >= 0.0, "lr_decay value", lr_decay)
        _check(weight_decay >= 0.0, "weight_decay value", weight_decay)
        _check(initial_accumulator_value >= 0.0, "initial_accumulator_value value",
               initial_accumulator_value)
        _check(eps >= 0.0, "epsilon value", eps)
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                        "initial_accumulator_value": initial_accumulator_value, "foreach": foreach,
                        "maximize": maximize, "differentiable": differentiable, "fused": fused}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = _new_step()
                state["sum"] = _wrap(np.full_like(p._data, initial_accumulator_value))

    def share_memory(self):
        """Accepted for PyTorch compatibility (state lives in this process's memory)."""

    def step(self, closure=None):
        """One Adagrad update of every parameter with a gradient."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr, lr_decay = float(group["lr"]), float(group["lr_decay"])
            eps, wd = float(group["eps"]), float(group["weight_decay"])
            for p, g, state in self._params_with_grad(group):
                w = p._data
                if not state:  # a parameter whose state a loaded state_dict did not hold
                    state["step"] = _new_step()
                    state["sum"] = _wrap(np.full_like(w, group["initial_accumulator_value"]))
                t = _advance(state)
                g = _grad(g, w, group["maximize"], wd)
                clr = lr / (1 + (t - 1) * lr_decay)
                s = state["sum"]._data
                std = np.multiply(g, g)
                s += std
                np.sqrt(s, out=std)
                std += eps
                np.divide(g, std, out=std)
                std *= clr
                w -= std
        return loss
