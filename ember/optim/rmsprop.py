"""``RMSprop``: divide the gradient by a running root-mean-square of recent gradients."""

from __future__ import annotations

import numpy as np

from ember.optim.optimizer import Optimizer, _advance, _check, _grad, _new_step
from ember.tensor import _wrap

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop``.

    ``v = alpha*v + (1-alpha)*g*g``; ``avg = sqrt(v - mean_g**2)`` when ``centered`` (``mean_g``
    a running mean of ``g``) else ``sqrt(v)``, plus ``eps``; then ``p -= lr * g / avg``, or with
    ``momentum``: ``buf = momentum*buf + g/avg; p -= lr * buf``.

    Example::

        opt = ember.optim.RMSprop(model.parameters(), lr=1e-2, momentum=0.9, centered=True)
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        _check(lr >= 0.0, "learning rate", lr)
        _check(eps >= 0.0, "epsilon value", eps)
        _check(momentum >= 0.0, "momentum value", momentum)
        _check(weight_decay >= 0.0, "weight_decay value", weight_decay)
        _check(alpha >= 0.0, "alpha value", alpha)
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps, "centered": centered,
                        "weight_decay": weight_decay, "capturable": capturable, "foreach": foreach,
                        "maximize": maximize, "differentiable": differentiable}
        super().__init__(params, defaults)

    _group_defaults = (("momentum", 0), ("centered", False), ("maximize", False))

    def step(self, closure=None):
        """One RMSprop update of every parameter with a gradient."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
            wd, momentum, centered = float(group["weight_decay"]), float(group["momentum"]), \
                group["centered"]
            for p, g, state in self._params_with_grad(group):
                w = p._data
                if not state:
                    state["step"] = _new_step()
                    state["square_avg"] = _wrap(np.zeros_like(w))
                    if momentum > 0:
                        state["momentum_buffer"] = _wrap(np.zeros_like(w))
                    if centered:
                        state["grad_avg"] = _wrap(np.zeros_like(w))
                _advance(state)
                g = _grad(g, w, group["maximize"], wd)
                v = state["square_avg"]._data
                avg = np.multiply(g, g)
                avg *= 1 - alpha
                v *= alpha
                v += avg
                if centered:
                    ga = state["grad_avg"]._data
                    np.subtract(g, ga, out=avg)  # ga.lerp_(g, 1 - alpha)
                    avg *= 1 - alpha
                    ga += avg
                    np.multiply(ga, ga, out=avg)
                    np.subtract(v, avg, out=avg)
                    np.sqrt(avg, out=avg)
                else:
                    np.sqrt(v, out=avg)
                avg += eps
                if momentum > 0:
                    buf = state["momentum_buffer"]._data
                    buf *= momentum
                    np.divide(g, avg, out=avg)
                    buf += avg
                    np.multiply(buf, lr, out=avg)
                else:
                    np.divide(g, avg, out=avg)
                    avg *= lr
                w -= avg
        return loss
