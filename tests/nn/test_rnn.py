"""RNN / LSTM / GRU layers and cells against torch with the same weights; float64 gradchecks of
the fused recurrent ops; state_dict layout; default init; error messages."""

import numpy as np
import pytest
import torch

import ember
from ember import nn
from ember.ops.recurrent import GRULayer, LSTMLayer, RNNLayer
from tests.harness import check_gradcheck, check_module

# Every product on NumPy's BLAS, then on MKL (the [mkl] extra)
# ember's own time loops; tests/backend/test_onednn.py runs the LSTM layers on oneDNN
pytestmark = pytest.mark.usefixtures("each_blas", "each_kernels", "without_onednn")

# torch's LSTM/GRU (oneDNN kernels) sum in another order; long recurrences drift a few ulps
RT, AT = 1e-5, 1e-5

LAYERS = [("LSTM", {}), ("GRU", {}), ("RNN", {}), ("RNN", {"nonlinearity": "relu"})]
CONFIGS = [
    {},
    {"num_layers": 2},
    {"bidirectional": True},
    {"num_layers": 2, "bidirectional": True, "batch_first": True},
    {"bias": False, "num_layers": 2},
    {"batch_first": True},
]


def _pair(name, *args, **kw):
    torch.manual_seed(0)
    return getattr(torch.nn, name)(*args, **kw), getattr(nn, name)(*args, **kw)


@pytest.mark.parametrize("name,extra", LAYERS)
@pytest.mark.parametrize("cfg", CONFIGS)
def test_layer_matches_torch(name, extra, cfg):
    tm, em = _pair(name, 4, 6, **extra, **cfg)
    shape = (3, 5, 4) if cfg.get("batch_first") else (5, 3, 4)
    check_module(tm, em, [shape], rtol=RT, atol=AT)


@pytest.mark.parametrize("name,extra", LAYERS)
@pytest.mark.parametrize("cfg", [{}, {"num_layers": 2, "bidirectional": True, "batch_first": True}])
def test_layer_initial_states(name, extra, cfg):
    tm, em = _pair(name, 4, 6, **extra, **cfg)
    nd = cfg.get("num_layers", 1) * (2 if cfg.get("bidirectional") else 1)
    shape = (3, 5, 4) if cfg.get("batch_first") else (5, 3, 4)
    if name == "LSTM":
        check_module(tm, em, [shape, (nd, 3, 6), (nd, 3, 6)], rtol=RT, atol=AT,
                     forward=lambda m, x, h, c: m(x, (h, c)))
    else:
        check_module(tm, em, [shape, (nd, 3, 6)], rtol=RT, atol=AT)


@pytest.mark.parametrize("name,extra", LAYERS)
def test_unbatched(name, extra):
    tm, em = _pair(name, 4, 6, num_layers=2, bidirectional=True, **extra)
    check_module(tm, em, [(5, 4)], rtol=RT, atol=AT)
    if name == "LSTM":
        check_module(tm, em, [(5, 4), (4, 6), (4, 6)], rtol=RT, atol=AT,
                     forward=lambda m, x, h, c: m(x, (h, c)))
    else:
        check_module(tm, em, [(5, 4), (4, 6)], rtol=RT, atol=AT)


@pytest.mark.parametrize("name,extra", LAYERS)
def test_only_final_state_used(name, extra):
    """Gradients flow when only h_n is used (the output gets no gradient)."""
    tm, em = _pair(name, 4, 6, num_layers=2, bidirectional=True, **extra)
    check_module(tm, em, [(5, 3, 4)], rtol=RT, atol=AT,
                 forward=lambda m, x: m(x)[1][0] if name == "LSTM" else m(x)[1])


