"""DataLoader in the main process against torch's: arguments, errors, len(), batches."""

import math

import numpy as np
import pytest
import torch
import torch.utils.data as tud

import ember
from ember.utils.data import (
    BatchSampler,
    DataLoader,
    IterableDataset,
    SequentialSampler,
    TensorDataset,
)


def to_list(batches):
    out = []
    for b in batches:
        if isinstance(b, (list, tuple)):
            out.append([to_list([x])[0] for x in b])
        elif isinstance(b, (ember.Tensor, torch.Tensor)):
            out.append((str(b.dtype).split(".")[-1], b.tolist()))
        else:
            out.append(b)
    return out


class Squares:
    def __init__(self, n):
        self.n = n

    def __getitem__(self, i):
        return np.float32(i) ** 2, i

    def __len__(self):
        return self.n


def make_stream(base, n, length=True):
    class Stream(base):
        def __iter__(self):
            return iter(range(n))

    if length:
        Stream.__len__ = lambda self: n
    return Stream()


@pytest.mark.parametrize("n,bs,drop", [(10, 3, False), (10, 3, True), (9, 3, False), (1, 4, False),
                                       (7, 1, True), (10, None, False)])
def test_batches_and_len_match_torch(n, bs, drop):
    e = DataLoader(Squares(n), batch_size=bs, drop_last=drop)
    t = tud.DataLoader(Squares(n), batch_size=bs, drop_last=drop)
    assert len(e) == len(t)
    assert to_list(e) == to_list(t)


@pytest.mark.parametrize("n,bs,drop", [(10, 3, False), (10, 3, True), (8, 4, False), (5, None, False)])
def test_iterable_dataset_len_and_batches_match_torch(n, bs, drop):
    e = DataLoader(make_stream(IterableDataset, n), batch_size=bs, drop_last=drop)
    t = tud.DataLoader(make_stream(tud.IterableDataset, n), batch_size=bs, drop_last=drop)
    assert len(e) == len(t) == (n if bs is None else (n // bs if drop else math.ceil(n / bs)))
    assert to_list(e) == to_list(t)


def test_iterable_dataset_without_len():
    loader = DataLoader(make_stream(IterableDataset, 5, length=False), batch_size=2)
    assert [b.tolist() for b in loader] == [[0, 1], [2, 3], [4]]
    with pytest.raises(TypeError):
        len(loader)


def test_iterable_dataset_warns_when_it_yields_more_than_its_len():
    class Liar(IterableDataset):
        def __iter__(self):
            return iter(range(6))

        def __len__(self):
            return 2

    loader = DataLoader(Liar(), batch_size=None)
    len(loader)
    with pytest.warns(UserWarning, match="was reported to be 2"):
        list(loader)


CONFLICTS = [
    (dict(num_workers=-1), ValueError),
    (dict(timeout=-1), ValueError),
    (dict(prefetch_factor=2), ValueError),
    (dict(persistent_workers=True), ValueError),
    (dict(shuffle=True, sampler=[0, 1]), ValueError),
    (dict(batch_sampler=[[0]], batch_size=2), ValueError),
    (dict(batch_sampler=[[0]], shuffle=True), ValueError),
    (dict(batch_sampler=[[0]], drop_last=True), ValueError),
    (dict(batch_size=None, drop_last=True), ValueError),
    (dict(multiprocessing_context="fork"), ValueError),
    (dict(num_workers=1, multiprocessing_context="nope"), ValueError),
    (dict(num_workers=1, multiprocessing_context=3), TypeError),
]


@pytest.mark.parametrize("kwargs,exc", CONFLICTS)
def test_argument_errors_match_torch(kwargs, exc):
    with pytest.raises(exc) as e:
        DataLoader(Squares(4), **kwargs)
    with pytest.raises(exc) as t:
        tud.DataLoader(Squares(4), **kwargs)
    assert str(e.value) == str(t.value)


def test_sampler_mutually_exclusive_with_shuffle_message():
    with pytest.raises(ValueError, match="sampler option is mutually exclusive with shuffle"):
        DataLoader(Squares(4), sampler=SequentialSampler(range(4)), shuffle=True)


@pytest.mark.parametrize("kwargs", [dict(shuffle=True), dict(sampler=[0]), dict(batch_sampler=[[0]])])
def test_iterable_dataset_argument_errors_match_torch(kwargs):
    with pytest.raises(ValueError) as e:
        DataLoader(make_stream(IterableDataset, 3), **kwargs)
    with pytest.raises(ValueError) as t:
        tud.DataLoader(make_stream(tud.IterableDataset, 3), **kwargs)
    assert str(e.value).split(", but got")[0] == str(t.value).split(", but got")[0]


def test_attributes_are_frozen_after_init():
    loader = DataLoader(Squares(4))
    with pytest.raises(ValueError, match="batch_size attribute should not be set after DataLoader"):
        loader.batch_size = 3
    loader.num_workers = 0  # allowed, as in PyTorch


def test_shuffle_repeats_with_manual_seed_and_generator():
    ds = TensorDataset(ember.arange(40))

    def epoch(**kw):
        return [b[0].tolist() for b in DataLoader(ds, batch_size=8, shuffle=True, **kw)]

    ember.manual_seed(7)
    a = epoch()
    ember.manual_seed(7)
    assert epoch() == a
    assert sorted(sum(a, [])) == list(range(40)) and sum(a, []) != list(range(40))
    g = [ember.Generator().manual_seed(2) for _ in range(2)]
    assert epoch(generator=g[0]) == epoch(generator=g[1])


def test_custom_sampler_batch_sampler_and_collate():
    ds = Squares(6)
    got = [b[1].tolist() for b in DataLoader(ds, sampler=[5, 0, 3], batch_size=2)]
    assert got == [[5, 0], [3]]
    got = [b[1].tolist() for b in DataLoader(ds, batch_sampler=BatchSampler([4, 2, 1], 2, False))]
    assert got == [[4, 2], [1]]
    assert list(DataLoader(ds, batch_size=3, collate_fn=lambda b: len(b))) == [3, 3]


def test_batch_size_none_converts_without_batching():
    loader = DataLoader(Squares(3), batch_size=None)
    out = list(loader)
    assert len(loader) == 3 and isinstance(out[1][0], ember.Tensor) and out[1][0].shape == ()
    assert out[2][0].item() == 4.0 and out[2][1] == 2


def test_pin_memory_is_accepted_with_a_warning():
    with pytest.warns(UserWarning, match="pin_memory"):
        assert len(list(DataLoader(Squares(2), pin_memory=True))) == 2


def test_tensor_dataset_batches_have_the_right_dtypes():
    x, y = ember.randn(10, 3), ember.arange(10)
    xb, yb = next(iter(DataLoader(TensorDataset(x, y), batch_size=4)))
    assert xb.dtype == ember.float32 and yb.dtype == ember.int64 and tuple(xb.shape) == (4, 3)
    assert np.array_equal(xb.numpy(), x.numpy()[:4])
