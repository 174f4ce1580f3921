"""The model registry: ``get_model``, ``list_models``, ``get_model_builder`` and local weights.

    >>> from ember.vision import models
    >>> models.list_models()[:3]
    ['cnn', 'lenet', 'mlp']
    >>> net = models.get_model("resnet18", num_classes=10)
    >>> net = models.resnet18(weights="resnet18.pt")   # a local file of weights

Builders take ``weights=None`` as torchvision's do. With no network there are no pretrained
downloads: ``weights`` is a local file (an ``ember.save`` file, a PyTorch-saved state_dict when
``ember.load`` can read it, or a NumPy ``.npz`` of arrays) or a state_dict already in memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["register_model", "get_model", "get_model_builder", "list_models", "load_weights"]

_MODELS: dict[str, Callable] = {}


def register_model(name: str | None = None) -> Callable:
    """Decorator that adds a model builder to the registry under ``name`` (default: its name)."""

    def wrapper(fn):
        key = name or fn.__name__
        if key in _MODELS:
            raise ValueError(f"a model named {key!r} is already registered")
        _MODELS[key] = fn
        return fn

    return wrapper


def list_models() -> list[str]:
    """The sorted names of every registered model."""
    return sorted(_MODELS)


def get_model_builder(name: str) -> Callable:
    """The builder function registered as ``name`` (case-insensitive)."""
    key = name.lower()
    if key not in _MODELS:
        raise ValueError(f"unknown model {name!r}; valid models are: {', '.join(list_models())}")
    return _MODELS[key]


def get_model(name: str, **config):
    """Build the model registered as ``name`` with ``config`` passed to its builder.

    Example:
        >>> net = get_model("resnet20", num_classes=100)
    """
    return get_model_builder(name)(**config)


def _read_state_dict(path: str) -> dict:
    import numpy as np

    import ember

    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"weights file {path!r} does not exist (ember has no network downloads: pass the path "
            "of a local file of weights)")
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            return {k: ember.from_numpy(np.array(z[k])) for k in z.files}
    obj = ember.load(path, map_location="cpu")
    # Checkpoints often wrap the state_dict: {"model": ...} or {"state_dict": ...}.
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            return obj[key]
    if not isinstance(obj, dict):
        raise ValueError(f"weights file {path!r} holds a {type(obj).__name__}, not a state_dict")
    return obj


def load_weights(model, weights, strict: bool = True):
    """Load ``weights`` (a path, or a state_dict) into ``model``; ``None`` leaves it untouched."""
    if weights is None:
        return model
    from ember import hub  # a registered name: "DEFAULT", "DIGITS_V1", "cnn.DIGITS_V1"

    entry = hub.lookup(model, weights)
    if entry is not None:
        weights = entry.get_state_dict()
    if isinstance(weights, dict):
        state = weights
    elif isinstance(weights, (str, os.PathLike)):
        path = os.fspath(weights)
        if not os.path.exists(path) and os.sep not in path and "." not in path:
            raise ValueError(
                f"weights={path!r}: ember has no pretrained weights to download here; pass the "
                "path of a local weights file (ember.save, a PyTorch state_dict or .npz)")
        state = _read_state_dict(path)
    else:
        raise TypeError(
            f"weights must be None, a file path or a state_dict, got {type(weights).__name__}")
    model.load_state_dict(state, strict=strict)
    return model
