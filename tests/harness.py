"""The differential checker: run the same code on ember and on torch (the oracle), compare.

    check_op([(2, 3, 8, 8), (4, 3, 3, 3)], lambda t, x, w: t.nn.functional.conv2d(x, w, padding=1))

runs the lambda with ``t=torch`` and ``t=ember`` on the same seeded inputs, compares the outputs
and, after a backward pass with the same random upstream gradient, every input's gradient.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import torch

import ember
from ember.autograd import gradcheck

RTOL, ATOL = 1e-5, 1e-6  # float32 tolerances of the core issue

__all__ = ["check_op", "check_gradcheck", "make_arrays", "to_np", "assert_close", "copy_params",
           "check_module", "python_output", "RTOL", "ATOL"]


def to_np(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, ember.Tensor):
        return x.detach().numpy()
    return np.asarray(x)


def assert_close(a, b, rtol=RTOL, atol=ATOL, what="value"):
    a, b = to_np(a), to_np(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape} (ember) != {b.shape} (torch)"
    if a.dtype.kind in "biu" or b.dtype.kind in "biu":
        assert a.dtype.kind == b.dtype.kind or (a.dtype.kind in "iu" and b.dtype.kind in "iu"), (
            f"{what}: dtype {a.dtype} (ember) vs {b.dtype} (torch)")
        np.testing.assert_array_equal(a, b, err_msg=what)
        return
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} (ember) != {b.dtype} (torch)"
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=what)


def make_arrays(specs, seed=0, dtype=np.float32, low=None, high=None, positive=False):
    """Arrays for ``specs``: a shape tuple gives seeded normal data; an array is used as is."""
    rng = np.random.default_rng(seed)
    out = []
    for s in specs:
        if isinstance(s, np.ndarray):
            out.append(s)
        elif isinstance(s, tuple):
            if low is not None:
                a = rng.uniform(low, high, s)
            else:
                a = rng.standard_normal(s)
                if positive:
                    a = np.abs(a) + 0.5
            out.append(np.asarray(a, dtype=dtype))  # 0-d stays an array (abs() gives a scalar)
        else:
            out.append(s)
    return out


def _flat(out):
    if isinstance(out, (tuple, list)):
        res = []
        for o in out:
            res.extend(_flat(o))
        return res
    return [out]


def check_op(specs, fn, *, rtol=RTOL, atol=ATOL, grad_rtol=None, grad_atol=None, grad=True,
             seed=0, positive=False, low=None, high=None, transpose=(), dtype=np.float32):
    """Compare ``fn(torch, *inputs)`` with ``fn(ember, *inputs)``: outputs and input gradients.

    ``transpose``: indices of inputs passed as non-contiguous (transposed views of a copy).
    """
    arrays = make_arrays(specs, seed, dtype=dtype, low=low, high=high, positive=positive)

    def build(lib):
        ins = []
        for i, a in enumerate(arrays):
            if not isinstance(a, np.ndarray):
                ins.append(a)
                continue
            rg = grad and a.dtype.kind == "f"
            if i in transpose and a.ndim >= 2:
                base = lib.tensor(np.ascontiguousarray(np.swapaxes(a, -1, -2)))
                t = base.transpose(-1, -2).detach()
                t.requires_grad_(rg)
            else:
                t = lib.tensor(a.copy(), requires_grad=rg)
            ins.append(t)
        return ins

    tin, ein = build(torch), build(ember)
    tout, eout = _flat(fn(torch, *tin)), _flat(fn(ember, *ein))
    assert len(tout) == len(eout), f"{len(eout)} outputs from ember, {len(tout)} from torch"
    for k, (e, t) in enumerate(zip(eout, tout)):
        if isinstance(t, torch.Tensor):
            assert isinstance(e, ember.Tensor), f"output {k}: {type(e)} is not an ember.Tensor"
            assert str(e.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], (
                f"output {k}: dtype {e.dtype} vs torch {t.dtype}")
            assert_close(e, t, rtol, atol, f"output {k}")
        else:
            assert e == t, f"output {k}: {e!r} != {t!r}"
    if not grad:
        return
    rng = np.random.default_rng(seed + 1)
    troots, eroots, gts, ges = [], [], [], []
    for e, t in zip(eout, tout):
        if isinstance(t, torch.Tensor) and t.requires_grad:
            g = rng.standard_normal(tuple(t.shape)).astype(to_np(t).dtype)
            troots.append(t)
            eroots.append(e)
            gts.append(torch.tensor(g))
            ges.append(ember.tensor(g))
    if not troots:
        return
    torch.autograd.backward(troots, gts)
    ember.autograd.backward(eroots, ges)
    for i, (e, t) in enumerate(zip(ein, tin)):
        if isinstance(t, torch.Tensor) and t.requires_grad:
            if t.grad is None:
                assert e.grad is None or not to_np(e.grad).any(), f"input {i}: ember has a grad, torch none"
                continue
            assert e.grad is not None, f"input {i}: no gradient from ember"
            assert_close(e.grad, t.grad, grad_rtol or rtol, grad_atol or atol, f"grad of input {i}")


def check_gradcheck(specs, fn, *, seed=0, positive=False, low=None, high=None, eps=1e-6,
                    atol=1e-5, rtol=1e-3):
    """float64 finite-difference check of ``fn(ember, *inputs)``."""
    arrays = make_arrays(specs, seed, dtype=np.float64, low=low, high=high, positive=positive)
    ins = [ember.tensor(a, requires_grad=a.dtype.kind == "f") if isinstance(a, np.ndarray) else a
           for a in arrays]
    assert gradcheck(lambda *xs: fn(ember, *xs), tuple(ins), eps=eps, atol=atol, rtol=rtol)


def copy_params(src_torch_module, dst_ember_module):
    """Load a torch module's state_dict into an ember module (keys must match)."""
    sd = {k: ember.tensor(v.detach().numpy().copy()) for k, v in src_torch_module.state_dict().items()}
    dst_ember_module.load_state_dict(sd)


