"""Every scheduler gives torch's learning rates (and momenta) step for step, and round-trips."""

import io
import warnings

import numpy as np
import pytest
import torch

import ember
import ember.optim as eo
from ember.nn import Parameter

TS, ES = torch.optim.lr_scheduler, eo.lr_scheduler


def _scale(e):
    return 0.95 ** e


SCHEDULES = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=7, gamma=0.5),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[10, 30, 30, 60], gamma=0.3),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.97),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=30, eta_min=1e-3),
    "CosineAnnealingWarmRestarts": lambda m, o: m.CosineAnnealingWarmRestarts(
        o, T_0=7, T_mult=2, eta_min=1e-4),
    "OneCycleLR-cos": lambda m, o: m.OneCycleLR(o, max_lr=[0.5, 1.0], total_steps=101),
    "OneCycleLR-linear-3phase": lambda m, o: m.OneCycleLR(
        o, max_lr=0.3, epochs=10, steps_per_epoch=11, anneal_strategy="linear",
        three_phase=True, pct_start=0.25),
    "OneCycleLR-nomomentum": lambda m, o: m.OneCycleLR(o, max_lr=0.3, total_steps=100,
                                                       cycle_momentum=False),
    "LinearLR": lambda m, o: m.LinearLR(o, start_factor=0.1, end_factor=0.9, total_iters=20),
    "LambdaLR": lambda m, o: m.LambdaLR(o, lr_lambda=[_scale, lambda e: 1.0 / (1 + e)]),
    "ConstantLR": lambda m, o: m.ConstantLR(o, factor=0.5, total_iters=12),
    "PolynomialLR": lambda m, o: m.PolynomialLR(o, total_iters=50, power=2.0),
    "MultiplicativeLR": lambda m, o: m.MultiplicativeLR(o, lr_lambda=lambda e: 0.98),
    "CyclicLR-triangular2": lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=9,
                                                    mode="triangular2"),
    "CyclicLR-exp_range": lambda m, o: m.CyclicLR(o, base_lr=[0.01, 0.02], max_lr=0.1,
                                                  step_size_up=5, step_size_down=8,
                                                  mode="exp_range", gamma=0.99),
    "SequentialLR": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=10), m.ExponentialLR(o, gamma=0.9),
            m.CosineAnnealingLR(o, T_max=20)], milestones=[10, 40]),
    "ChainedScheduler": lambda m, o: m.ChainedScheduler(
        [m.ConstantLR(o, factor=0.1, total_iters=5), m.ExponentialLR(o, gamma=0.95)]),
}
ADAM = {"OneCycleLR-cos", "CyclicLR-exp_range"}  # these steer Adam's betas[0]


def _opts(name):
    tp = [torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)]
    ep = [Parameter(ember.zeros(2)), Parameter(ember.zeros(3))]
    if name in ADAM:
        return (torch.optim.Adam([{"params": tp[:1]}, {"params": tp[1:], "lr": 0.2}], lr=0.1),
                eo.Adam([{"params": ep[:1]}, {"params": ep[1:], "lr": 0.2}], lr=0.1))
    return (torch.optim.SGD([{"params": tp[:1]}, {"params": tp[1:], "lr": 0.2}], lr=0.1,
                            momentum=0.9),
            eo.SGD([{"params": ep[:1]}, {"params": ep[1:], "lr": 0.2}], lr=0.1, momentum=0.9))


def _momenta(opt):
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]


