"""ember.backend.onednn: oneDNN's convolutions through ctypes, against torch (whose CPU
convolutions are oneDNN's too) and against ember's own path; when it is used and when not."""

import threading

import numpy as np
import pytest
import torch

import ember
import ember.nn.functional as F
from ember.backend import blas, onednn
from ember.ops import conv as conv_op
from tests.harness import input_grads

GEOMETRIES = [  # (x, w, kwargs): ResNet's and LeNet's layers, strides, groups, dilation, padding
    ((4, 16, 12, 12), (16, 16, 3, 3), dict(padding=1)),
    ((4, 3, 32, 32), (6, 3, 5, 5), {}),
    ((3, 16, 9, 9), (32, 16, 3, 3), dict(stride=2, padding=1)),
    ((3, 16, 9, 9), (32, 16, 1, 1), dict(stride=2)),
    ((2, 8, 11, 9), (12, 4, 3, 2), dict(stride=(2, 1), padding=(1, 2), groups=2)),
    ((2, 4, 10, 10), (4, 1, 3, 3), dict(padding=2, dilation=2, groups=4)),
    ((2, 4, 8, 7), (6, 4, 4, 3), dict(padding="same", dilation=(2, 1))),
]


def _run(lib, xs, ws, kw, bias, x_grad=True):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32)
    t = [lib.tensor(a, requires_grad=i > 0 or x_grad) for i, a in enumerate((x, w, b))]
    y = lib.nn.functional.conv2d(t[0], t[1], t[2] if bias else None, **kw)
    y.backward(lib.tensor(rng.standard_normal(tuple(y.shape)).astype(np.float32)))
    grads = [a.grad.numpy() for a in (t if bias else t[:2]) if a.requires_grad]
    return [y.detach().numpy()] + grads


@pytest.mark.parametrize("bias,x_grad", [(True, True), (False, True), (True, False)])
@pytest.mark.parametrize("case", GEOMETRIES)
def test_matches_torch(case, bias, x_grad, with_onednn):
    """Outputs and gradients; without the input's gradient (a first layer) backward runs only
    the weight-gradient primitive, which then reorders the output gradient itself."""
    xs, ws, kw = case
    ours, theirs = (_run(lib, xs, ws, kw, bias, x_grad) for lib in (ember, torch))
    # torch may pick another weight-gradient kernel for a small batch: sums of a few hundred
    # products of N(0, 1) values in another order differ by float32 round-off (~2e-5)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    assert onednn.Conv.get(xs, ws, *_geometry(xs, ws, kw), bias) is not None


def _geometry(xs, ws, kw):
    """(stride, pads, dilation, groups) as conv2d hands them to Conv2dOp."""
    stride = conv_op._ntuple(kw.get("stride", 1), 2)
    dilation = conv_op._ntuple(kw.get("dilation", 1), 2)
    pads = conv_op._pads(kw.get("padding", 0), ws[2:], dilation, stride, 2)
    return stride, pads, dilation, kw.get("groups", 1)


def test_only_float32_and_nonempty(with_onednn):
    """float64 (gradcheck's dtype) and float16 keep ember's path, and so does an empty batch."""
    one, same = (1, 1), (1, 1, 1, 1)
    assert onednn.Conv.get((2, 4, 6, 6), (4, 4, 3, 3), one, same, one, 1, True) is not None
    for dt in (np.float64, np.float16):
        assert onednn.Conv.get((2, 4, 6, 6), (4, 4, 3, 3), one, same, one, 1, True, dt) is None
    assert onednn.Conv.get((0, 4, 6, 6), (4, 4, 3, 3), one, same, one, 1, True) is None
    x = ember.zeros(0, 4, 6, 6, requires_grad=True)
    y = F.conv2d(x, ember.ones(4, 4, 3, 3), padding=1)
    assert tuple(y.shape) == (0, 4, 6, 6)


