"""Every optimizer follows torch.optim's trajectory: 100 steps on the same 2-layer MLP.

Two drives: (1) torch's gradients copied into ember's parameters each step (isolates the update
rule), (2) each library computes its own loss and gradients (the whole training loop).
"""

import io

import numpy as np
import pytest
import torch

import ember
import ember.optim as eo
from ember.backend import mkl
from ember.nn import Parameter
from tests.harness import assert_close

SHAPES = [(8, 5), (8,), (3, 8), (3,)]

CONFIGS = [
    ("SGD", {"lr": 0.05}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 1e-2}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-2}),
    ("SGD", {"lr": 0.01, "momentum": 0.5, "maximize": True}),
    ("Adam", {"lr": 1e-2}),
    ("Adam", {"lr": 1e-2, "betas": (0.8, 0.99), "weight_decay": 1e-2, "amsgrad": True}),
    ("Adam", {"lr": 1e-2, "maximize": True, "eps": 1e-6}),
    ("Adam", {"lr": 1e-2, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("AdamW", {"lr": 1e-2}),
    ("AdamW", {"lr": 1e-2, "weight_decay": 0.1, "amsgrad": True}),
    ("AdamW", {"lr": 1e-2, "maximize": True}),
    ("RMSprop", {"lr": 1e-3}),
    ("RMSprop", {"lr": 1e-3, "momentum": 0.9, "centered": True}),
    ("RMSprop", {"lr": 1e-3, "alpha": 0.9, "weight_decay": 1e-2, "centered": True, "maximize": True}),
    ("RMSprop", {"lr": 1e-3, "momentum": 0.5, "eps": 1e-5}),
    ("Adagrad", {"lr": 0.05}),
    ("Adagrad", {"lr": 0.05, "lr_decay": 1e-2, "weight_decay": 1e-2, "initial_accumulator_value": 0.1}),
    ("Adagrad", {"lr": 0.05, "maximize": True}),
    ("Adadelta", {}),
    ("Adadelta", {"lr": 0.5, "rho": 0.8, "weight_decay": 1e-2, "maximize": True}),
    ("Adamax", {}),
    ("Adamax", {"lr": 1e-2, "betas": (0.8, 0.99), "weight_decay": 1e-2, "maximize": True}),
    ("NAdam", {}),
    ("NAdam", {"lr": 1e-2, "betas": (0.8, 0.99), "weight_decay": 1e-2, "momentum_decay": 0.1}),
    ("NAdam", {"lr": 1e-2, "weight_decay": 0.1, "decoupled_weight_decay": True,
               "maximize": True}),
    ("RAdam", {"lr": 1e-2}),  # rectified from step 6
    ("RAdam", {"lr": 1e-2, "betas": (0.8, 0.99), "weight_decay": 1e-2, "maximize": True}),
    ("RAdam", {"lr": 1e-2, "betas": (0.9, 0.6), "weight_decay": 0.1,  # rho_t never above 5
               "decoupled_weight_decay": True}),
    ("Rprop", {}),
    ("Rprop", {"lr": 0.05, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.2), "maximize": True}),
    ("ASGD", {}),
    ("ASGD", {"lr": 0.05, "lambd": 1e-2, "alpha": 0.5, "t0": 10, "weight_decay": 1e-2}),
    ("ASGD", {"lr": 0.01, "t0": 0, "maximize": True}),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'default'}" for n, kw in CONFIGS]
_ROUND_TRIP = (3, 6, 10, 13, 17, 20, 22, 24, 27, 30, 32)  # one or two configs of each optimizer
_TO_TORCH = (2, 6, 10, 14, 17, 20, 22, 24, 27, 30, 32)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    params = [(rng.standard_normal(s) * 0.5).astype(np.float32) for s in SHAPES]
    x = rng.standard_normal((16, 5)).astype(np.float32)
    y = rng.standard_normal((16, 3)).astype(np.float32)
    return params, x, y


