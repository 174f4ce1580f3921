"""Datasets for the command line: names, normalisation, transforms, and clear errors.

``build_datasets("digits", ...)`` returns the train and test splits plus a ``DataInfo`` that
says how images look (channels, size, classes), which the model builder and ``ember predict`` use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

__all__ = ["DATASETS", "DataInfo", "build_datasets", "eval_transform", "dataset_names"]

# name -> (channels, image size, mean, std); None means read from the data (image folders).
DATASETS = {
    "digits": (1, 8, (0.3054,), (0.3760,)),  # measured on the train split
    "mnist": (1, 28, (0.1307,), (0.3081,)),
    "fashion-mnist": (1, 28, (0.2860,), (0.3530,)),
    "cifar10": (3, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": (3, 32, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
_CLASSES_BY_INDEX = {"digits": [str(i) for i in range(10)], "mnist": [str(i) for i in range(10)]}


def dataset_names():
    return list(DATASETS) + ["<path of an image folder>"]


@dataclass
class DataInfo:
    """What the images of a dataset look like, saved in every checkpoint."""

    name: str
    channels: int
    image_size: int
    mean: tuple
    std: tuple
    classes: list = field(default_factory=list)
    resize: int | None = None  # the size images are resized to (image folders, small-image VGG)
    gray_to_rgb: bool = False  # grayscale images repeated to 3 channels (ImageNet-style models)

    def to_dict(self):
        return dict(name=self.name, channels=self.channels, image_size=self.image_size,
                    mean=list(self.mean), std=list(self.std), classes=list(self.classes),
                    resize=self.resize, gray_to_rgb=self.gray_to_rgb)

    @classmethod
    def from_dict(cls, d):
        return cls(d["name"], d["channels"], d["image_size"], tuple(d["mean"]), tuple(d["std"]),
                   list(d["classes"]), d.get("resize"), d.get("gray_to_rgb", False))


def _prefix(info: DataInfo):
    import ember.vision.transforms as T

    steps = [T.Grayscale(num_output_channels=3)] if info.gray_to_rgb else []
    return steps + ([T.Resize((info.resize, info.resize))] if info.resize else [])


def eval_transform(info: DataInfo):
    """The deterministic transform of the test split (and of images given to ``ember predict``)."""
    import ember.vision.transforms as T

    return T.Compose(_prefix(info) + [T.ToTensor(), T.Normalize(info.mean, info.std)])


def _train_transform(info: DataInfo, augment: bool):
    import ember.vision.transforms as T

    if not augment:
        return eval_transform(info)
    size = info.resize or info.image_size
    steps = _prefix(info)
    steps.append(T.RandomCrop(size, padding=max(1, size // 8)))
    if info.name.startswith("cifar") or info.name == "folder":
        steps.append(T.RandomHorizontalFlip())
    return T.Compose(steps + [T.ToTensor(), T.Normalize(info.mean, info.std)])


def _not_found(name, root, err):
    return FileNotFoundError(
        f"the {name} dataset was not found under {root!r} ({err}); run again with --download "
        f"to fetch it, or point --data-dir at a folder that holds it")


def build_datasets(name: str, data_dir: str = "data", download: bool = False,
                   augment: bool = False, resize: int | None = None, channels: int | None = None):
    """``(train_set, test_set, info)`` for a dataset name or an image-folder path.

    ``resize`` resizes every image; ``channels=3`` repeats grayscale images to RGB.
    """
    from ember.vision import datasets

    key = name.lower()
    if key not in DATASETS:
        if os.path.isdir(name):
            return _image_folder(name, augment, resize)
        raise ValueError(f"unknown dataset {name!r}; valid datasets are: "
                         f"{', '.join(dataset_names())}")
    nch, size, mean, std = DATASETS[key]
    info = DataInfo(key, nch, size, mean, std, resize=resize)
    if channels == 3 and nch == 1:
        info.channels, info.mean, info.std, info.gray_to_rgb = 3, mean * 3, std * 3, True
    train_tf, test_tf = _train_transform(info, augment), eval_transform(info)
    if key == "digits":
        train = datasets.Digits(train=True, transform=train_tf)
        test = datasets.Digits(train=False, transform=test_tf)
    else:
        cls = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST,
               "cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[key]
        try:
            train = cls(data_dir, train=True, transform=train_tf, download=download)
            test = cls(data_dir, train=False, transform=test_tf, download=download)
        except RuntimeError as e:
            if download:
                raise
            raise _not_found(name, data_dir, e) from None
    classes = getattr(train, "classes", None) or _CLASSES_BY_INDEX.get(key)
    info.classes = [str(c) for c in classes]
    return train, test, info


def _image_folder(root, augment, resize):
    """``root/train`` + ``root/test`` (or ``root/val``) if present, else an 80/20 split of root."""
    import ember
    from ember.utils.data import Subset
    from ember.vision import datasets

    size = resize or 32
    info = DataInfo("folder", 3, size, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), resize=size)
    train_tf, test_tf = _train_transform(info, augment), eval_transform(info)
    test_dir = next((os.path.join(root, d) for d in ("test", "val")
                     if os.path.isdir(os.path.join(root, d))), None)
    if os.path.isdir(os.path.join(root, "train")) and test_dir:
        train = datasets.ImageFolder(os.path.join(root, "train"), transform=train_tf)
        test = datasets.ImageFolder(test_dir, transform=test_tf)
    else:
        train_all = datasets.ImageFolder(root, transform=train_tf)
        test_all = datasets.ImageFolder(root, transform=test_tf)
        perm = ember.randperm(len(train_all), generator=ember.Generator().manual_seed(0)).tolist()
        n_test = max(1, len(perm) // 5)
        train, test = Subset(train_all, perm[n_test:]), Subset(test_all, perm[:n_test])
        train.classes = train_all.classes
    info.classes = list(train.classes)
    return train, test, info