@pytest.mark.parametrize("name,extra", LAYERS)
def test_dropout_eval_and_zero_dropout_train(name, extra):
    tm, em = _pair(name, 4, 6, num_layers=3, dropout=0.4, **extra)
    check_module(tm, em, [(5, 3, 4)], train=False, rtol=RT, atol=AT)
    tm, em = _pair(name, 4, 6, num_layers=2, dropout=0.0, **extra)
    check_module(tm, em, [(5, 3, 4)], train=True, rtol=RT, atol=AT)


def test_dropout_train_is_random_and_seeded():
    m = nn.LSTM(4, 6, num_layers=2, dropout=0.5)
    x = ember.randn(5, 3, 4)
    ember.manual_seed(1)
    a = m(x)[0]
    ember.manual_seed(1)
    b = m(x)[0]
    c = m(x)[0]
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    assert not np.array_equal(a.detach().numpy(), c.detach().numpy())
    m.eval()
    np.testing.assert_array_equal(m(x)[0].detach().numpy(), m(x)[0].detach().numpy())


@pytest.mark.parametrize("cfg", [{}, {"num_layers": 2, "bidirectional": True, "batch_first": True}])
def test_lstm_proj_size(cfg):
    tm, em = _pair("LSTM", 4, 6, proj_size=3, **cfg)
    nd = cfg.get("num_layers", 1) * (2 if cfg.get("bidirectional") else 1)
    shape = (3, 5, 4) if cfg.get("batch_first") else (5, 3, 4)
    check_module(tm, em, [shape], rtol=RT, atol=AT)
    check_module(tm, em, [shape, (nd, 3, 3), (nd, 3, 6)], rtol=RT, atol=AT,
                 forward=lambda m, x, h, c: m(x, (h, c)))


def test_single_step_and_batch_one():
    tm, em = _pair("LSTM", 4, 6, bidirectional=True)
    check_module(tm, em, [(1, 1, 4)], rtol=RT, atol=AT)
    tm, em = _pair("GRU", 4, 6)
    check_module(tm, em, [(1, 2, 4), (1, 2, 6)], rtol=RT, atol=AT)


# ---------------------------------------------------------------- packed sequences
def _packed_forward(name, lengths, batch_first):
    from torch.nn.utils.rnn import pack_padded_sequence as tpack
    from torch.nn.utils.rnn import pad_packed_sequence as tunpack

    from ember.nn.utils.rnn import pack_padded_sequence as epack
    from ember.nn.utils.rnn import pad_packed_sequence as eunpack

    def fwd(m, x, *h):
        t = isinstance(m, torch.nn.Module)
        p = (tpack if t else epack)(x, lengths, batch_first=batch_first, enforce_sorted=False)
        hx = None if not h else (tuple(h) if name == "LSTM" else h[0])
        out, hn = m(p, hx)
        assert type(out).__name__ == "PackedSequence"
        return (tunpack if t else eunpack)(out, batch_first=batch_first)[0], hn

    return fwd


@pytest.mark.parametrize("name,extra", LAYERS)
@pytest.mark.parametrize("cfg", [{}, {"num_layers": 2, "bidirectional": True},
                                 {"bidirectional": True, "batch_first": True}])
def test_packed_sequence(name, extra, cfg):
    tm, em = _pair(name, 4, 6, **extra, **cfg)
    bf = cfg.get("batch_first", False)
    fwd = _packed_forward(name, [5, 2, 4, 1], bf)
    shape = (4, 5, 4) if bf else (5, 4, 4)
    nd = cfg.get("num_layers", 1) * (2 if cfg.get("bidirectional") else 1)
    check_module(tm, em, [shape], forward=fwd, rtol=RT, atol=AT)
    hs = [(nd, 4, 6)] * (2 if name == "LSTM" else 1)
    check_module(tm, em, [shape] + hs, forward=fwd, rtol=RT, atol=AT)


def test_packed_lstm_proj():
    tm, em = _pair("LSTM", 4, 6, proj_size=3, bidirectional=True)
    check_module(tm, em, [(5, 4, 4)], forward=_packed_forward("LSTM", [3, 5, 1, 2], False),
                 rtol=RT, atol=AT)


