"""``Digits``: the UCI handwritten digits (1,797 8x8 images, 10 classes), bundled with ember.

    >>> train = Digits(train=True, transform=ToTensor())      # no network, no root needed
    >>> img, label = train[0]                                  # (1, 8, 8) float32 in [0, 1], int
    >>> len(train), len(Digits(train=False))                   # 1437, 360

The file ``data/digits.npz`` holds the source pixels (0..16) and a fixed stratified split; see
``data/README.md`` for source and licence (CC BY 4.0, E. Alpaydin & C. Kaynak, UCI ML repository).
"""

from __future__ import annotations

import os

import numpy as np

from ember.tensor import _wrap
from ember.vision._pil import require_pil
from ember.vision.datasets.vision import VisionDataset

__all__ = ["Digits"]

_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "digits.npz")


class Digits(VisionDataset):
    """The bundled 8x8 digits, with MNIST's interface.

    ``data`` is a uint8 (N, 8, 8) tensor scaled to 0..255 (``round(v * 255 / 16)`` of the source
    0..16 counts), ``targets`` an int64 tensor, so ``ToTensor()`` gives [0, 1] floats exactly as
    for MNIST; items are ``(PIL 'L' image, int)``. Split: 1,437 train / 360 test (fixed,
    stratified). ``root`` and ``download`` are accepted for torchvision-style call sites and unused.
    """

    classes = [str(i) for i in range(10)]

    def __init__(
        self, root=None, train=True, transform=None, target_transform=None, download=False
    ):
        super().__init__(root, transform=transform, target_transform=target_transform)
        self.train = train
        with np.load(_FILE) as z:
            idx = z["train_idx" if train else "test_idx"].astype(np.int64)
            raw = z["images"][idx]
            labels = z["labels"][idx]
        scaled = (raw.astype(np.uint16) * 255 + 8) // 16  # 0..16 -> 0..255, rounded
        self.data = _wrap(scaled.astype(np.uint8))
        self.targets = _wrap(labels.astype(np.int64))

    @property
    def class_to_idx(self):
        return {c: i for i, c in enumerate(self.classes)}

    def __getitem__(self, index):
        """(image, target): a PIL 'L' image (after ``transform``) and the int label."""
        img = require_pil().fromarray(self.data._data[index])
        target = int(self.targets._data[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __len__(self):
        return len(self.data)

    def extra_repr(self):
        return f"Split: {'Train' if self.train is True else 'Test'}"
