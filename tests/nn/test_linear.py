"""Linear-family layers and ops vs torch: Linear, Bilinear, Identity, Flatten/Unflatten, Embedding,
dropout, one_hot and the distances; state_dict interchange; bad-input errors."""

import numpy as np
import pytest
import torch

import ember
from tests.harness import check_gradcheck, check_module, check_op

# Every product on NumPy's BLAS, then on MKL (the [mkl] extra)
pytestmark = pytest.mark.usefixtures("each_blas")

F = ember.nn.functional


def _sd_roundtrip(tm, em):
    """torch -> ember and ember -> torch state_dicts load with equal keys and shapes."""
    assert [(k, tuple(v.shape)) for k, v in em.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in tm.state_dict().items()]
    em.load_state_dict(tm.state_dict())
    tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in em.state_dict().items()})


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("cfg,shape", [((5, 3), (4, 5)), ((5, 3, False), (2, 3, 5)), ((7, 2), (7,)),
                                       ((4, 6), (2, 1, 3, 4))])
def test_linear_matches_torch(cfg, shape, train):
    tm, em = torch.nn.Linear(*cfg), ember.nn.Linear(*cfg)
    assert repr(em) == repr(tm)
    _sd_roundtrip(tm, em)
    check_module(tm, em, [shape], train=train)


def test_linear_default_init_bounds():
    ember.manual_seed(0)
    m = ember.nn.Linear(400, 300)
    w, b = m.weight.detach().numpy(), m.bias.detach().numpy()
    bound = 1 / np.sqrt(400)
    assert w.dtype == np.float32 and np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert np.abs(b).max() <= bound
    np.testing.assert_allclose(w.std(), bound / np.sqrt(3), rtol=0.02)  # U(-b, b) has std b/√3


def test_linear_functional_and_gradcheck():
    check_op([(2, 3, 4), (5, 4), (5,)], lambda t, x, w, b: t.nn.functional.linear(x, w, b),
             transpose=(0, 1))
    check_op([(4,), (5, 4)], lambda t, x, w: t.nn.functional.linear(x, w))
    check_gradcheck([(2, 3, 4), (5, 4), (5,)], lambda t, x, w, b: t.nn.functional.linear(x, w, b))


def test_linear_errors():
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(4x400 and 256x120\)"):
        ember.nn.Linear(256, 120)(ember.randn(4, 400))
    with pytest.raises(RuntimeError, match=r"\(6x400 and 256x120\)"):
        ember.nn.Linear(256, 120)(ember.randn(2, 3, 400))
    with pytest.raises(RuntimeError, match="expected m1 and m2 to have the same dtype, but got: double != float"):
        F.linear(ember.randn(4, 3, dtype=ember.float64), ember.randn(2, 3))


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_bilinear_matches_torch(bias, train):
    tm, em = torch.nn.Bilinear(3, 4, 5, bias=bias), ember.nn.Bilinear(3, 4, 5, bias=bias)
    assert repr(em) == repr(tm)
    _sd_roundtrip(tm, em)
    check_module(tm, em, [(6, 3), (6, 4)], train=train)
    check_module(tm, em, [(2, 3, 3), (2, 3, 4)], train=train)
    check_gradcheck([(3, 2), (3, 4), (5, 2, 4), (5,)],
                    lambda t, a, b, w, c: t.nn.functional.bilinear(a, b, w, c))


def test_identity_flatten_unflatten():
    for make, shape in [(lambda n: n.Identity(3, foo=1), (2, 3)), (lambda n: n.Flatten(), (2, 3, 4, 5)),
                        (lambda n: n.Flatten(0, 2), (2, 3, 4, 5)),
                        (lambda n: n.Unflatten(1, (3, 4)), (2, 12, 5)),
                        (lambda n: n.Unflatten(-1, [2, -1]), (2, 12))]:
        tm, em = make(torch.nn), make(ember.nn)
        assert repr(em) == repr(tm)
        check_module(tm, em, [shape])


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("kw", [{}, {"padding_idx": 2}, {"padding_idx": -1},
                                {"scale_grad_by_freq": True, "padding_idx": 0}])
