"""Binds the op functions of ``ember.ops`` onto ``Tensor`` as methods, dunders and in-place forms.

Each method is the op function itself (``x.exp() is ember.exp(x)``), so there is one
implementation of every op and no per-call indirection.
"""

from __future__ import annotations

import numpy as np

from ember.autograd.function import Function
from ember.autograd.grad_mode import _State
from ember.backend import unbroadcast
from ember.ops import creation as C
from ember.ops import elementwise as E
from ember.ops import indexing as I
from ember.ops import linalg as L
from ember.ops import reduction as R
from ember.ops import shape as S
from ember.random import _gen
from ember.tensor import Tensor, _bump

_T = Tensor

# Methods that are the op function with the tensor as first argument.
_SAME = {
    E: "add sub subtract mul multiply div divide true_divide floor_divide remainder fmod pow neg "
       "negative exp exp2 log log2 log10 log1p expm1 sqrt rsqrt square abs absolute sign sgn "
       "reciprocal sin cos tan asin acos atan atan2 sinh cosh tanh sigmoid relu floor ceil round "
       "trunc frac clamp clip clamp_min clamp_max maximum minimum fmax fmin eq ne lt le gt ge "
       "greater less greater_equal less_equal not_equal equal logical_and logical_or logical_xor "
       "logical_not bitwise_and bitwise_or bitwise_xor bitwise_not isnan isinf isfinite lerp "
       "addcmul addcdiv erf isclose allclose nan_to_num hypot xlogy signbit deg2rad rad2deg "
       "logaddexp logit",
    R: "sum mean prod max min amax amin argmax argmin var std logsumexp norm cumsum cumprod all "
       "any count_nonzero nansum nanmean median nanmedian mode aminmax cummax cummin diff dist "
       "softmax log_softmax quantile nanquantile",
    S: "reshape view t flatten unflatten permute transpose swapaxes swapdims movedim moveaxis "
       "squeeze unsqueeze expand expand_as broadcast_to repeat tile flip fliplr flipud roll split "
       "chunk unbind narrow contiguous clone view_as reshape_as repeat_interleave ravel "
       "tensor_split rot90 select unfold hsplit vsplit dsplit",
    I: "index_select gather scatter scatter_add scatter_reduce masked_fill masked_select "
       "masked_scatter nonzero argwhere topk sort argsort tril triu take take_along_dim index_add "
       "index_fill index_copy unique kthvalue msort index_put put bincount",
    L: "matmul mm bmm mv dot outer ger inner kron trace diag diagonal cross addmm baddbmm det "
       "inverse",
}
for mod, names in _SAME.items():
    for n in names.split():
        setattr(_T, n, getattr(mod, n))


def _where(self, condition, other):
    return E.where(condition, self, other)


_T.where = _where


# ---------------------------------------------------------------- operators
def _add(a, b):
    # Fast path: two tensors of one dtype need no promotion.
    if type(b) is _T and a._data.dtype is b._data.dtype:
        try:
            return E.Add.apply(a, b)
        except ValueError:
            E._broadcast_error(a, b)
    return E.add(a, b)


def _mul(a, b):
    if type(b) is _T and a._data.dtype is b._data.dtype:
        try:
            return E.Mul.apply(a, b)
        except ValueError:
            E._broadcast_error(a, b)
    return E.mul(a, b)


def _sub(a, b):
    if type(b) is _T and a._data.dtype is b._data.dtype and a._data.dtype.kind == "f":
        try:
            return E.Sub.apply(a, b)
        except ValueError:
            E._broadcast_error(a, b)
    return E.sub(a, b)


