"""VGG-11 and VGG-16, with and without BatchNorm, in torchvision's layout.

``features`` (conv/ReLU/max-pool stack), ``avgpool`` (adaptive to 7x7) and ``classifier`` (three
linear layers with dropout) have torchvision's indices, so its state_dicts load unchanged:

    >>> from ember.vision.models import vgg11_bn
    >>> net = vgg11_bn(num_classes=10)
    >>> net(ember.randn(1, 3, 32, 32)).shape
    ember.Size([1, 10])
"""

from __future__ import annotations

import ember
import ember.nn as nn
from ember.vision.models._api import load_weights, register_model

__all__ = ["VGG", "make_layers", "cfgs", "vgg11", "vgg11_bn", "vgg16", "vgg16_bn"]

# Channel counts of each conv layer; "M" is a 2x2 max-pool.
cfgs = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """VGG: ``features``, a 7x7 adaptive average pool, and a 4096-4096-``num_classes`` classifier.

    Shape:
        input ``(N, 3, H, W)`` with H, W >= 32, output ``(N, num_classes)``.
    """

    def __init__(self, features, num_classes=1000, init_weights=True, dropout=0.5):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        if init_weights:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.constant_(m.bias, 0)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0, 0.01)
                    nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(ember.flatten(x, 1))


def make_layers(cfg, batch_norm=False, in_channels=3):
    """The ``features`` stack for a config list such as ``cfgs["A"]``."""
    layers = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU(inplace=True))
            in_channels = v
    return nn.Sequential(*layers)


def _vgg(cfg, batch_norm, weights, **kwargs):
    if weights is not None:
        kwargs["init_weights"] = False
    model = VGG(make_layers(cfgs[cfg], batch_norm=batch_norm), **kwargs)
    return load_weights(model, weights)


@register_model()
def vgg11(*, weights=None, progress=True, **kwargs):
    """VGG-11 (config "A"). ``weights``: a local weights file or state_dict."""
    return _vgg("A", False, weights, **kwargs)


@register_model()
def vgg11_bn(*, weights=None, progress=True, **kwargs):
    """VGG-11 with BatchNorm after every convolution."""
    return _vgg("A", True, weights, **kwargs)


@register_model()
def vgg16(*, weights=None, progress=True, **kwargs):
    """VGG-16 (config "D"). ``weights``: a local weights file or state_dict."""
    return _vgg("D", False, weights, **kwargs)


@register_model()
def vgg16_bn(*, weights=None, progress=True, **kwargs):
    """VGG-16 with BatchNorm after every convolution."""
    return _vgg("D", True, weights, **kwargs)
