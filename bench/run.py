"""The benchmark suite: the same PyTorch-API training step on ember and on torch, side by side.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/run.py [--only lenet4,mlp128] [--quick]

Also ``ember bench [...]`` from a source checkout. Timings are interleaved in one process with
the same thread count (2, ``--threads``) for both libraries and reported as medians; peak memory
of each training workload is measured in a fresh child process per library that imports only
that library: the max RSS growth over the process's RSS after ``import``, and the process's whole
peak RSS. The header names the machine and its load average: the machine is often shared, and
only ratios measured in one run mean anything.

ember's products run on one BLAS thread while other processes keep the other cores busy (see
``ember.backend.threads``; ``EMBER_DYNAMIC_THREADS=0`` turns that off); torch has no such mode.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
import ember  # noqa: E402,F401  (before NumPy, so that OpenBLAS's threads sleep: ember._blas_env)

THREADS = 2
SETTLE_S = 1.0  # pause between the two libraries' timed blocks (see time_pair)
# Each timed block runs at least this long (at least 3 steps): this machine's speed jumps by up
# to 2x for tens of milliseconds at a time, and lenet4's blocks of 20 steps (~20 ms) gave
# torch/ember 1.06-1.72 over seven runs, blocks of 100 steps 1.37-1.63 over five.
BLOCK_S = 0.1
# Untimed steps after the pause. The first steps after an idle second are slow on this virtual
# machine, where waking an idle core costs up to a scheduler tick: right after the pause, ember's
# LeNet b64 steps took 48-54, 13-23 and 10-13 ms, then 7-9 (its first small OpenBLAS products
# 10 ms each); torch's 10-14, then 5. One warm-up step left ember's timed block ~40% slow.
WARM_STEPS = 3


def set_threads(n=THREADS):
    from ember.backend import blas

    blas.start()  # MKL on Intel's OpenMP, as without torch (see blas.start)
    import torch

    torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:
        pass


# ----------------------------------------------------------------------------- models (written once)
def lenet(lib):
    nn, F = lib.nn, lib.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 6, 5)
            self.pool = nn.MaxPool2d(2, 2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(16 * 5 * 5, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, 10)

        def forward(self, x):
            x = self.pool(F.relu(self.conv1(x)))
            x = self.pool(F.relu(self.conv2(x)))
            x = lib.flatten(x, 1)
            x = F.relu(self.fc1(x))
            x = F.relu(self.fc2(x))
            return self.fc3(x)

    return Net()


def mlp(lib):
    nn = lib.nn
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512),
                         nn.ReLU(), nn.Linear(512, 10))


def lstm_head(lib, rnn="LSTM", vocab=None, inp=128, hidden=256, layers=1):
    nn = lib.nn

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(vocab, inp) if vocab else None
            self.rnn = getattr(nn, rnn)(inp, hidden, num_layers=layers, batch_first=True)
            self.head = nn.Linear(hidden, vocab or 10)

        def forward(self, x):
            if self.emb is not None:
                x = self.emb(x)
            out, _ = self.rnn(x)
            if self.emb is not None:
                return self.head(out).reshape(-1, self.head.out_features)
            return self.head(out[:, -1])

    return Model()


def resnet20(lib):
    nn, F = lib.nn, lib.nn.functional

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.short = None
            if stride != 1 or cin != cout:
                self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                           nn.BatchNorm2d(cout))

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return F.relu(out + (x if self.short is None else self.short(x)))

    class ResNet20(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn = nn.BatchNorm2d(16)
            layers, cin = [], 16
            for cout, stride in ((16, 1), (32, 2), (64, 2)):
                for i in range(3):
                    layers.append(Block(cin, cout, stride if i == 0 else 1))
                    cin = cout
            self.layers = nn.Sequential(*layers)
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            x = self.layers(F.relu(self.bn(self.conv(x))))
            return self.fc(x.mean((2, 3)))

    return ResNet20()


def _images(n, c=3, s=32, classes=10):
    import numpy as np

    rng = np.random.default_rng(0)
    return rng.standard_normal((n, c, s, s)).astype("float32"), rng.integers(0, classes, n)


def _sequence(n, t, features, classes=10):
    import numpy as np

    rng = np.random.default_rng(0)
    return rng.standard_normal((n, t, features)).astype("float32"), rng.integers(0, classes, n)


def _tokens(n, t, vocab):
    import numpy as np

    rng = np.random.default_rng(0)
    return rng.integers(0, vocab, (n, t)), rng.integers(0, vocab, n * t)


# name -> (model builder, data builder, optimizer kwargs, gradient-norm clip or None)
WORKLOADS = {
    "lenet4": (lenet, lambda: _images(4), dict(lr=0.001, momentum=0.9), None),
    "lenet64": (lenet, lambda: _images(64), dict(lr=0.001, momentum=0.9), None),
    "mlp128": (mlp, lambda: _images(128, 1, 28), dict(lr=0.01, momentum=0.9), None),
    "lstm32": (lambda lib: lstm_head(lib), lambda: _sequence(32, 32, 128),
               dict(lr=0.01, momentum=0.9), None),
    "resnet64": (resnet20, lambda: _images(64), dict(lr=0.1, momentum=0.9), None),
    # examples/char_lstm.py's training step at its defaults: CharLSTM(65 characters, embed 64,
    # hidden 256, 1 layer), batch 32 x 64 steps, Adam(lr=3e-3), clip_grad_norm_(5.0)
    "gru_char": (lambda lib: lstm_head(lib, "LSTM", vocab=65, inp=64, hidden=256, layers=1),
                 lambda: _tokens(32, 64, 65), dict(lr=3e-3), 5.0),
}


def make_step(lib, name):
    build, data, okw, clip = WORKLOADS[name]
    lib.manual_seed(0)
    model = build(lib)
    x, y = data()
    xt = lib.tensor(x)
    yt = lib.tensor(y)
    opt = (lib.optim.Adam(model.parameters(), **okw) if "momentum" not in okw
           else lib.optim.SGD(model.parameters(), **okw))
    loss_fn = lib.nn.CrossEntropyLoss()
    params = list(model.parameters())
    clip_fn = lib.nn.utils.clip_grad_norm_

    def step():
        opt.zero_grad()
        loss = loss_fn(model(xt), yt)
        loss.backward()
        if clip is not None:
            clip_fn(params, clip)
        opt.step()
        return loss

    return step


def time_pair(name, reps, block_s=BLOCK_S, clock=time.perf_counter):
    """Medians of ``reps`` timed blocks of each library's step (ms), the blocks interleaved;
    a block is as many steps as take ``block_s`` at the slower library's pace."""
    import ember
    import torch

    steps = {"ember": make_step(ember, name), "torch": make_step(torch, name)}
    slowest = 0.0
    for s in steps.values():  # warm up
        for _ in range(3):
            t0 = time.perf_counter()
            s()
        slowest = max(slowest, time.perf_counter() - t0)
    inner = max(3, math.ceil(block_s / slowest))
    samples = {"ember": [], "torch": []}
    for _ in range(reps):
        for lib in ("ember", "torch"):
            # The other library's BLAS/OpenMP threads keep spinning for a while after its last
            # call and steal the cores (torch's mlp128 step measured 20 ms right after ember's
            # block and 2.7 ms alone; ember's lenet64 12.2 ms after a 0.3 s pause, 10.9 after
            # 1 s): let them go idle, then wake this library's pools untimed (WARM_STEPS).
            time.sleep(SETTLE_S)
            for _ in range(WARM_STEPS):
                steps[lib]()
            t0 = clock()
            for _ in range(inner):
                steps[lib]()
            samples[lib].append((clock() - t0) / inner * 1000)
    return {k: statistics.median(v) for k, v in samples.items()}


