"""Elementwise ops: arithmetic with broadcasting and PyTorch's type promotion, unary math,
comparisons, casts, ``where`` and ``clamp``."""

from __future__ import annotations

import math
import numbers

import numpy as np

from ember import dtypes as _dt
from ember.autograd.function import Function
from ember.backend import jit, onednn, unbroadcast
from ember.backend.parallel import parallel_for
from ember.tensor import Tensor, _wrap

__all__ = [
    "add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide", "floor_divide",
    "remainder", "fmod", "pow", "neg", "negative", "exp", "exp2", "log", "log2", "log10", "log1p",
    "expm1", "sqrt", "rsqrt", "square", "abs", "absolute", "sign", "sgn", "reciprocal", "sin", "cos",
    "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "sigmoid", "relu", "floor", "ceil",
    "round", "trunc", "frac", "clamp", "clip", "clamp_min", "clamp_max", "maximum", "minimum",
    "fmax", "fmin", "eq", "ne", "lt", "le", "gt", "ge", "greater", "less", "greater_equal",
    "less_equal", "not_equal", "equal", "logical_and", "logical_or", "logical_xor", "logical_not",
    "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "isnan", "isinf", "isfinite",
    "where", "lerp", "addcmul", "addcdiv", "erf", "isclose", "allclose", "nan_to_num", "hypot",
    "xlogy", "cast", "signbit", "deg2rad", "rad2deg", "logaddexp", "logit",
]

_ndarray = np.ndarray
_Scalar = (int, float, bool, numbers.Number)


def _as_tensor(x, like=None):
    if isinstance(x, Tensor):
        return x
    from ember.ops.creation import tensor

    return tensor(x)


def _prep(a, b):
    """Return (a, b) with PyTorch's result dtype applied; a Python scalar stays a scalar."""
    if not isinstance(a, Tensor):
        if isinstance(a, _Scalar) and isinstance(b, Tensor):
            b2, a2 = _prep(b, a)
            return a2, b2
        a = _as_tensor(a)
    if isinstance(b, Tensor):
        if a._data.dtype is b._data.dtype:
            return a, b
        d = _dt.result_type(a, b)
        if a._data.dtype != d.np:
            a = cast(a, d)
        if b._data.dtype != d.np:
            b = cast(b, d)
        return a, b
    if isinstance(b, _Scalar) and not isinstance(b, np.ndarray):
        ad = a._data.dtype
        if ad.kind == "f" and not isinstance(b, complex):
            return a, b
        d = _dt.result_type(a, b)
        if ad != d.np:
            a = cast(a, d)
        if d.is_floating_point:
            return a, float(b)
        return a, (int(b) if d is not _dt.bool else bool(b))
    return _prep(a, _as_tensor(b))


def _shape(x):
    return x.shape if type(x) is _ndarray else None


# ---------------------------------------------------------------------------- arithmetic
class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, _shape(b))
        return a + b

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        return (unbroadcast(g, sa) if na else None), (unbroadcast(g, sb) if nb else None)


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (_shape(a), _shape(b))
        return a - b

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        return (unbroadcast(g, sa) if na else None), (unbroadcast(-g, sb) if nb else None)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        ga = unbroadcast(g * b, a.shape) if na else None
        gb = unbroadcast(g * a, b.shape) if nb else None
        return ga, gb


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        ga = unbroadcast(g / b, _shape(a)) if na else None
        gb = unbroadcast(-g * a / (b * b), b.shape) if nb else None
        return ga, gb


class Pow(Function):
    @staticmethod
    def forward(ctx, a, b):
        y = a ** b
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, g):
        a, b, y = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        ga = gb = None
        if na:
            if type(b) is _ndarray:
                ga = unbroadcast(g * b * np.where(b == 0, 0, a ** np.where(b == 0, 1, b - 1)), a.shape)
            elif b == 0:
                ga = np.zeros_like(a)
            else:
                ga = g * b * a ** (b - 1)
        if nb:
            la = np.log(np.where(a > 0, a, 1)) if type(a) is _ndarray else math.log(a) if a > 0 else 0.0
            gb = g * y * la
            gb = np.where(np.asarray(a) == 0, np.where(np.asarray(b) >= 0, 0, gb), gb) if type(a) is _ndarray else gb
            gb = unbroadcast(gb, b.shape)
        return ga, gb


