"""Convolutions, LSTM and GRU layers and more on Intel's oneDNN, through its C API (ctypes), when
the optional ``onednn-cpu-gomp`` wheel is installed (``pip install "ember[onednn]"``, x86-64 Linux).

oneDNN is the library PyTorch's CPU convolutions and LSTMs run on. Its JIT kernels keep a block
of outputs in registers over the whole reduction, which BLAS calls from Python cannot do:
measured on the 2-core reference machine at batch 64, forward + backward of a 16-channel 3x3
convolution at 32x32 took 3.8 ms here against 10.7 ms with ember's own shifted products
(``ember.ops._conv_shifted``), LeNet's first convolution's forward 0.45 against 1.8 ms; lstm32's
layer (128 -> 256, 32 steps, batch 32) 3.3 + 6.4 ms against 5.2 + 6.6 on ember's loop. The
results equal PyTorch's bit for bit, since PyTorch runs the same kernels.

``Conv.get(...)`` builds, once per geometry, the three primitives (forward with bias, backward
data, backward weights with the bias gradient), and the reorders between NumPy's ``(N, C, H, W)``
/ ``(O, C/G, kh, kw)`` arrays and the blocked layouts oneDNN chose for them; a geometry oneDNN
does not take returns None and keeps ember's own path. ``Recurrent.get(cell, T, B, I, H)`` does
the same for one LSTM or GRU layer and direction (``ember.ops.recurrent``; no projection, no
packed sequences): a GRU (128 -> 256, 32 steps, batch 32) training step 12.1-13.6 -> 10.7-11.3
ms (PyTorch's own GRU, not on oneDNN: 18.3-22.4). ``MaxPool.get(...)`` and
``ReluBackward.get(n)`` serve max pooling and ReLU's gradient, so that the small and medium
networks need no numba (``ember.backend.jit``); ``MatMul.get(a, b, bias)`` serves mid-sized
Linear layers' forward (``ember.ops.linear``). Only float32 runs here (oneDNN has no float64
kernels on CPUs). Nothing is kept between forward and backward but the arrays the op saves, so
layers of one shape share one object; a lock serialises its use across threads.

The library's OpenMP threads follow ember's policy for large products (``blas.threads_for``):
all threads, one inside ``parallel_for`` splits or on a busy machine (``_thread_count``), set in
whichever OpenMP runtime oneDNN's calls bound to (GNU's, or Intel's where MKL came first). oneDNN
is loaded with the first convolution, pool, LSTM or GRU (~17 MB of its 65 MB library resident),
not by ``import ember``; ``EMBER_ONEDNN=0`` in the environment turns it off.

Example::

    conv = Conv.get((64, 16, 32, 32), (16, 16, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True)
    y = conv.forward(x, w, b)                       # float32
    gx, gw, gb = conv.backward(g, x, w, (True, True, True))
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
import weakref

import numpy as np

from ember.backend._libs import address, wheel_library

__all__ = ["Conv", "MatMul", "MaxPool", "Recurrent", "ReluBackward", "available", "installed",
           "loaded"]

# oneDNN's C API constants (oneapi/dnnl/dnnl_types.h, dnnl_common_types.h; v3)
_CPU, _IN_ORDER, _F32 = 1, 1, 3
_ANY, _A, _AB, _ABC, _ABCD, _ABCDE, _LDGOI = 1, 2, 3, 4, 5, 6, 31  # tnc = abc, ldnc = ldgo = abcd
_FORWARD_TRAINING, _BACKWARD, _CONVOLUTION_DIRECT, _LEFT2RIGHT = 64, 128, 1, 1
_DIFF_WEIGHTS_OVERWRITE = 1  # dnnl_rnn_flags_diff_weights_overwrite: write, do not add
_POOLING_MAX, _RELU_USE_DST = 0x1FF, 0x100
_Q_SRC, _Q_DIFF_SRC, _Q_WEIGHTS, _Q_DIFF_WEIGHTS, _Q_DST, _Q_DIFF_DST = 129, 130, 131, 132, 133, 134
_Q_WORKSPACE, _Q_EXEC_ARG = 135, 255
_SRC, _DST, _WEIGHTS, _BIAS, _WORKSPACE = 1, 17, 33, 41, 64
_DIFF_SRC, _DIFF_DST, _DIFF_WEIGHTS, _DIFF_BIAS = 129, 145, 161, 169
_ALIGN = 64  # bytes: oneDNN's kernels load whole cache lines
_CACHE_SIZE = 64  # geometries kept per kind; older ones go (sequences of many lengths, image sizes)

_Dims = ctypes.c_int64 * 12
_lib = None  # None: not tried; False: unavailable; else the ctypes library
_engine = _stream = None
class _OmpThreads(threading.local):
    n = None  # the OpenMP thread count this thread last set (_use_threads)


_omp_threads = _OmpThreads()
_building = threading.local()  # .owned: the handle list of the object being built (_owning)
_forked = False  # in a child forked after oneDNN was loaded (see _after_fork)
_installed = None  # whether the library is there (installed(); None: not looked for yet)


class _Arg(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_int), ("memory", ctypes.c_void_p)]


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_int), ("minor", ctypes.c_int), ("patch", ctypes.c_int)]


def _library_path():
    """libdnnl from the installed ``onednn-cpu-gomp`` distribution (<prefix>/lib)."""
    return wheel_library("onednn-cpu-gomp", ("libdnnl.so",))


def _bind(lib):
    p, i, dims = ctypes.c_void_p, ctypes.c_int, _Dims
    pp = ctypes.POINTER(p)
    sigs = {
        "dnnl_engine_create": [pp, i, ctypes.c_size_t],
        "dnnl_stream_create": [pp, p, ctypes.c_uint],
        "dnnl_memory_desc_create_with_tag": [pp, i, dims, i, i],
        "dnnl_memory_desc_create_with_strides": [pp, i, dims, i, dims],
        "dnnl_matmul_primitive_desc_create": [pp, p, p, p, p, p, p],
        "dnnl_convolution_forward_primitive_desc_create":
            [pp, p, i, i, p, p, p, p, dims, dims, dims, dims, p],
        "dnnl_convolution_backward_data_primitive_desc_create":
            [pp, p, i, p, p, p, dims, dims, dims, dims, p, p],
        "dnnl_convolution_backward_weights_primitive_desc_create":
            [pp, p, i, p, p, p, p, dims, dims, dims, dims, p, p],
        "dnnl_primitive_desc_query_md": [p, i, i],
        "dnnl_memory_desc_equal": [p, p],
        "dnnl_memory_desc_get_size": [p],
        "dnnl_memory_create": [pp, p, p, p],
        "dnnl_memory_set_data_handle": [p, p],
        "dnnl_reorder_primitive_desc_create": [pp, p, p, p, p, p],
        "dnnl_primitive_create": [pp, p],
        "dnnl_primitive_execute": [p, p, i, ctypes.POINTER(_Arg)],
        "dnnl_stream_wait": [p],
        "dnnl_lstm_forward_primitive_desc_create": [pp, p, i, i] + [p] * 11 + [ctypes.c_uint, p],
        "dnnl_lstm_backward_primitive_desc_create":
            [pp, p, i, i] + [p] * 22 + [ctypes.c_uint, p, p],
        "dnnl_lbr_gru_forward_primitive_desc_create": [pp, p, i, i] + [p] * 7 + [ctypes.c_uint, p],
        "dnnl_lbr_gru_backward_primitive_desc_create":
            [pp, p, i, i] + [p] * 14 + [ctypes.c_uint, p, p],
        "dnnl_pooling_forward_primitive_desc_create": [pp, p, i, i, p, p] + [dims] * 5 + [p],
        "dnnl_pooling_backward_primitive_desc_create": [pp, p, i, p, p] + [dims] * 5 + [p, p],
        "dnnl_eltwise_forward_primitive_desc_create":
            [pp, p, i, i, p, p, ctypes.c_float, ctypes.c_float, p],
        "dnnl_eltwise_backward_primitive_desc_create":
            [pp, p, i, p, p, p, ctypes.c_float, ctypes.c_float, p, p],
        "dnnl_memory_desc_destroy": [p],
        "dnnl_memory_destroy": [p],
        "dnnl_primitive_desc_destroy": [p],
        "dnnl_primitive_destroy": [p],
    }
    for name, args in sigs.items():
        f = getattr(lib, name)
        f.argtypes, f.restype = args, ctypes.c_int
    lib.dnnl_primitive_desc_query_md.restype = p
    lib.dnnl_memory_desc_get_size.restype = ctypes.c_size_t


def load():
    """Load oneDNN once; True when it can be used (installed, loadable, not turned off)."""
    global _lib, _engine, _stream, _gomp_threads
    if _lib is None:
        _lib = False
        if _turned_off():
            return False
        path = _library_path()
        if path is None:
            return False
        # MKL first, where installed: it picks its OpenMP runtime on its first call, and picks
        # GNU's once libdnnl has brought that in. GNU OpenMP's threads do not survive fork, so a
        # forked child's first MKL product then hung (a worker process running the model after
        # the parent trained it); Intel's runtime starts afresh in the child, and oneDNN's
        # parallel regions bind to it as well.
        from ember.backend import blas  # here: blas imports this module

        blas.start()
        try:
            lib = ctypes.CDLL(path)
            lib.dnnl_version.restype = ctypes.POINTER(_Version)
            if lib.dnnl_version().contents.major < 3:  # v2's memory descriptors are structs
                return False
            _bind(lib)
            gomp = ctypes.CDLL("libgomp.so.1")  # the OpenMP runtime libdnnl was linked with
        except (OSError, AttributeError):
            return False
        gomp.omp_set_num_threads.argtypes, gomp.omp_set_num_threads.restype = [ctypes.c_int], None
        engine, stream = ctypes.c_void_p(), ctypes.c_void_p()
        if (lib.dnnl_engine_create(ctypes.byref(engine), _CPU, 0)
                or lib.dnnl_stream_create(ctypes.byref(stream), engine, _IN_ORDER)):
            return False
        _engine, _stream, _lib, _gomp_threads = engine, stream, lib, gomp.omp_set_num_threads
        os.register_at_fork(after_in_child=_after_fork)  # the wheel is Linux-only: POSIX
    return _lib is not False


def _turned_off():
    return os.environ.get("EMBER_ONEDNN", "1") in ("0", "false", "False")


_gomp_threads = None  # libgomp's omp_set_num_threads, once loaded
_iomp_threads = None  # libiomp5's, once found loaded (_intel_omp)


def _set_omp_threads(k):
    """``omp_set_num_threads(k)`` in every OpenMP runtime oneDNN's calls may have bound to. The
    library was linked with GNU OpenMP, but where Intel's (MKL's) is loaded first, its GNU
    compatibility symbols serve oneDNN's parallel regions (``LD_DEBUG=bindings`` shows them
    bound to libiomp5): setting only libgomp's count had left every primitive on Intel's
    default, all threads, even LeNet's smallest, with its worker spinning through the step."""
    _gomp_threads(k)
    iomp = _intel_omp()
    if iomp is not None:
        iomp(k)


