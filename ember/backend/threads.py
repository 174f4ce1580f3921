"""How many BLAS threads ember may use: the user's setting, and whether the machine is busy.

NumPy's OpenBLAS splits each product over its threads and waits for all of them. On a machine
whose other cores are busy, the second thread waits for a time slice and every product waits
with it: measured on the 2-core reference machine under load, a 128x784x512 product ran 9x
slower on two threads than on one, a 512^3 one 1.75x slower. So ember runs its products on one
thread when the other cores are taken by *other* processes (``machine_busy()``), as GNU
OpenMP's ``OMP_DYNAMIC`` does, and on the threads it was given otherwise.

``machine_busy`` samples ``/proc/stat`` (all CPUs' busy time) and ``os.times`` (this process's
own time) at most every half second: the cores in use by others are the difference. Elsewhere it
falls back to the load average. ``EMBER_DYNAMIC_THREADS=0`` (or ``set_dynamic(False)``) turns
the check off, and so does ``ember.use_deterministic_algorithms(True)``: the rounding of a split
product or sum can change with the thread count, so with the check a run's last bits depend on
the machine's load.

Example::

    from ember.backend.threads import machine_busy
    if machine_busy():
        ...  # run this product on one thread
"""

from __future__ import annotations

import os
import time

__all__ = ["machine_busy", "set_dynamic", "get_dynamic", "cpu_count", "set_deterministic",
           "deterministic"]

_WINDOW = 0.5  # seconds between samples
_FREE_FOR_PARALLEL = 1.5  # cores not used by other processes needed for a second thread


def cpu_count():
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_dynamic = os.environ.get("EMBER_DYNAMIC_THREADS", "1") not in ("0", "false", "False", "")
_deterministic = (False, False)  # ember.use_deterministic_algorithms: (mode, warn_only)
_watch = _dynamic  # whether machine_busy looks at the machine: dynamic and not deterministic
_ncpu = cpu_count()
_tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# [time of last sample, all CPUs' busy seconds, this process's seconds, busy verdict]
_last = [0.0, None, 0.0, False]


def set_dynamic(flag):
    """Let ember drop to one BLAS thread while other processes keep the other cores busy."""
    global _dynamic, _watch
    _dynamic = bool(flag)
    _watch = _dynamic and not _deterministic[0]


def set_deterministic(mode, warn_only=False):
    """``ember.use_deterministic_algorithms``: a run's numbers must not depend on the machine's
    load. A product split over two threads can round differently from one on one thread (and
    ember's split kernels sum their parts), so the thread count stops following the load."""
    global _deterministic, _watch
    _deterministic = (bool(mode), bool(warn_only))
    _watch = _dynamic and not _deterministic[0]


def deterministic():
    """(mode, warn_only) as ``ember.use_deterministic_algorithms`` last set them."""
    return _deterministic


def get_dynamic():
    return _dynamic


def _busy_seconds():
    with open("/proc/stat", "rb") as f:
        fields = f.readline().split()[1:9]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields)
    return (user + nice + system + irq + softirq + steal) / _tick


def _own_seconds():
    t = os.times()
    return t.user + t.system


def machine_busy():
    """True when other processes use so many cores that a second BLAS thread would wait."""
    if not _watch or _ncpu < 2:
        return _ncpu < 2
    now = time.monotonic()
    last = _last
    if now - last[0] < _WINDOW:
        return last[3]
    own = _own_seconds()
    try:
        busy = _busy_seconds()
    except (OSError, ValueError, IndexError):
        busy = None
    if busy is None:
        try:
            others = max(0.0, os.getloadavg()[0] - 1.0)
        except (AttributeError, OSError):
            others = 0.0
        verdict = _ncpu - others < _FREE_FOR_PARALLEL
    elif last[1] is None:
        verdict = False
    else:
        others = ((busy - last[1]) - (own - last[2])) / (now - last[0])
        verdict = _ncpu - others < _FREE_FOR_PARALLEL
    last[:] = [now, busy, own, verdict]
    return verdict
