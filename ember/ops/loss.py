"""Loss functions (PyTorch's ``F.cross_entropy`` ... ``F.kl_div``).

``cross_entropy`` is ONE fused op (log-softmax + nll, hand-written backward) for class indices,
K-dim inputs ``(N, C, d1, ...)``, class probabilities, ``weight``, ``ignore_index`` and
``label_smoothing``. The pointwise regression/binary losses share one fused op (loss and its
derivatives side by side); the rare losses are composites of other ops.

Example::

    loss = F.cross_entropy(logits, labels, label_smoothing=0.1)
    loss.backward()
"""

from __future__ import annotations

import warnings

import numpy as np

from ember.autograd.function import Function
from ember.backend import unbroadcast
from ember.ops.activation import _sig
from ember.ops.elementwise import _broadcast_error
from ember.tensor import Tensor

__all__ = [
    "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div", "soft_margin_loss",
]

_REDUCTIONS = ("none", "mean", "sum")


def _reduction(reduction, size_average=None, reduce=None, allowed=_REDUCTIONS):
    """PyTorch's legacy ``size_average``/``reduce`` mapping, then a check of ``reduction``."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = ("mean" if size_average else "sum") if reduce else "none"
    if reduction not in allowed:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _reduce(loss, reduction, denom=None):
    if reduction == "none":
        return loss
    s = loss.sum(dtype=loss.dtype)
    if reduction == "sum":
        return s
    with np.errstate(invalid="ignore", divide="ignore"):
        return s / (loss.dtype.type(loss.size) if denom is None else denom)


def _grad_scale(g, reduction, n):
    """The upstream gradient as a per-element factor: ``g`` (none), ``g`` (sum), ``g / n`` (mean)."""
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            return g / n
    return g


def _flat_classes(x):
    """``(N, C, d1, ...)`` -> ``(N * d1 * ..., C)``; ``(C,)`` -> ``(1, C)``."""
    if x.ndim == 1:
        return x[None, :]
    if x.ndim == 2:
        return x
    return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def _unflat_classes(g2, shape):
    if len(shape) <= 2:
        return g2.reshape(shape)
    return np.moveaxis(g2.reshape((shape[0],) + tuple(shape[2:]) + (shape[1],)), -1, 1)


def _log_softmax_rows(x2):
    logp = x2 - x2.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    return logp


# ---------------------------------------------------------------------------- cross entropy / nll
class CrossEntropy(Function):
    """Class-index cross-entropy: log-softmax + weighted nll (+ label smoothing) in one op."""

    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, reduction, eps):
        x2 = _flat_classes(x)
        c = x2.shape[1]
        t = target.reshape(-1)
        logp = _log_softmax_rows(x2)
        valid = t != ignore_index
        tt = np.where(valid, t, 0)
        w = (weight[tt] if weight is not None else np.ones(t.shape, x.dtype)) * valid
        loss = -np.take_along_axis(logp, tt[:, None], 1)[:, 0] * w
        if eps:
            smooth = -(logp @ weight if weight is not None else logp.sum(axis=1)) * valid
            loss = (1 - eps) * loss + (eps / c) * smooth
        denom = w.sum(dtype=x.dtype)
        ctx.save_for_backward(logp)
        ctx.meta = (x.shape, tt, valid, w, weight, reduction, eps, denom)
        out = _reduce(loss, reduction, denom)
        return out.reshape(target.shape) if reduction == "none" else out

    @staticmethod
    def backward(ctx, g):
        (logp,) = ctx.saved_tensors
        shape, tt, valid, w, weight, reduction, eps, denom = ctx.meta
        c = logp.shape[1]
        # d loss_i / d logp_ic = a_ic; through log-softmax: dx = a - softmax * sum_c(a)
        wsum = weight.sum(dtype=logp.dtype) if weight is not None else logp.dtype.type(c)
        neg_sum_a = (1 - eps) * w + (eps / c) * valid * wsum
        dx = np.exp(logp)
        dx *= neg_sum_a[:, None]
        dx[np.arange(len(tt)), tt] -= (1 - eps) * w
        if eps:
            dx -= (eps / c) * valid[:, None] * (weight if weight is not None else 1)
        scale = _grad_scale(g, reduction, denom)
        dx *= scale.reshape(-1, 1) if reduction == "none" else scale
        if reduction == "mean" and not denom:  # g / 0: ignored rows still get 0, as in torch
            dx[~valid] = 0
        return _unflat_classes(dx, shape), None, None, None, None, None


class CrossEntropyMean(Function):
    """The common case in one lean op: logits ``(N, C)``, valid class indices ``(N,)``, no
    weight, no smoothing, mean reduction (the general op's arithmetic with the unit weights
    dropped, so the numbers are the same)."""

    @staticmethod
    def forward(ctx, x, target):
        logp = x - x.max(axis=1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
        rows = np.arange(x.shape[0])
        n = x.dtype.type(x.shape[0])
        ctx.save_for_backward(logp)
        ctx.meta = (rows, target, n)
        return -logp[rows, target].sum() / n

    @staticmethod
    def backward(ctx, g):
        (logp,) = ctx.saved_tensors
        rows, target, n = ctx.meta
        dx = np.exp(logp)
        dx[rows, target] -= 1
        dx *= g / n
        return dx, None


class CrossEntropyProbs(Function):
    """Cross-entropy against class probabilities (target has the input's shape)."""

    @staticmethod
    def forward(ctx, x, target, weight, reduction, eps):
        x2, t2 = _flat_classes(x), _flat_classes(target)
        c = x2.shape[1]
        logp = _log_softmax_rows(x2)
        if eps:
            t2 = t2 * (1 - eps) + eps / c
        wt = t2 * weight if weight is not None else t2
        loss = -(logp * wt).sum(axis=1)
        ctx.save_for_backward(logp, wt)
        ctx.meta = (x.shape, weight, reduction, eps, x2.dtype.type(x2.shape[0]))
        out = _reduce(loss, reduction, ctx.meta[-1])
        return out.reshape(x.shape[:1] + x.shape[2:]) if reduction == "none" else out

    @staticmethod
    def backward(ctx, g):
        logp, wt = ctx.saved_tensors
        shape, weight, reduction, eps, n = ctx.meta
        scale = _grad_scale(g, reduction, n)
        scale = scale.reshape(-1, 1) if reduction == "none" else scale
        nx, nt = ctx.needs_input_grad[:2]
        gx = _unflat_classes((np.exp(logp) * wt.sum(axis=1, keepdims=True) - wt) * scale,
                             shape) if nx else None
        gt = None
        if nt:
            gt = -logp * (weight if weight is not None else 1) * (1 - eps) * scale
            gt = _unflat_classes(gt, shape)
        return gx, gt, None, None, None


class NLL(Function):
    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, reduction):
        x2 = _flat_classes(x)
        t = target.reshape(-1)
        valid = t != ignore_index
        tt = np.where(valid, t, 0)
        w = (weight[tt] if weight is not None else np.ones(t.shape, x.dtype)) * valid
        loss = -np.take_along_axis(x2, tt[:, None], 1)[:, 0] * w
        denom = w.sum(dtype=x.dtype)
        ctx.meta = (x.shape, x2.shape, tt, valid, w, reduction, denom)
        out = _reduce(loss, reduction, denom)
        return out.reshape(target.shape) if reduction == "none" else out

    @staticmethod
    def backward(ctx, g):
        shape, shape2, tt, valid, w, reduction, denom = ctx.meta
        dx = np.zeros(shape2, dtype=w.dtype)
        scale = _grad_scale(g, reduction, denom)
        rows = np.arange(len(tt))
        dx[rows, tt] = -w * (scale.reshape(-1) if reduction == "none" else scale)
        if reduction == "mean" and not denom:  # g / 0: ignored rows still get 0, as in torch
            dx[rows[~valid], tt[~valid]] = 0
        return _unflat_classes(dx, shape), None, None, None, None


