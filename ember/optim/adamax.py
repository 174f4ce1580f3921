"""``Adamax``: Adam with the infinity norm in place of the second moment."""

from __future__ import annotations

import numpy as np

from ember.optim.optimizer import Optimizer, _advance, _check, _grad, _new_step
from ember.tensor import _wrap

__all__ = ["Adamax"]


class Adamax(Optimizer):
    """Adamax, as ``torch.optim.Adamax``: ``m = b1*m + (1-b1)*g``,
    ``u = max(b2*u, |g| + eps)``, ``p -= lr / (1 - b1**t) * m / u``.

    Example::

        opt = ember.optim.Adamax(model.parameters(), lr=2e-3)
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 foreach=None, *, maximize=False, differentiable=False, capturable=False):
        _check(lr >= 0.0, "learning rate", lr)
        _check(eps >= 0.0, "epsilon value", eps)
        _check(0.0 <= betas[0] < 1.0, "beta parameter at index 0", betas[0])
        _check(0.0 <= betas[1] < 1.0, "beta parameter at index 1", betas[1])
        _check(weight_decay >= 0.0, "weight_decay value", weight_decay)
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                        "foreach": foreach, "maximize": maximize, "differentiable": differentiable,
                        "capturable": capturable}
        super().__init__(params, defaults)

    def step(self, closure=None):
        """One Adamax update of every parameter with a gradient."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr, eps, wd = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
            beta1, beta2 = (float(b) for b in group["betas"])
            for p, g, state in self._params_with_grad(group):
                w = p._data
                if not state:
                    state["step"] = _new_step()
                    state["exp_avg"] = _wrap(np.zeros_like(w))
                    state["exp_inf"] = _wrap(np.zeros_like(w))
                t = _advance(state)
                g = _grad(g, w, group["maximize"], wd)
                m, u = state["exp_avg"]._data, state["exp_inf"]._data
                tmp = g - m  # m.lerp_(g, 1 - beta1)
                tmp *= 1 - beta1
                m += tmp
                np.abs(g, out=tmp)
                tmp += eps
                u *= beta2
                np.maximum(u, tmp, out=u)
                clr = lr / (1 - beta1**t)
                np.divide(m, u, out=tmp)
                tmp *= clr
                w -= tmp
        return loss
