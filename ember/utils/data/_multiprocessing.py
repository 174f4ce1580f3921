"""The DataLoader iterator with worker processes (PyTorch's scheduling, ember's transport).

Scheduling is PyTorch's: ``prefetch_factor * num_workers`` batches are handed out round-robin
up front, one more each time a batch is returned, and results are put back in sampler order
by batch index. Each worker has its own index pipe and result channel (see ``_worker``); a
dead worker closes its end of the result channel, so the main process learns of the death at once (EOF) and
raises instead of hanging. Workers are stopped when the epoch ends (unless persistent), when
the iterator is garbage-collected (``break`` out of a loop, ``del``), and at interpreter exit.
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import signal
import socket
import time
import weakref
from multiprocessing.connection import wait

from ember.utils.data import _shm, _worker
from ember.utils.data._worker import (
    MP_STATUS_CHECK_INTERVAL,
    ExceptionWrapper,
    _IterableDatasetStopIteration,
    _ResumeIteration,
)
from ember.utils.data.dataloader import _BaseDataLoaderIter, _DatasetKind

__all__ = []

_PIPE_BYTES = 1 << 20  # a batch of CIFAR images is ~1.5 MB: fewer round trips per batch


def _default_context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _grow_pipe(conn):
    try:
        import fcntl

        fcntl.fcntl(conn.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    except (ImportError, AttributeError, OSError):  # not Linux, or over the system limit
        pass


def _death_message(w):
    w.join(timeout=1.0)  # a killed worker is reaped within moments
    code = w.exitcode
    if code is None:
        return f"DataLoader worker (pid(s) {w.pid}) exited unexpectedly"
    if code < 0:
        msg = f"DataLoader worker (pid {w.pid}) is killed by signal: {signal.strsignal(-code)}. "
        if -code == getattr(signal, "SIGBUS", None):
            msg += "It is possible that dataloader's workers are out of shared memory."
        return msg
    return (f"DataLoader worker (pid {w.pid}) exited unexpectedly with exit code {code}. "
            "Details are lost due to multiprocessing. Rerunning with num_workers=0 may give "
            "better error trace.")


def _shutdown(workers, index_conns, result_conns):
    """Stop every worker and reap it: ask politely, then terminate, then kill."""
    for c in index_conns:
        try:
            c.send(None)
        except (OSError, ValueError):  # already dead, or closed
            pass
    for c in result_conns:
        c.close()
    deadline = time.monotonic() + MP_STATUS_CHECK_INTERVAL
    for w in workers:
        w.join(timeout=max(0.0, deadline - time.monotonic()))
    for w in workers:
        if w.is_alive():
            w.terminate()
            w.join(timeout=1.0)
        if w.is_alive():
            w.kill()
            w.join()
    for c in index_conns:
        c.close()


class _MultiProcessingDataLoaderIter(_BaseDataLoaderIter):
    def __init__(self, loader):
        super().__init__(loader)
        self._prefetch_factor = loader.prefetch_factor
        self._in_order = loader.in_order
        ctx = loader.multiprocessing_context or _default_context()
        self._workers, self._index_conns, self._result_conns = [], [], []
        self._finalizer = weakref.finalize(self, _shutdown, self._workers, self._index_conns,
                                           self._result_conns)
        # Forked workers would copy every page the garbage collector touches while scanning
        # the parent's objects; frozen objects are never scanned (Python's advice for fork).
        user_frozen = gc.get_freeze_count() > 0
        gc.freeze()
        try:
            self._start_workers(ctx, loader)
        finally:
            if not user_frozen:
                gc.unfreeze()
        self._reset(loader, first_iter=True)

    def _start_workers(self, ctx, loader):
        # A forked worker inherits the dataset, the collate function and worker_init_fn. Other
        # start methods pickle what a worker is started with into a pipe that the parent holds
        # both ends of until the child has read it all (CPython's spawn): a child that died
        # first (a script without the ``if __name__ == "__main__":`` guard) left the parent
        # blocked for ever on a dataset larger than the pipe. They are sent through the
        # worker's index pipe instead, once it runs: its death then fails the send.
        payload = (self._dataset, self._collate_fn, loader.worker_init_fn)
        inherit = ctx.get_start_method() == "fork"
        for i in range(self._num_workers):
            index_r, index_w = ctx.Pipe(duplex=False)
            if _shm.available():
                result_r, result_w = _shm.channel()
            else:
                result_r, result_w = ctx.Pipe(duplex=False)
                _grow_pipe(result_w)
            w = ctx.Process(target=_worker._worker_loop, daemon=True, args=(
                self._dataset_kind, payload if inherit else None, index_r, result_w,
                self._auto_collation, self._drop_last, self._base_seed, i, self._num_workers))
            w.start()
            # Only the worker keeps its ends: its death then shows as EOF on our end.
            index_r.close()
            result_w.close()
            self._workers.append(w)
            self._index_conns.append(index_w)
            self._result_conns.append(result_r)
        if not inherit:
            for i in range(self._num_workers):
                self._send(i, payload)

    @property
    def _shutdown(self):
        return not self._finalizer.alive

    def _shutdown_workers(self):
        self._finalizer()

    def _reset(self, loader, first_iter=False):
        super()._reset(loader, first_iter)
        self._send_idx = 0
        self._rcvd_idx = 0
        self._task_info = {}
        self._tasks_outstanding = 0
        self._workers_status = [True] * self._num_workers
        self._workers_num_tasks = [0] * self._num_workers
        self._worker_queue_idx_cycle = itertools.cycle(range(self._num_workers))
        if not first_iter:
            for i in range(self._num_workers):
                self._send(i, _ResumeIteration())
            pending = self._num_workers
            while pending > 0:  # results of an abandoned epoch arrive first: drop them
                idx, _ = self._get_data()
                if isinstance(idx, _ResumeIteration):
                    pending -= 1
        for _ in range(self._prefetch_factor * self._num_workers):
            self._try_put_index()

    def _send(self, worker_id, msg):
        try:
            self._index_conns[worker_id].send(msg)
        except OSError:
            self._raise_dead(worker_id)

    def _raise_dead(self, worker_id):
        msg = _death_message(self._workers[worker_id])
        self._shutdown_workers()
        raise RuntimeError(msg)

    def _get_data(self):
        """The next ``(idx, data)`` from any worker, honouring ``timeout``."""
        conns = self._result_conns
        while True:
            ready = wait(conns, self._timeout if self._timeout > 0 else MP_STATUS_CHECK_INTERVAL)
            if ready:
                conn = ready[0]
                try:
                    if isinstance(conn, socket.socket):
                        return _shm.recv(conn)
                    return _worker.recv_message(conn)
                except (EOFError, OSError):
                    self._raise_dead(self._result_conns.index(conn))
            if self._timeout > 0:
                raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds")
            for i, w in enumerate(self._workers):
                if not w.is_alive():
                    self._raise_dead(i)

    def _next_data(self):
        while True:
            while self._rcvd_idx < self._send_idx:
                info = self._task_info.get(self._rcvd_idx)
                if info:
                    if len(info) == 2 or self._workers_status[info[0]]:
                        break
                    del self._task_info[self._rcvd_idx]
                self._rcvd_idx += 1
            else:
                if not self._persistent_workers:
                    self._shutdown_workers()
                raise StopIteration
            if len(self._task_info[self._rcvd_idx]) == 2:
                worker_id, data = self._task_info.pop(self._rcvd_idx)
                self._rcvd_idx += 1
                return self._process_data(data, worker_id)
            idx, data = self._get_data()
            self._tasks_outstanding -= 1
            if self._dataset_kind == _DatasetKind.Iterable and \
                    isinstance(data, _IterableDatasetStopIteration):
                self._workers_status[data.worker_id] = False
                self._try_put_index()
                continue
            if idx != self._rcvd_idx:
                if not self._in_order:
                    return self._process_data(data, self._task_info.pop(idx)[0])
                self._task_info[idx] += (data,)
            else:
                worker_id = self._task_info.pop(idx)[0]
                self._rcvd_idx += 1
                return self._process_data(data, worker_id)

    def _try_put_index(self):
        try:
            index = self._next_index()
        except StopIteration:
            return
        for _ in range(self._num_workers):  # the next active worker, if any
            worker_id = next(self._worker_queue_idx_cycle)
            if self._workers_status[worker_id]:
                break
        else:
            return
        self._send(worker_id, (self._send_idx, index))
        self._task_info[self._send_idx] = (worker_id,)
        self._workers_num_tasks[worker_id] += 1
        self._tasks_outstanding += 1
        self._send_idx += 1

    def _process_data(self, data, worker_id):
        self._workers_num_tasks[worker_id] -= 1
        self._try_put_index()
        if isinstance(data, ExceptionWrapper):
            data.reraise()
        return data
