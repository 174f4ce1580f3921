"""``ember.serialization``: PyTorch's ``torch.serialization`` names over ``ember.io``.

    ember.save(model.state_dict(), "model.pt")       # atomic, no pickle for state_dicts
    sd = ember.load("model.pt")                      # weights_only=True: never runs code
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
from ember.io.checkpoint import CheckpointError, load, save

__all__ = [
    "CheckpointError",
    "UnpicklingError",
    "WeightsOnlyUnpicklingError",
    "add_safe_globals",
    "clear_safe_globals",
    "get_safe_globals",
    "load",
    "safe_globals",
    "save",
]
