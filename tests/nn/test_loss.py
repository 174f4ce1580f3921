"""Losses: every functional vs torch (forward + every input grad), float64 gradcheck, modules
(options, state_dict keys, reprs) and the bad-input errors."""

import warnings

import numpy as np
import pytest
import torch

import ember
from tests.harness import check_gradcheck, check_op

rng = np.random.default_rng(0)
IDX4 = rng.integers(0, 10, (4,)).astype(np.int64)
IDXK = rng.integers(0, 5, (2, 3, 4)).astype(np.int64)
PROB = rng.uniform(0.05, 0.95, (3, 4))
BIN = rng.integers(0, 2, (5, 4)).astype(np.float32)
SIGN = np.where(rng.standard_normal((5, 4)) > 0, 1.0, -1.0).astype(np.float32)
W10 = (np.arange(10) / 10 + 0.1).astype(np.float32)


def F(t):
    return t.nn.functional


def w(t, arr, like):
    """A constant weight tensor in ``like``'s dtype (weights get no gradient in these tests)."""
    return t.tensor(arr).to(like.dtype)


CE = [
    ("mean", lambda t, x, y: F(t).cross_entropy(x, y)),
    ("sum", lambda t, x, y: F(t).cross_entropy(x, y, reduction="sum")),
    ("none", lambda t, x, y: F(t).cross_entropy(x, y, reduction="none")),
    ("weight", lambda t, x, y: F(t).cross_entropy(x, y, weight=w(t, W10, x))),
    ("ignore", lambda t, x, y: F(t).cross_entropy(x, y, ignore_index=int(IDX4[1]))),
    ("smooth", lambda t, x, y: F(t).cross_entropy(x, y, label_smoothing=0.2)),
    ("all", lambda t, x, y: F(t).cross_entropy(x, y, weight=w(t, W10, x), label_smoothing=0.3,
                                              ignore_index=int(IDX4[0]))),
    ("all_none", lambda t, x, y: F(t).cross_entropy(x, y, weight=w(t, W10, x), reduction="none",
                                                   label_smoothing=0.3, ignore_index=int(IDX4[0]))),
]


@pytest.mark.parametrize("name,fn", CE, ids=[c[0] for c in CE])
def test_cross_entropy_class_indices(name, fn):
    check_op([(4, 10), IDX4], fn)
    check_gradcheck([(4, 10), IDX4], fn)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_k_dim(reduction, smoothing):
    fn = lambda t, x, y: F(t).cross_entropy(x, y, reduction=reduction, label_smoothing=smoothing,  # noqa: E731
                                           weight=w(t, W10[:5], x), ignore_index=2)
    check_op([(2, 5, 3, 4), IDXK], fn)
    check_gradcheck([(2, 5, 3, 4), IDXK], fn)


def test_cross_entropy_unbatched_and_all_ignored():
    check_op([(7,), np.array(3, np.int64)], lambda t, x, y: F(t).cross_entropy(x, y))
    x = ember.randn(3, 4)
    out = ember.nn.functional.cross_entropy(x, ember.full((3,), -100, dtype=ember.int64))
    assert np.isnan(out.item())  # as torch: 0 / 0