def add(input, other, *, alpha=1, out=None):
    if alpha != 1:
        other = mul(other, alpha)
    a, b = _prep(input, other)
    try:
        return Add.apply(a, b)
    except ValueError:
        _broadcast_error(a, b)


def sub(input, other, *, alpha=1, out=None):
    if alpha != 1:
        other = mul(other, alpha)
    a, b = _prep(input, other)
    if (a if isinstance(a, Tensor) else b)._data.dtype.kind == "b":
        raise RuntimeError(
            "Subtraction, the `-` operator, with two bool tensors is not supported. "
            "Use the `^` or `logical_xor()` operator instead."
        )
    try:
        return Sub.apply(a, b)
    except ValueError:
        _broadcast_error(a, b)


def rsub(input, other, *, alpha=1):
    return sub(other, mul(input, alpha) if alpha != 1 else input)


def mul(input, other, *, out=None):
    a, b = _prep(input, other)
    try:
        return Mul.apply(a, b)
    except ValueError:
        _broadcast_error(a, b)


def div(input, other, *, rounding_mode=None, out=None):
    if rounding_mode == "floor":
        return floor_divide(input, other)
    if rounding_mode == "trunc":
        return trunc(div(input, other)) if _is_float(input, other) else _int_div(input, other, "trunc")
    if rounding_mode is not None:
        raise RuntimeError("div expected rounding_mode to be one of None, 'trunc', or 'floor' but "
                           f"found '{rounding_mode}'")
    a, b = _prep(input, other)
    if (a if isinstance(a, Tensor) else b)._data.dtype.kind != "f":
        fd = _dt.get_default_dtype()
        a = cast(a, fd) if isinstance(a, Tensor) else float(a)
        b = cast(b, fd) if isinstance(b, Tensor) else float(b)
    try:
        return Div.apply(a, b)
    except ValueError:
        _broadcast_error(a, b)


def _is_float(a, b):
    a, b = _prep(a, b)
    return a._data.dtype.kind == "f"


def _int_div(a, b, mode):
    a, b = _prep(a, b)
    bd = b._data if isinstance(b, Tensor) else b
    if np.any(np.asarray(bd) == 0):
        raise RuntimeError(f"ZeroDivisionError: integer division by zero ({a.dtype} tensors)")
    q = np.trunc(np.true_divide(a._data, bd)).astype(a._data.dtype)
    return _wrap(q)


def floor_divide(input, other):
    a, b = _prep(input, other)
    if a._rg and a._data.dtype.kind == "f":
        return floor(div(a, b))
    return _nograd(np.floor_divide, a, b)


def remainder(input, other):
    a, b = _prep(input, other)
    if (a._rg or getattr(b, "_rg", False)) and a._data.dtype.kind == "f":
        # x mod y = x - floor(x/y)*y: differentiable in x with slope 1, in y with -floor(x/y)
        return sub(a, mul(_wrap(_quotient(np.floor, a, b)), b))
    return _nograd(np.remainder, a, b)


def fmod(input, other):
    a, b = _prep(input, other)
    if (a._rg or getattr(b, "_rg", False)) and a._data.dtype.kind == "f":
        return sub(a, mul(_wrap(_quotient(np.trunc, a, b)), b))
    return _nograd(np.fmod, a, b)


_INT_DIVS = (np.floor_divide, np.remainder, np.fmod)


def _quotient(rounding, a, b):
    try:
        return rounding(a._data / (b._data if isinstance(b, Tensor) else b))
    except ValueError:
        _broadcast_error(a, b)


