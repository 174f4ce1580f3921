"""A plain PyTorch BERT (Hugging Face's module names and math) as the oracle for ember.text.

Embeddings (word + position + token_type, LayerNorm), post-LN layers of self-attention (the
padding mask added as the float32 minimum, as Hugging Face's extended attention mask) and an
erf-GELU feed-forward; mean pooling over the attention mask and L2 normalisation on top.
"""

import math

import torch
from torch import nn


class Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, ids, types=None):
        pos = torch.arange(ids.shape[1])[None]
        types = torch.zeros_like(ids) if types is None else types
        x = self.word_embeddings(ids) + self.token_type_embeddings(types) + \
            self.position_embeddings(pos)
        return self.dropout(self.LayerNorm(x))


class SelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.heads, self.d = c.num_attention_heads, c.hidden_size // c.num_attention_heads
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)
        self.dropout = nn.Dropout(c.attention_probs_dropout_prob)

    def forward(self, h, ext_mask=None):
        n, L, H = h.shape

        def split(t):
            return t.view(n, L, self.heads, self.d).transpose(1, 2)

        q, k, v = split(self.query(h)), split(self.key(h)), split(self.value(h))
        s = q @ k.transpose(-1, -2) / math.sqrt(self.d)
        if ext_mask is not None:
            s = s + ext_mask
        p = self.dropout(s.softmax(-1))
        return (p @ v).transpose(1, 2).reshape(n, L, H)


class AddNorm(nn.Module):
    def __init__(self, c, d_in):
        super().__init__()
        self.dense = nn.Linear(d_in, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, h, residual):
        return self.LayerNorm(self.dropout(self.dense(h)) + residual)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self = SelfAttention(c)
        self.output = AddNorm(c, c.hidden_size)

    def forward(self, h, ext_mask=None):
        return self.output(self.self(h, ext_mask), h)


class Intermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)

    def forward(self, h):
        return nn.functional.gelu(self.dense(h))  # exact erf GELU


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = Attention(c)
        self.intermediate = Intermediate(c)
        self.output = AddNorm(c, c.intermediate_size)

    def forward(self, h, ext_mask=None):
        a = self.attention(h, ext_mask)
        return self.output(self.intermediate(a), a)


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([Layer(c) for _ in range(c.num_hidden_layers)])

    def forward(self, h, ext_mask=None):
        for layer in self.layer:
            h = layer(h, ext_mask)
        return h


class Pooler(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)

    def forward(self, h):
        return torch.tanh(self.dense(h[:, 0]))


def extended_mask(mask, dtype=torch.float32):
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class TorchBert(nn.Module):
    def __init__(self, c, add_pooling_layer=True):
        super().__init__()
        self.embeddings = Embeddings(c)
        self.encoder = Encoder(c)
        self.pooler = Pooler(c) if add_pooling_layer else None

    def forward(self, ids, mask=None, types=None):
        h = self.encoder(self.embeddings(ids, types),
                         None if mask is None else extended_mask(mask))
        return h, (self.pooler(h) if self.pooler is not None else None)


def sentence_embeddings(model, ids, mask):
    """Mean pooling over ``mask`` and L2 normalisation (sentence-transformers' pipeline)."""
    h = model(ids, mask)[0]
    m = mask[..., None].to(h.dtype)
    pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return nn.functional.normalize(pooled, p=2, dim=1)