def test_gradcheck_packed_layers():
    bs = np.array([3, 2, 2, 1])
    for rev in (False, True):
        check_gradcheck([(4, 3, 3), (3, 2), (3, 4), (16, 3), (16, 2), (16,), (16,), (2, 4)],
                        lambda t, x, h, c, *w, rev=rev: LSTMLayer.apply(x, h, c, *w, rev, bs))
        check_gradcheck([(4, 3, 3), (3, 4), (12, 3), (12, 4), (12,), (12,)],
                        lambda t, *a, rev=rev: GRULayer.apply(*a, rev, bs))
        check_gradcheck([(4, 3, 3), (3, 4), (4, 3), (4, 4), (4,), (4,)],
                        lambda t, *a, rev=rev: RNNLayer.apply(*a, False, rev, bs))


# ---------------------------------------------------------------- cells
@pytest.mark.parametrize("name,kw", [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}),
                                     ("LSTMCell", {}), ("GRUCell", {}), ("GRUCell", {"bias": False}),
                                     ("LSTMCell", {"bias": False})])
def test_cells(name, kw):
    tm, em = _pair(name, 4, 6, **kw)
    check_module(tm, em, [(3, 4)])
    check_module(tm, em, [(4,)])
    if name == "LSTMCell":
        check_module(tm, em, [(3, 4), (3, 6), (3, 6)], forward=lambda m, x, h, c: m(x, (h, c)))
        check_module(tm, em, [(4,), (6,), (6,)], forward=lambda m, x, h, c: m(x, (h, c)))
    else:
        check_module(tm, em, [(3, 4), (3, 6)])
        check_module(tm, em, [(4,), (6,)])


