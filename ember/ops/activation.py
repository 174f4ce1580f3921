"""Activation ops: ``softmax``/``log_softmax`` (fused, stable), the ReLU family, GELU, SiLU, Mish,
Softplus, PReLU, GLU... Each is one Function with its backward beside its forward.

Example::

    import ember.nn.functional as F
    y = F.gelu(x, approximate="tanh")
    p = F.softmax(logits, dim=-1)
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ember import dtypes as _dt
from ember.autograd.function import Function
from ember.autograd.grad_mode import _State
from ember.backend import unbroadcast
from ember.backend.erf import gelu_f32, gelu_grad_f32
from ember.ops.elementwise import _erf_np, _sig, sigmoid, tanh
from ember.ops.elementwise import relu as _relu
from ember.tensor import Tensor, _wrap, _wrap_dim

__all__ = [
    "softmax", "log_softmax", "softmin", "gumbel_softmax", "relu", "relu_", "relu6", "leaky_relu",
    "leaky_relu_", "elu", "elu_", "selu", "celu", "gelu", "silu", "mish", "softplus", "hardtanh",
    "hardtanh_", "prelu", "rrelu", "hardswish", "hardsigmoid", "logsigmoid", "tanhshrink",
    "softsign", "softshrink", "hardshrink", "threshold", "threshold_", "glu", "sigmoid", "tanh",
]

_SQRT_2_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _check(input, name):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): argument 'input' must be Tensor, not {type(input).__name__}")
    if input._data.dtype.kind != "f":
        raise RuntimeError(f'"{name}" not implemented for \'{input.dtype.name}\'; pass a float tensor')
    return input


# ---------------------------------------------------------------------------- softmax family
class Softmax(Function):
    @staticmethod
    def forward(ctx, x, axis):
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        e /= e.sum(axis=axis, keepdims=True)
        ctx.axis = axis
        ctx.save_for_backward(e)
        return e

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        gy = g * y
        return gy - y * gy.sum(axis=ctx.axis, keepdims=True), None


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, x, axis):
        s = x - x.max(axis=axis, keepdims=True)
        s -= np.log(np.exp(s).sum(axis=axis, keepdims=True))
        ctx.axis = axis
        ctx.save_for_backward(s)
        return s

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g - np.exp(y) * g.sum(axis=ctx.axis, keepdims=True), None


def _softmax_dim(ndim, name):
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. "
        "Change the call to include dim=X as an argument.", UserWarning, stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def _softmax_prep(input, dim, dtype, name):
    if dtype is not None and isinstance(input, Tensor):
        input = input.to(_dt.to_dtype(dtype))
    _check(input, name)
    if dim is None:
        dim = _softmax_dim(input.ndim, name)
    return input, _wrap_dim(dim, input.ndim)


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """``exp(x) / exp(x).sum(dim)``, computed stably; ``F.softmax(logits, dim=-1)``."""
    input, axis = _softmax_prep(input, dim, dtype, "softmax")
    if input.ndim == 0:
        return Softmax.apply(input.reshape(1), 0).reshape(())
    return Softmax.apply(input, axis)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """``x - logsumexp(x, dim)`` in one fused, stable op."""
    input, axis = _softmax_prep(input, dim, dtype, "log_softmax")
    if input.ndim == 0:
        return LogSoftmax.apply(input.reshape(1), 0).reshape(())
    return LogSoftmax.apply(input, axis)


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    """``softmax(-x, dim)``."""
    if dim is None:
        dim = _softmax_dim(input.ndim, "softmin")
    return softmax(-input, dim, dtype=dtype)


def gumbel_softmax(logits, tau=1, hard=False, eps=1e-10, dim=-1):
    """Samples from the Gumbel-Softmax distribution: ``softmax((logits + g) / tau)`` with
    Gumbel noise ``g = -log(Exponential(1))``; ``hard=True`` returns one-hot samples whose
    gradient is the soft sample's (straight-through). ``eps`` is unused, as in PyTorch."""
    from ember.ops.creation import empty_like, zeros_like

    gumbels = -empty_like(logits).exponential_().log()
    y_soft = softmax((logits + gumbels) / tau, dim)
    if not hard:
        return y_soft
    index = y_soft.max(dim, keepdim=True)[1]
    y_hard = zeros_like(logits).scatter_(dim, index, 1.0)
    return y_hard - y_soft.detach() + y_soft