def test_unavailable_library_keeps_embers_path(monkeypatch):
    """No wheel installed, or EMBER_ONEDNN=0: load() says no and convolutions still match."""
    monkeypatch.setattr(onednn, "_lib", None)
    monkeypatch.setattr(onednn, "_library_path", lambda: None)
    assert not onednn.load()
    assert onednn.Conv.get((2, 4, 6, 6), (4, 4, 3, 3), (1, 1), (1,) * 4, (1, 1), 1, True) is None
    monkeypatch.setattr(onednn, "_lib", None)
    monkeypatch.setenv("EMBER_ONEDNN", "0")
    assert not onednn.available()
    xs, ws, kw = GEOMETRIES[0]
    for a, b in zip(_run(ember, xs, ws, kw, True), _run(torch, xs, ws, kw, True)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_rejected_geometry_falls_back(with_onednn, monkeypatch):
    """A geometry whose primitives oneDNN refuses is remembered as None and runs on ember's own
    path."""
    def refuse(self, *args):
        raise RuntimeError("oneDNN: convolution forward failed with status 2")

    monkeypatch.setattr(onednn.Conv, "_cache", {})
    monkeypatch.setattr(onednn.Conv, "__init__", refuse)
    xs, ws, kw = GEOMETRIES[2]
    for a, b in zip(_run(ember, xs, ws, kw, True), _run(torch, xs, ws, kw, True)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    assert list(onednn.Conv._cache.values()) == [None]


def test_layers_of_one_shape_share_primitives(with_onednn, idle):
    """Two layers of one geometry, forwards before backwards (as in a ResNet stage): the shared
    scratch buffers hold nothing between calls, so each layer gets its own gradients."""
    rng = np.random.default_rng(0)
    shape = (2, 8, 6, 6)
    x = rng.standard_normal(shape).astype(np.float32)
    ws = [rng.standard_normal((8, 8, 3, 3)).astype(np.float32) for _ in range(2)]
    g = rng.standard_normal(shape).astype(np.float32)
    grads = {}
    for lib in (ember, torch):
        xt = lib.tensor(x, requires_grad=True)
        wt = [lib.tensor(w, requires_grad=True) for w in ws]
        h = lib.nn.functional.conv2d(xt, wt[0], padding=1)
        y = lib.nn.functional.conv2d(h * 2, wt[1], padding=1)
        y.backward(lib.tensor(g))
        grads[lib] = [y.detach().numpy(), xt.grad.numpy()] + [w.grad.numpy() for w in wt]
    for a, b in zip(grads[ember], grads[torch]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_threads_follow_the_policy(with_onednn, monkeypatch, idle):
    """Primitives are built and run on all threads, on one inside a parallel_for split or on a
    busy machine: oneDNN fixes the count when it builds them, so each count has its own; the
    OpenMP count is set only when it changes, in GNU's runtime and in Intel's where loaded."""
    from ember.backend import blas, parallel

    calls, set_both = [], onednn._set_omp_threads
    monkeypatch.setattr(onednn, "_set_omp_threads", calls.append)
    monkeypatch.setattr(onednn._omp_threads, "n", None, raising=False)
    monkeypatch.setattr(onednn.Conv, "_cache", {})
    key = ((4, 16, 12, 12), (16, 16, 3, 3), (1, 1), (1,) * 4, (1, 1), 1, False)
    big = onednn.Conv.get(*key)
    assert big.threads == 2 and onednn.Conv.get(*key) is big
    big.forward(np.ones(key[0], np.float32), np.ones(key[1], np.float32), None)
    seen = []
    parallel.parallel_for(2, lambda lo, hi: lo == 0 and seen.append(onednn.Conv.get(*key)),
                          min_n=1)
    assert seen[0].threads == 1 and seen[0] is not big
    monkeypatch.setattr(blas, "machine_busy", lambda: True)
    assert onednn.Conv.get(*key) is seen[0]
    assert calls == [2, 1]  # building big, building the one-thread one (on the same thread)
    sets = []
    monkeypatch.setattr(onednn, "_gomp_threads", lambda k: sets.append(("gnu", k)))
    monkeypatch.setattr(onednn, "_intel_omp", lambda: lambda k: sets.append(("intel", k)))
    set_both(2)
    assert sets == [("gnu", 2), ("intel", 2)]


def test_concurrent_callers(with_onednn):
    """Threads that run the same geometry at once each get their own results."""
    xs, ws, kw = GEOMETRIES[0]
    want = _run(torch, xs, ws, kw, True)
    got, errors = [], []

    def work():
        try:
            for _ in range(5):
                got.append(_run(ember, xs, ws, kw, True))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(got) == 15
    for res in got:
        for a, b in zip(res, want):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


LSTM_CONFIGS = [  # (nn.LSTM kwargs, input shape, with initial states)
    ({}, (5, 3, 4), False),
    ({}, (5, 3, 4), True),
    ({"num_layers": 2, "bidirectional": True, "batch_first": True}, (3, 5, 4), True),
    ({"bias": False, "num_layers": 2}, (5, 3, 4), False),
    ({"bidirectional": True}, (5, 4), False),  # unbatched
]


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
@pytest.mark.parametrize("cfg,shape,states", LSTM_CONFIGS)
def test_recurrent_layers_match_torch(name, cfg, shape, states, with_onednn):
    """nn.LSTM and nn.GRU on oneDNN's layer primitives: outputs, final states and every
    gradient (the GRU's gates and biases regrouped both ways), and the layers really ran
    there."""
    from tests.harness import check_module

    torch.manual_seed(0)
    tm, em = getattr(torch.nn, name)(4, 6, **cfg), getattr(ember.nn, name)(4, 6, **cfg)
    nd = cfg.get("num_layers", 1) * (2 if cfg.get("bidirectional") else 1)
    onednn.Recurrent._cache.clear()
    if states:
        hs = (nd, shape[0] if cfg.get("batch_first") else shape[1], 6)
        if name == "LSTM":
            check_module(tm, em, [shape, hs, hs], rtol=1e-5, atol=1e-5,
                         forward=lambda m, x, h, c: m(x, (h, c)))
        else:
            check_module(tm, em, [shape, hs], rtol=1e-5, atol=1e-5)
    else:
        check_module(tm, em, [shape], rtol=1e-5, atol=1e-5)
    assert {k[0] for k in onednn.Recurrent._cache} == {name.lower()}
    assert onednn.Recurrent._cache and all(v is not None for v in onednn.Recurrent._cache.values())


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_gradient_of_final_state_only(name, with_onednn):
    """Only h_n is used: the output's gradient is zeros (and the LSTM's cell state's)."""
    from tests.harness import check_module

    torch.manual_seed(0)
    tm = getattr(torch.nn, name)(4, 6, num_layers=2)
    em = getattr(ember.nn, name)(4, 6, num_layers=2)
    check_module(tm, em, [(5, 3, 4)], rtol=1e-5, atol=1e-5,
                 forward=lambda m, x: m(x)[1][0] if name == "LSTM" else m(x)[1])


class _NanEmpty:
    """NumPy, except that ``empty`` returns NaNs: a result the primitive leaves unwritten shows."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def empty(shape, dtype=float):
        return np.full(shape, np.nan, dtype)


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_recurrent_backward_writes_over_its_gradient_buffers(name, with_onednn, monkeypatch):
    """The backward writes the weight and bias gradients (diff_weights_overwrite) instead of
    adding into zeroed buffers: with every buffer it reuses or allocates full of NaNs first, the
    gradients still match torch's."""
    from tests.harness import check_module

    torch.manual_seed(0)
    tm, em = getattr(torch.nn, name)(4, 6), getattr(ember.nn, name)(4, 6)
    em(ember.randn(5, 3, 4))  # builds the primitives and their scratch buffers
    for dnnl in onednn.Recurrent._cache.values():
        for buf in dnnl.scratch:
            buf[...] = 0xFF  # NaN in float32
    monkeypatch.setattr(onednn, "np", _NanEmpty())
    check_module(tm, em, [(5, 3, 4)], rtol=1e-5, atol=1e-5)


def test_recurrent_keeps_embers_loop_where_onednn_does_not_apply(with_onednn):
    """Projections, packed sequences, float64 and plain RNNs stay on ember's loop."""
    onednn.Recurrent._cache.clear()
    ember.nn.LSTM(4, 6, proj_size=3)(ember.randn(5, 3, 4))
    packed = ember.nn.utils.rnn.pack_padded_sequence(ember.randn(5, 3, 4), [5, 3, 2])
    ember.nn.LSTM(4, 6)(packed)
    ember.nn.GRU(4, 6)(packed)
    ember.nn.LSTM(4, 6).double()(ember.randn(5, 3, 4, dtype=ember.float64))
    ember.nn.RNN(4, 6)(ember.randn(5, 3, 4))
    assert not onednn.Recurrent._cache
    assert onednn.Recurrent.get("lstm", 5, 3, 4, 6, np.float64) is None


def test_loaded_with_the_first_convolution_only(with_onednn):
    """``import ember`` does not load oneDNN (65 MB of library); the first float32 convolution
    does, unless EMBER_ONEDNN=0."""
    from tests.harness import python_output

    code = ("import ember\n"
            "def loaded():\n"
            "    return any('libdnnl' in line for line in open('/proc/self/maps'))\n"
            "print(loaded(), end=' ')\n"
            "ember.nn.functional.conv2d(ember.randn(1, 2, 5, 5), ember.randn(3, 2, 3, 3))\n"
            "print(loaded())")
    assert python_output(code) == "False True"
    assert python_output(code, EMBER_ONEDNN="0") == "False False"


def test_forked_child_takes_embers_path(with_onednn):
    """GNU OpenMP's threads do not survive fork (a child running a primitive the parent ran
    hung): a forked child's convolutions and LSTMs run on ember's own paths and match; a
    backward through the parent's oneDNN graph raises instead of hanging."""
    from tests.harness import in_forked_child

    xs, ws, kw = GEOMETRIES[0]
    want = _run(torch, xs, ws, kw, True)
    for a, b in zip(_run(ember, xs, ws, kw, True), want):  # the parent runs oneDNN's
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    x = ember.randn(2, 16, 6, 6, requires_grad=True)
    y = F.conv2d(x, ember.randn(16, 16, 3, 3), padding=1)
    lstm = ember.nn.LSTM(4, 6)
    want_lstm = lstm(ember.ones(5, 3, 4))[0].detach().numpy()

    def child():
        got = _run(ember, xs, ws, kw, True)
        got_lstm = lstm(ember.ones(5, 3, 4))[0].detach().numpy()
        try:
            y.sum().backward()
            error = None
        except RuntimeError as e:
            error = str(e)
        return got, got_lstm, onednn.Conv.get(xs, ws, *_geometry(xs, ws, kw), True), error

    got, got_lstm, conv, error = in_forked_child(child)
    assert conv is None
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got_lstm, want_lstm, rtol=1e-5, atol=1e-5)
    assert "forked" in error


def test_lstm_workspace_returns_for_the_next_step(with_onednn, idle):
    """A forward's workspace goes back to its LSTM when the graph is freed, and the next
    forward reuses it; a retained graph keeps its own, so a second backward sees the same."""
    import gc

    m = ember.nn.LSTM(4, 6)
    x = ember.randn(7, 3, 4)
    dnnl = onednn.Recurrent.get("lstm", 7, 3, 4, 6)
    dnnl.free.clear()
    m(x)[0].sum().backward()
    ref = [p.grad.numpy().copy() for p in m.parameters()]
    gc.collect()
    assert len(dnnl.free) == 1
    spare = dnnl.free[0]
    y = m(x)[0].sum()
    assert not dnnl.free
    y2 = m(x * 2)[0].sum()  # a second live graph of the same shape: its own workspace
    for p in m.parameters():
        p.grad = None
    y.backward(retain_graph=True)
    first = [p.grad.numpy().copy() for p in m.parameters()]
    assert all(np.array_equal(a, b) for a, b in zip(first, ref))  # not y2's gates
    for p in m.parameters():
        p.grad = None
    y.backward()
    assert all(np.array_equal(a, p.grad.numpy()) for a, p in zip(first, m.parameters()))
    y2.backward()
    del y, y2
    gc.collect()
    assert any(b is spare for b in dnnl.free)


def test_cache_is_bounded_and_dropped_primitives_are_destroyed(with_onednn, monkeypatch):
    """Only the last _CACHE_SIZE geometries stay cached (sequences of many lengths would grow
    it without end); a dropped one destroys its oneDNN handles once nothing holds it, and a
    geometry whose primitives fail half way destroys the handles made before the failure."""
    import gc

    released = []
    release = onednn._release
    def count(owned):  # objects with handles (an object whose build failed has none left)
        if owned:
            released.append(len(owned))
        release(owned)

    monkeypatch.setattr(onednn, "_release", count)
    monkeypatch.setattr(onednn, "_CACHE_SIZE", 2)
    monkeypatch.setattr(onednn.Recurrent, "_cache", {})
    for t in (3, 4, 5):
        assert onednn.Recurrent.get("lstm", t, 2, 4, 6) is not None
    gc.collect()
    assert [k[:5] for k in onednn.Recurrent._cache] == [("lstm", 4, 2, 4, 6), ("lstm", 5, 2, 4, 6)]
    assert len(released) == 1 and released[0] > 10  # descriptors, memories, primitives

    check = onednn._check

    def fail_backward(status, what):
        if what == "convolution backward data":
            raise RuntimeError("oneDNN: convolution backward data failed with status 3")
        check(status, what)

    monkeypatch.setattr(onednn, "_check", fail_backward)
    monkeypatch.setattr(onednn.Conv, "_cache", {})
    released.clear()
    assert onednn.Conv.get((2, 3, 5, 5), (4, 3, 3, 3), (1, 1), (1,) * 4, (1, 1), 1, True) is None
    assert len(released) == 1 and released[0] > 5


# ----------------------------------------------------------------------------- max pooling, ReLU
def _pool_both(x, **kw):
    """ember's and torch's max pool of ``x``: values, flat indices and the input's gradient."""
    g = np.random.default_rng(3).standard_normal(
        tuple(torch.nn.functional.max_pool2d(torch.tensor(x), **kw).shape)).astype(np.float32)
    out = []
    for lib in (ember, torch):
        t = lib.tensor(x, requires_grad=True)
        y, i = lib.nn.functional.max_pool2d(t, return_indices=True, **kw)
        y.backward(lib.tensor(g))
        out.append([y.detach().numpy(), i.numpy(), t.grad.numpy()])
    return out


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0),
                                     dilation=(2, 1)),
                                dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)])
