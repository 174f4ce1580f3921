"""DataLoader worker processes: the loop each worker runs and the pipe protocol to the main one.

A worker receives ``(batch_idx, indices)`` on its index pipe, fetches and collates the batch,
and pickles it once (protocol 5) with every array as an out-of-band buffer: no per-sample
pickles. On Linux the pickle and the buffers go into one shared-memory file per batch (see
``_shm``) that the main process maps without copying. Elsewhere they go through the result
pipe, written by a sender thread (so the worker keeps computing while the main process is
busy) and read by the main process straight into fresh NumPy arrays.
"""

from __future__ import annotations

import os
import pickle
import queue
import random
import socket
import sys
import threading
import traceback
from dataclasses import dataclass

import numpy as np

from ember.utils.data import _shm

__all__ = ["WorkerInfo", "get_worker_info"]

MP_STATUS_CHECK_INTERVAL = 5.0  # seconds between liveness checks, as in PyTorch
_SWITCH_INTERVAL = float(os.environ.get("EMBER_WORKER_SWITCH_INTERVAL", "2e-4"))

_worker_info = None


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker knows about itself: ``id``, ``num_workers``, ``seed``, ``dataset``
    (this worker's copy). Read it with :func:`get_worker_info`."""

    id: int
    num_workers: int
    seed: int
    dataset: object


def get_worker_info():
    """This worker's :class:`WorkerInfo`, or ``None`` in the main process.

    Example (split an IterableDataset between workers)::

        def __iter__(self):
            info = get_worker_info()
            start, step = (0, 1) if info is None else (info.id, info.num_workers)
            return iter(range(start, self.n, step))
    """
    return _worker_info


class ExceptionWrapper:
    """An exception and its formatted traceback, to re-raise in another process."""

    def __init__(self, exc_info=None, where="in background"):
        exc_info = exc_info or sys.exc_info()
        self.exc_type = exc_info[0]
        self.exc_name = exc_info[0].__name__
        self.exc_msg = "".join(traceback.format_exception(*exc_info))
        self.where = where

    def reraise(self):
        msg = f"Caught {self.exc_name} {self.where}.\nOriginal {self.exc_msg}"
        if self.exc_type is KeyError:
            msg = _KeyErrorMessage(msg)
        try:
            exception = self.exc_type(msg)
        except Exception:
            raise RuntimeError(msg) from None
        raise exception


class _KeyErrorMessage(str):
    """Shows the message as is: KeyError would print its repr (one unreadable line)."""

    def __repr__(self):
        return self


@dataclass(frozen=True)
class _IterableDatasetStopIteration:
    worker_id: int


@dataclass(frozen=True)
class _ResumeIteration:
    pass


def _numpy_seed(base_seed, worker_id):
    """Seed words for NumPy's legacy global RNG that differ well between workers."""
    return np.random.SeedSequence([worker_id, base_seed & 0xFFFFFFFF,
                                   base_seed >> 32]).generate_state(4)


def seed_worker(base_seed, worker_id):
    """Seed ember's default generator and Python's ``random`` with ``base_seed + worker_id``,
    NumPy's global RNG with words derived from both."""
    from ember.random import default_generator

    seed = base_seed + worker_id
    random.seed(seed)
    default_generator.manual_seed(seed)
    np.random.seed(_numpy_seed(base_seed, worker_id))
    return seed


# ---------------------------------------------------------------------------- the pipe protocol
def pickle_batch(data):
    """``(body, raws)``: the pickled batch and the raw bytes of the arrays it refers to."""
    buffers = []
    try:
        body = pickle.dumps(data, protocol=5, buffer_callback=buffers.append)
    except Exception:
        buffers = []
        if isinstance(data, ExceptionWrapper):  # an exception class pickle cannot name
            data.exc_type = RuntimeError
        else:
            data = ExceptionWrapper(where="while sending a batch from a DataLoader worker "
                                          "process (is everything in the batch picklable?)")
        body = pickle.dumps(data, protocol=5)
    return body, [b.raw() for b in buffers]


def encode(idx, data):
    """``(header, raws)`` for the pipe: the pickled message and the array buffers after it."""
    body, raws = pickle_batch(data)
    return pickle.dumps((idx, body, [r.nbytes for r in raws]), protocol=5), raws


def send_message(conn, header, raws):
    conn.send_bytes(header)
    for r in raws:
        conn.send_bytes(r)


if hasattr(os, "readv"):
    def _read_exact(fd, view):
        while len(view):
            n = os.readv(fd, [view])
            if n == 0:
                raise EOFError
            view = view[n:]

    def _recv_into(conn, arr):
        # multiprocessing's framing: a signed 4-byte big-endian size, or -1 then 8 bytes.
        fd = conn.fileno()
        head = bytearray(4)
        _read_exact(fd, memoryview(head))
        size = int.from_bytes(head, "big", signed=True)
        if size == -1:
            head = bytearray(8)
            _read_exact(fd, memoryview(head))
            size = int.from_bytes(head, "big")
        if size != arr.nbytes:
            raise EOFError
        _read_exact(fd, memoryview(arr))
else:  # pragma: no cover - Windows pipes have no readv
    def _recv_into(conn, arr):
        conn.recv_bytes_into(arr)


def recv_message(conn):
    """``(idx, data)`` read from ``conn``; raises EOFError if the writer is gone."""
    idx, body, sizes = pickle.loads(conn.recv_bytes())
    arrays = []
    for n in sizes:
        arr = np.empty(n, dtype=np.uint8)
        _recv_into(conn, arr)
        arrays.append(arr)
    return idx, pickle.loads(body, buffers=arrays)


class _ShmSender:
    """Sends each batch as a memfd (see ``_shm``): one small socket write, no thread."""

    def __init__(self, sock):
        self.sock = sock

    def put(self, idx, data):
        try:
            _shm.send(self.sock, idx, *pickle_batch(data))
        except OSError:  # the main process closed its end: nothing more to send
            pass

    def close(self):
        pass


class _Sender:
    """A thread that writes finished batches to the result pipe in the background (used
    where there is no memfd)."""

    def __init__(self, conn):
        self.conn = conn
        self.queue = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            item = self.queue.get()
            if item is None:
                return
            try:
                send_message(self.conn, *item)
            except OSError:  # the main process closed its end: nothing more to send
                return

    def put(self, idx, data):
        self.queue.put(encode(idx, data))

    def close(self):
        self.queue.put(None)
        self.thread.join(timeout=MP_STATUS_CHECK_INTERVAL)


# ------------------------------------------------------------------------- the worker's loop
def _worker_loop(dataset_kind, payload, index_conn, result_conn, auto_collation, drop_last,
                 base_seed, worker_id, num_workers):
    """One worker: ``payload`` is ``(dataset, collate_fn, init_fn)``, or None where the main
    process sends it as the first message on ``index_conn`` (a worker not forked)."""
    from ember.utils.data.dataloader import _DatasetKind

    global _worker_info
    try:
        # The sender thread needs the GIL for a moment per write; by default it would wait up
        # to 5 ms for the busy main thread each time, holding the main process's read up.
        sys.setswitchinterval(_SWITCH_INTERVAL)
        seed = seed_worker(base_seed, worker_id)
        if payload is None:
            try:
                payload = index_conn.recv()
            except (EOFError, OSError):
                payload = None
            if payload is None:  # the main process shut us down (or died) before sending it
                return
        dataset, collate_fn, init_fn = payload
        _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed,
                                  dataset=dataset)
        sender = (_ShmSender if isinstance(result_conn, socket.socket) else _Sender)(result_conn)
        init_exception = None
        fetcher = None
        try:
            if init_fn is not None:
                init_fn(worker_id)
            fetcher = _DatasetKind.create_fetcher(dataset_kind, dataset, auto_collation,
                                                  collate_fn, drop_last)
        except Exception:
            init_exception = ExceptionWrapper(where=f"in DataLoader worker process {worker_id}")
        iteration_end = False
        parent = os.getppid()
        while True:
            if not index_conn.poll(MP_STATUS_CHECK_INTERVAL):
                if os.getppid() != parent:  # the main process died: nobody will read
                    break
                continue
            try:
                r = index_conn.recv()
            except (EOFError, OSError):
                break
            if r is None:
                break
            if isinstance(r, _ResumeIteration):
                iteration_end = False
                fetcher = _DatasetKind.create_fetcher(dataset_kind, dataset, auto_collation,
                                                      collate_fn, drop_last)
                sender.put(r, None)
                continue
            if iteration_end:
                continue
            idx, index = r
            if init_exception is not None:
                data, init_exception = init_exception, None
            else:
                try:
                    data = fetcher.fetch(index)
                except Exception as e:
                    if isinstance(e, StopIteration) and dataset_kind == _DatasetKind.Iterable:
                        data = _IterableDatasetStopIteration(worker_id)
                        iteration_end = True
                    else:
                        data = ExceptionWrapper(
                            where=f"in DataLoader worker process {worker_id}")
            sender.put(idx, data)
            del data, idx, index, r  # do not keep the last batch alive while waiting
        sender.close()
    except KeyboardInterrupt:
        pass
