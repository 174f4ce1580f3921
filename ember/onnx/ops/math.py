"""Converters for elementwise math, activations, reductions, comparisons and casts."""

from __future__ import annotations

import math

import numpy as np

from ember.onnx._trace import Compare, Const, Logical, Value
from ember.onnx.ops import converter, unsupported
from ember.ops import activation as A
from ember.ops import elementwise as E
from ember.ops import reduction as R

__all__ = []


def _x(g, node, i=0):
    return g.name(node.args[i])


def _out(node, k=0):
    return [node.outs[k].name]


def _scalar(g, value, like):
    return g.const(np.asarray(value, dtype=like.dtype))


# ---------------------------------------------------------------- binary arithmetic
_BINARY = {E.Add: "Add", E.Sub: "Sub", E.Mul: "Mul", E.Div: "Div", E.Pow: "Pow"}


def _binary(g, node):
    a, b = node.args[0], node.args[1]
    like = a if isinstance(a, (Value, Const)) else b
    return g.op(_BINARY[node.fn], [g.name(a, like), g.name(b, like)], _out(node))


for _cls in _BINARY:
    converter(_cls)(_binary)


@converter(E._MaxMin)
def _maxmin(g, node):
    a, b, is_max = node.args
    like = a if isinstance(a, (Value, Const)) else b
    return g.op("Max" if is_max else "Min", [g.name(a, like), g.name(b, like)], _out(node))


@converter(E.Where)
def _where(g, node):
    c, a, b = node.args
    like = a if isinstance(a, (Value, Const)) else b
    return g.op("Where", [g.name(c), g.name(a, like), g.name(b, like)], _out(node))


@converter(E.Cast)
def _cast(g, node):
    from onnx import helper

    return g.op("Cast", [_x(g, node)], _out(node),
                to=helper.np_dtype_to_tensor_dtype(np.dtype(node.args[1])))


@converter(E.Clamp)
def _clamp(g, node):
    x, lo, hi = node.args
    like = node.outs[0]
    return g.op("Clip", [g.name(x), "" if lo is None else _scalar(g, lo, like),
                         "" if hi is None else _scalar(g, hi, like)], _out(node))


# ---------------------------------------------------------------- unary math
_UNARY = {E.Exp: "Exp", E.Log: "Log", E.Sqrt: "Sqrt", E.Sin: "Sin", E.Cos: "Cos", E.Tan: "Tan",
          E.Asin: "Asin", E.Acos: "Acos", E.Atan: "Atan", E.Sinh: "Sinh", E.Cosh: "Cosh",
          E.Tanh: "Tanh", E.Sigmoid: "Sigmoid", E.Reciprocal: "Reciprocal", E.Erf: "Erf",
          E.Neg: "Neg", E.Abs: "Abs", E.Relu: "Relu"}


def _unary(g, node):
    return g.op(_UNARY[node.fn], [_x(g, node)], _out(node))


for _cls in _UNARY:
    converter(_cls)(_unary)


@converter(E.Rsqrt)
def _rsqrt(g, node):
    return g.op("Reciprocal", [g.op("Sqrt", [_x(g, node)])], _out(node))


@converter(E.Square)
def _square(g, node):
    x = _x(g, node)
    return g.op("Mul", [x, x], _out(node))


@converter(E.Log1p)
def _log1p(g, node):
    x = _x(g, node)
    return g.op("Log", [g.op("Add", [x, _scalar(g, 1, node.outs[0])])], _out(node))


@converter(E.Expm1)
def _expm1(g, node):
    return g.op("Sub", [g.op("Exp", [_x(g, node)]), _scalar(g, 1, node.outs[0])], _out(node))


@converter(E.Exp2, E.Log2, E.Log10)
def _exp_log_base(g, node):
    x, like = _x(g, node), node.outs[0]
    if node.fn is E.Exp2:
        return g.op("Pow", [_scalar(g, 2, like), x], _out(node))
    base = 2.0 if node.fn is E.Log2 else 10.0
    return g.op("Div", [g.op("Log", [x]), _scalar(g, math.log(base), like)], _out(node))


