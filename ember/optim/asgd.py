"""``ASGD``: averaged stochastic gradient descent (Polyak & Juditsky)."""

from __future__ import annotations

import numpy as np

from ember.optim.optimizer import Optimizer, _advance, _check, _grad, _new_step
from ember.tensor import _wrap

__all__ = ["ASGD"]


class ASGD(Optimizer):
    """ASGD, as ``torch.optim.ASGD``: ``p *= 1 - lambd * eta``, ``p -= eta * g``, and the
    running average ``ax`` of ``p`` (kept in the state) starts at step ``t0``; then
    ``eta = lr / (1 + lambd * lr * t) ** alpha`` and ``mu = 1 / max(1, t - t0)``.

    Example::

        opt = ember.optim.ASGD(model.parameters(), lr=0.01, t0=1000)
    """

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0,
                 foreach=None, maximize=False, differentiable=False, capturable=False):
        _check(lr >= 0.0, "learning rate", lr)
        _check(weight_decay >= 0.0, "weight_decay value", weight_decay)
        defaults = {"lr": lr, "lambd": lambd, "alpha": alpha, "t0": t0,
                    "weight_decay": weight_decay, "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable, "capturable": capturable}
        super().__init__(params, defaults)

    _group_defaults = (("maximize", False),)

    def step(self, closure=None):
        """One ASGD update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr, lambd, alpha = float(group["lr"]), float(group["lambd"]), float(group["alpha"])
            t0, wd = float(group["t0"]), float(group["weight_decay"])
            for p, g, state in self._params_with_grad(group):
                w = p._data
                if not state:
                    state["step"] = _new_step()
                    state["eta"] = _wrap(np.array(lr, dtype=np.float32))
                    state["mu"] = _wrap(np.ones((), dtype=np.float32))
                    state["ax"] = _wrap(np.zeros_like(w))
                t = _advance(state)
                g = _grad(g, w, group["maximize"], wd)
                eta, mu = state["eta"]._data, state["mu"]._data  # float32, as PyTorch keeps them
                eta_value = float(eta)
                w *= 1 - lambd * eta_value  # the decay term
                w -= eta_value * g
                ax = state["ax"]._data
                if float(mu) != 1:
                    ax += (w - ax) * mu
                else:
                    ax[...] = w
                eta[...] = lr / ((1 + lambd * lr * t) ** alpha)
                mu[...] = 1 / max(1, t - t0)
        return loss
