"""The examples run: the CIFAR-10 tutorial learns and matches PyTorch; each example smoke-runs."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import ember
from tests._fake_cifar import patch_checksums, patch_source, write_cifar10

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")


def run_python(code_or_args, cwd, timeout=300):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    args = code_or_args if isinstance(code_or_args, list) else ["-c", code_or_args]
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    md5s = write_cifar10(str(root / "data"), n_train=4000, n_test=200)
    return root, md5s


def test_cifar10_tutorial_learns(cifar_root):
    root, md5s = cifar_root
    script = os.path.join(EXAMPLES, "cifar10_tutorial.py")
    out = run_python(patch_source(md5s) + f"import runpy\nrunpy.run_path({script!r}, "
                                          "run_name='__main__')\n", cwd=str(root))
    # 4,000 images make 1,000 mini-batches per epoch (the tutorial prints the loss every 2,000).
    assert "Finished Training" in out and (root / "cifar_net.pth").exists()
    acc = int(re.search(r"test images: (\d+) %", out).group(1))
    assert acc >= 60, out  # chance is 10%
    assert len(re.findall(r"Accuracy for class: \w+ +is [0-9.]+ %", out)) == 10


def _tutorial_net(t):
    nn, F = t.nn, t.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 6, 5)
            self.pool = nn.MaxPool2d(2, 2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(16 * 5 * 5, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, 10)

        def forward(self, x):
            x = self.pool(F.relu(self.conv1(x)))
            x = self.pool(F.relu(self.conv2(x)))
            x = t.flatten(x, 1)
            x = F.relu(self.fc1(x))
            x = F.relu(self.fc2(x))
            return self.fc3(x)

    return Net()


def test_cifar10_tutorial_matches_pytorch_step_by_step(cifar_root, monkeypatch):
    import torch

    root, md5s = cifar_root
    patch_checksums(monkeypatch, md5s)
    # Batches of 4 gain nothing from threads; on a busy machine extra threads only contend.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _compare_with_torch(torch, root)
    finally:
        torch.set_num_threads(threads)


def _compare_with_torch(torch, root):
    import ember.vision as torchvision
    import ember.vision.transforms as transforms

    transform = transforms.Compose([transforms.ToTensor(),
                                    transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    trainset = torchvision.datasets.CIFAR10(root=str(root / "data"), train=True, download=True,
                                            transform=transform)
    loader = ember.utils.data.DataLoader(trainset, batch_size=4, shuffle=False)
    enet, tnet = _tutorial_net(ember), _tutorial_net(torch)
    tnet.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                          for k, v in enet.state_dict().items()})
    eopt = ember.optim.SGD(enet.parameters(), lr=0.001, momentum=0.9)
    topt = torch.optim.SGD(tnet.parameters(), lr=0.001, momentum=0.9)
    ecrit, tcrit = ember.nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    elosses, tlosses = [], []
    for step, (x, y) in enumerate(loader):
        if step == 250:
            break
        for net, opt, crit, xs, ys, out in (
                (enet, eopt, ecrit, x, y, elosses),
                (tnet, topt, tcrit, torch.from_numpy(x.numpy()), torch.from_numpy(y.numpy()),
                 tlosses)):
            opt.zero_grad()
            loss = crit(net(xs), ys)
            loss.backward()
            opt.step()
            out.append(loss.item())
    # The same batches from the same weights: the same losses for 250 SGD-momentum steps.
    # (float32 rounding differences grow as training goes: past ~370 steps on this data they
    # exceed 1e-4, as two PyTorch builds with different BLAS would.)
    np.testing.assert_allclose(elosses, tlosses, rtol=1e-4, atol=1e-5)
    assert np.mean(elosses[-50:]) < np.mean(elosses[:50]) - 0.05
    for k, v in tnet.state_dict().items():
        np.testing.assert_allclose(enet.state_dict()[k].numpy(), v.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("script,args,pattern", [
    ("mlp_digits.py", ["--epochs", "1", "--limit", "200"], r"MLP on digits: test accuracy"),
    ("cnn_digits.py", ["--epochs", "1", "--limit", "200"], r"CNN on digits: test accuracy"),
    ("rnn_digits.py", ["--epochs", "1", "--limit", "200"], r"LSTM on digits: test accuracy"),
    ("rnn_digits.py", ["--epochs", "1", "--limit", "100", "--cell", "gru"],
     r"GRU on digits: test accuracy"),
    ("cnn_mnist.py", ["--epochs", "1", "--limit", "256"],
     r"CNN on MNIST \(8,000 train / 2,000 test\): test accuracy"),
    ("char_lstm.py", ["--steps", "3", "--hidden", "32", "--eval-every", "2", "--eval-batches", "1",
                      "--sample-len", "20"], r"val loss [0-9.]+ nats/char after 3 steps"),
])
def test_example_smoke(script, args, pattern, tmp_path):
    out = run_python([os.path.join(EXAMPLES, script), *args], cwd=str(tmp_path))
    assert re.search(pattern, out), out
