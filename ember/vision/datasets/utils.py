"""torchvision.datasets.utils: download, verification and archive helpers (see ``_download``)."""

from ember.vision.datasets._download import *  # noqa: F401,F403
from ember.vision.datasets._download import __all__  # noqa: F401
