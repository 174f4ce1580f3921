"""``DistributedSampler``: each of ``num_replicas`` processes sees its own slice of the data.

The assignment rule is PyTorch's, so the same rank gets the same indices in both libraries
when ``shuffle=False``: pad the index list by repeating its start until it divides evenly
(or cut it with ``drop_last=True``), then rank ``r`` takes ``indices[r:total:num_replicas]``.

Example::

    >>> list(DistributedSampler(range(10), num_replicas=3, rank=1, shuffle=False))
    [1, 4, 7, 0]
"""

from __future__ import annotations

import math

import numpy as np

from ember.utils.data.sampler import Sampler

__all__ = ["DistributedSampler"]


def _world():
    """(world_size, rank) of an initialised ``ember.distributed`` process group."""
    try:
        import ember.distributed as dist
    except ImportError:
        dist = None
    available = dist is not None and getattr(dist, "is_available", lambda: False)()
    if not available or not dist.is_initialized():
        raise RuntimeError("Requires distributed package to be available")
    return dist.get_world_size(), dist.get_rank()


class DistributedSampler(Sampler):
    """Restrict loading to this process's share of ``dataset``.

    Args:
        dataset: the dataset (only its length is used).
        num_replicas: number of processes (default: the process group's world size).
        rank: this process's rank in ``[0, num_replicas - 1]`` (default: the group's rank).
        shuffle: permute the indices, the same way on every rank (seeded by ``seed + epoch``).
        seed: shared by all ranks.
        drop_last: drop the tail so every rank gets the same number without padding.

    Call ``set_epoch(epoch)`` before each epoch so shuffling differs between epochs.
    """

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None:
            num_replicas = _world()[0]
        if rank is None:
            rank = _world()[1]
        if rank >= num_replicas or rank < 0:
            raise ValueError(
                f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]"
            )
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        n = len(self.dataset)
        if self.drop_last and n % self.num_replicas != 0:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            g = np.random.Generator(np.random.PCG64(self.seed + self.epoch))
            indices = g.permutation(n).tolist()
        else:
            indices = list(range(n))
        if not self.drop_last:
            padding_size = self.total_size - len(indices)
            if padding_size <= len(indices):
                indices += indices[:padding_size]
            else:
                indices += (indices * math.ceil(padding_size / len(indices)))[:padding_size]
        else:
            indices = indices[:self.total_size]
        indices = indices[self.rank:self.total_size:self.num_replicas]
        return iter(indices)

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that seeds the shuffle (all ranks must use the same one)."""
        self.epoch = epoch