def _nograd(f, a, b):
    bd = b._data if isinstance(b, Tensor) else b
    if f in _INT_DIVS and a._data.dtype.kind in "iub" and np.any(np.asarray(bd) == 0):
        # NumPy would return 0 with a warning; PyTorch raises.
        raise RuntimeError(f"ZeroDivisionError: integer {f.__name__} by zero ({a.dtype} tensors)")
    try:
        with np.errstate(divide="ignore", invalid="ignore"):  # IEEE results, no warnings
            return _wrap(np.asarray(f(a._data, bd)))
    except ValueError:
        _broadcast_error(a, b)


def pow(input, exponent):
    if not isinstance(input, Tensor):
        e = _as_tensor(exponent)
        d = _dt.result_type(e, input)
        if e._data.dtype != d.np:
            e = cast(e, d)
        return Pow.apply(float(input) if d.is_floating_point else input, e)
    a, b = _prep(input, exponent)
    if isinstance(b, int) and b < 0 and a._data.dtype.kind in "iu":
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    try:
        return Pow.apply(a, b)
    except ValueError:
        _broadcast_error(a, b)


subtract, multiply, divide, true_divide = sub, mul, div, div


# ---------------------------------------------------------------------------- unary math
def _unary(name, fwd, bwd, save="x", float_only=True):
    """Build a unary op. ``bwd(g, x, y)`` gives the input gradient from the input/output."""

    def forward(ctx, x):
        y = fwd(x)
        ctx.save_for_backward(x if save == "x" else y if save == "y" else None)
        ctx.xy = (x, y) if save == "xy" else None
        return y

    def backward(ctx, g):
        if save == "xy":
            x, y = ctx.xy
        else:
            (s,) = ctx.saved_tensors
            x, y = (s, None) if save == "x" else (None, s)
        return bwd(g, x, y)

    cls = type(name, (Function,), {"forward": staticmethod(forward),
                                   "backward": staticmethod(backward)})

    def op(input):
        if not isinstance(input, Tensor):
            input = _as_tensor(input)
        if float_only and input._data.dtype.kind != "f":
            input = cast(input, _dt.get_default_dtype())
        return cls.apply(input)

    op.__name__ = name.lower()
    op.__qualname__ = op.__name__
    op.__doc__ = f"Elementwise ``{name.lower()}`` (PyTorch's ``torch.{name.lower()}``)."
    return cls, op


def _sig(x):
    # exp(-|x|) never overflows; this form is exact for both signs.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


Exp, exp = _unary("Exp", np.exp, lambda g, x, y: g * y, save="y")
Exp2, exp2 = _unary("Exp2", np.exp2, lambda g, x, y: g * y * np.log(2).astype(y.dtype), save="y")
Log, log = _unary("Log", np.log, lambda g, x, y: g / x)
Log2, log2 = _unary("Log2", np.log2, lambda g, x, y: g / (x * np.log(2).astype(x.dtype)))
Log10, log10 = _unary("Log10", np.log10, lambda g, x, y: g / (x * np.log(10).astype(x.dtype)))
Log1p, log1p = _unary("Log1p", np.log1p, lambda g, x, y: g / (1 + x))
Expm1, expm1 = _unary("Expm1", np.expm1, lambda g, x, y: g * (y + 1), save="y")
Sqrt, sqrt = _unary("Sqrt", np.sqrt, lambda g, x, y: g / (2 * y), save="y")
Rsqrt, rsqrt = _unary("Rsqrt", lambda x: 1 / np.sqrt(x), lambda g, x, y: -0.5 * g * y * y * y, save="y")
Sin, sin = _unary("Sin", np.sin, lambda g, x, y: g * np.cos(x))
Cos, cos = _unary("Cos", np.cos, lambda g, x, y: -g * np.sin(x))
Tan, tan = _unary("Tan", np.tan, lambda g, x, y: g * (1 + y * y), save="y")
Asin, asin = _unary("Asin", np.arcsin, lambda g, x, y: g / np.sqrt(1 - x * x))
Acos, acos = _unary("Acos", np.arccos, lambda g, x, y: -g / np.sqrt(1 - x * x))
Atan, atan = _unary("Atan", np.arctan, lambda g, x, y: g / (1 + x * x))
Sinh, sinh = _unary("Sinh", np.sinh, lambda g, x, y: g * np.cosh(x))
Cosh, cosh = _unary("Cosh", np.cosh, lambda g, x, y: g * np.sinh(x))
Tanh, tanh = _unary("Tanh", np.tanh, lambda g, x, y: g * (1 - y * y), save="y")
Sigmoid, sigmoid = _unary("Sigmoid", _sig, lambda g, x, y: g * y * (1 - y), save="y")
Reciprocal, reciprocal = _unary("Reciprocal", lambda x: 1 / x, lambda g, x, y: -g * y * y, save="y")
Square, _square = _unary("Square", np.square, lambda g, x, y: 2 * g * x, float_only=False)


