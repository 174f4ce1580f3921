"""Random number generation: ``manual_seed``, ``Generator``, the default generator and RNG state.

ember draws from NumPy's PCG64: runs are reproducible from a seed (the numbers differ from
PyTorch's Mersenne Twister, which nothing in PyTorch's API promises anyway).
"""

from __future__ import annotations

import json
import time

import numpy as np

__all__ = ["Generator", "manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state",
           "default_generator", "fork_rng"]


class Generator:
    """A source of random numbers: ``g = ember.Generator().manual_seed(0)``; pass ``generator=g``."""

    def __init__(self, device="cpu"):
        self.device = device
        self._seed = 67280421310721
        self._np = np.random.Generator(np.random.PCG64(self._seed))

    def manual_seed(self, seed):
        seed = int(seed)
        if seed < 0:
            seed &= (1 << 64) - 1
        self._seed = seed
        self._np = np.random.Generator(np.random.PCG64(seed))
        return self

    def seed(self):
        s = int(time.time_ns()) & ((1 << 63) - 1)
        self.manual_seed(s)
        return s

    def initial_seed(self):
        return self._seed

    def get_state(self):
        from ember.ops.creation import tensor

        blob = json.dumps({"seed": self._seed, "state": self._np.bit_generator.state}).encode()
        return tensor(np.frombuffer(blob, dtype=np.uint8).copy())

    def set_state(self, new_state):
        arr = new_state._data if hasattr(new_state, "_data") else np.asarray(new_state)
        try:
            d = json.loads(arr.astype(np.uint8).tobytes().decode())
            bg = np.random.PCG64()
            bg.state = d["state"]
        except Exception as e:  # any malformed state is the caller's error
            raise RuntimeError(f"invalid RNG state for ember.Generator: {e}") from None
        self._seed = d["seed"]
        self._np = np.random.Generator(bg)
        return self


default_generator = Generator()


def _gen(generator=None):
    """The NumPy generator behind ``generator`` (or the default one)."""
    return (generator or default_generator)._np


def manual_seed(seed):
    """Seed the default generator (and NumPy's legacy global RNG, which Python-level code uses)."""
    default_generator.manual_seed(seed)
    np.random.seed(int(seed) % (2 ** 32))
    return default_generator


def seed():
    return default_generator.seed()


def initial_seed():
    return default_generator.initial_seed()


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(new_state):
    default_generator.set_state(new_state)


class fork_rng:
    """Context manager that restores the default generator's state on exit."""

    def __init__(self, devices=None, enabled=True, **kwargs):
        self.enabled = enabled

    def __enter__(self):
        if self.enabled:
            self._state = get_rng_state()

    def __exit__(self, *exc):
        if self.enabled:
            set_rng_state(self._state)
        return False
