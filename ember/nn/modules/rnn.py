"""Recurrent layers: ``RNN``, ``LSTM``, ``GRU`` and their cells, with PyTorch's parameters.

Weights are named and laid out as PyTorch's (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``,
``bias_hh_l0``, ``weight_hr_l0`` for projections, ``_reverse`` for the backward direction; gate
order LSTM (i, f, g, o), GRU (r, z, n)), so a PyTorch state_dict loads unchanged. Each layer and
direction runs as one fused op over the whole sequence (see ``ember.ops.recurrent``).

Example::

    lstm = nn.LSTM(10, 20, num_layers=2, batch_first=True)
    out, (h_n, c_n) = lstm(ember.randn(3, 5, 10))   # out: (3, 5, 20); h_n, c_n: (2, 3, 20)
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

import ember
from ember.nn import functional as F
from ember.nn.modules.module import Module
from ember.nn.parameter import Parameter
from ember.ops.recurrent import GRULayer, LSTMLayer, RNNLayer
from ember.tensor import Tensor, _wrap

__all__ = ["GRU", "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNBase", "RNNCell", "RNNCellBase"]

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _packed_type():
    try:
        from ember.nn.utils.rnn import PackedSequence
    except ImportError:
        return None
    return PackedSequence


class RNNBase(Module):
    """Base of ``RNN``/``LSTM``/``GRU``: parameters, checks and the layer/direction loop."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        if (not isinstance(dropout, numbers.Number) or isinstance(dropout, bool)
                or not 0 <= dropout <= 1):
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                          "non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=3)
        if not isinstance(bias, bool):
            raise TypeError(f"bias should be of type bool, got: {type(bias).__name__}")
        if not isinstance(batch_first, bool):
            raise TypeError(f"batch_first should be of type bool, got: {type(batch_first).__name__}")
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(v, int):
                raise TypeError(f"{name} should be of type int, got: {type(v).__name__}")
            if v <= 0:
                raise ValueError(f"{name} must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if mode not in _GATES:
            raise ValueError("Unrecognized RNN mode: " + mode)
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional, self.proj_size = float(dropout), bidirectional, proj_size
        gate_size = _GATES[mode] * hidden_size
        real_hidden = proj_size if proj_size > 0 else hidden_size
        ndir = 2 if bidirectional else 1
        self._flat_weights_names, self._all_weights = [], []
        for layer in range(num_layers):
            for direction in range(ndir):
                layer_in = input_size if layer == 0 else real_hidden * ndir
                shapes = [(gate_size, layer_in), (gate_size, real_hidden)]
                names = ["weight_ih_l{}{}", "weight_hh_l{}{}"]
                if bias:
                    shapes += [(gate_size,), (gate_size,)]
                    names += ["bias_ih_l{}{}", "bias_hh_l{}{}"]
                if proj_size > 0:
                    shapes.append((proj_size, hidden_size))
                    names.append("weight_hr_l{}{}")
                suffix = "_reverse" if direction == 1 else ""
                names = [n.format(layer, suffix) for n in names]
                for n, s in zip(names, shapes):
                    setattr(self, n, Parameter(ember.empty(*s, device=device, dtype=dtype)))
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    @property
    def _flat_weights(self):
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self):
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    def flatten_parameters(self):
        """Accepted for PyTorch compatibility: ember's weights need no flattening (a no-op)."""

    def reset_parameters(self):
        """PyTorch's default init: every weight uniform(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        with ember.no_grad():
            for w in self.parameters():
                w.uniform_(-stdv, stdv)

    def extra_repr(self):
        s = "{input_size}, {hidden_size}"
        if self.proj_size != 0:
            s += ", proj_size={proj_size}"
        if self.num_layers != 1:
            s += ", num_layers={num_layers}"
        if self.bias is not True:
            s += ", bias={bias}"
        if self.batch_first is not False:
            s += ", batch_first={batch_first}"
        if self.dropout != 0:
            s += ", dropout={dropout}"
        if self.bidirectional is not False:
            s += ", bidirectional={bidirectional}"
        return s.format(**self.__dict__)

    # ---------------------------------------------------------------- forward
    def _check_input(self, input, name):
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: expected input to be a Tensor, got {type(input).__name__}")
        if input.dim() not in (2, 3):
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.dim()}D"
                             + (" tensor instead" if name == "RNN" else " instead"))
        w = self._parameters[self._flat_weights_names[0]]
        if input.dtype != w.dtype:
            raise ValueError(f"RNN input dtype ({input.dtype}) does not match weight dtype "
                             f"({w.dtype}). Convert input: input.to({w.dtype}), or convert model: "
                             f"model.to({input.dtype})")
        if input.size(-1) != self.input_size:
            raise RuntimeError("input.size(-1) must be equal to input_size. Expected "
                               f"{self.input_size}, got {input.size(-1)}")
        if input.shape[1 if self.batch_first and input.dim() == 3 else 0] == 0:
            raise RuntimeError("Expected sequence length to be larger than 0 in RNN")

    def _expected(self, batch, size):
        return (self.num_layers * (2 if self.bidirectional else 1), batch, size)

    def _check_hidden(self, hx, expected, msg="Expected hidden size {}, got {}"):
        if tuple(hx.shape) != expected:
            raise RuntimeError(msg.format(expected, list(hx.shape)))

    def _run(self, x, h0, c0, bs=None):
        """``x`` time-major (T, B, I); ``h0``/``c0`` (L*D, B, *) or None -> (out, h_n[, c_n]).
        ``bs``: rows active per step for a packed batch (sorted by decreasing length)."""
        ndir = 2 if self.bidirectional else 1
        p = self._parameters
        names = self._all_weights
        hs, cs = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(ndir):
                k = layer * ndir + d
                ws = [p[n] for n in names[k]]
                h = None if h0 is None else h0[k]
                rev = d == 1
                if self.mode == "LSTM":
                    c = None if c0 is None else c0[k]
                    wi, wh = ws[0], ws[1]
                    bi, bh = (ws[2], ws[3]) if self.bias else (None, None)
                    wr = ws[-1] if self.proj_size > 0 else None
                    o, hn, cn = LSTMLayer.apply(x, h, c, wi, wh, bi, bh, wr, rev, bs)
                    cs.append(cn)
                else:
                    bi, bh = (ws[2], ws[3]) if self.bias else (None, None)
                    if self.mode == "GRU":
                        o, hn = GRULayer.apply(x, h, ws[0], ws[1], bi, bh, rev, bs)
                    else:
                        o, hn = RNNLayer.apply(x, h, ws[0], ws[1], bi, bh,
                                               self.mode == "RNN_RELU", rev, bs)
                outs.append(o)
                hs.append(hn)
            x = outs[0] if ndir == 1 else ember.cat(outs, -1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        h_n = hs[0].unsqueeze(0) if len(hs) == 1 else ember.stack(hs)
        if self.mode != "LSTM":
            return x, h_n
        return x, h_n, (cs[0].unsqueeze(0) if len(cs) == 1 else ember.stack(cs))

    def _forward(self, input, hx, name):
        packed = _packed_type()
        if packed is not None and isinstance(input, packed):
            return self._forward_packed(input, hx, packed)
        self._check_input(input, name)
        lstm = self.mode == "LSTM"
        batched = input.dim() == 3
        bdim = 0 if self.batch_first else 1
        if not batched:
            input = input.unsqueeze(bdim)
        if hx is not None:
            hs = tuple(hx) if lstm else (hx,)
            want = 3 if batched else 2
            if any(h.dim() != want for h in hs):
                kind = "batched 3-D" if batched else "unbatched 2-D"
                if lstm:
                    dims = ", ".join(f"{h.dim()}-D" for h in hs)
                    raise RuntimeError(f"For {kind} input, hx and cx should also be {want}-D but "
                                       f"got ({dims}) tensors")
                raise RuntimeError(f"For {kind} input, hx should also be {want}-D but got "
                                   f"{hx.dim()}-D tensor")
            if not batched:
                hs = tuple(h.unsqueeze(1) for h in hs)
        batch = input.size(bdim)
        real = self.proj_size if self.proj_size > 0 else self.hidden_size
        h0 = c0 = None
        if hx is not None:
            h0 = hs[0]
            if lstm:
                c0 = hs[1]
                self._check_hidden(h0, self._expected(batch, real), "Expected hidden[0] size {}, got {}")
                self._check_hidden(c0, self._expected(batch, self.hidden_size),
                                   "Expected hidden[1] size {}, got {}")
            else:
                self._check_hidden(h0, self._expected(batch, real))
        x = input.transpose(0, 1) if self.batch_first else input
        res = self._run(x, h0, c0)
        out = res[0].transpose(0, 1) if self.batch_first else res[0]
        hid = res[1:]
        if not batched:
            out = out.squeeze(bdim)
            hid = tuple(h.squeeze(1) for h in hid)
        return out, (hid if lstm else hid[0])

    def _forward_packed(self, input, hx, packed):
        """A PackedSequence runs padded (T, B, *) in sorted order; each fused op keeps the state
        of sequences that have ended (or, backwards, not yet begun) unchanged."""
        data, batch_sizes, sorted_idx, unsorted_idx = input
        lstm = self.mode == "LSTM"
        bs = batch_sizes._data.astype(np.int64)
        T, B, N = len(bs), int(bs[0]), data.shape[0]
        if data.dim() != 2:
            raise RuntimeError(f"input must have 2 dimensions, got {data.dim()}")
        if data.size(-1) != self.input_size:
            raise RuntimeError("input.size(-1) must be equal to input_size. Expected "
                               f"{self.input_size}, got {data.size(-1)}")
        t_idx = np.repeat(np.arange(T), bs)
        b_idx = np.concatenate([np.arange(n) for n in bs])
        pos = np.full((T, B), N, np.int64)
        pos[t_idx, b_idx] = np.arange(N)
        x = ember.cat([data, ember.zeros(1, data.shape[1], dtype=data.dtype)])[_wrap(pos)]
        real = self.proj_size if self.proj_size > 0 else self.hidden_size
        h0 = c0 = None
        if hx is not None:
            hs = tuple(hx) if lstm else (hx,)
            if sorted_idx is not None:
                hs = tuple(h[:, sorted_idx] for h in hs)
            h0 = hs[0]
            if lstm:
                c0 = hs[1]
                self._check_hidden(h0, self._expected(B, real), "Expected hidden[0] size {}, got {}")
                self._check_hidden(c0, self._expected(B, self.hidden_size),
                                   "Expected hidden[1] size {}, got {}")
            else:
                self._check_hidden(h0, self._expected(B, real))
        res = self._run(x, h0, c0, bs)
        out = packed(res[0][_wrap(t_idx), _wrap(b_idx)], batch_sizes, sorted_idx, unsorted_idx)
        hid = res[1:]
        if unsorted_idx is not None:
            hid = tuple(h[:, unsorted_idx] for h in hid)
        return out, (hid if lstm else hid[0])


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or relu).

    Args: input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=False, dropout=0.0, bidirectional=False.
    Returns ``(output, h_n)``.
    """

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            self.nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            self.nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if self.nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif self.nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{self.nonlinearity}'. Select from 'tanh' or "
                             "'relu'.")
        super().__init__(mode, *args, **kwargs)

    def forward(self, input, hx=None):
        return self._forward(input, hx, "RNN")


