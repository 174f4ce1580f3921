"""Per-layer forward+backward timings, ember against torch, in one process.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/layers.py [--repeats 15]

Both libraries run with 2 threads; their timings are interleaved (ember, torch, ember, ...) and
the median of the repeats is printed as ``layer, ember ms, torch ms, torch/ember`` (above 1 means
ember is faster). Layers not importable from ember yet are skipped with a note.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import ember  # noqa: E402,F401  (before NumPy, so that OpenBLAS's threads sleep: ember._blas_env)
import numpy as np  # noqa: E402

THREADS = 2


def set_threads(n=THREADS):
    import torch

    torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:
        pass


def _layers():
    """(name, build(lib) -> step()) pairs; each step is one forward + backward."""
    rng = np.random.default_rng(0)

    def data(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    def module_case(make, x, grad_shape=None):
        def build(lib):
            m = make(lib)
            xt = lib.tensor(x, requires_grad=True)
            g = lib.tensor(data(*grad_shape)) if grad_shape else None

            def step():
                for p in m.parameters():
                    p.grad = None
                xt.grad = None
                y = m(xt)
                y.backward(g if g is not None else lib.ones_like(y))
            return step
        return build

    def lstm(lib):
        m = lib.nn.LSTM(128, 256)
        xt = lib.tensor(data(32, 32, 128), requires_grad=True)

        def step():
            for p in m.parameters():
                p.grad = None
            out, _ = m(xt)
            out.sum().backward()
        return step

    logits, target = data(128, 10), rng.integers(0, 10, 128)

    def ce(lib):
        x = lib.tensor(logits, requires_grad=True)
        t = lib.tensor(target)

        def step():
            x.grad = None
            lib.nn.functional.cross_entropy(x, t).backward()
        return step

    return [
        ("Linear 512x512 b128", module_case(lambda L: L.nn.Linear(512, 512), data(128, 512))),
        ("Conv2d 64->64 3x3 p1 32x32 b64",
         module_case(lambda L: L.nn.Conv2d(64, 64, 3, padding=1), data(64, 64, 32, 32),
                     (64, 64, 32, 32))),
        ("MaxPool2d 2x2 (64,64,32,32)",
         module_case(lambda L: L.nn.MaxPool2d(2), data(64, 64, 32, 32), (64, 64, 16, 16))),
        ("BatchNorm2d(64) (64,64,32,32)",
         module_case(lambda L: L.nn.BatchNorm2d(64), data(64, 64, 32, 32), (64, 64, 32, 32))),
        ("LSTM 128->256 T32 b32", lstm),
        ("cross_entropy 10 cls b128", ce),
    ]


SETTLE_S = 1.0  # let the other library's spinning BLAS/OpenMP threads go idle (bench/run.py)


def _time(step):
    time.sleep(SETTLE_S)
    step()  # wake this library's thread pool, untimed
    t = time.perf_counter()
    step()
    return (time.perf_counter() - t) * 1e3


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--only", default="", help="comma-separated substrings of layer names")
    args = ap.parse_args(argv)
    set_threads()
    import torch

    import ember

    print(f"{'layer':34s} {'ember ms':>10s} {'torch ms':>10s} {'torch/ember':>12s}")
    for name, build in _layers():
        if args.only and not any(s in name for s in args.only.split(",")):
            continue
        try:
            estep = build(ember)
            estep()
        except (ImportError, AttributeError, NotImplementedError) as exc:
            print(f"{name:34s} skipped: ember layer not available yet ({exc})")
            continue
        tstep = build(torch)
        tstep()
        te, tt = [], []
        for _ in range(args.repeats):
            te.append(_time(estep))
            tt.append(_time(tstep))
        me, mt = statistics.median(te), statistics.median(tt)
        print(f"{name:34s} {me:10.2f} {mt:10.2f} {mt / me:12.2f}")


if __name__ == "__main__":
    main()
