"""``Tensor``: an array, its autograd state and PyTorch's methods (thin calls into ``ember.ops``)."""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from ember import dtypes as _dt
from ember.backend import check_device, cpu
from ember.backend.memory import tune_malloc

__all__ = ["Tensor", "Size"]

_ndarray = np.ndarray
_NON_LEAF_GRAD = (
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
    "attribute won't be populated during autograd.backward(). If you indeed want the .grad field "
    "to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. If you "
    "access the non-leaf Tensor by mistake, make sure you access the leaf Tensor instead. See "
    "github.com/pytorch/pytorch/pull/30531 for more informations."
)


class Size(tuple):
    """A tensor's shape: a tuple with ``numel()``, printed as ``ember.Size([2, 3])``."""

    def numel(self):
        n = 1
        for s in self:
            n *= s
        return n

    def __repr__(self):
        return f"ember.Size({list(self)})"

    def __getitem__(self, i):
        r = tuple.__getitem__(self, i)
        return Size(r) if isinstance(i, slice) else r


class Tensor:
    """A multi-dimensional array with reverse-mode autograd, with PyTorch's API.

    Create tensors with ``ember.tensor``, ``ember.zeros``, ``ember.randn``...; ``Tensor(data)`` and
    ``Tensor(*sizes)`` work as PyTorch's legacy constructor (float32).
    """

    __slots__ = ("_data", "_rg", "_grad", "grad_fn", "_oi", "_vc", "_hooks", "_base", "__weakref__")
    __array_priority__ = 1000  # NumPy defers to Tensor's reflected operators

    def __init__(self, *args, dtype=None, device=None, requires_grad=False):
        check_device(device)
        d = _dt.to_dtype(dtype) if dtype is not None else _dt.get_default_dtype()
        if len(args) == 1 and not isinstance(args[0], numbers.Integral):
            arr = np.array(args[0]._data if isinstance(args[0], Tensor) else args[0], dtype=d.np)
        elif all(isinstance(a, numbers.Integral) for a in args):
            arr = np.empty(tuple(int(a) for a in args), dtype=d.np)
        elif len(args) == 1:
            arr = np.empty(tuple(args[0]), dtype=d.np)
        else:
            raise TypeError(f"Tensor() got an unexpected combination of arguments {args!r}")
        self._data, self._rg, self._grad, self.grad_fn = arr, False, None, None
        self._oi, self._vc, self._hooks, self._base = 0, None, None, None
        if requires_grad:
            self.requires_grad_(True)

    # ---------------------------------------------------------------- attributes
    @property
    def shape(self):
        return Size(self._data.shape)

    def size(self, dim=None):
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_wrap_dim(dim, self._data.ndim)]

    def dim(self):
        return self._data.ndim

    ndimension = dim

    @property
    def ndim(self):
        return self._data.ndim

    def numel(self):
        return self._data.size

    nelement = numel

    @property
    def dtype(self):
        return _dt._NP2DT[self._data.dtype]

    @property
    def device(self):
        return cpu

    @property
    def is_cuda(self):
        return False

    @property
    def is_cpu(self):
        return True

    @property
    def layout(self):
        return "strided"

    @property
    def grad(self):
        """The accumulated gradient (a Tensor of this tensor's shape and dtype) or None."""
        g = self._grad
        if g is None and self.grad_fn is not None and not self.retains_grad:
            warnings.warn(_NON_LEAF_GRAD, UserWarning, stacklevel=2)
        return g

    @grad.setter
    def grad(self, g):
        if g is not None:
            if not isinstance(g, Tensor):
                raise TypeError("assigned grad expected to be a Tensor or None but got grad of "
                                f"type {type(g).__name__}")
            if g._data.shape != self._data.shape:
                raise RuntimeError(
                    f"attempting to assign a gradient of size '{list(g._data.shape)}' to a "
                    f"tensor of size '{list(self._data.shape)}'. Please ensure that the gradient "
                    "and the tensor are the same size")
            if g._data.dtype != self._data.dtype:
                raise RuntimeError(
                    f"attempting to assign a gradient with dtype '{_c_name(g._data.dtype)}' to a "
                    f"tensor with grad_dtype '{_scalar_name(self._data.dtype)}'. The gradient "
                    "must match the tensor's grad_dtype (defaults to the tensor's dtype).")
        self._grad = g

    @property
    def requires_grad(self):
        return self._rg

    @requires_grad.setter
    def requires_grad(self, value):
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad=True):
        if requires_grad and self._data.dtype.kind not in "fc":
            raise RuntimeError(
                f"only Tensors of floating point and complex dtype can require gradients "
                f"(got {self.dtype}); convert first, e.g. x.float().requires_grad_()"
            )
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a "
                "computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach()."
            )
        self._rg = bool(requires_grad)
        return self

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def data(self):
        return _wrap(self._data)

    @data.setter
    def data(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"Tensor.data must be set to a Tensor, got {type(value).__name__}")
        self._data = value._data

    @property
    def _version(self):
        return self._vc[0] if self._vc else 0

    @property
    def T(self):
        if self._data.ndim > 2:
            return self.permute(*range(self._data.ndim - 1, -1, -1))
        return self.t() if self._data.ndim == 2 else self

    @property
    def mT(self):
        if self._data.ndim < 2:
            raise RuntimeError(
                f"tensor.mT is only supported on matrices or batches of matrices. Got {self._data.ndim}-D tensor."
            )
        return self.transpose(-2, -1)

    @property
    def H(self):
        return self.T

    @property
    def mH(self):
        return self.mT

    @property
    def itemsize(self):
        return self._data.itemsize

    def element_size(self):
        return self._data.itemsize

    @property
    def nbytes(self):
        return self._data.nbytes

    def stride(self, dim=None):
        st = tuple(s // self._data.itemsize for s in self._data.strides)
        return st if dim is None else st[_wrap_dim(dim, self._data.ndim)]

    def is_contiguous(self, memory_format=None):
        return self._data.flags.c_contiguous

    def data_ptr(self):
        return self._data.__array_interface__["data"][0]

    def is_floating_point(self):
        return self._data.dtype.kind == "f"

    def is_complex(self):
        return False

    @property
    def is_sparse(self):
        return False

    @property
    def names(self):
        return (None,) * self._data.ndim

    def get_device(self):
        return -1

    # ---------------------------------------------------------------- conversions
    def item(self):
        if self._data.size != 1:
            raise RuntimeError(
                f"a Tensor with {self._data.size} elements cannot be converted to Scalar"
            )
        return self._data.reshape(()).item()

    def tolist(self):
        return self._data.tolist()

    def numpy(self, *, force=False):
        if self._rg and not force:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."
            )
        return self._data

    def __array__(self, dtype=None, copy=None):
        if dtype is not None and np.dtype(dtype) != self._data.dtype:
            return self._data.astype(dtype)
        return self._data.copy() if copy else self._data

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        if not self._rg:
            return iter([_wrap(a) for a in self._data])
        return iter(self.unbind(0))

    def _scalar_check(self, what):
        if self._data.size != 1:
            if what == "Boolean value":
                raise RuntimeError(f"{what} of a Tensor with {self._data.size} elements is ambiguous")
            raise ValueError(  # PyTorch's class for int()/float() of a many-element tensor
                f"only one element tensors can be converted to Python scalars (got shape "
                f"{tuple(self._data.shape)})"
            )

    def __bool__(self):
        self._scalar_check("Boolean value")
        return bool(self._data.reshape(()))

    def __int__(self):
        self._scalar_check("int")
        return int(self._data.reshape(()))

    def __float__(self):
        self._scalar_check("float")
        return float(self._data.reshape(()))

    def __complex__(self):
        self._scalar_check("complex")
        return complex(self._data.reshape(()))

    def __index__(self):
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError(
                "only integer tensors of a single element can be converted to an index"
            )
        return int(self._data.reshape(()))

    def __format__(self, spec):
        if self._data.ndim == 0 or (spec and self._data.size == 1):
            return format(self._data.reshape(()).item(), spec)
        if spec:
            raise TypeError(
                f"unsupported format string {spec!r} passed to Tensor.__format__: only one-element "
                f"tensors take a format spec (this one has shape {tuple(self._data.shape)})"
            )
        return repr(self)

    def __repr__(self):
        from ember._format import tensor_repr

        return tensor_repr(self)

    __str__ = __repr__

    def __hash__(self):
        return id(self)

    def __reduce_ex__(self, protocol):
        # Tensors pickle as (array, requires_grad): DataLoader workers and multiprocessing need it.
        return (_rebuild, (self._data, self._rg))

    def __deepcopy__(self, memo):
        if self.grad_fn is not None:
            raise RuntimeError(
                "Only Tensors created explicitly by the user (graph leaves) support the deepcopy "
                "protocol at the moment."
            )
        t = type(self).__new__(type(self))
        _init_from(t, self._data.copy(), self._rg)
        if self._grad is not None:
            t.grad = _wrap(self._grad._data.copy())
        if hasattr(self, "__dict__"):
            import copy

            t.__dict__.update(copy.deepcopy(self.__dict__, memo))
        memo[id(self)] = t
        return t

    # ---------------------------------------------------------------- dtype / device
    def to(self, *args, **kwargs):
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(other)``; ``copy=``,
        ``non_blocking=`` accepted."""
        dtype = kwargs.pop("dtype", None)
        device = kwargs.pop("device", None)
        copy = kwargs.pop("copy", False)
        kwargs.pop("non_blocking", None)
        kwargs.pop("memory_format", None)
        if kwargs:
            raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                dtype = a.dtype
            elif isinstance(a, _dt.dtype) or (isinstance(a, type) and a in (float, int, bool)):
                dtype = a
            elif isinstance(a, str) or hasattr(a, "type"):
                device = a
            elif isinstance(a, bool):
                pass
            else:
                dtype = a
        if device is not None:
            check_device(device)
        if dtype is None or _dt.to_dtype(dtype).np == self._data.dtype:
            return self.clone() if copy else self
        from ember.ops.elementwise import cast

        return cast(self, _dt.to_dtype(dtype))

    def type(self, dtype=None, non_blocking=False):
        if dtype is None:
            names = {"float32": "Float", "float64": "Double", "float16": "Half", "int64": "Long",
                     "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte",
                     "bool": "Bool"}
            return f"ember.{names[self.dtype.name]}Tensor"
        return self.to(dtype)

    def type_as(self, other):
        return self.to(other.dtype)

    def float(self):
        return self.to(_dt.float32)

    def double(self):
        return self.to(_dt.float64)

    def half(self):
        return self.to(_dt.float16)

    def long(self):
        return self.to(_dt.int64)

    def int(self):
        return self.to(_dt.int32)

    def short(self):
        return self.to(_dt.int16)

    def char(self):
        return self.to(_dt.int8)

    def byte(self):
        return self.to(_dt.uint8)

    def bool(self):
        return self.to(_dt.bool)

    def cpu(self, memory_format=None):
        return self

    def cuda(self, device=None, non_blocking=False):
        check_device("cuda" if device is None else device)
        return self

    def pin_memory(self):
        return self

    def is_pinned(self):
        return False

    def share_memory_(self):
        return self

    def is_shared(self):
        return False

    # ---------------------------------------------------------------- autograd
    def detach(self):
        out = _wrap(self._data)
        out._vc = self._vc = self._vc or [0]  # shares the version counter, not the graph
        return out

    def detach_(self):
        self.grad_fn = None
        self._rg = False
        return self

    def retain_grad(self):
        """Keep this non-leaf's gradient in ``.grad`` after backward (its hooks run first)."""
        if not self._rg:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is None or self.retains_grad:
            return
        import weakref

        ref = weakref.ref(self)

        def _keep(g):
            t = ref()
            if t is not None:
                t.grad = g.detach() if t.grad is None else t.grad + g.detach()

        _keep._retain = True
        self.register_hook(_keep)

    @property
    def retains_grad(self):
        fn = self.grad_fn
        if fn is None or not fn._hooks:
            return False
        return any(getattr(h, "_retain", False) for h in fn._hooks.get(self._oi, ()))

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned Tensor replaces
        the gradient. Returns a handle with ``remove()``."""
        if not self._rg:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is None:
            if self._hooks is None:
                self._hooks = []
            lst = self._hooks
        else:
            fn = self.grad_fn
            if fn._hooks is None:
                fn._hooks = {}
            lst = fn._hooks.setdefault(self._oi, [])
        if lst and getattr(lst[-1], "_retain", False):  # retain_grad's hook stays last, as torch
            lst.insert(len(lst) - 1, hook)
        else:
            lst.append(hook)
        return _HookHandle(lst, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` on this leaf once backward has accumulated its ``.grad`` (e.g. to
        step an optimizer per parameter inside backward). Returns a handle with ``remove()``."""
        if not self._rg:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            raise RuntimeError(
                "post accumulate grad hooks cannot be registered on non-leaf tensors")

        def post_accumulate(t):
            hook(t)

        post_accumulate._post_accumulate = True
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(post_accumulate)
        return _HookHandle(self._hooks, post_accumulate)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        from ember.autograd.engine import backward

        backward(self, None if gradient is None else (gradient,), retain_graph, create_graph,
                 inputs)

    def _inplace(self, res):
        """Make ``self`` hold ``res`` (an out-of-place result): data written into self's array so
        views and NumPy arrays sharing it see the change, graph rebased onto res's node."""
        if self._rg and self.grad_fn is None and _State.enabled:
            raise RuntimeError(
                "a leaf Variable that requires grad is being used in an in-place operation."
            )
        rd = res._data
        if rd.dtype != self._data.dtype and not _dt.can_cast(
            _dt._NP2DT[rd.dtype], _dt._NP2DT[self._data.dtype]
        ):
            raise RuntimeError(
                f"result type {_scalar_name(rd.dtype)} can't be cast to the desired output type "
                f"{_scalar_name(self._data.dtype)}"
            )
        if rd.shape != self._data.shape:
            raise RuntimeError(
                f"output with shape {list(self._data.shape)} doesn't match the broadcast shape "
                f"{list(rd.shape)}"
            )
        if self._base is not None and _State.enabled and (res._rg or self._base._rg):
            from ember.autograd._views import inplace_on_view

            if self._data.flags.writeable and inplace_on_view(self, res):
                return self
        if res._rg:
            if res.grad_fn._saved:
                _unalias_saved(res.grad_fn, self._data)
        elif self._rg and _State.enabled:
            # The new value does not depend on the old graph: it receives zero gradients.
            from ember._tensor_methods import _overwrite

            res = _overwrite(self, res)
            rd = res._data
        if self._data.flags.writeable:
            self._data[...] = rd
        else:
            self._data = rd.astype(self._data.dtype)
        if res._rg:
            self._rg, self.grad_fn, self._oi = True, res.grad_fn, res._oi
            if len(self._vc or ()) > 1:
                from ember.autograd._views import regenerate_views

                regenerate_views(self)
        _bump(self)
        return self


