"""nn.utils vs torch: gradient clipping, parameter<->vector, pad/pack sequences."""

import math

import numpy as np
import pytest
import torch

import ember
from tests.harness import check_op, copy_params


def _pair(seed=0):
    t = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Linear(5, 2))
    e = ember.nn.Sequential(ember.nn.Linear(4, 5), ember.nn.Linear(5, 2))
    copy_params(t, e)
    x = np.random.default_rng(seed).standard_normal((3, 4)).astype(np.float32) * 5
    (t(torch.tensor(x)) ** 2).sum().backward()
    (e(ember.tensor(x)) ** 2).sum().backward()
    return t, e


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    t, e = _pair()
    nt = torch.nn.utils.clip_grad_norm_(t.parameters(), max_norm, norm_type)
    ne = ember.nn.utils.clip_grad_norm_(e.parameters(), max_norm, norm_type, foreach=True)
    assert ne.dtype == ember.float32
    np.testing.assert_allclose(ne.numpy(), nt.numpy(), rtol=1e-5)
    for pe, pt in zip(e.parameters(), t.parameters()):
        np.testing.assert_allclose(pe.grad.numpy(), pt.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_clip_grad_norm_nonfinite_and_no_grads():
    p = ember.nn.Parameter(ember.ones(3))
    p.grad = ember.tensor([1.0, float("inf"), 0.0])
    with pytest.raises(RuntimeError, match="The total norm of order 2.0 for gradients from "
                                           "`parameters` is non-finite"):
        ember.nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    assert ember.nn.utils.clip_grad_norm_([ember.nn.Parameter(ember.ones(2))], 1.0).item() == 0.0


def test_clip_grad_value_matches_torch():
    t, e = _pair(1)
    torch.nn.utils.clip_grad_value_(t.parameters(), 0.7)
    ember.nn.utils.clip_grad_value_(e.parameters(), 0.7)
    for pe, pt in zip(e.parameters(), t.parameters()):
        np.testing.assert_allclose(pe.grad.numpy(), pt.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_parameters_vector_round_trip():
    t, e = _pair()
    vt = torch.nn.utils.parameters_to_vector(t.parameters())
    ve = ember.nn.utils.parameters_to_vector(e.parameters())
    np.testing.assert_allclose(ve.detach().numpy(), vt.detach().numpy())
    ember.nn.utils.vector_to_parameters(ve * 2, e.parameters())
    np.testing.assert_allclose(e[0].weight.detach().numpy(), 2 * t[0].weight.detach().numpy(), rtol=1e-6)
    with pytest.raises(TypeError, match="expected torch.Tensor, but got: list"):
        ember.nn.utils.vector_to_parameters([1.0], e.parameters())


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_sequence_matches_torch(batch_first, side):
    check_op([(3, 2), (1, 2), (4, 2)],
             lambda t, a, b, c: t.nn.utils.rnn.pad_sequence(
                 [a, b, c], batch_first=batch_first, padding_value=-1.0, padding_side=side))


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_pack_pad_round_trip_matches_torch(batch_first, enforce_sorted):
    lengths = [4, 3, 1] if enforce_sorted else [3, 4, 1]
    shape = (3, 4, 2) if batch_first else (4, 3, 2)

    def fn(t, x):
        rnn = t.nn.utils.rnn
        packed = rnn.pack_padded_sequence(x, lengths, batch_first=batch_first,
                                          enforce_sorted=enforce_sorted)
        out, lens = rnn.pad_packed_sequence(packed, batch_first=batch_first, total_length=5)
        idx = (packed.sorted_indices,) if packed.sorted_indices is not None else ()
        return (packed.data, packed.batch_sizes, out, lens) + idx

    check_op([shape], fn)


def test_pack_sequence_and_errors():
    seqs = [ember.ones(3, 2), ember.ones(2, 2)]
    p = ember.nn.utils.rnn.pack_sequence(seqs)
    assert p.batch_sizes.tolist() == [2, 2, 1] and tuple(p.data.shape) == (5, 2)
    assert isinstance(p, tuple) and p._fields == ("data", "batch_sizes", "sorted_indices",
                                                  "unsorted_indices")
    back = ember.nn.utils.rnn.unpack_sequence(p)
    assert [tuple(s.shape) for s in back] == [(3, 2), (2, 2)]
    with pytest.raises(RuntimeError, match="must be sorted in decreasing order"):
        ember.nn.utils.rnn.pack_padded_sequence(ember.ones(3, 2, 1), [1, 3])
    with pytest.raises(ValueError, match="Expected padding_side to be one of left or right"):
        ember.nn.utils.rnn.pad_sequence(seqs, padding_side="up")


@pytest.mark.parametrize("batch_first", [False, True])
def test_pack_padded_sequence_rejects_wrong_number_of_lengths(batch_first):
    # torch: one length per sequence of the batch, else RuntimeError (ember dropped the rest)
    x = np.zeros((3, 5, 2) if batch_first else (5, 3, 2), np.float32)
    msgs = []
    for lib in (torch, ember):
        with pytest.raises(RuntimeError) as info:
            lib.nn.utils.rnn.pack_padded_sequence(lib.tensor(x), [5, 4],
                                                  batch_first=batch_first)
        msgs.append(str(info.value))
    assert msgs[1] == msgs[0]