def _loss(lib, ps, x, y):
    w1, b1, w2, b2 = ps
    h = (x @ w1.T + b1).tanh()
    return ((h @ w2.T + b2 - y) ** 2).mean()


def _pair(name, kw, params):
    tp = [torch.tensor(a.copy(), requires_grad=True) for a in params]
    ep = [Parameter(ember.tensor(a.copy())) for a in params]
    return tp, getattr(torch.optim, name)(tp, **kw), ep, getattr(eo, name)(ep, **kw)


def _torch_grads(tp, x, y):
    loss = _loss(torch, tp, torch.tensor(x), torch.tensor(y))
    loss.backward()
    return [p.grad.numpy().copy() for p in tp]


def _step_both(topt, eopt, tp, ep, x, y, steps):
    """``steps`` updates of both optimizers, ember's parameters given torch's gradients."""
    for _ in range(steps):
        topt.zero_grad()
        grads = _torch_grads(tp, x, y)
        eopt.zero_grad()
        for p, g in zip(ep, grads):
            p.grad = ember.tensor(g)
        topt.step()
        eopt.step()


@pytest.mark.parametrize("name,kw", CONFIGS, ids=IDS)
def test_trajectory_with_torch_grads(name, kw):
    params, x, y = _data()
    tp, topt, ep, eopt = _pair(name, kw, params)
    _step_both(topt, eopt, tp, ep, x, y, 100)
    for i, (a, b) in enumerate(zip(ep, tp)):
        assert a.dtype == ember.float32
        assert_close(a, b, rtol=1e-4, atol=1e-6, what=f"{name} param {i}")
    esd, tsd = eopt.state_dict(), topt.state_dict()
    assert esd["param_groups"] == tsd["param_groups"]
    assert set(esd["state"]) == set(tsd["state"])  # SGD without momentum keeps no state
    for k in tsd["state"]:
        assert set(esd["state"][k]) == set(tsd["state"][k])
        for key, tv in tsd["state"][k].items():
            assert_close(esd["state"][k][key], tv, rtol=1e-4, atol=1e-6, what=f"state {key}")


@pytest.mark.parametrize("name,kw", CONFIGS[:5], ids=IDS[:5])
def test_sgd_chunked_update_follows_torch(monkeypatch, numpy_kernels, name, kw):
    """SGD updates parameters above _CHUNK elements chunk by chunk: with 7-element chunks the
    (8, 5) and (8,) parameters take that path (a partial last chunk included), (3,) does not."""
    import ember.optim.sgd as sgd

    monkeypatch.setattr(sgd, "_CHUNK", 7)
    test_trajectory_with_torch_grads(name, kw)


@pytest.mark.parametrize("name,kw", CONFIGS[:5], ids=IDS[:5])
def test_sgd_numba_update_follows_torch_and_numpy(monkeypatch, numpy_blas, name, kw):
    """With numba (ember.backend.jit) and no MKL, each large parameter (here: every one) is
    updated in one compiled pass: it follows torch, and gives bitwise the NumPy path's
    parameters and momentum buffers."""
    import ember.optim.sgd as sgd
    from ember.backend import jit

    monkeypatch.setattr(sgd, "_LARGE", 1)
    monkeypatch.setattr(jit, "_kernels", None)
    monkeypatch.delenv("EMBER_JIT", raising=False)
    assert jit.kernels() is not None
    test_trajectory_with_torch_grads(name, kw)
    params, _, _ = _data()
    grads = [[np.random.default_rng(i).standard_normal(p.shape).astype(np.float32)
              for p in params] for i in range(5)]
    runs = []
    for kernels in (jit.kernels(), False):
        monkeypatch.setattr(jit, "_kernels", kernels)
        ps = [ember.tensor(p.copy(), requires_grad=True) for p in params]
        opt = getattr(eo, name)(ps, **kw)
        _run(opt, ps, grads)
        runs.append([p.detach().numpy() for p in ps] +
                    [v.numpy() for st in opt.state_dict()["state"].values() for v in st.values()
                     if isinstance(v, ember.Tensor)])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name,kw", CONFIGS[:5], ids=IDS[:5])