def _unalias_saved(fn, arr):
    """An in-place op is about to overwrite ``arr``: the node that computed the new value may
    have saved ``arr`` itself (x.mul_(y) saves x for y's gradient), so it keeps a copy."""
    saved = fn._saved
    if type(saved) is not tuple:
        return
    hit = {i for i, a in enumerate(saved) if type(a) is _ndarray and np.may_share_memory(a, arr)}
    if hit:
        fn._saved = tuple(a.copy() if i in hit else a for i, a in enumerate(saved))
        fn._vers = [v for v in getattr(fn, "_vers", ()) if v[0] not in hit]


class _HookHandle:
    def __init__(self, lst, hook):
        self._lst, self._hook = lst, hook

    def remove(self):
        if self._hook in self._lst:
            self._lst.remove(self._hook)


def _wrap_dim(dim, ndim):
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})"
        )
    return dim + n if dim < 0 else dim


def _c_name(dt):
    """C++ spelling of a dtype in torch's messages ('float', 'double', 'long int')."""
    return {"float32": "float", "float64": "double", "float16": "c10::Half", "int64": "long int",
            "int32": "int", "int16": "short int", "int8": "signed char", "uint8": "unsigned char",
            "bool": "bool"}.get(dt.name, dt.name)


def _scalar_name(dt):
    """torch's ScalarType name of a dtype ('Float', 'Double', 'Long')."""
    return {"float32": "Float", "float64": "Double", "float16": "Half", "int64": "Long",
            "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte",
            "bool": "Bool"}.get(dt.name, dt.name)


