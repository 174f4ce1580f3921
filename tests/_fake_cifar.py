"""A learnable CIFAR-10 look-alike in the official format (Python-2 pickles + tar.gz).

Each class has its own colour and stripe pattern plus noise, so a small CNN learns it quickly.
The batch files are written the way Python 2's cPickle wrote the official ones: protocol 2,
``numpy.core.multiarray._reconstruct`` for the arrays and byte strings (``U``/``T`` opcodes).
"""

import hashlib
import io
import os
import pickle
import struct
import tarfile

import numpy as np

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]


class _Py2Pickler(pickle._Pickler):
    """Writes ``str``/``bytes`` as Python-2 byte strings, as cPickle did for the real files."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else bytes(obj)
        if len(raw) < 256:
            self.write(b"U" + bytes([len(raw)]) + raw)
        else:
            self.write(b"T" + struct.pack("<I", len(raw)) + raw)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str


def py2_pickle(obj):
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    # NumPy 2 names its module numpy._core; the files written by Python 2 say numpy.core.
    return buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def make_images(n, seed):
    """``(uint8 N x 3072 rows in CIFAR's R-plane, G-plane, B-plane order, labels)``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    palette = np.random.default_rng(99).integers(40, 216, (10, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)
    c = np.arange(10, dtype=np.float32)[:, None, None]
    angle = np.pi * c / 10
    stripes = 40 * np.sin((np.cos(angle) * xx + np.sin(angle) * yy) * (0.3 + 0.05 * c))
    imgs = palette[labels][:, :, None, None] + stripes[labels][:, None]
    imgs += 60 * rng.standard_normal(imgs.shape, dtype=np.float32)
    return np.clip(imgs, 0, 255).astype(np.uint8).reshape(n, 3072), labels.tolist()


def write_cifar10(root, n_train=1000, n_test=200, seed=0):
    """Write ``root/cifar-10-batches-py/*`` and ``root/cifar-10-python.tar.gz``; return md5s.

    The returned dict has the ``train_list``, ``test_list``, ``meta`` and ``tgz_md5`` values that
    make ``CIFAR10``'s integrity checks accept these files.
    """
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder, exist_ok=True)
    x, y = make_images(n_train + n_test, seed)
    files = {}
    per = n_train // 5
    for b in range(5):
        sl = slice(b * per, (b + 1) * per if b < 4 else n_train)
        files[f"data_batch_{b + 1}"] = {
            "batch_label": f"training batch {b + 1} of 5", "labels": y[sl], "data": x[sl],
            "filenames": [f"img_{i}.png" for i in range(sl.start, sl.stop)]}
    files["test_batch"] = {"batch_label": "testing batch 1 of 1", "labels": y[n_train:],
                           "data": x[n_train:],
                           "filenames": [f"test_{i}.png" for i in range(n_test)]}
    files["batches.meta"] = {"num_cases_per_batch": per, "label_names": CLASSES, "num_vis": 3072}
    md5 = {}
    for name, obj in files.items():
        raw = py2_pickle(obj)
        with open(os.path.join(folder, name), "wb") as f:
            f.write(raw)
        md5[name] = hashlib.md5(raw).hexdigest()
    tgz = os.path.join(root, "cifar-10-python.tar.gz")
    with tarfile.open(tgz, "w:gz", compresslevel=0) as tar:  # stored: fast
        tar.add(folder, arcname="cifar-10-batches-py")
    with open(tgz, "rb") as f:
        tgz_md5 = hashlib.md5(f.read()).hexdigest()
    return {
        "train_list": [[f"data_batch_{b}", md5[f"data_batch_{b}"]] for b in range(1, 6)],
        "test_list": [["test_batch", md5["test_batch"]]],
        "meta": {"filename": "batches.meta", "key": "label_names", "md5": md5["batches.meta"]},
        "tgz_md5": tgz_md5,
    }


def patch_source(md5s):
    """Python source that points ``CIFAR10``'s checksums at the look-alike files."""
    return ("import ember.vision.datasets as _d\n"
            f"_d.CIFAR10.train_list = {md5s['train_list']!r}\n"
            f"_d.CIFAR10.test_list = {md5s['test_list']!r}\n"
            f"_d.CIFAR10.meta = {md5s['meta']!r}\n"
            f"_d.CIFAR10.tgz_md5 = {md5s['tgz_md5']!r}\n")


def patch_checksums(monkeypatch, md5s):
    """In this process, point ``CIFAR10``'s checksums at the look-alike (undone after the test)."""
    from ember.vision.datasets import CIFAR10

    for name in ("train_list", "test_list", "meta", "tgz_md5"):
        monkeypatch.setattr(CIFAR10, name, md5s[name])
