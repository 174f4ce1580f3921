"""``ember.io``: reading and writing weights and checkpoints.

``ember.save`` / ``ember.load`` (and their PyTorch-named face ``ember.serialization``) use
``ember.io.checkpoint``: a zip of a JSON structure plus raw tensor bytes, written atomically,
loaded without running code unless ``weights_only=False``.
"""

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
    "WeightsOnlyUnpicklingError",
    "add_safe_globals",
    "clear_safe_globals",
    "get_safe_globals",
    "load",
    "safe_globals",
    "save",
]