class LSTM(RNNBase):
    """Long short-term memory over a sequence; gates (i, f, g, o) as PyTorch's.

    Args: input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, proj_size=0.
    Returns ``(output, (h_n, c_n))``.

    Example::

        lstm = nn.LSTM(128, 256)
        out, (h, c) = lstm(ember.randn(32, 8, 128))        # (T, B, I) -> (T, B, 256)
    """

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)

    def forward(self, input, hx=None):
        return self._forward(input, hx, "LSTM")


class GRU(RNNBase):
    """Gated recurrent unit over a sequence; gates (r, z, n) as PyTorch's.

    Args: input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False. Returns ``(output, h_n)``.
    """

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)

    def forward(self, input, hx=None):
        return self._forward(input, hx, "GRU")


class RNNCellBase(Module):
    """Base of the cells: ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H), ``bias_ih``, ``bias_hh``."""

    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        g = num_chunks * hidden_size
        self.weight_ih = Parameter(ember.empty(g, input_size, device=device, dtype=dtype))
        self.weight_hh = Parameter(ember.empty(g, hidden_size, device=device, dtype=dtype))
        if bias:
            self.bias_ih = Parameter(ember.empty(g, device=device, dtype=dtype))
            self.bias_hh = Parameter(ember.empty(g, device=device, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def extra_repr(self):
        s = "{input_size}, {hidden_size}"
        if "bias" in self.__dict__ and self.bias is not True:
            s += ", bias={bias}"
        if "nonlinearity" in self.__dict__ and self.nonlinearity != "tanh":
            s += ", nonlinearity={nonlinearity}"
        return s.format(**self.__dict__)

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size)
        with ember.no_grad():
            for w in self.parameters():
                w.uniform_(-stdv, stdv)

    def _prep(self, input, hx, name, what="hidden"):
        if input.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if input.size(-1) != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {input.size(-1)} "
                               f"expected {self.input_size}")
        if what == "hx" and hx is not None:  # LSTMCell's (h, c)
            if isinstance(hx, Tensor):
                raise TypeError("lstm_cell(): argument 'hx' (position 2) must be tuple of "
                                "Tensors, not Tensor")
            if len(hx) != 2:
                raise RuntimeError("lstm_cell expects two hidden states")
        hs = () if hx is None else (tuple(hx) if what == "hx" else (hx,))
        for i, h in enumerate(hs):
            if h.dim() not in (1, 2):
                label = f"hx[{i}]" if what == "hx" else "hidden"
                raise ValueError(f"{name}: Expected {label} to be 1D or 2D, got {h.dim()}D instead")
        batched = input.dim() == 2
        if not batched:
            input = input.unsqueeze(0)
            hs = tuple(h.unsqueeze(0) for h in hs)
        for i, h in enumerate(hs):
            if h.size(0) != input.size(0):
                raise RuntimeError(f"Input batch size {input.size(0)} doesn't match hidden{i} "
                                   f"batch size {h.size(0)}")
            if h.size(1) != self.hidden_size:
                raise RuntimeError(f"hidden{i} has inconsistent hidden_size: got {h.size(1)}, "
                                   f"expected {self.hidden_size}")
        if not hs:
            z = ember.zeros(input.size(0), self.hidden_size, dtype=input.dtype)
            hs = (z, z) if what == "hx" else (z,)
        return input.unsqueeze(0), hs, batched


class RNNCell(RNNCellBase):
    """One Elman RNN step: ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (or relu)."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None,
                 dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=1, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        x, (h,), batched = self._prep(input, hx, "RNNCell")
        if self.nonlinearity not in ("tanh", "relu"):
            raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
        _, out = RNNLayer.apply(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                                self.nonlinearity == "relu", False)
        return out if batched else out.squeeze(0)


class LSTMCell(RNNCellBase):
    """One LSTM step: ``(h', c') = cell(x, (h, c))``."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=4, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        x, (h, c), batched = self._prep(input, hx, "LSTMCell", "hx")
        _, h1, c1 = LSTMLayer.apply(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih,
                                    self.bias_hh, None, False)
        return (h1, c1) if batched else (h1.squeeze(0), c1.squeeze(0))


class GRUCell(RNNCellBase):
    """One GRU step: ``h' = cell(x, h)``."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=3, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        x, (h,), batched = self._prep(input, hx, "GRUCell")
        _, out = GRULayer.apply(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                                False)
        return out if batched else out.squeeze(0)