def _rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _hwm_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def peak_memory_child(lib_name, name, threads=THREADS):
    """Run in a child that imports only ``lib_name``: (peak RSS growth over the RSS after the
    import, in MB, of building the step and running a few steps; the process's whole peak RSS).
    The growth counts what the library loads lazily during the steps (MKL, numba and its
    compiled kernels for ember: ~120 MB); the whole peak counts every import."""
    code = (
        "import sys; sys.path.insert(0, %r); import bench.run as r; r.child_threads(%r, %d);"
        "import %s as lib; base = r._rss_kb(); step = r.make_step(lib, %r); "
        "[step() for _ in range(5)]; print((r._hwm_kb() - base) / 1024, r._hwm_kb() / 1024)"
    ) % (ROOT, lib_name, threads, lib_name, name)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    try:
        growth, total = map(float, out.stdout.strip().splitlines()[-1].split())
        return growth, total
    except (ValueError, IndexError):
        return float("nan"), float("nan")


def child_threads(lib_name, n):
    """``set_threads`` for one library only (a memory child must not import the other)."""
    if lib_name == "ember":
        from threadpoolctl import threadpool_limits

        from ember.backend import blas

        blas.start()
        threadpool_limits(n)
    else:
        import torch

        torch.set_num_threads(n)


def bench_loader(quick=False):
    """Images/s through DataLoader with RandomCrop+Flip+ToTensor+Normalize, 2 workers."""
    try:
        sys.path.insert(0, HERE)
        import data as bdata  # bench/data.py
    except ImportError:
        return None
    fn = getattr(bdata, "loader_pair", None)
    return fn(quick=quick) if fn else None


def bench_import(n=5):
    """Median wall time of ``import lib`` in fresh processes, bytecode cached for both libraries
    as an installed package has it (one untimed import first fills a private pycache; this
    environment may set PYTHONDONTWRITEBYTECODE, which would make every run compile ember)."""
    import tempfile

    res = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, PYTHONPYCACHEPREFIX=cache)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for lib in ("ember", "torch"):
            times = []
            for i in range(n + 1):
                out = subprocess.run(
                    [sys.executable, "-c",
                     f"import time,sys; sys.path.insert(0, {ROOT!r}); t=time.perf_counter(); "
                     f"import {lib}; print(time.perf_counter()-t)"],
                    capture_output=True, text=True, env=env)
                if i:
                    times.append(float(out.stdout.strip()))
            res[lib] = statistics.median(times)
    return res


