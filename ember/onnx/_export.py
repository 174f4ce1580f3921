"""``export``: trace the model twice, check the traces agree, convert each op, write the file.

The second trace runs on inputs whose values differ and whose dynamic axes are a few elements
longer. Comparing the two tells which sizes follow a dynamic axis (they become ``Shape`` reads in
the graph) and catches tensors computed outside the traced ops from the inputs (they would
otherwise be frozen into the file as constants): such an export fails with a clear error.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np

import ember
from ember.onnx._graph import Graph, UnsupportedOperatorError
from ember.onnx._trace import Const, Tracer, Value
from ember.onnx._trace import same as _same
from ember.tensor import Tensor

__all__ = ["export"]

_DELTAS = (3, 5, 7, 11, 13, 17)


def _need_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("ember.onnx.export needs the 'onnx' package: pip install 'ember[onnx]' "
                          "(or pip install onnx onnxruntime)") from None
    return onnx


def _split_args(args):
    if isinstance(args, Tensor):
        args = (args,)
    args = tuple(args)
    kwargs = {}
    if args and isinstance(args[-1], dict):
        args, kwargs = args[:-1], dict(args[-1])
    return args, kwargs


def _flatten(obj, out):
    if isinstance(obj, Tensor):
        out.append(obj)
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            _flatten(o, out)
    elif isinstance(obj, dict):
        for o in obj.values():
            _flatten(o, out)
    return out


def _default_names(model, n):
    try:
        params = [p for p in inspect.signature(model.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        names = [p.name for p in params]
    except (TypeError, ValueError):
        names = []
    return [names[i] if i < len(names) else f"input_{i}" for i in range(n)]


def _axes_of(spec, name):
    """dynamic_axes entry -> {axis: symbol}."""
    if spec is None:
        return {}
    if isinstance(spec, dict):
        return {int(k): str(v) for k, v in spec.items()}
    return {int(k): f"{name}_dynamic_axes_{i + 1}" for i, k in enumerate(spec)}


def _second_input(arr, axes, deltas, rng):
    """The input of the second trace: the values shuffled (same range and value set, so token
    ids stay valid) and the dynamic axes longer by their delta."""
    out = arr
    for ax, sym in axes.items():
        n = arr.shape[ax]
        out = np.take(out, np.arange(n + deltas[sym]) % max(n, 1), axis=ax)
    flat = out.reshape(-1)
    return np.ascontiguousarray(flat[rng.permutation(flat.size)].reshape(out.shape))


def _run(model, params, arrays, positions, args, kwargs, names):
    """One traced forward pass; returns (tracer, graph-input Values, flat outputs)."""
    tr = Tracer(params)
    call = list(args)
    inputs = []
    for arr, pos, name in zip(arrays, positions, names):
        t = ember.from_numpy(arr.copy())
        if arr.dtype.kind == "f":
            t.requires_grad_(True)  # ops take their recording paths: nothing bypasses Function
        inputs.append(tr.bind_input(name, t._data))
        call[pos] = t
    with tr:
        out = model(*call, **kwargs)
    outs = [tr.ref(t) for t in _flatten(out, [])]
    if not outs:
        raise RuntimeError("ember.onnx.export: the model returned no tensors")
    return tr, inputs, outs


def _public_name(fn):
    from ember.onnx.ops import public_name

    return public_name(fn)


def _align(n1, n2):
    from ember.onnx.ops import CONVERTERS, op_key

    if len(n1) != len(n2) or any(op_key(a.fn) != op_key(b.fn) for a, b in zip(n1, n2)):
        raise RuntimeError(
            "ember.onnx.export: the model ran different ops for inputs of another size or other "
            "values (data-dependent control flow); the exported graph would be wrong")
    for a, b in zip(n1, n2):
        a.twin = b
        for va, vb in zip(a.outs, b.outs):
            va.shape2 = vb.shape
        dyn = CONVERTERS[op_key(a.fn)][1] if op_key(a.fn) in CONVERTERS else set()
        for i, (x, y) in enumerate(zip(a.args, b.args)):
            if _same(x, y):
                continue
            if isinstance(x, (Const, Value)) or isinstance(y, (Const, Value)) or i not in dyn:
                what = "tensor" if isinstance(x, (Const, Value)) else "argument"
                raise UnsupportedOperatorError(
                    f"ember.onnx.export: {what} {i} of '{_public_name(a.fn)}' changes with the "
                    f"input ({_describe(x)} vs {_describe(y)}) but is not computed by traced ops "
                    "(a value computed with NumPy, .item() or Python from an input is frozen "
                    "into the graph); compute it with ember ops on tensors")


def _describe(x):
    if isinstance(x, (Const, Value)):
        return f"shape {tuple(x.shape)}"
    return repr(x)


def _ir_version(onnx, opset):
    best = None
    for row in onnx.helper.VERSION_TABLE:
        ir, ops = row[1], row[2]
        if ops >= opset and (best is None or ir < best):
            best = ir
    return min(best or onnx.IR_VERSION, 10)


def _value_info(onnx, name, shape, shape2, dtype, syms):
    dims = [syms.get(k, d) if d == d2 else syms.get(k, f"{name}_dim_{k}")
            for k, (d, d2) in enumerate(zip(shape, shape2))]
    elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    return onnx.helper.make_tensor_value_info(name, elem, dims)


def export(model, args, f=None, input_names=None, output_names=None, dynamic_axes=None,
           opset_version=17, do_constant_folding=True, export_params=True, verbose=False,
           metadata=None):
    onnx = _need_onnx()
    from ember.onnx.ops import convert

    if opset_version < 17:
        raise ValueError(f"ember.onnx.export supports opset_version >= 17 (LayerNormalization), "
                         f"got {opset_version}")
    args, kwargs = _split_args(args)
    positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
    if not positions:
        raise TypeError("ember.onnx.export: args must contain at least one Tensor input")
    arrays = [np.ascontiguousarray(args[i]._data) for i in positions]
    names = list(input_names or [])[:len(arrays)]
    names += _default_names(model, len(arrays))[len(names):]
    if len(set(names)) != len(names):
        raise ValueError(f"input_names must be unique, got {names}")
    dynamic_axes = dict(dynamic_axes or {})
    in_axes = [_axes_of(dynamic_axes.get(n), n) for n in names]
    symbols = sorted({s for ax in in_axes for s in ax.values()})
    deltas = {s: _DELTAS[i % len(_DELTAS)] + 6 * (i // len(_DELTAS)) for i, s in
              enumerate(symbols)}
    rng = np.random.default_rng(0)
    arrays2 = [_second_input(a, ax, deltas, rng) for a, ax in zip(arrays, in_axes)]

    params = {}
    for n, p in list(model.named_parameters()) + list(model.named_buffers()):
        params.setdefault(id(p._data), n)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    state = ember.get_rng_state()
    try:
        tr1, ins1, outs1 = _run(model, params, arrays, positions, args,
                                kwargs, names)
        try:
            tr2, ins2, outs2 = _run(model, params, arrays2, positions, args,
                                    kwargs, names)
        except (RuntimeError, ValueError, IndexError) as e:
            raise RuntimeError(f"ember.onnx.export: the model fails on inputs resized along "
                               f"dynamic_axes {dynamic_axes}: {e}") from e
    finally:
        for m, t in modes:
            m.training = t
        ember.set_rng_state(state)
    for a, b in zip(ins1, ins2):
        a.shape2 = b.shape
    _align(tr1.nodes, tr2.nodes)
    for a, b in zip(outs1, outs2):
        if isinstance(a, Value) and isinstance(b, Value):
            a.shape2 = b.shape
        elif not _same(a, b):
            raise UnsupportedOperatorError(
                "ember.onnx.export: an output of the model changes with the input but is not "
                "computed by traced ops")

    out_names = list(output_names or [])[:len(outs1)]
    out_names += [("output" if len(outs1) == 1 else f"output_{i}")
                  for i in range(len(out_names), len(outs1))]
    g = Graph(opset_version, ins1, do_constant_folding)
    for v in ins1:
        g.reserve(v.name)
    for node in tr1.nodes:
        for v in node.outs:
            g.reserve(v.name)
    claimed = set()
    for v, name in zip(outs1, out_names):  # outputs produced by ops get their final names
        if isinstance(v, Value) and v.kind == "act" and id(v) not in claimed:
            claimed.add(id(v))
            v.name = name
            g.reserve(name)
    for node in tr1.nodes:
        convert(g, node)

    dim_syms = {}
    for v, ax in zip(ins1, in_axes):
        for k, s in ax.items():
            dim_syms[(v.shape[k], v.shape2[k])] = s
    graph_outputs = []
    for i, (v, name) in enumerate(zip(outs1, out_names)):
        src = g.name(v)
        if src != name:
            g.op("Identity", [src], [name])
        s1 = v.shape
        s2 = v.shape2 if isinstance(v, Value) and v.shape2 is not None else s1
        syms = {k: dim_syms.get((a, b)) for k, (a, b) in enumerate(zip(s1, s2)) if a != b}
        syms = {k: s for k, s in syms.items() if s}
        syms.update(_axes_of(dynamic_axes.get(name), name))
        graph_outputs.append(_value_info(onnx, name, s1, s2, v.dtype, syms))
    used = {i for n in g.nodes for i in n.input} | set(out_names)
    for v in ins1:
        if v.name not in used:
            warnings.warn(
                f"ember.onnx.export: input '{v.name}' is not used by the exported graph; if the "
                "model reads it only for some values (e.g. skips an attention mask that pads "
                "nothing), the graph is wrong for the others", UserWarning, stacklevel=3)
    g.initializers = [(n, a) for n, a in g.initializers if n in used]  # drop unused constants
    graph_inputs = [_value_info(onnx, v.name, v.shape, v.shape2, v.dtype, ax)
                    for v, ax in zip(ins1, in_axes)]
    if not export_params:
        graph_inputs += [onnx.helper.make_tensor_value_info(
            name, onnx.helper.np_dtype_to_tensor_dtype(np.asarray(a).dtype), list(np.shape(a)))
            for name, a in g.initializers]
    graph = onnx.helper.make_graph(g.nodes, type(model).__name__, graph_inputs, graph_outputs)
    if export_params:
        g.fill_initializers(graph)
    proto = onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid("", opset_version)],
        producer_name="ember", producer_version=ember.__version__,
        ir_version=_ir_version(onnx, opset_version))
    for k, val in (metadata or {}).items():
        proto.metadata_props.add(key=str(k), value=str(val))
    if verbose:
        print(onnx.helper.printable_graph(proto.graph))
    if f is not None:
        onnx.save_model(proto, f)
    return proto