def _check_class_target(input, target, weight, ignore_index, name):
    """Validate (input, index target) as PyTorch does; returns the weight array or None."""
    if not isinstance(input, Tensor) or not isinstance(target, Tensor):
        raise TypeError(f"{name}(): input and target must be Tensors")
    if input.ndim == 0:
        raise RuntimeError(f"{name}(): input must have at least 1 dim (C,) or (N, C, ...), got a "
                           "0-d tensor")
    if input._data.dtype.kind != "f":
        raise RuntimeError(f"{name}(): expected a floating input, got {input.dtype}")
    c = input.shape[1] if input.ndim >= 2 else input.shape[0]
    if input.ndim == 1:
        if target.ndim != 0:
            raise RuntimeError(
                f"0D or 1D target tensor expected, multi-target not supported (input {list(input.shape)}"
                f", target {list(target.shape)})")
    elif input.ndim == 2 and target.ndim != 1:
        raise RuntimeError(
            f"0D or 1D target tensor expected, multi-target not supported (input "
            f"{list(input.shape)}, target {list(target.shape)})")
    if target._data.dtype.kind not in "iu":
        raise RuntimeError(
            f"expected target dtype to be Long or Byte, but got {_tname(target)} "
            f"(class-index targets are integers; for class probabilities pass a float target "
            f"of the input's shape {list(input.shape)})")
    if input.ndim >= 2 and target.shape[:1] != input.shape[:1]:
        raise ValueError(
            f"Expected input batch_size ({input.shape[0]}) to match target batch_size "
            f"({target.shape[0] if target.ndim else 0}).")
    if input.ndim > 2 and tuple(target.shape) != tuple(input.shape[:1] + input.shape[2:]):
        raise RuntimeError(
            f"Expected target size {list(input.shape[:1] + input.shape[2:])}, got "
            f"{list(target.shape)}")
    t = target._data
    if t.size:
        bad = t[(t != ignore_index) & ((t < 0) | (t >= c))]
        if bad.size:
            raise IndexError(
                f"Target {int(bad.flat[0])} is out of bounds. (input has {c} classes: valid "
                f"targets are 0..{c - 1}, or ignore_index={ignore_index})")
    return _weight_arr(weight, c, input)


