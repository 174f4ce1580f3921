"""Normalisation layers against torch: train and eval, running statistics after several steps,
state_dict keys, functional forms, float64 gradcheck and error messages."""

import numpy as np
import pytest
import torch

import ember
import ember.nn as nn
from tests.harness import assert_close, check_gradcheck, check_module, check_op, copy_params

# mean/variance reductions sum in a different order than ATen's Welford passes
TOL = dict(rtol=1e-4, atol=1e-5)

BN = [
    ("BatchNorm2d", (3,), {}, (4, 3, 5, 6)),
    ("BatchNorm2d", (3,), dict(momentum=None), (4, 3, 5, 6)),
    ("BatchNorm2d", (3,), dict(affine=False, eps=1e-3), (4, 3, 5, 6)),
    ("BatchNorm2d", (3,), dict(track_running_stats=False), (4, 3, 5, 6)),
    ("BatchNorm2d", (3,), dict(bias=False, momentum=0.3), (4, 3, 5, 6)),
    ("BatchNorm1d", (5,), {}, (8, 5)),
    ("BatchNorm1d", (5,), dict(momentum=0.5), (4, 5, 7)),
    ("BatchNorm3d", (2,), {}, (2, 2, 3, 4, 5)),
]


def _pair(name, args, kw):
    return getattr(torch.nn, name)(*args, **kw), getattr(nn, name)(*args, **kw)


@pytest.mark.parametrize("name,args,kw,shape", BN)
def test_batchnorm_train_and_eval(name, args, kw, shape, each_kernels):
    t, e = _pair(name, args, kw)
    check_module(t, e, [shape], train=True, **TOL)
    check_module(t, e, [shape], seed=7, train=False, **TOL)


@pytest.mark.parametrize("name,args,kw,shape", BN)
def test_batchnorm_running_stats_after_steps(name, args, kw, shape, each_kernels, offset=1):
    t, e = _pair(name, args, kw)
    copy_params(t, e)
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = (rng.standard_normal(shape) * 2 + offset).astype(np.float32)
        t(torch.tensor(x))
        e(ember.tensor(x))
    for key, tv in t.state_dict().items():
        assert_close(e.state_dict()[key], tv, what=key, **TOL)
    t.eval()
    e.eval()
    x = rng.standard_normal(shape).astype(np.float32)
    assert_close(e(ember.tensor(x)), t(torch.tensor(x)), what="eval output", **TOL)



@pytest.mark.parametrize("name,args,kw,shape", [BN[0], BN[2], BN[4], BN[6]])
def test_batchnorm_split_between_threads(idle, monkeypatch, name, args, kw, shape, each_kernels):
    """Training batch norm shares its passes over the samples between threads from _SPLIT
    elements: lowered to 1, the split path runs on these small shapes (and its running stats
    follow torch's)."""
    import ember.ops.normalization as norm

    monkeypatch.setattr(norm, "_SPLIT", 1)
    test_batchnorm_train_and_eval(name, args, kw, shape, each_kernels)
    test_batchnorm_running_stats_after_steps(name, args, kw, shape, each_kernels)


def test_batchnorm_statistics_of_offset_data(each_kernels):
    """Activations far from zero (mean 1000, std 2): the variance is summed around the mean,
    not as E[x^2] - E[x]^2, so the statistics and running stats still follow torch's."""
    test_batchnorm_running_stats_after_steps(*BN[0], each_kernels, offset=1000)


def test_batchnorm_kernels_only_for_rows_longer_than_one(numba_kernels):
    """BatchNorm1d on (N, C) keeps NumPy's column reductions (rows of one element); (N, C, L)
    takes the kernels."""
    import ember.ops.normalization as norm

    x = np.zeros((8, 5, 1), np.float32)
    assert norm._batch_norm_kernels(x, None, None) is None
    assert norm._batch_norm_kernels(np.zeros((8, 5, 3), np.float32), None, None) is not None