_T.__add__ = _add
_T.__radd__ = lambda a, b: E.add(b, a) if isinstance(b, _T) else E.add(a, b)
_T.__sub__ = _sub
_T.__rsub__ = lambda a, b: E.sub(b, a)
_T.__mul__ = _mul
_T.__rmul__ = lambda a, b: E.mul(a, b)
_T.__truediv__ = E.div
_T.__rtruediv__ = lambda a, b: E.div(b, a)
_T.__floordiv__ = E.floor_divide
_T.__rfloordiv__ = lambda a, b: E.floor_divide(E._as_tensor(b), a)
_T.__mod__ = E.remainder
_T.__rmod__ = lambda a, b: E.remainder(E._as_tensor(b), a)
_T.__pow__ = E.pow
_T.__rpow__ = lambda a, b: E.pow(b, a)
_T.__matmul__ = L.matmul
_T.__rmatmul__ = lambda a, b: L.matmul(E._as_tensor(b), a)
_T.__neg__ = E.neg
_T.__pos__ = lambda a: a
_T.__abs__ = E.abs
_T.__invert__ = lambda a: E.logical_not(a) if a._data.dtype == np.bool_ else E.bitwise_not(a)
# bitwise_* promote as torch does: bool & bool is bool, bool & 2 is int64 (mask & 2 is 0, not True)
_T.__and__, _T.__or__, _T.__xor__ = E.bitwise_and, E.bitwise_or, E.bitwise_xor
_T.__rand__, _T.__ror__, _T.__rxor__ = _T.__and__, _T.__or__, _T.__xor__


def _comparison(fn):
    """A comparison dunder: a tensor, a number or an array compares elementwise; anything else
    (None, a list, a string) is NotImplemented, so that ``x == None`` is False and ``x < None``
    a TypeError, as in PyTorch."""
    def op(a, b):
        if isinstance(b, _COMPARABLE):
            return fn(a, b)
        return NotImplemented

    op.__name__ = fn.__name__
    return op


_COMPARABLE = (_T, int, float, complex, np.ndarray, np.generic)  # bool is an int
_T.__eq__ = _comparison(E.eq)
_T.__ne__ = _comparison(E.ne)
_T.__lt__ = _comparison(E.lt)
_T.__le__ = _comparison(E.le)
_T.__gt__ = _comparison(E.gt)
_T.__ge__ = _comparison(E.ge)
_T.__getitem__ = I.getitem


def _contains(self, element):
    """``v in x``: whether any element of x equals v (a tensor v broadcast), as in PyTorch."""
    if not isinstance(element, _COMPARABLE):
        raise RuntimeError(f"Tensor.__contains__ only supports Tensor or scalar, but you passed "
                           f"in a {type(element)}.")
    return bool(E.eq(self, element)._data.any())


_T.__contains__ = _contains
_T.__reversed__ = lambda self: S.flip(self, 0) if self._data.ndim else self
_T.__setitem__ = I.setitem
_T.__hash__ = lambda self: id(self)


# ---------------------------------------------------------------- in-place forms
def _inplace_from(fn, fast=None):
    """``x.op_(...)``: NumPy in place when no graph is recorded, else rebase onto ``op``."""

    def method(self, *args, **kwargs):
        if fast is not None and not (_State.enabled and (self._rg or any(
                isinstance(a, _T) and a._rg for a in args))):
            r = fast(self, *args, **kwargs)
            if r is not NotImplemented:
                _bump(self)
                return self
        return self._inplace(fn(self, *args, **kwargs))

    method.__name__ = fn.__name__ + "_"
    return method


def _np_binary(ufunc):
    def fast(self, other, *, alpha=1, **kw):
        o = other._data if isinstance(other, _T) else other
        d = self._data
        if kw or not d.flags.writeable or (isinstance(o, np.ndarray) and o.dtype.kind == "f"
                                           and d.dtype.kind != "f"):
            return NotImplemented
        if alpha != 1:
            o = o * alpha
        try:
            ufunc(d, o, out=d, casting="same_kind")
        except (ValueError, TypeError):
            return NotImplemented
        return self

    return fast


