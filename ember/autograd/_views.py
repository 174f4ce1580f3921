"""In-place changes through views, as PyTorch differentiates them.

A view (``h[0]``, ``h.t()``, ``h.view(6)``...) shares its base's memory. When an in-place op
writes through a view, the base's value changes too, so the base's graph is rebased onto a
``CopySlices`` node: the written region's gradient goes to the new value, the rest to the old
base. The view (and every other tracked view of that base) then becomes a plain view of the new
base. Without this, ``h[0].mul_(2); h.sum().backward()`` would silently give the gradient of the
unmodified ``h``.

Which elements of the base a view covers is read off the two arrays' memory layout
(``view_index``), so every view op works without its own rule.
"""

from __future__ import annotations

import weakref

import numpy as np

from ember.autograd.function import Function
from ember.tensor import _bump, _unalias_saved, _wrap

__all__ = ["inplace_on_view", "mark_multi_views", "regenerate_views", "track_view", "view_index"]

_as_strided = np.lib.stride_tricks.as_strided
_byte_bounds = np.lib.array_utils.byte_bounds


def view_index(base, view):
    """The C-order flat index into ``base`` of every element of ``view`` (an int64 array shaped
    like ``view``), or None when ``view`` is not made of ``base``'s elements."""
    isz = base.itemsize
    lo, hi = _byte_bounds(base)
    vlo, vhi = _byte_bounds(view)
    if view.itemsize != isz or vlo < lo or vhi > hi:
        return None
    if any(s % isz for s in base.strides + view.strides) or (vlo - lo) % isz:
        return None
    buf = np.full((hi - lo) // isz, -1, np.int64)

    def place(arr):
        off = (arr.__array_interface__["data"][0] - lo) // isz
        return _as_strided(buf[off:], arr.shape, tuple(s // isz * 8 for s in arr.strides))

    place(base)[...] = np.arange(base.size).reshape(base.shape)
    idx = place(view).copy()
    return None if (idx < 0).any() else idx


class CopySlices(Function):
    """``base`` with the elements at ``idx`` replaced by ``value``: returns base's own array."""

    @staticmethod
    def forward(ctx, base, value, idx):
        ctx.idx, ctx.vdtype = idx, value.dtype
        return base

    @staticmethod
    def backward(ctx, g):
        nb, nv = ctx.needs_input_grad[:2]
        idx = ctx.idx
        gb = gv = None
        if nb:
            gb = np.array(g, order="C")
            gb.reshape(-1)[idx.reshape(-1)] = 0
        if nv:
            gv = np.ascontiguousarray(g).reshape(-1)[idx].astype(ctx.vdtype, copy=False)
        return gb, gv, None


class ViewOf(Function):
    """``view`` (an existing array) as a view of ``base``: the gradient scatters back."""

    @staticmethod
    def forward(ctx, base, view, idx):
        ctx.idx, ctx.shape, ctx.overlap = idx, base.shape, not view.flags.writeable
        return view

    @staticmethod
    def backward(ctx, g):
        n = int(np.prod(ctx.shape))
        flat = ctx.idx.reshape(-1)
        if ctx.overlap:  # an expanded view: several elements read one base element
            out = np.bincount(flat, weights=g.reshape(-1), minlength=n).astype(g.dtype)
        else:
            out = np.zeros(n, g.dtype)
            out[flat] = g.reshape(-1)
        return out.reshape(ctx.shape), None, None


_MULTI = weakref.WeakValueDictionary()  # id -> outputs of split/unbind/chunk: PyTorch forbids changing them in place


def mark_multi_views(outs):
    for o in outs:
        if o._rg:
            _MULTI[id(o)] = o
    return outs


def track_view(root, view):
    """Remember ``view`` (of a non-leaf ``root``) so an in-place change of ``root`` through any
    tensor can regenerate its graph. The list lives on the shared version counter."""
    vc = root._vc
    if len(vc) > 64:
        vc[1:] = [r for r in vc[1:] if r() is not None]
    vc.append(weakref.ref(view))


def _attach(view, root, idx):
    out = ViewOf.apply(root, view._data, idx)
    view._rg, view.grad_fn, view._oi = True, out.grad_fn, 0


def regenerate_views(root, skip=None):
    """After ``root``'s graph changed in place: each live tracked view becomes a view of it."""
    vc = root._vc
    if vc is None or len(vc) < 2:
        return
    live = []
    for ref in vc[1:]:
        v = ref()
        if v is None:
            continue
        live.append(ref)
        if v is skip or v._base is not root:
            continue
        idx = view_index(root._data, v._data)
        if idx is not None:
            _attach(v, root, idx)
    vc[1:] = live


def inplace_on_view(view, res):
    """Write ``res`` (the new value, with its graph) through ``view`` and rebase its base.
    Returns False (nothing done) when ``view`` no longer lies in its base's memory."""
    root = view._base
    if _MULTI.get(id(view)) is view:
        raise RuntimeError(
            f"Output {view._oi} of {type(view.grad_fn).__name__} is a view and is being modified "
            "inplace. This view is the output of a function that returns multiple views. Such "
            "functions do not allow the output views to be modified inplace. You should replace "
            "the inplace operation by an out-of-place one."
        )
    if root._rg and root.grad_fn is None:
        raise RuntimeError(
            "a view of a leaf Variable that requires grad is being used in an in-place operation."
        )
    idx = view_index(root._data, view._data)
    if idx is None:
        return False
    if res._rg and res.grad_fn._saved:
        _unalias_saved(res.grad_fn, view._data)
    view._data[...] = res._data
    old = _wrap(root._data)
    old._rg, old.grad_fn, old._oi = root._rg, root.grad_fn, root._oi
    new = CopySlices.apply(old, res, idx)
    if new._rg:
        root._rg, root.grad_fn, root._oi = True, new.grad_fn, 0
        _attach(view, root, idx)
        regenerate_views(root, skip=view)
    _bump(view)
    return True
