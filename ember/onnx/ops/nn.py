"""Converters for layers: linear/matmul, embedding, convolution, pooling, normalization,
attention and padding."""

from __future__ import annotations

import numpy as np

from ember.onnx._trace import Const, Value
from ember.onnx.ops import converter, unsupported
from ember.ops import _adaptive_pool as AP
from ember.ops import attention as AT
from ember.ops import conv as C
from ember.ops import linalg as L
from ember.ops import linear as LI
from ember.ops import normalization as N
from ember.ops import pooling as P
from ember.ops import sampling as SA

__all__ = []


def _out(node, k=0):
    return [node.outs[k].name]


def _const_array(g, ref):
    """The array of a constant or (when folding) a parameter, else None."""
    if isinstance(ref, Const):
        return ref.array
    if isinstance(ref, Value) and ref.kind == "param" and g.fold:
        return ref.array
    return None


def _derived(g, ref, fn, hint, op_fallback):
    """``fn(array)`` as a new initializer when ``ref`` is constant, else ``op_fallback(name)``."""
    arr = _const_array(g, ref)
    if arr is not None:
        return g.const(fn(np.asarray(arr)), f"{getattr(ref, 'name', 'const')}_{hint}")
    return op_fallback(g.name(ref))


# ---------------------------------------------------------------- linear algebra
@converter(LI.Linear)
def _linear(g, node):
    x, w, b = node.args
    if len(x.shape) == 2:
        ins = [g.name(x), g.name(w)] + ([g.name(b)] if b is not None else [])
        return g.op("Gemm", ins, _out(node), transB=1)
    wt = _derived(g, w, lambda a: np.ascontiguousarray(a.T), "T",
                  lambda name: g.op("Transpose", [name], perm=[1, 0]))
    y = g.op("MatMul", [g.name(x), wt], None if b is not None else _out(node))
    return y if b is None else g.op("Add", [y, g.name(b)], _out(node))


@converter(L.MatMul)
def _matmul(g, node):
    return g.op("MatMul", [g.name(node.args[0]), g.name(node.args[1])], _out(node))


@converter(L.Einsum)
def _einsum(g, node):
    eq, *xs = node.args
    return g.op("Einsum", [g.name(x) for x in xs], _out(node), equation=eq.replace(" ", ""))


@converter(LI.Embedding)
def _embedding(g, node):
    w, idx = node.args[0], node.args[1]
    return g.op("Gather", [g.name(w), g.name(idx)], _out(node), axis=0)


# ---------------------------------------------------------------- convolution
def _check4(node, x):
    if len(x.shape) != 4:
        unsupported(node, f"a {len(x.shape)}-D input (expected 4-D after batching)")


@converter(C.Conv2dOp)
def _conv(g, node):
    x, w, b, stride, pads, dilation, groups = node.args
    _check4(node, x)
    ins = [g.name(x), g.name(w)] + ([g.name(b)] if b is not None else [])
    return g.op("Conv", ins, _out(node), kernel_shape=list(w.shape[2:]), strides=list(stride),
                pads=[pads[0], pads[2], pads[1], pads[3]], dilations=list(dilation),
                group=int(groups))


@converter(C.ConvTranspose2dOp)
def _conv_t(g, node):
    x, w, b, stride, padding, output_padding, groups, dilation = node.args
    _check4(node, x)
    ins = [g.name(x), g.name(w)] + ([g.name(b)] if b is not None else [])
    return g.op("ConvTranspose", ins, _out(node), kernel_shape=list(w.shape[2:]),
                strides=list(stride), pads=[padding[0], padding[1], padding[0], padding[1]],
                output_padding=list(output_padding), dilations=list(dilation), group=int(groups))


# ---------------------------------------------------------------- pooling
def _ceil_mode(in_hw, kernel, stride, pads, dilation, out_hw):
    floor = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, k, s, p, d in
                  zip(in_hw, kernel, stride, pads, dilation))
    return int(floor != tuple(out_hw))


