"""The ONNX graph under construction: nodes, initializers, and sizes that follow dynamic axes.

Converters (``ember.onnx.ops``) call ``g.op("Relu", [x])`` to add a node and ``g.name(ref)`` to
turn a traced ``Value``/``Const`` into a graph name. Sizes that depend on a dynamic axis are known
from the two traces (one per batch size): ``g.int_vector([(v1, v2), ...], like)`` builds a 1-D
int64 tensor whose entries are constants where both traces agree and ``Shape`` slices of a
graph value where they differ.
"""

from __future__ import annotations

import numpy as np

from ember.onnx._trace import Const, Value

__all__ = ["Graph", "UnsupportedOperatorError", "INT64_MAX", "INT64_MIN"]

INT64_MAX = int(np.iinfo(np.int64).max)
INT64_MIN = int(np.iinfo(np.int64).min)


class UnsupportedOperatorError(RuntimeError):
    """An op in the traced forward pass has no ONNX conversion (or not with these arguments)."""


class Graph:
    """Accumulates ONNX nodes and initializers for one export."""

    def __init__(self, opset, inputs, fold=True):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.opset = opset
        self.inputs = inputs  # the graph-input Values (with .shape2 set)
        self.fold = fold
        self.nodes = []
        self.initializers = []
        self._names = set()
        self._params = {}
        self._consts = {}
        self._shape_cache = {}

    # ---------------------------------------------------------------- names and constants
    def fresh(self, hint):
        base = hint.replace("/", "_")
        name, i = base, 1
        while name in self._names:
            name, i = f"{base}_{i}", i + 1
        self._names.add(name)
        return name

    def reserve(self, name):
        self._names.add(name)

    def name(self, ref, like=None):
        """Graph name of a traced argument: a Value, a Const, or a Python scalar (made a
        constant of ``like``'s dtype)."""
        if isinstance(ref, Value):
            if ref.unavailable:
                raise UnsupportedOperatorError(ref.unavailable)
            if ref.kind == "param":
                if ref.name not in self._params:
                    self._params[ref.name] = self.initializer(ref.array, ref.name, exact=True)
                return self._params[ref.name]
            return ref.name
        if isinstance(ref, Const):
            return self.const(ref.array)
        if ref is None:
            return ""
        dtype = like.dtype if like is not None else np.float32
        return self.const(np.asarray(ref, dtype=dtype))

    def initializer(self, arr, hint, exact=False):
        name = hint if exact and hint not in self._names else self.fresh(hint)
        self._names.add(name)
        self.initializers.append((name, arr))
        return name

    def fill_initializers(self, graph):
        """Write the initializers into ``graph`` (one copy of each array, straight into the
        protobuf: a VGG's half a gigabyte of weights makes every extra copy count)."""
        from onnx import helper

        for name, arr in self.initializers:
            arr = np.asarray(arr)
            t = graph.initializer.add()
            t.name = name
            t.data_type = helper.np_dtype_to_tensor_dtype(arr.dtype)
            t.dims.extend(arr.shape)
            if arr.dtype == np.bool_ or arr.dtype.byteorder == ">":
                t.CopyFrom(self.numpy_helper.from_array(arr, name))
            else:
                t.raw_data = np.ascontiguousarray(arr).tobytes()

    def const(self, arr, hint="const"):
        """An initializer holding ``arr``; small constants are shared."""
        arr = np.asarray(arr)
        key = None
        if arr.size <= 64:
            key = (arr.dtype.str, arr.shape, arr.tobytes())
            if key in self._consts:
                return self._consts[key]
        name = self.initializer(arr, hint)
        if key is not None:
            self._consts[key] = name
        return name

    def ints(self, values):
        return self.const(np.asarray(values, dtype=np.int64))

    # ---------------------------------------------------------------- nodes
    def op(self, op_type, inputs, outputs=None, n_out=1, **attrs):
        """Add a node; returns its output name (or a list of names when ``n_out > 1``)."""
        if outputs is None:
            outputs = [self.fresh(f"{op_type}_out") for _ in range(n_out)]
        else:
            outputs = [self._claim(o) for o in outputs]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.helper.make_node(op_type, list(inputs), outputs,
                                                name=self.fresh(op_type), **attrs))
        return outputs[0] if len(outputs) == 1 else outputs

    def _claim(self, name):
        self._names.add(name)
        return name

    def reduce(self, op_type, x, axes, keepdims, out=None):
        """``Reduce*`` over ``axes`` (None: all), with the axes as input or attribute as the
        opset requires."""
        as_input = op_type == "ReduceSum" or self.opset >= 18
        outputs = None if out is None else [out]
        if axes is None:
            return self.op(op_type, [x], outputs, keepdims=int(keepdims))
        axes = [int(a) for a in axes]
        if as_input:
            return self.op(op_type, [x, self.ints(axes)], outputs, keepdims=int(keepdims))
        return self.op(op_type, [x], outputs, axes=axes, keepdims=int(keepdims))

    def squeeze(self, x, axes, out=None):
        return self.op("Squeeze", [x, self.ints(axes)], None if out is None else [out])

    def unsqueeze(self, x, axes, out=None):
        return self.op("Unsqueeze", [x, self.ints(axes)], None if out is None else [out])

    # ---------------------------------------------------------------- dynamic sizes
    def dim_of(self, v1, v2, candidates=()):
        """A 1-element int64 tensor holding the size that is ``v1`` in the first trace and
        ``v2`` in the second, read with ``Shape`` from a value that has it as a dimension."""
        for ref in list(candidates) + list(self.inputs):
            if not isinstance(ref, Value) or ref.shape2 is None or ref.unavailable:
                continue
            for d, (a, b) in enumerate(zip(ref.shape, ref.shape2)):
                if a == v1 and b == v2:
                    key = (self.name(ref), d)
                    if key not in self._shape_cache:
                        self._shape_cache[key] = self.op("Shape", [key[0]], start=d, end=d + 1)
                    return self._shape_cache[key]
        return None

    def int_vector(self, pairs, candidates=(), what="a size"):
        """1-D int64 tensor from ``[(v1, v2), ...]``: constants where the traces agree, Shape
        slices where they differ (a dynamic axis). Raises if a differing size has no source."""
        if all(a == b for a, b in pairs):
            return self.ints([a for a, _ in pairs])
        parts, run = [], []
        for a, b in pairs:
            if a == b:
                run.append(a)
                continue
            src = self.dim_of(a, b, candidates)
            if src is None:
                raise UnsupportedOperatorError(
                    f"{what} depends on a dynamic axis ({a} vs {b} for two batch sizes) and is "
                    "not a dimension of any graph input; export without dynamic_axes or compute "
                    "it from a tensor's shape")
            if run:
                parts.append(self.ints(run))
                run = []
            parts.append(src)
        if run:
            parts.append(self.ints(run))
        return parts[0] if len(parts) == 1 else self.op("Concat", parts, axis=0)
