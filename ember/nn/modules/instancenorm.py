"""``InstanceNorm1d``/``InstanceNorm2d`` at PyTorch's module path (``torch.nn.modules.instancenorm``).

ember defines them in ``nn/modules/normalization.py``, next to ``GroupNorm`` (one statistics
routine); this file only makes ``from ember.nn.modules.instancenorm import InstanceNorm2d`` work.
"""

from ember.nn.modules.normalization import InstanceNorm1d, InstanceNorm2d

__all__ = ["InstanceNorm1d", "InstanceNorm2d"]
