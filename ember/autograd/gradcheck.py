"""Finite-difference gradient checks (``ember.autograd.gradcheck``), run in float64."""

from __future__ import annotations

import warnings

import numpy as np

from ember.tensor import Tensor, _wrap

__all__ = ["gradcheck", "GradcheckError"]


class GradcheckError(RuntimeError):
    pass


def _as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True,
              nondet_tol=0.0, check_undefined_grad=True, fast_mode=False, **kwargs):
    """Compare analytical gradients of ``func`` with central finite differences.

    Inputs that require grad should be float64 (PyTorch warns otherwise, and the check then
    likely fails). Returns True, or raises ``GradcheckError`` naming the input and the worst
    element.
    """
    inputs = _as_tuple(inputs)
    diff = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not diff:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but "
                         "none of them have requires_grad=True.")
    for i in diff:
        if inputs[i]._data.dtype != np.float64:
            warnings.warn(
                f"Input #{i} requires gradient and is not a double precision floating point or "
                "complex. This check will likely fail if all the inputs are not of double "
                "precision floating point or complex. ", stacklevel=2)
    outs = _as_tuple(func(*inputs))
    outs = [o for o in outs if isinstance(o, Tensor) and o.requires_grad]
    for oi, out in enumerate(outs):
        n_out = out._data.size
        for i in diff:
            x = inputs[i]
            n_in = x._data.size
            analytic = np.zeros((n_in, n_out))
            for j in range(n_out):
                from ember.autograd.engine import grad as _grad

                g = np.zeros(out._data.shape)
                g.reshape(-1)[j] = 1.0
                o = _as_tuple(func(*inputs))
                o = [t for t in o if isinstance(t, Tensor) and t.requires_grad][oi]
                (gi,) = _grad(o, x, _wrap(g), allow_unused=True)
                if gi is not None:
                    analytic[:, j] = gi._data.reshape(-1)
            numeric = np.zeros((n_in, n_out))
            flat = x._data.reshape(-1)
            for k in range(n_in):
                orig = flat[k]
                flat[k] = orig + eps
                plus = _output(func, inputs, oi)
                flat[k] = orig - eps
                minus = _output(func, inputs, oi)
                flat[k] = orig
                numeric[k] = ((plus - minus) / (2 * eps)).reshape(-1)
            if not np.allclose(analytic, numeric, rtol=rtol, atol=atol):
                err = np.abs(analytic - numeric)
                k, j = np.unravel_index(np.argmax(err), err.shape)
                msg = (
                    f"Jacobian mismatch for output {oi} with respect to input {i},\n"
                    f"numerical:{numeric[k, j]}\nanalytical:{analytic[k, j]}\n"
                    f"(worst at input element {k}, output element {j}; max abs diff {err.max():.3g})"
                )
                if raise_exception:
                    raise GradcheckError(msg)
                return False
    return True


def _output(func, inputs, oi):
    """A copy of the ``oi``-th output that requires grad (the outputs checked above)."""
    outs = [t for t in _as_tuple(func(*inputs)) if isinstance(t, Tensor) and t.requires_grad]
    return outs[oi]._data.copy()


def gradgradcheck(*args, **kwargs):
    raise NotImplementedError("ember has no higher-order gradients, so gradgradcheck is unsupported")