def test_batchnorm_gradcheck(each_kernels):
    check_gradcheck([(3, 2, 4, 5), (2,), (2,)],
                    lambda t, x, w, b: t.nn.functional.batch_norm(x, None, None, w, b,
                                                                  training=True))
    check_gradcheck([(4, 3, 5)], lambda t, x: t.nn.functional.batch_norm(x, None, None,
                                                                        training=True))

def test_batchnorm_state_dict_and_repr():
    for name, args, kw, _ in BN:
        t, e = _pair(name, args, kw)
        assert list(e.state_dict().keys()) == list(t.state_dict().keys())
        assert repr(e) == repr(t)
        assert e.num_batches_tracked is None or e.num_batches_tracked.dtype == ember.int64
    t, e = _pair("BatchNorm2d", (3,), {})
    t(torch.randn(4, 3, 2, 2))
    e.load_state_dict(t.state_dict())
    assert int(e.num_batches_tracked) == 1


@pytest.mark.parametrize("shape,ns,kw", [((4, 3, 5, 6), (5, 6), {}), ((4, 3, 6), 6, {}),
                                         ((4, 6), (6,), dict(elementwise_affine=False)),
                                         ((2, 3, 6), 6, dict(bias=False, eps=1e-3))])
@pytest.mark.parametrize("split", [False, True])
def test_layernorm(shape, ns, kw, split, monkeypatch, request, each_kernels):
    if split:  # the rows shared between two threads
        from ember.ops import normalization

        request.getfixturevalue("idle")
        monkeypatch.setattr(normalization, "_SPLIT_ROWS", 0)
    t, e = torch.nn.LayerNorm(ns, **kw), nn.LayerNorm(ns, **kw)
    with torch.no_grad():
        for p in t.parameters():
            p.uniform_(0.5, 1.5)
    check_module(t, e, [shape], **TOL)
    assert repr(t) == repr(e) and list(t.state_dict()) == list(e.state_dict())
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32) * 3 + 2
    with torch.no_grad(), ember.no_grad():  # inference: no x-hat kept
        want = t(torch.tensor(x)).numpy()
        got = e(ember.tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_layernorm_functional_and_gradcheck(each_kernels):
    check_op([(4, 3, 5, 6), (5, 6), (5, 6)],
             lambda t, x, w, b: t.nn.functional.layer_norm(x, (5, 6), w, b), **TOL)
    check_op([(4, 7)], lambda t, x: t.nn.functional.layer_norm(x, (7,), eps=0.1), **TOL)
    check_gradcheck([(4, 3, 6), (6,), (6,)],
                    lambda t, x, w, b: t.nn.functional.layer_norm(x, (6,), w, b))
    check_gradcheck([(3, 5)], lambda t, x: t.nn.functional.layer_norm(x, (5,)))


@pytest.mark.parametrize("g,c,kw,shape", [(3, 6, {}, (4, 6, 5, 3)), (2, 4, {}, (3, 4, 7)),
                                          (1, 4, dict(affine=False), (3, 4, 2, 2)),
                                          (4, 4, dict(eps=1e-3), (2, 4, 5))])
def test_groupnorm(g, c, kw, shape):
    t, e = torch.nn.GroupNorm(g, c, **kw), nn.GroupNorm(g, c, **kw)
    with torch.no_grad():
        for p in t.parameters():
            p.uniform_(0.5, 1.5)
    check_module(t, e, [shape], **TOL)
    assert repr(t) == repr(e) and list(t.state_dict()) == list(e.state_dict())


@pytest.mark.parametrize("name,kw,shape", [("InstanceNorm2d", {}, (2, 3, 5, 6)),
                                           ("InstanceNorm2d", dict(affine=True), (3, 5, 6)),
                                           ("InstanceNorm1d", dict(track_running_stats=True),
                                            (2, 3, 7))])
def test_instancenorm(name, kw, shape):
    t, e = getattr(torch.nn, name)(3, **kw), getattr(nn, name)(3, **kw)
    check_module(t, e, [shape], **TOL)
    for key, tv in t.state_dict().items():
        assert_close(e.state_dict()[key], tv, what=key, **TOL)
    check_module(t, e, [shape], train=False, **TOL)
    assert repr(t) == repr(e)


def test_local_response_norm():
    t, e = torch.nn.LocalResponseNorm(3), nn.LocalResponseNorm(3)
    check_module(t, e, [(2, 6, 4, 5)], **TOL)
    assert repr(t) == repr(e)


@pytest.mark.parametrize("ns,kw,shape", [
    (5, {}, (2, 3, 5)),
    ((3, 5), {"eps": 1e-3}, (2, 3, 5)),
    (4, {"elementwise_affine": False}, (3, 4)),
])
def test_rmsnorm(ns, kw, shape):
    from ember.nn.modules.normalization import RMSNorm  # torch.nn.modules.normalization's path

    assert RMSNorm is nn.RMSNorm
    t, e = torch.nn.RMSNorm(ns, **kw), nn.RMSNorm(ns, **kw)
    with torch.no_grad():  # weights other than ones
        for p in t.parameters():
            p.uniform_(0.5, 1.5)
    assert list(e.state_dict()) == list(t.state_dict())
    check_module(t, e, [shape], **TOL)
    assert repr(t) == repr(e)


def test_rms_norm_functional():
    check_op([(2, 3, 4), (4,)], lambda t, x, w: t.nn.functional.rms_norm(x, (4,), w), **TOL)
    # eps=None is the dtype's epsilon, which dominates for tiny inputs
    check_op([(3, 4)], lambda t, x: t.nn.functional.rms_norm(x * 1e-4, [3, 4]), **TOL)
    check_op([(3, 4)], lambda t, x: t.nn.functional.rms_norm(x * 1e-4, (4,), eps=1e-6), **TOL)
    check_gradcheck([(2, 3, 4), (3, 4)], lambda t, x, w: t.nn.functional.rms_norm(x, (3, 4), w))
    for case in (lambda L: L.nn.functional.rms_norm(L.zeros(2, 3), (4,)),
                 lambda L: L.nn.functional.rms_norm(L.zeros(2, 3), (3,), L.ones(2))):
        assert _msg(case, ember) == _msg(case, torch)


@pytest.mark.parametrize("make,shape", [
    (lambda n: n.BatchNorm2d(3), (0, 3, 4, 4)),
    (lambda n: n.BatchNorm1d(3, momentum=None), (0, 3)),
    (lambda n: n.BatchNorm1d(3, track_running_stats=False), (0, 3, 5)),
    (lambda n: n.GroupNorm(1, 3), (0, 3, 4)),
    (lambda n: n.InstanceNorm1d(3), (0, 3, 4)),  # (with affine=True torch itself fails)
])
@pytest.mark.parametrize("train", [True, False])
def test_empty_batch_matches_torch(make, shape, train):
    # torch: an empty output, running statistics untouched (num_batches_tracked still counts),
    # zero affine gradients; ember crashed in NumPy's reshape(-1) of a size-0 array
    t, e = make(torch.nn), make(nn)
    check_module(t, e, [shape], train=train)
    for (k, tv), (ke, ev) in zip(t.state_dict().items(), e.state_dict().items()):
        assert k == ke
        assert_close(ev, tv, what=k)


def test_functional_vs_torch_and_gradcheck():
    for tr in (True, False):
        def bn(t, x, w, b, tr=tr):
            rm = t.tensor(np.linspace(-1, 1, 3).astype(np.float32))
            rv = t.tensor(np.linspace(0.5, 2, 3).astype(np.float32))
            return t.nn.functional.batch_norm(x, rm, rv, w, b, training=tr, momentum=0.3), rm, rv

        check_op([(4, 3, 5, 6), (3,), (3,)], bn, **TOL)
        check_gradcheck([(4, 3, 5), (3,), (3,)], lambda t, x, w, b, tr=tr:
                        t.nn.functional.batch_norm(x, t.zeros(3, dtype=t.float64),
                                                   t.ones(3, dtype=t.float64), w, b, training=tr))
    check_op([(4, 3, 5), (3,), (3,)],
             lambda t, x, w, b: t.nn.functional.batch_norm(x, None, None, w, b, training=True),
             **TOL)
    check_op([(4, 6, 5), (6,), (6,)],
             lambda t, x, w, b: t.nn.functional.group_norm(x, 3, w, b), **TOL)
    check_gradcheck([(2, 6, 5), (6,), (6,)],
                    lambda t, x, w, b: t.nn.functional.group_norm(x, 2, w, b))
    check_gradcheck([(2, 3, 5)], lambda t, x: t.nn.functional.instance_norm(x))


def test_float32_stays_float32():
    x = ember.randn(4, 3, 5, 5, requires_grad=True)
    bn = nn.BatchNorm2d(3)
    bn(x).sum().backward()
    assert x.grad.dtype == ember.float32 and bn.running_var.dtype == ember.float32


def _msg(fn, lib):
    with pytest.raises(Exception) as ei:
        fn(lib)
    return type(ei.value).__name__, str(ei.value)


@pytest.mark.parametrize("case", [
    lambda L: L.nn.BatchNorm2d(3)(L.zeros(2, 4, 5, 5)),
    lambda L: L.nn.BatchNorm2d(3)(L.zeros(2, 3, 5)),
    lambda L: L.nn.BatchNorm1d(3)(L.zeros(2, 3, 5, 5)),
    lambda L: L.nn.LayerNorm(5)(L.zeros(2, 4)),
    lambda L: L.nn.LayerNorm([3, 5])(L.zeros(2, 4, 5)),
    lambda L: L.nn.GroupNorm(3, 4),
    lambda L: L.nn.GroupNorm(2, 4)(L.zeros(2, 6, 3)),
])
def test_errors_match_torch(case):
    assert _msg(case, ember) == _msg(case, torch)


def test_batchnorm_single_value_per_channel_in_training():
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        nn.BatchNorm1d(3)(ember.zeros(1, 3))


def test_noncontiguous_inputs():
    F = lambda t: t.nn.functional  # noqa: E731
    check_op([(2, 3, 8, 8), (3,), (3,)],
             lambda t, x, w, b: F(t).batch_norm(x, None, None, w, b, training=True),
             transpose=(0,), **TOL)
    check_op([(2, 3, 8, 8), (8,), (8,)], lambda t, x, w, b: F(t).layer_norm(x, (8,), w, b),
             transpose=(0,), **TOL)
    check_op([(2, 4, 8, 8), (4,), (4,)], lambda t, x, w, b: F(t).group_norm(x, 2, w, b),
             transpose=(0,), **TOL)


def test_rms_norm_without_weight_and_layer_gradcheck():
    """float64 gradchecks of F.rms_norm without a weight (eps given and the default), of
    nn.RMSNorm's input gradient (its weight made non-trivial first) and of the weight's
    gradient with an eps given."""
    F = ember.nn.functional
    check_gradcheck([(2, 3, 4)], lambda t, x: F.rms_norm(x, (4,), eps=1e-5))
    check_gradcheck([(3, 4)], lambda t, x: F.rms_norm(x, [3, 4]))
    layer = nn.RMSNorm((3, 4), dtype=ember.float64)
    with ember.no_grad():
        layer.weight.copy_(ember.tensor(np.random.default_rng(5).standard_normal((3, 4))))
    check_gradcheck([(2, 3, 4)], lambda t, x: layer(x))
    check_gradcheck([(2, 3, 4), (3, 4)], lambda t, x, w: F.rms_norm(x, (3, 4), w, eps=1e-3))
