"""Converters for shape ops and indexing: reshape/view, permute, expand, cat, slices, getitem."""

from __future__ import annotations

import numpy as np

from ember.onnx._graph import INT64_MAX, INT64_MIN
from ember.onnx._trace import Const, Value
from ember.onnx.ops import converter, unsupported
from ember.ops import indexing as I
from ember.ops import shape as S

__all__ = []


def _out(node, k=0):
    return [node.outs[k].name]


def _shapes(ref):
    """(shape in trace 1, shape in trace 2) of a traced argument."""
    s2 = ref.shape2 if isinstance(ref, Value) and ref.shape2 is not None else ref.shape
    return tuple(ref.shape), tuple(s2)


@converter(S.Reshape, dynamic=(1,))
def _reshape(g, node):
    x, shape = node.args
    shape2 = node.twin.args[1]
    xs1, xs2 = _shapes(x)
    target, loose = [], []
    for k, (a, b) in enumerate(zip(shape, shape2)):
        if a == b:
            target.append(a)
        elif k < len(xs1) and xs1[k] == a and xs2[k] == b:
            target.append(0)  # ONNX Reshape: 0 copies the input's size at this index
        else:
            target.append(-1)
            loose.append(k)
    if len(loose) <= 1 and all(s != 0 for s in shape):
        sv = g.ints(target)
    else:
        sv = g.int_vector(list(zip(shape, shape2)), [x], "a reshape size")
    return g.op("Reshape", [g.name(x), sv], _out(node))


@converter(S.Permute)
def _permute(g, node):
    return g.op("Transpose", [g.name(node.args[0])], _out(node), perm=list(node.args[1]))


@converter(S.Expand, dynamic=(1,))
def _expand(g, node):
    x, shape = node.args
    shape2 = node.twin.args[1]
    xs1, xs2 = _shapes(x)
    off = len(shape) - len(xs1)
    pairs = []
    for k, (a, b) in enumerate(zip(shape, shape2)):
        j = k - off
        if a != b and j >= 0 and xs1[j] == a and xs2[j] == b:
            pairs.append((1, 1))  # Expand broadcasts: 1 keeps the input's (dynamic) size
        else:
            pairs.append((a, b))
    return g.op("Expand", [g.name(x), g.int_vector(pairs, [x], "an expand size")], _out(node))


@converter(S.Tile)
def _tile(g, node):
    x, reps = node.args
    reps = tuple(reps)
    xn, nd = g.name(x), len(x.shape)
    if len(reps) > nd:
        xn = g.unsqueeze(xn, list(range(len(reps) - nd)))
    reps = (1,) * (nd - len(reps)) + reps
    return g.op("Tile", [xn, g.ints(reps)], _out(node))


@converter(S.Flip)
def _flip(g, node):
    x, axes = node.args
    n = len(axes)
    return g.op("Slice", [g.name(x), g.ints([-1] * n), g.ints([INT64_MIN] * n), g.ints(axes),
                          g.ints([-1] * n)], _out(node))


@converter(S.Cat)
def _cat(g, node):
    axis, *xs = node.args
    like = next(x for x in xs if isinstance(x, (Value, Const)))
    return g.op("Concat", [g.name(x, like) for x in xs], _out(node), axis=int(axis))


@converter(S.Clone)
def _clone(g, node):
    return g.name(node.args[0])


def _bound(a, b, n1, n2, end):
    """One slice bound from its values in the two traces (sizes n1, n2 of the axis)."""
    if end and a == n1 and b == n2:
        return (INT64_MAX, INT64_MAX)
    if a != b and a - n1 == b - n2:
        return (a - n1, a - n1)  # counted from the end: follows a dynamic axis
    return (a, b)


def _slice(g, x, axes, starts, ends, steps=None, out=None):
    """Slice with per-axis (v1, v2) start/end pairs."""
    ins = [g.name(x), g.int_vector(starts, [x], "a slice start"),
           g.int_vector(ends, [x], "a slice end"), g.ints(axes)]
    if steps and any(s != 1 for s in steps):
        ins.append(g.ints(steps))
    return g.op("Slice", ins, None if out is None else [out])


@converter(S._Slice, dynamic=(2, 3))
def _slice_op(g, node):
    x, axis, start, stop, squeeze = node.args
    _, _, start2, stop2, _ = node.twin.args
    xs1, xs2 = _shapes(x)
    n1, n2 = xs1[axis], xs2[axis]
    if squeeze:
        if start != start2:
            unsupported(node, "an index that follows a dynamic axis")
        return g.op("Gather", [g.name(x), g.const(np.asarray(start, np.int64))], _out(node),
                    axis=int(axis))
    return _slice(g, x, [axis], [_bound(start, start2, n1, n2, False)],
                  [_bound(stop, stop2, n1, n2, True)], out=node.outs[0].name)


