"""``Unfold`` and ``Fold``: sliding blocks to columns (im2col) and back (col2im).

Example::

    unfold = nn.Unfold(kernel_size=2, stride=2)
    patches = unfold(ember.randn(1, 3, 8, 8))            # (1, 3*2*2, 16)
    x = nn.Fold((8, 8), kernel_size=2, stride=2)(patches)  # (1, 3, 8, 8)
"""

from __future__ import annotations

from ember.nn.modules.module import Module
from ember.ops.sampling import fold, unfold

__all__ = ["Fold", "Unfold"]


class Fold(Module):
    """``(N, C*kh*kw, L)`` -> ``(N, C, *output_size)``, summing where blocks overlap."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.output_size = output_size
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def forward(self, input):
        return fold(input, self.output_size, self.kernel_size, self.dilation, self.padding,
                    self.stride)

    def extra_repr(self):
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, "
                f"dilation={self.dilation}, padding={self.padding}, stride={self.stride}")


class Unfold(Module):
    """``(N, C, H, W)`` -> ``(N, C*kh*kw, L)``: each sliding block as a column."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def forward(self, input):
        return unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")