_T.add_ = _inplace_from(E.add, _np_binary(np.add))
_T.sub_ = _inplace_from(E.sub, _np_binary(np.subtract))
_T.mul_ = _inplace_from(E.mul, _np_binary(np.multiply))
_T.div_ = _inplace_from(E.div, _np_binary(np.true_divide))
_T.subtract_, _T.multiply_, _T.divide_, _T.true_divide_ = _T.sub_, _T.mul_, _T.div_, _T.div_
_T.pow_ = _inplace_from(E.pow)
_T.__iadd__, _T.__isub__, _T.__imul__, _T.__itruediv__ = _T.add_, _T.sub_, _T.mul_, _T.div_
_T.__ipow__ = _T.pow_
for _n in ("neg exp log log1p expm1 sqrt rsqrt abs sign reciprocal sin cos tan tanh sigmoid relu "
           "floor ceil round trunc frac clamp clip clamp_min clamp_max lerp addcmul addcdiv erf "
           "remainder fmod floor_divide square exp2 log2 atan2 nan_to_num logical_not "
           "logit").split():
    setattr(_T, _n + "_", _inplace_from(getattr(E, _n)))
_T.__imod__ = _T.remainder_
_T.__ifloordiv__ = _T.floor_divide_
# in place: a result of another dtype (bool &= 2 gives int64) raises, as in torch
_T.bitwise_and_ = _T.__iand__ = _inplace_from(E.bitwise_and)
_T.bitwise_or_ = _T.__ior__ = _inplace_from(E.bitwise_or)
_T.bitwise_xor_ = _T.__ixor__ = _inplace_from(E.bitwise_xor)
for _n in ("masked_fill scatter scatter_add index_fill index_add index_copy masked_scatter "
           "index_put put").split():
    setattr(_T, _n + "_", _inplace_from(getattr(I, _n)))
_T.fill_diagonal_ = _inplace_from(I._fill_diagonal)
_T.tril_ = _inplace_from(I.tril)
_T.triu_ = _inplace_from(I.triu)
_T.t_ = lambda self: _set_shape(self, S.t(self))
_T.transpose_ = lambda self, a, b: _set_shape(self, S.transpose(self, a, b))
_T.squeeze_ = lambda self, dim=None: _set_shape(self, S.squeeze(self, dim))
_T.unsqueeze_ = lambda self, dim: _set_shape(self, S.unsqueeze(self, dim))


def _set_shape(self, res):
    self._data = res._data
    if res._rg:
        self._rg, self.grad_fn, self._oi = True, res.grad_fn, res._oi
    return self


def _check_leaf_inplace(self):
    if self._rg and self.grad_fn is None and _State.enabled:
        raise RuntimeError(
            "a leaf Variable that requires grad is being used in an in-place operation."
        )


class _Overwrite(Function):
    """``x`` replaced by ``value`` (broadcast): zero gradient to x, the gradient to a tensor value."""

    @staticmethod
    def forward(ctx, x, value):
        out = np.empty_like(x)
        out[...] = value
        ctx.vshape = value.shape if type(value) is np.ndarray else None
        return out

    @staticmethod
    def backward(ctx, g):
        nx, nv = ctx.needs_input_grad
        gv = unbroadcast(g, ctx.vshape) if nv and ctx.vshape is not None else None
        return (np.zeros_like(g) if nx else None), gv


def _overwrite(self, value):
    return _Overwrite.apply(self, value)


def _fill_(self, value):
    _check_leaf_inplace(self)
    if isinstance(value, _T):
        if value._data.ndim:
            raise RuntimeError(
                f"fill_ only supports 0-dimension value tensor but got tensor with "
                f"{value._data.ndim} dimensions."
            )
        if _State.enabled and (value._rg or self._rg):
            return self._inplace(_overwrite(self, value.to(self.dtype)))
        value = value.item()
    if self._rg and _State.enabled:
        return self._inplace(_overwrite(self, value))
    self._data.fill(value)
    _bump(self)
    return self