_PIECEWISE = {np.floor: "Floor", np.ceil: "Ceil", np.sign: "Sign", np.round: "Round"}


def _piecewise(g, node):
    f = node.fn.forward.__closure__[0].cell_contents
    return g.op(_PIECEWISE[f], [_x(g, node)], _out(node))


for _f in _PIECEWISE:
    converter(("Z", _f))(_piecewise)


# ---------------------------------------------------------------- activations
@converter(A.Softmax, A.LogSoftmax, R.Softmax, R.LogSoftmax)
def _softmax(g, node):
    x, axis = node.args
    if axis is None:
        unsupported(node, "dim=None")
    op = "Softmax" if node.fn in (A.Softmax, R.Softmax) else "LogSoftmax"
    return g.op(op, [g.name(x)], _out(node), axis=int(axis))


@converter(A.LeakyRelu)
def _leaky(g, node):
    return g.op("LeakyRelu", [_x(g, node)], _out(node), alpha=float(node.args[1]))


@converter(A.Elu)
def _elu(g, node):
    _, alpha, scale, inner = node.args
    x = _x(g, node)
    if scale == 1.0 and inner == 1.0:
        return g.op("Elu", [x], _out(node), alpha=float(alpha))
    if inner == 1.0:
        return g.op("Selu", [x], _out(node), alpha=float(alpha), gamma=float(scale))
    if scale == 1.0 and abs(inner * alpha - 1.0) < 1e-12:
        return g.op("Celu", [x], _out(node), alpha=float(alpha))
    unsupported(node, f"alpha={alpha}, scale={scale}, input_scale={inner}")


@converter(A.Silu)
def _silu(g, node):
    x = _x(g, node)
    return g.op("Mul", [x, g.op("Sigmoid", [x])], _out(node))


@converter(A.Gelu)
def _gelu(g, node):
    x, like = _x(g, node), node.outs[0]
    half = _scalar(g, 0.5, like)
    one = _scalar(g, 1.0, like)
    if node.args[1] == "tanh":
        cube = g.op("Mul", [g.op("Mul", [x, x]), x])
        inner = g.op("Add", [x, g.op("Mul", [cube, _scalar(g, 0.044715, like)])])
        t = g.op("Tanh", [g.op("Mul", [inner, _scalar(g, math.sqrt(2 / math.pi), like)])])
    else:
        t = g.op("Erf", [g.op("Div", [x, _scalar(g, math.sqrt(2.0), like)])])
    return g.op("Mul", [g.op("Mul", [x, half]), g.op("Add", [t, one])], _out(node))


@converter(A.Hardtanh)
def _hardtanh(g, node):
    _, lo, hi = node.args
    like = node.outs[0]
    return g.op("Clip", [_x(g, node), _scalar(g, lo, like), _scalar(g, hi, like)], _out(node))


@converter(A.Hardswish, A.Hardsigmoid, A.Softsign)
def _hard(g, node):
    x = _x(g, node)
    if node.fn is A.Hardswish:
        return g.op("HardSwish", [x], _out(node))
    if node.fn is A.Softsign:
        return g.op("Softsign", [x], _out(node))
    return g.op("HardSigmoid", [x], _out(node), alpha=1.0 / 6, beta=0.5)


@converter(A.Tanhshrink)
def _tanhshrink(g, node):
    x = _x(g, node)
    return g.op("Sub", [x, g.op("Tanh", [x])], _out(node))


@converter(A.LogSigmoid)
def _logsigmoid(g, node):
    return g.op("Neg", [g.op("Softplus", [g.op("Neg", [_x(g, node)])])], _out(node))


@converter(A.Softplus)
def _softplus(g, node):
    _, beta, _thr = node.args  # log1p(exp(x)) equals x beyond the threshold to float precision
    x, like = _x(g, node), node.outs[0]
    if beta == 1.0:
        return g.op("Softplus", [x], _out(node))
    b = _scalar(g, beta, like)
    return g.op("Div", [g.op("Softplus", [g.op("Mul", [x, b])]), b], _out(node))