@pytest.mark.parametrize("fn_name", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("kw", [{}, {"label_smoothing": 0.1}, {"weight": W10[:5]}])
def test_all_ignored_mean_gives_zero_gradient(fn_name, kw):
    # a batch whose targets are all ignore_index: the loss is nan (0 / 0) but torch's gradient
    # is 0 (ignored rows are skipped); ember's was nan, which poisoned the weights
    if fn_name == "nll_loss" and "label_smoothing" in kw:
        return

    def fn(t, x, y):
        k = dict(kw, weight=w(t, kw["weight"], x)) if "weight" in kw else kw
        return getattr(F(t), fn_name)(x, y, ignore_index=2, **k)

    check_op([(4, 5), np.full(4, 2, np.int64)], fn)
    check_op([(2, 5, 3), np.full((2, 3), 2, np.int64)], fn)


@pytest.mark.parametrize("kw", [{}, {"label_smoothing": 0.2}, {"reduction": "none"},
                                {"reduction": "sum", "weight": W10}])
def test_cross_entropy_probabilities(kw):
    def fn(t, x, y):
        k = dict(kw)
        if "weight" in k:
            k["weight"] = w(t, k["weight"], x)
        return F(t).cross_entropy(x, y.softmax(1), **k)

    check_op([(4, 10), (4, 10)], fn)
    check_gradcheck([(4, 10), (4, 10)], fn)
    check_op([(2, 10, 3), (2, 10, 3)], fn)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss(reduction):
    fn = lambda t, x, y: F(t).nll_loss(x, y, weight=w(t, W10[:5], x), ignore_index=1,  # noqa: E731
                                      reduction=reduction)
    check_op([(2, 5, 3, 4), IDXK], fn)
    check_gradcheck([(2, 5, 3, 4), IDXK], fn)
    check_op([(4, 10), IDX4], lambda t, x, y: F(t).nll_loss(F(t).log_softmax(x, 1), y))


POINTWISE = [
    ("mse", [(3, 4), (3, 4)], lambda t, x, y: F(t).mse_loss(x, y)),
    ("mse_none", [(3, 4), (3, 4)], lambda t, x, y: F(t).mse_loss(x, y, reduction="none")),
    ("l1", [(3, 4), (3, 4)], lambda t, x, y: F(t).l1_loss(x, y, reduction="sum")),
    ("smooth_l1", [(3, 4), (3, 4)], lambda t, x, y: F(t).smooth_l1_loss(x, y, beta=0.5)),
    ("smooth_l1_b0", [(3, 4), (3, 4)], lambda t, x, y: F(t).smooth_l1_loss(x, y, beta=0.0)),
    ("huber", [(3, 4), (3, 4)], lambda t, x, y: F(t).huber_loss(x, y, delta=0.7, reduction="none")),
    ("bce", [PROB, PROB[::-1].copy()], lambda t, x, y: F(t).binary_cross_entropy(x, y)),
    ("bce_w", [PROB, PROB[::-1].copy()],
     lambda t, x, y: F(t).binary_cross_entropy(x, y, weight=w(t, np.arange(4.0), x), reduction="sum")),
    ("bce_logits", [(3, 4), PROB], lambda t, x, y: F(t).binary_cross_entropy_with_logits(x, y)),
    ("bce_logits_pw", [(3, 4), PROB], lambda t, x, y: F(t).binary_cross_entropy_with_logits(
        x, y, weight=w(t, np.arange(1.0, 5.0), x), pos_weight=w(t, np.arange(4.0) + 0.5, x))),
    ("kl_batchmean", [(3, 4), PROB], lambda t, x, y: F(t).kl_div(x, y, reduction="batchmean")),
    ("kl_log", [(3, 4), (3, 4)], lambda t, x, y: F(t).kl_div(x, y, reduction="sum", log_target=True)),
    ("kl_none", [(3, 4), PROB], lambda t, x, y: F(t).kl_div(x, y, reduction="none")),
    ("soft_margin", [(5, 4)], lambda t, x: F(t).soft_margin_loss(x, w(t, SIGN, x))),
    ("cosine_emb", [(5, 4), (5, 4)],
     lambda t, a, b: F(t).cosine_embedding_loss(a, b, w(t, SIGN[:, 0], a), margin=0.1)),
    ("cosine_emb_1d", [(4,), (4,)],
     lambda t, a, b: F(t).cosine_embedding_loss(a, b, w(t, np.array(-1.0), a), margin=-0.5)),
    ("margin_rank", [(5,), (5,)],
     lambda t, a, b: F(t).margin_ranking_loss(a, b, w(t, SIGN[:, 0], a), margin=0.1)),
    ("hinge", [(5, 4)], lambda t, x: F(t).hinge_embedding_loss(x, w(t, SIGN, x))),
    ("triplet", [(5, 4), (5, 4), (5, 4)], lambda t, a, p, n: F(t).triplet_margin_loss(a, p, n)),
    ("triplet_swap_p1", [(5, 4), (5, 4), (5, 4)],
     lambda t, a, p, n: F(t).triplet_margin_loss(a, p, n, p=1, swap=True, reduction="none")),
    ("multilabel_sm", [(5, 4), BIN], lambda t, x, y: F(t).multilabel_soft_margin_loss(x, y)),
    ("multi_margin", [(5, 4), rng.integers(0, 4, (5,))],
     lambda t, x, y: F(t).multi_margin_loss(x, y, p=2, margin=0.5)),
    ("gaussian_nll", [(5, 4), (5, 4), rng.uniform(0.1, 1, (5, 4))],
     lambda t, x, y, v: F(t).gaussian_nll_loss(x, y, v, full=True)),
    ("gaussian_nll_hom", [(5, 4), (5, 4), rng.uniform(0.1, 1, (5,))],
     lambda t, x, y, v: F(t).gaussian_nll_loss(x, y, v, reduction="sum")),
    ("poisson_nll", [(5, 4), rng.uniform(0, 3, (5, 4))],
     lambda t, x, y: F(t).poisson_nll_loss(x, y, full=True)),
    ("poisson_nll_lin", [rng.uniform(0.5, 2, (5, 4)), rng.uniform(0, 3, (5, 4))],
     lambda t, x, y: F(t).poisson_nll_loss(x, y, log_input=False)),
]


def _f32(specs):
    return [s.astype(np.float32) if isinstance(s, np.ndarray) and s.dtype == np.float64 else s
            for s in specs]


@pytest.mark.parametrize("name,specs,fn", POINTWISE, ids=[p[0] for p in POINTWISE])
def test_loss_matches_torch(name, specs, fn):
    check_op(_f32(specs), fn)


@pytest.mark.parametrize("name,specs,fn", POINTWISE, ids=[p[0] for p in POINTWISE])
def test_loss_gradcheck(name, specs, fn):
    check_gradcheck([s.astype(np.float64) if isinstance(s, np.ndarray) and s.dtype.kind == "f"
                     else s for s in specs], fn)


def test_broadcast_target_warns_like_torch():
    with pytest.warns(UserWarning, match="different to the input size"):
        check_op([(3, 1), (3,)], lambda t, x, y: F(t).mse_loss(x, y))


def test_legacy_size_average_reduce():
    check_op([(3, 4), (3, 4)], lambda t, x, y: F(t).mse_loss(x, y, size_average=False))
    check_op([(3, 4), (3, 4)], lambda t, x, y: F(t).l1_loss(x, y, reduce=False))


LOSS_MODULES = [
    (lambda n, t: n.CrossEntropyLoss(weight=t.tensor(W10), label_smoothing=0.1), [(4, 10), IDX4]),
    (lambda n, t: n.CrossEntropyLoss(ignore_index=3, reduction="sum"), [(4, 10), IDX4]),
    (lambda n, t: n.NLLLoss(weight=t.tensor(W10[:5])), [(2, 5, 3, 4), IDXK]),
    (lambda n, t: n.MSELoss(), [(3, 4), (3, 4)]),
    (lambda n, t: n.L1Loss(reduction="none"), [(3, 4), (3, 4)]),
    (lambda n, t: n.SmoothL1Loss(beta=0.3), [(3, 4), (3, 4)]),
    (lambda n, t: n.HuberLoss(delta=0.4), [(3, 4), (3, 4)]),
    (lambda n, t: n.BCELoss(weight=t.ones(4)), [PROB.astype(np.float32), PROB[::-1].astype(np.float32)]),
    (lambda n, t: n.BCEWithLogitsLoss(pos_weight=t.full((4,), 2.0)), [(3, 4), PROB.astype(np.float32)]),
    (lambda n, t: n.KLDivLoss(reduction="batchmean", log_target=True), [(3, 4), (3, 4)]),
    (lambda n, t: n.CosineEmbeddingLoss(margin=0.2), [(5, 4), (5, 4), SIGN[:, 0].copy()]),
    (lambda n, t: n.MarginRankingLoss(margin=0.1), [(5,), (5,), SIGN[:, 0].copy()]),
    (lambda n, t: n.TripletMarginLoss(margin=0.5), [(5, 4), (5, 4), (5, 4)]),
    (lambda n, t: n.SoftMarginLoss(), [(5, 4), SIGN]),
    (lambda n, t: n.MultiLabelSoftMarginLoss(), [(5, 4), BIN]),
    (lambda n, t: n.HingeEmbeddingLoss(margin=0.5), [(5, 4), SIGN]),
    (lambda n, t: n.GaussianNLLLoss(), [(5, 4), (5, 4), rng.uniform(0.1, 1, (5, 4)).astype(np.float32)]),
    (lambda n, t: n.PoissonNLLLoss(), [(5, 4), rng.uniform(0, 3, (5, 4)).astype(np.float32)]),
    (lambda n, t: n.MultiMarginLoss(), [(5, 4), rng.integers(0, 4, (5,))]),
]


@pytest.mark.parametrize("make,specs", LOSS_MODULES)
def test_loss_module(make, specs):
    tm, em = make(torch.nn, torch), make(ember.nn, ember)
    assert repr(em) == repr(tm)
    assert list(em.state_dict()) == list(tm.state_dict())
    for k, v in tm.state_dict().items():
        np.testing.assert_array_equal(em.state_dict()[k].numpy(), v.numpy())
    em.load_state_dict(tm.state_dict())
    tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in em.state_dict().items()})

    def fn(t, *xs):  # the last input (the target) is passed without grad: some take none
        return (tm if t is torch else em)(*xs[:-1], xs[-1].detach())

    check_op(specs, fn)