def _init_from(t, arr, rg=False):
    t._data, t._rg, t._grad, t.grad_fn, t._oi, t._vc, t._hooks = arr, rg, None, None, 0, None, None
    t._base = None


def _wrap(arr):
    """The cheap internal constructor: a Tensor around ``arr`` (no copy, no checks)."""
    t = _new(Tensor)
    t._data = arr
    t._rg = False
    t._grad = None
    t.grad_fn = None
    t._oi = 0
    t._vc = None
    t._hooks = None
    t._base = None
    return t


_new = object.__new__


def _bump(t):
    """Count one in-place modification of ``t`` (and of every view sharing its counter)."""
    vc = t._vc
    if vc is None:
        t._vc = [1]
    else:
        vc[0] += 1


def _view_of(src, out):
    """Make ``out`` (a view of ``src``'s memory) share ``src``'s version counter, as PyTorch's
    views do, so an in-place change through either invalidates what the graph saved of both;
    ``out._base`` is the tensor owning the memory, rebased when ``out`` is changed in place."""
    vc = src._vc
    if vc is None:
        vc = src._vc = [0]
    out._vc = vc
    root = src._base
    if root is None or src._rg and src.grad_fn is None:
        root = src  # a leaf requiring grad is its views' base even where it is itself a view
    out._base = root
    if out._rg and root.grad_fn is not None:
        from ember.autograd._views import track_view

        track_view(root, out)
    return out


def _rebuild(arr, rg):
    t = _wrap(arr)
    t._rg = rg
    return t


# Imported last: the autograd and op modules need the Tensor class defined above.
from ember.autograd.grad_mode import _State  # noqa: E402
import ember._tensor_methods  # noqa: E402,F401  (binds the ops as Tensor methods)

tune_malloc()  # keep freed arrays in the process between training steps (see backend/memory)