def test_sgd_mkl_update_follows_torch(monkeypatch, mkl_blas, name, kw):
    """With MKL, each large parameter (here: every one) is updated by two ``axpby`` passes
    (Nesterov's keeps the other paths); numba is not used, so not loaded for it."""
    import ember.optim.sgd as sgd
    from ember.backend import jit

    monkeypatch.setattr(sgd, "_LARGE", 1)
    calls, axpby = [], mkl.axpby
    monkeypatch.setattr(mkl, "axpby", lambda *a: calls.append(a[-2].size) or axpby(*a))
    if not kw.get("nesterov"):
        monkeypatch.setattr(jit, "kernels", lambda: pytest.fail("numba asked for"))
    test_trajectory_with_torch_grads(name, kw)
    if kw.get("nesterov"):
        assert not calls
    elif kw.get("momentum"):  # the first step fills the momentum buffers: one pass
        assert len(calls) == 4 + 99 * 4 * 2
    else:
        assert len(calls) == 100 * 4


@pytest.mark.parametrize("name,kw", [CONFIGS[1], CONFIGS[6], CONFIGS[13], CONFIGS[17]],
                         ids=[IDS[1], IDS[6], IDS[13], IDS[17]])
def test_trajectory_own_gradients(name, kw):
    params, x, y = _data(1)
    tp, topt, ep, eopt = _pair(name, kw, params)
    ex, ey, tx, ty = ember.tensor(x), ember.tensor(y), torch.tensor(x), torch.tensor(y)
    for _ in range(100):
        topt.zero_grad()
        _loss(torch, tp, tx, ty).backward()
        topt.step()
        eopt.zero_grad()
        _loss(ember, ep, ex, ey).backward()
        eopt.step()
    for i, (a, b) in enumerate(zip(ep, tp)):
        assert_close(a, b, rtol=1e-4, atol=1e-5, what=f"{name} param {i}")


def _run(opt, ps, grads):
    for g in grads:
        opt.zero_grad()
        for p, gi in zip(ps, g):
            p.grad = ember.tensor(gi)
        opt.step()


@pytest.mark.parametrize("name,kw", [CONFIGS[i] for i in _ROUND_TRIP],
                         ids=[IDS[i] for i in _ROUND_TRIP])
