"""``torch.autograd.functional``'s reverse-mode helpers: ``vjp`` and ``jacobian`` of a function of
Tensors. ``hessian``, ``hvp``, ``vhp``, ``jvp`` and ``create_graph=True`` need double backward,
which ember's engine does not have: they raise ``NotImplementedError``.

    J = ember.autograd.functional.jacobian(lambda x: x.exp() * 2, x)    # out.shape + x.shape
    y, v_J = ember.autograd.functional.vjp(f, (x, w), v)
"""

from __future__ import annotations

import numpy as np

from ember.autograd.engine import grad
from ember.autograd.grad_mode import enable_grad
from ember.tensor import Tensor, _wrap

__all__ = ["vjp", "jacobian", "hessian", "hvp", "vhp", "jvp"]


def _as_tuple(x, arg_name, fn_name):
    """(tuple of Tensors, whether ``x`` was a tuple), with PyTorch's TypeError otherwise."""
    if isinstance(x, Tensor):
        return (x,), False
    if not isinstance(x, tuple):
        raise TypeError(f"The {arg_name} given to {fn_name} must be either a Tensor or a tuple of "
                        f"Tensors but the given {arg_name} has type {type(x)}.")
    for i, el in enumerate(x):
        if not isinstance(el, Tensor):
            raise TypeError(f"The {arg_name} given to {fn_name} must be either a Tensor or a "
                            f"tuple of Tensors but the value at index {i} has type {type(el)}.")
    return x, True


def _outputs(func, inputs, fn_name):
    ins, tuple_in = _as_tuple(inputs, "inputs", fn_name)
    with enable_grad():
        ins = tuple(t.detach().requires_grad_() for t in ins)
        outs, tuple_out = _as_tuple(func(*ins), "outputs of the user-provided function", fn_name)
    return ins, tuple_in, outs, tuple_out


def _no_create_graph(create_graph):
    if create_graph:
        raise NotImplementedError(
            "create_graph=True (higher-order gradients) is not supported by ember's engine")


def _grads(out, ins, v, i, strict, batched=False):
    """d(out)/d(ins) against ``v``; zeros (or, if ``strict``, PyTorch's error) where independent."""
    gs = (grad(out, ins, v, retain_graph=True, allow_unused=True, is_grads_batched=batched)
          if out.requires_grad else (None,) * len(ins))
    res = []
    for k, (g, t) in enumerate(zip(gs, ins)):
        if g is None:
            if strict:
                raise RuntimeError(f"Output {i} of the user-provided function is independent of "
                                   f"input {k}. This is not allowed in strict mode.")
            shape = (v.shape[0],) + tuple(t.shape) if batched else t._data.shape
            g = _wrap(np.zeros(shape, dtype=t._data.dtype))
        res.append(g)
    return res


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(*inputs), v^T J)``: the vector-Jacobian product at ``inputs``."""
    _no_create_graph(create_graph)
    ins, tuple_in, outs, tuple_out = _outputs(func, inputs, "vjp")
    if v is None:
        if len(outs) != 1 or outs[0].numel() != 1:
            raise RuntimeError("The vector v can only be None if the user-provided function "
                               "returns a single Tensor with a single element.")
        vs = (None,)
    else:
        vs, _ = _as_tuple(v, "v", "vjp")
    total = [None] * len(ins)
    for i, (o, vi) in enumerate(zip(outs, vs)):
        for k, g in enumerate(_grads(o, ins, vi, i, strict)):
            total[k] = g if total[k] is None else total[k] + g
    out = tuple(o.detach() for o in outs)
    return (out if tuple_out else out[0]), (tuple(total) if tuple_in else total[0])


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False,
             strategy="reverse-mode"):
    """The Jacobian of ``func`` at ``inputs``: ``out.shape + input.shape`` per (output, input),
    nested in tuples as the outputs and inputs are (PyTorch's layout)."""
    if strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError('Expected strategy to be either "forward-mode" or "reverse-mode". '
                             'Hint: If your function has more outputs than inputs, "forward-mode"'
                             ' tends to be more performant. Otherwise, prefer to use '
                             '"reverse-mode".')
    _no_create_graph(create_graph)
    ins, tuple_in, outs, tuple_out = _outputs(func, inputs, "jacobian")
    jac = []
    for i, o in enumerate(outs):
        n = o.numel()
        eye = _wrap(np.eye(n, dtype=o._data.dtype).reshape((n,) + o._data.shape))
        rows = _grads(o, ins, eye, i, strict, batched=True) if n else [
            _wrap(np.zeros((0,) + t._data.shape, t._data.dtype)) for t in ins]
        jac.append(tuple(_wrap(r._data.reshape(o._data.shape + t._data.shape))
                         for r, t in zip(rows, ins)))
    if tuple_out:
        return tuple(j if tuple_in else j[0] for j in jac)
    return jac[0] if tuple_in else jac[0][0]


def _double_backward(name):
    def fn(*args, **kwargs):
        raise NotImplementedError(
            f"autograd.functional.{name} needs double backward (create_graph=True), which "
            "ember's engine does not support")

    fn.__name__ = name
    return fn


hessian = _double_backward("hessian")
hvp = _double_backward("hvp")
vhp = _double_backward("vhp")
jvp = _double_backward("jvp")
