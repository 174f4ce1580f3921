"""Full backward hooks for modules, built as PyTorch's ``BackwardHook`` is: an identity op wraps
the module's inputs and another wraps its outputs. When backward reaches the output identity it
has ``grad_output`` (and runs the backward pre-hooks); when it reaches the input identity it has
``grad_input`` (and runs the backward hooks, which may replace it).

Example::

    def show(module, grad_input, grad_output):
        print(type(module).__name__, [g.shape for g in grad_output])

    handle = model.fc.register_full_backward_hook(show)
"""

from __future__ import annotations

import numpy as np

from ember.autograd.function import Function
from ember.tensor import Tensor, _wrap

__all__ = ["BackwardHook"]


class _HookIdentity(Function):
    """Identity on several arrays; its backward hands the gradients to ``BackwardHook``."""

    @staticmethod
    def forward(ctx, hook, on_input, *arrays):
        ctx.hook, ctx.on_input = hook, on_input
        ctx._nout = len(arrays)
        return tuple(arrays)

    @staticmethod
    def backward(ctx, *grads):
        if ctx.on_input:
            grads = ctx.hook._run_full_hooks(grads)
        else:
            grads = ctx.hook._run_pre_hooks(grads)
        return (None, None) + tuple(grads)


def _as_arrays(result, n, what):
    if not isinstance(result, (tuple, list)):
        result = (result,)
    if len(result) != n:
        raise RuntimeError(f"Backward {what} returned an invalid number of grad_"
                           f"{'input' if 'pre' not in what else 'output'}, got {len(result)}, "
                           f"but expected {n}")
    return tuple(None if r is None else (r._data if isinstance(r, Tensor) else np.asarray(r))
                 for r in result)


def _wrap_all(grads):
    return tuple(None if g is None else _wrap(g) for g in grads)


class BackwardHook:
    """One forward call's hook state: which inputs pass gradients, and the ``grad_output``."""

    def __init__(self, module, user_hooks, user_pre_hooks):
        self.module = module
        self.user_hooks, self.user_pre_hooks = user_hooks, user_pre_hooks
        self.grad_outputs = None
        self.n_inputs = 0
        self.input_slots = None  # positions of the inputs that went through the identity

    def _run_pre_hooks(self, grads):
        for hook in self.user_pre_hooks:
            r = hook(self.module, _wrap_all(grads))
            if r is not None:
                grads = _as_arrays(r, len(grads), "pre hook")
        self.grad_outputs = _wrap_all(grads)
        if self.input_slots is None and self.user_hooks:
            # No input needs a gradient: PyTorch still calls the hooks, with grad_input all None.
            for hook in self.user_hooks:
                hook(self.module, (None,) * self.n_inputs, self.grad_outputs)
        return grads

    def _run_full_hooks(self, grads):
        full = [None] * self.n_inputs
        for slot, g in zip(self.input_slots, grads):
            full[slot] = g
        for hook in self.user_hooks:
            r = hook(self.module, _wrap_all(full), self.grad_outputs)
            if r is not None:
                full = list(_as_arrays(r, self.n_inputs, "hook"))
        return tuple(full[slot] for slot in self.input_slots)

    def setup_input_hook(self, args):
        """Route the positional tensor inputs that require grad through the identity op."""
        self.n_inputs = len(args)
        slots = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a._rg]
        if not slots or not self.user_hooks:
            return args
        self.input_slots = slots
        outs = _HookIdentity.apply(self, True, *[args[i] for i in slots])
        new = list(args)
        for i, o in zip(slots, outs):
            new[i] = o
        return tuple(new)

    def setup_output_hook(self, out):
        """Route the module's output tensors (one Tensor, or a tuple/list) through the identity."""
        single = isinstance(out, Tensor)
        items = [out] if single else list(out) if isinstance(out, (tuple, list)) else None
        if items is None:
            return out
        slots = [i for i, o in enumerate(items) if isinstance(o, Tensor) and o._rg]
        if not slots:
            return out
        res = _HookIdentity.apply(self, False, *[items[i] for i in slots])
        for i, o in zip(slots, res):
            items[i] = o
        if single:
            return items[0]
        return type(out)(items)