# ---------------------------------------------------------------------------- pointwise
class _Pointwise(Function):
    """Base of the parameterised pointwise activations: ``f(x, *p)`` and ``df/dx(x, y, *p)``."""

    @staticmethod
    def f(x, *p):
        raise NotImplementedError

    @staticmethod
    def df(x, y, *p):
        raise NotImplementedError

    @classmethod
    def forward(cls, ctx, x, *p):
        y = cls.f(x, *p)
        ctx.p = p
        ctx.save_for_backward(x, y)
        return y

    @classmethod
    def backward(cls, ctx, g):
        x, y = ctx.saved_tensors
        return (g * cls.df(x, y, *ctx.p),) + (None,) * len(ctx.p)


def _pointwise(name, f, df):
    return type(name, (_Pointwise,), {"f": staticmethod(f), "df": staticmethod(df)})


def _dt_of(x):
    return x.dtype.type


LeakyRelu = _pointwise(
    "LeakyRelu", lambda x, s: np.where(x > 0, x, x * s),
    lambda x, y, s: np.where(x > 0, _dt_of(x)(1), _dt_of(x)(s)))
# elu/selu/celu: scale * (x if x > 0 else alpha * (exp(x * input_scale) - 1))
Elu = _pointwise(
    "Elu",
    lambda x, a, s, i: s * np.where(x > 0, x, a * np.expm1(np.minimum(x, 0) * i)),
    lambda x, y, a, s, i: np.where(x > 0, _dt_of(x)(s), (s * a * i) * np.exp(np.minimum(x, 0) * i)))
Silu = _pointwise(
    "Silu", lambda x: x * _sig(x),
    lambda x, y: (lambda s: s * (1 + x * (1 - s)))(_sig(x)))
Hardtanh = _pointwise(
    "Hardtanh", lambda x, lo, hi: np.clip(x, lo, hi).astype(x.dtype, copy=False),
    lambda x, y, lo, hi: ((x > lo) & (x < hi)).astype(x.dtype))
Hardswish = _pointwise(
    "Hardswish", lambda x: x * np.clip(x + 3, 0, 6) / 6,
    lambda x, y: np.where(x <= -3, 0, np.where(x >= 3, 1, x / 3 + 0.5)).astype(x.dtype))
Hardsigmoid = _pointwise(
    "Hardsigmoid", lambda x: np.clip(x / 6 + 0.5, 0, 1).astype(x.dtype, copy=False),
    lambda x, y: ((x > -3) & (x < 3)).astype(x.dtype) / 6)
Softsign = _pointwise(
    "Softsign", lambda x: x / (1 + np.abs(x)), lambda x, y: 1 / np.square(1 + np.abs(x)))
Tanhshrink = _pointwise(
    "Tanhshrink", lambda x: x - np.tanh(x), lambda x, y: np.square(np.tanh(x)))
LogSigmoid = _pointwise(
    "LogSigmoid", lambda x: np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x))),
    lambda x, y: _sig(-x))
Threshold = _pointwise(
    "Threshold", lambda x, t, v: np.where(x > t, x, _dt_of(x)(v)),
    lambda x, y, t, v: (x > t).astype(x.dtype))
Softshrink = _pointwise(
    "Softshrink", lambda x, la: np.where(x > la, x - la, np.where(x < -la, x + la, 0)).astype(x.dtype),
    lambda x, y, la: (np.abs(x) > la).astype(x.dtype))
Hardshrink = _pointwise(
    "Hardshrink", lambda x, la: np.where(np.abs(x) > la, x, 0).astype(x.dtype),
    lambda x, y, la: (np.abs(x) > la).astype(x.dtype))


