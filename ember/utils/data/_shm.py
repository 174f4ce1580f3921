"""Batches through shared memory (Linux): one memfd per batch, its descriptor sent over a socket.

The worker pickles the batch (protocol 5), copies the pickle and every array buffer into a
fresh ``memfd``, and sends the descriptor with ``SCM_RIGHTS`` in a one-byte message: a single
small write per batch, so a busy machine costs one wake-up, not one per pipe-full. The main
process maps the memfd and rebuilds the arrays *in place* (no copy); the memory is freed
when the last array of the batch is garbage-collected. Layout of a memfd::

    [8-byte length L][pickle of (idx, body, [(offset, nbytes), ...])][pad][buffer 0][pad]...

(offsets count from the first buffer).
"""

from __future__ import annotations

import mmap
import os
import pickle
import socket

import numpy as np

__all__ = ["available", "channel", "send", "recv"]

_ALIGN = 64


def available():
    return hasattr(os, "memfd_create") and hasattr(socket, "send_fds")


def channel():
    """(main end, worker end): a socket pair that keeps message boundaries."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def _align(n):
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def send(sock, idx, body, raws):
    """Write ``(idx, body, raws)`` into a new memfd and pass it to the other end of ``sock``."""
    offsets, pos = [], 0  # relative to the first buffer, which starts after the header
    for r in raws:
        offsets.append((pos, r.nbytes))
        pos = _align(pos + r.nbytes)
    meta = pickle.dumps((idx, body, offsets), protocol=5)
    start = _align(8 + len(meta))
    size = start + pos
    fd = os.memfd_create("ember-dataloader", getattr(os, "MFD_CLOEXEC", 0))
    try:
        os.ftruncate(fd, size)
        with mmap.mmap(fd, size) as mm:
            mm[:8] = len(meta).to_bytes(8, "little")
            mm[8:8 + len(meta)] = meta
            for (off, n), r in zip(offsets, raws):
                mm[start + off:start + off + n] = r
        socket.send_fds(sock, [b"b"], [fd])
    finally:
        os.close(fd)


def recv(sock):
    """``(idx, data)`` from the next memfd on ``sock``; EOFError if the worker is gone."""
    msg, fds, _, _ = socket.recv_fds(sock, 16, 1)
    if not fds:
        raise EOFError
    fd = fds[0]
    try:
        mm = mmap.mmap(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)
    n = int.from_bytes(mm[:8], "little")
    idx, body, offsets = pickle.loads(mm[8:8 + n])
    start = _align(8 + n)
    buffers = [np.frombuffer(mm, np.uint8, count=nbytes, offset=start + off)
               for off, nbytes in offsets]
    return idx, pickle.loads(body, buffers=buffers)