def test_max_pool_runs_on_onednn_and_matches_torch(kw, with_onednn, monkeypatch):
    """float32 max pools run on oneDNN (whose workspace is ember's uint8 kernel positions):
    values, indices and gradients equal torch's; each direction runs one primitive."""
    ran = []
    execute = onednn._execute
    monkeypatch.setattr(onednn, "_execute", lambda p, a: ran.append(p) or execute(p, a))
    monkeypatch.setattr(onednn.MaxPool, "_cache", {})
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 8)).astype(np.float32)
    e, t = _pool_both(x, **kw)
    for a, b in zip(e[:2], t[:2]):
        np.testing.assert_array_equal(a, b)
    # overlapping windows add their gradients in another order: the last bit may differ
    np.testing.assert_allclose(e[2], t[2], rtol=1e-6, atol=1e-7)
    (pool,) = onednn.MaxPool._cache.values()
    assert [p.value for p in ran] == [pool.fwd.value, pool.bwd.value]


def test_max_pool_keeps_embers_path_for_nans_and_other_dtypes(with_onednn, monkeypatch):
    """oneDNN's maximum skips NaNs: an input holding one keeps ember's path, which propagates
    it as torch does (the last NaN of a window wins); float64 and 256-position kernels too."""
    monkeypatch.setattr(onednn.MaxPool, "_cache", {})
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    x[0, 1, 2, 3] = x[1, 2, 5, 5] = x[1, 2, 4, 4] = np.nan
    e, t = _pool_both(x, kernel_size=2)
    for a, b in zip(e, t):
        np.testing.assert_array_equal(a, b)
    assert len(onednn.MaxPool._cache) == 1  # built, but not run on the NaNs
    assert onednn.MaxPool.get((2, 3, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1), (4, 4),
                              np.float64) is None
    assert onednn.MaxPool.get((1, 1, 40, 40), (16, 16), (1, 1), (0, 0), (1, 1), (25, 25)) is None
    big = np.random.default_rng(1).standard_normal((1, 2, 20, 18)).astype(np.float32)
    e, t = _pool_both(big, kernel_size=16, stride=1)  # ember's int32 kernel positions
    for a, b in zip(e[:2], t[:2]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(e[2], t[2], rtol=1e-6, atol=1e-6)  # overlapping windows' sums
    assert len(onednn.MaxPool._cache) == 1


@pytest.mark.parametrize("n", [1 << 17, 3 * (1 << 17) + 5, 1 << 19])
def test_relu_gradient_on_onednn_matches_torch(n, with_onednn, monkeypatch):
    """ReLU's gradient from 2^17 float32 elements runs on oneDNN and equals torch's, NaN inputs
    included (torch passes their gradient through); smaller ones stay with NumPy."""
    monkeypatch.setattr(onednn.ReluBackward, "_cache", {})
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n).astype(np.float32)
    x[::97] = np.nan
    x[::89] = 0.0
    g = rng.standard_normal(n).astype(np.float32)
    np.testing.assert_array_equal(*input_grads("relu", x, g))
    assert [k[0] for k in onednn.ReluBackward._cache] == [n]
    small = ember.tensor(x[:100], requires_grad=True)
    ember.nn.functional.relu(small).backward(ember.tensor(g[:100]))
    assert [k[0] for k in onednn.ReluBackward._cache] == [n]


