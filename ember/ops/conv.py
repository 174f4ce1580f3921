"""Convolutions: ``conv1d``, ``conv2d``, ``conv_transpose1d``, ``conv_transpose2d``.

Each is ONE fused op with a hand-written backward: the padded input is turned into columns
(``ember.backend.im2col``) and multiplied by the weight in one BLAS call per direction (per group);
the input gradient is the adjoint (col2im). Stride-1, ungrouped convolutions with 16 or more
input channels skip the columns: ``ember.ops._conv_shifted`` runs them as one accumulating product
per kernel position over shifted views of the padded input. With the ``[onednn]`` extra, float32
convolutions run on oneDNN's kernels instead (``ember.backend.onednn``, as in PyTorch). 1-D
convolutions run as 2-D ones of height 1.

Example::

    y = F.conv2d(x, w, b, stride=1, padding=1)        # x (N, C, H, W), w (O, C/groups, kh, kw)
"""

from __future__ import annotations

import numpy as np

from ember.autograd.function import Function
from ember.backend import onednn
from ember.backend.blas import serial_blas
from ember.backend.im2col import (bias_into, col2im, conv_out_size, im2col, pad_cn, scratch,
                                  unpad_cn)
from ember.backend.parallel import parallel_for
from ember.ops._conv_shifted import Shifted
from ember.tensor import Tensor

__all__ = ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d"]

def _ntuple(v, n, name="argument"):
    """``3`` -> ``(3, 3)``; a tuple/list of length ``n`` (or 1) -> a tuple of ints."""
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            return (int(v[0]),) * n
        if len(v) != n:
            raise RuntimeError(f"expected {name} to be a single integer value or a list of {n} "
                               "values to match the convolution dimensions, but got "
                               f"{name}={list(v)}")
        return tuple(int(e) for e in v)
    return (int(v),) * n


