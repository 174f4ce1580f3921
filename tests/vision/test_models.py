"""ember.vision.models: registry, shapes, torchvision-compatible state_dicts, local weights.

torchvision cannot be installed beside the oracle torch, so the reference ResNet-18/50 and VGG-11
are re-defined here with plain torch.nn, with torchvision's module names.
"""

import numpy as np
import pytest
import torch
import torch.nn as tnn

import ember
from ember.vision import models


# --- torchvision's architectures, re-defined in torch (names and order as torchvision's) ---------
class TBasic(tnn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = tnn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.relu = tnn.ReLU(inplace=True)
        self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class TBottleneck(tnn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = tnn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.conv2 = tnn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.conv3 = tnn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = tnn.BatchNorm2d(planes * 4)
        self.relu = tnn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class TResNet(tnn.Module):
    def __init__(self, block, layers, num_classes=1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = tnn.BatchNorm2d(64)
        self.relu = tnn.ReLU(inplace=True)
        self.maxpool = tnn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make(block, 64, layers[0], 1)
        self.layer2 = self._make(block, 128, layers[1], 2)
        self.layer3 = self._make(block, 256, layers[2], 2)
        self.layer4 = self._make(block, 512, layers[3], 2)
        self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
        self.fc = tnn.Linear(512 * block.expansion, num_classes)

    def _make(self, block, planes, n, stride):
        down = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            down = tnn.Sequential(
                tnn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                tnn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, down)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, n)]
        return tnn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def t_vgg_features(cfg, batch_norm=False):
    layers, c = [], 3
    for v in cfg:
        if v == "M":
            layers.append(tnn.MaxPool2d(2, 2))
        else:
            layers.append(tnn.Conv2d(c, v, 3, padding=1))
            layers += [tnn.BatchNorm2d(v)] if batch_norm else []
            layers.append(tnn.ReLU(inplace=True))
            c = v
    return tnn.Sequential(*layers)


def t_vgg11(num_classes=1000):
    net = tnn.Module()
    net.features = t_vgg_features(models.cfgs["A"])
    net.avgpool = tnn.AdaptiveAvgPool2d((7, 7))
    net.classifier = tnn.Sequential(
        tnn.Linear(512 * 7 * 7, 4096), tnn.ReLU(True), tnn.Dropout(0.5),
        tnn.Linear(4096, 4096), tnn.ReLU(True), tnn.Dropout(0.5), tnn.Linear(4096, num_classes))
    net.forward = lambda x: net.classifier(torch.flatten(net.avgpool(net.features(x)), 1))
    return net


def _randomize_bn(tmodel):
    # Non-trivial running statistics so eval-mode BatchNorm is really exercised.
    g = torch.Generator().manual_seed(0)
    for m in tmodel.modules():
        if isinstance(m, tnn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def _to_ember(sd):
    return {k: ember.from_numpy(v.detach().numpy().copy()) for k, v in sd.items()}


def _same_keys_and_shapes(tmodel, emodel):
    tsd, esd = tmodel.state_dict(), emodel.state_dict()
    assert list(tsd) == list(esd)
    for k in tsd:
        assert tuple(tsd[k].shape) == tuple(esd[k].shape), k


# --- tests ---------------------------------------------------------------------------------------
def test_registry_lists_and_builds():
    names = models.list_models()
    for n in ["lenet", "mlp", "cnn", "vgg11", "vgg11_bn", "vgg16", "vgg16_bn", "resnet18",
              "resnet34", "resnet50", "resnet20", "resnet32", "resnet56"]:
        assert n in names
    net = models.get_model("resnet20", num_classes=7)
    assert net.fc.out_features == 7
    assert models.get_model_builder("ResNet20") is models.resnet20


def test_unknown_model_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown model 'resnet19'.*resnet18, resnet20"):
        models.get_model("resnet19")


def test_resnet18_loads_torchvision_state_dict_and_matches_logits():
    torch.manual_seed(0)
    tnet = TResNet(TBasic, [2, 2, 2, 2], num_classes=10)
    _randomize_bn(tnet)
    enet = models.resnet18(num_classes=10)
    _same_keys_and_shapes(tnet, enet)
    enet.load_state_dict(_to_ember(tnet.state_dict()), strict=True)
    tnet.eval(), enet.eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        want = tnet(torch.from_numpy(x)).numpy()
    with ember.no_grad():
        got = enet(ember.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_resnet34_and_50_have_torchvision_keys_and_shapes():
    _same_keys_and_shapes(TResNet(TBasic, [3, 4, 6, 3]), models.resnet34())
    _same_keys_and_shapes(TResNet(TBottleneck, [3, 4, 6, 3]), models.resnet50())


def test_vgg11_loads_torchvision_state_dict_and_matches_logits():
    torch.manual_seed(0)
    tnet = t_vgg11(num_classes=10)
    enet = models.vgg11(num_classes=10, init_weights=False)  # weights are copied in below
    _same_keys_and_shapes(tnet, enet)
    enet.load_state_dict(_to_ember(tnet.state_dict()), strict=True)
    tnet.eval(), enet.eval()
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        want = tnet(torch.from_numpy(x)).numpy()
    with ember.no_grad():
        got = enet(ember.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


# The VGG classifier alone has 120M weights; the BatchNorm and VGG-16 variants are checked on
# their `features` stacks (where they differ from VGG-11) to keep this file fast.
@pytest.mark.parametrize("cfg,batch_norm", [("A", True), ("D", False), ("D", True)])
def test_vgg_variants_features_match_torchvision(cfg, batch_norm):
    tfeat = t_vgg_features(models.cfgs[cfg], batch_norm)
    efeat = models.make_layers(models.cfgs[cfg], batch_norm=batch_norm)
    _same_keys_and_shapes(tfeat, efeat)
    _randomize_bn(tfeat)
    efeat.load_state_dict(_to_ember(tfeat.state_dict()))
    tfeat.eval(), efeat.eval()
    x = np.random.default_rng(2).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        want = tfeat(torch.from_numpy(x)).numpy()
    got = efeat(ember.from_numpy(x))
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-4, atol=1e-5)
    assert tuple(got.shape) == (1, 512, 1, 1)


def test_vgg_builders_pick_configs():
    assert models.vgg16.__name__ == "vgg16" and len(models.cfgs["D"]) == 18
    with pytest.raises(ValueError, match="unknown model 'vgg13'"):
        models.get_model("vgg13")


@pytest.mark.parametrize("name,shape", [("lenet", (2, 3, 32, 32)), ("resnet20", (2, 3, 32, 32))])
def test_forward_backward_shapes(name, shape):
    net = models.get_model(name, num_classes=10)
    out = net(ember.randn(*shape))
    assert tuple(out.shape) == (shape[0], 10)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_small_image_models():
    assert tuple(models.CNN(1, 10, image_size=8)(ember.randn(3, 1, 8, 8)).shape) == (3, 10)
    assert tuple(models.LeNet(1, 10, image_size=28)(ember.randn(3, 1, 28, 28)).shape) == (3, 10)
    assert tuple(models.MLP(64, (32,), 10)(ember.randn(3, 1, 8, 8)).shape) == (3, 10)
    with pytest.raises(ValueError, match="divisible by 4"):
        models.CNN(image_size=10)


def test_resnet20_depth_and_size():
    net = models.resnet20()
    n_params = sum(p.numel() for p in net.parameters())
    assert 0.26e6 < n_params < 0.28e6
    assert len(net.layer1) == len(net.layer2) == len(net.layer3) == 3
    assert len(models.resnet56().layer3) == 9
    with pytest.raises(ValueError, match="6n \\+ 2"):
        models.CifarResNet(depth=21)


def test_weights_from_local_files(tmp_path):
    src = models.resnet20(num_classes=10)
    sd = src.state_dict()
    path = tmp_path / "r20.pt"
    ember.save(sd, str(path))
    npz = tmp_path / "r20.npz"
    np.savez(npz, **{k: v.numpy() for k, v in sd.items()})
    tpath = tmp_path / "r20_torch.pth"  # written by PyTorch, read by ember.load
    torch.save({k: torch.from_numpy(v.numpy().copy()) for k, v in sd.items()}, tpath)
    for w in (str(path), npz, str(tpath), sd):
        got = models.resnet20(weights=w).state_dict()
        for k in sd:
            np.testing.assert_array_equal(got[k].numpy(), sd[k].numpy())


def test_weights_errors(tmp_path):
    with pytest.raises(ValueError, match="no pretrained weights"):
        models.resnet18(weights="IMAGENET1K_V1")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        models.resnet20(weights=str(tmp_path / "missing.pt"))
    with pytest.raises(TypeError, match="weights must be"):
        models.resnet20(weights=3)