def _erf(x):
    from math import erf as _e

    return np.vectorize(_e, otypes=[x.dtype])(x) if x.size else x.copy()


def _erf_np(x):
    try:
        from scipy.special import erf as serf  # optional, faster

        return serf(x).astype(x.dtype, copy=False)
    except ImportError:
        return _erf(x)


Erf, erf = _unary(
    "Erf", _erf_np,
    lambda g, x, y: g * (2 / math.sqrt(math.pi)) * np.exp(-x * x).astype(x.dtype, copy=False),
)


def square(input):
    return mul(input, input) if not isinstance(input, Tensor) or input._data.dtype.kind == "f" else _square(input)


class Neg(Function):
    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, g):
        return -g


def neg(input):
    if input._data.dtype.kind == "b":
        raise RuntimeError(
            "Negation, the `-` operator, on a bool tensor is not supported. If you are trying to "
            "invert a mask, use the `~` or `logical_not()` operator instead."
        )
    return Neg.apply(input)


negative = neg


class Abs(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.abs(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * np.sign(x)


def abs(input):
    return Abs.apply(input)


absolute = abs


class Relu(Function):
    @staticmethod
    def forward(ctx, x):
        y = np.maximum(x, 0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        plain = (g.dtype == y.dtype and g.shape == y.shape and g.flags.c_contiguous
                 and y.flags.c_contiguous)
        if plain and g.size >= _ONEDNN_MIN and type(g) is np.ndarray:
            relu = onednn.ReluBackward.get(g.size, g.dtype)
            if relu is not None:
                out = relu(g, y)
                # oneDNN multiplies by the 0/1 mask: an infinite or NaN gradient at an
                # inactive element becomes NaN where PyTorch gives 0 (then: NumPy's exact path)
                if not np.isnan(out.max()):
                    return out
        # ember's compiled kernel only where oneDNN is missing: loading numba (~70 MB, 0.6 s)
        # for the small gradients left would cost more than it saves
        k = jit.kernels_for(g, y) if plain and not onednn.installed() else None
        if k is None:
            # any float gradient of y's dtype: strided and broadcast ones too (a transpose's or
            # a sum's backward hands them down)
            return _relu_grad(g, y) if g.dtype == y.dtype and g.dtype.kind == "f" else g * (y > 0)
        # One compiled pass (ember.backend.jit) instead of a bool mask and a mixed-type multiply:
        # (128, 512) 28 -> 7.6 us, (64, 16, 32, 32) 644 -> 473 us on the reference machine.
        out = np.empty_like(g)
        gf, yf, of = g.reshape(-1), y.reshape(-1), out.reshape(-1)

        def run(lo, hi):
            k.relu_backward(gf[lo:hi], yf[lo:hi], of[lo:hi])
        parallel_for(gf.size, run, min_n=_SPLIT, grain=1 << 14)
        return out


def _relu_grad(g, y):
    """PyTorch's ReLU gradient from the output: ``g`` where ``y > 0`` or ``y`` is NaN, +0 where
    ``y <= 0``, as a bitwise AND of ``g`` (y's dtype, any strides, broadcast to y's shape) with
    an integer mask. As fast as ``g * (y > 0)`` (two NumPy passes), which gives NaN for an
    infinite or NaN ``g`` at an inactive element and 0 for a NaN ``y``."""
    it = _BITS[g.itemsize]
    keep = np.array(np.less_equal(y, 0), dtype=it)  # 1 where inactive (an array also at 0-d)
    keep -= 1  # 0 there, all bits set where active
    return np.bitwise_and(g.view(it), keep, out=keep).view(g.dtype)


_BITS = {2: np.int16, 4: np.int32, 8: np.int64}
_SPLIT = 1 << 19  # elements from which ReLU's gradient is shared between the cores
# elements from which it runs on oneDNN (ember.backend.onednn); below, NumPy's two passes were
# faster inside a training step (mlp128's (128, 512): 56-62 us a call, oneDNN's 76-91)
_ONEDNN_MIN = 1 << 17


def relu(input):
    return Relu.apply(input)


def _zero_grad_op(f, keep_dtype=True):
    """Piecewise-constant ops (floor, sign...): their gradient is zero everywhere."""

    class Z(Function):
        @staticmethod
        def forward(ctx, x):
            return f(x)

        @staticmethod
        def backward(ctx, g):
            return np.zeros_like(g)

    def op(input):
        return Z.apply(input)

    return op


sign = _zero_grad_op(np.sign)
sgn = sign
floor = _zero_grad_op(np.floor)
ceil = _zero_grad_op(np.ceil)
trunc = _zero_grad_op(np.trunc)
fix = trunc


def round(input, *, decimals=0):
    if decimals:
        return _zero_grad_op(lambda x: np.round(x, decimals))(input)
    return _zero_grad_op(np.round)(input)


def signbit(input):
    return _wrap(np.signbit(input._data))


def frac(input):
    return sub(input, trunc(input))


def deg2rad(input):
    return mul(input, math.pi / 180)


def rad2deg(input):
    return mul(input, 180 / math.pi)


# ---------------------------------------------------------------------------- clamp / max / min
class Clamp(Function):
    @staticmethod
    def forward(ctx, x, lo, hi):
        y = np.clip(x, lo, hi) if (lo is not None or hi is not None) else x.copy()
        ctx.save_for_backward(x)
        ctx.bounds = (lo, hi)
        return y

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        lo, hi = ctx.bounds
        mask = np.ones(x.shape, dtype=bool)
        if lo is not None:
            mask &= x >= lo
        if hi is not None:
            mask &= x <= hi
        return g * mask, None, None


class ClampTensor(Function):
    """clamp with tensor bounds: the gradient goes to x inside [min, max] (bounds included),
    to min where x is below it, to max where x is above it (or max < min), as PyTorch's."""

    @staticmethod
    def forward(ctx, x, lo, hi):
        y = x if lo is None else np.maximum(x, lo)
        y = y if hi is None else np.minimum(y, hi)
        ctx.save_for_backward(x, lo, hi)
        return np.asarray(y)

    @staticmethod
    def backward(ctx, g):
        x, lo, hi = ctx.saved_tensors
        keep = np.ones(g.shape, bool)
        g_lo = g_hi = None
        if lo is not None:
            keep = keep & (x >= lo)
        if hi is not None:
            keep = keep & (x <= hi)
        nx, nlo, nhi = ctx.needs_input_grad
        if lo is not None and nlo:
            below = (x < lo) if hi is None else (x < lo) & (lo < hi)
            g_lo = unbroadcast(np.where(below, g, 0), lo.shape)
        if hi is not None and nhi:
            above = (x > hi) if lo is None else (x > hi) | (hi < lo)
            g_hi = unbroadcast(np.where(above, g, 0), hi.shape)
        return (unbroadcast(np.where(keep, g, 0), x.shape) if nx else None), g_lo, g_hi


def clamp(input, min=None, max=None):
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        b = [v if v is None or isinstance(v, Tensor) else _as_tensor(v).to(input.dtype)
             for v in (min, max)]
        d = _dt.result_type(*[v for v in [input] + b if v is not None])
        x, lo, hi = (v if v is None or v.dtype is d else cast(v, d) for v in [input] + b)
        try:
            return ClampTensor.apply(x, lo, hi)
        except ValueError:
            _broadcast_error(x, lo if lo is not None else hi)
    if input._data.dtype.kind != "f" and (isinstance(min, float) or isinstance(max, float)):
        input = cast(input, _dt.get_default_dtype())
    return Clamp.apply(input, min, max)


clip = clamp


def clamp_min(input, min):
    return clamp(input, min=min)


def clamp_max(input, max):
    return clamp(input, max=max)


class _MaxMin(Function):
    @staticmethod
    def forward(ctx, a, b, is_max):
        y = np.maximum(a, b) if is_max else np.minimum(a, b)
        # Ties split the gradient evenly, as PyTorch does.
        ctx.save_for_backward(a, b)
        ctx.is_max = is_max
        return y

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        pick_a = (a > b) if ctx.is_max else (a < b)
        tie = a == b
        wa = pick_a + 0.5 * tie
        wa = wa.astype(g.dtype, copy=False)
        na, nb, _ = ctx.needs_input_grad
        ga = unbroadcast(g * wa, a.shape) if na else None
        gb = unbroadcast(g * (1 - wa), b.shape) if nb else None
        return ga, gb, None


def maximum(input, other):
    a, b = _prep(input, _as_tensor(other))
    try:
        return _MaxMin.apply(a, b, True)
    except ValueError:
        _broadcast_error(a, b)


def minimum(input, other):
    a, b = _prep(input, _as_tensor(other))
    try:
        return _MaxMin.apply(a, b, False)
    except ValueError:
        _broadcast_error(a, b)


class _FMaxMin(Function):
    """fmax/fmin: a NaN loses to a number; the gradient goes to input where it is kept (ties
    and NaN against NaN included) and to other elsewhere, as PyTorch's."""

    @staticmethod
    def forward(ctx, a, b, is_max):
        ctx.save_for_backward(a, b)
        ctx.is_max = is_max
        return np.fmax(a, b) if is_max else np.fmin(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        keep_a = ((a >= b) if ctx.is_max else (a <= b)) | np.isnan(b)
        na, nb, _ = ctx.needs_input_grad
        ga = unbroadcast(np.where(keep_a, g, 0), a.shape) if na else None
        gb = unbroadcast(np.where(keep_a, 0, g), b.shape) if nb else None
        return ga, gb, None


def fmax(input, other):
    """maximum where a NaN loses to a number (NumPy's fmax)."""
    a, b = _prep(input, _as_tensor(other))
    try:
        return _FMaxMin.apply(a, b, True)
    except ValueError:
        _broadcast_error(a, b)


def fmin(input, other):
    a, b = _prep(input, _as_tensor(other))
    try:
        return _FMaxMin.apply(a, b, False)
    except ValueError:
        _broadcast_error(a, b)


# ---------------------------------------------------------------------------- comparisons
def _cmp(f):
    def op(input, other):
        a, b = _prep(input, other)
        bd = b._data if isinstance(b, Tensor) else b
        try:
            return _wrap(np.asarray(f(a._data, bd)))
        except ValueError:
            _broadcast_error(a, b)

    return op


def _broadcast_error(a, b):
    """Raise PyTorch's broadcast error for ``a`` and ``b``; called from an ``except ValueError``
    so that the check costs nothing when shapes agree. Other ValueErrors propagate unchanged."""
    sa = tuple(a.shape) if isinstance(a, Tensor) else ()
    sb = tuple(b.shape) if isinstance(b, Tensor) else ()
    msg = broadcast_mismatch(sa, sb)
    if msg is None:
        raise  # noqa: PLE0704 (only called inside an except block: re-raise its error)
    raise RuntimeError(f"{msg}; shapes {list(sa)} and {list(sb)} cannot be broadcast together"
                       ) from None


def broadcast_mismatch(sa, sb):
    """PyTorch's message for shapes ``sa`` and ``sb`` that do not broadcast, or None."""
    x, y, dim = _mismatch(tuple(sa), tuple(sb))
    if x == y:
        return None
    return (f"The size of tensor a ({x}) must match the size of tensor b ({y}) at non-singleton "
            f"dimension {dim}")


def _mismatch(sa, sb):
    n = max(len(sa), len(sb))
    pa, pb = (1,) * (n - len(sa)) + sa, (1,) * (n - len(sb)) + sb
    for i in range(n - 1, -1, -1):
        if pa[i] != pb[i] and pa[i] != 1 and pb[i] != 1:
            return pa[i], pb[i], i
    return 0, 0, 0


eq = _cmp(np.equal)
ne = _cmp(np.not_equal)
lt = _cmp(np.less)
le = _cmp(np.less_equal)
gt = _cmp(np.greater)
ge = _cmp(np.greater_equal)
greater, less, greater_equal, less_equal, not_equal = gt, lt, ge, le, ne


def equal(input, other):
    return input.shape == other.shape and bool(np.array_equal(input._data, other._data))


def _logical(f):
    def op(input, other):
        if not isinstance(input, Tensor):
            input = _as_tensor(input)
        return _nograd(f, input, other)

    return op


logical_and = _logical(np.logical_and)
logical_or = _logical(np.logical_or)
logical_xor = _logical(np.logical_xor)


def logical_not(input):
    return _wrap(np.logical_not(input._data))


def _bitwise(f):
    def op(input, other):
        a, b = _prep(input, other)
        if a._data.dtype.kind == "f":
            raise RuntimeError(f"\"{f.__name__}_cpu\" not implemented for '{a.dtype.name}'")
        return _nograd(f, a, b)

    return op


bitwise_and = _bitwise(np.bitwise_and)
bitwise_or = _bitwise(np.bitwise_or)
bitwise_xor = _bitwise(np.bitwise_xor)


def bitwise_not(input):
    if input._data.dtype.kind == "f":
        raise RuntimeError(f"bitwise_not is not implemented for '{input.dtype.name}'")
    return _wrap(np.invert(input._data))


def isnan(input):
    return _wrap(np.isnan(input._data))


def isinf(input):
    return _wrap(np.isinf(input._data))


def isfinite(input):
    return _wrap(np.isfinite(input._data))


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return _wrap(np.isclose(input._data, _as_tensor(other)._data, rtol, atol, equal_nan))


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return bool(np.allclose(input._data, _as_tensor(other)._data, rtol, atol, equal_nan))


class NanToNum(Function):
    @staticmethod
    def forward(ctx, x, nan, posinf, neginf):
        ctx.save_for_backward(x)
        return np.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return np.where(np.isfinite(x), g, g.dtype.type(0)), None, None, None  # replaced: 0


class Logit(Function):
    @staticmethod
    def forward(ctx, x, eps):
        z = x if eps is None else np.clip(x, eps, 1 - eps)
        ctx.save_for_backward(x)
        ctx.eps = eps
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(z / (1 - z))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        eps = ctx.eps
        with np.errstate(divide="ignore", invalid="ignore"):
            gx = g / (x * (1 - x))
        if eps is not None:  # clamped places get 0, as in PyTorch
            gx = np.where((x < eps) | (x > 1 - eps), x.dtype.type(0), gx)
        else:  # outside [0, 1] log is undefined: NaN, as in PyTorch
            gx = np.where((x < 0) | (x > 1), x.dtype.type(np.nan), gx)
        return gx.astype(x.dtype, copy=False), None


def logit(input, eps=None):
    """log(p / (1 - p)), p clamped to [eps, 1 - eps] when eps is given (the sigmoid's inverse)."""
    if input._data.dtype.kind != "f":
        input = cast(input, _dt.get_default_dtype())
    return Logit.apply(input, eps)


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    return NanToNum.apply(input, nan, posinf, neginf)


# ---------------------------------------------------------------------------- where and friends
class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        ctx.shapes = (_shape(a), _shape(b))
        return np.where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        (cond,) = ctx.saved_tensors
        sa, sb = ctx.shapes
        _, na, nb = ctx.needs_input_grad
        zero = np.zeros((), dtype=g.dtype)
        ga = unbroadcast(np.where(cond, g, zero), sa) if na else None
        gb = unbroadcast(np.where(cond, zero, g), sb) if nb else None
        return None, ga, gb


def where(condition, input=None, other=None):
    if input is None and other is None:
        from ember.ops.indexing import nonzero

        return nonzero(condition, as_tuple=True)
    c = condition._data if isinstance(condition, Tensor) else np.asarray(condition)
    if c.dtype != np.bool_:
        if c.dtype == np.uint8:
            c = c.astype(bool)
        else:
            raise RuntimeError(
                f"where expected condition to be a boolean tensor, but got a tensor with dtype "
                f"{_dt._NP2DT[c.dtype].name}"
            )
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        input = _as_tensor(input)
    a, b = _prep(input, other)
    if not isinstance(a, Tensor):
        a = _as_tensor(a)
    try:
        return Where.apply(_wrap(c), a, b)
    except ValueError:
        shapes = [list(c.shape), list(a._data.shape),
                  list(b._data.shape) if isinstance(b, Tensor) else []]
        raise RuntimeError(
            f"where(): condition, input and other of shapes {shapes[0]}, {shapes[1]} and "
            f"{shapes[2]} cannot be broadcast together"
        ) from None


def lerp(input, end, weight):
    return add(input, mul(sub(end, input), weight))


def addcmul(input, tensor1, tensor2, *, value=1):
    return add(input, mul(mul(tensor1, tensor2), value))


def addcdiv(input, tensor1, tensor2, *, value=1):
    return add(input, mul(div(tensor1, tensor2), value))


def atan2(input, other):
    y, x = _prep(input, _as_tensor(other))
    if y._data.dtype.kind != "f":
        y, x = cast(y, _dt.get_default_dtype()), cast(x, _dt.get_default_dtype())
    try:
        return _Atan2.apply(y, x)
    except ValueError:
        _broadcast_error(y, x)


class _Atan2(Function):
    @staticmethod
    def forward(ctx, y, x):
        ctx.save_for_backward(y, x)
        return np.arctan2(y, x)

    @staticmethod
    def backward(ctx, g):
        y, x = ctx.saved_tensors
        d = x * x + y * y
        return unbroadcast(g * x / d, y.shape), unbroadcast(-g * y / d, x.shape)


def hypot(input, other):
    return sqrt(add(mul(input, input), mul(other, other)))


def xlogy(input, other):
    a, b = _prep(input, other)
    if not isinstance(b, Tensor):
        b = _as_tensor(b).to(a.dtype)
    safe = where(eq(a, 0), _as_tensor(1.0).to(b.dtype), b)
    return where(eq(a, 0), _as_tensor(0.0).to(a.dtype), mul(a, log(safe)))


def logaddexp(input, other):
    m = maximum(input, other).detach()
    return add(m, log(add(exp(sub(input, m)), exp(sub(other, m)))))


# ---------------------------------------------------------------------------- casts
class Cast(Function):
    @staticmethod
    def forward(ctx, x, npd):
        ctx.src = x.dtype
        return x.astype(npd)

    @staticmethod
    def backward(ctx, g):
        return g.astype(ctx.src) if ctx.src.kind == "f" else None, None


def cast(input, dtype):
    """Convert to ``dtype``; differentiable between floating dtypes."""
    return Cast.apply(input, _dt.to_dtype(dtype).np)