def test_lenet_and_mlp_steps_need_no_numba(with_onednn):
    """With oneDNN and MKL, training steps of LeNet, an MLP and an LSTM (SGD with momentum) load
    neither numba nor SciPy (~70 MB and 0.6 s that the few kernels left would not win back)."""
    from tests.harness import python_output

    code = (
        "import sys, ember, ember.nn as nn\n"
        "net = nn.Sequential(nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),"
        " nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),"
        " nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))\n"
        "lstm = nn.LSTM(8, 16)\n"
        "opt = ember.optim.SGD(list(net.parameters()) + list(lstm.parameters()), lr=0.1,"
        " momentum=0.9)\n"
        "for _ in range(2):\n"
        "    opt.zero_grad()\n"
        "    loss = nn.functional.cross_entropy(net(ember.randn(64, 3, 32, 32)),"
        " ember.randint(0, 10, (64,))) + lstm(ember.randn(5, 3, 8))[0].sum()\n"
        "    loss.backward()\n"
        "    opt.step()\n"
        "print('numba' in sys.modules, 'scipy' in sys.modules)")
    assert python_output(code) == "False False"
    assert python_output(code, EMBER_ONEDNN="0") == "True True"  # the check can fail


LINEAR_CASES = [  # (input shape, in, out, bias, how the input is laid out); all past _SMALL_MACS
    ((128, 784), 784, 512, True, "contiguous"),
    ((4, 40, 96), 96, 80, True, "contiguous"),
    ((64, 300), 300, 40, False, "contiguous"),
    ((64, 600), 300, 40, True, "every second column"),
]


