"""``ember.vision.models``: torchvision's model builders and a name registry.

    >>> from ember.vision import models
    >>> models.list_models()
    ['cnn', 'lenet', 'mlp', 'resnet18', 'resnet20', ...]
    >>> net = models.get_model("resnet18", num_classes=10)
"""

from ember.vision.models._api import (  # noqa: F401
    get_model,
    get_model_builder,
    list_models,
    load_weights,
    register_model,
)
from ember.vision.models.lenet import *  # noqa: F401,F403
from ember.vision.models.mlp import *  # noqa: F401,F403
from ember.vision.models.resnet import *  # noqa: F401,F403
from ember.vision.models.vgg import *  # noqa: F401,F403