def _err(fn, exc, match):
    with pytest.raises(exc, match=match):
        fn()


def test_cross_entropy_errors():
    Fe, x = ember.nn.functional, ember.randn(4, 10)
    _err(lambda: Fe.cross_entropy(x, ember.tensor([1, 2, 12, 3])), IndexError,
         r"Target 12 is out of bounds\. \(input has 10 classes: valid targets are 0\.\.9")
    _err(lambda: Fe.cross_entropy(x, ember.tensor([1, -5, 2, 3])), IndexError,
         "Target -5 is out of bounds")
    _err(lambda: Fe.cross_entropy(x, ember.tensor([1, 2, 3])), ValueError,
         r"Expected input batch_size \(4\) to match target batch_size \(3\)\.")
    _err(lambda: Fe.cross_entropy(x, ember.tensor([1.0, 2, 3, 4])), RuntimeError,
         "expected target dtype to be Long or Byte, but got Float")
    _err(lambda: Fe.nll_loss(x, ember.tensor([1.0, 2, 3, 4])), RuntimeError,
         "expected target dtype to be Long or Byte, but got Float")
    _err(lambda: Fe.cross_entropy(ember.randn(2, 3, 5), ember.zeros(2, 4, dtype=ember.int64)),
         RuntimeError, r"Expected target size \[2, 5\], got \[2, 4\]")
    _err(lambda: Fe.cross_entropy(x, ember.tensor([1, 2, 3, 4]), weight=ember.ones(5)),
         RuntimeError, "weight tensor should be defined either for all 10 classes or no classes "
         r"but got weight tensor of shape: \[5\]")
    _err(lambda: Fe.cross_entropy(x, ember.tensor([1, 2, 3, 4]), label_smoothing=1.5),
         RuntimeError, "label_smoothing must be between 0.0 and 1.0. Got: 1.5")
    _err(lambda: Fe.cross_entropy(x, ember.tensor([1, 2, 3, 4]), reduction="avg"), ValueError,
         "avg is not a valid value for reduction")
    _err(lambda: Fe.cross_entropy(x, ember.randn(4, 9)), RuntimeError,
         "0D or 1D target tensor expected, multi-target not supported")
    _err(lambda: Fe.cross_entropy(x, ember.zeros(4, 10, dtype=ember.int64)), RuntimeError,
         "0D or 1D target tensor expected")
    _err(lambda: Fe.cross_entropy(x, ember.rand(4, 10), ignore_index=0), RuntimeError,
         "ignore_index is not supported for floating point target")
    Fe.cross_entropy(x, ember.rand(4, 10), ignore_index=-1)  # negative: accepted, as in torch


