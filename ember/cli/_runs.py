"""Run folders: building the model for a dataset, checkpoints, RNG states, metrics and plots.

A run folder ``runs/<timestamp>/`` holds ``checkpoint.pt`` (``ember.save`` of a dict with
``model``, ``optimizer``, ``scheduler``, ``rng``, ``epoch``, ``batch``, ``config``, ``data``,
``metrics``), ``metrics.json`` and ``curves.png``.
"""

from __future__ import annotations

import json
import os
import random

import numpy as np

__all__ = ["build_model", "model_input", "rng_state", "set_rng_state", "save_checkpoint",
           "load_checkpoint", "write_metrics", "plot_curves", "checkpoint_path", "need", "need_all"]

CHECKPOINT = "checkpoint.pt"
_THREE_CHANNEL = ("resnet18", "resnet34", "resnet50", "vgg11", "vgg11_bn", "vgg16", "vgg16_bn")


def need(module: str, extra: str, what: str):
    """Import an optional dependency or fail with the pip extra that provides it."""
    return need_all([(module, extra)], what)[0]


_PIP_NAMES = {"PIL": "pillow"}


def need_all(modules, what: str) -> list:
    """Import every ``(module, extra)`` or fail once, naming all the missing extras."""
    import importlib

    found, missing = [], []
    for module, extra in modules:
        try:
            found.append(importlib.import_module(module))
        except ImportError:
            missing.append((module, extra))
    if missing:
        names = ", ".join(f"'{m}'" for m, _ in missing)
        extras = ",".join(dict.fromkeys(e for _, e in missing))
        pips = " ".join(_PIP_NAMES.get(m, m) for m, _ in missing)
        raise ImportError(f"{what} needs the {names} package{'s' * (len(missing) > 1)}: "
                          f"pip install 'ember[{extras}]' (or pip install {pips})")
    return found


def model_input(name: str, info) -> tuple[int, int | None]:
    """(channels, resize) that model ``name`` needs for the images described by ``info``."""
    channels = 3 if name in _THREE_CHANNEL else info.channels
    resize = info.resize
    if name.startswith("vgg") and info.image_size < 32:
        resize = 32  # five 2x2 max-pools need at least 32x32 pixels
    return channels, resize


def build_model(name: str, info):
    """The zoo model ``name`` sized for ``info`` (channels, image size, number of classes)."""
    from ember.vision import models

    models.get_model_builder(name)  # unknown names fail here with the list of valid ones
    n, c, size = len(info.classes), info.channels, info.resize or info.image_size
    if name in ("lenet", "cnn"):
        return models.get_model(name, in_channels=c, num_classes=n, image_size=size)
    if name == "mlp":
        return models.get_model(name, in_features=c * size * size, num_classes=n)
    if name in _THREE_CHANNEL:
        return models.get_model(name, num_classes=n)
    return models.get_model(name, in_channels=c, num_classes=n)


def rng_state(loader_generator):
    """Every random state a training run draws from, in a form ``ember.save`` stores."""
    import ember

    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "ember": ember.get_rng_state(),
        "loader": loader_generator.get_state(),
        "numpy": {"keys": ember.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
    }


def set_rng_state(state, loader_generator=None):
    """Restore ``rng_state``'s states; the loader's generator only when it is given."""
    import ember

    ember.set_rng_state(state["ember"])
    if loader_generator is not None:
        loader_generator.set_state(state["loader"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def checkpoint_path(run: str) -> str:
    """``run`` may be a run folder or the checkpoint file itself."""
    return os.path.join(run, CHECKPOINT) if os.path.isdir(run) else run


def save_checkpoint(run_dir: str, state: dict):
    import ember

    ember.save(state, os.path.join(run_dir, CHECKPOINT))


def load_checkpoint(run: str) -> dict:
    """Load a run's checkpoint; a missing, corrupted or foreign file raises a one-line error."""
    import ember

    path = checkpoint_path(run)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!r} (expected a run folder made by "
                                "'ember train' or its checkpoint.pt)")
    try:
        ckpt = ember.load(path)
    except Exception as e:  # any decoding failure is the same user-facing problem
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"cannot read checkpoint {path!r}: {msg}") from None
    if not isinstance(ckpt, dict) or not {"model", "config", "data"} <= set(ckpt):
        raise ValueError(f"{path!r} is not a checkpoint written by 'ember train'")
    return ckpt


def write_metrics(run_dir: str, metrics: list):
    path = os.path.join(run_dir, "metrics.json")
    with open(path + ".tmp", "w") as f:
        json.dump(metrics, f, indent=1)
    os.replace(path + ".tmp", path)


def plot_curves(run_dir: str, metrics: list):
    """``curves.png``: loss and accuracy per epoch, train and test."""
    matplotlib = need("matplotlib", "plot", "drawing curves.png")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [m["epoch"] for m in metrics]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    for split, style in (("train", "o-"), ("test", "s--")):
        ax1.plot(epochs, [m[f"{split}_loss"] for m in metrics], style, label=split)
        ax2.plot(epochs, [100 * m[f"{split}_acc"] for m in metrics], style, label=split)
    ax1.set(xlabel="epoch", ylabel="loss", title="loss")
    ax2.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(run_dir, "curves.png"), dpi=100)
    plt.close(fig)