def _softplus_f(x, beta, thr):
    bx = x * beta
    return np.where(bx > thr, x, np.logaddexp(0, bx) / beta).astype(x.dtype, copy=False)


Softplus = _pointwise(
    "Softplus", _softplus_f,
    lambda x, y, beta, thr: np.where(x * beta > thr, 1, _sig(x * beta)).astype(x.dtype))


def _mish_df(x, y):
    sp = np.logaddexp(0, x).astype(x.dtype, copy=False)
    t = np.tanh(sp)
    return t + x * (1 - t * t) * _sig(x)


Mish = _pointwise("Mish", lambda x: x * np.tanh(np.logaddexp(0, x).astype(x.dtype, copy=False)),
                  _mish_df)


def _gelu_f(x, approx):
    if approx != "tanh" and x.dtype == np.float32:
        return gelu_f32(x)  # chunked rational erf: ~5x faster than SciPy's float32 erf
    if approx == "tanh":
        return 0.5 * x * (1 + np.tanh(_SQRT_2_PI * (x + 0.044715 * x * x * x)))
    return 0.5 * x * (1 + _erf_np(x * _INV_SQRT2))


def _gelu_df(x, y, approx):
    if approx != "tanh" and x.dtype == np.float32:
        return gelu_grad_f32(x)
    if approx == "tanh":
        x2 = x * x
        t = np.tanh(_SQRT_2_PI * (x + 0.044715 * x2 * x))
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _SQRT_2_PI * (1 + 3 * 0.044715 * x2)
    cdf = 0.5 * (1 + _erf_np(x * _INV_SQRT2))
    return cdf + x * np.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))


Gelu = _pointwise("Gelu", _gelu_f, _gelu_df)


def _apply(cls, input, name, inplace, *p):
    _check(input, name)
    if not inplace:
        return cls.apply(input, *p)
    # In place: compute on a clone so the saved input array is not the one overwritten.
    src = input.clone() if (_State.enabled and input._rg) else input
    return input._inplace(cls.apply(src, *p))


def relu(input, inplace=False):
    """``max(x, 0)``; ``inplace=True`` overwrites ``input``."""
    if not inplace:
        return _relu(input)
    return input._inplace(_relu(input.clone() if (_State.enabled and input._rg) else input))


def relu_(input):
    return relu(input, True)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """``x if x > 0 else negative_slope * x``."""
    return _apply(LeakyRelu, input, "leaky_relu", inplace, float(negative_slope))


def leaky_relu_(input, negative_slope=0.01):
    return leaky_relu(input, negative_slope, True)


def elu(input, alpha=1.0, inplace=False):
    """``x if x > 0 else alpha * (exp(x) - 1)``."""
    return _apply(Elu, input, "elu", inplace, float(alpha), 1.0, 1.0)


def elu_(input, alpha=1.0):
    return elu(input, alpha, True)


def selu(input, inplace=False):
    """``scale * elu(x, alpha)`` with the self-normalising constants."""
    return _apply(Elu, input, "selu", inplace, _SELU_ALPHA, _SELU_SCALE, 1.0)


def celu(input, alpha=1.0, inplace=False):
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``."""
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError: celu alpha must not be 0")
    return _apply(Elu, input, "celu", inplace, float(alpha), 1.0, 1.0 / alpha)


def gelu(input, approximate="none"):
    """Gaussian error linear unit; ``approximate='tanh'`` uses the tanh formula."""
    if approximate not in ("none", "tanh"):
        raise RuntimeError(f"approximate argument must be either none or tanh, got {approximate!r}")
    return _apply(Gelu, input, "gelu", False, approximate)


def silu(input, inplace=False):
    """``x * sigmoid(x)`` (swish)."""
    return _apply(Silu, input, "silu", inplace)


def mish(input, inplace=False):
    """``x * tanh(softplus(x))``."""
    return _apply(Mish, input, "mish", inplace)


def softplus(input, beta=1.0, threshold=20.0):
    """``log(1 + exp(beta * x)) / beta``; linear where ``beta * x > threshold``."""
    return _apply(Softplus, input, "softplus", False, float(beta), float(threshold))


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """Clamp to ``[min_val, max_val]`` (gradient 0 outside)."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    return _apply(Hardtanh, input, "hardtanh", inplace, float(min_val), float(max_val))


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    return hardtanh(input, min_val, max_val, True)


