"""Datasets and random_split against torch.utils.data."""

import numpy as np
import pytest
import torch
import torch.utils.data as tud

import ember
from ember.utils.data import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    StackDataset,
    Subset,
    TensorDataset,
    random_split,
)


class Stream(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


def test_tensor_dataset_rows_and_len():
    x, y = ember.arange(12.0).reshape(6, 2), ember.arange(6)
    ds = TensorDataset(x, y)
    assert len(ds) == 6
    a, b = ds[4]
    assert a.tolist() == [8.0, 9.0] and b.item() == 4
    with pytest.raises(AssertionError, match="Size mismatch between tensors"):
        TensorDataset(x, ember.arange(5))


def test_concat_dataset_matches_torch_index_mapping():
    parts = [list(range(3)), list(range(10, 15)), list(range(20, 22))]
    e, t = ConcatDataset(parts), tud.ConcatDataset(parts)
    assert len(e) == len(t) == 10 and e.cumulative_sizes == t.cumulative_sizes
    assert [e[i] for i in range(-10, 10)] == [t[i] for i in range(-10, 10)]
    with pytest.raises(ValueError, match="absolute value of index should not exceed"):
        e[-11]
    with pytest.raises(AssertionError, match="datasets should not be an empty iterable"):
        ConcatDataset([])
    with pytest.raises(AssertionError, match="ConcatDataset does not support IterableDataset"):
        ConcatDataset([Stream(2)])


def test_add_operators():
    class D(Dataset):
        def __getitem__(self, i):
            return i

        def __len__(self):
            return 3

    assert isinstance(D() + D(), ConcatDataset) and len(D() + D()) == 6
    chained = Stream(2) + Stream(3)
    assert isinstance(chained, ChainDataset) and list(chained) == [0, 1, 0, 1, 2]
    assert len(chained) == 5
    with pytest.raises(NotImplementedError, match="should implement __getitem__"):
        Dataset()[0]


def test_chain_dataset_rejects_map_style():
    with pytest.raises(AssertionError, match="ChainDataset only supports IterableDataset"):
        list(ChainDataset([[1, 2]]))


def test_subset_and_getitems():
    s = Subset(list(range(100, 110)), [3, 1, 4])
    assert len(s) == 3 and [s[i] for i in range(3)] == [103, 101, 104]
    assert s.__getitems__([0, 2]) == [103, 104]


def test_stack_dataset_tuple_and_dict():
    a, b = list(range(4)), list("abcd")
    assert StackDataset(a, b)[2] == (2, "c")
    assert StackDataset(x=a, y=b)[1] == {"x": 1, "y": "b"}
    assert len(StackDataset(a, b)) == 4
    with pytest.raises(ValueError, match="Size mismatch between datasets"):
        StackDataset(a, b[:3])
    with pytest.raises(ValueError, match="At least one dataset should be passed"):
        StackDataset()


@pytest.mark.parametrize("n,lengths", [
    (10, [0.5, 0.5]), (11, [0.5, 0.3, 0.2]), (7, [0.1, 0.1, 0.8]), (103, [0.7, 0.2, 0.1]),
    (5, [1 / 3, 1 / 3, 1 / 3]), (10, [3, 7]), (4, [0.25, 0.25, 0.25, 0.25]),
])
def test_random_split_sizes_match_torch(n, lengths):
    e = random_split(range(n), lengths, generator=ember.Generator().manual_seed(0))
    t = tud.random_split(range(n), lengths, generator=torch.Generator().manual_seed(0))
    assert [len(s) for s in e] == [len(s) for s in t]
    got = sorted(i for s in e for i in s.indices)
    assert got == list(range(n))  # a partition of the dataset


def test_random_split_repeats_with_seed_and_errors():
    a = random_split(range(20), [0.5, 0.5], generator=ember.Generator().manual_seed(3))
    b = random_split(range(20), [0.5, 0.5], generator=ember.Generator().manual_seed(3))
    assert [s.indices for s in a] == [s.indices for s in b]
    ember.manual_seed(1)
    c = random_split(range(20), [10, 10])
    ember.manual_seed(1)
    assert [s.indices for s in random_split(range(20), [10, 10])] == [s.indices for s in c]
    with pytest.raises(ValueError, match="Sum of input lengths does not equal"):
        random_split(range(10), [3, 3])
    with pytest.raises(ValueError, match="Fraction at index 0 is not between 0 and 1"):
        random_split(range(10), [1.5, -0.5])
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
        random_split(range(2), [0.9, 0.1])


def test_numpy_backed_dataset_indexing():
    data = np.arange(24, dtype=np.uint8).reshape(4, 2, 3)
    ds = TensorDataset(ember.from_numpy(data))
    assert ds[1][0].tolist() == data[1].tolist()
