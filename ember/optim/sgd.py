"""``SGD``: stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

import numpy as np

from ember.optim.optimizer import Optimizer, _check, _grad
from ember.tensor import _wrap

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent, as ``torch.optim.SGD``.

    With momentum ``m``: ``buf = m * buf + (1 - dampening) * g`` (``buf = g`` on the first step),
    then ``p -= lr * (g + m * buf if nesterov else buf)``; ``g`` includes ``weight_decay * p``.

    Example::

        opt = ember.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                 *, maximize=False, foreach=None, differentiable=False, fused=None):
        _check(lr >= 0.0, "learning rate", lr)
        _check(momentum >= 0.0, "momentum value", momentum)
        _check(weight_decay >= 0.0, "weight_decay value", weight_decay)
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay,
                        "nesterov": nesterov, "maximize": maximize, "foreach": foreach,
                        "differentiable": differentiable, "fused": fused}
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("nesterov", False)
            group.setdefault("maximize", False)

    def step(self, closure=None):
        """One update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr, momentum = float(group["lr"]), float(group["momentum"])
            dampening, nesterov = float(group["dampening"]), group["nesterov"]
            wd, maximize = float(group["weight_decay"]), group["maximize"]
            for p, g, state in self._params_with_grad(group):
                w = p._data
                d = _grad(g, w, maximize, wd)
                if momentum != 0:
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = _wrap(np.array(d, copy=True))
                    else:
                        b = buf._data
                        b *= momentum
                        b += d if dampening == 0 else (1 - dampening) * d
                    d = d + momentum * buf._data if nesterov else buf._data
                w -= lr * d
        return loss

