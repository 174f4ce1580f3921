"""``ember.io``: reading and writing weights and checkpoints.

``ember.save`` / ``ember.load`` (and their PyTorch-named face ``ember.serialization``) use
``ember.io.checkpoint``: a zip of a JSON structure plus raw tensor bytes, written atomically,
loaded without running code unless ``weights_only=False``. ``ember.load`` also reads the files
``torch.save`` writes (``ember.io.torch_format``, never running code from them), and
``ember.save(..., format="torch" | "safetensors")`` writes PyTorch's formats.
"""

from ember.io._dispatch import load, save
from ember.io._pickle import (
    WeightsOnlyUnpicklingError,
    add_safe_globals,
    clear_safe_globals,
    get_safe_globals,
    safe_globals,
)
from ember.io.checkpoint import CheckpointError

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
