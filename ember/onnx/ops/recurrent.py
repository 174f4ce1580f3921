"""Converters for the fused recurrent layers: one ONNX ``LSTM``/``GRU``/``RNN`` node per layer
and direction.

PyTorch's gate blocks are (i, f, g, o) for LSTM and (r, z, n) for GRU; ONNX wants (i, o, f, c)
and (z, r, h). The weights are reordered into new initializers; PyTorch's GRU applies the reset
gate after the hidden matmul, which is ONNX's ``linear_before_reset=1``.
"""

from __future__ import annotations

import numpy as np

from ember.onnx._trace import Const, Value
from ember.onnx.ops import converter, unsupported
from ember.ops import recurrent as RC

__all__ = []

_LSTM_TO_ONNX = [0, 3, 1, 2]
_GRU_TO_ONNX = [1, 0, 2]


def _array(node, ref, what):
    if isinstance(ref, Const) or (isinstance(ref, Value) and ref.kind == "param"):
        return np.asarray(ref.array)
    unsupported(node, f"a computed {what} (weights must be parameters)")


def _gates(a, perm):
    n = len(perm)
    return a.reshape((n, -1) + a.shape[1:])[perm].reshape(a.shape)


def _recurrent(g, node, op, perm, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse, **attrs):
    hidden = w_hh.shape[1]
    wname = w_ih.name if isinstance(w_ih, Value) else "rnn"
    base = wname.rsplit(".", 1)[0] if "." in wname else wname
    ins = [g.name(x),
           g.const(_gates(_array(node, w_ih, "weight_ih"), perm)[None], f"{base}.onnx_W"),
           g.const(_gates(_array(node, w_hh, "weight_hh"), perm)[None], f"{base}.onnx_R")]
    if b_ih is not None:
        b = np.concatenate([_gates(_array(node, b_ih, "bias_ih"), perm),
                            _gates(_array(node, b_hh, "bias_hh"), perm)])
        ins.append(g.const(b[None], f"{base}.onnx_B"))
    else:
        ins.append("")
    ins.append("")  # sequence_lens: every sequence is full length
    states = [h0] + ([c0] if op == "LSTM" else [])
    for s in states:
        ins.append("" if s is None else g.unsqueeze(g.name(s), [0]))
    while ins and ins[-1] == "":
        ins.pop()
    n_out = len(node.outs) + 0
    outs = g.op(op, ins, n_out=n_out, hidden_size=int(hidden),
                direction="reverse" if reverse else "forward", **attrs)
    y = g.squeeze(outs[0], [1], node.outs[0].name)
    rest = [g.squeeze(o, [0], v.name) for o, v in zip(outs[1:], node.outs[1:])]
    return [y] + rest


def _packed_check(node, n):
    """The first ``n`` arguments; the optional trailing per-step batch sizes must be None."""
    if any(a is not None for a in node.args[n:]):
        unsupported(node, "a PackedSequence input")
    return node.args[:n]


@converter(RC.LSTMLayer)
def _lstm(g, node):
    x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, reverse = _packed_check(node, 9)
    if w_hr is not None:
        unsupported(node, "proj_size > 0")
    return _recurrent(g, node, "LSTM", _LSTM_TO_ONNX, x, h0, c0, w_ih, w_hh, b_ih, b_hh,
                      reverse)


@converter(RC.GRULayer)
def _gru(g, node):
    x, h0, w_ih, w_hh, b_ih, b_hh, reverse = _packed_check(node, 7)
    return _recurrent(g, node, "GRU", _GRU_TO_ONNX, x, h0, None, w_ih, w_hh, b_ih, b_hh,
                      reverse, linear_before_reset=1)


@converter(RC.RNNLayer)
def _rnn(g, node):
    x, h0, w_ih, w_hh, b_ih, b_hh, relu, reverse = _packed_check(node, 8)
    return _recurrent(g, node, "RNN", [0], x, h0, None, w_ih, w_hh, b_ih, b_hh, reverse,
                      activations=["Relu" if relu else "Tanh"])
