"""ember: a deep learning framework in readable Python on NumPy, with PyTorch's API.

``import ember as torch`` runs most PyTorch code unchanged.
"""

from __future__ import annotations

import builtins as _builtins

from ember import _blas_env  # noqa: F401  (first: before NumPy loads OpenBLAS)

__version__ = "0.1.0"

from ember.tensor import Size, Tensor  # noqa: E402  (first: everything else builds on it)
from ember.dtypes import (  # noqa: E402
    bfloat16, bool, double, dtype, finfo, float, float16, float32, float64, get_default_dtype,
    half, iinfo, int, int8, int16, int32, int64, long, promote_types, result_type,
    set_default_dtype, short, uint8, can_cast,
)
from ember.backend import device  # noqa: E402
from ember.autograd.grad_mode import (  # noqa: E402
    enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad,
    set_grad_enabled,
)
from ember.autograd.anomaly_mode import (  # noqa: E402
    is_anomaly_check_nan_enabled, is_anomaly_enabled,
)
from ember.random import (  # noqa: E402
    Generator, default_generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state,
)
from ember.ops.creation import *  # noqa: E402,F401,F403
from ember.ops.elementwise import *  # noqa: E402,F401,F403
from ember.ops.reduction import *  # noqa: E402,F401,F403
from ember.ops.shape import *  # noqa: E402,F401,F403
from ember.ops.indexing import *  # noqa: E402,F401,F403
from ember.ops.linalg import *  # noqa: E402,F401,F403
from ember import autograd  # noqa: E402
from ember import cuda, accelerator, backends  # noqa: E402
from ember._lazy import lazy_submodules  # noqa: E402
from ember._format import set_printoptions  # noqa: E402,F401

strided = "strided"
contiguous_format = preserve_format = channels_last = "memory_format"


def is_tensor(obj):
    return isinstance(obj, Tensor)


def is_floating_point(input):
    return input.is_floating_point()


def numel(input):
    return input.numel()


def is_nonzero(input):
    return _builtins.bool(input)  # ``bool`` here is ember.bool, the dtype


def get_num_threads():
    from ember.utils.threads import get_num_threads as g

    return g()


def set_num_threads(n):
    from ember.utils.threads import set_num_threads as s

    s(n)


def get_num_interop_threads():
    return 1


def set_num_interop_threads(n):
    pass


def use_deterministic_algorithms(mode, *, warn_only=False):
    """``True``: runs repeat bit for bit whatever else the machine is doing. ember's ops give the
    same bits for the same thread count, and ember otherwise drops to one thread while other
    processes keep the cores busy (``ember.backend.threads``); this keeps the count fixed."""
    if not isinstance(mode, _builtins.bool):
        raise TypeError("_set_deterministic_algorithms(): argument 'mode' (position 1) must be "
                        f"bool, not {type(mode).__name__}")
    from ember.backend import threads

    threads.set_deterministic(mode, warn_only)


def are_deterministic_algorithms_enabled():
    from ember.backend import threads

    return threads.deterministic()[0]


def is_deterministic_algorithms_warn_only_enabled():
    from ember.backend import threads

    return threads.deterministic()[1]


def compile(model=None, **kwargs):
    """Accepted for PyTorch compatibility: ember runs eagerly, so this returns ``model``."""
    if model is None:
        return lambda m: m
    return model


# Sub-packages imported on first use keep ``import ember`` fast.
__getattr__ = lazy_submodules(__name__, [
    "nn", "optim", "utils", "vision", "io", "serialization", "onnx", "hub", "text", "cli",
    "distributed", "amp", "jit", "testing", "multiprocessing", "func",
])


def save(obj, f, pickle_module=None, pickle_protocol=None, _use_new_zipfile_serialization=True,
         **kwargs):
    """Save tensors, state_dicts and nested containers (see ``ember.serialization.save``)."""
    from ember.serialization import save as _save

    return _save(obj, f, **kwargs)


def load(f, map_location=None, pickle_module=None, *, weights_only=True, mmap=None, **kwargs):
    """Load what ``ember.save`` (or ``torch.save``) wrote; never runs code unless
    ``weights_only=False`` (see ``ember.serialization.load``)."""
    from ember.serialization import load as _load

    return _load(f, map_location=map_location, weights_only=weights_only, **kwargs)