def _assert_same(eopt, esched, topt, tsched, step):
    np.testing.assert_allclose(esched.get_last_lr(), tsched.get_last_lr(), rtol=1e-6, atol=1e-12,
                               err_msg=f"get_last_lr at step {step}")
    np.testing.assert_allclose([g["lr"] for g in eopt.param_groups],
                               [g["lr"] for g in topt.param_groups], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(_momenta(eopt), _momenta(topt), rtol=1e-6,
                               err_msg=f"momentum at step {step}")


def _step(opt, sched, n=1):
    for _ in range(n):
        opt.step()
        sched.step()


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_lr_sequence_matches_torch(name):
    topt, eopt = _opts(name)
    tsched, esched = SCHEDULES[name](TS, topt), SCHEDULES[name](ES, eopt)
    _assert_same(eopt, esched, topt, tsched, 0)
    for i in range(100):
        _step(topt, tsched)
        _step(eopt, esched)
        _assert_same(eopt, esched, topt, tsched, i + 1)
    assert set(esched.state_dict()) == set(tsched.state_dict())


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_state_dict_round_trip(name):
    ref_opt = _opts(name)[1]
    ref = SCHEDULES[name](ES, ref_opt)
    _step(ref_opt, ref, 100)

    opt = _opts(name)[1]
    sched = SCHEDULES[name](ES, opt)
    _step(opt, sched, 40)
    buf = io.BytesIO()
    ember.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
    buf.seek(0)
    ck = ember.load(buf)  # weights_only: scheduler states are plain data
    opt2 = _opts(name)[1]
    sched2 = SCHEDULES[name](ES, opt2)
    opt2.load_state_dict(ck["opt"])
    sched2.load_state_dict(ck["sched"])
    _step(opt2, sched2, 60)
    assert sched2.get_last_lr() == ref.get_last_lr()
    assert _momenta(opt2) == _momenta(ref_opt)


def test_warm_restarts_fractional_epochs():
    topt, eopt = _opts("x")
    t = TS.CosineAnnealingWarmRestarts(topt, T_0=5, T_mult=2)
    e = ES.CosineAnnealingWarmRestarts(eopt, T_0=5, T_mult=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in range(30):
            for i in range(4):
                t.step(epoch + i / 4)
                e.step(epoch + i / 4)
                np.testing.assert_allclose(e.get_last_lr(), t.get_last_lr(), rtol=1e-6)


@pytest.mark.filterwarnings("ignore:Detected call of")
@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
                                  "LinearLR", "ConstantLR", "PolynomialLR"])
def test_closed_form_with_epoch(name):
    topt, eopt = _opts(name)
    t, e = SCHEDULES[name](TS, topt), SCHEDULES[name](ES, eopt)
    for epoch in (3, 17, 8, 45):
        with pytest.warns(UserWarning, match="epoch parameter"):
            e.step(epoch)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t.step(epoch)
        np.testing.assert_allclose(e.get_last_lr(), t.get_last_lr(), rtol=1e-6)


PLATEAU = [
    {},
    {"mode": "max", "factor": 0.5, "patience": 2, "threshold": 0.05, "cooldown": 2},
    {"mode": "min", "threshold_mode": "abs", "threshold": 0.01, "patience": 0, "min_lr": [0.05, 0.001]},
    {"mode": "max", "threshold_mode": "abs", "patience": 3, "factor": 0.2, "eps": 1e-3},
]


@pytest.mark.parametrize("kw", PLATEAU, ids=[str(k) for k in PLATEAU])
def test_reduce_on_plateau(kw):
    topt, eopt = _opts("x")
    t, e = TS.ReduceLROnPlateau(topt, **kw), ES.ReduceLROnPlateau(eopt, **kw)
    rng = np.random.default_rng(0)
    metric = 1.0
    for i in range(100):
        metric += rng.choice([-0.05, 0.0, 0.001, 0.02]) * (1 if i % 30 < 15 else -1)
        t.step(metric)
        e.step(ember.tensor(metric) if i % 2 else metric)
        np.testing.assert_allclose(e.get_last_lr(), t.get_last_lr(), rtol=1e-6)
        assert e.num_bad_epochs == t.num_bad_epochs and e.cooldown_counter == t.cooldown_counter
    buf = io.BytesIO()
    ember.save(e.state_dict(), buf)
    buf.seek(0)
    e2 = ES.ReduceLROnPlateau(_opts("x")[1], **kw)
    e2.load_state_dict(ember.load(buf))
    assert e2.best == e.best and e2.last_epoch == e.last_epoch


def test_initial_lr_and_warnings():
    opt = _opts("x")[1]
    sched = ES.StepLR(opt, step_size=2)
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.2]
    assert sched.base_lrs == [0.1, 0.2] and sched.last_epoch == 0
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()
    with pytest.warns(UserWarning, match="get_last_lr"):
        sched.get_lr()
    with pytest.raises(KeyError, match="initial_lr"):
        ES.StepLR(_opts("x")[1], step_size=2, last_epoch=5)