def core_size_mb():
    """Size of ember's core package files (no extras, no bundled data, no caches)."""
    total = 0
    for dp, dn, fn in os.walk(os.path.join(ROOT, "ember")):
        if "__pycache__" in dp:
            continue
        total += sum(os.path.getsize(os.path.join(dp, f)) for f in fn)
    return total / 1e6


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load():
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except (AttributeError, OSError):
        return "load average n/a"


def build_parser(p=None):
    p = p or argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default="", help="comma-separated workloads: " +
                   ",".join(list(WORKLOADS) + ["loader", "import"]))
    p.add_argument("--reps", type=int, default=7, help="timed repetitions per library (median)")
    p.add_argument("--threads", type=int, default=THREADS, help="threads for each library")
    p.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    p.add_argument("--cpu-time", action="store_true",
                   help="time steps by process CPU time (needs --threads 1): on a shared, busy "
                        "machine this approximates an idle machine's single-thread timings")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory children")
    p.add_argument("--json", help="also write the results to this file")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    return run(args)


def run(args):
    set_threads(args.threads)
    only = [w for w in args.only.split(",") if w] or list(WORKLOADS) + ["loader", "import"]
    unknown = [w for w in only if w not in WORKLOADS and w not in ("loader", "import")]
    if unknown:
        raise ValueError(f"unknown workload(s) {unknown}; choose from "
                         f"{list(WORKLOADS) + ['loader', 'import']}")
    if getattr(args, "cpu_time", False) and args.threads != 1:
        raise ValueError("--cpu-time measures one thread's work: pass --threads 1 with it")
    clock = time.process_time if getattr(args, "cpu_time", False) else time.perf_counter
    reps = 2 if args.quick else args.reps
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                          "EMBER_DYNAMIC_THREADS", "EMBER_BLAS", "EMBER_ONEDNN")}
    from ember.backend import mkl, onednn
    from ember.backend.blas import mkl_active

    print(f"# ember bench: {time.strftime('%Y-%m-%d %H:%M')}, {_cpu_model()}, "
          f"{os.cpu_count()} cpus, {args.threads} threads each"
          f"{', CPU time' if clock is time.process_time else ''}, {_load()}; "
          + ", ".join(f"{k}={v}" for k, v in env.items())
          + f"; ember's large products on {'MKL' if mkl_active() else 'NumPy BLAS'}"
          + (f" (MKL's code path: {mkl.processor()})" if mkl.load() else "")
          + f", convolutions, LSTMs and GRUs on {'oneDNN' if onednn.available() else 'ember'}")
    print(f"{'workload':<10} {'ember ms/step':>14} {'torch ms/step':>14} {'torch/ember':>12} "
          f"{'ember MB':>9} {'torch MB':>9} {'ember peak':>11} {'torch peak':>11}")
    results = {}
    for name in only:
        if name in WORKLOADS:
            t = time_pair(name, reps, BLOCK_S / 5 if args.quick else BLOCK_S, clock)
            nan = (float("nan"),) * 2
            mem = ({} if args.no_memory else
                   {lib: peak_memory_child(lib, name, args.threads) for lib in ("ember", "torch")})
            (eg, ep), (tg, tp) = mem.get("ember", nan), mem.get("torch", nan)
            ratio = t["torch"] / t["ember"]
            results[name] = dict(ember_ms=t["ember"], torch_ms=t["torch"], ratio=ratio,
                                 ember_mb=eg, torch_mb=tg, ember_peak_mb=ep, torch_peak_mb=tp)
            print(f"{name:<10} {t['ember']:>14.3f} {t['torch']:>14.3f} {ratio:>12.2f} "
                  f"{eg:>9.1f} {tg:>9.1f} {ep:>11.1f} {tp:>11.1f}", flush=True)
        elif name == "loader":
            r = bench_loader(args.quick)
            if r is None:
                print("loader     (bench/data.py has no loader_pair yet)")
                continue
            results[name] = r
            print(f"{'loader':<10} {r['ember']:>11.0f} im/s {r['torch']:>9.0f} im/s "
                  f"{r['ember'] / r['torch']:>12.2f}", flush=True)
        elif name == "import":
            r = bench_import(3 if args.quick else 5)
            size = core_size_mb()
            results[name] = dict(ember_s=r["ember"], torch_s=r["torch"], core_mb=size)
            print(f"{'import':<10} {r['ember']:>12.3f} s {r['torch']:>12.3f} s "
                  f"{r['torch'] / r['ember']:>12.2f}   ember core {size:.2f} MB", flush=True)
    print(f"# finished {time.strftime('%H:%M')}, {_load()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