def _linear_matches_torch(xs, fin, fout, bias, layout, seed, atol):
    """``F.linear`` of a random input (laid out as ``layout`` says) in ember and torch: the
    output and every gradient agree (rtol 1e-5, ``atol``)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(np.float32)
    w = (rng.standard_normal((fout, fin)) / np.sqrt(fin)).astype(np.float32)
    b = rng.standard_normal(fout).astype(np.float32)
    out = {}
    for lib in (ember, torch):
        tx = lib.tensor(x, requires_grad=True)
        tw, tb = lib.tensor(w, requires_grad=True), lib.tensor(b, requires_grad=True)
        inp = (tx[:, ::2] if layout == "every second column" else
               tx.expand(128, fin) if layout == "one row expanded to 128" else tx)
        y = lib.nn.functional.linear(inp, tw, tb if bias else None)
        y.backward(lib.tensor(np.cos(np.arange(y.numel(), dtype=np.float32)).reshape(y.shape)))
        out[lib] = [y.detach().numpy(), tx.grad.numpy(), tw.grad.numpy()] + (
            [tb.grad.numpy()] if bias else [])
    for a, t in zip(out[ember], out[torch]):
        np.testing.assert_allclose(a, t, rtol=1e-5, atol=atol)


@pytest.mark.parametrize("xs,fin,fout,bias,layout", LINEAR_CASES)
def test_linear_forward_runs_on_onednn_and_matches_torch(xs, fin, fout, bias, layout, with_onednn,
                                                          monkeypatch):
    """A float32 Linear layer's forward from ``_SMALL_MACS`` multiply-adds is oneDNN's matmul
    with the bias added in its kernel (one primitive per geometry); outputs and gradients
    equal torch's to float32 round-off, a strided input included."""
    monkeypatch.setattr(onednn.MatMul, "_cache", {})
    monkeypatch.setattr(blas, "_mkl", True)  # the backward's products on MKL (as on Intel's CPUs)
    _linear_matches_torch(xs, fin, fout, bias, layout, seed=0, atol=1e-5)
    assert [(k[0], k[4]) for k in onednn.MatMul._cache] == [
        ((int(np.prod(xs[:-1])), fin), bias)]
    (key,) = onednn.MatMul._cache
    step = 2 if layout == "every second column" else 1
    assert key[1] == (4 * step * fin, 4 * step)  # the input's strides, in bytes


