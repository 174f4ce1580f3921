"""The tracer: run one forward pass and record every op application.

Every ember op goes through ``Function.apply``; while a trace runs, ``Function.apply`` is replaced
(on the class, for the tracing thread only) by a wrapper that records ``(op class, arguments,
outputs)`` after calling the real op. Nothing is patched outside a trace, so the hot path pays
nothing for the exporter. A few Tensor methods that compute without a ``Function`` (indexing
without grad, comparisons, logical ops) are patched for the duration of the trace as well, and
``Tensor._inplace`` re-binds the name of a tensor an in-place op overwrote.

Values are identified by their NumPy array: a ``Tensor`` and its ``detach()`` share one array,
and ops such as ``embedding`` pass raw arrays to ``Function.apply``. Every recorded array is kept
alive until the trace ends so that ids are never reused.

    tr = Tracer(params)
    with tr:
        out = model(*inputs)
    tr.nodes          # [Node(fn, args, outs), ...]
"""

from __future__ import annotations

import threading

import numpy as np

from ember.autograd.function import Function
from ember.ops import indexing as I
from ember.tensor import Tensor

__all__ = ["Value", "Const", "Node", "Tracer", "Compare", "Logical", "same", "is_tracing"]

_LOCK = threading.Lock()
_TRACING = {"tid": None}  # the thread whose forward pass is being traced, if any


def is_tracing() -> bool:
    """Whether the current thread runs a forward pass that ``ember.onnx.export`` traces."""
    return _TRACING["tid"] == threading.get_ident()


class Value:
    """A tensor computed in the graph: a graph input, a parameter/buffer or an op output."""

    __slots__ = ("name", "shape", "dtype", "kind", "array", "shape2", "unavailable", "const")

    def __init__(self, name, arr, kind, const=False):
        self.name, self.shape, self.dtype, self.kind = name, arr.shape, arr.dtype, kind
        self.array = arr if kind == "param" else None
        self.shape2 = None
        self.unavailable = None
        self.const = const  # computed from constants and parameters only (a folding candidate)

    def __repr__(self):
        return f"Value({self.name!r}, {self.shape}, {self.dtype})"


class Const:
    """An array an op received that no traced op produced (written into the model as is)."""

    __slots__ = ("array",)

    def __init__(self, arr):
        self.array = np.array(arr, copy=True)

    @property
    def shape(self):
        return self.array.shape

    @property
    def dtype(self):
        return self.array.dtype

    def __repr__(self):
        return f"Const({self.array.shape}, {self.array.dtype})"


class Node:
    """One op application: ``fn`` (a Function subclass or a marker), args with tensors replaced
    by ``Value``/``Const``, and one ``Value`` per output. ``values`` holds copies of the outputs
    when every input is constant (for constant folding)."""

    __slots__ = ("fn", "args", "outs", "twin", "values")

    def __init__(self, fn, args, outs, values=None):
        self.fn, self.args, self.outs, self.twin, self.values = fn, args, outs, None, values

    def __repr__(self):
        return f"Node({self.fn.__name__}, outs={self.outs})"


class Compare:
    """Marker op for comparisons (computed without a Function): args (a, b, onnx_op)."""


class Logical:
    """Marker op for logical ops on bool tensors: args (a, b or None, onnx_op)."""


def same(a, b):
    """Whether two traced arguments (from the two traces) are the same."""
    if isinstance(a, Const) and isinstance(b, Const):
        return a.shape == b.shape and np.array_equal(a.array, b.array,
                                                     equal_nan=a.dtype.kind == "f")
    if isinstance(a, Value) or isinstance(b, Value):
        return isinstance(a, Value) and isinstance(b, Value)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.dtype) or isinstance(b, np.dtype):
        return a == b
    try:
        return bool(np.all(a == b)) if type(a) is type(b) else False
    except (TypeError, ValueError):
        return a is b


def _is_arr(a):
    return isinstance(a, (Tensor, np.ndarray))


