"""Graph nodes. ``Function`` is the array face used by ember's own ops; ``TensorFunction`` is the
PyTorch-style face users subclass as ``ember.autograd.Function``. Both ride on one engine.

An op's ``ctx`` *is* its graph node (as in PyTorch): ``apply`` creates it, ``forward`` fills it,
and when an input requires grad it becomes ``grad_fn`` of the outputs.

Rules for op authors (array face):
- ``forward(ctx, *args)`` receives NumPy arrays where the caller passed Tensors, other values as
  they are; it returns an array or a tuple of arrays.
- ``backward(ctx, *grads)`` receives one gradient array per output (zeros for unused outputs of a
  multi-output op) and returns one gradient per forward argument (``None`` for non-tensors or where
  ``ctx.needs_input_grad`` is false). It must never modify a gradient array it received in place.
- Large arrays kept for backward go through ``ctx.save_for_backward`` so they are freed after
  backward and checked against in-place modification.
"""

from __future__ import annotations

import inspect

import numpy as np

from ember.autograd.grad_mode import _State, no_grad
from ember.backend.kernels import unbroadcast
from ember.tensor import Tensor, _wrap

__all__ = ["Function", "TensorFunction", "FunctionCtx", "once_differentiable"]

_ndarray = np.ndarray
_FALSES = [(False,) * n for n in range(16)]
_FREED = "freed"


def _make_out(arr, ctx, oi):
    if type(arr) is not _ndarray:
        arr = np.asarray(arr)
    t = _wrap(arr)
    if arr.dtype.kind == "f":
        t._rg = True
        t.grad_fn = ctx
        t._oi = oi
    return t


class Function:
    """Base of ember's ops: ``forward``/``backward`` on raw arrays; ``apply`` records the node."""

    __slots__ = ("next", "needs_input_grad", "_saved", "_vers", "_hooks", "__dict__", "__weakref__")
    _tensor_face = False

    @classmethod
    def apply(cls, *args):
        ctx = cls.__new__(cls)
        ctx._saved = None
        rec = False
        if _State.enabled:
            # one pass over the arguments: the arrays for forward, and where any requires grad,
            # which do and the graph edges to their nodes (a leaf: the tensor itself)
            arrays, needs, edges = [], [], []
            for a in args:
                if isinstance(a, Tensor):
                    arrays.append(a._data)
                    if a._rg:
                        rec = True
                        needs.append(True)
                        f = a.grad_fn
                        edges.append((a, 0) if f is None else (f, a._oi))
                        continue
                else:
                    arrays.append(a)
                needs.append(False)
                edges.append(None)
        else:
            arrays = [a._data if isinstance(a, Tensor) else a for a in args]
        if not rec:
            ctx.needs_input_grad = _FALSES[len(args)] if len(args) < 16 else (False,) * len(args)
            out = cls.forward(ctx, *arrays)
            if type(out) is tuple:
                return tuple(_wrap(o if type(o) is _ndarray else np.asarray(o)) for o in out)
            return _wrap(out if type(out) is _ndarray else np.asarray(out))
        ctx.needs_input_grad = tuple(needs)
        ctx._hooks = None
        out = cls.forward(ctx, *arrays)
        ctx.next = tuple(edges)
        if type(out) is tuple:
            res = tuple(_make_out(o, ctx, i) for i, o in enumerate(out))
        else:
            res = _make_out(out, ctx, 0)
        saved = ctx._saved
        if saved:
            ctx._vers = _record_versions(saved, args, res)
        return res

    def save_for_backward(self, *arrays):
        self._saved = arrays

    @property
    def saved_tensors(self):
        s = self._saved
        if s is _FREED:
            raise RuntimeError(_FREED_MSG)
        return s if s is not None else ()

    def mark_non_differentiable(self, *outputs):
        pass

    def set_materialize_grads(self, value):
        pass

    def name(self):
        return type(self).__name__ + "Backward0"

    def __repr__(self):
        return f"<{self.name()} object at {hex(id(self))}>"

    @property
    def next_functions(self):
        out = []
        for e in getattr(self, "next", ()) or ():
            if e is None:
                out.append((None, 0))
            elif isinstance(e[0], Tensor):
                out.append((_AccumulateGrad(e[0]), 0))
            else:
                out.append(e)
        return tuple(out)

    def register_hook(self, fn):
        raise NotImplementedError("Node.register_hook is not supported; use Tensor.register_hook")

    def _run_backward(self, grads):
        return type(self).backward(self, *grads)


class _AccumulateGrad:
    __slots__ = ("variable",)

    def __init__(self, v):
        self.variable = v

    def name(self):
        return "AccumulateGrad"

    def __repr__(self):
        return f"<AccumulateGrad object at {hex(id(self))}>"

    next_functions = ()


def _record_versions(saved, args, outs):
    """Remember the version of each input/output tensor whose array was saved for backward."""
    vers = []
    outs = outs if type(outs) is tuple else (outs,)
    for i, s in enumerate(saved):
        if type(s) is not _ndarray:
            continue
        for t in args:
            if isinstance(t, Tensor) and t._data is s:
                vc = t._vc
                if vc is None:
                    vc = t._vc = [0]
                vers.append((i, vc, vc[0], "input", t.grad_fn))
                break
        else:
            for t in outs:
                if t._data is s:
                    vc = t._vc = t._vc or [0]
                    vers.append((i, vc, vc[0], "output", None))
                    break
    return vers


_FREED_MSG = (
    "Trying to backward through the graph a second time (or directly access saved tensors after "
    "they have already been freed). Saved intermediate values of the graph are freed when you call "
    ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
    "graph a second time or if you need to access saved tensors after calling backward."
)