def _intel_omp():
    """Intel OpenMP's omp_set_num_threads where libiomp5 is loaded (by MKL), else None."""
    global _iomp_threads
    if _iomp_threads is None:
        try:
            lib = ctypes.CDLL("libiomp5.so", mode=os.RTLD_NOLOAD)
        except OSError:
            return None  # not loaded (yet): looked for again next time
        lib.omp_set_num_threads.argtypes, lib.omp_set_num_threads.restype = [ctypes.c_int], None
        _iomp_threads = lib.omp_set_num_threads
    return _iomp_threads


def _after_fork():
    """GNU OpenMP's thread pool does not survive ``fork``: a child that starts a parallel
    region of the parent's pool hangs (a DataLoader worker, a multiprocessing pool), and
    oneDNN's primitives fix their thread count when they are built. A forked child therefore
    leaves oneDNN alone: its convolutions and recurrent layers take ember's own paths."""
    global _forked
    _forked = True


def installed():
    """True when oneDNN's library is installed and not turned off (``EMBER_ONEDNN=0``), without
    loading it."""
    global _installed
    if _installed is None:
        _installed = not _turned_off() and _library_path() is not None
    return _installed and _lib is not False


def loaded():
    """True once oneDNN has been loaded into this process (and not turned off)."""
    return bool(_lib)


