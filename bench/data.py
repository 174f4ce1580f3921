"""Data-loading throughput: ember's DataLoader against torch's on the same CIFAR-shaped arrays.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/data.py           # the table
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/data.py --memory  # RSS per epoch
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/data.py --transforms  # us/image

The dataset is torchvision's CIFAR10 without PIL: 50,000 HWC uint8 images in one array and a
list of int labels; ``__getitem__`` returns ``(transform(img), label)``. Pipelines:
(a) ToTensor + Normalize, (b) RandomCrop(32, padding=4) + RandomHorizontalFlip + ToTensor +
Normalize. ember uses ``ember.vision.transforms``; torch (torchvision cannot be installed
here) uses the small functions below, which do what torchvision's tensor transforms do, op for
op. Row "numpy (b)" runs the same NumPy transform code under both loaders, so it measures the
loaders alone. Timings are interleaved (ember, torch, ember, ...) and the median of ``--reps``
runs of ``--batches`` batches (after 3 warm-up batches, so worker start-up is excluded) is shown.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from ember.utils.data import DataLoader, get_worker_info  # noqa: E402

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


class CIFARLike:
    """torchvision.datasets.CIFAR10's storage and ``__getitem__``, minus PIL."""

    def __init__(self, data, targets, transform):
        self.data, self.targets, self.transform = data, targets, transform

    def __getitem__(self, index):
        img, target = self.data[index], self.targets[index]
        return self.transform(img), target

    def __len__(self):
        return len(self.data)


class ListBacked(CIFARLike):
    """The copy-on-write trap (``--memory`` only): one Python ``bytes`` object per image, as a
    dataset of encoded files often keeps them. Reading one writes its reference count, so a
    forked worker copies the page holding it, and private memory grows epoch after epoch."""

    def __init__(self, data, targets, transform):
        super().__init__([img.tobytes() for img in data], targets, transform)

    def __getitem__(self, index):
        img = np.frombuffer(self.data[index], np.uint8).reshape(32, 32, 3)
        return self.transform(img), self.targets[index]


# ------------------------------------------------ torch side: torchvision's tensor transforms
class TorchToTensor:  # torchvision ToTensor on an ndarray / ConvertImageDtype on a uint8 tensor
    def __call__(self, pic):
        if isinstance(pic, np.ndarray):
            pic = torch.from_numpy(pic.transpose((2, 0, 1))).contiguous()
        return pic.contiguous().to(dtype=torch.float32).div(255)


class TorchNormalize:  # torchvision.transforms.functional_tensor.normalize
    def __init__(self, mean, std):
        self.mean, self.std = mean, std

    def __call__(self, tensor):
        tensor = tensor.clone()
        mean = torch.as_tensor(self.mean, dtype=tensor.dtype, device=tensor.device)
        std = torch.as_tensor(self.std, dtype=tensor.dtype, device=tensor.device)
        if (std == 0).any():
            raise ValueError("std evaluated to zero")
        return tensor.sub_(mean.view(-1, 1, 1)).div_(std.view(-1, 1, 1))


class TorchRandomCrop:  # torchvision RandomCrop(size, padding) on a CHW tensor
    def __init__(self, size, padding):
        self.size, self.padding = size, padding

    def __call__(self, img):
        if isinstance(img, np.ndarray):
            img = torch.from_numpy(img).permute(2, 0, 1)
        p = self.padding
        img = torch.nn.functional.pad(img, [p, p, p, p], mode="constant", value=0)
        h, w = img.shape[-2:]
        i = torch.randint(0, h - self.size + 1, size=(1,)).item()
        j = torch.randint(0, w - self.size + 1, size=(1,)).item()
        return img[..., i:i + self.size, j:j + self.size]


class TorchRandomHorizontalFlip:
    def __call__(self, img):
        return img.flip(-1) if torch.rand(1) < 0.5 else img


