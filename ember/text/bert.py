"""BERT encoder with Hugging Face's module names, so ``model.safetensors`` loads unchanged.

The layout follows ``transformers.BertModel`` key for key (``embeddings.word_embeddings``,
``encoder.layer.N.attention.self.query``, ``...attention.output.LayerNorm``,
``...intermediate.dense``, ``...output.dense``, ``pooler.dense``). Each layer runs its attention
as one fused ``F.scaled_dot_product_attention`` call; the Linear layers see the batch and sequence
flattened into one GEMM.

Example::

    from ember.text import BertConfig, BertModel

    model = BertModel.from_pretrained("all-MiniLM-L6-v2")     # or a folder with config.json
    out = model(input_ids, attention_mask=mask)               # ids, mask: (N, L) int64
    out.last_hidden_state                                     # (N, L, hidden_size)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np

import ember
import ember.nn.functional as F
from ember import nn
from ember.backend.erf import gelu_f32
from ember.backend.parallel import num_workers, parallel_for
from ember.tensor import Tensor

__all__ = ["BertConfig", "BertModel", "BertOutput", "load_bert_state_dict"]

_ACTIVATIONS = {
    "gelu": lambda x: F.gelu(x),  # the exact erf GELU, as Hugging Face's "gelu"
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
}


_EXACT_GELU = _ACTIVATIONS["gelu"]


@dataclass
class BertConfig:
    """The fields of a Hugging Face ``config.json`` that a BERT encoder needs (same names).

    Example::

        cfg = BertConfig.from_json_file("model/config.json")
        small = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=4, intermediate_size=64)
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    position_embedding_type: str = "absolute"

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be a multiple of "
                             f"num_attention_heads ({self.num_attention_heads})")
        if self.hidden_act not in _ACTIVATIONS:
            raise ValueError(f"hidden_act {self.hidden_act!r} is not supported; expected one of "
                             f"{sorted(_ACTIVATIONS)}")
        if self.position_embedding_type != "absolute":
            raise ValueError("only position_embedding_type='absolute' is supported, got "
                             f"{self.position_embedding_type!r}")

    @classmethod
    def from_dict(cls, d: dict) -> BertConfig:
        """Keep the known keys of a ``config.json`` dict; ignore the rest (architectures...)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def from_json_file(cls, path) -> BertConfig:
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh))


class BertOutput(NamedTuple):
    """``last_hidden_state`` (N, L, H) and ``pooler_output`` (N, H) or None (no pooler)."""

    last_hidden_state: Tensor
    pooler_output: Tensor | None


class BertEmbeddings(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        h = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, h, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, h)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, h)
        self.LayerNorm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        # Not saved (as in Hugging Face's BertEmbeddings); old checkpoints carry it anyway.
        self.register_buffer("position_ids", ember.arange(config.max_position_embeddings)
                             .unsqueeze(0), persistent=False)

    def forward(self, input_ids, token_type_ids=None, position_ids=None):
        length = input_ids.shape[1]
        if length > self.position_embeddings.num_embeddings:
            raise ValueError(f"sequence length {length} exceeds max_position_embeddings "
                             f"{self.position_embeddings.num_embeddings}; truncate the input")
        if position_ids is None:
            position_ids = self.position_ids[:, :length]
        x = self.word_embeddings(input_ids) + self.position_embeddings(position_ids)
        if token_type_ids is None:
            x = x + self.token_type_embeddings.weight[0]  # all type 0: one row, no lookup
        else:
            x = x + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))


def _unhooked(m):
    """Nothing observes or replaces a call of module ``m`` (no hooks on it, none global)."""
    from ember.nn.modules import module as mod

    d = m.__dict__
    return not (d["_forward_hooks"] or d["_forward_pre_hooks"] or d["_backward_hooks"]
                or d["_backward_pre_hooks"] or mod._global_forward_hooks
                or mod._global_forward_pre_hooks)


def _plain_linear(m):
    """``m`` is an unhooked ``nn.Linear`` with a bias: its product may be fused with others."""
    return type(m) is nn.Linear and m.bias is not None and _unhooked(m)


def _inference_f32(*tensors):
    """No gradient is recorded through ``tensors``, all float32 NumPy arrays, and no ONNX
    export is tracing (the fused paths below work on raw arrays, which a trace would not see)."""
    from ember.onnx import is_in_onnx_export

    return (all(t.dtype == ember.float32 and type(t._data) is np.ndarray for t in tensors)
            and not (ember.is_grad_enabled() and any(t.requires_grad for t in tensors))
            and not is_in_onnx_export())


def _fast_inference(dense, *tensors):
    """``dense`` is a plain Linear and no gradient is recorded through it or ``tensors`` (all
    float32): the inference-only fused paths below may run."""
    return _plain_linear(dense) and _inference_f32(dense.weight, dense.bias, *tensors)


# Rows of _add_bias_residual per block when split over two threads. Measured on the idle 2-core
# machine, (4096, 384) bias + residual: one thread, whole arrays 0.94 ms (32K-element blocks
# 1.12); two threads, 32K blocks 1.11 ms (the threads wait for the GIL), 128K blocks 0.75.
_ADD_BLOCK = 1 << 17


def _add_bias_residual(y, bias, residual=None):
    """``y += bias; y += residual`` (the module path's order: same values) in place, in row
    blocks split over the cores (a Linear's own bias pass runs on one)."""
    c = y.shape[-1]
    y2 = y.reshape(-1, c)
    r2 = None if residual is None else residual.reshape(-1, c)
    n = len(y2)
    rows = max(1, _ADD_BLOCK // c)
    split = n >= 2 * rows and num_workers() > 1
    step = rows if split else max(n, 1)

    def run(lo, hi):
        for a in range(lo, hi, step):
            yb = y2[a:min(a + step, hi)]
            np.add(yb, bias, yb)
            if r2 is not None:
                np.add(yb, r2[a:a + len(yb)], yb)
    parallel_for(n, run, min_n=n if split else n + 1, grain=step)


def _dense_residual(dense, dropout, hidden, residual):
    """``dropout(dense(hidden)) + residual``. At inference (see ``_fast_inference``; dropout
    off and unhooked) the product runs without its bias, and bias and residual are added in
    place (in row blocks split over the cores), instead of a bias pass and a new array for the
    sum: MiniLM's attention output (dense + bias + residual) 11.2 -> 10.4 ms on one thread
    (A/B), same values."""
    if (_fast_inference(dense, hidden, residual) and _unhooked(dropout)
            and not (dropout.training and dropout.p > 0)):
        y = F.linear(hidden, dense.weight)
        _add_bias_residual(y._data, dense.bias._data, residual._data)
        return y
    return dropout(dense(hidden)) + residual


class BertSelfAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        h = config.hidden_size
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = h // config.num_attention_heads
        self.query = nn.Linear(h, h)
        self.key = nn.Linear(h, h)
        self.value = nn.Linear(h, h)
        self.dropout_prob = config.attention_probs_dropout_prob

    def forward(self, hidden, mask=None):
        n, length, h = hidden.shape
        heads, d = self.num_attention_heads, self.attention_head_size
        lins = (self.query, self.key, self.value)
        if all(map(_plain_linear, lins)):
            # One (N L, H) x (H, 3H) product instead of three (H, H) ones: MiniLM layer 27 -> 24
            # ms of BLAS on one thread, same values (each output column is its own dot product).
            w = ember.cat([m.weight for m in lins])
            b = ember.cat([m.bias for m in lins])
            if _inference_f32(w, b, hidden):  # the bias pass split over the cores
                qkv = F.linear(hidden, w)
                _add_bias_residual(qkv._data, b._data)
            else:
                qkv = F.linear(hidden, w, b)
            qkv = qkv.view(n, length, 3, heads, d).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)  # (N, heads, L, d) views
        else:
            q, k, v = (m(hidden).view(n, length, heads, d).transpose(1, 2) for m in lins)
        p = self.dropout_prob if self.training else 0.0
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        return ctx.transpose(1, 2).reshape(n, length, h)


class BertSelfOutput(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden, residual):
        return self.LayerNorm(_dense_residual(self.dense, self.dropout, hidden, residual))


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config)

    def forward(self, hidden, mask=None):
        return self.output(self.self(hidden, mask), hidden)


class BertIntermediate(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = _ACTIVATIONS[config.hidden_act]

    def forward(self, hidden):
        d = self.dense
        if self.intermediate_act_fn is _EXACT_GELU and _fast_inference(d, hidden):
            # Inference: the product without its bias, then gelu(y + bias) in place, the bias
            # added in cache: MiniLM's dense + gelu 60.4 -> 56.0 ms on one thread, same values.
            y = F.linear(hidden, d.weight)
            gelu_f32(y._data, d.bias._data, y._data)
            return y
        return self.intermediate_act_fn(d(hidden))


class BertLayerOutput(nn.Module):
    """Hugging Face's ``BertOutput`` module (the FFN's second half); renamed to keep
    ``BertOutput`` for the model's result."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden, residual):
        return self.LayerNorm(_dense_residual(self.dense, self.dropout, hidden, residual))


class BertLayer(nn.Module):
    """Post-LN block: ``x = LN(x + attn(x)); x = LN(x + W2 act(W1 x))``."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertLayerOutput(config)

    def forward(self, hidden, mask=None):
        a = self.attention(hidden, mask)
        return self.output(self.intermediate(a), a)


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, hidden, mask=None):
        for layer in self.layer:
            hidden = layer(hidden, mask)
        return hidden


class BertPooler(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden):
        return ember.tanh(self.dense(hidden[:, 0]))


def _additive_mask(attention_mask, dtype):
    """(N, S) 1/0 mask -> (N, 1, 1, S) float: 0 where attended, dtype's min where padded (as
    Hugging Face's extended attention mask), built with ember ops so that ``ember.onnx.export``
    records it. None when nothing is padded (the unmasked fast path), except while exporting:
    the graph must keep reading the mask whatever the example's values."""
    from ember.onnx import is_in_onnx_export

    if not isinstance(attention_mask, Tensor):
        attention_mask = ember.as_tensor(np.asarray(attention_mask))
    if attention_mask.ndim != 2:
        raise ValueError(f"attention_mask must be (batch, seq_len), got shape "
                         f"{tuple(attention_mask.shape)}")
    if not is_in_onnx_export() and bool(attention_mask._data.all()):
        return None
    npd = np.dtype(dtype.np) if hasattr(dtype, "np") else np.dtype(dtype)
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * float(np.finfo(npd).min)


class BertModel(nn.Module):
    """BERT encoder: embeddings, ``num_hidden_layers`` post-LN transformer layers, optional pooler.

    Args:
        config: a ``BertConfig``.
        add_pooling_layer: build ``pooler.dense`` (tanh of the first token's projection).

    Shape:
        input_ids, attention_mask, token_type_ids: (N, L) integers; attention_mask 1 = real
        token, 0 = padding (padded keys get the float32 minimum before the softmax).
        Returns ``BertOutput(last_hidden_state (N, L, H), pooler_output (N, H) or None)``.

    Example::

        model = BertModel(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=64))
        h = model(ember.tensor([[1, 5, 7, 0]]), attention_mask=ember.tensor([[1, 1, 1, 0]]))[0]
    """

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None):
        if not isinstance(input_ids, Tensor) or input_ids.ndim != 2 or \
                input_ids.dtype.is_floating_point:
            got = (f"shape {tuple(input_ids.shape)}, dtype {input_ids.dtype}"
                   if isinstance(input_ids, Tensor) else type(input_ids).__name__)
            raise ValueError(f"BertModel expects input_ids as an integer Tensor (batch, seq_len),"
                             f" got {got}")
        if attention_mask is not None and tuple(attention_mask.shape) != tuple(input_ids.shape):
            raise ValueError(f"attention_mask shape {tuple(attention_mask.shape)} must equal "
                             f"input_ids shape {tuple(input_ids.shape)}")
        hidden = self.embeddings(input_ids, token_type_ids, position_ids)
        mask = None if attention_mask is None else _additive_mask(attention_mask, hidden.dtype)
        hidden = self.encoder(hidden, mask)
        pooled = self.pooler(hidden) if self.pooler is not None else None
        return BertOutput(hidden, pooled)

    @classmethod
    def from_pretrained(cls, name_or_path, add_pooling_layer: bool = True) -> BertModel:
        """Build from a folder (or a known name, see ``ember.text.resolve``) holding
        ``config.json`` and ``model.safetensors``; returns the model in eval mode."""
        from ember.text._resolve import resolve

        folder = resolve(name_or_path)
        model = cls(BertConfig.from_json_file(os.path.join(folder, "config.json")),
                    add_pooling_layer=add_pooling_layer)
        model.load_state_dict(load_bert_state_dict(os.path.join(folder, "model.safetensors"),
                                                   model))
        return model.eval()


def load_bert_state_dict(path, model: BertModel) -> dict:
    """The tensors of a Hugging Face BERT ``model.safetensors`` as ``model``'s state_dict keys.

    A ``bert.`` prefix (checkpoints of task models) is stripped; non-persistent buffers
    (``embeddings.position_ids``) and, for a model without a pooler, ``pooler.*`` are dropped.
    """
    from ember.io.safetensors import load_file

    sd = load_file(path, dtype=ember.float32)
    sd = {k.removeprefix("bert."): v for k, v in sd.items()}
    sd.pop("embeddings.position_ids", None)
    if model.pooler is None:
        sd = {k: v for k, v in sd.items() if not k.startswith("pooler.")}
    return sd