def relu6(input, inplace=False):
    """``min(max(0, x), 6)``."""
    return _apply(Hardtanh, input, "relu6", inplace, 0.0, 6.0)


def hardswish(input, inplace=False):
    return _apply(Hardswish, input, "hardswish", inplace)


def hardsigmoid(input, inplace=False):
    return _apply(Hardsigmoid, input, "hardsigmoid", inplace)


def logsigmoid(input):
    """``log(sigmoid(x))``, stable for large ``|x|``."""
    return _apply(LogSigmoid, input, "log_sigmoid", False)


def tanhshrink(input):
    return _apply(Tanhshrink, input, "tanhshrink", False)


def softsign(input):
    return _apply(Softsign, input, "softsign", False)


def softshrink(input, lambd=0.5):
    return _apply(Softshrink, input, "softshrink", False, float(lambd))


def hardshrink(input, lambd=0.5):
    return _apply(Hardshrink, input, "hardshrink", False, float(lambd))


def threshold(input, threshold, value, inplace=False):
    """``x if x > threshold else value``."""
    return _apply(Threshold, input, "threshold", inplace, float(threshold), float(value))


def threshold_(input, threshold, value):
    return _apply(Threshold, input, "threshold", True, float(threshold), float(value))


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    """Randomised leaky ReLU; in eval mode the slope is ``(lower + upper) / 2``."""
    if not training:
        return leaky_relu(input, (lower + upper) / 2, inplace)
    from ember.random import _gen

    _check(input, "rrelu")
    a = _gen().uniform(lower, upper, input.shape).astype(input._data.dtype)
    a = np.where(input._data >= 0, 1, a).astype(input._data.dtype)
    return input * _wrap(a)


class Prelu(Function):
    @staticmethod
    def forward(ctx, x, w):
        wb = w.reshape((1, -1) + (1,) * (x.ndim - 2)) if x.ndim >= 2 and w.size > 1 else w
        ctx.save_for_backward(x, wb)
        ctx.wshape = w.shape
        return np.where(x > 0, x, x * wb)

    @staticmethod
    def backward(ctx, g):
        x, wb = ctx.saved_tensors
        nx, nw = ctx.needs_input_grad
        gx = np.where(x > 0, g, g * wb) if nx else None
        gw = None
        if nw:
            gw = unbroadcast(np.where(x > 0, 0, g * x).astype(x.dtype, copy=False), wb.shape)
            gw = gw.reshape(ctx.wshape)
        return gx, gw


def prelu(input, weight):
    """``x if x > 0 else weight * x`` with a learned ``weight`` per channel (dim 1) or shared."""
    _check(input, "prelu")
    n = weight.numel()
    if n != 1:
        ch = input.shape[1] if input.ndim >= 2 else 1
        if weight.ndim != 1 or n != ch:
            raise RuntimeError(
                f"Mismatch of parameter numbers and input channel size. Found parameter numbers = "
                f"{n} and channel size = {ch}.")
    return Prelu.apply(input, weight)


def glu(input, dim=-1):
    """``a * sigmoid(b)`` where ``a, b`` are the two halves of ``input`` along ``dim``."""
    _check(input, "glu")
    if input.ndim == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    d = _wrap_dim(dim, input.ndim)
    if input.shape[d] % 2:
        raise RuntimeError(
            f"Halving dimension must be even, but dimension {d} is size {input.shape[d]}")
    a, b = input.chunk(2, d)
    return a * sigmoid(b)
