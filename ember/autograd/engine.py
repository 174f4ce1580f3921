"""The backward engine: dependency counting over the graph (as PyTorch's engine does), raw arrays
passed between nodes, gradients summed per node input, saved arrays dropped as each node runs."""

from __future__ import annotations

import numpy as np

from ember.autograd.anomaly_mode import _Anomaly
from ember.autograd.function import _FREED, _FREED_MSG
from ember.tensor import Tensor, _wrap

__all__ = ["run_backward", "backward", "grad"]


def _shape_str(t):
    return "x".join(map(str, t.shape)) if t.shape else "scalar"


def _root_grads(tensors, grad_tensors, for_grad=False):
    roots = []
    for t, g in zip(tensors, grad_tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"expected a Tensor to differentiate, got {type(t).__name__}")
        if not t._rg:
            raise RuntimeError(
                "element 0 of tensors does not require grad and does not have a grad_fn"
            )
        if g is None:
            if t._data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs; this output has "
                    f"shape {tuple(t.shape)}: pass gradient= (a tensor of that shape) to backward()"
                )
            g = np.ones(t._data.shape, dtype=t._data.dtype)
        else:
            if not isinstance(g, Tensor):
                raise TypeError(
                    f"gradients can be either Tensors or None, but got {type(g).__name__}")
            g = g._data
            if g.shape != t._data.shape:
                raise RuntimeError(
                    f"Mismatch in shape: grad_output[0] has a shape of {tuple(g.shape)} and "
                    f"output[0] has a shape of {tuple(t._data.shape)}."
                )
            if g.dtype != t._data.dtype:
                g = g.astype(t._data.dtype)
        roots.append((t, g))
    return roots


def _check_nan(fn, gins):
    for i, g in enumerate(gins):
        if g is not None and np.isnan(g).any():
            raise RuntimeError(f"Function '{fn.name()}' returned nan values in its {i}th output.")


def _check_versions(fn):
    for i, vc, v, kind, gfn in fn._vers:
        if vc[0] != v:
            arr = fn._saved[i]
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: [{arr.dtype} tensor of shape [{', '.join(map(str, arr.shape))}]]"
                f", which is {kind} of {fn.name()}, is at version {vc[0]}; expected version {v} "
                "instead. Hint: do the in-place operation on a clone, or use its out-of-place form."
            )


def run_backward(roots, retain_graph=False, capture=None, accumulate=True):
    """Propagate gradients from ``roots`` (list of (tensor, grad array)) through the graph.

    ``capture`` maps id(tensor) -> tensor for ``autograd.grad``: gradients reaching those tensors
    are returned instead of accumulated (leaves) and propagation continues as usual.
    """
    deps = {}
    stack = []
    leaf_buf = {}
    for t, _ in roots:
        if t.grad_fn is not None and t.grad_fn not in deps:
            deps[t.grad_fn] = 0
            stack.append(t.grad_fn)
    # Count how many edges point at each node, so each runs once with all its gradients summed.
    seen = set(deps)
    while stack:
        fn = stack.pop()
        nxt = getattr(fn, "next", None)
        if nxt is None:
            continue
        for e in nxt:
            if e is None:
                continue
            p = e[0]
            if type(p) is not Tensor and not isinstance(p, Tensor):
                deps[p] = deps.get(p, 0) + 1
                if p not in seen:
                    seen.add(p)
                    stack.append(p)

    buffers = {}
    handed = set()
    captured = {}
    for t, g in roots:
        handed.add(id(g))
        if t.grad_fn is None:
            _leaf_add(leaf_buf, t, g)
            continue
        buf = buffers.get(t.grad_fn)
        if buf is None:
            buf = buffers[t.grad_fn] = {}
        _buf_add(buf, t._oi, g)
    ready = [fn for fn in buffers if deps.get(fn, 0) == 0]
    check_nan = _Anomaly.enabled and _Anomaly.check_nan
    while ready:
        fn = ready.pop()
        buf = buffers.pop(fn)
        if fn._saved is _FREED:
            raise RuntimeError(_FREED_MSG)
        nout = getattr(fn, "_nout", None) or (max(buf) + 1 if buf else 1)
        if fn._hooks:
            for oi, hooks in fn._hooks.items():
                if oi in buf:
                    g = buf[oi]
                    for h in hooks:
                        g = _run_hook(h, g)
                    buf[oi] = g
        if capture is not None and fn in capture:
            for oi, key in capture[fn]:
                if oi in buf:
                    captured[key] = buf[oi]
        if nout == 1 and 0 in buf:
            grads = (buf[0],)
        else:
            grads = tuple(buf.get(i) for i in range(nout))
            if any(g is None for g in grads):
                grads = _materialize(fn, grads)
        if fn._saved:
            if getattr(fn, "_vers", None):
                _check_versions(fn)
        gins = fn._run_backward(grads)
        if type(gins) is not tuple:
            gins = (gins,)
        if check_nan:
            _check_nan(fn, gins)
        nxt = fn.next
        if not retain_graph:
            if fn._saved is not None or fn.__dict__:
                fn._saved = _FREED
                fn.__dict__.clear()
        for e, g in zip(nxt, gins):
            if e is None or g is None:
                continue
            p, oi = e
            if isinstance(p, Tensor):
                _leaf_add(leaf_buf, p, g)
                continue
            b = buffers.get(p)
            if b is None:
                b = buffers[p] = {}
            _buf_add(b, oi, g)
            d = deps[p] - 1
            deps[p] = d
            if d == 0:
                ready.append(p)

    for key, (t, g) in leaf_buf.items():
        hooks = t._hooks
        if hooks:
            for h in hooks:
                if not getattr(h, "_post_accumulate", False):
                    g = _run_hook(h, g)
        if capture is not None and key in capture:
            captured[key] = g
            continue
        if accumulate:
            _accumulate(t, g, handed)
            if hooks:
                _run_post_accumulate_hooks(t)
    return captured