@converter(S.SplitOp, dynamic=(2,))
def _split(g, node):
    x, axis, bounds, squeeze = node.args
    bounds2 = node.twin.args[2]
    xs1, xs2 = _shapes(x)
    n1, n2 = xs1[axis], xs2[axis]
    outs = []
    for k, ((s, e), (s2, e2)) in enumerate(zip(bounds, bounds2)):
        name = node.outs[k].name
        if squeeze:
            outs.append(g.op("Gather", [g.name(x), g.const(np.asarray(s, np.int64))], [name],
                             axis=int(axis)))
        else:
            outs.append(_slice(g, x, [axis], [_bound(s, s2, n1, n2, False)],
                               [_bound(e, e2, n1, n2, True)], out=name))
    return outs


def _expand_ellipsis(items, nd):
    used = sum(1 for i in items if i is not None and i is not Ellipsis)
    out = []
    for i in items:
        if i is Ellipsis:
            out += [slice(None)] * (nd - used)
        else:
            out.append(i)
    return out


@converter(I.GetItem, dynamic=(1,))
def _getitem(g, node):
    x, idx, _ = node.args
    xs1, xs2 = _shapes(x)
    nd = len(xs1)
    items = _expand_ellipsis(list(idx), nd)
    items2 = _expand_ellipsis(list(node.twin.args[1]), nd)
    axes, starts, ends, steps = [], [], [], []
    squeeze, gathers, unsq = [], [], []
    pos = d = 0
    for it, it2 in zip(items, items2):
        if it is None:
            unsq.append(pos)
            pos += 1
            continue
        if isinstance(it, (Value, Const)):
            if it.dtype == np.bool_:
                unsupported(node, "a boolean mask index (its result size depends on the data)")
            gathers.append((d, it))
            pos += len(it.shape)
            d += 1
            continue
        n1, n2 = xs1[d], xs2[d]
        if isinstance(it, (int, np.integer)):
            a, b = int(it), int(it2)
            a, b = (a + n1 if a < 0 else a), (b + n2 if b < 0 else b)
            start = _bound(a, b, n1, n2, False)
            if start[0] != start[1]:
                unsupported(node, "an index that follows a dynamic axis")
            axes.append(d)
            starts.append(start)
            ends.append((INT64_MAX, INT64_MAX) if start[0] == -1 else (start[0] + 1,) * 2)
            steps.append(1)
            squeeze.append(d)
            d += 1
            continue
        s1, s2 = it.indices(n1), it2.indices(n2)
        if s1[2] != s2[2]:
            unsupported(node, "a slice step that follows a dynamic axis")
        if not (s1 == (0, n1, 1) and s2 == (0, n2, 1)):
            axes.append(d)
            starts.append(_bound(s1[0], s2[0], n1, n2, False))
            ends.append(_bound(s1[1], s2[1], n1, n2, True))
            steps.append(s1[2])
        pos += 1
        d += 1
    if gathers and (squeeze or len(gathers) > 1):
        unsupported(node, "an index mixing tensors with integers or several tensors")
    cur = g.name(x)
    if axes:
        cur = _slice(g, x, axes, starts, ends, steps)
    shift = 0
    for ax, ref in gathers:
        cur = g.op("Gather", [cur, g.name(ref)], axis=ax)
        shift = len(ref.shape) - 1
    if squeeze:
        cur = g.squeeze(cur, [a + (shift if gathers and a > gathers[0][0] else 0)
                              for a in squeeze])
    if unsq:
        cur = g.unsqueeze(cur, unsq)
    return cur


@converter(I.IndexSelect)
def _index_select(g, node):
    x, axis, idx = node.args
    return g.op("Gather", [g.name(x), g.name(idx)], _out(node), axis=int(axis))


@converter(I.Gather)
def _gather(g, node):
    x, axis, idx = node.args
    return g.op("GatherElements", [g.name(x), g.name(idx)], _out(node), axis=int(axis))


@converter(I.MaskedFill)
def _masked_fill(g, node):
    x, mask, value = node.args
    v = g.name(value, x) if isinstance(value, (Value, Const)) else \
        g.const(np.asarray(value, dtype=x.dtype))
    return g.op("Where", [g.name(mask), v, g.name(x)], _out(node))


@converter(I._Tri)
def _tri(g, node):
    x, k, upper = node.args
    return g.op("Trilu", [g.name(x), g.const(np.asarray(k, np.int64))], _out(node),
                upper=int(upper))