class Compose:
    def __init__(self, fns):
        self.fns = fns

    def __call__(self, x):
        for f in self.fns:
            x = f(x)
        return x


# ------------------------------------------------ shared NumPy pipeline (loader-only row)
_NP_MEAN = np.array(MEAN, np.float32).reshape(3, 1, 1)
_NP_ISTD = (1 / np.array(STD, np.float32)).reshape(3, 1, 1)


def numpy_basic(img):
    """ToTensor + Normalize on NumPy."""
    return (img.transpose(2, 0, 1).astype(np.float32) * np.float32(1 / 255) - _NP_MEAN) * _NP_ISTD


def numpy_augment(img):
    """RandomCrop(32, 4) + flip + ToTensor + Normalize on NumPy (random from np.random)."""
    i, j, flip = np.random.randint(0, 9), np.random.randint(0, 9), np.random.rand() < 0.5
    padded = np.zeros((40, 40, 3), np.uint8)
    padded[4:36, 4:36] = img
    crop = padded[i:i + 32, j:j + 32]
    if flip:
        crop = crop[:, ::-1]
    chw = crop.transpose(2, 0, 1).astype(np.float32) * np.float32(1 / 255)
    return (chw - _NP_MEAN) * _NP_ISTD


def ember_pipelines():
    try:
        import ember.vision.transforms as T
    except Exception as e:  # report and fall back to the NumPy pipeline
        print(f"# ember.vision.transforms unavailable ({type(e).__name__}: {e})")
        return None
    norm = T.Normalize(MEAN, STD)
    return {"a": T.Compose([T.ToTensor(), norm]),
            "b": T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(),
                            T.ToTensor(), norm])}


def torch_pipelines():
    norm = TorchNormalize(MEAN, STD)
    return {"a": Compose([TorchToTensor(), norm]),
            "b": Compose([TorchRandomCrop(32, 4), TorchRandomHorizontalFlip(), TorchToTensor(),
                          norm])}


def throughput(loader_cls, dataset, workers, batches, batch_size):
    kw = {"num_workers": workers}
    loader = loader_cls(dataset, batch_size=batch_size, shuffle=True, **kw)
    it = iter(loader)
    for _ in range(3):
        next(it)
    t = time.perf_counter()
    n = 0
    for _ in range(batches):
        x, y = next(it)
        n += len(y)
    dt = time.perf_counter() - t
    del it
    return n / dt


def bench(args):
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (50000, 32, 32, 3), dtype=np.uint8)
    targets = rng.integers(0, 10, 50000).tolist()
    ep, tp = ember_pipelines(), torch_pipelines()
    rows = [("transforms", "a"), ("transforms", "b"), ("numpy", "b")]
    print(f"{'pipeline':<16} {'workers':>7} {'ember img/s':>12} {'torch img/s':>12} "
          f"{'ember/torch':>12}")
    for kind, key in rows:
        if kind == "numpy" or ep is None:
            e_ds = t_ds = CIFARLike(data, targets, numpy_augment if key == "b" else numpy_basic)
            label = f"numpy ({key})"
        else:
            e_ds, t_ds = CIFARLike(data, targets, ep[key]), CIFARLike(data, targets, tp[key])
            label = f"({key}) " + ("ToT+Norm" if key == "a" else "Crop+Flip+ToT+N")
        for workers in (0, 2):
            e, t = [], []
            for _ in range(args.reps):
                e.append(throughput(DataLoader, e_ds, workers, args.batches, 128))
                t.append(throughput(torch.utils.data.DataLoader, t_ds, workers, args.batches,
                                    128))
            me, mt = statistics.median(e), statistics.median(t)
            print(f"{label:<16} {workers:>7} {me:>12.0f} {mt:>12.0f} {me / mt:>12.2f}",
                  flush=True)


