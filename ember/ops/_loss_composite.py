"""The rarer losses, written as composites of ember ops (autograd derives their backward):
cosine-embedding, margin-ranking, hinge-embedding, triplet, multi-label soft-margin, multi-margin,
Gaussian and Poisson NLL. Formulas follow PyTorch's reference implementations.

Example::

    loss = F.triplet_margin_loss(anchor, positive, negative, margin=1.0)
"""

from __future__ import annotations

import math

import numpy as np

from ember.tensor import Tensor, _wrap

__all__ = [
    "cosine_embedding_loss", "margin_ranking_loss", "hinge_embedding_loss", "triplet_margin_loss",
    "triplet_margin_with_distance_loss", "multilabel_soft_margin_loss", "multi_margin_loss",
    "gaussian_nll_loss", "poisson_nll_loss",
]


def _legacy(reduction, size_average, reduce):
    from ember.ops.loss import _reduction

    return _reduction(reduction, size_average, reduce)


def _red(loss, reduction):
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


def _zeros(like):
    return _wrap(np.zeros((), dtype=like._data.dtype))


def cosine_embedding_loss(input1, input2, target, margin=0, size_average=None, reduce=None,
                          reduction="mean"):
    """``1 - cos(x1, x2)`` where ``target == 1``, ``max(0, cos - margin)`` where ``target == -1``."""
    reduction = _legacy(reduction, size_average, reduce)
    if input1.shape != input2.shape or input1.ndim not in (1, 2):
        raise RuntimeError(
            f"cosine_embedding_loss: expected 1-D or 2-D inputs of equal shape, got "
            f"{list(input1.shape)} and {list(input2.shape)}")
    if target.ndim != input1.ndim - 1 or (target.ndim and target.shape[0] != input1.shape[0]):
        raise RuntimeError(
            f"{input1.ndim}D target tensor expects {input1.ndim}D input tensors, but found inputs "
            f"with sizes {list(input1.shape)} and {list(input2.shape)} and target "
            f"{list(target.shape)}.")
    d = input1.ndim - 1
    eps = 1e-12
    prod = (input1 * input2).sum(d)
    m1 = (input1 * input1).sum(d) + eps
    m2 = (input2 * input2).sum(d) + eps
    cos = prod / (m1 * m2).sqrt()
    zeros = _zeros(cos)
    pos = (1 - cos).where(target == 1, zeros)
    neg = (cos - margin).clamp_min(0).where(target == -1, zeros)
    return _red(pos + neg, reduction)


def margin_ranking_loss(input1, input2, target, margin=0, size_average=None, reduce=None,
                        reduction="mean"):
    """``max(0, -target * (input1 - input2) + margin)``."""
    reduction = _legacy(reduction, size_average, reduce)
    if not (input1.ndim == input2.ndim == target.ndim):
        raise RuntimeError(
            f"margin_ranking_loss : All input tensors should have same dimension but got sizes: "
            f"input1: {list(input1.shape)}, input2: {list(input2.shape)}, target: "
            f"{list(target.shape)} ")
    return _red((-target * (input1 - input2) + margin).clamp_min(0), reduction)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None,
                         reduction="mean"):
    """``input`` where ``target == 1``, ``max(0, margin - input)`` where ``target == -1``."""
    reduction = _legacy(reduction, size_average, reduce)
    zeros = _zeros(input)
    out = (margin - input).clamp_min(0).where(target != 1, zeros) + input.where(target != -1, zeros)
    return _red(out, reduction)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                        size_average=None, reduce=None, reduction="mean"):
    """``max(d(a, p) - d(a, n) + margin, 0)`` with the p-norm pairwise distance."""
    from ember.ops.linear import pairwise_distance

    reduction = _legacy(reduction, size_average, reduce)
    if not (anchor.ndim == positive.ndim == negative.ndim):
        raise RuntimeError(
            "The anchor, positive, and negative tensors are expected to have the same number of "
            f"dimensions, but got: anchor {anchor.ndim}D, positive {positive.ndim}D, and "
            f"negative {negative.ndim}D inputs")
    return triplet_margin_with_distance_loss(
        anchor, positive, negative, margin=margin, swap=swap, reduction=reduction,
        distance_function=lambda x, y: pairwise_distance(x, y, p, eps))


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None,
                                      margin=1.0, swap=False, reduction="mean"):
    """Triplet loss with any ``distance_function(x, y)`` (default: pairwise L2 distance)."""
    from ember.ops.linear import pairwise_distance

    reduction = _legacy(reduction, None, None)
    if margin <= 0:
        raise ValueError(f"TripletMarginWithDistanceLoss: expected margin to be greater than 0, "
                         f"got {margin} instead")
    dist = distance_function or pairwise_distance
    dpos, dneg = dist(anchor, positive), dist(anchor, negative)
    if swap:
        from ember.ops.elementwise import minimum

        dneg = minimum(dneg, dist(positive, negative))
    return _red((margin + dpos - dneg).clamp_min(0), reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction="mean"):
    """Per-class logistic loss averaged over classes: ``-(t log σ(x) + (1-t) log σ(-x)).mean(-1)``."""
    from ember.ops.activation import logsigmoid

    reduction = _legacy(reduction, size_average, reduce)
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    c = input.ndim - 1
    return _red(loss.sum(c) / input.shape[c], reduction)


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
                      reduction="mean"):
    """Multi-class hinge: ``sum_{j != y} max(0, margin - x[y] + x[j])^p / C``."""
    reduction = _legacy(reduction, size_average, reduce)
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    x = input if input.ndim == 2 else input.reshape(1, -1)
    t = target.reshape(-1, 1).long()
    c = x.shape[1]
    xy = x.gather(1, t)
    z = (margin - xy + x).clamp_min(0)
    if p == 2:
        z = z * z
    if weight is not None:
        z = z * weight[t.reshape(-1)].reshape(-1, 1)
    mask = np.ones(x.shape, dtype=x._data.dtype)
    mask[np.arange(x.shape[0]), t._data.reshape(-1)] = 0
    loss = (z * _wrap(mask)).sum(1) / c
    if input.ndim < 2:
        loss = loss.reshape(())
    return _red(loss, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """``0.5 * (log(var) + (input - target)^2 / var)`` (+ ``0.5 log 2π`` when ``full``)."""
    if not isinstance(var, Tensor):
        var = _wrap(np.full(input.shape, var, dtype=input._data.dtype))
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif not (tuple(input.shape[:-1]) == tuple(var.shape[:-1]) and var.shape[-1] == 1):
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    v = var._data
    if (v < 0).any():
        raise ValueError("var has negative entry/entries")
    # PyTorch clamps var under no_grad: values change, the gradient passes through unchanged.
    var = var + _wrap((np.maximum(v, eps) - v).astype(v.dtype))
    loss = 0.5 * (var.log() + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _red(loss, reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8,
                     reduce=None, reduction="mean"):
    """``exp(input) - target * input`` (``log_input``) or ``input - target * log(input + eps)``."""
    reduction = _legacy(reduction, size_average, reduce)
    if log_input:
        loss = input.exp() - target * input
    else:
        loss = input - target * (input + eps).log()
    if full:
        st = target * target.log() - target + 0.5 * (2 * math.pi * target).log()
        loss = loss + st.masked_fill(target <= 1, 0)
    return _red(loss, reduction)
