"""Array kernels shared by convolution, transposed convolution, unfold/fold and pooling.

Layout: the kernels work on a *channel-major* padded input ``xp`` of shape ``(C, N, Hp, Wp)``.
``im2col`` turns it into columns ``(C, kh, kw, N, Ho, Wo)``: reshaped to ``(C*kh*kw, N*Ho*Wo)``
(or ``(G, Cg*kh*kw, N*Ho*Wo)`` with groups) the convolution is ONE matrix product with the weight
``(O, C*kh*kw)`` and the result ``(O, N*Ho*Wo)`` is one transpose away from ``(N, O, Ho, Wo)``.
Both directions loop over the ``kh*kw`` kernel positions only (each a whole-array strided copy or
add), never over the batch, and never use ``np.add.at``.

Example::

    xp = pad_cn(x, (1, 1, 1, 1))                      # (C, N, H+2, W+2)
    cols = im2col(xp, (3, 3), (1, 1), (1, 1), (H, W))  # (C, 3, 3, N, H, W)
    y = w.reshape(O, -1) @ cols.reshape(C * 9, -1)     # (O, N*H*W)
"""

from __future__ import annotations

import threading

import numpy as np

from ember.backend import jit

__all__ = ["conv_out_size", "pad_cn", "unpad_cn", "bias_into", "im2col", "col2im", "window",
           "scratch"]

SCRATCH_MAX = 64 << 20  # temporaries up to this many bytes reuse one per-thread buffer
_local = threading.local()


def scratch(shape, dtype):
    """An uninitialised NumPy array for a temporary that dies before the next ``scratch`` call
    in this thread, or ``None`` when it is larger than ``SCRATCH_MAX``.

    Columns over 32 MB (glibc's mmap threshold, see ``ember.backend.memory``) got a fresh
    mapping on every call: on the 2-core reference machine ResNet-20's 16-channel columns
    (38 MB at batch 64) spent 3 of their 6.5 ms im2col in page faults. One buffer per thread
    is kept and grown to the largest request.

    Example::

        buf = scratch((c, kh, kw, n, ho, wo), np.float32)
        cols = im2col(xp, (kh, kw), stride, dilation, (ho, wo), out=buf)
    """
    dtype = np.dtype(dtype)
    size = dtype.itemsize
    for d in shape:
        size *= d
    if size > SCRATCH_MAX:
        return None
    buf = getattr(_local, "buf", None)
    if buf is None or buf.nbytes < size:
        _local.buf = buf = np.empty(size, dtype=np.uint8)
    return buf[:size].view(dtype).reshape(shape)


def conv_out_size(size, k, s, pad_total, d):
    """Output length of a convolution/pooling window sweep (floor mode)."""
    return (size + pad_total - d * (k - 1) - 1) // s + 1


def pad_cn(x, pads, value=0.0, out=None):
    """``x`` ``(N, C, H, W)`` -> channel-major padded copy ``(C, N, H+t+b, W+l+r)`` (written into
    ``out`` of that shape when given).

    ``pads`` is ``(top, bottom, left, right)``; the border is filled with ``value``.
    """
    n, c, h, w = x.shape
    t, b, lf, r = pads
    if out is None:
        out = x.__array_namespace__().empty((c, n, h + t + b, w + lf + r), dtype=x.dtype)
    if t or b or lf or r:
        out[:, :, :t] = value
        out[:, :, h + t:] = value
        out[:, :, t:h + t, :lf] = value
        out[:, :, t:h + t, w + lf:] = value
    out[:, :, t:t + h, lf:lf + w] = x.transpose(1, 0, 2, 3)
    return out


def unpad_cn(gxp, pads, shape, out=None):
    """Inverse layout of ``pad_cn``: crop ``(C, N, Hp, Wp)`` from row ``pads[0]``, column
    ``pads[2]`` to ``shape`` ``(N, C, H, W)``, into ``out`` when given, else a new contiguous
    array."""
    h, w = shape[2:]
    t, _, lf, _ = pads
    if out is None:
        out = gxp.__array_namespace__().empty(shape, dtype=gxp.dtype)
    out.transpose(1, 0, 2, 3)[...] = gxp[:, :, t:t + h, lf:lf + w]
    return out


def bias_into(out_cn, b, y):
    """Write the channel-major ``out_cn`` (O, N, Ho, Wo) plus the bias ``b`` (O,) or None into
    ``y`` (N, O, Ho, Wo)."""
    y_t = y.transpose(1, 0, 2, 3)
    if b is None:
        y_t[...] = out_cn
    else:
        y.__array_namespace__().add(out_cn, b.reshape(-1, 1, 1, 1), out=y_t)


def window(xp, i, j, stride, dilation, out_hw):
    """The strided view of ``xp`` (``(..., Hp, Wp)``) seen by kernel position ``(i, j)``."""
    sh, sw = stride
    dh, dw = dilation
    ho, wo = out_hw
    r0, c0 = i * dh, j * dw
    return xp[..., r0:r0 + sh * (ho - 1) + 1:sh, c0:c0 + sw * (wo - 1) + 1:sw]


def im2col(xp, kernel, stride, dilation, out_hw, out=None):
    """Columns ``(C, kh, kw, N, Ho, Wo)`` of the channel-major padded input ``xp`` (written into
    ``out`` of that shape when given, e.g. a ``scratch`` buffer)."""
    c, n = xp.shape[:2]
    kh, kw = kernel
    shape = (c, kh, kw, n) + tuple(out_hw)
    xpm = xp.__array_namespace__()
    if c * kh * kw * n * out_hw[0] * out_hw[1] <= _ONE_COPY_MAX and hasattr(xpm, "lib"):
        # Small inputs: one strided copy beats kh*kw slice copies (Python overhead per call);
        # large ones copy faster slice by slice (measured on the 2-core reference machine).
        sc, sn, sh, sw = xp.strides
        view = xpm.lib.stride_tricks.as_strided(
            xp, shape, (sc, dilation[0] * sh, dilation[1] * sw, sn, stride[0] * sh,
                        stride[1] * sw), writeable=False)
        if out is None:
            return xpm.ascontiguousarray(view)
        xpm.copyto(out, view)
        return out
    cols = xpm.empty(shape, dtype=xp.dtype) if out is None else out
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = window(xp, i, j, stride, dilation, out_hw)
    return cols


_ONE_COPY_MAX = 1 << 24


def col2im(cols, padded_hw, stride, dilation):
    """Adjoint of ``im2col``: sum columns ``(C, kh, kw, N, Ho, Wo)`` back into a channel-major
    padded image ``(C, N, Hp, Wp)``.

    With numba (``ember.backend.jit``) the sum is one compiled loop instead of ``kh*kw`` strided
    NumPy adds, 1.3-3x faster on the reference machine (LeNet's conv2 input gradient at batch 4:
    0.135 -> 0.042 ms, at batch 64: 1.2 -> 0.74 ms). ``im2col`` stays with NumPy, whose strided
    copies measured faster than the same loop compiled."""
    c, kh, kw, n, ho, wo = cols.shape
    xp = cols.__array_namespace__()
    out = xp.zeros((c, n) + tuple(padded_hw), dtype=cols.dtype)
    k = jit.kernels_for(cols)
    if k is not None:
        k.col2im(cols, *stride, *dilation, out)
        return out
    for i in range(kh):
        for j in range(kw):
            win = window(out, i, j, stride, dilation, (ho, wo))
            win += cols[:, i, j]
    return out
