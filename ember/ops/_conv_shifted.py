"""Stride-1 convolutions without columns: ``kh*kw`` accumulating products over the padded grid.

Lay a block of images out channel-major on a flat zero-padded grid, ``xp`` ``(C, lead + m*gh*gw
+ trail)``, where neighbouring rows and images share their padding (see ``Shifted``). The output
at grid position ``q`` (image ``n``, row ``y``, column ``x``: ``q = (n*gh + y)*gw + x``) is

    out[:, q] = sum over kernel positions (i, j) of  W[:, :, i, j] @ xp[:, q + i*dh*gw + j*dw]

so each kernel position is ONE product of the weight slice ``(O, C)`` with a shifted view of
``xp`` (a plain BLAS operand with a row stride, no copy), accumulated in place
(``ember.backend.blas.matmul_add``). Grid positions with ``y >= Ho`` or ``x >= Wo`` are computed
and dropped: ``gh*gw / (Ho*Wo)`` more multiply-adds (1.06x for 32x32 images and a 3x3 'same'
kernel, 1.27x for 8x8), against im2col's ``kh*kw`` copies of the input, which cost as much as
the product on the 2-core reference machine. The input gradient is the same sum with the roles
flipped (the output gradient, zero off the valid positions, read at ``q - offset``), the weight
gradient one product per kernel position, contracting the grid.

Measured on the 2-core reference machine, forward + backward of a 3x3 'same' convolution at
batch 64 on two threads, im2col against shifted products, one process alternating them: on MKL
16 channels at 32x32 20.6 -> 13.4 ms, 32 at 16x16 14.0 -> 9.5, 64 at 8x8 10.4 -> 7.7; on NumPy's
OpenBLAS (no MKL) 16.1 -> 13.0, 11.4 -> 8.8, 8.6 -> 7.0. Blocks of 0.25/0.5/1/2/4 MB ran the
first of them in 44/21/12.5/10-13/9.3 ms: BLAS packs and blocks for the cache itself, and each
call through ctypes costs a few microseconds. Without an accumulating BLAS call the adds cost
what the columns saved, and im2col stays.
"""

from __future__ import annotations

import numpy as np

from ember.backend.blas import blas_accumulates, matmul_add, serial_blas
from ember.backend.im2col import bias_into, pad_cn, unpad_cn
from ember.backend.parallel import parallel_for

__all__ = ["Shifted"]

_BLOCK_BYTES = 4 << 20  # padded input and output grid of a block of images (MKL blocks for cache)
_MAX_WASTE = 1.6  # grid positions per output position above which im2col wins
_MIN_CHANNELS = 16  # fewer input channels: kh*kw products too thin for BLAS, im2col wins
_SPLIT_MACS = 1 << 21  # below this many multiply-adds per pass one thread is faster