@pytest.mark.parametrize("xs,fin,fout,layout", [((128, 784), 784, 512, "contiguous"),
                                               ((128, 1568), 784, 512, "every second column"),
                                               ((4, 64, 512), 512, 256, "contiguous"),
                                               ((1, 784), 784, 512, "one row expanded to 128")])
def test_linear_backward_runs_on_onednn_where_mkl_does_not(xs, fin, fout, layout, with_onednn,
                                                           monkeypatch):
    """Where MKL does not take the products (not installed, or its generic code: AMD's CPUs),
    a Linear layer's backward from 2^22 multiply-adds runs its two products on oneDNN's matmul
    too: gradients equal torch's, and the primitives are the backward's geometries. An input
    with a zero stride (expanded), which oneDNN refuses, keeps BLAS for the products that read
    it."""
    monkeypatch.setattr(onednn.MatMul, "_cache", {})
    monkeypatch.setattr(blas, "_mkl", False)
    _linear_matches_torch(xs, fin, fout, False, layout, seed=3, atol=1e-4)
    m = 128 if layout == "one row expanded to 128" else int(np.prod(xs[:-1]))
    built = {k[0] for k, v in onednn.MatMul._cache.items() if v is not None}
    assert built == ({(m, fout)} if layout == "one row expanded to 128" else
                     {(m, fin), (m, fout), (fout, m)})


