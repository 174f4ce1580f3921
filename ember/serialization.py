"""``ember.serialization``: PyTorch's ``torch.serialization`` names over ``ember.io``.

    ember.save(model.state_dict(), "model.pt")       # atomic, no pickle for state_dicts
    sd = ember.load("model.pt")                      # weights_only=True: never runs code
    sd = ember.load("resnet18.pth")                  # a torch.save file: read, never executed
    ember.save(sd, "m.pt", format="torch")           # torch.load(weights_only=True) reads it
    with ember.serialization.safe_globals([MyConfig]):
        ckpt = ember.load("ckpt.pt")                 # allow one trusted class
"""

from pickle import UnpicklingError

from ember.io._pickle import (
    WeightsOnlyUnpicklingError,
    add_safe_globals,
    clear_safe_globals,
    get_safe_globals,
    safe_globals,
)
from ember.io._dispatch import load, save
from ember.io.checkpoint import CheckpointError
from ember.io.torch_format import TorchFileError, UnsafeGlobalError

__all__ = [
    "CheckpointError",
    "TorchFileError",
    "UnpicklingError",
    "UnsafeGlobalError",
    "WeightsOnlyUnpicklingError",
    "add_safe_globals",
    "clear_safe_globals",
    "get_safe_globals",
    "load",
    "safe_globals",
    "save",
]
