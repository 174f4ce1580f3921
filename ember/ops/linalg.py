"""Matrix products: ``matmul`` (batched, broadcast), ``mm``, ``bmm``, ``einsum`` and friends."""

from __future__ import annotations

import numpy as np

from ember.autograd.function import Function
from ember.backend import unbroadcast
from ember.backend.blas import matmul as _matmul
from ember.tensor import Tensor, _view_of, _wrap

__all__ = ["matmul", "mm", "bmm", "mv", "dot", "vdot", "outer", "ger", "einsum", "tensordot",
           "addmm", "baddbmm", "inner", "kron", "trace", "diag", "diagonal", "diag_embed", "cross",
           "cdist", "det", "inverse"]


def _dims(s):
    return "x".join(map(str, s))


class MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return _matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        ga = gb = None
        if a.ndim == 2 and b.ndim == 2:
            if na:
                ga = _matmul(g, b.T)
            if nb:
                gb = _matmul(a.T, g)
            return ga, gb
        if a.ndim == 1 and b.ndim == 1:
            return (g * b if na else None), (g * a if nb else None)
        # General case: promote 1-D operands to matrices, then undo the promotion.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2)
        if b.ndim == 1:
            g2 = np.expand_dims(g2, -1)
        if na:
            ga = _matmul(g2, np.swapaxes(b2, -1, -2))
            if a.ndim == 1:
                ga = ga.sum(axis=tuple(range(ga.ndim - 2))).reshape(a.shape) if ga.ndim > 2 else ga.reshape(a.shape)
            else:
                ga = unbroadcast(ga, a.shape)
        if nb:
            gb = _matmul(np.swapaxes(a2, -1, -2), g2)
            if b.ndim == 1:
                gb = gb.sum(axis=tuple(range(gb.ndim - 2))).reshape(b.shape) if gb.ndim > 2 else gb.reshape(b.shape)
            else:
                gb = unbroadcast(gb, b.shape)
        return ga, gb


def _same_dtype(a, b, name):
    if a._data.dtype != b._data.dtype:
        raise RuntimeError(
            f"expected m1 and m2 to have the same dtype, but got: {a.dtype.name} != {b.dtype.name}"
            if name != "dot" else
            f"dot : expected both vectors to have same dtype, but found {a.dtype.name} and {b.dtype.name}"
        )


def matmul(input, other, *, out=None):
    if type(other) is Tensor and type(input) is Tensor:
        a, b = input._data, other._data
        # Fast path for the common case (two matrices that fit, one dtype): no further checks.
        if a.ndim == 2 and b.ndim == 2 and a.shape[1] == b.shape[0] and a.dtype is b.dtype:
            return MatMul.apply(input, other)
    if not isinstance(other, Tensor) or not isinstance(input, Tensor):
        raise TypeError(
            f"matmul(): argument 'other' must be Tensor, not {type(other).__name__}"
        )
    a, b = input._data, other._data
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(
            f"both arguments to matmul need to be at least 1D, but they are {a.ndim}D and {b.ndim}D"
        )
    ka = a.shape[-1]
    kb = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if ka != kb:
        if a.ndim <= 2 and b.ndim <= 2:
            sa = a.shape if a.ndim == 2 else (1,) + a.shape
            sb = b.shape if b.ndim == 2 else b.shape + (1,)
            if a.ndim == 1 and b.ndim == 1:
                raise RuntimeError(
                    f"inconsistent tensor size, expected tensor [{a.shape[0]}] and src "
                    f"[{b.shape[0]}] to have the same number of elements, but got {a.shape[0]} and "
                    f"{b.shape[0]} elements respectively"
                )
            raise RuntimeError(
                f"mat1 and mat2 shapes cannot be multiplied ({_dims(sa)} and {_dims(sb)})"
            )
        raise RuntimeError(
            f"Expected size for first two dimensions of batch2 tensor to be: matmul of shapes "
            f"{list(a.shape)} and {list(b.shape)} is invalid: inner dimensions {ka} and {kb} differ"
        )
    if a.ndim > 2 or b.ndim > 2:
        try:
            np.broadcast_shapes(a.shape[:-2] if a.ndim > 1 else (), b.shape[:-2] if b.ndim > 1 else ())
        except ValueError:
            raise RuntimeError(
                f"matmul: batch dimensions of shapes {list(a.shape)} and {list(b.shape)} cannot be "
                "broadcast together"
            ) from None
    _same_dtype(input, other, "matmul")
    return MatMul.apply(input, other)