def loader_pair(quick=False, workers=2, batch_size=128):
    """bench/run.py's ``loader`` row: images/s of pipeline (b) (RandomCrop + Flip + ToTensor +
    Normalize) with 2 workers, ember and torch interleaved; returns ``{"ember": .., "torch": ..}``."""
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (50000, 32, 32, 3), dtype=np.uint8)
    targets = rng.integers(0, 10, 50000).tolist()
    ep, tp = ember_pipelines(), torch_pipelines()
    e_ds = CIFARLike(data, targets, ep["b"] if ep else numpy_augment)
    t_ds = CIFARLike(data, targets, tp["b"])
    batches, reps = (20, 2) if quick else (60, 3)
    e, t = [], []
    for _ in range(reps):
        e.append(throughput(DataLoader, e_ds, workers, batches, batch_size))
        t.append(throughput(torch.utils.data.DataLoader, t_ds, workers, batches, batch_size))
    return {"ember": statistics.median(e), "torch": statistics.median(t)}


# ------------------------------------------------------------------- per-sample transform cost
def transform_costs(args):
    """µs per image of each step of pipeline (b), ember against torch, on one (32, 32, 3) uint8
    HWC array (what ``CIFARLike`` yields); best of 5 ``timeit`` runs of 5,000 calls, 1 thread."""
    import timeit

    torch.set_num_threads(1)
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    ep, tp = ember_pipelines(), torch_pipelines()

    def us(fn, x, n=5000):
        return min(timeit.repeat(lambda: fn(x), number=n, repeat=5)) / n * 1e6

    def costs(pipe, steps):
        x, out = img, []
        for t in steps:
            out.append(us(t, x))
            x = t(x)
        return out + [us(pipe, img)]

    if ep is None:
        return
    e, t = costs(ep["b"], ep["b"].transforms), costs(tp["b"], tp["b"].fns)
    names = ("RandomCrop(32, 4)", "RandomHorizontalFlip", "ToTensor", "Normalize", "pipeline (b)")
    print(f"{'transform':<22} {'ember us':>9} {'torch us':>9}")
    for row in zip(names, e, t):
        print("{:<22} {:>9.2f} {:>9.2f}".format(*row))


# ------------------------------------------------------------------------ memory over epochs
def _mem_kb(pid):
    """(RSS, private = USS) in MiB of ``pid`` from /proc."""
    rss = uss = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, v = line.split(":", 1)
            if k == "Rss":
                rss = int(v.split()[0])
            elif k in ("Private_Clean", "Private_Dirty"):
                uss += int(v.split()[0])
    return rss / 1024, uss / 1024


def memory(args):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (50000, 32, 32, 3), dtype=np.uint8)
    targets = rng.integers(0, 10, 50000).tolist()
    ep = ember_pipelines()
    tf = ep["b"] if ep else numpy_augment
    for name, cls in (("numpy-array-backed (CIFAR10 layout)", CIFARLike),
                      ("list of per-image bytes (the trap)", ListBacked)):
        ds = cls(data, targets, tf)
        loader = DataLoader(ds, batch_size=128, shuffle=True, num_workers=2,
                            persistent_workers=True)
        print(f"\n{name}: RSS / private (USS) MiB at the end of each epoch")
        print(f"{'epoch':>5} {'main':>16} {'worker 0':>16} {'worker 1':>16}")
        for epoch in range(1, args.epochs + 1):
            for _ in loader:
                pass
            pids = [os.getpid()] + [w.pid for w in loader._iterator._workers]
            cells = ["{:7.1f} / {:6.1f}".format(*_mem_kb(p)) for p in pids]
            print(f"{epoch:>5} " + " ".join(f"{c:>16}" for c in cells), flush=True)
        del loader, ds


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=60)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--memory", action="store_true", help="RSS of main + workers over epochs")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--transforms", action="store_true", help="µs per image of each transform")
    a = p.parse_args()
    if a.transforms:
        transform_costs(a)
        sys.exit()
    memory(a) if a.memory else bench(a)
    assert get_worker_info() is None