def test_cell_loop_matches_layer():
    cell, layer = nn.LSTMCell(4, 6), nn.LSTM(4, 6)
    layer.load_state_dict({k + "_l0": v for k, v in cell.state_dict().items()})
    x = ember.randn(5, 2, 4)
    h = c = ember.zeros(2, 6)
    for t in range(5):
        h, c = cell(x[t], (h, c))
    _, (hn, cn) = layer(x)
    np.testing.assert_allclose(h.detach().numpy(), hn[0].detach().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(c.detach().numpy(), cn[0].detach().numpy(), rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- fused ops, float64
def test_gradcheck_lstm_layer():
    for rev in (False, True):
        check_gradcheck([(3, 2, 3), (2, 4), (2, 4), (16, 3), (16, 4), (16,), (16,)],
                        lambda t, *a, rev=rev: LSTMLayer.apply(*a, None, rev))


def test_gradcheck_lstm_layer_proj_and_no_state():
    check_gradcheck([(3, 2, 3), (2, 2), (2, 4), (16, 3), (16, 2), (16,), (16,), (2, 4)],
                    lambda t, x, h, c, *w: LSTMLayer.apply(x, h, c, *w[:4], w[4], True))
    check_gradcheck([(3, 2, 3), (16, 3), (16, 4)],
                    lambda t, x, wi, wh: LSTMLayer.apply(x, None, None, wi, wh, None, None, None,
                                                         False))


def test_gradcheck_gru_layer():
    for rev in (False, True):
        check_gradcheck([(3, 2, 3), (2, 4), (12, 3), (12, 4), (12,), (12,)],
                        lambda t, *a, rev=rev: GRULayer.apply(*a, rev))
    check_gradcheck([(3, 2, 3), (12, 3), (12, 4)],
                    lambda t, x, wi, wh: GRULayer.apply(x, None, wi, wh, None, None, False))


@pytest.mark.parametrize("relu", [False, True])
def test_gradcheck_rnn_layer(relu):
    for rev in (False, True):
        check_gradcheck([(3, 2, 3), (2, 4), (4, 3), (4, 4), (4,), (4,)],
                        lambda t, *a, rev=rev: RNNLayer.apply(*a, relu, rev))


def test_float32_stays_float32():
    for m in (nn.LSTM(3, 4, bidirectional=True), nn.GRU(3, 4), nn.RNN(3, 4)):
        x = ember.randn(2, 2, 3, requires_grad=True)
        out, _ = m(x)
        assert out.dtype == ember.float32
        out.sum().backward()
        assert x.grad.dtype == ember.float32
        assert all(p.grad.dtype == ember.float32 for p in m.parameters())


# ---------------------------------------------------------------- chunked per-step products
@pytest.fixture
def chunked(monkeypatch, numpy_blas):
    """Small sizes on the one-thread path of big ones: per-step products column-chunked (a
    workaround for OpenBLAS's packing; MKL takes them whole)."""
    from ember.ops import recurrent

    monkeypatch.setattr(recurrent, "_CHUNK_MIN_MACS", 0)
    monkeypatch.setattr(recurrent, "_STEP_PARALLEL_MACS", 1 << 40)
    assert recurrent._StepProduct(np.zeros((32, 128), np.float32), 5).c is not None


@pytest.mark.parametrize("B,K,N", [(32, 256, 1024), (32, 1024, 256), (16, 768, 256), (5, 8, 48)])
def test_step_product_chunks(monkeypatch, numpy_blas, B, K, N):
    from ember.ops import recurrent

    monkeypatch.setattr(recurrent, "_one_thread", lambda: True)  # as with one BLAS thread
    monkeypatch.setattr(recurrent, "_CHUNK_MIN_MACS", 0)
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((B, K), np.float32), rng.standard_normal((K, N), np.float32)
    prod = recurrent._StepProduct(w, B)
    assert prod.c is not None and (prod.halves is not None) == (K >= 2 * N)
    out = np.empty((B, N), np.float32)
    with prod:
        prod(x, out)
    np.testing.assert_allclose(out, x @ w, rtol=1e-5, atol=1e-4)


def test_step_product_weight_layouts():
    from ember.ops import recurrent

    w = np.random.default_rng(0).standard_normal((96, 64)).astype(np.float32)
    for a in (w, w.T, w[:, :48], w.T[:40]):  # C order, a transpose (blocked copy), views
        np.testing.assert_array_equal(recurrent._c_order(a), a)
        assert recurrent._c_order(a).flags.c_contiguous
    tm, em = _pair("LSTM", 4, 8, bidirectional=True)  # 4H = 32: the blocked transpose path
    check_module(tm, em, [(5, 3, 4)], rtol=RT, atol=AT)


@pytest.mark.parametrize("name,extra,cfg", [
    ("LSTM", {}, {}), ("LSTM", {}, {"bidirectional": True, "batch_first": True}),
    ("LSTM", {"proj_size": 16}, {}), ("GRU", {}, {"bidirectional": True}), ("RNN", {}, {})])
def test_chunked_step_products_match_torch(chunked, name, extra, cfg):
    tm, em = _pair(name, 4, 32, **extra, **cfg)
    shape = (5, 6, 4) if cfg.get("batch_first") else (6, 5, 4)
    nd = 2 if cfg.get("bidirectional") else 1
    hs = [(nd, 5, extra.get("proj_size", 32))] + ([(nd, 5, 32)] if name == "LSTM" else [])
    check_module(tm, em, [shape], rtol=RT, atol=AT)
    fwd = _packed_forward(name, [6, 2, 4, 1, 6], False)
    check_module(tm, em, [(6, 5, 4)] + hs, forward=fwd, rtol=RT, atol=AT)


def test_chunked_step_products_gradcheck(chunked):
    bs = np.array([5, 4, 2, 2])
    check_gradcheck([(4, 5, 3), (5, 16), (5, 16), (64, 3), (64, 16), (64,), (64,)],
                    lambda t, *a: LSTMLayer.apply(*a, None, True, bs))
    check_gradcheck([(4, 5, 3), (5, 16), (48, 3), (48, 16), (48,), (48,)],
                    lambda t, *a: GRULayer.apply(*a, False, bs))


# ---------------------------------------------------------------- layout, init, repr
@pytest.mark.parametrize("name,kw", [("LSTM", {"num_layers": 2, "bidirectional": True}),
                                     ("LSTM", {"proj_size": 3, "bias": False}),
                                     ("GRU", {"num_layers": 2}), ("RNN", {"bidirectional": True}),
                                     ("LSTMCell", {}), ("GRUCell", {"bias": False})])
def test_state_dict_layout_and_round_trip(name, kw):
    tm, em = _pair(name, 4, 6, **kw)
    tsd, esd = tm.state_dict(), em.state_dict()
    assert list(esd) == list(tsd)
    assert [tuple(v.shape) for v in esd.values()] == [tuple(v.shape) for v in tsd.values()]
    tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in esd.items()})