def mm(input, mat2, *, out=None):
    if input._data.ndim != 2:
        raise RuntimeError(f"self must be a matrix (got {input._data.ndim}-D tensor)")
    if mat2._data.ndim != 2:
        raise RuntimeError(f"mat2 must be a matrix (got {mat2._data.ndim}-D tensor)")
    return matmul(input, mat2)


def bmm(input, mat2, *, out=None):
    if input._data.ndim != 3:
        raise RuntimeError(f"batch1 must be a 3D tensor (got {input._data.ndim}-D)")
    if mat2._data.ndim != 3:
        raise RuntimeError(f"batch2 must be a 3D tensor (got {mat2._data.ndim}-D)")
    if input._data.shape[0] != mat2._data.shape[0]:
        raise RuntimeError(
            f"batch1 and batch2 must have same number of batches, got {input._data.shape[0]} and "
            f"{mat2._data.shape[0]}"
        )
    return matmul(input, mat2)


def mv(input, vec):
    if input._data.ndim != 2 or vec._data.ndim != 1:
        raise RuntimeError(
            f"vector + matrix @ vector expected, got {input._data.ndim}, {vec._data.ndim}"
        )
    return matmul(input, vec)


def dot(input, other):
    if input._data.ndim != 1 or other._data.ndim != 1:
        raise RuntimeError(
            f"1D tensors expected, but got {input._data.ndim}D and {other._data.ndim}D tensors"
        )
    _same_dtype(input, other, "dot")
    return matmul(input, other)


vdot = inner_1d = dot


def inner(input, other):
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    return matmul(input, other.transpose(-1, -2) if other.ndim > 1 else other)


def outer(input, vec2):
    return input.reshape(-1, 1) * vec2.reshape(1, -1)


ger = outer


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    p = mm(mat1, mat2)
    if alpha != 1:
        p = p * alpha
    return p + (input * beta if beta != 1 else input)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    p = bmm(batch1, batch2)
    if alpha != 1:
        p = p * alpha
    return p + (input * beta if beta != 1 else input)


class Einsum(Function):
    @staticmethod
    def forward(ctx, eq, *xs):
        ctx.eq = eq
        ctx.save_for_backward(*xs)
        return np.einsum(eq, *xs, optimize=len(xs) > 2)

    @staticmethod
    def backward(ctx, g):
        xs = ctx.saved_tensors
        ins, out = ctx.eq.split("->")
        ins = ins.split(",")
        grads = [None]
        for i, x in enumerate(xs):
            if not ctx.needs_input_grad[i + 1]:
                grads.append(None)
                continue
            others = [xs[j] for j in range(len(xs)) if j != i]
            sub_others = [ins[j] for j in range(len(xs)) if j != i]
            target = ins[i]
            # Letters of x that appear nowhere else were summed out: broadcast back with ones.
            present = set(out + "".join(sub_others))
            extra = [c for c in target if c not in present]
            ops = [g] + others
            subs = [out] + sub_others
            if extra:
                ones = np.ones([x.shape[target.index(c)] for c in extra], dtype=x.dtype)
                ops.append(ones)
                subs.append("".join(extra))
            # Repeated letters in target (diagonals) are not supported for gradients.
            gx = np.einsum(",".join(subs) + "->" + target, *ops, optimize=True)
            grads.append(gx.astype(x.dtype, copy=False))
        return tuple(grads)


def _normalize_eq(eq, xs):
    eq = eq.replace(" ", "")
    if "->" not in eq:
        ins = eq.split(",")
        letters = "".join(ins).replace(".", "")
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
        eq = eq + "->" + out
    if "..." in eq:
        ins, out = eq.split("->")
        ins = ins.split(",")
        used = set(eq)
        free = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in used]
        nell = max(x.ndim - (len(s) - 3) for s, x in zip(ins, xs) if "..." in s)
        ell = "".join(free[:nell])
        new_ins = []
        for s, x in zip(ins, xs):
            if "..." in s:
                k = x.ndim - (len(s) - 3)
                s = s.replace("...", ell[nell - k:])
            new_ins.append(s)
        eq = ",".join(new_ins) + "->" + out.replace("...", ell)
    return eq


def einsum(equation, *operands):
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    eq = _normalize_eq(equation, operands)
    ins = eq.split("->")[0].split(",")
    if len(ins) != len(operands):
        raise RuntimeError(
            "einsum(): more operands were provided than specified in the equation"
            if len(operands) > len(ins) else
            "einsum(): fewer operands were provided than specified in the equation"
        )
    for s, x in zip(ins, operands):
        if len(s) != x.ndim:
            raise RuntimeError(
                f"einsum(): the number of subscripts in the equation ({len(s)}) does not match the "
                f"number of dimensions ({x.ndim}) for operand {ins.index(s)}"
            )
    return Einsum.apply(eq, *operands)