def _zero_(self):
    return _fill_(self, 0)


def _copy_(self, src, non_blocking=False):
    _check_leaf_inplace(self)
    if not isinstance(src, _T):
        src = C.tensor(src)
    try:
        shape = np.broadcast_shapes(src._data.shape, self._data.shape)
    except ValueError:
        shape = None
    if shape != self._data.shape:
        raise RuntimeError(
            f"The size of tensor a ({self._data.shape[-1] if self._data.ndim else 1}) must match "
            f"the size of tensor b ({src._data.shape[-1] if src._data.ndim else 1}): copy_ "
            f"from shape {list(src._data.shape)} into shape {list(self._data.shape)}"
        )
    if _State.enabled and (src._rg or self._rg):
        return self._inplace(_overwrite(self, src.to(self.dtype)))
    self._data[...] = src._data
    _bump(self)
    return self


def _random_fill(draw):
    def method(self, *args, generator=None, **kwargs):
        _check_leaf_inplace(self)
        arr = draw(_gen(generator), self._data.shape, *args, **kwargs)
        if _State.enabled and self._rg:  # new values: the old graph gets zero gradients
            return self._inplace(_overwrite(self, np.asarray(arr, self._data.dtype)))
        self._data[...] = arr
        _bump(self)
        return self

    return method


_T.fill_ = _fill_
_T.zero_ = _zero_
_T.copy_ = _copy_
_T.uniform_ = _random_fill(lambda g, s, a=0.0, b=1.0: g.uniform(a, b, s))
_T.normal_ = _random_fill(lambda g, s, mean=0.0, std=1.0: g.normal(mean, std, s))
_T.bernoulli_ = _random_fill(lambda g, s, p=0.5: g.random(s) < (p._data if isinstance(p, _T) else p))
_T.exponential_ = _random_fill(lambda g, s, lambd=1.0: g.exponential(1.0 / lambd, s))
_T.random_ = _random_fill(
    lambda g, s, a=0, b=None: g.integers(a if b is not None else 0, b if b is not None else (a or 2 ** 24), s))
_T.geometric_ = _random_fill(lambda g, s, p: g.geometric(p, s))
_T.log_normal_ = _random_fill(lambda g, s, mean=1.0, std=2.0: g.lognormal(mean, std, s))
_T.cauchy_ = _random_fill(lambda g, s, median=0.0, sigma=1.0: median + sigma * g.standard_cauchy(s))
_T.bernoulli = lambda self, p=None, *, generator=None: C.bernoulli(self, p, generator=generator)
_T.multinomial = C.multinomial


def _new(factory):
    def method(self, *size, dtype=None, device=None, requires_grad=False, **kw):
        return factory(*size, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)

    return method


_T.new_zeros = _new(C.zeros)
_T.new_ones = _new(C.ones)
_T.new_empty = _new(C.empty)
_T.new_full = lambda self, size, fill_value, *, dtype=None, device=None, requires_grad=False: C.full(
    size, fill_value, dtype=dtype or self.dtype, requires_grad=requires_grad)
_T.new_tensor = lambda self, data, *, dtype=None, device=None, requires_grad=False: C.tensor(
    data, dtype=dtype or self.dtype, requires_grad=requires_grad)


def _resize_(self, *size):
    size = S._shape_arg(size)
    n = int(np.prod(size))
    flat = self._data.reshape(-1)
    if n <= flat.size:
        self._data = flat[:n].reshape(size)
    else:
        self._data = np.concatenate([flat, np.zeros(n - flat.size, flat.dtype)]).reshape(size)
    return self


_T.resize_ = _resize_
_T.apply_ = lambda self, fn: self.copy_(C.tensor(np.vectorize(fn)(self._data)).to(self.dtype))
_T.map_ = lambda self, other, fn: self.copy_(C.tensor(np.vectorize(fn)(self._data, other._data)).to(self.dtype))