@converter(A.Mish)
def _mish(g, node):
    x = _x(g, node)
    return g.op("Mul", [x, g.op("Tanh", [g.op("Softplus", [x])])], _out(node))


@converter(A.Threshold)
def _threshold(g, node):
    _, t, v = node.args
    x, like = _x(g, node), node.outs[0]
    cond = g.op("Greater", [x, _scalar(g, t, like)])
    return g.op("Where", [cond, x, _scalar(g, v, like)], _out(node))


@converter(A.Softshrink, A.Hardshrink)
def _shrink(g, node):
    lam = float(node.args[1])
    bias = lam if node.fn is A.Softshrink else 0.0
    return g.op("Shrink", [_x(g, node)], _out(node), lambd=lam, bias=bias)


@converter(A.Prelu)
def _prelu(g, node):
    x, w = node.args
    slope = g.name(w)
    if len(x.shape) >= 2 and int(np.prod(w.shape)) > 1:
        shape = (-1,) + (1,) * (len(x.shape) - 2)
        if isinstance(w, Const) or (isinstance(w, Value) and w.kind == "param" and g.fold):
            slope = g.const(np.asarray(w.array).reshape(shape), "prelu_slope")
        else:
            slope = g.op("Reshape", [slope, g.ints(shape)])
    return g.op("PRelu", [g.name(x), slope], _out(node))


# ---------------------------------------------------------------- reductions
@converter(R.Sum, R.Mean)
def _sum_mean(g, node):
    x, axes, keepdim = node.args
    return g.reduce("ReduceSum" if node.fn is R.Sum else "ReduceMean", g.name(x), axes, keepdim,
                    node.outs[0].name)


@converter(R._Extreme)
def _extreme(g, node):
    x, axes, keepdim, is_max = node.args
    return g.reduce("ReduceMax" if is_max else "ReduceMin", g.name(x), axes, keepdim,
                    node.outs[0].name)


@converter(R.LogSumExp)
def _logsumexp(g, node):
    x, axes, keepdim = node.args
    return g.reduce("ReduceLogSumExp", g.name(x), axes, keepdim, node.outs[0].name)


@converter(R.Var)
def _var(g, node):
    return _variance(g, node, _out(node))


@converter(R.Std)
def _std(g, node):
    return g.op("Sqrt", [_variance(g, node)], _out(node))


def _variance(g, node, out=None):
    x, axes, correction, keepdim = node.args
    xn = g.name(x)
    n = int(np.prod([x.shape[a] for a in axes])) if axes is not None else int(np.prod(x.shape))
    if node.twin is not None:
        xs2 = node.twin.args[0].shape
        n2 = int(np.prod([xs2[a] for a in axes])) if axes is not None else int(np.prod(xs2))
        if n2 != n:
            unsupported(node, "a reduction over a dynamic axis")
    centered = g.op("Sub", [xn, g.reduce("ReduceMean", xn, axes, True)])
    sq = g.reduce("ReduceSum", g.op("Mul", [centered, centered]), axes, keepdim)
    return g.op("Div", [sq, _scalar(g, max(n - correction, 0), node.outs[0])], out)


@converter(R.CumSum)
def _cumsum(g, node):
    x, axis = node.args
    return g.op("CumSum", [g.name(x), g.const(np.asarray(axis, dtype=np.int64))], _out(node))


# ---------------------------------------------------------------- comparisons and logic
@converter(Compare)
def _compare(g, node):
    a, b, op = node.args
    like = a if isinstance(a, (Value, Const)) else b
    an, bn = g.name(a, like), g.name(b, like)
    if op == "NotEqual":
        return g.op("Not", [g.op("Equal", [an, bn])], _out(node))
    return g.op(op, [an, bn], _out(node))


@converter(Logical)
def _logical(g, node):
    a, b, op = node.args
    if op == "Not":
        return g.op("Not", [g.name(a)], _out(node))
    return g.op(op, [g.name(a), g.name(b, a)], _out(node))
