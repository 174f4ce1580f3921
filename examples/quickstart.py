"""Fit a linear model with ember's autograd (the README's tensor example)."""

import ember as torch

torch.manual_seed(0)
x = torch.randn(64, 3)
w = torch.zeros(3, 1, requires_grad=True)
b = torch.zeros(1, requires_grad=True)
y = x @ torch.tensor([[2.0], [-1.0], [0.5]]) + 0.3

for step in range(200):
    loss = ((x @ w + b - y) ** 2).mean()
    w.grad = b.grad = None
    loss.backward()
    with torch.no_grad():
        w -= 0.1 * w.grad
        b -= 0.1 * b.grad
print(f"loss {loss.item():.2e}", w.view(-1), b)
