"""Variable-length sequences: ``pad_sequence``, ``PackedSequence``, ``pack_padded_sequence``,
``pad_packed_sequence``, ``pack_sequence`` (PyTorch's ``torch.nn.utils.rnn``).

Example::

    seqs = [ember.ones(3, 8), ember.ones(1, 8)]
    padded = pad_sequence(seqs, batch_first=True)                      # (2, 3, 8)
    packed = pack_padded_sequence(padded, [3, 1], batch_first=True)
    out, lengths = pad_packed_sequence(packed, batch_first=True)
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ember.autograd.function import Function
from ember.tensor import Tensor, _wrap

__all__ = ["PackedSequence", "pad_sequence", "pack_padded_sequence", "pad_packed_sequence",
           "pack_sequence", "unpad_sequence", "unpack_sequence", "invert_permutation"]


class PackedSequence(namedtuple("PackedSequence_",
                                ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])):
    """Time-major packed batch: ``data`` holds, step by step, the entries of the sequences still
    running (longest first); ``batch_sizes[t]`` says how many. Made by ``pack_padded_sequence``."""

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if unsorted_indices is None and sorted_indices is not None:
            unsorted_indices = invert_permutation(sorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs):
        data = self.data.to(*args, **kwargs)
        return self if data is self.data else type(self)(data, self.batch_sizes,
                                                         self.sorted_indices,
                                                         self.unsorted_indices)

    @property
    def is_cuda(self):
        return False

    def is_pinned(self):
        return False


def invert_permutation(permutation):
    if permutation is None:
        return None
    p = permutation._data
    out = np.empty_like(p)
    out[p] = np.arange(p.size, dtype=p.dtype)
    return _wrap(out)


class _Scatter(Function):
    """``out = full(shape, fill); out[index] = x``; the gradient gathers ``g[index]``."""

    @staticmethod
    def forward(ctx, x, index, shape, fill):
        out = np.full(shape, fill, dtype=x.dtype)
        out[index] = x
        ctx.index = index
        return out

    @staticmethod
    def backward(ctx, g):
        return g[ctx.index], None, None, None


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stack tensors of shape ``(L_i, *)`` into ``(L_max, B, *)`` (or ``(B, L_max, *)`` with
    ``batch_first``), filling with ``padding_value`` on ``padding_side`` ('right' or 'left')."""
    if padding_side not in ("left", "right"):
        raise ValueError(
            f"Expected padding_side to be one of left or right, but got {padding_side}.")
    if isinstance(sequences, Tensor):
        sequences = list(sequences.unbind(0))
    sequences = list(sequences)
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    from ember.ops.shape import cat

    trail = tuple(sequences[0].shape[1:])
    for i, s in enumerate(sequences):
        if tuple(s.shape[1:]) != trail:
            raise RuntimeError(
                f"pad_sequence: all sequences must have the same trailing shape {list(trail)}; "
                f"sequence {i} has shape {list(s.shape)}")
    lens = [s.shape[0] for s in sequences]
    lmax, b = max(lens), len(sequences)
    t_idx = np.concatenate([np.arange(n) + (lmax - n if padding_side == "left" else 0)
                            for n in lens]).astype(np.int64)
    b_idx = np.repeat(np.arange(b), lens)
    index = (b_idx, t_idx) if batch_first else (t_idx, b_idx)
    shape = (b, lmax) + trail if batch_first else (lmax, b) + trail
    return _Scatter.apply(cat(sequences, 0), index, shape, padding_value)


def _lengths(lengths):
    if isinstance(lengths, Tensor):
        return lengths._data.astype(np.int64).reshape(-1)
    return np.asarray(list(lengths), dtype=np.int64)


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """Pack a padded batch ``(T, B, *)`` (``(B, T, *)`` with ``batch_first``) whose sequence ``b``
    has ``lengths[b]`` valid steps. With ``enforce_sorted`` the lengths must be decreasing."""
    lens = _lengths(lengths)
    if enforce_sorted:
        if np.any(np.diff(lens) > 0):
            raise RuntimeError(
                "`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. "
                "You can pass `enforce_sorted=False` to pack_padded_sequence and/or "
                "pack_sequence to sidestep this requirement if you do not need ONNX "
                "exportability.")
        batch = input.shape[0 if batch_first else 1]
        if len(lens) != batch:
            raise RuntimeError("Expected `len(lengths)` to be equal to batch_size, but got "
                               f"{len(lens)} (batch_size={batch})")
        sorted_idx = None
        order = np.arange(len(lens))
    else:
        order = np.argsort(-lens, kind="stable")
        sorted_idx = _wrap(order.astype(np.int64))
    slens = lens[order]
    if slens.size and slens[-1] <= 0:
        raise RuntimeError("Length of all samples has to be greater than 0, but found an element "
                           "in 'lengths' that is <= 0")
    tdim = 1 if batch_first else 0
    if slens.size and slens[0] > input.shape[tdim]:
        raise RuntimeError(
            f"pack_padded_sequence: a length of {int(slens[0])} exceeds the {input.shape[tdim]} "
            "time steps of the input")
    steps = int(slens[0]) if slens.size else 0
    batch_sizes = np.array([(slens > t).sum() for t in range(steps)], dtype=np.int64)
    t_idx = np.repeat(np.arange(steps), batch_sizes)
    b_idx = np.concatenate([order[:n] for n in batch_sizes]) if steps else np.zeros(0, np.int64)
    index = (_wrap(b_idx), _wrap(t_idx)) if batch_first else (_wrap(t_idx), _wrap(b_idx))
    return PackedSequence(input[index], _wrap(batch_sizes), sorted_idx, None)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """Undo ``pack_padded_sequence``: returns the padded batch and the lengths (int64)."""
    data, bs = sequence.data, sequence.batch_sizes._data
    steps, b = len(bs), int(bs[0]) if len(bs) else 0
    if total_length is not None:
        if total_length < steps:
            raise ValueError(
                "Expected total_length to be at least the length of the longest sequence in "
                f"input, but got total_length={total_length} and max sequence length being "
                f"{steps}")
        steps_out = total_length
    else:
        steps_out = steps
    lengths = (bs[None, :] > np.arange(b)[:, None]).sum(axis=1).astype(np.int64)
    t_idx = np.repeat(np.arange(steps), bs)
    b_idx = np.concatenate([np.arange(n) for n in bs]) if steps else np.zeros(0, np.int64)
    unsorted = sequence.unsorted_indices
    if unsorted is not None:
        order = sequence.sorted_indices._data
        b_idx = order[b_idx]
        lengths = lengths[unsorted._data]
    trail = tuple(data.shape[1:])
    if batch_first:
        out = _Scatter.apply(data, (b_idx, t_idx), (b, steps_out) + trail, padding_value)
    else:
        out = _Scatter.apply(data, (t_idx, b_idx), (steps_out, b) + trail, padding_value)
    return out, _wrap(lengths)


def pack_sequence(sequences, enforce_sorted=True):
    """Pack a list of ``(L_i, *)`` tensors."""
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    """Split a padded batch back into a list of ``(L_i, *)`` tensors."""
    x = padded_sequences if batch_first else padded_sequences.transpose(0, 1)
    return [x[i, :int(n)] for i, n in enumerate(_lengths(lengths))]


def unpack_sequence(packed_sequences):
    """A ``PackedSequence`` back to a list of ``(L_i, *)`` tensors."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
