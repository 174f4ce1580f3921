"""``RAdam``: Adam with the variance of the adaptive learning rate rectified (Liu et al., 2019)."""

from __future__ import annotations

import numpy as np

from ember.optim.adam import _check_adam_args, _moments
from ember.optim.optimizer import Optimizer, _advance, _new_step
from ember.tensor import _wrap

__all__ = ["RAdam"]


class RAdam(Optimizer):
    """RAdam, as ``torch.optim.RAdam``: Adam's moments; while the approximated SMA length
    ``rho_t = rho_inf - 2t * b2**t / (1-b2**t)`` (``rho_inf = 2/(1-b2) - 1``) is at most 5 the
    step is plain momentum ``p -= lr * m / (1-b1**t)``, after it Adam's step scaled by the
    rectification ``sqrt((rho_t-4)(rho_t-2) rho_inf / ((rho_inf-4)(rho_inf-2) rho_t))``.
    ``weight_decay`` adds ``wd * p`` to ``g``, or with ``decoupled_weight_decay=True`` scales
    ``p`` by ``1 - lr * wd`` first.

    Example::

        opt = ember.optim.RAdam(model.parameters(), lr=1e-3)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        _check_adam_args(lr, betas, eps, weight_decay)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "maximize": maximize, "foreach": foreach, "capturable": capturable,
                    "decoupled_weight_decay": decoupled_weight_decay,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    _group_defaults = (("maximize", False), ("decoupled_weight_decay", False))

    def step(self, closure=None):
        """One RAdam update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr, eps, wd = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
            beta1, beta2 = (float(b) for b in group["betas"])
            rho_inf = 2 / (1 - beta2) - 1
            for p, g, state in self._params_with_grad(group):
                w = p._data
                if not state:
                    state["step"] = _new_step()
                    state["exp_avg"] = _wrap(np.zeros_like(w))
                    state["exp_avg_sq"] = _wrap(np.zeros_like(w))
                t = _advance(state)
                g, m, v, tmp = _moments(group, state, w, g, lr, wd, beta1, beta2)
                bc1, bc2 = 1 - beta1**t, 1 - beta2**t
                rho_t = rho_inf - 2 * t * beta2**t / bc2
                np.divide(m, bc1, out=tmp)  # the bias-corrected first moment
                tmp *= lr
                if rho_t > 5.0:
                    rect = ((rho_t - 4) * (rho_t - 2) * rho_inf
                            / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
                    denom = np.sqrt(v)
                    denom += eps
                    np.divide(bc2**0.5, denom, out=denom)  # the adaptive learning rate
                    tmp *= denom
                    tmp *= rect
                w -= tmp
        return loss