def _weight_arr(weight, c, input):
    if weight is None:
        return None
    if weight.ndim != 1 or weight.shape[0] != c:
        raise RuntimeError(
            f"weight tensor should be defined either for all {c} classes or no classes but got "
            f"weight tensor of shape: {list(weight.shape)}")
    return weight._data.astype(input._data.dtype, copy=False)


def _tname(t):
    return {"float32": "Float", "float64": "Double", "float16": "Half", "int32": "Int",
            "int64": "Long", "bool": "Bool", "uint8": "Byte"}.get(t._data.dtype.name,
                                                                   t._data.dtype.name)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """Cross-entropy between logits ``input`` (``(C,)``, ``(N, C)`` or ``(N, C, d1, ...)``) and
    class indices (``(N, d1, ...)``) or class probabilities (the input's shape)."""
    if (reduction == "mean" and weight is None and not label_smoothing and size_average is None
            and reduce is None and _fast_ce_ok(input, target, ignore_index)):
        return CrossEntropyMean.apply(input, target._data)
    reduction = _reduction(reduction, size_average, reduce)
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    eps = float(label_smoothing)
    if isinstance(target, Tensor) and isinstance(input, Tensor) and \
            tuple(target.shape) == tuple(input.shape) and input.ndim >= 1 and \
            (target._data.dtype.kind == "f" or input.ndim == 1 and target.ndim == 1):
        if target._data.dtype.kind != "f":
            raise RuntimeError(
                f"Expected floating point type for target with class probabilities, got "
                f"{_tname(target)}")
        if ignore_index >= 0:  # PyTorch refuses it rather than silently ignoring nothing
            raise RuntimeError("ignore_index is not supported for floating point target")
        c = input.shape[1] if input.ndim >= 2 else input.shape[0]
        w = _weight_arr(weight, c, input)
        if target._data.dtype != input._data.dtype:
            target = target.to(input.dtype)
        return CrossEntropyProbs.apply(input, target, w, reduction, eps)
    w = _check_class_target(input, target, weight, ignore_index, "cross_entropy")
    return CrossEntropy.apply(input, target._data.astype(np.int64, copy=False), w, ignore_index,
                              reduction, eps)


