"""``torch.optim.swa_utils``: weight averaging of a model (SWA, EMA) and its learning rate.

    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.999))
    ...; opt.step(); ema.update_parameters(model)
    swa_sched = SWALR(opt, swa_lr=0.05, anneal_epochs=5)
    update_bn(train_loader, swa_model)        # recompute BatchNorm statistics for the average
"""

from __future__ import annotations

import itertools
import math
import warnings
from copy import deepcopy

import numpy as np

from ember.autograd.grad_mode import no_grad
from ember.nn.modules.batchnorm import _BatchNorm
from ember.nn.modules.module import Module
from ember.optim.lr_scheduler import LRScheduler, _format_param
from ember.tensor import Tensor, _wrap

__all__ = ["AveragedModel", "update_bn", "SWALR", "get_ema_multi_avg_fn",
           "get_swa_multi_avg_fn", "get_ema_avg_fn", "get_swa_avg_fn"]


def _check_decay(decay):
    if decay < 0.0 or decay > 1.0:
        raise ValueError(
            f"Invalid decay value {decay} provided. Please provide a value in [0,1] range.")


def _is_float(t):
    return t._data.dtype.kind in "fc"


def get_ema_multi_avg_fn(decay=0.999):
    """In place over lists: ``ema = ema.lerp(current, 1 - decay)``."""
    _check_decay(decay)

    def ema_update(ema_param_list, current_param_list, _):
        for e, c in zip(ema_param_list, current_param_list):
            ea, ca = e._data, c._data
            if _is_float(e):
                ea += (ca - ea) * ea.dtype.type(1 - decay)  # lerp
            else:
                ea[...] = ea * decay + ca * (1 - decay)

    return ema_update


def get_swa_multi_avg_fn():
    """In place over lists: the running mean ``avg += (current - avg) / (n + 1)``."""

    def swa_update(averaged_param_list, current_param_list, num_averaged):
        n = float(num_averaged._data if isinstance(num_averaged, Tensor) else num_averaged)
        for a, c in zip(averaged_param_list, current_param_list):
            aa, ca = a._data, c._data
            if _is_float(a):
                aa += (ca - aa) * aa.dtype.type(1 / (n + 1))  # lerp
            else:
                aa[...] = aa + (ca - aa) / (n + 1)

    return swa_update


def get_ema_avg_fn(decay=0.999):
    """``decay * ema + (1 - decay) * current``, one tensor at a time."""
    _check_decay(decay)

    def ema_update(ema_param, current_param, num_averaged):
        with no_grad():
            return decay * ema_param + (1 - decay) * current_param

    return ema_update


def get_swa_avg_fn():
    """``avg + (current - avg) / (n + 1)``, one tensor at a time."""

    def swa_update(averaged_param, current_param, num_averaged):
        with no_grad():
            return averaged_param + (current_param - averaged_param) / (num_averaged + 1)

    return swa_update


class AveragedModel(Module):
    """A copy of ``model`` whose parameters (and with ``use_buffers``, buffers) are averaged by
    ``update_parameters``: the running mean by default (SWA), or ``avg_fn``/``multi_avg_fn``
    (e.g. ``get_ema_multi_avg_fn(0.999)``). Its state_dict holds ``n_averaged`` and
    ``module.*``, as PyTorch's."""

    def __init__(self, model, device=None, avg_fn=None, multi_avg_fn=None, use_buffers=False):
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        self.module = deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", _wrap(np.array(0, dtype=np.int64)))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def update_parameters(self, model):
        """Fold ``model``'s current parameters into the average (the first call copies them)."""
        if self.use_buffers:
            mine = itertools.chain(self.module.parameters(), self.module.buffers())
            theirs = itertools.chain(model.parameters(), model.buffers())
        else:
            mine, theirs = self.parameters(), model.parameters()
        averaged, current = [], []
        first = int(self.n_averaged._data) == 0
        for a, c in zip(mine, theirs):
            averaged.append(a.detach())
            current.append(c.detach())
            if first:
                a._data[...] = c._data
        if not first:
            if self.avg_fn is None:
                (self.multi_avg_fn or get_swa_multi_avg_fn())(averaged, current, self.n_averaged)
            else:
                for a, c in zip(averaged, current):
                    a._data[...] = self.avg_fn(a, c, self.n_averaged)._data
        if not self.use_buffers:  # buffers (BatchNorm statistics) are copied, not averaged
            for b_avg, b_model in zip(self.module.buffers(), model.buffers()):
                b_avg._data[...] = b_model._data
        self.n_averaged._data += 1


def update_bn(loader, model, device=None):
    """One pass over ``loader`` in train mode to recompute every BatchNorm's running statistics
    (a cumulative average, ``momentum=None``), e.g. for an ``AveragedModel``."""
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    with no_grad():
        for inp in loader:
            if isinstance(inp, (list, tuple)):
                inp = inp[0]
            if device is not None:
                inp = inp.to(device)
            model(inp)
    for module, momentum in momenta.items():
        module.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's learning rate to ``swa_lr`` over ``anneal_epochs`` ('cos' or
    'linear'), then hold it, as ``torch.optim.swa_utils.SWALR``."""

    def __init__(self, optimizer, swa_lr, anneal_epochs=10, anneal_strategy="cos",
                 last_epoch=-1):
        swa_lrs = _format_param("swa_lr", optimizer, swa_lr)
        for lr, group in zip(swa_lrs, optimizer.param_groups):
            group["swa_lr"] = lr
        if anneal_strategy not in ["cos", "linear"]:
            raise ValueError("anneal_strategy must be one of 'cos' or 'linear', "
                             f"instead got {anneal_strategy}")
        self._set_anneal_func(anneal_strategy)
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _linear_anneal(t):
        return t

    @staticmethod
    def _cosine_anneal(t):
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _get_initial_lr(lr, swa_lr, alpha):
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self):
        if not self._get_lr_called_within_step:
            warnings.warn("To get the last learning rate computed by the scheduler, please use "
                          "`get_last_lr()`.", UserWarning, stacklevel=2)
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_t = max(0, min(1, (step - 1) / max(1, self.anneal_epochs)))
        prev_alpha = self.anneal_func(prev_t)
        groups = self.optimizer.param_groups
        prev_lrs = [self._get_initial_lr(g["lr"], g["swa_lr"], prev_alpha) for g in groups]
        t = max(0, min(1, step / max(1, self.anneal_epochs)))
        alpha = self.anneal_func(t)
        return [g["swa_lr"] * alpha + lr * (1 - alpha) for g, lr in zip(groups, prev_lrs)]

    def _set_anneal_func(self, anneal_strategy):
        self._anneal_strategy = anneal_strategy
        self.anneal_func = self._cosine_anneal if anneal_strategy == "cos" else \
            self._linear_anneal

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "anneal_func")}

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)
        self._set_anneal_func(self._anneal_strategy)