class Tracer:
    """Context manager recording op applications of the current thread.

    Args:
        params: ``{id(array): name}`` of the model's parameters and buffers.
    """

    def __init__(self, params):
        self.params = params
        self.values = {}
        self.keep = []
        self.nodes = []
        self._param_vals = {}
        self._tid = None
        self._saved = None

    # ---------------------------------------------------------------- values
    def bind_input(self, name, arr):
        v = Value(name, arr, "input")
        self.values[id(arr)] = v
        self.keep.append(arr)
        return v

    def ref(self, a):
        """The Value/Const for a Tensor or array argument."""
        arr = a._data if isinstance(a, Tensor) else a
        v = self.values.get(id(arr))
        if v is not None:
            return v
        name = self.params.get(id(arr))
        if name is not None:
            v = self._param_vals.get(name)
            if v is None:
                v = self._param_vals[name] = Value(name, arr, "param")
            return v
        return Const(arr)

    def _arg(self, a):
        if _is_arr(a):
            return self.ref(a)
        if isinstance(a, (tuple, list)) and any(_is_arr(x) for x in a):
            return type(a)(self.ref(x) if _is_arr(x) else x for x in a)
        return a

    def record(self, fn, args, out):
        refs = [self._arg(a) for a in args]
        outs = out if type(out) is tuple else (out,)
        arrs = [o._data if isinstance(o, Tensor) else o for o in outs]
        flat = [r for a in refs for r in (a if isinstance(a, (tuple, list)) else (a,))]
        const = not any(isinstance(r, Value) and r.kind != "param" and not r.const for r in flat)
        vals = []
        for arr in arrs:
            v = Value(f"{_short(fn)}_{len(self.nodes)}" + (f"_{len(vals)}" if len(arrs) > 1
                                                           else ""), arr, "act", const)
            self.values[id(arr)] = v
            self.keep.append(arr)
            vals.append(v)
        self.nodes.append(Node(fn, refs, vals,
                               [np.array(a, copy=True) for a in arrs] if const else None))

    # ---------------------------------------------------------------- patching
    def __enter__(self):
        _LOCK.acquire()
        self._tid = _TRACING["tid"] = threading.get_ident()
        tr = self
        orig_apply = Function.__dict__["apply"].__func__
        orig_inplace = Tensor._inplace
        saved = {"apply": Function.__dict__["apply"], "_inplace": orig_inplace}

        def apply(cls, *args):
            out = orig_apply(cls, *args)
            if threading.get_ident() == tr._tid:
                tr.record(cls, args, out)
            return out

        def _inplace(self, res):
            out = orig_inplace(self, res)
            if threading.get_ident() == tr._tid:
                v = tr.values.get(id(res._data))
                if v is not None:
                    tr.values[id(self._data)] = v
                else:
                    tr.values.pop(id(self._data), None)
            return out

        def getitem(self, idx):
            if threading.get_ident() != tr._tid:
                return I.getitem(self, idx)
            index, basic = I._convert_index(idx, self._data.shape)
            return I.GetItem.apply(self, index, basic)

        Function.apply = classmethod(apply)
        Tensor._inplace = _inplace
        patches = {"__getitem__": getitem}
        for names, onnx_op in (("__eq__ eq", "Equal"), ("__ne__ ne", "NotEqual"),
                               ("__lt__ lt", "Less"), ("__le__ le", "LessOrEqual"),
                               ("__gt__ gt", "Greater"), ("__ge__ ge", "GreaterOrEqual")):
            for n in names.split():
                patches[n] = _recording(tr, Tensor.__dict__[n], Compare, onnx_op)
        for n, onnx_op in (("logical_not", "Not"), ("__invert__", "Not"), ("logical_and", "And"),
                           ("logical_or", "Or"), ("logical_xor", "Xor"), ("__and__", "And"),
                           ("__or__", "Or"), ("__xor__", "Xor")):
            patches[n] = _recording(tr, Tensor.__dict__[n], Logical, onnx_op)
        for n, f in patches.items():
            saved[n] = Tensor.__dict__[n]
            setattr(Tensor, n, f)
        self._saved = saved
        return self

    def __exit__(self, *exc):
        saved = self._saved
        Function.apply = saved.pop("apply")
        for n, f in saved.items():
            setattr(Tensor, n, f)
        self._saved = None
        _TRACING["tid"] = None
        _LOCK.release()
        return False


def _recording(tr, orig, marker, onnx_op):
    """Wrap a Tensor method computed without a Function so that the trace records it."""

    def method(self, *args):
        out = orig(self, *args)
        if threading.get_ident() == tr._tid and isinstance(out, Tensor) and \
                out._data.dtype == np.bool_:
            other = args[0] if args else None
            tr.record(marker, (self, other, onnx_op), out)
        return out

    return method


def _short(fn):
    return fn.__name__.strip("_")

