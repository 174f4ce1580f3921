"""``Adadelta``: unit-corrected adaptive steps from running averages of g² and of updates²."""

from __future__ import annotations

import numpy as np

from ember.optim.optimizer import Optimizer, _advance, _check, _grad, _new_step
from ember.tensor import _wrap

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    """Adadelta, as ``torch.optim.Adadelta``: ``v = rho*v + (1-rho)*g*g``,
    ``delta = sqrt(u + eps) / sqrt(v + eps) * g``, ``u = rho*u + (1-rho)*delta**2``,
    ``p -= lr * delta``.

    Example::

        opt = ember.optim.Adadelta(model.parameters(), lr=1.0, rho=0.9)
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False):
        _check(lr >= 0.0, "learning rate", lr)
        _check(0.0 <= rho <= 1.0, "rho value", rho)
        _check(eps >= 0.0, "epsilon value", eps)
        _check(weight_decay >= 0.0, "weight_decay value", weight_decay)
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay, "maximize": maximize,
                        "capturable": capturable, "foreach": foreach, "differentiable": differentiable}
        super().__init__(params, defaults)

    def step(self, closure=None):
        """One Adadelta update of every parameter with a gradient."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr, rho = float(group["lr"]), float(group["rho"])
            eps, wd = float(group["eps"]), float(group["weight_decay"])
            for p, g, state in self._params_with_grad(group):
                w = p._data
                if not state:
                    state["step"] = _new_step()
                    state["square_avg"] = _wrap(np.zeros_like(w))
                    state["acc_delta"] = _wrap(np.zeros_like(w))
                _advance(state)
                g = _grad(g, w, group["maximize"], wd)
                v, u = state["square_avg"]._data, state["acc_delta"]._data
                tmp = np.multiply(g, g)
                tmp *= 1 - rho
                v *= rho
                v += tmp
                std = np.add(v, eps)
                np.sqrt(std, out=std)
                np.add(u, eps, out=tmp)
                np.sqrt(tmp, out=tmp)
                tmp /= std
                tmp *= g  # tmp is now delta
                np.multiply(tmp, tmp, out=std)
                std *= 1 - rho
                u *= rho
                u += std
                tmp *= lr
                w -= tmp
        return loss