def tensordot(a, b, dims=2):
    if isinstance(dims, int):
        da = list(range(a.ndim - dims, a.ndim))
        db = list(range(dims))
    else:
        da, db = dims
        da = [da] if isinstance(da, int) else list(da)
        db = [db] if isinstance(db, int) else list(db)
    letters = "abcdefghijklmnopqrstuvwxyz"
    sa = list(letters[:a.ndim])
    sb = list(letters[a.ndim:a.ndim + b.ndim])
    for i, j in zip(da, db):
        sb[j] = sa[i]
    out = [c for k, c in enumerate(sa) if k not in da] + [c for k, c in enumerate(sb) if k not in db]
    return einsum("".join(sa) + "," + "".join(sb) + "->" + "".join(out), a, b)


def kron(input, other):
    a, b = input, other
    out = einsum("ij,kl->ikjl", a.reshape(a.shape[0] if a.ndim else 1, -1), b.reshape(b.shape[0] if b.ndim else 1, -1))
    return out.reshape(out.shape[0] * out.shape[1], out.shape[2] * out.shape[3])


def diagonal(input, offset=0, dim1=0, dim2=1):
    """A view of the diagonal, as in PyTorch: ``x.diagonal().fill_(0)`` writes into x."""
    return _view_of(input, _Diagonal.apply(input, offset, dim1, dim2))


class _Diagonal(Function):
    @staticmethod
    def forward(ctx, x, offset, d1, d2):
        ctx.info = (x.shape, offset, d1, d2)
        view = np.diagonal(x, offset, d1, d2)  # NumPy's is read-only: writable where x is
        view.setflags(write=x.flags.writeable)
        return view

    @staticmethod
    def backward(ctx, g):
        shape, offset, d1, d2 = ctx.info
        out = np.zeros(shape, dtype=g.dtype)
        view = np.diagonal(out, offset, d1, d2)
        view.setflags(write=True)
        view[...] = g
        return out, None, None, None


def trace(input):
    return diagonal(input).sum()


def diag(input, diagonal=0):
    if input.ndim == 1:
        n = input.shape[0] + abs(diagonal)
        return _DiagEmbed.apply(input, diagonal, n)
    return _Diagonal.apply(input, diagonal, 0, 1)


class _DiagEmbed(Function):
    @staticmethod
    def forward(ctx, v, k, n):
        ctx.k = k
        return np.diag(v, k)

    @staticmethod
    def backward(ctx, g):
        return np.diagonal(g, ctx.k).copy(), None, None


def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    n = input.shape[-1]
    eye = np.eye(n, dtype=input._data.dtype)
    return input.unsqueeze(-1) * _wrap(eye)


def cross(input, other, dim=None):
    if dim is None:
        dim = next(i for i, s in enumerate(input.shape) if s == 3)
    a0, a1, a2 = input.unbind(dim)
    b0, b1, b2 = other.unbind(dim)
    from ember.ops.shape import stack

    return stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], dim)


def cdist(x1, x2, p=2.0):
    d = x1.unsqueeze(-2) - x2.unsqueeze(-3)
    from ember.ops.reduction import norm

    return norm(d, p, dim=-1)


class Det(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.asarray(np.linalg.det(x))

    @staticmethod
    def backward(ctx, g):
        # d det(A) / dA = adj(A)^T, exact for singular A too: with A = U diag(s) V^T it is
        # det(U) det(V) U diag(prod of the other s) V^T.
        (x,) = ctx.saved_tensors
        u, sv, vt = np.linalg.svd(x)
        ones = np.ones(sv.shape[:-1] + (1,), sv.dtype)
        left = np.cumprod(np.concatenate([ones, sv[..., :-1]], -1), -1)
        right = np.cumprod(np.concatenate([ones, sv[..., :0:-1]], -1), -1)[..., ::-1]
        sign = np.linalg.det(u) * np.linalg.det(vt)
        adj_t = (u * (left * right)[..., None, :]) @ vt * sign[..., None, None]
        return (np.asarray(g)[..., None, None] * adj_t).astype(x.dtype, copy=False)


def det(input):
    return Det.apply(input)


def inverse(input):
    return _Inverse.apply(input)


class _Inverse(Function):
    @staticmethod
    def forward(ctx, x):
        y = np.linalg.inv(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        yt = np.swapaxes(y, -1, -2)
        return -yt @ g @ yt
