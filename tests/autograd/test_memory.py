"""The graph is freed after backward: a training loop's memory stays flat.

``python tests/autograd/test_memory.py`` runs 10,000 steps and prints the RSS before and after;
the unit test runs fewer steps with a generous bound (no timing).
"""

import gc
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import ember


def _rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _train(steps, seed=0):
    """A 2-layer MLP with manual SGD on a fixed batch; returns the last loss."""
    ember.manual_seed(seed)
    w1 = (ember.randn(20, 64) * 0.1).requires_grad_()
    b1 = ember.zeros(64, requires_grad=True)
    w2 = (ember.randn(64, 3) * 0.1).requires_grad_()
    b2 = ember.zeros(3, requires_grad=True)
    x = ember.randn(32, 20)
    y = ember.randint(0, 3, (32,))
    loss = None
    for _ in range(steps):
        h = (x @ w1 + b1).relu()
        logp = (h @ w2 + b2).log_softmax(1)
        loss = -logp.gather(1, y.unsqueeze(1)).mean()
        loss.backward()
        with ember.no_grad():
            for p in (w1, b1, w2, b2):
                p.sub_(p.grad * 0.1)
                p.grad = None
    return loss.item()


def test_training_loop_memory_is_flat():
    _train(200)
    gc.collect()
    before = _rss_mib()
    loss = _train(2000)
    gc.collect()
    after = _rss_mib()
    assert np.isfinite(loss)
    assert after - before < 20, f"RSS grew from {before:.1f} MiB to {after:.1f} MiB"


def test_graph_nodes_are_released():
    import weakref

    x = ember.randn(4, 4, requires_grad=True)
    y = (x.exp() * x).sum()
    ref = weakref.ref(y.grad_fn)
    y.backward()
    del y
    gc.collect()
    assert ref() is None


if __name__ == "__main__":
    _train(200)
    gc.collect()
    before = _rss_mib()
    loss = _train(10_000)
    gc.collect()
    print(f"10,000 steps: RSS before {before:.1f} MiB, after {_rss_mib():.1f} MiB, loss {loss:.4f}")
