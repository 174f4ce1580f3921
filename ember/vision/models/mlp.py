"""A multilayer perceptron classifier for flattened images.

    >>> from ember.vision.models import MLP
    >>> net = MLP(in_features=64, hidden=(256, 128), num_classes=10)
    >>> net(ember.randn(5, 1, 8, 8)).shape
    ember.Size([5, 10])
"""

from __future__ import annotations

import ember.nn as nn
from ember.vision.models._api import load_weights, register_model

__all__ = ["MLP", "mlp"]


class MLP(nn.Module):
    """Flatten, then Linear + ReLU (+ Dropout) per hidden width, then a final Linear.

    Args:
        in_features: the number of input values per sample (e.g. 64 for 8x8 digits).
        hidden: widths of the hidden layers.
        num_classes: outputs of the last layer.
        dropout: dropout probability after each hidden layer (0 disables it).
    Shape:
        input ``(N, *)`` with ``in_features`` values per sample, output ``(N, num_classes)``.
    """

    def __init__(self, in_features=64, hidden=(256, 128), num_classes=10, dropout=0.0):
        super().__init__()
        layers = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


@register_model()
def mlp(*, weights=None, progress=True, **kwargs):
    """``MLP(**kwargs)``, optionally loading a local weights file."""
    return load_weights(MLP(**kwargs), weights)
