"""Sentence embeddings: a BERT encoder, mean pooling over real tokens, L2 normalisation.

``SentenceEncoder`` reproduces sentence-transformers' ``Transformer -> Pooling(mean) ->
Normalize`` pipeline. Tokenisation uses the ``tokenizers`` package on the model's
``tokenizer.json`` (truncation to ``max_seq_length``, from ``sentence_bert_config.json`` when the
folder has one; padding to the longest text in each batch).

Example::

    from ember.text import SentenceEncoder

    enc = SentenceEncoder.from_pretrained("all-MiniLM-L6-v2")
    emb = enc.encode(["A man is eating food.", "Someone is having a meal."])   # (2, 384)
    (emb[0] * emb[1]).sum()                                                    # cosine similarity

Fine-tuning: ``enc(enc.tokenize(texts))`` runs with autograd (and dropout in train mode) and
returns the (N, H) embeddings, so a head on top trains with any ember optimiser.
"""

from __future__ import annotations

import json
import os

import numpy as np

import ember
import ember.nn.functional as F
from ember import nn
from ember.tensor import Tensor, _wrap
from ember.text._resolve import resolve
from ember.text.bert import BertConfig, BertModel, load_bert_state_dict

__all__ = ["SentenceEncoder", "load_tokenizer", "mean_pool"]

_INSTALL = 'pip install "ember[text]"'


def load_tokenizer(path, max_length: int):
    """A ``tokenizers.Tokenizer`` from ``tokenizer.json`` that truncates to ``max_length`` tokens
    (special tokens included) and pads each batch to its longest text."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise ImportError(f"ember.text needs the 'tokenizers' package: {_INSTALL}") from None
    tok = Tokenizer.from_file(os.fspath(path))
    # The file may carry its own fixed padding/truncation (all-MiniLM-L6-v2's pads to 128).
    tok.no_padding()
    tok.enable_truncation(max_length=max_length)
    pad_id = tok.token_to_id("[PAD]")
    tok.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")
    return tok


def _read_json(path):
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


class SentenceEncoder(nn.Module):
    """BERT + mean pooling (+ L2 normalisation in ``encode``), sentence-transformers style.

    Args:
        model: the ``BertModel``.
        tokenizer: a ``tokenizers.Tokenizer`` (see ``load_tokenizer``) or None (then only
            ``forward`` on token ids works).
        max_seq_length: longest token sequence, special tokens included; longer texts are cut.
        do_lower_case: lowercase texts before tokenising (sentence-transformers' option).
    """

    def __init__(self, model: BertModel, tokenizer=None, max_seq_length: int = 256,
                 do_lower_case: bool = False):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.max_seq_length = int(max_seq_length)
        self.do_lower_case = bool(do_lower_case)

    @classmethod
    def from_pretrained(cls, name_or_path, max_seq_length: int | None = None) -> SentenceEncoder:
        """Load a known model (``"all-MiniLM-L6-v2"``) or a folder with ``config.json``,
        ``model.safetensors`` and ``tokenizer.json``; returns the encoder in eval mode.

        Example::

            enc = SentenceEncoder.from_pretrained("all-MiniLM-L6-v2")
            enc = SentenceEncoder.from_pretrained("path/to/folder", max_seq_length=128)
        """
        folder = resolve(name_or_path, ("config.json", "model.safetensors", "tokenizer.json"))
        config = BertConfig.from_json_file(os.path.join(folder, "config.json"))
        st = _read_json(os.path.join(folder, "sentence_bert_config.json"))
        if max_seq_length is None:
            tk = _read_json(os.path.join(folder, "tokenizer_config.json"))
            max_seq_length = st.get("max_seq_length") or tk.get("model_max_length") or \
                config.max_position_embeddings
        max_seq_length = min(int(max_seq_length), config.max_position_embeddings)
        bert = BertModel(config, add_pooling_layer=False)  # the pooler is unused by mean pooling
        bert.load_state_dict(load_bert_state_dict(os.path.join(folder, "model.safetensors"),
                                                  bert))
        tok = load_tokenizer(os.path.join(folder, "tokenizer.json"), max_seq_length)
        return cls(bert, tok, max_seq_length, st.get("do_lower_case", False)).eval()

    @property
    def embedding_dim(self) -> int:
        return self.model.config.hidden_size

    def tokenize(self, texts) -> dict:
        """``{"input_ids", "attention_mask", "token_type_ids"}``: int64 (N, L) tensors, L the
        longest text in ``texts`` (at most ``max_seq_length``)."""
        if self.tokenizer is None:
            raise RuntimeError("this SentenceEncoder has no tokenizer; build it with "
                               "from_pretrained() or pass tokenizer=")
        texts = _check_texts(texts)
        if self.do_lower_case:
            texts = [t.lower() for t in texts]
        encs = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encs], dtype=np.int64).reshape(len(texts), -1)
        mask = np.array([e.attention_mask for e in encs], dtype=np.int64).reshape(ids.shape)
        types = np.array([e.type_ids for e in encs], dtype=np.int64).reshape(ids.shape)
        return {"input_ids": _wrap(ids), "attention_mask": _wrap(mask),
                "token_type_ids": _wrap(types)}

    def forward(self, features: dict) -> Tensor:
        """Mean-pooled (not normalised) embeddings (N, H) of tokenised ``features``."""
        mask = features["attention_mask"]
        hidden = self.model(features["input_ids"], attention_mask=mask,
                            token_type_ids=features.get("token_type_ids")).last_hidden_state
        return mean_pool(hidden, mask)

    def encode(self, sentences, batch_size: int = 32, normalize: bool = True,
               convert_to_numpy: bool = False):
        """Embed ``sentences`` (a str or a list of str) without gradients, in eval mode.

        Returns a Tensor (N, H) (or (H,) for a single str), L2-normalised unless
        ``normalize=False``; a NumPy array with ``convert_to_numpy=True``. Texts are batched
        longest-first (less padding) and returned in the input order.
        """
        single = isinstance(sentences, str)
        texts = _check_texts([sentences] if single else sentences)
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.embedding_dim), dtype=np.float32)
        was_training = self.training
        self.eval()
        try:
            with ember.no_grad():
                for i in range(0, len(texts), int(batch_size)):
                    idx = order[i:i + int(batch_size)]
                    emb = self(self.tokenize([texts[j] for j in idx]))
                    if normalize:
                        emb = F.normalize(emb, p=2.0, dim=1)
                    out[idx] = emb._data
        finally:
            self.train(was_training)
        if single:
            out = out[0]
        return out if convert_to_numpy else _wrap(out)


def mean_pool(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean of ``hidden`` (N, L, H) over the positions where ``attention_mask`` (N, L) is 1."""
    if not isinstance(attention_mask, Tensor):
        attention_mask = ember.as_tensor(np.asarray(attention_mask))
    # ember ops throughout, so that an ONNX export reads the mask instead of freezing it.
    m = attention_mask.to(hidden.dtype)
    count = m.sum(1, keepdim=True).clamp(min=1e-9)  # as sentence-transformers
    return ember.matmul(m.unsqueeze(1), hidden).squeeze(1) / count


def _check_texts(texts):
    if isinstance(texts, str) or not hasattr(texts, "__len__"):
        raise TypeError(f"expected a list of str, got {type(texts).__name__}")
    bad = [type(t).__name__ for t in texts if not isinstance(t, str)]
    if bad:
        raise TypeError(f"expected a list of str, got an element of type {bad[0]}")
    return list(texts)