def test_state_dict_round_trip_continues_trajectory(name, kw):
    params, _, _ = _data()
    rng = np.random.default_rng(3)
    grads = [[rng.standard_normal(s).astype(np.float32) for s in SHAPES] for _ in range(40)]
    ref = [Parameter(ember.tensor(a.copy())) for a in params]
    ref_opt = getattr(eo, name)(ref, **kw)
    _run(ref_opt, ref, grads)

    ps = [Parameter(ember.tensor(a.copy())) for a in params]
    opt = getattr(eo, name)(ps, **kw)
    _run(opt, ps, grads[:20])
    buf = io.BytesIO()
    ember.save({"model": [p.detach() for p in ps], "optim": opt.state_dict()}, buf)
    buf.seek(0)
    ck = ember.load(buf)
    ps2 = [Parameter(t) for t in ck["model"]]
    opt2 = getattr(eo, name)(ps2, lr=123.0)  # the loaded groups replace these options
    opt2.load_state_dict(ck["optim"])
    assert opt2.param_groups[0]["lr"] == kw.get("lr", opt.defaults["lr"])
    _run(opt2, ps2, grads[20:])
    for a, b in zip(ps2, ref):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_torch_state_dict_loads_and_continues():
    params, x, y = _data()
    tp, topt, ep, eopt = _pair("Adam", {"lr": 1e-2, "amsgrad": True}, params)
    for _ in range(10):
        topt.zero_grad()
        _torch_grads(tp, x, y)
        topt.step()
    tsd = topt.state_dict()
    conv = {"state": {k: {n: ember.tensor(v.numpy()) for n, v in s.items()}
                      for k, s in tsd["state"].items()},
            "param_groups": tsd["param_groups"]}
    for p, t in zip(ep, tp):
        p.data = ember.tensor(t.detach().numpy().copy())
    eopt.load_state_dict(conv)
    _step_both(topt, eopt, tp, ep, x, y, 10)
    for a, b in zip(ep, tp):
        assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_param_groups_and_closure():
    params, x, y = _data()
    tp = [torch.tensor(a.copy(), requires_grad=True) for a in params]
    ep = [Parameter(ember.tensor(a.copy())) for a in params]
    topt = torch.optim.SGD([{"params": tp[:2]}, {"params": tp[2:], "lr": 0.2}], lr=0.01,
                           momentum=0.9)
    eopt = eo.SGD([{"params": ep[:2]}, {"params": ep[2:], "lr": 0.2}], lr=0.01, momentum=0.9)
    ex, ey = ember.tensor(x), ember.tensor(y)

    def closure():
        eopt.zero_grad()
        loss = _loss(ember, ep, ex, ey)
        loss.backward()
        return loss

    for _ in range(20):
        topt.zero_grad()
        tl = _loss(torch, tp, torch.tensor(x), torch.tensor(y))
        tl.backward()
        topt.step()
        el = eopt.step(closure)
        np.testing.assert_allclose(el.item(), tl.item(), rtol=1e-4)
    assert [g["lr"] for g in eopt.param_groups] == [0.01, 0.2]
    for a, b in zip(ep, tp):
        assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_zero_grad_and_skipped_params():
    p, q = Parameter(ember.ones(3)), Parameter(ember.ones(2))
    opt = eo.SGD([p, q], lr=0.5)
    p.grad = ember.tensor([1.0, 2.0, 3.0])
    opt.step()  # q has no gradient: untouched
    np.testing.assert_allclose(p.detach().numpy(), [0.5, 0.0, -0.5])
    np.testing.assert_array_equal(q.detach().numpy(), [1.0, 1.0])
    g = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is g and not p.grad.numpy().any()
    opt.zero_grad()
    assert p.grad is None


def test_add_param_group_and_hooks():
    p, q = Parameter(ember.ones(3)), Parameter(ember.ones(2))
    opt = eo.Adam([p], lr=0.1)
    opt.add_param_group({"params": q, "lr": 0.5})
    assert opt.param_groups[1]["betas"] == (0.9, 0.999) and opt.param_groups[1]["lr"] == 0.5
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        opt.add_param_group({"params": [p]})
    calls = []
    h1 = opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: calls.append("post"))
    opt.step()
    h1.remove()
    opt.step()
    assert calls == ["pre", "post", "post"]


