"""Convolution layers: ``Conv1d``, ``Conv2d``, ``ConvTranspose1d``, ``ConvTranspose2d``.

PyTorch's arguments, attributes, default initialisation (``kaiming_uniform_(a=sqrt(5))`` for the
weight, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for the bias), weight layouts and state_dict keys.

Example::

    conv = nn.Conv2d(3, 16, kernel_size=3, padding=1)
    y = conv(ember.randn(8, 3, 32, 32))            # (8, 16, 32, 32)
"""

from __future__ import annotations

import math

from ember.nn.modules.module import Module
from ember.nn.parameter import Parameter
from ember.ops import conv as F
from ember.ops.conv import _ntuple
from ember.ops.creation import empty
from ember.ops.sampling import pad

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    _nd = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 transposed, output_padding, groups, bias, padding_mode, device=None, dtype=None):
        super().__init__()
        nd = self._nd
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of "
                                 "{'valid', 'same'}")
            if padding == "same" and any(s != 1 for s in _ntuple(stride, nd)):
                raise ValueError("padding='same' is not supported for strided convolutions")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {list(_PADDING_MODES)}, but got "
                             f"padding_mode='{padding_mode}'")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _ntuple(kernel_size, nd, "kernel_size")
        self.stride = _ntuple(stride, nd, "stride")
        self.padding = padding if isinstance(padding, str) else _ntuple(padding, nd, "padding")
        self.dilation = _ntuple(dilation, nd, "dilation")
        self.transposed = transposed
        self.output_padding = _ntuple(output_padding, nd, "output_padding")
        self.groups, self.padding_mode = groups, padding_mode
        if isinstance(self.padding, str):
            rev = []
            for d, k in zip(self.dilation[::-1], self.kernel_size[::-1]):
                total = d * (k - 1) if self.padding == "same" else 0
                rev += [total // 2, total - total // 2]
            self._reversed_padding_repeated_twice = rev
        else:
            self._reversed_padding_repeated_twice = [p for p in self.padding[::-1] for _ in (0, 1)]
        shape = ((in_channels, out_channels // groups) if transposed else
                 (out_channels, in_channels // groups)) + self.kernel_size
        self.weight = Parameter(empty(shape, device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        # kaiming_uniform_(a=sqrt(5)) reduces to U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        self.weight.detach().uniform_(-bound, bound)
        if self.bias is not None:
            self.bias.detach().uniform_(-bound, bound)

    def extra_repr(self):
        nd = self._nd
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * nd:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s

    def __setstate__(self, state):
        self.__dict__.update(state)
        if not hasattr(self, "padding_mode"):
            self.padding_mode = "zeros"


class Conv2d(_ConvNd):
    """2-D convolution over ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)`` input.

    Args:
        in_channels, out_channels, kernel_size: as in PyTorch.
        stride, padding (int, pair, ``'valid'``, ``'same'``), dilation, groups, bias,
        padding_mode (``'zeros'``, ``'reflect'``, ``'replicate'``, ``'circular'``).

    Shape: output ``(N, C_out, H_out, W_out)`` with
    ``H_out = (H + 2*padding - dilation*(kernel-1) - 1) // stride + 1``.
    """

    _nd = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, False,
                         0, groups, bias, padding_mode, device, dtype)

    def _conv_forward(self, input, weight, bias):
        fn = F.conv2d if self._nd == 2 else F.conv1d
        if self.padding_mode != "zeros":
            if input.ndim not in (self._nd + 1, self._nd + 2):
                F._check_input(input, weight, self._nd, f"conv{self._nd}d")
            x = pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return fn(x, weight, bias, self.stride, 0, self.dilation, self.groups)
        return fn(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, input):
        return self._conv_forward(input, self.weight, self.bias)


class Conv1d(_ConvNd):
    """1-D convolution over ``(N, C_in, L)`` or unbatched ``(C_in, L)`` input."""

    _nd = 1

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, False,
                         0, groups, bias, padding_mode, device, dtype)

    _conv_forward = Conv2d._conv_forward
    forward = Conv2d.forward


class _ConvTransposeNd(_ConvNd):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, True,
                         output_padding, groups, bias, padding_mode, device, dtype)

    def _output_padding(self, input, output_size):
        if output_size is None:
            return self.output_padding
        nd = self._nd
        output_size = [int(s) for s in output_size][-nd:]
        if len(output_size) != nd:
            raise ValueError(f"ConvTranspose{nd}D: for {input.ndim}D input, output_size must have "
                             f"{nd} or {nd + 2} elements (got {len(output_size)})")
        res = []
        for d in range(nd):
            size = input.shape[input.ndim - nd + d]
            lo = ((size - 1) * self.stride[d] - 2 * self.padding[d]
                  + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            hi = lo + self.stride[d] - 1
            if not lo <= output_size[d] <= hi:
                raise ValueError(f"requested an output size of {output_size}, but valid sizes "
                                 f"range from {lo} to {hi} (for an input of "
                                 f"{list(input.shape[input.ndim - nd:])})")
            res.append(output_size[d] - lo)
        return tuple(res)

    def forward(self, input, output_size=None):
        op = self._output_padding(input, output_size)
        fn = F.conv_transpose2d if self._nd == 2 else F.conv_transpose1d
        return fn(input, self.weight, self.bias, self.stride, self.padding, op, self.groups,
                  self.dilation)


class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution; weight ``(in_channels, out_channels / groups, kH, kW)``.

    ``H_out = (H - 1)*stride - 2*padding + dilation*(kernel-1) + output_padding + 1``;
    ``forward(input, output_size=...)`` picks ``output_padding`` to reach ``output_size``.
    """

    _nd = 2


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution; weight ``(in_channels, out_channels / groups, k)``."""

    _nd = 1
