"""``Adam``: adaptive moment estimation (with AMSGrad and decoupled weight decay options)."""

from __future__ import annotations

import numpy as np

from ember.optim.optimizer import Optimizer, _advance, _check, _grad, _new_step
from ember.tensor import _wrap

__all__ = ["Adam"]


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam``: bias-corrected first and second moment estimates.

    ``m = b1*m + (1-b1)*g``, ``v = b2*v + (1-b2)*g*g`` (``v = max(v_max, v)`` with ``amsgrad``),
    ``p -= lr / (1-b1**t) * m / (sqrt(v) / sqrt(1-b2**t) + eps)``. ``weight_decay`` adds
    ``wd * p`` to ``g``, or with ``decoupled_weight_decay=True`` (AdamW) scales ``p`` by
    ``1 - lr * wd`` first.

    Example::

        opt = ember.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), amsgrad=True)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        _check_adam_args(lr, betas, eps, weight_decay)
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                        "amsgrad": amsgrad, "maximize": maximize, "foreach": foreach,
                        "capturable": capturable, "differentiable": differentiable, "fused": fused,
                        "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    _group_defaults = (("amsgrad", False), ("maximize", False), ("decoupled_weight_decay", False))

    def step(self, closure=None):
        """One Adam update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr, eps, wd = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
            beta1, beta2 = (float(b) for b in group["betas"])
            amsgrad = group["amsgrad"]
            for p, g, state in self._params_with_grad(group):
                w = p._data
                if not state:
                    state["step"] = _new_step()
                    state["exp_avg"] = _wrap(np.zeros_like(w))
                    state["exp_avg_sq"] = _wrap(np.zeros_like(w))
                    if amsgrad:
                        state["max_exp_avg_sq"] = _wrap(np.zeros_like(w))
                t = _advance(state)
                g, m, v, tmp = _moments(group, state, w, g, lr, wd, beta1, beta2)
                if amsgrad:
                    vmax = state["max_exp_avg_sq"]._data
                    np.maximum(vmax, v, out=vmax)
                    v = vmax
                # Python floats: the bias corrections never turn float32 arrays into float64.
                step_size = lr / (1 - beta1**t)
                bc2_sqrt = (1 - beta2**t) ** 0.5
                np.sqrt(v, out=tmp)
                tmp /= bc2_sqrt
                tmp += eps
                np.divide(m, tmp, out=tmp)
                tmp *= -step_size
                w += tmp
        return loss


def _check_adam_args(lr, betas, eps, weight_decay):
    _check(lr >= 0.0, "learning rate", lr)
    _check(eps >= 0.0, "epsilon value", eps)
    _check(0.0 <= betas[0] < 1.0, "beta parameter at index 0", betas[0])
    _check(0.0 <= betas[1] < 1.0, "beta parameter at index 1", betas[1])
    _check(weight_decay >= 0.0, "weight_decay value", weight_decay)


def _moments(group, state, w, g, lr, wd, beta1, beta2):
    """The Adam family's shared half step: weight decay (decoupled: w shrinks; else wd * w
    joins g, which ``maximize`` negates), then the moments in place, m += (1 - beta1) (g - m)
    and v = beta2 v + (1 - beta2) g^2. Returns (g, m, v, a scratch array of w's shape)."""
    if group["decoupled_weight_decay"] and wd != 0:
        w *= 1 - lr * wd
        g = _grad(g, w, group["maximize"], 0.0)
    else:
        g = _grad(g, w, group["maximize"], wd)
    m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
    tmp = g - m  # m.lerp_(g, 1 - beta1)
    tmp *= 1 - beta1
    m += tmp
    np.multiply(g, g, out=tmp)
    tmp *= 1 - beta2
    v *= beta2
    v += tmp
    return g, m, v, tmp
