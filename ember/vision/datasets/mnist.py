"""MNIST, FashionMNIST and KMNIST (torchvision.datasets), read from the official IDX files.

    >>> test = MNIST(root="./data", train=False, download=True, transform=ToTensor())
    >>> img, label = test[0]                     # (1, 28, 28) float32, int
    >>> test.data.shape, test.targets.dtype      # (10000, 28, 28) uint8, int64

Files live in ``root/<ClassName>/raw/`` (current torchvision layout) either decompressed
(``t10k-images-idx3-ubyte``) or as the downloaded ``.gz``; IDX headers (magic number, sizes) are
checked with clear errors.
"""

from __future__ import annotations

import gzip
import os
import sys

import numpy as np

from ember.tensor import _wrap
from ember.vision._pil import require_pil
from ember.vision.datasets._download import check_integrity, download_and_extract_archive
from ember.vision.datasets.vision import VisionDataset

__all__ = [
    "MNIST",
    "FashionMNIST",
    "KMNIST",
    "read_sn3_pascalvincent_tensor",
    "read_image_file",
    "read_label_file",
]

# IDX element type codes -> big-endian NumPy dtypes
_IDX_TYPES = {
    8: np.dtype(">u1"),
    9: np.dtype(">i1"),
    11: np.dtype(">i2"),
    12: np.dtype(">i4"),
    13: np.dtype(">f4"),
    14: np.dtype(">f8"),
}


def _read_bytes(path):
    try:
        with gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb") as f:
            return f.read()
    except (EOFError, gzip.BadGzipFile) as e:  # truncated or damaged gzip stream
        raise RuntimeError(f"{path} is corrupted: {e}; delete it and download again") from None


def read_sn3_pascalvincent_tensor(path, strict=True):
    """Parse an IDX file (gzip or raw) into a NumPy array of its declared type and shape."""
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise RuntimeError(
            f"{path} is not an IDX file: its magic number starts with "
            f"{data[:4].hex() or 'nothing'}, expected 0x0000 then a type code"
        )
    ty, nd = data[2], data[3]
    if ty not in _IDX_TYPES or not 1 <= nd <= 3:
        raise RuntimeError(
            f"{path}: IDX type code 0x{ty:02x} / {nd} dimensions is not supported "
            "(expected type 0x08-0x0e and 1 to 3 dimensions)"
        )
    header = 4 * (nd + 1)
    if len(data) < header:
        raise RuntimeError(f"{path}: truncated IDX header ({len(data)} bytes)")
    shape = tuple(int.from_bytes(data[4 * (i + 1) : 4 * (i + 2)], "big") for i in range(nd))
    dtype = _IDX_TYPES[ty]
    count = int(np.prod(shape))
    available = (len(data) - header) // dtype.itemsize
    if available < count or (strict and available != count):
        raise RuntimeError(
            f"{path}: header declares shape {shape} ({count} items) but the file "
            f"holds {available}: the file is truncated or corrupted"
        )
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def read_label_file(path):
    x = read_sn3_pascalvincent_tensor(path, strict=False)
    if x.dtype != np.uint8:
        raise TypeError(f"x should be of dtype torch.uint8 instead of torch.{x.dtype}")
    if x.ndim != 1:
        raise ValueError(f"x should have 1 dimension instead of {x.ndim}")
    return x.astype(np.int64)


def read_image_file(path):
    x = read_sn3_pascalvincent_tensor(path, strict=False)
    if x.dtype != np.uint8:
        raise TypeError(f"x should be of dtype torch.uint8 instead of torch.{x.dtype}")
    if x.ndim != 3:
        raise ValueError(f"x should have 3 dimension instead of {x.ndim}")
    return x


class MNIST(VisionDataset):
    """The MNIST handwritten digits: 60,000 training and 10,000 test 28x28 grayscale images.

    Args:
        root: folder holding ``MNIST/raw/``; train: training or test split;
        transform / target_transform: applied to the PIL 'L' image / the int label;
        download: fetch the four official files (md5-checked) when missing.
    """

    mirrors = [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ]
    resources = [
        ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    ]
    training_file = "training.pt"
    test_file = "test.pt"
    classes = [
        "0 - zero",
        "1 - one",
        "2 - two",
        "3 - three",
        "4 - four",
        "5 - five",
        "6 - six",
        "7 - seven",
        "8 - eight",
        "9 - nine",
    ]

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        super().__init__(root, transform=transform, target_transform=target_transform)
        self.train = train
        if download:
            self.download()
        if not self._check_exists():
            raise RuntimeError(
                f"Dataset not found in {self.raw_folder}. You can use download=True to download it"
            )
        images, labels = self._split_files()
        data = read_image_file(images)
        targets = read_label_file(labels)
        if len(data) != len(targets):
            raise RuntimeError(
                f"{images} has {len(data)} images but {labels} has {len(targets)} labels"
            )
        self.data, self.targets = _wrap(data), _wrap(targets)

    @property
    def raw_folder(self):
        return os.path.join(self.root, self.__class__.__name__, "raw")

    @property
    def processed_folder(self):
        return os.path.join(self.root, self.__class__.__name__, "processed")

    @property
    def class_to_idx(self):
        return {c: i for i, c in enumerate(self.classes)}

    def _locate(self, stem):
        """The decompressed file if present, else the .gz; None when neither exists."""
        for name in (stem, stem + ".gz"):
            path = os.path.join(self.raw_folder, name)
            if check_integrity(path):
                return path
        return None

    def _split_files(self):
        prefix = "train" if self.train else "t10k"
        return (
            self._locate(f"{prefix}-images-idx3-ubyte"),
            self._locate(f"{prefix}-labels-idx1-ubyte"),
        )

    def _check_exists(self):
        return all(p is not None for p in self._split_files())

    def download(self):
        """Fetch each resource from the first mirror that works, verify it, decompress it."""
        if all(self._locate(os.path.splitext(f)[0]) for f, _ in self.resources):
            return
        os.makedirs(self.raw_folder, exist_ok=True)
        for filename, md5 in self.resources:
            errors = []
            for mirror in self.mirrors:
                try:
                    download_and_extract_archive(
                        f"{mirror}{filename}", self.raw_folder, filename=filename, md5=md5
                    )
                    break
                except (RuntimeError, OSError) as e:
                    errors.append(f"{mirror}: {e}")
                    print(f"Failed to download (trying next):\n{e}", file=sys.stderr)
            else:
                raise RuntimeError(f"Error downloading {filename}: " + "; ".join(errors))

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


class FashionMNIST(MNIST):
    """Fashion-MNIST (Zalando): MNIST's format with 10 clothing classes."""

    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
    resources = [
        ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    ]
    classes = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]


class KMNIST(MNIST):
    """Kuzushiji-MNIST (ROIS-CODH): MNIST's format with 10 classes of cursive Japanese."""

    mirrors = ["http://codh.rois.ac.jp/kmnist/dataset/kmnist/"]
    resources = [
        ("train-images-idx3-ubyte.gz", "bdb82020997e1d708af4cf47b453dcf7"),
        ("train-labels-idx1-ubyte.gz", "e144d726b3acfaa3e44228e80efcd344"),
        ("t10k-images-idx3-ubyte.gz", "5c965bf0a639b31b8f53240b1b52f4d7"),
        ("t10k-labels-idx1-ubyte.gz", "7320c461ea6c1c855c0b718fb2a4b134"),
    ]
    classes = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]
