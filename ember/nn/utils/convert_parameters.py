"""``parameters_to_vector`` / ``vector_to_parameters``: all parameters as one flat vector.

Example::

    vec = nn.utils.parameters_to_vector(model.parameters())     # 1-D, differentiable
    nn.utils.vector_to_parameters(vec * 0.5, model.parameters())
"""

from __future__ import annotations

from ember.tensor import Tensor

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters):
    """Concatenate the flattened ``parameters`` into one 1-D tensor (differentiable)."""
    from ember.ops.shape import cat

    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of the 1-D ``vec`` into ``parameters`` (their ``.data`` becomes a
    view of ``vec``, as in PyTorch)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    params = list(parameters)
    total = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.numel() != total:
        raise RuntimeError(
            f"vector_to_parameters: expected a 1-D vector of {total} elements (the parameters' "
            f"total size), got shape {list(vec.shape)}")
    flat = vec._data
    pointer = 0
    for p in params:
        n = p.numel()
        p._data = flat[pointer:pointer + n].reshape(p._data.shape)
        if p._vc is not None:
            p._vc[0] += 1
        pointer += n