def _run_post_accumulate_hooks(t):
    """``Tensor.register_post_accumulate_grad_hook`` hooks: ``hook(t)`` once ``t.grad`` is set."""
    for h in list(t._hooks):
        if getattr(h, "_post_accumulate", False):
            h(t)


def _run_hook(hook, g):
    """``hook(grad)``; a returned Tensor replaces ``g`` and must keep its shape and dtype (PyTorch's
    checks and wording)."""
    r = hook(_wrap(g))
    if r is None:
        return g
    if not isinstance(r, Tensor):
        raise TypeError(f"expected Variable, but hook returned '{type(r).__name__}'")
    name = getattr(hook, "__name__", repr(hook))
    a = r._data
    if a.shape != g.shape:
        raise RuntimeError(f"hook '{name}' has changed the size of value")
    if a.dtype != g.dtype:
        raise RuntimeError(f"hook '{name}' has changed the type of value (was {g.dtype} got "
                           f"{a.dtype})")
    return a


def _buf_add(buf, oi, g):
    old = buf.get(oi)
    buf[oi] = g if old is None else old + g


def _leaf_add(leaf_buf, t, g):
    k = id(t)
    old = leaf_buf.get(k)
    if old is None:
        leaf_buf[k] = (t, g)
    else:
        leaf_buf[k] = (t, old[1] + g)


def _materialize(fn, grads):
    shapes = getattr(fn, "_out_shapes", None)
    if not getattr(fn, "_materialize", True):  # ctx.set_materialize_grads(False): keep None
        return grads
    out = []
    for i, g in enumerate(grads):
        if g is None:
            ref = next(x for x in grads if x is not None)
            if shapes is not None:
                g = np.zeros(shapes[i], dtype=ref.dtype)
            else:
                g = None
        out.append(g)
    return tuple(out)


