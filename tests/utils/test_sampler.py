"""Samplers against torch.utils.data: identical index sequences where deterministic."""

import itertools

import pytest
import torch
import torch.utils.data as tud

import ember
from ember.utils.data import (
    BatchSampler,
    DistributedSampler,
    RandomSampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)


def test_sequential_sampler():
    assert list(SequentialSampler(range(5))) == list(tud.SequentialSampler(range(5)))
    assert len(SequentialSampler(range(5))) == 5


@pytest.mark.parametrize("n,bs,drop", itertools.product([0, 1, 7, 10, 12], [1, 3, 5], [False, True]))
def test_batch_sampler_matches_torch(n, bs, drop):
    e = BatchSampler(SequentialSampler(range(n)), bs, drop)
    t = tud.BatchSampler(tud.SequentialSampler(range(n)), bs, drop)
    assert list(e) == list(t) and len(e) == len(t)


@pytest.mark.parametrize("args,exc,msg", [
    ((0, False), ValueError, "batch_size should be a positive integer value, but got batch_size=0"),
    ((True, False), ValueError, "batch_size should be a positive integer value"),
    ((2, 1), ValueError, "drop_last should be a boolean value, but got drop_last=1"),
])
def test_batch_sampler_errors_match_torch(args, exc, msg):
    with pytest.raises(exc, match=msg):
        BatchSampler(range(3), *args)
    with pytest.raises(exc, match=msg):
        tud.BatchSampler(range(3), *args)


def test_random_sampler_is_a_permutation_repeatable_by_seed():
    ember.manual_seed(5)
    a = list(RandomSampler(range(50)))
    ember.manual_seed(5)
    b = list(RandomSampler(range(50)))
    assert a == b and sorted(a) == list(range(50)) and a != list(range(50))
    c = list(RandomSampler(range(50)))  # the default generator moved on: a new order
    assert c != a
    g1, g2 = ember.Generator().manual_seed(1), ember.Generator().manual_seed(1)
    assert list(RandomSampler(range(30), generator=g1)) == \
        list(RandomSampler(range(30), generator=g2))


def test_random_sampler_num_samples_and_replacement():
    s = RandomSampler(range(10), num_samples=25)
    idx = list(s)
    assert len(s) == len(idx) == 25
    assert sorted(idx[:10]) == sorted(idx[10:20]) == list(range(10))  # whole permutations first
    r = RandomSampler(range(4), replacement=True, num_samples=70)
    idx = list(r)
    assert len(idx) == 70 and set(idx) <= {0, 1, 2, 3}
    assert len(RandomSampler(range(10))) == len(tud.RandomSampler(range(10))) == 10


@pytest.mark.parametrize("kwargs,exc,msg", [
    (dict(replacement=1), TypeError, "replacement should be a boolean value, but got replacement=1"),
    (dict(num_samples=0), ValueError, "num_samples should be a positive integer value, but got "
                                      "num_samples=0"),
])
def test_random_sampler_errors_match_torch(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        RandomSampler(range(3), **kwargs)
    with pytest.raises(exc, match=msg):
        tud.RandomSampler(range(3), **kwargs)


def test_subset_random_sampler():
    idx = [10, 20, 30, 40]
    s = SubsetRandomSampler(idx, generator=ember.Generator().manual_seed(0))
    out = list(s)
    assert sorted(out) == idx and len(s) == 4


def test_weighted_random_sampler():
    w = [0.0, 1.0, 0.0, 3.0]
    out = list(WeightedRandomSampler(w, 200))
    assert set(out) == {1, 3} and out.count(3) > out.count(1)
    out = list(WeightedRandomSampler([1.0, 2.0, 3.0, 0.5], 4, replacement=False))
    assert sorted(out) == [0, 1, 2, 3]
    assert len(WeightedRandomSampler(w, 7)) == 7
    assert WeightedRandomSampler(w, 7).weights.dtype == ember.float64


@pytest.mark.parametrize("args,kwargs,msg", [
    (([1.0, 2.0], 0), {}, "num_samples should be a positive integer value, but got num_samples=0"),
    (([1.0, 2.0], 2), dict(replacement=1), "replacement should be a boolean value"),
    (([[1.0, 2.0]], 2), {}, r"weights should be a 1d sequence but given weights have shape \(1, 2\)"),
])
def test_weighted_random_sampler_errors_match_torch(args, kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        WeightedRandomSampler(*args, **kwargs)
    with pytest.raises(ValueError, match=msg):
        tud.WeightedRandomSampler(*args, **kwargs)


def test_weighted_random_sampler_bad_distributions():
    with pytest.raises(RuntimeError, match="encountering probability entry < 0"):
        list(WeightedRandomSampler([1.0, -1.0], 2))
    with pytest.raises(RuntimeError, match="cannot sample n_sample > prob_dist.size"):
        list(WeightedRandomSampler([1.0, 1.0], 3, replacement=False))


DIST_CASES = [(n, r, d) for n in (0, 1, 5, 10, 11, 17) for r in (1, 2, 3, 4, 7) for d in (False, True)]


@pytest.mark.parametrize("n,replicas,drop_last", DIST_CASES)
def test_distributed_sampler_assignment_matches_torch(n, replicas, drop_last):
    for rank in range(replicas):
        e = DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        t = tud.DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        assert list(e) == list(t)
        assert len(e) == len(t) and e.total_size == t.total_size


def test_distributed_sampler_shuffle_partitions_and_epochs():
    n, replicas = 23, 3
    per_rank = [list(DistributedSampler(range(n), replicas, r, seed=4)) for r in range(replicas)]
    assert sorted(set(i for p in per_rank for i in p)) == list(range(n))
    assert sum(len(p) for p in per_rank) == 24  # padded to a multiple of 3
    s = DistributedSampler(range(n), replicas, 0, seed=4)
    first = list(s)
    assert list(s) == first  # same epoch: same order
    s.set_epoch(1)
    assert list(s) != first and s.epoch == 1


def test_distributed_sampler_errors():
    with pytest.raises(ValueError, match=r"Invalid rank 3, rank should be in the interval \[0, 2\]"):
        DistributedSampler(range(5), num_replicas=3, rank=3)
    with pytest.raises(RuntimeError, match="Requires distributed package to be available"):
        DistributedSampler(range(5))
    assert torch.utils.data.DistributedSampler  # the oracle exists under the same name
