"""``ember bench``: the side-by-side training-step suite against PyTorch (bench/run.py).

The suite lives in the source checkout's ``bench/`` folder (it needs torch, which ember itself
never imports); this sub-command finds it next to the package and runs it.

Example::

    ember bench --only lenet4,mlp128 --reps 5
"""

from __future__ import annotations

import importlib.util
import os

__all__ = ["add_arguments", "run"]


def _suite_path():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.join(root, "bench", "run.py")


def _load_suite():
    path = _suite_path()
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"ember bench runs the suite in a source checkout's bench/run.py; {path} does not "
            "exist (clone the repository and run `ember bench` from its environment)")
    spec = importlib.util.spec_from_file_location("ember_bench_run", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def add_arguments(p):
    p.add_argument("--only", default="", help="comma-separated workloads (default: all)")
    p.add_argument("--reps", type=int, default=7, help="timed repetitions per library (median)")
    p.add_argument("--threads", type=int, default=2, help="threads for each library")
    p.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    p.add_argument("--cpu-time", action="store_true",
                   help="time by process CPU time (with --threads 1; for busy machines)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory children")
    p.add_argument("--json", help="also write the results to this file")


def run(args):
    try:
        import torch  # noqa: F401  (the oracle the suite compares against)
    except ImportError as e:
        raise ImportError("ember bench compares against PyTorch: pip install torch") from e
    _load_suite().run(args)
    return 0