def test_named_parameters_are_accepted():
    p = Parameter(ember.ones(2))
    opt = eo.SGD([("w", p)], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["w"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["w"]


@pytest.mark.parametrize("make,msg", [
    (lambda p: eo.SGD([], lr=0.1), "optimizer got an empty parameter list"),
    (lambda p: eo.SGD([p], lr=-1), "Invalid learning rate: -1"),
    (lambda p: eo.SGD([p], lr=0.1, momentum=-0.5), "Invalid momentum value: -0.5"),
    (lambda p: eo.SGD([p], lr=0.1, nesterov=True), "Nesterov momentum requires a momentum"),
    (lambda p: eo.Adam([p], betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0"),
    (lambda p: eo.Adam([p], eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (lambda p: eo.AdamW([p], weight_decay=-1), "Invalid weight_decay value: -1"),
    (lambda p: eo.RMSprop([p], alpha=-0.1), "Invalid alpha value: -0.1"),
    (lambda p: eo.Adagrad([p], lr_decay=-1), "Invalid lr_decay value: -1"),
    (lambda p: eo.Adadelta([p], rho=1.5), "Invalid rho value: 1.5"),
    (lambda p: eo.Adamax([p], betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (lambda p: eo.NAdam([p], momentum_decay=-1), "Invalid momentum_decay value: -1"),
    (lambda p: eo.RAdam([p], betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
    (lambda p: eo.Rprop([p], etas=(1.1, 1.2)), "Invalid eta values: 1.1, 1.2"),
    (lambda p: eo.ASGD([p], weight_decay=-1), "Invalid weight_decay value: -1"),
    (lambda p: eo.SGD([p * 2], lr=0.1), "can't optimize a non-leaf Tensor"),
    (lambda p: eo.SGD(p, lr=0.1), "should be an iterable of Tensors or dicts"),
    (lambda p: eo.SGD([{"params": {p}}], lr=0.1), "ordered collections"),
    (lambda p: eo.SGD([1.0], lr=0.1), "optimizer can only optimize Tensors"),
])
def test_errors(make, msg):
    p = Parameter(ember.ones(2))
    with pytest.raises((ValueError, TypeError), match=msg.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("+", r"\+")):
        make(p)


def test_differentiable_is_refused():
    with pytest.raises(NotImplementedError, match="differentiable=True is not supported"):
        eo.Adam([Parameter(ember.ones(2))], differentiable=True)


def test_load_state_dict_mismatch_errors():
    a, b = Parameter(ember.ones(2)), Parameter(ember.ones(2))
    sd = eo.SGD([a, b], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        eo.SGD([a], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        eo.SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(sd)


def test_duplicate_parameter_warns():
    p = Parameter(ember.ones(2))
    with pytest.warns(UserWarning, match="duplicate parameters"):
        eo.SGD([p, p], lr=0.1)


def test_updates_in_place_float32():
    p = Parameter(ember.ones(4))
    arr = p.detach().numpy()
    for cls in (eo.SGD, eo.Adam, eo.AdamW, eo.RMSprop, eo.Adagrad, eo.Adadelta, eo.Adamax):
        opt = cls([p], lr=0.1)
        p.grad = ember.ones(4)
        opt.step()
        assert p.detach().numpy() is arr and arr.dtype == np.float32
        for v in opt.state[p].values():
            assert v.dtype == ember.float32


@pytest.mark.parametrize("name,kw", [CONFIGS[i] for i in _TO_TORCH],
                         ids=[IDS[i] for i in _TO_TORCH])
def test_ember_state_dict_loads_into_torch_and_continues(name, kw):
    params, x, y = _data(2)
    tp, topt, ep, eopt = _pair(name, kw, params)
    for _ in range(10):  # ember trains alone (torch's grads, ember's update)...
        grads = _torch_grads([torch.tensor(p.detach().numpy(), requires_grad=True) for p in ep],
                             x, y)
        eopt.zero_grad()
        for p, g in zip(ep, grads):
            p.grad = ember.tensor(g)
        eopt.step()
    esd = eopt.state_dict()
    with torch.no_grad():  # ...then torch takes over its parameters and optimizer state
        for t, e in zip(tp, ep):
            t.copy_(torch.tensor(e.detach().numpy()))
    topt.load_state_dict({"state": {k: {n: torch.tensor(v.numpy()) if isinstance(v, ember.Tensor)
                                        else v for n, v in s.items()}
                                    for k, s in esd["state"].items()},
                          "param_groups": esd["param_groups"]})
    _step_both(topt, eopt, tp, ep, x, y, 10)
    for a, b in zip(ep, tp):
        assert_close(a, b, rtol=1e-5, atol=1e-7)


def _lbfgs_run(lib, kw, steps=2, opt=None, ps=None):
    params, x, y = _data()
    if ps is None:
        ps = [lib.tensor(a.copy(), requires_grad=True) for a in params]
    if opt is None:
        opt = lib.optim.LBFGS(ps, **kw)
    xt, yt = lib.tensor(x), lib.tensor(y)

    def closure():
        opt.zero_grad()
        loss = _loss(lib, ps, xt, yt)
        loss.backward()
        return loss

    losses = [float(opt.step(closure).detach()) for _ in range(steps)]
    return losses, ps, opt


@pytest.mark.parametrize("kw", [
    {"max_iter": 5, "history_size": 3},
    {"line_search_fn": "strong_wolfe", "max_iter": 6},
    {"line_search_fn": "strong_wolfe", "max_iter": 4, "history_size": 2, "lr": 0.3},
])
def test_lbfgs_follows_torch(kw):
    el, ep, eopt = _lbfgs_run(ember, kw)
    tl, tp, topt = _lbfgs_run(torch, kw)
    np.testing.assert_allclose(el, tl, rtol=1e-5)
    for a, b in zip(ep, tp):
        assert_close(a, b, rtol=1e-4, atol=1e-5)
    es, ts = eopt.state[ep[0]], topt.state[tp[0]]
    assert (es["func_evals"], es["n_iter"]) == (ts["func_evals"], ts["n_iter"])
    assert set(es) == set(ts)


def test_lbfgs_state_dict_round_trip_and_errors():
    kw = {"line_search_fn": "strong_wolfe", "max_iter": 4, "history_size": 3}
    _, ref, _ = _lbfgs_run(ember, kw, steps=4)
    _, ps, opt = _lbfgs_run(ember, kw, steps=2)
    buf = io.BytesIO()
    ember.save({"model": [p.detach() for p in ps], "optim": opt.state_dict()}, buf)
    buf.seek(0)
    ck = ember.load(buf)
    ps2 = [t.requires_grad_() for t in ck["model"]]
    opt2 = eo.LBFGS(ps2, **kw)
    opt2.load_state_dict(ck["optim"])
    _lbfgs_run(ember, kw, opt=opt2, ps=ps2)
    for a, b in zip(ps2, ref):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    p = Parameter(ember.ones(2))
    with pytest.raises(ValueError, match="LBFGS doesn't support per-parameter options"):
        eo.LBFGS([{"params": [p]}, {"params": [Parameter(ember.ones(2))]}])
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        eo.LBFGS([p], lr=-1)
    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        opt = eo.LBFGS([p], line_search_fn="armijo")
        opt.step(lambda: (p * p).sum().backward() or (p * p).sum())


@pytest.mark.parametrize("name, keys", [
    ("SGD", ["nesterov", "maximize"]), ("Adam", ["amsgrad", "maximize", "decoupled_weight_decay"]),
    ("NAdam", ["maximize", "decoupled_weight_decay"]), ("RAdam", ["maximize"]),
    ("RMSprop", ["momentum", "centered", "maximize"]), ("ASGD", ["maximize"]),
    ("Rprop", ["maximize"]),
])
def test_state_dict_from_before_an_option_gets_its_default(name, keys):
    """A state_dict saved before an option existed (its groups lack the key) loads with the
    option's default, as torch's __setstate__ gives it; the step runs."""
    for lib in (ember, torch):
        p = lib.nn.Parameter(lib.ones(3))
        opt = getattr(lib.optim, name)([p], lr=0.1)
        sd = opt.state_dict()
        for k in keys:
            del sd["param_groups"][0][k]
        fresh = getattr(lib.optim, name)([p], lr=0.1)
        fresh.load_state_dict(sd)
        want = {k: getattr(lib.optim, name)([p], lr=0.1).param_groups[0][k] for k in keys}
        assert {k: fresh.param_groups[0][k] for k in keys} == want
        p.grad = lib.ones(3)
        fresh.step()
