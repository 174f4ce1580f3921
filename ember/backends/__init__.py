"""``ember.backends``: feature flags PyTorch code sets (accepted; ember has no cuDNN or MPS)."""

from ember.backends import cudnn, mps  # noqa: F401