class TensorFunction(Function):
    """PyTorch's ``torch.autograd.Function``: subclass it with static ``forward(ctx, ...)`` and
    ``backward(ctx, ...)`` working on Tensors, then call ``MyFn.apply(...)``.

    Example::

        class Square(ember.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            def backward(ctx, grad):
                (x,) = ctx.saved_tensors
                return 2 * x * grad
    """

    _tensor_face = True

    @staticmethod
    def forward(*args, **kwargs):
        """``forward(ctx, *args)``, or ``forward(*args)`` with a ``setup_context``."""
        raise NotImplementedError(
            "You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def setup_context(ctx, inputs, output):
        """Optional: fill ``ctx`` from the ``inputs`` tuple and ``output`` of a ``forward``
        that takes no ``ctx`` (PyTorch's second style)."""
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError(
            "You must implement either the backward or vjp method for your custom "
            "autograd.Function to use it with backward mode AD.")

    vjp = backward  # as in PyTorch, a subclass defines one of the two

    @classmethod
    def apply(cls, *args, **kwargs):
        ctx = cls.__new__(cls)
        ctx._saved = None
        ctx._hooks = None
        ctx._nondiff = ()
        ctx._materialize = True
        separate = cls.setup_context is not TensorFunction.setup_context
        if separate:  # PyTorch binds keyword and default arguments to forward's signature
            sig = _SIGNATURES.get(cls.forward)
            if sig is None:  # inspect.signature takes ~10 us: once per forward function
                sig = _SIGNATURES[cls.forward] = inspect.signature(cls.forward)
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            args, kwargs = bound.args, {}
        rec = _State.enabled and any(isinstance(a, Tensor) and a._rg for a in args)
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a._rg for a in args)
        with no_grad():
            if separate:
                out = cls.forward(*args)
                cls.setup_context(ctx, args, out)
            else:
                out = cls.forward(ctx, *args, **kwargs)
        single = not isinstance(out, tuple)
        outs = (out,) if single else out
        if not rec:
            return out
        ctx.next = tuple(
            ((a.grad_fn, a._oi) if a.grad_fn is not None else (a, 0))
            if isinstance(a, Tensor) and a._rg else None
            for a in args
        )
        ctx._nout = len(outs)
        ctx._in_meta = [(a._data.shape, a._data.dtype) if isinstance(a, Tensor) else None
                        for a in args]
        # Unused outputs get zero gradients of their shape (PyTorch's materialize_grads).
        ctx._out_shapes = [o._data.shape if isinstance(o, Tensor) else () for o in outs]
        nondiff = {id(o) for o in ctx._nondiff}
        res = []
        for i, o in enumerate(outs):
            if isinstance(o, Tensor):
                t = _wrap(o._data)
                if id(o) not in nondiff and o._data.dtype.kind == "f":
                    t._rg, t.grad_fn, t._oi = True, ctx, i
                res.append(t)
            else:
                res.append(o)
        if ctx._saved:
            vers = []
            for i, s in enumerate(ctx._saved):
                if isinstance(s, Tensor):
                    vc = s._vc = s._vc or [0]
                    vers.append((i, vc, vc[0], "input", s.grad_fn))
            ctx._vers = vers
        return res[0] if single else tuple(res)

    def save_for_backward(self, *tensors):
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError("save_for_backward can only save variables, but argument "
                                f"{i} is of type {type(t).__name__}")
        self._saved = tensors

    @property
    def saved_tensors(self):
        s = self._saved
        if s is _FREED:
            raise RuntimeError(_FREED_MSG)
        return s if s is not None else ()

    def mark_non_differentiable(self, *outputs):
        self._nondiff = outputs

    def mark_dirty(self, *tensors):
        pass

    def set_materialize_grads(self, value):
        self._materialize = bool(value)

    def name(self):
        return type(self).__name__ + "Backward"

    def _run_backward(self, grads):
        gs = [None if g is None else _wrap(g) for g in grads]
        cls = type(self)
        fn = cls.backward
        if cls.vjp is not TensorFunction.vjp:
            if fn is not TensorFunction.backward:
                raise RuntimeError("Implementing both 'backward' and 'vjp' for a custom Function "
                                   "is not allowed. You should only implement one of them.")
            fn = cls.vjp
        with no_grad():
            res = fn(self, *gs)
        if not isinstance(res, tuple):
            res = (res,)
        n = len(self.next)
        if len(res) < n or any(r is not None for r in res[n:]):
            raise RuntimeError(
                f"function {self.name()} returned an incorrect number of gradients "
                f"(expected {n}, got {len(res)})"
            )
        return tuple(self._check_grad(i, r) for i, r in enumerate(res[:n]))

    def _check_grad(self, i, r):
        """As PyTorch: a gradient is a Tensor or None; one of a broadcastable shape is summed to
        its input's shape, then cast to its dtype."""
        if r is None:
            return None
        if not isinstance(r, Tensor):
            raise RuntimeError(f"expected Variable or None (got {type(r).__name__})")
        if self.next[i] is None:
            return None
        g = r._data
        shape, dtype = self._in_meta[i]
        if g.shape != shape:
            if not _expandable(shape, g.shape):
                raise RuntimeError(
                    f"Function {self.name()} returned an invalid gradient at index {i} - got "
                    f"{list(g.shape)} but expected shape compatible with {list(shape)}")
            g = unbroadcast(g, shape)
        return g if g.dtype == dtype else g.astype(dtype)


_SIGNATURES = {}  # a setup_context-style forward -> its inspect.Signature


def _expandable(shape, to):
    try:
        return np.broadcast_shapes(shape, to) == to
    except ValueError:
        return False


FunctionCtx = Function


def once_differentiable(fn):
    """Accepted for PyTorch compatibility: ember's backward passes are never differentiated."""
    return fn
