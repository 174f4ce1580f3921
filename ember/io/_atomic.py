"""Crash-safe file replacement: a process killed mid-save leaves the previous file intact.

    atomic_write("ckpt.pt", lambda fh: fh.write(data))

writes a temporary file in the same directory, flushes and fsyncs it, renames it over the
target with ``os.replace`` (atomic on POSIX and Windows) and fsyncs the directory so the rename
itself survives a power cut. A kill before the rename leaves a stray ``.ckpt.pt.*.tmp`` file
and the old ``ckpt.pt``; after it, the new one.
"""

from __future__ import annotations

import os
import stat
import tempfile
import threading

__all__ = ["atomic_write"]

_umask_lock = threading.Lock()


def _new_file_mode():
    # What open() would give a new file: 0o666 minus the umask (mkstemp uses 0o600).
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def _fsync_dir(directory):
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a directory; the rename is still atomic
    finally:
        os.close(fd)


def atomic_write(path, write, who="ember.save"):
    """Call ``write(binary_file)`` on a temporary file, then atomically replace ``path`` by it.

    A symlink at ``path`` is followed (its target is replaced); an existing file keeps its
    permission bits.
    """
    path = os.fspath(path)
    if os.path.islink(path):
        path = os.path.realpath(path)
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"{who}: cannot write {path!r}: directory {directory!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{who}: cannot write {path!r}: it is a directory")
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = _new_file_mode()
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)
