"""ember.vision: torchvision's face of ember: ``import ember.vision as torchvision``.

    >>> import ember.vision as torchvision
    >>> import ember.vision.transforms as transforms
    >>> t = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    >>> train = torchvision.datasets.Digits(transform=t)       # bundled, no network

Sub-packages (``datasets``, ``transforms``, ``utils``, ``models``, ``io``) are imported on first
use, so ``import ember.vision`` stays cheap and needs no Pillow.
"""

from __future__ import annotations

from ember._lazy import lazy_submodules

__version__ = "0.1.0"

__all__ = [
    "datasets",
    "transforms",
    "utils",
    "models",
    "io",
    "get_image_backend",
    "set_image_backend",
    "get_video_backend",
    "set_video_backend",
]

__getattr__ = lazy_submodules(__name__, ["datasets", "transforms", "utils", "models", "io"])

_image_backend = "PIL"


def set_image_backend(backend: str) -> None:
    """Only ``"PIL"`` exists in ember (torchvision also knows ``"accimage"``)."""
    global _image_backend
    if backend not in ("PIL",):
        raise ValueError(f"Invalid backend '{backend}'. Options are 'PIL'")
    _image_backend = backend


def get_image_backend() -> str:
    """The package used to load images: always ``"PIL"``."""
    return _image_backend


def set_video_backend(backend: str) -> None:
    raise RuntimeError("ember.vision has no video support")


def get_video_backend() -> str:
    raise RuntimeError("ember.vision has no video support")