def test_other_loss_errors():
    Fe = ember.nn.functional
    _err(lambda: Fe.binary_cross_entropy(ember.rand(3, 1), ember.rand(3)), ValueError,
         r"Using a target size \(ember.Size\(\[3\]\)\) that is different to the input size")
    _err(lambda: Fe.binary_cross_entropy(ember.rand(3) + 1, ember.rand(3)), RuntimeError,
         "all elements of input should be between 0 and 1")
    _err(lambda: Fe.binary_cross_entropy_with_logits(ember.rand(3, 1), ember.rand(3)), ValueError,
         r"Target size \(ember.Size\(\[3\]\)\) must be the same as input size")
    _err(lambda: Fe.kl_div(ember.rand(3), ember.rand(3), reduction="bad"), ValueError,
         "bad is not a valid value for reduction")
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        Fe.kl_div(ember.rand(3), ember.rand(3))
    _err(lambda: Fe.gaussian_nll_loss(ember.rand(3, 2), ember.rand(3, 2), ember.rand(2)),
         ValueError, "var is of incorrect size")
    _err(lambda: Fe.huber_loss(ember.rand(3), ember.rand(3), delta=0), RuntimeError,
         "non-positive values for delta")
    _err(lambda: ember.nn.TripletMarginLoss(margin=0), ValueError, "expected margin to be greater")


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
                                  "kl_div", "soft_margin_loss"])
def test_unbroadcastable_target_raises_torch_error(name):
    # torch raises its broadcast RuntimeError; ember's was NumPy's raw ValueError
    for lib in (torch, ember):
        with warnings.catch_warnings(), pytest.raises(
                RuntimeError, match=r"The size of tensor a \(\d\) must match the size of tensor b"):
            warnings.simplefilter("ignore")
            getattr(lib.nn.functional, name)(lib.rand(2, 3), lib.rand(3, 3))


WEIGHTED = [(n, r) for n in ("mse_loss", "l1_loss", "huber_loss") for r in ("mean", "sum", "none")]


@pytest.mark.parametrize("name,reduction", WEIGHTED)
def test_elementwise_weight_matches_torch(name, reduction):
    """torch's weighted mse/l1 'mean' divides by sum(weight) (huber's by the element count)."""
    wt = rng.uniform(0.1, 3.0, (3, 4))

    def fn(t, x, y):
        return getattr(F(t), name)(x, y, reduction=reduction, weight=w(t, wt, x))

    check_op([(3, 4), (3, 4)], fn)
    check_gradcheck([(3, 4), (3, 4)], fn)
    with pytest.raises(ValueError, match="Weights and input must have the same size."):
        getattr(ember.nn.functional, name)(ember.rand(3, 4), ember.rand(3, 4), weight=ember.ones(4))
