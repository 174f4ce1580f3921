"""``ember.nn.functional``: the functional form of every layer and loss (PyTorch's ``F``).

The implementations live with their ops in ``ember.ops.<family>``; this module is their public face.
"""

from ember.ops.activation import *  # noqa: F401,F403
from ember.ops.linear import *  # noqa: F401,F403
from ember.ops.loss import *  # noqa: F401,F403
from ember.ops.conv import *  # noqa: F401,F403
from ember.ops.pooling import *  # noqa: F401,F403
from ember.ops.normalization import *  # noqa: F401,F403
from ember.ops.sampling import *  # noqa: F401,F403
from ember.ops.recurrent import *  # noqa: F401,F403
from ember.ops.attention import *  # noqa: F401,F403
from ember.ops.elementwise import sigmoid, tanh  # noqa: F401
