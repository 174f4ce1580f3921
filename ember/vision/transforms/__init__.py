"""ember.vision.transforms: torchvision.transforms (classes here, functions in ``functional``).

>>> import ember.vision.transforms as transforms
>>> tf = transforms.Compose([transforms.ToTensor(),
...                          transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
"""

from ember.vision.transforms import functional  # noqa: F401
from ember.vision.transforms.transforms import *  # noqa: F401,F403
from ember.vision.transforms.transforms import __all__ as _all

__all__ = list(_all) + ["functional"]