def _accumulate(t, g, handed):
    d = t._data
    if g.dtype != d.dtype:
        g = g.astype(d.dtype)
    if g.shape != d.shape:
        g = np.broadcast_to(g, d.shape)
    cur = t._grad
    if cur is None:
        # Keep the array when nobody else can see it; copy views, read-only and shared arrays.
        if g.base is not None or not g.flags.writeable or id(g) in handed:
            g = g.copy()
        handed.add(id(g))
        t._grad = _wrap(g)
    else:
        ca = cur._data
        if ca.flags.writeable and ca.shape == g.shape:
            np.add(ca, g, out=ca)
        else:
            cur._data = ca + g


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """``ember.autograd.backward``: accumulate d(tensors)/d(leaves) into the leaves' ``.grad``."""
    if create_graph:
        raise NotImplementedError(
            "create_graph=True (higher-order gradients) is not supported by ember's engine"
        )
    if isinstance(tensors, Tensor):
        tensors = (tensors,)
    tensors = tuple(tensors)
    if grad_tensors is None:
        grad_tensors = (None,) * len(tensors)
    elif isinstance(grad_tensors, Tensor):
        grad_tensors = (grad_tensors,)
    roots = _root_grads(tensors, grad_tensors)
    retain = bool(retain_graph)
    if inputs is not None:
        inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
        if not inputs:
            raise RuntimeError("`inputs` argument to `backward()` cannot be empty.")
        capture, keys = _capture_map(inputs)
        got = run_backward(roots, retain, capture, accumulate=False)
        for t, k in zip(inputs, keys):
            if k in got:
                _accumulate(t, got[k], set())
                if t._hooks:
                    _run_post_accumulate_hooks(t)
        return
    run_backward(roots, retain)


def _capture_map(inputs):
    capture, keys = {}, []
    for t in inputs:
        if not isinstance(t, Tensor) or not t._rg:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
        if t.grad_fn is None:
            k = id(t)
            capture[k] = True
        else:
            k = ("node", id(t))
            capture.setdefault(t.grad_fn, []).append((t._oi, k))
        keys.append(k)
    return capture, keys


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs=True, allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """``ember.autograd.grad``: return d(outputs)/d(inputs) without touching ``.grad``."""
    if create_graph:
        raise NotImplementedError(
            "create_graph=True (higher-order gradients) is not supported by ember's engine"
        )
    if materialize_grads and allow_unused is False:
        raise ValueError("Expected allow_unused to be True or not passed when materialize_grads="
                         "True, but got: allow_unused=False.")
    single_in = isinstance(inputs, Tensor)
    outputs = (outputs,) if isinstance(outputs, Tensor) else tuple(outputs)
    inputs = (inputs,) if single_in else tuple(inputs)
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = (grad_outputs,)
    if is_grads_batched:
        return _batched_grad(outputs, inputs, tuple(grad_outputs), retain_graph, allow_unused,
                             materialize_grads)
    roots = _root_grads(outputs, grad_outputs)
    capture, keys = _capture_map(inputs)
    got = run_backward(roots, bool(retain_graph), capture, accumulate=False)
    res = []
    for i, (t, k) in enumerate(zip(inputs, keys)):
        g = got.get(k)
        if g is None:
            for rt, rg in roots:
                if rt is t:
                    g = rg
        if g is None:
            if materialize_grads:
                res.append(_wrap(np.zeros_like(t._data)))
                continue
            if not allow_unused:
                raise RuntimeError(
                    f"The differentiated Tensor at index {i} appears to not have been used in "
                    "the graph. Set allow_unused=True if this is the desired behavior."
                )
            res.append(None)
        else:
            res.append(_wrap(np.array(g, dtype=t._data.dtype, copy=True)))
    return tuple(res)


def _batched_grad(outputs, inputs, grad_outputs, retain_graph, allow_unused, materialize_grads):
    """``grad(..., is_grads_batched=True)``: the first dimension of every ``grad_outputs`` entry
    is a batch of vectors; one backward pass per vector (PyTorch vmaps them), results stacked."""
    if any(not isinstance(g, Tensor) or g.dim() == 0 for g in grad_outputs):
        raise RuntimeError("is_grads_batched=True needs every grad_output to be a Tensor whose "
                           "first dimension is the batch")
    n = grad_outputs[0].shape[0]
    rows = []
    for b in range(n):
        rows.append(grad(outputs, inputs, tuple(g[b] for g in grad_outputs),
                         retain_graph=True if b < n - 1 else retain_graph,
                         allow_unused=allow_unused, materialize_grads=materialize_grads))
    return tuple(None if col[0] is None else _wrap(np.stack([c._data for c in col]))
                 for col in zip(*rows))