def available():
    """True when oneDNN is installed and in use."""
    return load()


def _check(status, what):
    if status:
        raise RuntimeError(f"oneDNN: {what} failed with status {status}")


def _record(destroy, handle):
    """Note a handle the object being built (``_owning``) must destroy with itself."""
    owned = getattr(_building, "owned", None)
    if owned is not None and handle:
        owned.append((destroy, handle))


@contextlib.contextmanager
def _owning(obj):
    """Build ``obj``'s primitives inside: every descriptor, memory and primitive created goes
    into ``obj._owned``, destroyed by ``_release`` when ``obj`` goes (also when building it
    failed half way and it is dropped)."""
    obj._owned = []
    _building.owned = obj._owned
    try:
        yield
    finally:
        _building.owned = None


def _release(owned):
    while owned:
        destroy, handle = owned.pop()
        getattr(_lib, destroy)(handle)


def _md(shape, tag):
    md = ctypes.c_void_p()
    _check(_lib.dnnl_memory_desc_create_with_tag(ctypes.byref(md), len(shape), _Dims(*shape),
                                                 _F32, tag), "memory_desc_create_with_tag")
    _record("dnnl_memory_desc_destroy", md)
    return md


def _md_strided(shape, strides):
    """A float32 memory descriptor for an array of ``shape`` with ``strides`` in elements."""
    md = ctypes.c_void_p()
    _check(_lib.dnnl_memory_desc_create_with_strides(ctypes.byref(md), len(shape),
                                                     _Dims(*shape), _F32, _Dims(*strides)),
           "memory_desc_create_with_strides")
    _record("dnnl_memory_desc_destroy", md)
    return md


def _memory(md, handle):
    mem = ctypes.c_void_p()
    _check(_lib.dnnl_memory_create(ctypes.byref(mem), md, _engine, handle), "memory_create")
    _record("dnnl_memory_destroy", mem)
    return mem


def _primitive(pd):
    """The primitive of the descriptor ``pd``; both are destroyed with their owner."""
    _record("dnnl_primitive_desc_destroy", pd)
    prim = ctypes.c_void_p()
    _check(_lib.dnnl_primitive_create(ctypes.byref(prim), pd), "primitive_create")
    _record("dnnl_primitive_destroy", prim)
    return prim


class _Owner:
    """Base of the primitive holders, built from a cache key whose last item is the thread
    count (``_thread_count``): ``_build(*rest)`` runs under that count, and its oneDNN handles
    (``_owned``) die with the object. ``lock`` serialises its use across threads."""

    _owned = ()

    def __init__(self, *key):
        *geometry, self.threads = key
        self.lock = threading.Lock()
        _use_threads(self.threads)
        with _owning(self):
            self._build(*geometry)

    def __del__(self):
        if _lib:  # not during interpreter shutdown, when the module may be half gone
            _release(self._owned)

    def _run(self, prim, args, mems, arrays):
        """Run ``prim`` on its fixed argument array ``args`` with each memory of ``mems``
        pointing at the array of ``arrays`` in the same place (laid out as the memory says)."""
        with self.lock:
            _use_threads(self.threads)
            for mem, a in zip(mems, arrays):
                _lib.dnnl_memory_set_data_handle(mem, address(a))
            _execute(prim, args)
            _check(_lib.dnnl_stream_wait(_stream), "stream_wait")


def _execute(prim, args):
    """Run ``prim`` on ``args``: (argument, memory) pairs, or their ``_arg_array``."""
    if _forked:
        raise RuntimeError("oneDNN cannot run in a process forked after it was used (its OpenMP "
                           "threads do not survive fork): run this backward in the parent, or "
                           "start the child with the 'spawn' method")
    if isinstance(args, list):
        args = _arg_array(args)
    _check(_lib.dnnl_primitive_execute(prim, _stream, len(args), args), "primitive_execute")


def _arg_array(pairs):
    """The C array of (argument, memory) pairs that ``dnnl_primitive_execute`` takes: built
    once where the memories are fixed and only their data handles change."""
    return (_Arg * len(pairs))(*[_Arg(k, m) for k, m in pairs])


def _dense(a, shape):
    """``a`` as a C-contiguous float32 array, zeros of ``shape`` for None (a state or gradient
    that is not there)."""
    return np.zeros(shape, np.float32) if a is None else np.ascontiguousarray(a)


def _aligned(nbytes):
    """``nbytes`` uninitialised bytes at a cache-line boundary."""
    buf = np.empty(nbytes + _ALIGN, np.uint8)
    off = (-address(buf)) % _ALIGN
    return buf[off:off + nbytes]


_threads_for = None  # blas.threads_for, once _thread_count first runs


def _thread_count():
    """Threads for the primitives built now: all that ember may use (``blas.threads_for`` of a
    large product), one inside a ``parallel_for`` split, a ``serial_blas`` block or on a busy
    machine. oneDNN fixes a primitive's thread count when it builds it (``num_threads`` of its
    parallel regions), so each count gets primitives of its own (part of the cache key). Two
    threads beat one for every primitive measured here, LeNet's smallest included (batch 4:
    first convolution forward 43 against 58 us, backward 211 against 328-346; (64, 6, 28, 28)
    max pool forward 129 against 196-203 us)."""
    global _threads_for
    if _threads_for is None:  # blas imports this module: bound on the first call
        from ember.backend.blas import threads_for as _threads_for
    return _threads_for(1 << 62)


def _use_threads(k):
    """Set this thread's OpenMP thread count (only when it changes) to ``k``, for the primitives
    that read it when they run."""
    if _omp_threads.n != k:
        _set_omp_threads(k)
        _omp_threads.n = k


