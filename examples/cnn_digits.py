"""A LeNet-style convolutional network on the bundled handwritten digits (8x8, 10 classes).

    python examples/cnn_digits.py                 # ~98-99% test accuracy in well under a minute

Written as a PyTorch program: only the imports point at ember.
"""
import argparse
import time

import ember as torch
import ember.nn as nn
import ember.nn.functional as F
import ember.optim as optim
import ember.vision as torchvision
import ember.vision.transforms as transforms
from ember.utils.data import DataLoader, Subset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)   # 8x8 -> 8x8
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)  # 4x4 -> 4x4
        self.pool = nn.MaxPool2d(2)
        self.dropout = nn.Dropout(0.25)
        self.fc1 = nn.Linear(64 * 2 * 2, 128)
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
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--limit", type=int, help="train on the first N images only (smoke test)")
    args = parser.parse_args()
    torch.manual_seed(0)

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    train_set = torchvision.datasets.Digits(train=True, transform=transform)
    test_set = torchvision.datasets.Digits(train=False, transform=transform)
    if args.limit:
        train_set = Subset(train_set, range(args.limit))
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=256)

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
        print(f"epoch {epoch + 1:2d}  train loss {running / len(train_set):.4f}  "
              f"test acc {evaluate(model, test_loader):.2%}")
    acc = evaluate(model, test_loader)
    print(f"CNN on digits: test accuracy {acc:.2%} ({len(test_set)} images) "
          f"in {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
