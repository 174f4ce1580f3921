"""Train the weights shipped in ``ember/weights/`` (digits CNN and MLP) and register them.

    PYTHONPATH=. python tools/train_shipped_weights.py      # ~1 minute on 2 cores

Deterministic (seed 0, no workers): the same ember gives the same files. Each model trains on
the Digits train split with the preprocessing recorded in the registry, is evaluated on the
test split, and is saved as a ``.npz`` of its state_dict (loads with NumPy alone); the registry
gets the file's sha256 and the measured accuracy.
"""

import hashlib
import json
import os

import numpy as np

import ember
from ember import nn, optim
from ember.utils.data import DataLoader
from ember.vision import models, transforms
from ember.vision.datasets import Digits

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ember", "weights")
PRE = {"to_tensor": True, "mean": [0.5], "std": [0.5], "size": 8, "channels": 1}
META = {"licence": "CC BY 4.0 (trained by ember on the UCI digits, CC BY 4.0)",
        "source": "tools/train_shipped_weights.py", "dataset": "ember.vision.datasets.Digits",
        "preprocessing": PRE, "classes": [str(i) for i in range(10)]}


def accuracy(model, loader):
    model.eval()
    correct = total = 0
    with ember.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
            total += y.shape[0]
    return correct / total


def train(name, epochs, lr):
    ember.manual_seed(0)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(PRE["mean"], PRE["std"])])
    train_loader = DataLoader(Digits(train=True, transform=tf), batch_size=32, shuffle=True)
    test_loader = DataLoader(Digits(train=False, transform=tf), batch_size=360)
    model = models.get_model(name)
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        model.train()
        for x, y in train_loader:
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
        sched.step()
    acc = accuracy(model, test_loader)
    path = os.path.join(OUT, f"{name}_digits.npz")
    np.savez(path, **{k: v.numpy() for k, v in model.state_dict().items()})
    with open(path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    print(f"{name}: test accuracy {acc:.4f}, {os.path.getsize(path)} bytes, sha256 {sha}")
    return {"name": f"{name}.DIGITS_V1", "model_class": type(model).__name__, "sha256": sha,
            "file": os.path.basename(path), "default": True, "config": {},
            "meta": {**META, "metrics": {"test_accuracy": round(acc, 4)},
                     "recipe": f"SGD lr={lr} momentum=0.9, cosine, {epochs} epochs, batch 32"}}


def main():
    os.makedirs(OUT, exist_ok=True)
    entries = [train("cnn", 15, 0.05), train("mlp", 30, 0.05)]
    with open(os.path.join(OUT, "registry.json"), "w", encoding="utf-8") as f:
        json.dump({"format": "ember.hub.registry", "version": 1, "weights": entries}, f,
                  indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