def test_embedding_matches_torch(kw, train):
    tm, em = torch.nn.Embedding(10, 4, **kw), ember.nn.Embedding(10, 4, **kw)
    assert repr(em) == repr(tm)
    _sd_roundtrip(tm, em)
    idx = np.array([[1, 2, 2, 9], [0, 2, 5, 5]], dtype=np.int64)
    check_module(tm, em, [idx], train=train)
    check_module(tm, em, [idx[0]], train=train)


@pytest.mark.parametrize("vocab,n", [(65, 4096), (5000, 512)])  # sorted segments, np.add.at
@pytest.mark.parametrize("kw", [{}, {"padding_idx": 3}])
def test_embedding_weight_grad_bitwise_torch(vocab, n, kw):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((vocab, 64)).astype(np.float32)
    idx = rng.integers(0, vocab, (n // 64, 64))
    up = rng.standard_normal(idx.shape + (64,)).astype(np.float32)
    tw, ew = torch.tensor(w, requires_grad=True), ember.tensor(w, requires_grad=True)
    torch.nn.functional.embedding(torch.tensor(idx), tw, **kw).backward(torch.tensor(up))
    ember.nn.functional.embedding(ember.tensor(idx), ew, **kw).backward(ember.tensor(up))
    np.testing.assert_array_equal(ew.grad.numpy(), tw.grad.numpy())


def test_embedding_default_init_and_padding_row():
    m = ember.nn.Embedding(1000, 16, padding_idx=3)
    w = m.weight.detach().numpy()
    assert (w[3] == 0).all()
    assert abs(w.std() - 1) < 0.03 and abs(w.mean()) < 0.03


def test_embedding_max_norm_renormalises_rows_like_torch():
    w = np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32) * 3
    tm = torch.nn.Embedding.from_pretrained(torch.tensor(w), freeze=False, max_norm=1.0)
    em = ember.nn.Embedding.from_pretrained(ember.tensor(w), freeze=False, max_norm=1.0)
    idx = np.array([0, 2, 2, 5])
    to = tm(torch.tensor(idx))
    eo = em(ember.tensor(idx))
    np.testing.assert_allclose(eo.detach().numpy(), to.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(em.weight.detach().numpy(), tm.weight.detach().numpy(), rtol=1e-5)


def test_embedding_from_pretrained_and_errors():
    w = ember.randn(5, 2)
    m = ember.nn.Embedding.from_pretrained(w)
    assert not m.weight.requires_grad and m.weight.shape == (5, 2)
    with pytest.raises(IndexError, match="index out of range in self: index 12 is outside the 10 rows"):
        ember.nn.Embedding(10, 3)(ember.tensor([1, 12]))
    with pytest.raises(RuntimeError, match="Expected tensor for argument #1 'indices'"):
        ember.nn.Embedding(10, 3)(ember.tensor([1.0]))
    with pytest.raises(AssertionError, match="Padding_idx must be within num_embeddings"):
        ember.nn.Embedding(10, 3, padding_idx=10)


@pytest.mark.parametrize("shape", [(3,), (2, 3, 4)])
def test_embedding_weight_must_be_2d(shape):
    # torch: RuntimeError "'weight' must be 2-D"; ember looked up entries of any weight
    for lib in (torch, ember):
        with pytest.raises(RuntimeError, match="'weight' must be 2-D"):
            lib.nn.functional.embedding(lib.tensor([1]), lib.ones(*shape))


def test_one_hot():
    x = np.array([[0, 3], [1, 2]])
    out = F.one_hot(ember.tensor(x), 5)
    ref = torch.nn.functional.one_hot(torch.tensor(x), 5)
    np.testing.assert_array_equal(out.numpy(), ref.numpy())
    assert out.dtype == ember.int64
    np.testing.assert_array_equal(F.one_hot(ember.tensor([2, 0])).numpy(), np.eye(3)[[2, 0]])
    with pytest.raises(RuntimeError, match="Class values must be smaller than num_classes."):
        F.one_hot(ember.tensor([12]), 5)
    with pytest.raises(RuntimeError, match="Class values must be non-negative."):
        F.one_hot(ember.tensor([-1]), 5)


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_statistics_and_grad(p):
    x = ember.ones(200, 500, requires_grad=True)
    y = F.dropout(x, p)
    y_ = y.detach().numpy()
    kept = y_ != 0
    assert abs(kept.mean() - (1 - p)) < 0.01
    np.testing.assert_allclose(y_[kept], 1 / (1 - p), rtol=1e-6)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y_)  # grad = mask / (1 - p)
    assert F.dropout(x, p, training=False) is x


def test_dropout_is_reproducible_from_seed():
    ember.manual_seed(3)
    a = F.dropout(ember.ones(50)).numpy()
    ember.manual_seed(3)
    np.testing.assert_array_equal(a, F.dropout(ember.ones(50)).numpy())


@pytest.mark.parametrize("make,shape", [(lambda n: n.Dropout2d(0.5), (4, 6, 3, 3)),
                                        (lambda n: n.Dropout1d(0.5), (4, 6, 5)),
                                        (lambda n: n.Dropout3d(0.5), (2, 6, 2, 2, 2))])
def test_channel_dropout_zeroes_whole_channels(make, shape):
    m = make(ember.nn)
    y = m(ember.ones(*shape)).numpy().reshape(shape[0], shape[1], -1)
    per_channel = y.min(-1) == y.max(-1)
    assert per_channel.all() and set(np.unique(y)) <= {0.0, 2.0}
    m.eval()
    assert (m(ember.ones(*shape)).numpy() == 1).all()
    assert repr(m) == repr(make(torch.nn))


def test_dropout2d_3d_input_warns_like_torch():
    with pytest.warns(UserWarning, match="Received a 3D input to dropout2d"):
        F.dropout2d(ember.ones(2, 3, 4))


def test_alpha_dropout_keeps_mean_and_variance():
    x = ember.randn(200000)
    y = F.alpha_dropout(x, 0.3, training=True).numpy()
    assert abs(y.mean()) < 0.02 and abs(y.std() - 1) < 0.02
    assert repr(ember.nn.AlphaDropout(0.3)) == repr(torch.nn.AlphaDropout(0.3))


def test_dropout_errors_and_eval_modules():
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"):
        ember.nn.Dropout(1.5)
    with pytest.raises(ValueError, match="but got -0.1"):
        F.dropout(ember.ones(2), -0.1)
    with pytest.raises(RuntimeError, match="dropout3d: Expected 4D or 5D input"):
        F.dropout3d(ember.ones(2, 3))
    tm, em = torch.nn.Dropout(0.3), ember.nn.Dropout(0.3)
    check_module(tm, em, [(3, 4)], train=False)


def test_distances():
    check_op([(5, 4), (5, 4)], lambda t, a, b: t.nn.functional.cosine_similarity(a, b))
    check_op([(5, 4), (1, 4)], lambda t, a, b: t.nn.functional.cosine_similarity(a, b, dim=-1))
    check_op([(5, 4), (5, 4)], lambda t, a, b: t.nn.functional.pairwise_distance(a, b, p=3.0))
    check_op([(5, 4), (5, 4)],
             lambda t, a, b: t.nn.functional.pairwise_distance(a, b, keepdim=True))
    check_op([(5, 4)], lambda t, a: t.nn.functional.normalize(a, dim=0))
    check_op([(5, 4)], lambda t, a: t.nn.functional.normalize(a, p=1))
    check_gradcheck([(5, 4), (5, 4)], lambda t, a, b: t.nn.functional.cosine_similarity(a, b))
    check_gradcheck([(5, 4)], lambda t, a: t.nn.functional.normalize(a))
    for make in [lambda n: n.CosineSimilarity(dim=0), lambda n: n.PairwiseDistance(p=1.0)]:
        check_module(make(torch.nn), make(ember.nn), [(5, 4), (5, 4)])