def check_module(tmod, emod, input_specs, *, rtol=RTOL, atol=ATOL, grad_rtol=None, grad_atol=None,
                 seed=0, train=True, forward=None):
    """Same weights in both; compare output, input gradients and every parameter gradient."""
    copy_params(tmod, emod)
    tmod.train(train)
    emod.train(train)
    fwd = forward or (lambda m, *xs: m(*xs))
    arrays = make_arrays(input_specs, seed)
    tin = [torch.tensor(a, requires_grad=a.dtype.kind == "f") if isinstance(a, np.ndarray) else a for a in arrays]
    ein = [ember.tensor(a, requires_grad=a.dtype.kind == "f") if isinstance(a, np.ndarray) else a for a in arrays]
    tout, eout = _flat(fwd(tmod, *tin)), _flat(fwd(emod, *ein))
    for k, (e, t) in enumerate(zip(eout, tout)):
        assert_close(e, t, rtol, atol, f"output {k}")
    rng = np.random.default_rng(seed + 1)
    pairs = [(e, t) for e, t in zip(eout, tout) if isinstance(t, torch.Tensor) and t.requires_grad]
    gs = [rng.standard_normal(tuple(t.shape)).astype(np.float32) for _, t in pairs]
    torch.autograd.backward([t for _, t in pairs], [torch.tensor(g) for g in gs])
    ember.autograd.backward([e for e, _ in pairs], [ember.tensor(g) for g in gs])
    gr, ga = grad_rtol or rtol, grad_atol or atol
    for i, (e, t) in enumerate(zip(ein, tin)):
        if isinstance(t, torch.Tensor) and t.grad is not None:
            assert_close(e.grad, t.grad, gr, ga, f"grad of input {i}")
    tp = dict(tmod.named_parameters())
    for name, p in emod.named_parameters():
        tg = tp[name].grad
        if tg is None:
            assert p.grad is None, f"{name}: ember has a grad, torch none"
        else:
            assert p.grad is not None, f"{name}: no gradient from ember"
            assert_close(p.grad, tg, gr, ga, f"grad of {name}")


def input_grads(fn, x, g, then=None):
    """``[ember's, torch's]`` gradient of ``lib.nn.functional.<fn>(x)`` (followed by ``then``
    on its result, if given) with respect to the array ``x`` for the upstream gradient ``g``."""
    grads = []
    for lib in (ember, torch):
        t = lib.tensor(x, requires_grad=True)
        y = getattr(lib.nn.functional, fn)(t)
        (y if then is None else then(y)).backward(lib.tensor(g))
        grads.append(t.grad.numpy())
    return grads


def python_output(code, **env):
    """Run ``code`` in a fresh Python process whose environment is only ``env`` (and PATH);
    assert it succeeds and return what it printed, stripped. For what must hold from a clean
    start: what ``import ember`` loads, environment variables read once."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(env, PATH="/usr/bin:/bin"), timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def numpy_ships_openblas():
    """Whether this NumPy was built with the scipy-openblas library (PyPI's Linux and Windows
    wheels), whose gemm ``ember.backend.cblas`` binds."""
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    return blas.get("name") == "scipy-openblas"


def in_forked_child(fn, timeout=30):
    """``fn()`` in a child made by ``os.fork`` (as a DataLoader worker is); returns what it
    returned, re-raises what it raised, and fails (killing it) if it has not finished within
    ``timeout`` seconds: a hang in the child fails the test instead of stopping the suite."""
    import os
    import pickle
    import select
    import signal
    import time

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(r)
        try:
            out = (True, fn())
        except BaseException as e:  # noqa: BLE001 - sent to the parent
            out = (False, e)
        with os.fdopen(w, "wb") as f:
            pickle.dump(out, f)
        os._exit(0)
    os.close(w)
    deadline = time.monotonic() + timeout
    data = []
    with os.fdopen(r, "rb") as f:  # read while the child writes: a pipe holds only 64 KB
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([f], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise AssertionError(f"the forked child did not finish within {timeout} s")
            chunk = os.read(f.fileno(), 1 << 16)
            if not chunk:
                break
            data.append(chunk)
    os.waitpid(pid, 0)
    ok, value = pickle.loads(b"".join(data))
    if not ok:
        raise value
    return value
