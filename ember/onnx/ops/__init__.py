"""One ONNX converter per ember op: ``@converter(OpClass)`` registers ``fn(g, node)``.

A converter reads ``node.args`` (tensor arguments are ``Value``/``Const`` refs, the rest as the
op received them; ``node.twin.args`` are the second trace's), adds nodes with ``g.op`` and returns
one graph name per output (``None`` for an output it cannot produce). ``dynamic`` lists the
argument positions that may differ between the two traces (sizes that follow a dynamic axis);
any other difference is an error.
"""

from __future__ import annotations

import re

from ember.onnx._graph import UnsupportedOperatorError
from ember.onnx._trace import same

__all__ = ["CONVERTERS", "converter", "convert", "public_name", "op_key"]

CONVERTERS = {}

# Public names of ops whose Function class name is not the public one.
_PUBLIC = {
    "CumSum": "ember.cumsum", "_CumProd": "ember.cumprod", "_Inverse": "ember.inverse",
    "_Diagonal": "ember.diagonal", "_DiagEmbed": "ember.diag_embed", "Roll": "ember.roll",
    "FoldOp": "ember.nn.functional.fold", "UnfoldOp": "ember.nn.functional.unfold",
    "MaxUnpoolOp": "ember.nn.functional.max_unpool2d", "Bilinear": "ember.nn.functional.bilinear",
    "Scatter": "ember.scatter", "SetItem": "Tensor.__setitem__", "_MulMask": "dropout (training)",
    "SeparableOp": "ember.nn.functional.interpolate", "PadOp": "ember.nn.functional.pad",
    "CrossEntropy": "ember.nn.functional.cross_entropy", "NLL": "ember.nn.functional.nll_loss",
    "_Atan2": "ember.atan2", "Prod": "ember.prod", "_Overwrite": "Tensor.copy_/fill_",
}


def public_name(fn):
    """A user-facing name for an op class, e.g. ``'ember.cumsum'``."""
    name = fn.__name__
    if name in _PUBLIC:
        return _PUBLIC[name]
    if name == "Z":  # piecewise-constant ops (floor, sign...) share one class shape
        f = fn.forward.__closure__[0].cell_contents if fn.forward.__closure__ else None
        return f"ember.{getattr(f, '__name__', 'unknown')}"
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name.strip("_")).lower()
    snake = re.sub(r"_(op|layer)$", "", snake)
    return f"ember.{snake}"


def converter(*fns, dynamic=()):
    """Register the decorated ``fn(g, node)`` for the op classes ``fns``."""

    def deco(f):
        for fn in fns:
            CONVERTERS[fn] = (f, set(dynamic))
        return f

    return deco


def op_key(fn):
    """The registry key of an op class: the class, or ``("Z", ufunc)`` for the piecewise-constant
    ops (floor, sign...) that are built as a fresh closure class."""
    if fn.__name__ == "Z" and fn.forward.__closure__:
        return ("Z", fn.forward.__closure__[0].cell_contents)
    return fn


def convert(g, node):
    """Convert one traced node; binds the graph names of its outputs."""
    if _foldable(g, node):
        for v, arr in zip(node.outs, node.values):
            v.kind, v.array = "param", arr  # written as an initializer named after the value
        return
    entry = CONVERTERS.get(op_key(node.fn))
    if entry is None:
        raise UnsupportedOperatorError(
            f"ONNX export of '{public_name(node.fn)}' is not supported")
    names = entry[0](g, node)
    if not isinstance(names, (list, tuple)):
        names = [names]
    for v, name in zip(node.outs, names):
        if name is None:
            v.unavailable = (f"ONNX export of output {node.outs.index(v)} of "
                             f"'{public_name(node.fn)}' is not supported")
        elif name != v.name:
            v.name = name


def _foldable(g, node):
    """Every input constant and nothing that differs between the two traces."""
    tw = node.twin
    return bool(g.fold and node.values is not None and tw is not None and
                all(same(a, b) for a, b in zip(node.args, tw.args)) and
                all(v.shape == v.shape2 for v in node.outs))


def unsupported(node, detail):
    """Raise the error for an op that cannot be exported with these arguments."""
    raise UnsupportedOperatorError(
        f"ONNX export of '{public_name(node.fn)}' with {detail} is not supported")


from ember.onnx.ops import math, nn, recurrent, shape  # noqa: F401  (registers converters)
