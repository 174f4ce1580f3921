"""A convolutional network on real MNIST digits: the official 10,000 test images split 8,000/2,000.

    python examples/cnn_mnist.py                  # ~98% accuracy on the 2,000 held-out digits

The official MNIST test files (t10k-*-ubyte.gz, the bytes torchvision downloads) ship with the
repository in tests/data/mnist; --data-dir points elsewhere. Only the imports point at ember.
"""
import argparse
import gzip
import os
import time

import ember as torch  # before NumPy, so that ember can share convolutions between the cores
import ember.nn as nn
import ember.nn.functional as F
import ember.optim as optim
from ember.utils.data import DataLoader, TensorDataset

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DIRS = [os.path.join(HERE, "..", "tests", "data", "mnist"),
                os.path.join(HERE, "data", "mnist")]


def read_idx(path):
    """An IDX file (the MNIST format): magic, dimension sizes, then uint8 data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = np.frombuffer(raw, ">u4", count=ndim, offset=4).astype(int)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_mnist_split(data_dir, n_train=8000):
    images = read_idx(os.path.join(data_dir, "t10k-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, "t10k-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(((images / 255.0 - 0.1307) / 0.3081).astype(np.float32)).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return TensorDataset(x[:n_train], y[:n_train]), TensorDataset(x[n_train:], y[n_train:])


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)   # 28x28 -> pool -> 14x14
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)  # 14x14 -> pool -> 7x7
        self.pool = nn.MaxPool2d(2)
        self.dropout = nn.Dropout(0.25)
        self.fc1 = nn.Linear(32 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = self.dropout(F.relu(self.fc1(x)))
        return self.fc2(x)


def evaluate(model, loader):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for images, labels in loader:
            correct += (model(images).argmax(1) == labels).sum().item()
            total += labels.size(0)
    return correct / total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder with t10k-images-idx3-ubyte.gz and labels")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--limit", type=int, help="train on the first N images only (smoke test)")
    args = parser.parse_args()
    torch.manual_seed(0)

    data_dir = args.data_dir or next(
        (d for d in DEFAULT_DIRS if os.path.exists(os.path.join(d, "t10k-images-idx3-ubyte.gz"))),
        DEFAULT_DIRS[0])
    train_set, test_set = load_mnist_split(data_dir)
    if args.limit:
        train_set = TensorDataset(*(t[:args.limit] for t in train_set.tensors))
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=500)

    model = Net()
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)

    start = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        running = 0.0
        for images, labels in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
            running += loss.item() * labels.size(0)
        scheduler.step()
        print(f"epoch {epoch + 1}  train loss {running / len(train_set):.4f}  "
              f"held-out acc {evaluate(model, test_loader):.2%}  "
              f"({time.perf_counter() - start:.0f}s)")
    acc = evaluate(model, test_loader)
    print(f"CNN on MNIST (8,000 train / 2,000 test): test accuracy {acc:.2%} "
          f"in {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
