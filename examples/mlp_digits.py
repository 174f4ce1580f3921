"""A feed-forward network (MLP) on the bundled handwritten digits (8x8 pixels, 10 classes).

    python examples/mlp_digits.py                 # ~97% test accuracy in a few seconds

Written as a PyTorch program: only the imports point at ember.
"""
import argparse
import time

import ember as torch
import ember.nn as nn
import ember.optim as optim
import ember.vision as torchvision
import ember.vision.transforms as transforms
from ember.utils.data import DataLoader, Subset


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
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
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

    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(256, 128), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(128, 10),
    )
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
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
        if (epoch + 1) % 10 == 0 or epoch + 1 == args.epochs:
            print(f"epoch {epoch + 1:3d}  train loss {running / len(train_set):.4f}  "
                  f"test acc {evaluate(model, test_loader):.2%}")
    acc = evaluate(model, test_loader)
    print(f"MLP on digits: test accuracy {acc:.2%} ({len(test_set)} images) "
          f"in {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