def test_default_init_and_seed():
    ember.manual_seed(3)
    a = nn.LSTM(4, 16, num_layers=2)
    ember.manual_seed(3)
    b = nn.LSTM(4, 16, num_layers=2)
    for (n, p), q in zip(a.named_parameters(), b.parameters()):
        v = p.detach().numpy()
        assert np.abs(v).max() <= 0.25 and np.abs(v).max() > 0.2, n
        np.testing.assert_array_equal(v, q.detach().numpy())
    c = nn.GRUCell(4, 16)
    assert all(np.abs(p.detach().numpy()).max() <= 0.25 for p in c.parameters())


def test_repr_and_attributes():
    m = nn.LSTM(10, 20, num_layers=2, batch_first=True, dropout=0.5, bidirectional=True)
    assert repr(m) == repr(torch.nn.LSTM(10, 20, num_layers=2, batch_first=True, dropout=0.5,
                                         bidirectional=True))
    assert repr(nn.RNN(3, 4, nonlinearity="relu", bias=False)) == "RNN(3, 4, bias=False)"
    assert repr(nn.RNNCell(3, 4, nonlinearity="relu")) == "RNNCell(3, 4, nonlinearity=relu)"
    assert len(m.all_weights) == 4 and m.all_weights[1][0] is m.weight_ih_l0_reverse
    m.flatten_parameters()


# ---------------------------------------------------------------- errors
def _raises(exc, match, fn):
    with pytest.raises(exc, match=match):
        fn()


def test_errors():
    m = nn.LSTM(4, 6, num_layers=2)
    _raises(ValueError, r"LSTM: Expected input to be 2D or 3D, got 4D instead",
            lambda: m(ember.randn(1, 2, 3, 4)))
    _raises(RuntimeError, r"input.size\(-1\) must be equal to input_size. Expected 4, got 5",
            lambda: m(ember.randn(3, 2, 5)))
    _raises(RuntimeError, r"Expected hidden\[0\] size \(2, 2, 6\), got \[1, 2, 6\]",
            lambda: m(ember.randn(3, 2, 4), (ember.zeros(1, 2, 6), ember.zeros(2, 2, 6))))
    _raises(RuntimeError, r"Expected hidden\[1\] size \(2, 2, 6\), got \[2, 2, 5\]",
            lambda: m(ember.randn(3, 2, 4), (ember.zeros(2, 2, 6), ember.zeros(2, 2, 5))))
    _raises(RuntimeError, r"hx and cx should also be 3-D but got \(2-D, 2-D\) tensors",
            lambda: m(ember.randn(3, 2, 4), (ember.zeros(2, 6), ember.zeros(2, 6))))
    _raises(ValueError, r"RNN input dtype \(ember.float64\) does not match weight dtype",
            lambda: m(ember.randn(3, 2, 4, dtype=ember.float64)))
    g = nn.GRU(4, 6)
    _raises(RuntimeError, r"Expected hidden size \(1, 2, 6\), got \[1, 3, 6\]",
            lambda: g(ember.randn(3, 2, 4), ember.zeros(1, 3, 6)))
    _raises(RuntimeError, r"For unbatched 2-D input, hx should also be 2-D but got 3-D tensor",
            lambda: g(ember.randn(3, 4), ember.zeros(1, 1, 6)))
    _raises(ValueError, r"RNN: Expected input to be 2D or 3D, got 1D tensor instead",
            lambda: nn.RNN(4, 6)(ember.randn(4)))
    _raises(ValueError, r"Unknown nonlinearity 'gelu'", lambda: nn.RNN(4, 6, nonlinearity="gelu"))
    _raises(ValueError, "proj_size argument is only supported for LSTM",
            lambda: nn.GRU(4, 6, proj_size=2))
    _raises(ValueError, "proj_size has to be smaller than hidden_size",
            lambda: nn.LSTM(4, 6, proj_size=6))
    _raises(ValueError, r"dropout should be a number in range \[0, 1\]",
            lambda: nn.LSTM(4, 6, dropout=1.5))
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        nn.LSTM(4, 6, dropout=0.5)
    _raises(ValueError, r"LSTMCell: Expected input to be 1D or 2D, got 3D instead",
            lambda: nn.LSTMCell(4, 6)(ember.randn(1, 2, 4)))
    _raises(RuntimeError, r"Input batch size 2 doesn't match hidden0 batch size 3",
            lambda: nn.GRUCell(4, 6)(ember.randn(2, 4), ember.zeros(3, 6)))
    _raises(RuntimeError, r"input has inconsistent input_size: got 5 expected 4",
            lambda: nn.RNNCell(4, 6)(ember.randn(2, 5)))