@pytest.mark.parametrize("make,exc,msg", [
    (lambda o: ES.StepLR(object(), 2), TypeError, "object is not an Optimizer"),
    (lambda o: ES.LinearLR(o, start_factor=0), ValueError, "Starting multiplicative factor"),
    (lambda o: ES.ConstantLR(o, factor=2), ValueError, "between 0 and 1"),
    (lambda o: ES.CosineAnnealingWarmRestarts(o, T_0=0), ValueError, "positive integer T_0"),
    (lambda o: ES.OneCycleLR(o, max_lr=0.1), ValueError, "total_steps OR"),
    (lambda o: ES.OneCycleLR(o, max_lr=0.1, total_steps=10, anneal_strategy="x"), ValueError,
     "anneal_strategy must be one of"),
    (lambda o: ES.LambdaLR(o, [_scale]), ValueError, "Expected 2 lr_lambdas, but got 1"),
    (lambda o: ES.ReduceLROnPlateau(o, factor=1.0), ValueError, "Factor should be < 1.0"),
    (lambda o: ES.ReduceLROnPlateau(o, mode="avg"), ValueError, "mode avg is unknown"),
    (lambda o: ES.SequentialLR(o, [ES.StepLR(o, 2)], milestones=[3]), ValueError,
     "one more than the number of milestone"),
    (lambda o: ES.SequentialLR(o, [ES.ReduceLROnPlateau(o)], milestones=[]), ValueError,
     "does not support `ReduceLROnPlateau`"),
])
def test_errors(make, exc, msg):
    with pytest.raises(exc, match=msg.replace("(", r"\(").replace(")", r"\)")):
        make(_opts("x")[1])


def test_one_cycle_too_many_steps():
    opt = _opts("x")[1]
    sched = ES.OneCycleLR(opt, max_lr=0.1, total_steps=3)
    _step(opt, sched, 3)
    with pytest.raises(ValueError, match="Tried to step 4 times. The specified number of total "
                                         "steps is 3"):
        _step(opt, sched)


def _mlp_loss(lib, ps, x, y):
    w1, b1, w2, b2 = ps
    return (((x @ w1.T + b1).tanh() @ w2.T + b2 - y) ** 2).mean()


@pytest.mark.parametrize("name", sorted(SCHEDULES) + ["ReduceLROnPlateau"])
def test_scheduled_training_follows_torch(name):
    """100 steps of a scheduled optimizer on the same model and data, each library computing
    its own grads: the same learning rates as torch, and parameters as close to torch's
    float64 run as torch's own float32 run is (within 2x, plus 1e-6).

    Float32 runs are compared through float64 because these steps amplify rounding: torch
    started from parameters one float32 ulp apart ends up to 1.5e-6 past rtol 1e-4 of itself
    (OneCycleLR, max_lr 0.3), so a direct ember-torch tolerance passed or failed on which CPU's
    kernels rounded which way (it failed on an AMD EPYC, for PyTorch's and ember's)."""
    rng = np.random.default_rng(0)
    shapes = [(8, 5), (8,), (3, 8), (3,)]
    init = [(rng.standard_normal(s) * 0.5).astype(np.float32) for s in shapes]
    x, y = rng.standard_normal((16, 5)).astype(np.float32), rng.standard_normal((16, 3)).astype(
        np.float32)
    runs = {}
    for lib, opt_mod, sched_mod, dt in ((torch, torch.optim, TS, np.float32),
                                        (torch, torch.optim, TS, np.float64),
                                        (ember, eo, ES, np.float32)):
        ps = [lib.tensor(a.astype(dt), requires_grad=True) for a in init]
        if name in ADAM:
            opt = opt_mod.Adam([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.02}], lr=0.01)
        else:
            opt = opt_mod.SGD([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.02}], lr=0.01,
                              momentum=0.9)
        sched = (sched_mod.ReduceLROnPlateau(opt, patience=2, factor=0.5)
                 if name == "ReduceLROnPlateau" else SCHEDULES[name](sched_mod, opt))
        lrs = []
        for _ in range(100):
            opt.zero_grad()
            loss = _mlp_loss(lib, ps, lib.tensor(x.astype(dt)), lib.tensor(y.astype(dt)))
            loss.backward()
            opt.step()
            sched.step(round(loss.item(), 3)) if name == "ReduceLROnPlateau" else sched.step()
            lrs.append([g["lr"] for g in opt.param_groups])
        runs[(lib.__name__, dt)] = ([p.detach().numpy().astype(np.float64) for p in ps], lrs)
    (pe, le), (pt, lt) = runs[("ember", np.float32)], runs[("torch", np.float32)]
    p64, l64 = runs[("torch", np.float64)]
    np.testing.assert_allclose(le, lt, rtol=1e-6, atol=1e-12)
    if name != "ReduceLROnPlateau":  # its rounded losses may cross a threshold differently
        np.testing.assert_allclose(l64, lt, rtol=1e-6, atol=1e-12)
    for k, (e, t, r) in enumerate(zip(pe, pt, p64)):
        err, torch_err = np.abs(e - r).max(), np.abs(t - r).max()
        assert err <= 2 * torch_err + 1e-6, (
            f"parameter {k}: ember is {err:.3g} from torch's float64 run, torch's float32 run "
            f"{torch_err:.3g}")
