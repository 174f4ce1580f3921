"""Pieces of the training loop shared by the sub-commands: optimizers, schedules, evaluation."""

from __future__ import annotations

__all__ = ["make_optimizer", "make_scheduler", "evaluate", "predict_all"]


def make_optimizer(cfg, params):
    """The optimizer named by ``cfg["optimizer"]`` with the run's lr, momentum, weight decay."""
    import ember.optim as optim

    name, lr, wd = cfg["optimizer"], cfg["lr"], cfg["weight_decay"]
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=cfg["momentum"], weight_decay=wd)
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=wd)
    if name == "rmsprop":
        return optim.RMSprop(params, lr=lr, momentum=cfg["momentum"], weight_decay=wd)
    raise ValueError(f"unknown optimizer {name!r}; valid optimizers are: sgd, adam, adamw, rmsprop")


def make_scheduler(cfg, optimizer):
    """A per-epoch learning-rate schedule, or ``None``."""
    from ember.optim import lr_scheduler

    name, epochs = cfg["scheduler"], cfg["epochs"]
    if name == "none":
        return None
    if name == "step":
        return lr_scheduler.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    if name == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    raise ValueError(f"unknown scheduler {name!r}; valid schedulers are: none, step, cosine")


def predict_all(model, loader):
    """``(logits, targets)`` for a whole loader, as NumPy arrays, in eval mode without grad."""
    import numpy as np

    import ember

    model.eval()
    outs, targets = [], []
    with ember.no_grad():
        for x, y in loader:
            outs.append(model(x).numpy())
            targets.append(y.numpy())
    return np.concatenate(outs), np.concatenate(targets)


def evaluate(model, loader, criterion):
    """``(mean loss, accuracy)`` of ``model`` on ``loader``."""
    import ember

    logits, targets = predict_all(model, loader)
    loss = criterion(ember.from_numpy(logits), ember.from_numpy(targets)).item()
    return loss, float((logits.argmax(1) == targets).mean())
