"""CIFAR-10 and CIFAR-100 (torchvision.datasets.CIFAR10/CIFAR100), read from the official files.

    >>> train = CIFAR10(root="./data", train=True, download=True, transform=ToTensor())
    >>> img, label = train[0]                    # (3, 32, 32) float32, int
    >>> train.data.shape, train.classes[label]   # (50000, 32, 32, 3) uint8

``download=True`` fetches the official archive (md5-checked, retried when corrupt), unpacks it
safely, and every batch file is md5-checked before it is parsed with a restricted unpickler.
"""

from __future__ import annotations

import os

import numpy as np

from ember.vision._pil import require_pil
from ember.vision.datasets._download import check_integrity, download_and_extract_archive
from ember.vision.datasets._safe_pickle import load_batch
from ember.vision.datasets.vision import VisionDataset

__all__ = ["CIFAR10", "CIFAR100"]


class CIFAR10(VisionDataset):
    """The CIFAR-10 dataset: 50,000 training and 10,000 test 32x32 RGB images in 10 classes.

    Args:
        root: folder holding (or receiving) ``cifar-10-batches-py``.
        train: the five training batches if True, else the test batch.
        transform: applied to the PIL image; target_transform: applied to the int label.
        download: fetch and unpack the archive when the files are missing or corrupted.
    """

    base_folder = "cifar-10-batches-py"
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    filename = "cifar-10-python.tar.gz"
    tgz_md5 = "c58f30108f718f92721af3b95e74349a"
    train_list = [
        ["data_batch_1", "c99cafc152244af753f735de768cd75f"],
        ["data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"],
        ["data_batch_3", "54ebc095f3ab1f0389bbae665268c751"],
        ["data_batch_4", "634d18415352ddfa80567beed471001a"],
        ["data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"],
    ]
    test_list = [["test_batch", "40351d587109b95175f43aff81a1287e"]]
    meta = {
        "filename": "batches.meta",
        "key": "label_names",
        "md5": "5ff9c542aee3614f3951f8cda6e48888",
    }

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        super().__init__(root, transform=transform, target_transform=target_transform)
        self.train = train
        if download:
            self.download()
        if not self._check_integrity():
            raise RuntimeError(
                "Dataset not found or corrupted. You can use download=True to download it"
            )
        data, self.targets = [], []
        for file_name, _ in self.train_list if train else self.test_list:
            path = os.path.join(self.root, self.base_folder, file_name)
            entry = load_batch(path)
            arr = np.asarray(entry.get("data"))
            if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != 3072:
                raise RuntimeError(
                    f"{path}: 'data' should be uint8 of shape (N, 3072), got "
                    f"{arr.dtype} {arr.shape}"
                )
            labels = entry["labels"] if "labels" in entry else entry["fine_labels"]
            if len(labels) != len(arr):
                raise RuntimeError(f"{path}: {len(arr)} images but {len(labels)} labels")
            data.append(arr)
            self.targets.extend(int(t) for t in labels)
        # HWC made contiguous once, so each __getitem__ hands Pillow a plain buffer
        self.data = np.ascontiguousarray(
            np.vstack(data).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        )
        self._load_meta()

    def _load_meta(self):
        path = os.path.join(self.root, self.base_folder, self.meta["filename"])
        if not check_integrity(path, self.meta["md5"]):
            raise RuntimeError(
                "Dataset metadata file not found or corrupted. You can use "
                "download=True to download it"
            )
        self.classes = list(load_batch(path)[self.meta["key"]])
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    def __getitem__(self, index):
        """(image, target): a PIL RGB image (after ``transform``) and the class index."""
        img, target = require_pil().fromarray(self.data[index]), self.targets[index]
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __len__(self):
        return len(self.data)

    def _check_integrity(self):
        for filename, md5 in self.train_list + self.test_list:
            if not check_integrity(os.path.join(self.root, self.base_folder, filename), md5):
                return False
        return True

    def download(self):
        """Fetch and unpack the archive unless every batch file is already there and verified."""
        if self._check_integrity():
            return
        download_and_extract_archive(self.url, self.root, filename=self.filename, md5=self.tgz_md5)

    def extra_repr(self):
        return f"Split: {'Train' if self.train is True else 'Test'}"


class CIFAR100(CIFAR10):
    """CIFAR-100: as CIFAR10 with 100 fine classes (``targets`` are the fine labels)."""

    base_folder = "cifar-100-python"
    url = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    filename = "cifar-100-python.tar.gz"
    tgz_md5 = "eb9058c3a382ffc7106e4002c42a8d85"
    train_list = [["train", "16019d7e3df5f24257cddd939b257f8d"]]
    test_list = [["test", "f0ef6b0ae62326f3e7ffdfab6717acfc"]]
    meta = {
        "filename": "meta",
        "key": "fine_label_names",
        "md5": "7973b15100ade9c7d40fb424638fde48",
    }