@converter(P.MaxPool2dOp)
def _max_pool(g, node):
    x, kernel, stride, padding, dilation, out_hw, _want_idx = node.args
    _check4(node, x)
    y = g.op("MaxPool", [g.name(x)], _out(node), kernel_shape=list(kernel),
             strides=list(stride), pads=list(padding) * 2, dilations=list(dilation),
             ceil_mode=_ceil_mode(x.shape[2:], kernel, stride, padding, dilation, out_hw))
    return [y, None]


@converter(P.AvgPool2dOp)
def _avg_pool(g, node):
    x, kernel, stride, padding, out_hw, div = node.args
    _check4(node, x)
    div = np.asarray(div.array)
    k = kernel[0] * kernel[1]
    ceil = _ceil_mode(x.shape[2:], kernel, stride, padding, (1, 1), out_hw)
    if np.all(div == k):
        include = 1
    else:
        counts = np.multiply.outer(*[_window_counts(n, kk, s, p, o) for n, kk, s, p, o in
                                     zip(x.shape[2:], kernel, stride, padding, out_hw)])
        if not np.array_equal(div.reshape(counts.shape), counts):
            unsupported(node, "divisor_override")
        include = 0
    return g.op("AveragePool", [g.name(x)], _out(node), kernel_shape=list(kernel),
                strides=list(stride), pads=list(padding) * 2, ceil_mode=ceil,
                count_include_pad=include)


def _window_counts(n, k, s, p, o):
    start = np.arange(o) * s - p
    return (np.minimum(start + k, n) - np.maximum(start, 0)).astype(np.float64)


def _avg_matrix(n, o):
    m = np.zeros((o, n), dtype=np.float32)
    for i in range(o):
        a, b = (i * n) // o, -(-(i + 1) * n // o)
        m[i, a:b] = 1.0 / (b - a)
    return m


