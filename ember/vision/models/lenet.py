"""Small convolutional networks: the tutorial's ``LeNet`` and a compact ``CNN`` for small images.

    >>> from ember.vision.models import LeNet, CNN
    >>> LeNet()(ember.randn(4, 3, 32, 32)).shape          # the PyTorch CIFAR-10 tutorial's Net
    ember.Size([4, 10])
    >>> CNN(in_channels=1, image_size=8)(ember.randn(4, 1, 8, 8)).shape
    ember.Size([4, 10])
"""

from __future__ import annotations

import ember
import ember.nn as nn
import ember.nn.functional as F
from ember.vision.models._api import load_weights, register_model

__all__ = ["LeNet", "CNN", "lenet", "cnn"]


class LeNet(nn.Module):
    """The CIFAR-10 tutorial's network: two 5x5 conv + max-pool stages and three linear layers.

    Inputs smaller than 32x32 are zero-padded by the first convolution up to 32x32 (28x28 MNIST
    gets LeNet-5's padding of 2), so the state_dict is the tutorial's for any image size.

    Args:
        in_channels: image channels (3 for CIFAR, 1 for MNIST).
        num_classes: outputs of ``fc3``.
        image_size: the height and width of the input images.
    """

    def __init__(self, in_channels=3, num_classes=10, image_size=32):
        super().__init__()
        pad = max(0, (32 - image_size + 1) // 2)
        side = ((image_size + 2 * pad - 4) // 2 - 4) // 2
        if side < 1:
            raise ValueError(f"LeNet needs images of at least 16x16 pixels, got {image_size}")
        self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=pad)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * side * side, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = ember.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class CNN(nn.Module):
    """Two 3x3 conv + ReLU + 2x2 max-pool stages, then a hidden linear layer with dropout.

    Sized for small images (8x8 digits to 32x32): ``image_size`` must be divisible by 4.

    Args:
        in_channels: image channels.
        num_classes: outputs of ``fc2``.
        image_size: the height and width of the input images.
        channels: output channels of the two conv layers.
        hidden: width of the hidden linear layer.
        dropout: dropout probability before the last layer.
    """

    def __init__(self, in_channels=1, num_classes=10, image_size=8, channels=(32, 64), hidden=128,
                 dropout=0.25):
        super().__init__()
        if image_size % 4 or image_size < 4:
            raise ValueError(f"CNN needs an image size divisible by 4, got {image_size}")
        c1, c2 = channels
        self.conv1 = nn.Conv2d(in_channels, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(c2 * (image_size // 4) ** 2, hidden)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = F.relu(self.fc1(ember.flatten(x, 1)))
        return self.fc2(self.dropout(x))


@register_model()
def lenet(*, weights=None, progress=True, **kwargs):
    """``LeNet(**kwargs)``, optionally loading a local weights file."""
    return load_weights(LeNet(**kwargs), weights)


@register_model()
def cnn(*, weights=None, progress=True, **kwargs):
    """``CNN(**kwargs)``, optionally loading a local weights file."""
    return load_weights(CNN(**kwargs), weights)