class Conv2dOp(Function):
    """x (N, C, H, W), w (O, C/G, kh, kw), b (O,) or None; pads (top, bottom, left, right).

    The batch is processed in blocks of images whose columns fit in a core's L2 cache (about
    2 MB): a block is padded into channel-major layout, turned into columns
    ``(G, C/G*kh*kw, m*Ho*Wo)`` (``ember.backend.im2col``) and multiplied by the weight
    ``(G, O/G, C/G*kh*kw)`` in one product per group, so the columns never travel to memory.
    The blocks are split over the cores (``parallel_for``). Backward rebuilds each block's
    columns from the input (in cache) instead of keeping kh*kw copies of the input alive.
    """

    @staticmethod
    def forward(ctx, x, w, b, stride, pads, dilation, groups):
        ctx.save_for_backward(x, w)
        dnnl = onednn.Conv.get(x.shape, w.shape, stride, pads, dilation, groups, b is not None,
                               x.dtype)
        if dnnl is not None:  # oneDNN's kernels, when installed (ember.backend.onednn)
            ctx.geom = dnnl
            return dnnl.forward(x, w, b)
        shifted = Shifted.pays(x.shape, w.shape, stride, pads, dilation, groups, x.dtype)
        if shifted is not None:  # stride 1: no columns at all (ember.ops._conv_shifted)
            ctx.geom = shifted
            return shifted.forward(x, w, b)
        geom = _Geom(x.shape, w.shape, stride, pads, dilation, groups)
        n, o, (ho, wo) = x.shape[0], w.shape[0], geom.out_hw
        wm = w.reshape(groups, o // groups, -1)
        y = np.empty((n, o, ho, wo), dtype=x.dtype)
        # Small columns are kept for the weight gradient (LeNet's, 15 MB at batch 64: rebuilding
        # them cost 25% of its backward); large ones are rebuilt block by block in backward.
        keep = ([None] * geom.nblocks if geom.cols_bytes <= _KEEP_COLS_BYTES
                and ctx.needs_input_grad[1] else None)

        def run(lo, hi):
            for i, (a, z) in zip(range(lo, hi), geom.blocks(lo, hi)):
                cols = geom.columns(x[a:z], keep is not None)
                if keep is not None:
                    keep[i] = cols
                out = _product(wm, cols)  # (G, O/G, m*Ho*Wo)
                bias_into(out.reshape(o, z - a, ho, wo), b, y[a:z])

        geom.run(run, n * w.size * ho * wo)
        ctx.geom, ctx.cols = geom, keep
        return y

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        need = ctx.needs_input_grad
        if isinstance(ctx.geom, onednn.Conv):
            gx, gw, gb = ctx.geom.backward(g, x, w, need)
            return gx, gw, gb, None, None, None, None
        if isinstance(ctx.geom, Shifted):
            gx, gw = ctx.geom.backward(g, x, w, need)
            return gx, gw, g.sum(axis=(0, 2, 3)) if need[2] else None, None, None, None, None
        geom, kept = ctx.geom, ctx.cols
        ctx.cols = None
        o, cg, kh, kw = w.shape
        groups, og = geom.groups, o // geom.groups
        gx = np.empty(x.shape, dtype=x.dtype) if need[0] else None
        by_correlation = need[0] and geom.correlation_pays()
        if by_correlation:
            wx = w.reshape(groups, og, cg, kh, kw)[..., ::-1, ::-1].transpose(0, 2, 1, 3, 4)
            wx = np.ascontiguousarray(wx).reshape(groups, cg, og * kh * kw)
        elif need[0]:
            wx = w.reshape(groups, og, cg * kh * kw).transpose(0, 2, 1)
        partial = []

        def run(lo, hi):
            gw = np.zeros((groups, cg * kh * kw, og), dtype=w.dtype) if need[1] else None
            for i, (a, z) in zip(range(lo, hi), geom.blocks(lo, hi)):
                gt = np.ascontiguousarray(g[a:z].transpose(1, 0, 2, 3)).reshape(groups, og, -1)
                if need[1]:
                    # (k, m*HW) @ (m*HW, og): OpenBLAS is several times faster contracting the
                    # long pixel axis this way round than as (og, m*HW) @ (m*HW, k).
                    cols = geom.columns(x[a:z]) if kept is None else kept[i]
                    gw += _weight_product(cols, gt)
                if by_correlation:
                    gxt = _product(wx, geom.correlation_columns(g[a:z]))
                    gx[a:z].transpose(1, 0, 2, 3)[...] = gxt.reshape(-1, z - a, *x.shape[2:])
                elif need[0]:
                    geom.col2im_into(_product(wx, gt), gx[a:z])
            partial.append(gw)

        geom.run(run, x.shape[0] * w.size * g.shape[2] * g.shape[3] * (need[0] + need[1]))
        del kept
        gw = None
        if need[1]:
            gw = partial[0] if len(partial) == 1 else np.sum(partial, axis=0)
            gw = np.ascontiguousarray(gw.transpose(0, 2, 1)).reshape(w.shape)
        gbias = g.sum(axis=(0, 2, 3)) if need[2] else None
        return gx, gw, gbias, None, None, None, None


_KEEP_COLS_BYTES = 16 << 20
# OpenBLAS (SkylakeX kernels) multiplies products of up to 100^3 multiply-adds with its small-matrix
# kernel, straight from the operands; larger ones are packed first, which costs as much as the
# product when the left operand has few rows. Measured on one thread: (16,144)@(144,N) ran at
# 115-126 GF/s up to N=430 and 79-89 GF/s from N=440; (6,75)@(75,3136) 68 -> 26 us and
# (16,144)@(144,3072) 173 -> 121 us in <=10^6 chunks; from 64 rows on, whole products win.
_SMALL_KERNEL_MACS = 1_000_000
_CHUNK_ROWS = 32
_CHUNK_OUT = 8  # weight gradients: chunks pay only for this few output channels
_BLOCK_BYTES = 2 << 20  # columns of one block of images: fit the 4 MB L2 of a core with the rest
_SPLIT_MACS = 1 << 21  # below this many multiply-adds per pass one thread is faster


def _chunk_count(n, macs):
    """How many equal chunks of a length-``n`` axis bring a product of ``macs`` multiply-adds
    under ``_SMALL_KERNEL_MACS`` each (a divisor of ``n``, at most 4x the minimum), or 0."""
    need = -(-macs // _SMALL_KERNEL_MACS)
    if need < 2:
        return 0
    return next((c for c in range(need, min(n, 4 * need) + 1) if n % c == 0), 0)


def _product(a, b):
    """``a @ b`` for ``a`` ``(G, M, K)`` and columns ``b`` ``(G, K, N)``: with few rows, as one
    stacked product of column chunks that OpenBLAS's small-matrix kernel takes."""
    g, m, k = a.shape
    n = b.shape[2]
    nc = _chunk_count(n, m * k * n) if m <= _CHUNK_ROWS else 0
    if not nc:
        return np.matmul(a, b)
    out = np.empty((g, m, n), dtype=b.dtype)
    np.matmul(a[:, None], b.reshape(g, k, nc, n // nc).transpose(0, 2, 1, 3),
              out=out.reshape(g, m, nc, n // nc).transpose(0, 2, 1, 3))
    return out


def _weight_product(cols, gt):
    """``cols @ gt^T`` for columns ``(G, K, N)`` and the output gradient ``(G, O, N)``; with
    very few output channels (LeNet's 6: 125 -> 37 us at N=3136) as a sum of chunk products
    that the small-matrix kernel takes."""
    g, k, n = cols.shape
    o = gt.shape[1]
    nc = _chunk_count(n, o * k * n) if o <= _CHUNK_OUT else 0
    if not nc:
        return np.matmul(cols, gt.transpose(0, 2, 1))
    parts = np.matmul(cols.reshape(g, k, nc, n // nc).transpose(0, 2, 1, 3),
                      gt.reshape(g, o, nc, n // nc).transpose(0, 2, 3, 1))
    return parts.sum(axis=1)


class _Geom:
    """Shapes of one convolution and the per-block kernels of ``Conv2dOp``."""

    __slots__ = ("xshape", "wshape", "stride", "pads", "dilation", "groups", "out_hw", "block",
                 "nblocks", "cols_bytes")

    def __init__(self, xshape, wshape, stride, pads, dilation, groups):
        self.xshape, self.wshape, self.stride, self.pads = xshape, wshape, stride, pads
        self.dilation, self.groups = dilation, groups
        (n, c, h, wd), (o, _, kh, kw) = xshape, wshape
        self.out_hw = (conv_out_size(h, kh, stride[0], pads[0] + pads[1], dilation[0]),
                       conv_out_size(wd, kw, stride[1], pads[2] + pads[3], dilation[1]))
        # The input's columns and, for the input gradient, the output gradient's must fit.
        cols = 4 * c * kh * kw * self.out_hw[0] * self.out_hw[1]
        per_image = max(cols, 4 * o * kh * kw * h * wd if self.correlation_pays() else 0)
        self.block = max(1, _BLOCK_BYTES // per_image)
        self.nblocks = -(-n // self.block)
        self.cols_bytes = n * cols

    def blocks(self, lo, hi):
        """``(first, end)`` image ranges of blocks ``lo..hi-1``."""
        n, m = self.xshape[0], self.block
        return [(i * m, min(n, (i + 1) * m)) for i in range(lo, hi)]

    def run(self, fn, macs):
        """``fn(lo, hi)`` over every block, split over the cores when the work pays for it."""
        with serial_blas(macs):
            parallel_for(self.nblocks, fn, min_n=2 if macs >= _SPLIT_MACS else self.nblocks + 1)

    def columns(self, xb, own=False):
        """Columns ``(G, C/G*kh*kw, m*Ho*Wo)`` of an image block ``(m, C, H, W)``, in this
        thread's scratch buffer unless ``own``."""
        m, c = xb.shape[:2]
        kh, kw = self.wshape[2:]
        shape = (c, kh, kw, m) + self.out_hw
        cols = im2col(pad_cn(xb, self.pads), (kh, kw), self.stride, self.dilation, self.out_hw,
                      out=None if own else scratch(shape, xb.dtype))
        return cols.reshape(self.groups, -1, m * self.out_hw[0] * self.out_hw[1])

    def correlation_pays(self):
        """Stride-1 input gradient as a correlation of the padded output gradient with the
        flipped weight: one im2col and one product, ~20% less memory traffic than col2im. Its
        columns hold og*kh*kw rows against col2im's cg*kh*kw: it only pays when the layer does
        not widen (LeNet's 6->16 conv2 ran 2x slower with it)."""
        o, cg, kh, kw = self.wshape
        full = (self.dilation[0] * (kh - 1), self.dilation[1] * (kw - 1))
        return (self.stride == (1, 1) and o // self.groups <= cg
                and all(p <= full[i // 2] for i, p in enumerate(self.pads)))

    def correlation_columns(self, gb):
        """Columns ``(G, O/G*kh*kw, m*H*W)`` of an output-gradient block padded to 'full'."""
        m, o = gb.shape[:2]
        kh, kw = self.wshape[2:]
        hw = self.xshape[2:]
        fh, fw = self.dilation[0] * (kh - 1), self.dilation[1] * (kw - 1)
        t, b, lf, r = self.pads
        gp = pad_cn(gb, (fh - t, fh - b, fw - lf, fw - r))
        cols = im2col(gp, (kh, kw), (1, 1), self.dilation, hw,
                      out=scratch((o, kh, kw, m) + hw, gb.dtype))
        return cols.reshape(self.groups, -1, m * hw[0] * hw[1])

    def col2im_into(self, gcols, gxb):
        """Sum columns ``(G, C/G*kh*kw, m*Ho*Wo)`` back into the input-gradient block."""
        m, c, h, wd = gxb.shape
        kh, kw = self.wshape[2:]
        t, b, lf, r = self.pads
        gp = col2im(gcols.reshape(c, kh, kw, m, *self.out_hw), (h + t + b, wd + lf + r),
                    self.stride, self.dilation)
        unpad_cn(gp, self.pads, gxb.shape, gxb)


class ConvTranspose2dOp(Function):
    """x (N, Cin, H, W), w (Cin, Cout/G, kh, kw): the adjoint of Conv2dOp with respect to input."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, output_padding, groups, dilation):
        with serial_blas(x.size * w.size // x.shape[1]):
            return ConvTranspose2dOp._forward(ctx, x, w, b, stride, padding, output_padding,
                                              groups, dilation)

    @staticmethod
    def backward(ctx, g):
        with serial_blas(ctx.macs):
            return ConvTranspose2dOp._backward(ctx, g)

    @staticmethod
    def _forward(ctx, x, w, b, stride, padding, output_padding, groups, dilation):
        n, cin, h, wd = x.shape
        _, og, kh, kw = w.shape
        cg = cin // groups
        full = tuple((s - 1) * st + d * (k - 1) + 1 + op for s, st, d, k, op in
                     zip((h, wd), stride, dilation, (kh, kw), output_padding))
        out_hw = tuple(f - 2 * p for f, p in zip(full, padding))
        xt = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).reshape(groups, cg, n * h * wd)
        wm = w.reshape(groups, cg, og * kh * kw)
        cols = np.empty((groups, og * kh * kw, n * h * wd), dtype=x.dtype)
        for gi in range(groups):
            np.matmul(wm[gi].T, xt[gi], out=cols[gi])
        cols = cols.reshape(groups * og, kh, kw, n, h, wd)
        yp = col2im(cols, full, stride, dilation)
        del cols
        ph, pw = padding
        y = np.empty((n, groups * og) + out_hw, dtype=x.dtype)
        bias_into(yp[:, :, ph:ph + out_hw[0], pw:pw + out_hw[1]], b, y)
        ctx.save_for_backward(xt, w)
        ctx.geom = (x.shape, stride, padding, dilation, groups, full)
        ctx.macs = x.size * w.size // x.shape[1]
        return y

    @staticmethod
    def _backward(ctx, g):
        xt, w = ctx.saved_tensors
        xshape, stride, padding, dilation, groups, full = ctx.geom
        n, cin, h, wd = xshape
        _, og, kh, kw = w.shape
        cg, kk = cin // groups, og * kh * kw
        ph, pw = padding
        ho, wo = g.shape[2:]
        gp = pad_cn(g, (ph, full[0] - ph - ho, pw, full[1] - pw - wo))
        cols = im2col(gp, (kh, kw), stride, dilation, (h, wd),
                      out=scratch((gp.shape[0], kh, kw, n, h, wd), g.dtype))
        cols = cols.reshape(groups, kk, -1)
        del gp
        need = ctx.needs_input_grad
        gx = gw = gb = None
        if need[2]:
            gb = g.sum(axis=(0, 2, 3))
        if need[1]:
            gw = np.empty((groups, kk, cg), dtype=w.dtype)
            for gi in range(groups):
                np.matmul(cols[gi], xt[gi].T, out=gw[gi])  # long axis contracted as in Conv2dOp
            gw = np.ascontiguousarray(gw.transpose(0, 2, 1)).reshape(w.shape)
        if need[0]:
            wm = w.reshape(groups, cg, kk)
            gxt = np.empty((groups, cg, n * h * wd), dtype=w.dtype)
            for gi in range(groups):
                np.matmul(wm[gi], cols[gi], out=gxt[gi])
            gx = np.ascontiguousarray(gxt.reshape(cin, n, h, wd).transpose(1, 0, 2, 3))
        return gx, gw, gb, None, None, None, None, None


# ----------------------------------------------------------------------------- public API
def _size(shape):
    return "[" + ", ".join(str(s) for s in shape) + "]"


def _check_input(input, weight, nd, name, transposed=False, groups=1):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): argument 'input' must be Tensor, not {type(input).__name__}")
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input to "
                           f"{name}, but got input of size: {_size(input.shape)}")
    if weight.ndim != nd + 2:
        raise RuntimeError(f"Expected {nd + 2}-dimensional weight for {nd + 2}-dimensional input "
                           f"{_size(input.shape)}, but got weight of size {_size(weight.shape)}")
    if input.dtype != weight.dtype:
        raise RuntimeError(f"Input type ({input.dtype}) and weight type ({weight.dtype}) should be "
                           "the same")
    shape = tuple(input.shape) if input.ndim == nd + 2 else (1,) + tuple(input.shape)
    cin = weight.shape[0] if transposed else weight.shape[1] * groups
    if shape[1] != cin:
        if transposed:
            raise RuntimeError(
                f"Given transposed=1, weight of size {_size(weight.shape)}, expected input"
                f"{_size(shape)} to have {cin} channels, but got {shape[1]} channels instead")
        raise RuntimeError(
            f"Given groups={groups}, weight of size {_size(weight.shape)}, expected input"
            f"{_size(shape)} to have {cin} channels, but got {shape[1]} channels instead")
    return shape


def _pads(padding, kernel, dilation, stride, nd):
    """Normalise ``padding`` (int, tuple, 'same', 'valid') to ``(top, bottom, left, right)``."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * (2 * nd)
        if padding != "same":
            raise ValueError(f"Invalid padding string '{padding}', should be one of "
                             "{'valid', 'same'}")
        if any(s != 1 for s in stride):
            raise ValueError("padding='same' is not supported for strided convolutions")
        out = []
        for k, d in zip(kernel, dilation):
            total = d * (k - 1)
            out += [total // 2, total - total // 2]
        return tuple(out)
    p = _ntuple(padding, nd, "padding")
    if any(v < 0 for v in p):
        raise RuntimeError("negative padding is not supported")
    return (p[0], p[0], p[1], p[1]) if nd == 2 else (p[0], p[0])


_ARGS = {}  # the arguments of a call that passed the checks -> (stride, pads, dilation)
_ARGS_MAX = 512


def _convnd(input, weight, bias, stride, padding, dilation, groups, nd, name):
    # The checks depend only on these (the same layer's every call: 6 of 6.5 us saved)
    try:
        key = (input._data.shape, weight._data.shape, input._data.dtype, weight._data.dtype,
               None if bias is None else bias._data.shape, stride, padding, dilation, groups, nd)
        args = _ARGS.get(key)
    except (AttributeError, TypeError):  # not Tensors, or a list argument: no shortcut
        key = args = None
    if args is None:
        args = _conv_args(input, weight, bias, stride, padding, dilation, groups, nd, name)
        if key is not None and len(_ARGS) < _ARGS_MAX:
            _ARGS[key] = args
    stride, pads, dilation = args
    x = input if input.ndim == nd + 2 else input.unsqueeze(0)
    if nd == 1:
        y = Conv2dOp.apply(x.unsqueeze(2), weight.unsqueeze(2), bias, (1, stride[0]),
                           (0, 0) + pads, (1, dilation[0]), groups).squeeze(2)
    else:
        y = Conv2dOp.apply(x, weight, bias, stride, pads, dilation, groups)
    return y if input.ndim == nd + 2 else y.squeeze(0)


def _conv_args(input, weight, bias, stride, padding, dilation, groups, nd, name):
    """Check a convolution's arguments (PyTorch's errors); returns (stride, pads, dilation)."""
    shape = _check_input(input, weight, nd, name, groups=groups)
    kernel = tuple(weight.shape[2:])
    stride, dilation = _ntuple(stride, nd, "stride"), _ntuple(dilation, nd, "dilation")
    if any(s <= 0 for s in stride):
        raise RuntimeError(f"non-positive stride is not supported, got stride={list(stride)}")
    pads = _pads(padding, kernel, dilation, stride, nd)
    if weight.shape[0] % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} at "
                           f"dimension 0, but got weight of size {_size(weight.shape)} instead")
    spatial = shape[2:]
    padded = [s + pads[2 * i] + pads[2 * i + 1] for i, s in enumerate(spatial)]
    eff = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    if any(p < e for p, e in zip(padded, eff)):
        raise RuntimeError(
            f"Calculated padded input size per channel: ({' x '.join(map(str, padded))}). "
            f"Kernel size: ({' x '.join(map(str, eff))}). Kernel size can't be greater than actual "
            "input size")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise RuntimeError(f"Given weight of size {_size(weight.shape)}, expected bias to be "
                           f"1-dimensional with {weight.shape[0]} elements, but got bias of size "
                           f"{_size(bias.shape)} instead")
    return stride, pads, dilation


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) over ``(N, C, H, W)`` or unbatched ``(C, H, W)`` input.

    Args:
        weight: ``(out_channels, in_channels / groups, kH, kW)``; bias: ``(out_channels,)``.
        padding: int, pair, ``'valid'`` or ``'same'`` (stride 1 only).

    Example::

        y = F.conv2d(ember.randn(8, 3, 32, 32), ember.randn(16, 3, 3, 3), padding=1)
    """
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution over ``(N, C, L)`` or unbatched ``(C, L)``; weight ``(O, C/groups, k)``."""
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


def _conv_transposend(input, weight, bias, stride, padding, output_padding, groups, dilation, nd,
                      name):
    shape = _check_input(input, weight, nd, name, transposed=True, groups=groups)
    stride, dilation = _ntuple(stride, nd, "stride"), _ntuple(dilation, nd, "dilation")
    padding = _ntuple(padding, nd, "padding")
    output_padding = _ntuple(output_padding, nd, "output_padding")
    if shape[1] % groups:
        raise RuntimeError(f"Given groups={groups}, expected input channels {shape[1]} to be "
                           f"divisible by groups")
    for op, s, d in zip(output_padding, stride, dilation):
        if op >= s and op >= d:
            raise RuntimeError(
                "output padding must be smaller than either stride or dilation, but got "
                f"output_padding={list(output_padding)}, stride={list(stride)}, "
                f"dilation={list(dilation)}")
    kernel = tuple(weight.shape[2:])
    out = [(s - 1) * st - 2 * p + d * (k - 1) + op + 1 for s, st, p, d, k, op in
           zip(shape[2:], stride, padding, dilation, kernel, output_padding)]
    if any(o <= 0 for o in out):
        raise RuntimeError(f"Given input size per channel: {list(shape[2:])}. Calculated output "
                           f"size per channel: {out}. Output size is too small")
    x = input if input.ndim == nd + 2 else input.unsqueeze(0)
    if nd == 1:
        y = ConvTranspose2dOp.apply(x.unsqueeze(2), weight.unsqueeze(2), bias, (1, stride[0]),
                                    (0, padding[0]), (0, output_padding[0]), groups,
                                    (1, dilation[0])).squeeze(2)
    else:
        y = ConvTranspose2dOp.apply(x, weight, bias, stride, padding, output_padding, groups,
                                    dilation)
    return y if input.ndim == nd + 2 else y.squeeze(0)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """2-D transposed convolution ("deconvolution"); weight ``(in_channels, out/groups, kH, kW)``.

    Example::

        y = F.conv_transpose2d(ember.randn(1, 8, 4, 4), ember.randn(8, 3, 3, 3), stride=2)
    """
    return _conv_transposend(input, weight, bias, stride, padding, output_padding, groups,
                             dilation, 2, "conv_transpose2d")


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """1-D transposed convolution; weight ``(in_channels, out/groups, k)``."""
    return _conv_transposend(input, weight, bias, stride, padding, output_padding, groups,
                             dilation, 1, "conv_transpose1d")
