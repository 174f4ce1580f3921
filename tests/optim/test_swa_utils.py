"""``ember.optim.swa_utils`` against ``torch.optim.swa_utils``: averaged weights and buffers,
SWALR's learning rates, update_bn's statistics."""

import warnings

import numpy as np
import pytest
import torch

import ember


def _run(lib, kind):
    rng = np.random.default_rng(0)
    m = lib.nn.Sequential(lib.nn.Linear(4, 6), lib.nn.BatchNorm1d(6), lib.nn.ReLU(),
                          lib.nn.Linear(6, 2))
    with lib.no_grad():
        for p in m.parameters():
            p.copy_(lib.tensor(rng.standard_normal(tuple(p.shape)).astype(np.float32)))
    su = lib.optim.swa_utils
    kw = {"ema": {"multi_avg_fn": su.get_ema_multi_avg_fn(0.9)},
          "ema_one": {"avg_fn": su.get_ema_avg_fn(0.9)},
          "swa_one": {"avg_fn": su.get_swa_avg_fn()},
          "buffers": {"use_buffers": True}}.get(kind, {})
    avg = su.AveragedModel(m, **kw)
    opt = lib.optim.SGD(m.parameters(), lr=0.1)
    sched = su.SWALR(opt, swa_lr=0.05, anneal_epochs=3,
                     anneal_strategy="linear" if kind == "buffers" else "cos")
    x = lib.tensor(rng.standard_normal((8, 4)).astype(np.float32))
    lrs = []
    for _ in range(5):
        opt.zero_grad()
        m(x).pow(2).mean().backward()
        opt.step()
        avg.update_parameters(m)
        sched.step()
        lrs.append(sched.get_last_lr())
    loader = [lib.tensor(rng.standard_normal((8, 4)).astype(np.float32)) for _ in range(3)]
    su.update_bn(loader, avg)
    sd = {k: v.detach().numpy() for k, v in avg.state_dict().items()}
    return sd, lrs, sorted(sched.state_dict()), avg(x).detach().numpy()


@pytest.mark.parametrize("kind", ["swa", "ema", "ema_one", "swa_one", "buffers"])
def test_averaged_model_swalr_update_bn_match_torch(kind):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SWALR stepped before the optimizer in one call order
        esd, elrs, ekeys, eout = _run(ember, kind)
        tsd, tlrs, tkeys, tout = _run(torch, kind)
    assert list(esd) == list(tsd)  # n_averaged, module.* (PyTorch's keys)
    for k in tsd:
        assert esd[k].dtype == tsd[k].dtype, k
        np.testing.assert_allclose(esd[k], tsd[k], rtol=1e-5, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(elrs, tlrs, rtol=1e-12)
    assert ekeys == tkeys
    np.testing.assert_allclose(eout, tout, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("call, msg", [
    (lambda su, opt: su.get_ema_multi_avg_fn(1.5), "Invalid decay value 1.5 provided"),
    (lambda su, opt: su.get_ema_avg_fn(-0.1), "Invalid decay value -0.1 provided"),
    (lambda su, opt: su.SWALR(opt, 0.1, anneal_strategy="step"),
     "anneal_strategy must be one of 'cos' or 'linear', instead got step"),
    (lambda su, opt: su.SWALR(opt, 0.1, anneal_epochs=-1),
     "anneal_epochs must be equal or greater than 0, got -1"),
])
def test_errors_as_torch(call, msg):
    for lib in (torch, ember):
        opt = lib.optim.SGD([lib.nn.Parameter(lib.ones(2))], lr=0.1)
        with pytest.raises(ValueError, match=msg):
            call(lib.optim.swa_utils, opt)