class _Layout:
    """One tensor's NumPy layout (``user_md``) and the layout a primitive wants (``md``): a memory
    over the NumPy array and, when the two differ, one over a scratch buffer (``bind``) with the
    reorders both ways."""

    __slots__ = ("user", "md", "inner", "to_inner", "to_user", "scratch", "in_args", "out_args")

    def __init__(self, user_md, md):
        self.user = _memory(user_md, None)
        self.md, self.scratch = md, None
        if _lib.dnnl_memory_desc_equal(user_md, md):
            self.md = None  # no scratch buffer needed
            self.inner = self.user
            self.to_inner = self.to_user = None
        else:
            self.to_inner = self._reorder(user_md, md)
            self.to_user = self._reorder(md, user_md)

    @staticmethod
    def _reorder(src, dst):
        pd = ctypes.c_void_p()
        _check(_lib.dnnl_reorder_primitive_desc_create(ctypes.byref(pd), src, _engine, dst,
                                                       _engine, None), "reorder")
        return _primitive(pd)

    def size(self):
        return 0 if self.md is None else _lib.dnnl_memory_desc_get_size(self.md)

    def bind(self, buffer):
        """Put the primitive's layout in ``buffer`` (aligned bytes, at least ``size()``)."""
        if self.md is not None:
            self.scratch = buffer
            self.inner = _memory(self.md, ctypes.c_void_p(address(buffer)))
            self.in_args = _arg_array([(_SRC, self.user), (_DST, self.inner)])
            self.out_args = _arg_array([(_SRC, self.inner), (_DST, self.user)])

    def load(self, a):
        """The primitive's memory holding ``a`` (C-contiguous float32)."""
        _lib.dnnl_memory_set_data_handle(self.user, address(a))
        if self.to_inner is not None:
            _execute(self.to_inner, self.in_args)
        return self.inner

    def target(self, a):
        """The primitive's memory for a result that ``store()`` then writes into ``a``."""
        _lib.dnnl_memory_set_data_handle(self.user, address(a))
        return self.inner

    def store(self):
        if self.to_user is not None:
            _execute(self.to_user, self.out_args)


_cache_lock = threading.Lock()
_MISSING = object()


def _built(cls, key):
    """``cls(*key)`` built once per key and kept in ``cls._cache`` (None when oneDNN refuses
    it, which then keeps ember's own path); threads that ask at once build it once. The cache
    keeps the last ``_CACHE_SIZE`` keys; an object dropped from it lives on while an op that
    ran on it holds it."""
    obj = cls._cache.get(key, _MISSING)
    if obj is _MISSING:
        with _cache_lock:
            obj = cls._cache.get(key, _MISSING)
            if obj is _MISSING:
                try:
                    obj = cls(*key)
                except RuntimeError:
                    obj = None
                cls._cache[key] = obj
                while len(cls._cache) > _CACHE_SIZE:
                    cls._cache.pop(next(iter(cls._cache)))
    return obj