def _fast_ce_ok(input, target, ignore_index):
    """Float logits ``(N, C)`` and int64 class indices ``(N,)`` all in ``[0, C)`` (so none equals
    ``ignore_index``): the case ``CrossEntropyMean`` covers. Anything else takes the general
    path, which also raises the errors."""
    if not (isinstance(input, Tensor) and isinstance(target, Tensor)):
        return False
    x, t = input._data, target._data
    if x.ndim != 2 or t.ndim != 1 or t.dtype != np.int64 or x.dtype.kind != "f" or \
            t.shape[0] != x.shape[0] or not t.shape[0]:
        return False
    c = x.shape[1]
    # one pass: a negative index read as unsigned is past any class count
    return (ignore_index < 0 or ignore_index >= c) and t.view(np.uint64).max() < c


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log-likelihood of log-probabilities ``input`` at the class indices ``target``."""
    reduction = _reduction(reduction, size_average, reduce)
    w = _check_class_target(input, target, weight, ignore_index, "nll_loss")
    return NLL.apply(input, target._data.astype(np.int64, copy=False), w, ignore_index, reduction)


# ---------------------------------------------------------------------------- pointwise losses
def _xlogx(t):
    """``t * log(t)`` with ``0 * log(0) = 0`` (PyTorch's xlogy); NaN for negative t."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(t == 0, 0, t * np.log(t)).astype(t.dtype, copy=False)


def _bce_log(x):
    return np.maximum(np.log(x), -100)  # PyTorch clamps log at -100 so 0 * log(0) stays finite


_KINDS = {
    # kind: (loss(x, t, *p), (dl/dx, dl/dt)(x, t, *p))
    "mse": (lambda x, t: np.square(x - t), lambda x, t: (lambda d: (d, -d))(2 * (x - t))),
    "l1": (lambda x, t: np.abs(x - t), lambda x, t: (lambda d: (d, -d))(np.sign(x - t))),
    "smooth_l1": (
        lambda x, t, b: (lambda d: np.where(np.abs(d) < b, 0.5 * d * d / b, np.abs(d) - 0.5 * b))(
            x - t),
        lambda x, t, b: (lambda d: (d, -d))(
            (lambda d: np.where(np.abs(d) < b, d / b, np.sign(d)))(x - t))),
    "huber": (
        lambda x, t, k: (lambda d: np.where(np.abs(d) < k, 0.5 * d * d, k * (np.abs(d) - 0.5 * k)))(
            x - t),
        lambda x, t, k: (lambda d: (d, -d))(
            (lambda d: np.where(np.abs(d) < k, d, k * np.sign(d)))(x - t))),
    "bce": (
        lambda x, t: -(t * _bce_log(x) + (1 - t) * _bce_log(1 - x)),
        lambda x, t: ((x - t) / np.maximum((1 - x) * x, x.dtype.type(1e-12)),
                      _bce_log(1 - x) - _bce_log(x))),
    "bce_logits": (
        lambda x, t, pw: (1 - t) * x + (1 + (pw - 1) * t) * np.logaddexp(0, -x),
        lambda x, t, pw: ((1 - t) - (1 + (pw - 1) * t) * _sig(-x),
                          -x + (pw - 1) * np.logaddexp(0, -x))),
    "kl": (lambda x, t: _xlogx(t) - t * x,
           lambda x, t: (-t, np.where(t > 0, np.log(np.where(t > 0, t, 1)) + 1 - x, 0))),
    "kl_log": (lambda x, t: np.exp(t) * (t - x),
               lambda x, t: (-np.exp(t), np.exp(t) * (t - x + 1))),
    "soft_margin": (lambda x, t: np.logaddexp(0, -t * x),
                    lambda x, t: (-t * _sig(-t * x), -x * _sig(-t * x))),
}


class PointwiseLoss(Function):
    """``reduce(weight * loss(x, t))`` for the losses in ``_KINDS``; gradients for x and t."""

    @staticmethod
    def forward(ctx, x, t, kind, params, weight, reduction, mean_over_weight=False):
        f, df = _KINDS[kind]
        loss = f(x, t, *params).astype(x.dtype, copy=False)
        n = x.dtype.type(loss.size)
        if weight is not None:
            loss = loss * weight
            if mean_over_weight:  # PyTorch's weighted mse/l1 'mean' is sum(w * loss) / sum(w)
                n = weight.sum(dtype=x.dtype)
        ctx.save_for_backward(x, t)
        ctx.meta = (kind, params, weight, reduction, loss.shape, n)
        return _reduce(loss, reduction, n)

    @staticmethod
    def backward(ctx, g):
        x, t = ctx.saved_tensors
        kind, params, weight, reduction, shape, n = ctx.meta
        nx, nt = ctx.needs_input_grad[:2]
        dx, dt = _KINDS[kind][1](x, t, *params)
        s = _grad_scale(g, reduction, n)
        if weight is not None:
            s = s * weight
        gx = unbroadcast(np.broadcast_to(dx * s, shape), x.shape).astype(x.dtype) if nx else None
        gt = unbroadcast(np.broadcast_to(dt * s, shape), t.shape).astype(t.dtype) if nt else None
        return gx, gt, None, None, None, None, None


def _pointwise_loss(input, target, kind, params=(), weight=None, reduction="mean", strict=False,
                    name="", mean_over_weight=False):
    if not isinstance(target, Tensor):
        raise TypeError(f"{name}(): target must be a Tensor, got {type(target).__name__}")
    if tuple(target.shape) != tuple(input.shape):
        if strict:
            raise ValueError(_size_msg(target, input, strict))
        warnings.warn(_size_msg(target, input, strict), UserWarning, stacklevel=3)
        try:
            np.broadcast_shapes(tuple(input.shape), tuple(target.shape))
        except ValueError:
            _broadcast_error(input, target)
    if input._data.dtype.kind != "f":
        raise RuntimeError(f"{name}(): expected a floating point input, got {input.dtype}")
    if target._data.dtype != input._data.dtype:
        target = target.to(input.dtype)
    w = None if weight is None else np.broadcast_to(
        weight._data.astype(input._data.dtype, copy=False),
        np.broadcast_shapes(input.shape, target.shape))
    return PointwiseLoss.apply(input, target, kind, params, w, reduction, mean_over_weight)


def _same_size_weight(weight, input):
    """mse/l1/huber take a weight of the input's exact size, as PyTorch (no broadcasting)."""
    if weight is not None and tuple(weight.shape) != tuple(input.shape):
        raise ValueError("Weights and input must have the same size.")
    return weight


def _size_msg(target, input, strict):
    ts, xs = f"ember.Size({list(target.shape)})", f"ember.Size({list(input.shape)})"
    if strict == "bce":
        return (f"Using a target size ({ts}) that is different to the input size ({xs}) is "
                "deprecated. Please ensure they have the same size.")
    if strict:
        return f"Target size ({ts}) must be the same as input size ({xs})"
    return (f"Using a target size ({ts}) that is different to the input size ({xs}). This will "
            "likely lead to incorrect results due to broadcasting. Please ensure they have the "
            "same size.")


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean squared error ``(input - target) ** 2``, reduced."""
    return _pointwise_loss(input, target, "mse", (), _same_size_weight(weight, input),
                           _reduction(reduction, size_average, reduce), name="mse_loss",
                           mean_over_weight=True)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean absolute error ``|input - target|`` (times ``weight`` when given), reduced."""
    return _pointwise_loss(input, target, "l1", (), _same_size_weight(weight, input),
                           _reduction(reduction, size_average, reduce), name="l1_loss",
                           mean_over_weight=True)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """Quadratic for ``|d| < beta`` (``0.5 d^2 / beta``), linear beyond (``|d| - beta / 2``)."""
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    reduction = _reduction(reduction, size_average, reduce)
    if beta == 0:
        return _pointwise_loss(input, target, "l1", (), None, reduction, name="smooth_l1_loss")
    return _pointwise_loss(input, target, "smooth_l1", (float(beta),), None, reduction,
                           name="smooth_l1_loss")


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """``0.5 d^2`` for ``|d| < delta``, ``delta * (|d| - delta / 2)`` beyond."""
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    return _pointwise_loss(input, target, "huber", (float(delta),),
                           _same_size_weight(weight, input), _reduction(reduction),
                           name="huber_loss")


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    """``-(t log x + (1 - t) log(1 - x))`` for probabilities ``x`` in [0, 1]."""
    reduction = _reduction(reduction, size_average, reduce)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(_size_msg(target, input, "bce"))
    x = input._data
    if x.size and (np.nanmin(x) < 0 or np.nanmax(x) > 1):
        raise RuntimeError(
            "all elements of input should be between 0 and 1 (binary_cross_entropy takes "
            f"probabilities; got values in [{float(np.nanmin(x))}, {float(np.nanmax(x))}]; for "
            "logits use binary_cross_entropy_with_logits)")
    return _pointwise_loss(input, target, "bce", (), weight, reduction,
                           name="binary_cross_entropy")


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    """Sigmoid + binary cross-entropy in one stable op; ``pos_weight`` weighs positives per class
    (broadcast along the last dim)."""
    reduction = _reduction(reduction, size_average, reduce)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(_size_msg(target, input, True))
    dt = input._data.dtype
    pw = dt.type(1) if pos_weight is None else pos_weight._data.astype(dt, copy=False)
    return _pointwise_loss(input, target, "bce_logits", (pw,), weight, reduction,
                           name="binary_cross_entropy_with_logits")


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """KL divergence with ``input`` as log-probabilities: ``target * (log(target) - input)``.
    ``reduction='batchmean'`` divides the sum by the batch size (the mathematical KL)."""
    if size_average is not None or reduce is not None:
        reduction = _reduction(reduction, size_average, reduce)
    if reduction not in _REDUCTIONS + ("batchmean",):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if reduction == "mean":
        warnings.warn(
            "reduction: 'mean' divides the total loss by both the batch size and the support "
            "size.'batchmean' divides only by the batch size, and aligns with the KL div math "
            "definition.'mean' will be changed to behave the same as 'batchmean' in the next "
            "major release.", UserWarning, stacklevel=2)
    kind = "kl_log" if log_target else "kl"
    if reduction == "batchmean":
        s = _pointwise_loss(input, target, kind, (), None, "sum", name="kl_div")
        return s / input.shape[0] if input.ndim else s
    return _pointwise_loss(input, target, kind, (), None, reduction, name="kl_div")


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """``log(1 + exp(-target * input))`` for targets in {-1, 1}."""
    return _pointwise_loss(input, target, "soft_margin", (), None,
                           _reduction(reduction, size_average, reduce), name="soft_margin_loss")


# The rarer losses are composites of ops; they live next door to keep this file one job.
from ember.ops import _loss_composite as _composite  # noqa: E402
from ember.ops._loss_composite import *  # noqa: E402,F401,F403

__all__ += _composite.__all__