def test_matmul_takes_strided_operands_and_refuses_others(with_onednn):
    """``MatMul`` reads row- and column-major operands and row-sliced ones in place; float64,
    empty and reversed operands are refused (None: the caller keeps BLAS)."""
    rng = np.random.default_rng(2)
    a = rng.standard_normal((70, 50)).astype(np.float32)
    b = rng.standard_normal((30, 90)).astype(np.float32)[:, 10:60].T  # (50, 30), col-major
    bias = rng.standard_normal(30).astype(np.float32)
    want = a.astype(np.float64) @ b.astype(np.float64)
    for left in (a, np.asfortranarray(a), np.pad(a, ((0, 0), (0, 6)))[:, :50]):
        for row in (None, bias):
            got = onednn.MatMul.get(left, b, row is not None)(left, b, row)
            assert got.shape == (70, 30) and got.flags.c_contiguous
            np.testing.assert_allclose(got, want if row is None else want + bias, rtol=1e-5,
                                       atol=1e-5)
    assert onednn.MatMul.get(a.astype(np.float64), b.astype(np.float64), False) is None
    assert onednn.MatMul.get(a[:0], b, False) is None
    assert onednn.MatMul.get(a[::-1], b, False) is None


def test_large_linear_products_stay_on_blas(with_onednn, monkeypatch):
    """Past ``_ONEDNN_MAX_MACS`` (BERT's products) the forward keeps BLAS, and still matches."""
    from ember.ops import linear as linear_op

    monkeypatch.setattr(onednn.MatMul, "_cache", {})
    monkeypatch.setattr(linear_op, "_ONEDNN_MAX_MACS", 64 * 300 * 40 - 1)
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((64, 300)).astype(np.float32), rng.standard_normal((40, 300))
    y = F.linear(ember.tensor(x), ember.tensor(w.astype(np.float32)))
    np.testing.assert_allclose(y.numpy(), x @ w.T, rtol=1e-4, atol=1e-4)
    assert not onednn.MatMul._cache


def test_forked_child_runs_large_products_after_onednn(with_onednn):
    """A child forked after the parent ran oneDNN's kernels runs a large product (MKL's, where
    installed) instead of hanging: loading oneDNN starts MKL first, so both run on Intel's
    OpenMP, which starts afresh in a child. MKL picks GNU's when libdnnl has brought it in,
    and GNU OpenMP's threads do not survive fork: the child's first MKL product hung. In a fresh
    process, since this one loaded MKL long before (``in_forked_child`` cannot set the order)."""
    from tests.harness import python_output

    code = (
        "import os, faulthandler, ember\n"
        "ember.nn.Conv2d(3, 4, 3)(ember.randn(2, 3, 8, 8))\n"
        "lin, x = ember.nn.Linear(784, 512), ember.randn(128, 784)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    faulthandler.dump_traceback_later(60, exit=True)\n"
        "    lin(x)\n"
        "    os._exit(0)\n"
        "print(os.waitpid(pid, 0)[1])")
    assert python_output(code) == "0"