class Shifted:
    """Geometry and kernels of one stride-1, ungrouped convolution by shifted products.

    Neighbouring rows and images share their zero padding: each image row is followed by
    ``max(left, right)`` zero columns (the right padding of that row and the left padding of the
    next) and each image by ``max(top, bottom)`` zero rows, after a lead of ``top`` rows and
    ``left`` columns of zeros. A 3x3 'same' convolution computes ``(H+1)*(W+1)`` grid positions
    per ``H*W`` outputs: 1.06x for 32x32 images, 1.27x for 8x8 (1.13x and 1.56x with separate
    padding)."""

    __slots__ = ("xshape", "wshape", "pads", "grid", "out_hw", "offsets", "lead", "trail",
                 "block", "nblocks")

    @classmethod
    def pays(cls, xshape, wshape, stride, pads, dilation, groups, dtype=np.float32):
        """A ``Shifted`` for this convolution when it beats im2col, else None. Only float32 and
        float64 accumulate in BLAS; other dtypes (float16) keep im2col's single product."""
        if (stride != (1, 1) or groups != 1 or wshape[1] < _MIN_CHANNELS
                or np.dtype(dtype).char not in "fd" or not blas_accumulates()):
            return None
        geom = cls(xshape, wshape, pads, dilation, np.dtype(dtype).itemsize)
        (gh, gw), (ho, wo) = geom.grid, geom.out_hw
        if ho > gh or wo > gw or gh * gw > _MAX_WASTE * ho * wo:
            return None
        return geom

    def __init__(self, xshape, wshape, pads, dilation, itemsize=4):
        (n, c, h, w), (o, _, kh, kw) = xshape, wshape
        t, b, lf, r = pads
        self.xshape, self.wshape, self.pads = xshape, wshape, pads
        self.grid = (h + max(t, b), w + max(lf, r))  # one image's rows and columns on the grid
        gw = self.grid[1]
        self.out_hw = (h + t + b - dilation[0] * (kh - 1), w + lf + r - dilation[1] * (kw - 1))
        self.offsets = [i * dilation[0] * gw + j * dilation[1]
                        for i in range(kh) for j in range(kw)]
        self.lead = t * gw + lf  # zeros before the first image: its top and left padding
        self.trail = max(0, self.offsets[-1] - self.lead)  # zeros the last windows read past it
        per_image = itemsize * (c + o) * self.grid[0] * gw
        nblocks = -(-n // max(1, _BLOCK_BYTES // per_image))
        nblocks = min(n, max(2, nblocks + nblocks % 2))  # two threads get equal shares
        self.block = -(-n // nblocks)
        self.nblocks = -(-n // self.block)

    def _run(self, fn, macs):
        """``fn(blocks)`` for lists of image ranges ``(a, z)`` that cover the batch, split over
        the cores when the work pays for it."""
        n, m = self.xshape[0], self.block

        def run(lo, hi):
            fn([(i * m, min(n, (i + 1) * m)) for i in range(lo, hi)])

        with serial_blas(macs):
            parallel_for(self.nblocks, run, min_n=2 if macs >= _SPLIT_MACS else self.nblocks + 1)

    def _spread(self, ab, lead, trail):
        """Block ``(m, C, A, B)`` -> ``(C, lead + m*gh*gw + trail)``: each image at the top left
        of its ``(gh, gw)`` grid cell, zeros everywhere else."""
        m, c, ha, wb = ab.shape
        gh, gw = self.grid
        size = m * gh * gw
        buf = np.empty((c, lead + size + trail), dtype=ab.dtype)
        buf[:, :lead] = 0
        pad_cn(ab, (0, gh - ha, 0, gw - wb), out=buf[:, lead:lead + size].reshape(c, m, gh, gw))
        buf[:, lead + size:] = 0
        return buf

    def forward(self, x, w, b):
        n, o = x.shape[0], w.shape[0]
        ho, wo = self.out_hw
        wt = np.ascontiguousarray(w.transpose(2, 3, 0, 1)).reshape(len(self.offsets), o, -1)
        y = np.empty((n, o, ho, wo), dtype=x.dtype)

        def run(blocks):
            for a, z in blocks:
                xp = self._spread(x[a:z], self.lead, self.trail)
                size = (z - a) * self.grid[0] * self.grid[1]
                out = np.empty((o, size), dtype=x.dtype)
                for t, off in enumerate(self.offsets):
                    matmul_add(wt[t], xp[:, off:off + size], out, accumulate=t > 0)
                bias_into(out.reshape(o, z - a, *self.grid)[:, :, :ho, :wo], b, y[a:z])

        self._run(run, n * w.size * self.grid[0] * self.grid[1])
        return y

    def backward(self, g, x, w, need):
        """Input and weight gradients (None where ``need`` says so)."""
        if not (need[0] or need[1]):
            return None, None
        n, c = x.shape[:2]
        o = w.shape[0]
        gh, gw = self.grid
        lead, trail = self.lead, self.trail
        gx = np.empty(x.shape, dtype=x.dtype) if need[0] else None
        wf = np.ascontiguousarray(w.transpose(2, 3, 1, 0)).reshape(len(self.offsets), c, o)
        partial = []

        def run(blocks):
            gw_ = np.zeros((len(self.offsets), c, o), dtype=x.dtype) if need[1] else None
            for a, z in blocks:
                m = z - a
                size = m * gh * gw
                # The output gradient on the grid, zero off the valid positions, with room to be
                # read at q - offset + lead for every grid position q of the input.
                go = self._spread(g[a:z], trail, lead)
                if need[1]:
                    # (C, grid) @ (grid, O): the long axis contracted as in Conv2dOp's
                    xp, gt = self._spread(x[a:z], lead, trail), go[:, trail:trail + size].T
                    for i, off in enumerate(self.offsets):
                        matmul_add(xp[:, off:off + size], gt, gw_[i])
                if need[0]:
                    gxp = np.empty((c, size), dtype=g.dtype)
                    for i, off in enumerate(self.offsets):
                        s0 = trail + lead - off
                        matmul_add(wf[i], go[:, s0:s0 + size], gxp, accumulate=i > 0)
                    unpad_cn(gxp.reshape(c, m, gh, gw), (0, 0, 0, 0), gx[a:z].shape, gx[a:z])
            partial.append(gw_)

        self._run(run, n * w.size * gh * gw * (need[0] + need[1]))
        gwt = None
        if need[1]:
            gwt = partial[0] if len(partial) == 1 else np.sum(partial, axis=0)
            kh, kw = w.shape[2:]
            gwt = np.ascontiguousarray(gwt.reshape(kh, kw, c, o).transpose(3, 2, 0, 1))
        return gx, gwt
