"""``NAdam``: Adam with Nesterov momentum (Dozat, 2016)."""

from __future__ import annotations

import numpy as np

from ember.optim.adam import _check_adam_args, _moments
from ember.optim.optimizer import Optimizer, _advance, _check, _new_step
from ember.tensor import _wrap

__all__ = ["NAdam"]


class NAdam(Optimizer):
    """NAdam, as ``torch.optim.NAdam``: Adam's moments with a momentum schedule
    ``mu_t = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))`` and the Nesterov look-ahead
    ``p -= lr * ((1-mu_t) / (1-prod mu) * g + mu_{t+1} / (1-prod mu * mu_{t+1}) * m) / denom``
    with ``denom = sqrt(v / (1-b2**t)) + eps``. ``weight_decay`` adds ``wd * p`` to ``g``, or
    with ``decoupled_weight_decay=True`` scales ``p`` by ``1 - lr * wd`` first.

    Example::

        opt = ember.optim.NAdam(model.parameters(), lr=2e-3)
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, foreach=None,
                 maximize=False, capturable=False, differentiable=False):
        _check_adam_args(lr, betas, eps, weight_decay)
        _check(momentum_decay >= 0.0, "momentum_decay value", momentum_decay)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "momentum_decay": momentum_decay,
                    "decoupled_weight_decay": decoupled_weight_decay, "maximize": maximize,
                    "foreach": foreach, "capturable": capturable,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    _group_defaults = (("maximize", False), ("decoupled_weight_decay", False))

    def step(self, closure=None):
        """One NAdam update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr, eps, wd = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
            beta1, beta2 = (float(b) for b in group["betas"])
            decay = float(group["momentum_decay"])
            for p, g, state in self._params_with_grad(group):
                w = p._data
                if not state:
                    state["step"] = _new_step()
                    state["mu_product"] = _wrap(np.ones((), dtype=np.float32))
                    state["exp_avg"] = _wrap(np.zeros_like(w))
                    state["exp_avg_sq"] = _wrap(np.zeros_like(w))
                t = _advance(state)
                g, m, v, tmp = _moments(group, state, w, g, lr, wd, beta1, beta2)
                mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * decay))
                mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * decay))
                mp = state["mu_product"]
                if not hasattr(mp, "_data"):  # a number from an old checkpoint
                    mp = state["mu_product"] = _wrap(np.asarray(mp, dtype=np.float32))
                mp._data *= mu  # a float32 product, as PyTorch keeps it
                mu_product = float(mp._data)
                denom = v / (1 - beta2**t)
                np.sqrt(denom, out=denom)
                denom += eps
                np.multiply(g, -lr * (1.0 - mu) / (1.0 - mu_product), out=tmp)
                tmp /= denom
                w += tmp
                np.multiply(m, -lr * mu_next / (1.0 - mu_product * mu_next), out=tmp)
                tmp /= denom
                w += tmp
        return loss