@pytest.mark.parametrize("hx", [
    lambda L: (L.ones(2, 4),),
    lambda L: L.ones(2, 4),
    lambda L: L.ones(4, 4),  # unbound into rows of (4,), ember took them as (h, c)
])
def test_lstm_cell_hx_must_be_a_pair(hx):
    # torch: TypeError for a tensor hx, RuntimeError 'lstm_cell expects two hidden states' for a
    # tuple of another length; ember iterated a tensor hx and took its rows as h and c
    msgs = []
    for lib in (torch, ember):
        batch = hx(lib).shape[0] if isinstance(hx(lib), lib.Tensor) else 2
        with pytest.raises((TypeError, RuntimeError)) as info:
            lib.nn.LSTMCell(3, 4)(lib.ones(batch, 3), hx(lib))
        msgs.append((type(info.value), str(info.value)))
    assert msgs[1] == msgs[0]


@pytest.mark.parametrize("make,shape", [
    (lambda n: n.LSTM(3, 4), (0, 2, 3)),
    (lambda n: n.GRU(3, 4, batch_first=True), (2, 0, 3)),
    (lambda n: n.RNN(3, 4), (0, 3)),
    (lambda n: n.LSTM(3, 4, batch_first=True, bidirectional=True), (0, 3)),
])
def test_empty_sequence_raises_torch_error(make, shape):
    # torch: RuntimeError 'Expected sequence length to be larger than 0 in RNN'; ember raised a
    # raw IndexError from inside the layer
    for lib in (torch, ember):
        with pytest.raises(RuntimeError, match="Expected sequence length to be larger than 0"):
            make(lib.nn)(lib.zeros(*shape))


@pytest.mark.parametrize("make,shape", [
    (lambda n: n.LSTM(3, 4), (5, 0, 3)),
    (lambda n: n.GRU(3, 4, batch_first=True), (0, 5, 3)),
    (lambda n: n.RNN(3, 4, num_layers=2), (5, 0, 3)),
    (lambda n: n.LSTM(3, 4, batch_first=True, bidirectional=True, proj_size=2), (0, 5, 3)),
])
def test_empty_batch_matches_torch(make, shape):
    # torch runs a batch of 0 sequences (zero weight gradients); ember's backward crashed in
    # NumPy's reshape(-1) of a size-0 array
    check_module(make(torch.nn), make(nn), [shape])