class Conv(_Owner):
    """oneDNN's primitives for one convolution geometry (see the module docstring)."""

    _cache = {}  # geometry -> Conv, or None where oneDNN refused it

    @classmethod
    def get(cls, xshape, wshape, stride, pads, dilation, groups, bias, dtype=np.float32):
        """The ``Conv`` for this geometry, or None where oneDNN is not available or does not
        take it (a dtype other than float32, an empty dimension, a geometry it rejects)."""
        if (np.dtype(dtype) != np.float32 or 0 in xshape or 0 in wshape or _forked
                or not load()):
            return None
        return _built(cls, (tuple(xshape), tuple(wshape), tuple(stride), tuple(pads),
                            tuple(dilation), groups, bool(bias), _thread_count()))

    def _build(self, xshape, wshape, stride, pads, dilation, groups, bias):
        (n, _, h, wd), (o, cg, kh, kw) = xshape, wshape
        t, b, lf, r = pads
        ho = (h + t + b - dilation[0] * (kh - 1) - 1) // stride[0] + 1
        wo = (wd + lf + r - dilation[1] * (kw - 1) - 1) // stride[1] + 1
        self.yshape = (n, o, ho, wo)
        self.macs = n * o * cg * kh * kw * ho * wo
        wdims = (groups, o // groups, cg, kh, kw) if groups > 1 else wshape
        wtag = _ABCDE if groups > 1 else _ABCD
        x_u, w_u, y_u = _md(xshape, _ABCD), _md(wdims, wtag), _md(self.yshape, _ABCD)
        b_md = _md((o,), _A) if bias else None
        x_a, w_a, y_a = _md(xshape, _ANY), _md(wdims, _ANY), _md(self.yshape, _ANY)
        geo = (_Dims(*stride), _Dims(dilation[0] - 1, dilation[1] - 1), _Dims(t, lf), _Dims(b, r))
        q = _lib.dnnl_primitive_desc_query_md

        fwd = ctypes.c_void_p()
        _check(_lib.dnnl_convolution_forward_primitive_desc_create(
            ctypes.byref(fwd), _engine, _FORWARD_TRAINING, _CONVOLUTION_DIRECT, x_a, w_a, b_md,
            y_a, *geo, None), "convolution forward")
        self.fwd = _primitive(fwd)
        self.f_x, self.f_w = _Layout(x_u, q(fwd, _Q_SRC, 0)), _Layout(w_u, q(fwd, _Q_WEIGHTS, 0))
        self.f_y = _Layout(y_u, q(fwd, _Q_DST, 0))
        self.b = _memory(b_md, None) if bias else None

        bwd = ctypes.c_void_p()
        _check(_lib.dnnl_convolution_backward_data_primitive_desc_create(
            ctypes.byref(bwd), _engine, _CONVOLUTION_DIRECT, x_a, w_a, y_a, *geo, fwd, None),
            "convolution backward data")
        self.bwd = _primitive(bwd)
        self.d_gx = _Layout(x_u, q(bwd, _Q_DIFF_SRC, 0))
        self.d_w, self.d_g = _Layout(w_u, q(bwd, _Q_WEIGHTS, 0)), _Layout(y_u, q(bwd, _Q_DIFF_DST, 0))

        bww = ctypes.c_void_p()
        _check(_lib.dnnl_convolution_backward_weights_primitive_desc_create(
            ctypes.byref(bww), _engine, _CONVOLUTION_DIRECT, x_a, w_a, b_md, y_a, *geo, fwd,
            None), "convolution backward weights")
        self.bww = _primitive(bww)
        self.w_x, self.w_gw = _Layout(x_u, q(bww, _Q_SRC, 0)), _Layout(w_u, q(bww, _Q_DIFF_WEIGHTS, 0))
        w_g = q(bww, _Q_DIFF_DST, 0)
        # Backward data and backward weights usually want the output gradient in one layout:
        # then it is reordered once for both.
        self.shared_g = bool(_lib.dnnl_memory_desc_equal(w_g, q(bwd, _Q_DIFF_DST, 0)))
        self.w_g = self.d_g if self.shared_g else _Layout(y_u, w_g)
        self.gb = _memory(b_md, None) if bias else None
        # One scratch buffer per tensor: its layouts are never in use at the same time (the
        # forward's input, the input gradient, the weight gradient's input; and so on).
        self.scratch = _scratch([(self.f_x, self.d_gx, self.w_x), (self.f_w, self.d_w, self.w_gw),
                                 (self.f_y, self.d_g, self.w_g)])
        # each primitive's arguments: fixed memories, whose data handles each call points
        bias_args = [(_BIAS, self.b)] if bias else []
        self.f_args = _arg_array([(_SRC, self.f_x.inner), (_WEIGHTS, self.f_w.inner),
                                  (_DST, self.f_y.inner)] + bias_args)
        self.d_args = _arg_array([(_DIFF_DST, self.d_g.inner), (_WEIGHTS, self.d_w.inner),
                                  (_DIFF_SRC, self.d_gx.inner)])
        self.w_args = _arg_array([(_SRC, self.w_x.inner), (_DIFF_DST, self.w_g.inner),
                                  (_DIFF_WEIGHTS, self.w_gw.inner)]
                                 + ([(_DIFF_BIAS, self.gb)] if bias else []))

    def forward(self, x, w, b):
        """``conv(x, w) + b`` as a new ``(N, O, Ho, Wo)`` array (b may be None when the
        geometry was built without a bias)."""
        x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
        y = np.empty(self.yshape, np.float32)
        with self.lock:
            _use_threads(self.threads)
            self.f_x.load(x)
            self.f_w.load(w)
            self.f_y.target(y)
            if self.b is not None:
                b = np.ascontiguousarray(b)  # held until the primitive ran, like x and w
                _lib.dnnl_memory_set_data_handle(self.b, address(b))
            _execute(self.fwd, self.f_args)
            self.f_y.store()
            _check(_lib.dnnl_stream_wait(_stream), "stream_wait")
        return y

    def backward(self, g, x, w, need):
        """``(gx, gw, gb)`` for the output gradient ``g``, None where ``need`` says so (``gb``
        only when the geometry has a bias)."""
        # Contiguous copies where needed, held here: the primitives read them by address.
        g = np.ascontiguousarray(g)
        x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
        gx = gw = gb = None
        with self.lock:
            _use_threads(self.threads)
            if need[0]:
                gx = np.empty(x.shape, np.float32)
                self.d_g.load(g)
                self.d_w.load(w)
                self.d_gx.target(gx)
                _execute(self.bwd, self.d_args)
                self.d_gx.store()
            if need[1] or (need[2] and self.gb is not None):
                gw = np.empty(w.shape, np.float32)
                if not (need[0] and self.shared_g):  # else backward data reordered it
                    self.w_g.load(g)
                self.w_x.load(x)
                self.w_gw.target(gw)
                if self.gb is not None:
                    gb = np.empty(w.shape[0], np.float32)
                    _lib.dnnl_memory_set_data_handle(self.gb, address(gb))
                _execute(self.bww, self.w_args)
                self.w_gw.store()
            _check(_lib.dnnl_stream_wait(_stream), "stream_wait")
        return gx, gw if need[1] else None, gb if need[2] else None


class MaxPool(_Owner):
    """oneDNN's max pooling over the last two axes of ``(N, C, H, W)`` float32 arrays, for one
    geometry: the forward (training) writes each output's winning kernel position ``i * kw + j``
    as uint8, the layout of ember's own max pool (``ember.ops.pooling``), and the backward sends
    the gradient there. Ties go to the first position, as in PyTorch; oneDNN's maximum skips
    NaNs and starts from -FLT_MAX, so inputs holding a NaN or a -inf keep ember's path. LeNet's
    (64, 6, 28, 28) 2x2 pool on two threads: forward 129 us, backward 136-140 (its two pools
    had taken 0.49 and 0.58 ms on ember's compiled kernels inside a step)."""

    _cache = {}  # geometry -> MaxPool, or None where oneDNN refused it

    @classmethod
    def get(cls, xshape, kernel, stride, padding, dilation, out_hw, dtype=np.float32):
        """The ``MaxPool`` for this geometry (``padding`` is (top, left); the bottom and right
        padding follow from ``out_hw``), or None where oneDNN is not available or does not take
        it (not float32 or 4-D, 256 or more kernel positions)."""
        if (np.dtype(dtype) != np.float32 or len(xshape) != 4 or 0 in xshape
                or kernel[0] * kernel[1] >= 256 or _forked or not load()):
            return None
        return _built(cls, (tuple(xshape), tuple(kernel), tuple(stride), tuple(padding),
                            tuple(dilation), tuple(out_hw), _thread_count()))

    def _build(self, xshape, kernel, stride, padding, dilation, out_hw):
        self.xshape, self.yshape = xshape, xshape[:2] + out_hw
        # right/bottom padding: what the last window reaches past the input (ceil_mode), at
        # least none (trailing rows no window reaches are left out, as oneDNN's rounding does)
        far = [max(0, (o - 1) * s + d * (k - 1) + 1 - n - p) for o, s, d, k, n, p in
               zip(out_hw, stride, dilation, kernel, xshape[2:], padding)]
        geo = (_Dims(*stride), _Dims(*kernel), _Dims(dilation[0] - 1, dilation[1] - 1),
               _Dims(*padding), _Dims(*far))
        x_md, y_md = _md(xshape, _ABCD), _md(self.yshape, _ABCD)
        fwd = ctypes.c_void_p()
        _check(_lib.dnnl_pooling_forward_primitive_desc_create(
            ctypes.byref(fwd), _engine, _FORWARD_TRAINING, _POOLING_MAX, x_md, y_md, *geo, None),
            "pooling forward")
        self.fwd = _primitive(fwd)
        ws_md = _lib.dnnl_primitive_desc_query_md(fwd, _Q_WORKSPACE, 0)
        if _lib.dnnl_memory_desc_get_size(ws_md) != int(np.prod(self.yshape)):
            raise RuntimeError("oneDNN: pooling workspace is not one byte an output")
        bwd = ctypes.c_void_p()
        _check(_lib.dnnl_pooling_backward_primitive_desc_create(
            ctypes.byref(bwd), _engine, _POOLING_MAX, x_md, y_md, *geo, fwd, None),
            "pooling backward")
        self.bwd = _primitive(bwd)
        self.mems = [_memory(md, None) for md in (x_md, y_md, ws_md)]
        self.f_args = _arg_array(list(zip((_SRC, _DST, _WORKSPACE), self.mems)))
        self.b_args = _arg_array(list(zip((_DIFF_SRC, _DIFF_DST, _WORKSPACE), self.mems)))

    def forward(self, x):
        """``(y, idx)``: the maxima and their kernel positions (uint8), for C-contiguous
        ``x`` without NaNs."""
        y = np.empty(self.yshape, np.float32)
        idx = np.empty(self.yshape, np.uint8)
        self._run(self.fwd, self.f_args, self.mems, (x, y, idx))
        return y, idx

    def backward(self, g, idx):
        """The input's gradient for the output gradient ``g`` and the forward's ``idx``."""
        gx = np.empty(self.xshape, np.float32)
        self._run(self.bwd, self.b_args, self.mems,
                  (gx, np.ascontiguousarray(g), np.ascontiguousarray(idx)))
        return gx


class ReluBackward(_Owner):
    """ReLU's gradient from its output, ``g * (y > 0)``, over ``n`` float32 elements in one
    pass (oneDNN's eltwise backward, ``relu_use_dst_for_bwd``). Inside LeNet's batch-64 step,
    both ReLUs' gradients took 0.21 ms here against 0.41 in NumPy (two passes and a bool mask);
    the op sends it gradients from ``elementwise._ONEDNN_MIN`` elements. oneDNN multiplies by
    the 0/1 mask, so an infinite or NaN ``g`` at an inactive element gives NaN (PyTorch: 0),
    which the op checks for, and a negative one -0. (The forward stays NumPy's: oneDNN's gives
    0 for NaN, and with a check for one, mlp128's step was no faster.)"""

    _cache = {}  # (n, threads) -> ReluBackward

    @classmethod
    def get(cls, n, dtype=np.float32):
        """The ``ReluBackward`` for ``n`` elements, or None (oneDNN missing, not float32)."""
        if dtype != np.float32 or not n or _forked or not load():
            return None
        return _built(cls, (n, _thread_count()))

    def _build(self, n):
        md = _md((n,), _A)
        fwd, bwd = ctypes.c_void_p(), ctypes.c_void_p()
        _check(_lib.dnnl_eltwise_forward_primitive_desc_create(
            ctypes.byref(fwd), _engine, _FORWARD_TRAINING, _RELU_USE_DST, md, md, 0.0, 0.0,
            None), "eltwise forward")
        _record("dnnl_primitive_desc_destroy", fwd)  # the backward's hint only
        _check(_lib.dnnl_eltwise_backward_primitive_desc_create(
            ctypes.byref(bwd), _engine, _RELU_USE_DST, md, md, md, 0.0, 0.0, fwd, None),
            "eltwise backward")
        self.bwd = _primitive(bwd)
        self.mems = [_memory(md, None) for _ in range(3)]
        self.args = _arg_array(list(zip((_DST, _DIFF_DST, _DIFF_SRC), self.mems)))

    def __call__(self, g, y):
        """The gradient for C-contiguous float32 ``g`` and ReLU's output ``y`` (``n`` each)."""
        gx = np.empty_like(g)
        self._run(self.bwd, self.args, self.mems, (y, g, gx))
        return gx


class MatMul(_Owner):
    """``a @ b``, plus a bias row where built with one, for 2-D float32 operands of any positive
    strides, into a new C-ordered array: oneDNN's matmul, which adds the bias in its kernel as
    each block of the result is finished, on the thread that computed it. Linear's forward
    ``x @ w.T + b`` runs here (``ember.ops.linear``): (128, 784) @ (784, 512) on two threads of
    the reference machine 264-266 us, against 289-309 in MKL with the bias copied in first and
    277 in PyTorch's ``addmm``; (128, 512) @ (512, 512) 175 against 202 and 184."""

    _cache = {}  # (a's shape and byte strides, n, b's byte strides, bias, threads) -> MatMul

    @classmethod
    def get(cls, a, b, bias):
        """The ``MatMul`` for ``a @ b`` (``bias``: whether a bias row is added), or None where
        oneDNN is missing or the operands are not float32 with positive strides (checked when
        a geometry is first built: the cache key holds what decides it)."""
        if a.dtype != np.float32 or b.dtype != np.float32 or _forked or not (_lib or load()):
            return None
        return _built(cls, (a.shape, a.strides, b.shape[1], b.strides, bias, _thread_count()))

    def _build(self, ashape, astrides, n, bstrides, bias):
        m, k = ashape
        strides = astrides + bstrides
        if 0 in (m, k, n) or min(strides) <= 0 or any(s % 4 for s in strides):
            raise RuntimeError("oneDNN matmul: an empty operand or strides it cannot take")
        a_md = _md_strided(ashape, [s // 4 for s in astrides])
        b_md = _md_strided((k, n), [s // 4 for s in bstrides])
        y_md = _md((m, n), _AB)
        bias_md = _md((1, n), _AB) if bias else None
        pd = ctypes.c_void_p()
        _check(_lib.dnnl_matmul_primitive_desc_create(ctypes.byref(pd), _engine, a_md, b_md,
                                                      bias_md, y_md, None), "matmul")
        self.prim = _primitive(pd)
        self.mems = [_memory(md, None) for md in (a_md, b_md, y_md, bias_md) if md is not None]
        self.args = _arg_array(list(zip((_SRC, _WEIGHTS, _DST, _BIAS), self.mems)))
        self.yshape = (m, n)

    def __call__(self, a, b, bias=None):
        """``a @ b (+ bias)`` for operands of the shapes and strides it was built for."""
        y = np.empty(self.yshape, np.float32)
        self._run(self.prim, self.args, self.mems, (a, b, y) if bias is None else (a, b, y, bias))
        return y


def _scratch(groups):
    """Bind each group of layouts that are never in use at once to one aligned scratch buffer
    (as large as its largest layout needs); returns the buffers, for the owner to keep."""
    buffers = []
    for group in groups:
        group = list({id(lay): lay for lay in group}.values())  # a layout shared by two uses
        size = max(lay.size() for lay in group)
        if size:
            buffers.append(_aligned(size))
            for lay in group:
                lay.bind(buffers[-1][:lay.size()])
    return buffers


class Recurrent(_Owner):
    """oneDNN's primitives for one recurrent layer and direction over a whole sequence
    (time-major, every sequence full length), ``cell``:

    - ``"lstm"``: no projection; PyTorch's gate order (i, f, g, o) is oneDNN's; one bias
      ``b_ih + b_hh`` (4H,).
    - ``"gru"``: oneDNN's linear-before-reset GRU, which is PyTorch's (the hidden part of the
      new gate, ``W_hn h + b_hn``, is multiplied by ``r``); gates in oneDNN's order (z, r, n)
      and four biases ``(b_iz + b_hz, b_ir + b_hr, b_in, b_hn)``.

    ``forward`` and ``backward`` take the weights ``w_ih`` (G*H, I), ``w_hh`` (G*H, H) in that
    order. The forward keeps a workspace (the gates) that backward reads; the backward writes
    the weight gradients over what their buffers held (``_DIFF_WEIGHTS_OVERWRITE``)."""

    _cache = {}  # (cell, sizes) -> Recurrent, or None where oneDNN refused them

    @classmethod
    def get(cls, cell, T, B, I, H, dtype=np.float32):
        """The ``Recurrent`` for this cell and these sizes, or None (oneDNN missing, not
        float32, an empty size, or primitives oneDNN refuses)."""
        if np.dtype(dtype) != np.float32 or 0 in (T, B, I, H) or _forked or not load():
            return None
        return _built(cls, (cell, T, B, I, H, _thread_count()))

    def _build(self, cell, T, B, I, H):
        self.cell, self.dims = cell, (T, B, I, H)
        lstm = cell == "lstm"
        G = 4 if lstm else 3
        self.gates = G
        self.macs = T * B * G * H * (I + H)
        x_md, y_md = _md((T, B, I), _ABC), _md((T, B, H), _ABC)
        s_md, b_md = _md((1, 1, B, H), _ABCD), _md((1, 1, 4, H), _ABCD)
        wi_u, wh_u = _md((1, 1, I, G, H), _LDGOI), _md((1, 1, H, G, H), _LDGOI)
        wi_a, wh_a = _md((1, 1, I, G, H), _ANY), _md((1, 1, H, G, H), _ANY)
        q = _lib.dnnl_primitive_desc_query_md
        c = (s_md,) if lstm else ()  # the cell state's descriptor, LSTM only

        fwd = ctypes.c_void_p()
        if lstm:
            _check(_lib.dnnl_lstm_forward_primitive_desc_create(
                ctypes.byref(fwd), _engine, _FORWARD_TRAINING, _LEFT2RIGHT, x_md, s_md, s_md,
                wi_a, wh_a, None, None, b_md, y_md, s_md, s_md, 0, None), "lstm forward")
        else:
            _check(_lib.dnnl_lbr_gru_forward_primitive_desc_create(
                ctypes.byref(fwd), _engine, _FORWARD_TRAINING, _LEFT2RIGHT, x_md, s_md, wi_a,
                wh_a, b_md, y_md, s_md, 0, None), "gru forward")
        self.fwd = _primitive(fwd)
        self.f_wi = _Layout(wi_u, q(fwd, _Q_EXEC_ARG, _WEIGHTS))
        self.f_wh = _Layout(wh_u, q(fwd, _Q_EXEC_ARG, _WEIGHTS + 1))
        self.ws_bytes = _lib.dnnl_memory_desc_get_size(q(fwd, _Q_WORKSPACE, 0))
        self.ws_md = q(fwd, _Q_WORKSPACE, 0)
        self.free = []  # workspaces whose op was freed, for the next forward

        bwd = ctypes.c_void_p()
        if lstm:
            _check(_lib.dnnl_lstm_backward_primitive_desc_create(
                ctypes.byref(bwd), _engine, _BACKWARD, _LEFT2RIGHT, x_md, s_md, s_md, wi_a, wh_a,
                None, None, b_md, y_md, s_md, s_md, x_md, s_md, s_md, wi_a, wh_a, None, None,
                b_md, y_md, s_md, s_md, _DIFF_WEIGHTS_OVERWRITE, fwd, None), "lstm backward")
        else:
            _check(_lib.dnnl_lbr_gru_backward_primitive_desc_create(
                ctypes.byref(bwd), _engine, _BACKWARD, _LEFT2RIGHT, x_md, s_md, wi_a, wh_a, b_md,
                y_md, s_md, x_md, s_md, wi_a, wh_a, b_md, y_md, s_md, _DIFF_WEIGHTS_OVERWRITE, fwd,
                None),
                "gru backward")
        self.bwd = _primitive(bwd)
        self.b_wi = _Layout(wi_u, q(bwd, _Q_EXEC_ARG, _WEIGHTS))
        self.b_wh = _Layout(wh_u, q(bwd, _Q_EXEC_ARG, _WEIGHTS + 1))
        self.b_gwi = _Layout(wi_u, q(bwd, _Q_EXEC_ARG, _DIFF_WEIGHTS))
        self.b_gwh = _Layout(wh_u, q(bwd, _Q_EXEC_ARG, _DIFF_WEIGHTS + 1))
        self.scratch = _scratch([(lay,) for lay in (self.f_wi, self.f_wh, self.b_wi, self.b_wh,
                                                     self.b_gwi, self.b_gwh)])
        # memories over NumPy arrays, pointed at each call's arrays
        states = ("h0", "hn", "gh0", "ghn") + (("c0", "cn", "gc0", "gcn") if c else ())
        self.mems = {k: _memory(md, None) for k, md in (
            ("x", x_md), ("b", b_md), ("y", y_md), ("ws", self.ws_md), ("gx", x_md),
            ("gb", b_md), ("gy", y_md)) + tuple((k, s_md) for k in states)}

    def _workspace(self):
        """A workspace for one forward (the gates, which its backward reads). Its memory goes
        back to ``free`` when the op lets go of it, so that the next step's forward reuses it
        instead of faulting in fresh pages (gru_char's 42 MB a step took ~10 ms that way)."""
        try:
            base = self.free.pop()
        except IndexError:
            base = np.empty(self.ws_bytes + _ALIGN, np.uint8)
        off = (-address(base)) % _ALIGN
        ws = base[off:off + self.ws_bytes]
        weakref.finalize(ws, self._give_back, base)
        return ws

    def _give_back(self, base):
        if len(self.free) < 2:
            self.free.append(base)

    def _args(self, **arrays):
        """``(argument, memory)`` pairs for the named NumPy arrays (None: left out)."""
        out = []
        for k, a in arrays.items():
            if a is not None:
                _lib.dnnl_memory_set_data_handle(self.mems[k], address(a))
                out.append((_ARGS[k], self.mems[k]))
        return out

    def forward(self, x, h0, c0, w_ih, w_hh, b):
        """``(out (T, B, H), h_n (B, H), c_n (B, H) or None, workspace)`` for float32 ``x``
        (T, B, I), states ``h0``/``c0`` (B, H; None for zeros; ``c0`` ignored for a GRU),
        weights and the bias (4H,)."""
        T, B, I, H = self.dims
        lstm = self.cell == "lstm"
        # contiguous arrays held here: the primitive reads them by address
        x, w_ih, w_hh, b = (np.ascontiguousarray(a) for a in (x, w_ih, w_hh, b))
        h0, c0 = _dense(h0, (B, H)), _dense(c0, (B, H)) if lstm else None
        y = np.empty((T, B, H), np.float32)
        hn = np.empty((B, H), np.float32)
        cn = np.empty((B, H), np.float32) if lstm else None
        ws = self._workspace()
        with self.lock:
            _use_threads(self.threads)
            args = self._args(x=x, h0=h0, c0=c0, b=b, y=y, hn=hn, cn=cn, ws=ws)
            args += [(_WEIGHTS, self.f_wi.load(w_ih)), (_WEIGHTS + 1, self.f_wh.load(w_hh))]
            _execute(self.fwd, args)
            _check(_lib.dnnl_stream_wait(_stream), "stream_wait")
        return y, hn, cn, ws

    def backward(self, x, h0, c0, w_ih, w_hh, b, y, hn, cn, ws, gy, ghn, gcn):
        """``(dx, dh0, dc0 or None, dw_ih, dw_hh, db)`` for the gradients ``gy``, ``ghn`` and
        ``gcn`` of ``out``, ``h_n`` and ``c_n`` (None where nothing flowed, and a GRU's
        ``c``s), the forward's inputs, outputs and workspace."""
        T, B, I, H = self.dims
        G = self.gates
        lstm = self.cell == "lstm"
        x, w_ih, w_hh, b = (np.ascontiguousarray(a) for a in (x, w_ih, w_hh, b))
        h0, gy, ghn = _dense(h0, (B, H)), _dense(gy, (T, B, H)), _dense(ghn, (B, H))
        c0, gcn = (_dense(c0, (B, H)), _dense(gcn, (B, H))) if lstm else (None, None)
        gx, gh0 = np.empty((T, B, I), np.float32), np.empty((B, H), np.float32)
        gc0 = np.empty((B, H), np.float32) if lstm else None
        gb = np.empty(4 * H, np.float32)
        gwi, gwh = np.empty((G * H, I), np.float32), np.empty((G * H, H), np.float32)
        with self.lock:
            _use_threads(self.threads)
            args = self._args(x=x, h0=h0, c0=c0, b=b, y=y, hn=hn, cn=cn, ws=ws, gx=gx, gh0=gh0,
                              gc0=gc0, gb=gb, gy=gy, ghn=ghn, gcn=gcn)
            args += [(_WEIGHTS, self.b_wi.load(w_ih)), (_WEIGHTS + 1, self.b_wh.load(w_hh)),
                     (_DIFF_WEIGHTS, self.b_gwi.target(gwi)),
                     (_DIFF_WEIGHTS + 1, self.b_gwh.target(gwh))]
            _execute(self.bwd, args)
            self.b_gwi.store()
            self.b_gwh.store()
            _check(_lib.dnnl_stream_wait(_stream), "stream_wait")
        return gx, gh0, gc0, gwi, gwh, gb


# execution arguments of Recurrent's named arrays (DNNL_ARG_SRC_1 is the hidden state...)
_ARGS = {"x": _SRC, "h0": _SRC + 1, "c0": _SRC + 2, "b": _BIAS, "y": _DST, "hn": _DST + 1,
         "cn": _DST + 2, "ws": _WORKSPACE, "gx": _DIFF_SRC, "gh0": _DIFF_SRC + 1,
         "gc0": _DIFF_SRC + 2, "gb": _DIFF_BIAS, "gy": _DIFF_DST, "ghn": _DIFF_DST + 1,
         "gcn": _DIFF_DST + 2}
