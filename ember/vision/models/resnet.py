"""ResNets: torchvision's ImageNet family (resnet18/34/50) and the CIFAR family (resnet20/32/56).

The ImageNet models have torchvision's module names and state_dict keys (``conv1``, ``bn1``,
``layer1.0.downsample.0.weight``, ``fc.bias`` ...), so a torchvision state_dict loads unchanged:

    >>> from ember.vision.models import resnet18
    >>> net = resnet18(num_classes=10)
    >>> net = resnet18(weights="resnet18-f37072fd.pth")   # a local torchvision weights file

The CIFAR models follow He et al. (2016), section 4.2: a 3x3 stem with 16 channels, three stages of
``n`` basic blocks with 16/32/64 channels (stride 2 entering stages 2 and 3), global average
pooling and one linear layer; depth = 6n + 2. Shortcuts that change shape are 1x1 conv + BatchNorm
(the paper's option B), with the same key names as torchvision's blocks.
"""

from __future__ import annotations

import ember
import ember.nn as nn
from ember.vision.models._api import load_weights, register_model

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "CifarResNet", "resnet18", "resnet34", "resnet50",
           "resnet20", "resnet32", "resnet44", "resnet56"]


def conv3x3(in_planes, out_planes, stride=1, groups=1, dilation=1):
    """3x3 convolution with padding, no bias (a BatchNorm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation,
                     groups=groups, bias=False, dilation=dilation)


def conv1x1(in_planes, out_planes, stride=1):
    """1x1 convolution, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34, CIFAR ResNets)."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64,
                 dilation=1, norm_layer=None):
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock only supports groups=1 and base_width=64")
        if dilation > 1:
            raise NotImplementedError("dilation > 1 is not supported in BasicBlock")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4) with a residual connection (ResNet-50 and deeper)."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64,
                 dilation=1, norm_layer=None):
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride, groups, dilation)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _init_weights(model, zero_init_residual):
    # torchvision's initialisation: He-normal convolutions (fan_out), BatchNorm scale 1, shift 0.
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, Bottleneck) and m.bn3.weight is not None:
                nn.init.constant_(m.bn3.weight, 0)
            elif isinstance(m, BasicBlock) and m.bn2.weight is not None:
                nn.init.constant_(m.bn2.weight, 0)


class _ResNetBase(nn.Module):
    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        norm_layer = self._norm_layer
        downsample = None
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                norm_layer(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width,
                        previous_dilation, norm_layer)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups,
                                base_width=self.base_width, dilation=self.dilation,
                                norm_layer=norm_layer))
        return nn.Sequential(*layers)


class ResNet(_ResNetBase):
    """torchvision's ResNet (ImageNet stem: 7x7 stride-2 conv and 3x3 max-pool).

    Args:
        block: ``BasicBlock`` or ``Bottleneck``.
        layers: the number of blocks in each of the four stages, e.g. ``[2, 2, 2, 2]``.
        num_classes: outputs of the final ``fc`` layer.
        zero_init_residual: start the last BatchNorm of every block at zero.
    Shape:
        input ``(N, 3, H, W)`` (H, W >= 32), output ``(N, num_classes)``.
    """

    def __init__(self, block, layers, num_classes=1000, zero_init_residual=False, groups=1,
                 width_per_group=64, replace_stride_with_dilation=None, norm_layer=None):
        super().__init__()
        self._norm_layer = norm_layer or nn.BatchNorm2d
        self.inplanes = 64
        self.dilation = 1
        if replace_stride_with_dilation is None:
            replace_stride_with_dilation = [False, False, False]
        if len(replace_stride_with_dilation) != 3:
            raise ValueError("replace_stride_with_dilation should be None or a 3-element tuple, "
                             f"got {replace_stride_with_dilation}")
        self.groups = groups
        self.base_width = width_per_group
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = self._norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2,
                                       dilate=replace_stride_with_dilation[0])
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2,
                                       dilate=replace_stride_with_dilation[1])
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2,
                                       dilate=replace_stride_with_dilation[2])
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        _init_weights(self, zero_init_residual)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = ember.flatten(self.avgpool(x), 1)
        return self.fc(x)


class CifarResNet(_ResNetBase):
    """He et al.'s CIFAR ResNet: 3x3 stem, stages of 16/32/64 channels, depth 6n + 2.

    Args:
        depth: 20, 32, 44, 56, 110 ... (``(depth - 2) % 6 == 0``).
        num_classes: outputs of the final ``fc`` layer.
        in_channels: image channels (3 for CIFAR, 1 for MNIST-like data).
    Shape:
        input ``(N, in_channels, H, W)``, output ``(N, num_classes)``.
    """

    def __init__(self, depth=20, num_classes=10, in_channels=3, zero_init_residual=False,
                 norm_layer=None):
        super().__init__()
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ValueError(f"CifarResNet depth must be 6n + 2 (20, 32, 44, 56, ...), got {depth}")
        n = (depth - 2) // 6
        self._norm_layer = norm_layer or nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = 16, 1, 1, 64
        self.conv1 = conv3x3(in_channels, 16)
        self.bn1 = self._norm_layer(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(BasicBlock, 16, n)
        self.layer2 = self._make_layer(BasicBlock, 32, n, stride=2)
        self.layer3 = self._make_layer(BasicBlock, 64, n, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)
        _init_weights(self, zero_init_residual)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(ember.flatten(self.avgpool(x), 1))


def _resnet(block, layers, weights, progress, **kwargs):
    return load_weights(ResNet(block, layers, **kwargs), weights)


@register_model()
def resnet18(*, weights=None, progress=True, **kwargs):
    """ResNet-18 (torchvision's layout). ``weights``: a local weights file or state_dict."""
    return _resnet(BasicBlock, [2, 2, 2, 2], weights, progress, **kwargs)


@register_model()
def resnet34(*, weights=None, progress=True, **kwargs):
    """ResNet-34 (torchvision's layout). ``weights``: a local weights file or state_dict."""
    return _resnet(BasicBlock, [3, 4, 6, 3], weights, progress, **kwargs)


@register_model()
def resnet50(*, weights=None, progress=True, **kwargs):
    """ResNet-50 (torchvision's layout). ``weights``: a local weights file or state_dict."""
    return _resnet(Bottleneck, [3, 4, 6, 3], weights, progress, **kwargs)


def _cifar(depth, weights, **kwargs):
    return load_weights(CifarResNet(depth, **kwargs), weights)


@register_model()
def resnet20(*, weights=None, progress=True, **kwargs):
    """CIFAR ResNet-20 (0.27M parameters)."""
    return _cifar(20, weights, **kwargs)


@register_model()
def resnet32(*, weights=None, progress=True, **kwargs):
    """CIFAR ResNet-32."""
    return _cifar(32, weights, **kwargs)


@register_model()
def resnet44(*, weights=None, progress=True, **kwargs):
    """CIFAR ResNet-44."""
    return _cifar(44, weights, **kwargs)


@register_model()
def resnet56(*, weights=None, progress=True, **kwargs):
    """CIFAR ResNet-56."""
    return _cifar(56, weights, **kwargs)
