"""ember.vision.datasets: torchvision's datasets, read from their official file formats.

>>> from ember.vision import datasets, transforms
>>> train = datasets.CIFAR10("./data", train=True, download=True,
...                          transform=transforms.ToTensor())
>>> digits = datasets.Digits(train=True)     # bundled: works offline
"""

from ember.vision.datasets.cifar import CIFAR10, CIFAR100
from ember.vision.datasets.digits import Digits
from ember.vision.datasets.folder import DatasetFolder, ImageFolder
from ember.vision.datasets.mnist import KMNIST, MNIST, FashionMNIST
from ember.vision.datasets.vision import VisionDataset

__all__ = [
    "CIFAR10",
    "CIFAR100",
    "MNIST",
    "FashionMNIST",
    "KMNIST",
    "ImageFolder",
    "DatasetFolder",
    "Digits",
    "VisionDataset",
]
