"""Per-op overhead of small ops, ember vs PyTorch, forward-only and forward+backward.

    python bench/overhead.py [--repeats 7] [--number 2000]

Both libraries run in one process with 2 threads (torch.set_num_threads(2); NumPy's BLAS pool
limited through threadpoolctl when it is installed); timings are interleaved op by op and the
median of several repeats is printed as ``op, ember us, torch us, torch/ember``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import ember  # noqa: E402  (before NumPy, so that OpenBLAS's threads sleep: ember._blas_env)

import numpy as np  # noqa: E402
import torch  # noqa: E402

THREADS = 2


def _limit_threads():
    torch.set_num_threads(THREADS)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=THREADS)


def _cases(lib):
    """(name, forward-only callable, forward+backward callable) for one library."""
    rng = np.random.default_rng(0)

    def t(*shape):
        return lib.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)

    a4, b4 = t(4, 4), t(4, 4)
    a64, b64 = t(64, 64), t(64, 64)
    g4 = lib.ones(4, 4)
    g64 = lib.ones(64, 64)
    out = []

    def both(name, f, g):
        def fwd():
            with lib.no_grad():
                f()

        def fb():
            f().backward(g)

        out.append((name, fwd, fb))

    both("add 4x4", lambda: a4 + b4, g4)
    both("mul 4x4", lambda: a4 * b4, g4)
    both("matmul 4x4", lambda: a4 @ b4, g4)
    both("matmul 64x64", lambda: a64 @ b64, g64)

    def sum_fwd():
        with lib.no_grad():
            a64.sum()

    out.append(("sum 64x64", sum_fwd, lambda: a64.sum().backward()))
    return out


def _time(fn, number):
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number * 1e6


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--number", type=int, default=2000)
    args = p.parse_args(argv)
    limiter = _limit_threads()
    cases = list(zip(_cases(ember), _cases(torch)))
    print(f"threads={THREADS} threadpoolctl={'yes' if limiter is not None else 'no'} "
          f"repeats={args.repeats} number={args.number}")
    print(f"{'op':<28}{'ember us':>10}{'torch us':>10}{'torch/ember':>13}")
    for (name, efwd, efb), (_, tfwd, tfb) in cases:
        for mode, ef, tf in (("fwd", efwd, tfwd), ("fwd+bwd", efb, tfb)):
            et, tt = [], []
            for f in (ef, tf):
                _time(f, args.number // 10)  # warm up
            for _ in range(args.repeats):
                et.append(_time(ef, args.number))
                tt.append(_time(tf, args.number))
            e, t = statistics.median(et), statistics.median(tt)
            print(f"{name + ' ' + mode:<28}{e:>10.2f}{t:>10.2f}{t / e:>13.2f}")


if __name__ == "__main__":
    main()