@converter(AP.AdaptiveAvgPool2dOp)
def _adaptive_avg(g, node):
    x, (oh, ow) = node.args
    h, w = x.shape[-2:]
    xn = g.name(x)
    if (oh, ow) == (1, 1):
        if len(x.shape) == 4:
            return g.op("GlobalAveragePool", [xn], _out(node))
        return g.reduce("ReduceMean", xn, [-2, -1], True, node.outs[0].name)
    if h % oh == 0 and w % ow == 0 and len(x.shape) == 4:
        k = [h // oh, w // ow]
        return g.op("AveragePool", [xn], _out(node), kernel_shape=k, strides=k)
    # General case: two averaging matrices, out = A_h @ x @ A_w.T (exact, any sizes).
    ah = _avg_matrix(h, oh).astype(x.dtype)
    awt = np.ascontiguousarray(_avg_matrix(w, ow).T.astype(x.dtype))
    t = g.op("MatMul", [xn, g.const(awt, "adaptive_pool_w")])
    return g.op("MatMul", [g.const(ah, "adaptive_pool_h"), t], _out(node))


@converter(AP.AdaptiveMaxPool2dOp)
def _adaptive_max(g, node):
    x, (oh, ow) = node.args
    h, w = x.shape[-2:]
    _check4(node, x)
    if (oh, ow) == (1, 1):
        return [g.op("GlobalMaxPool", [g.name(x)], _out(node)), None]
    if h % oh or w % ow:
        unsupported(node, f"output size {(oh, ow)} not dividing the input {(h, w)}")
    k = [h // oh, w // ow]
    return [g.op("MaxPool", [g.name(x)], _out(node), kernel_shape=k, strides=k), None]


# ---------------------------------------------------------------- normalization
def _ones_or(g, ref, shape, dtype, value=1.0):
    if ref is not None:
        return g.name(ref)
    return g.const(np.full(shape, value, dtype=dtype))


@converter(N.BatchNormOp)
def _batch_norm(g, node):
    x, w, b, rm, rv, training, _momentum, eps = node.args
    if training:
        unsupported(node, "training=True (export runs the model in eval mode; a BatchNorm "
                          "without running statistics always uses batch statistics)")
    c = x.shape[1]
    return g.op("BatchNormalization",
                [g.name(x), _ones_or(g, w, (c,), x.dtype), _ones_or(g, b, (c,), x.dtype, 0.0),
                 g.name(rm), g.name(rv)], _out(node), epsilon=float(eps))


@converter(N.LayerNormOp)
def _layer_norm(g, node):
    x, w, b, d, eps = node.args
    axis, prod = len(x.shape), 1
    while prod < d and axis > 0:
        axis -= 1
        prod *= x.shape[axis]
    shape = tuple(x.shape[axis:])
    ins = [g.name(x), _ones_or(g, w, shape, x.dtype)]
    if b is not None:
        ins.append(g.name(b))
    if w is not None and tuple(w.shape) != shape:
        unsupported(node, f"a weight of shape {tuple(w.shape)} for normalized shape {shape}")
    return g.op("LayerNormalization", ins, _out(node), axis=axis - len(x.shape),
                epsilon=float(eps))


@converter(N.GroupNormOp)
def _group_norm(g, node):
    x, w, b, groups, eps = node.args
    xn = g.name(x)
    like = np.dtype(x.dtype)
    x3 = g.op("Reshape", [xn, g.ints([0, int(groups), -1])])
    mean = g.reduce("ReduceMean", x3, [2], True)
    xc = g.op("Sub", [x3, mean])
    var = g.reduce("ReduceMean", g.op("Mul", [xc, xc]), [2], True)
    std = g.op("Sqrt", [g.op("Add", [var, g.const(np.asarray(eps, like))])])
    y = g.op("Reshape", [g.op("Div", [xc, std]), g.op("Shape", [xn])])
    shape = (-1,) + (1,) * (len(x.shape) - 2)
    for ref, op in ((w, "Mul"), (b, "Add")):
        if ref is not None:
            p = _derived(g, ref, lambda a: a.reshape(shape), "col",
                         lambda name: g.op("Reshape", [name, g.ints(shape)]))
            y = g.op(op, [y, p])
    return y


# ---------------------------------------------------------------- attention
@converter(AT.Attention)
def _attention(g, node):
    q, k, v, mask, dropout_p, is_causal, scale, groups, need_weights = node.args
    if groups != 1:
        unsupported(node, "grouped-query attention (enable_gqa)")
    if dropout_p > 0:
        unsupported(node, "dropout_p > 0")
    like = np.dtype(q.dtype)
    nd = len(k.shape)
    perm = list(range(nd - 2)) + [nd - 1, nd - 2]
    kt = g.op("Transpose", [g.name(k)], perm=perm)
    s = g.op("Mul", [g.op("MatMul", [g.name(q), kt]), g.const(np.asarray(scale, like))])
    neg = g.const(np.asarray(-np.inf, like))
    if is_causal:
        L, S = q.shape[-2], k.shape[-2]
        if node.twin is not None and (node.twin.args[0].shape[-2], node.twin.args[1].shape[-2]) \
                != (L, S):
            unsupported(node, "is_causal with a dynamic sequence length")
        s = g.op("Where", [g.const(np.tri(L, S, dtype=bool)), s, neg])
    if mask is not None:
        if mask.dtype == np.bool_:
            s = g.op("Where", [g.name(mask), s, neg])
        else:
            s = g.op("Add", [s, g.name(mask)])
    p = g.op("Softmax", [s], axis=-1)
    out = g.op("MatMul", [p, g.name(v)], _out(node))
    return [out, p] if need_weights else out


# ---------------------------------------------------------------- padding
@converter(SA.PadOp)
def _pad(g, node):
    x, pairs, mode, value = node.args
    nd = len(x.shape)
    lead = nd - len(pairs)
    begins = [0] * lead + [lo for lo, _ in pairs]
    ends = [0] * lead + [hi for _, hi in pairs]
    onnx_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge",
                 "circular": "wrap"}[mode]
    ins = [g.name(x), g.ints(begins + ends)]
    if mode == "constant":
        ins.append(g.const(np.asarray(value, dtype=x.dtype)))
    elif mode == "circular" and g.opset < 19:
        unsupported(node, "mode='circular' below opset 19")
    return g.op("Pad", ins, _out(node), mode=onnx_mode)

