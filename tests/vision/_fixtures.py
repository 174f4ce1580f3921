"""Builders for dataset tests: Python-2-style CIFAR pickles and archives, IDX files, a local
HTTP server whose responses a test scripts (good bytes, wrong bytes, truncated bytes)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import os
import pickle
import struct
import tarfile
import threading

import numpy as np

_reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]

CIFAR10_LABELS = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


class Py2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2 byte strings (BINSTRING opcodes) and NumPy's array
    reconstructor under its NumPy-1 module name: the shape of the official CIFAR files."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2str(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_py2str
    dispatch[bytes] = save_py2str

    def save_global(self, obj, name=None):
        if obj is _reconstruct:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def py2_pickle(obj):
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def md5(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def make_cifar10_files(folder, n_train=20, n_test=10, seed=0):
    """Write data_batch_1..5, test_batch, batches.meta in the official layout; returns the
    expected (train data HWC, train labels, test data, test labels)."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    per = n_train // 5
    train_x = rng.integers(0, 256, (per * 5, 3072), dtype=np.uint8)
    train_y = [int(v) for v in rng.integers(0, 10, per * 5)]
    test_x = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    test_y = [int(v) for v in rng.integers(0, 10, n_test)]
    batches = [
        (
            f"data_batch_{i + 1}",
            train_x[i * per : (i + 1) * per],
            train_y[i * per : (i + 1) * per],
            f"training batch {i + 1} of 5",
        )
        for i in range(5)
    ]
    batches.append(("test_batch", test_x, test_y, "testing batch 1 of 1"))
    for name, x, y, label in batches:
        entry = {
            "batch_label": label,
            "labels": y,
            "data": x,
            "filenames": [f"img_{k}.png" for k in range(len(y))],
        }
        with open(os.path.join(folder, name), "wb") as f:
            f.write(py2_pickle(entry))
    meta = {"num_cases_per_batch": per, "label_names": CIFAR10_LABELS, "num_vis": 3072}
    with open(os.path.join(folder, "batches.meta"), "wb") as f:
        f.write(py2_pickle(meta))
    hwc = lambda a: a.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # noqa: E731
    return hwc(train_x), train_y, hwc(test_x), test_y


def cifar_subclass(base, folder, archive=None, url=None):
    """A subclass of CIFAR10 whose md5s are those of the files in ``folder``."""
    attrs = {
        "train_list": [[n, md5(os.path.join(folder, n))] for n, _ in base.train_list],
        "test_list": [[n, md5(os.path.join(folder, n))] for n, _ in base.test_list],
        "meta": dict(base.meta, md5=md5(os.path.join(folder, base.meta["filename"]))),
    }
    if archive is not None:
        attrs["tgz_md5"] = md5(archive)
    if url is not None:
        attrs["url"] = url
    return type("PatchedCIFAR10", (base,), attrs)


def make_tar_gz(path, src_dir, arcname):
    with tarfile.open(path, "w:gz") as tar:
        tar.add(src_dir, arcname=arcname)


def write_idx(path, arr, compress=None):
    """Write ``arr`` (uint8) as an IDX file; gzip when the name ends with .gz."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    data = header + arr.tobytes()
    if compress or (compress is None and str(path).endswith(".gz")):
        data = gzip.compress(data, mtime=0)
    with open(path, "wb") as f:
        f.write(data)


class FileServer:
    """Serve ``routes`` (path -> list of responses, each ``bytes`` or ``("truncate", bytes, n)``)
    on 127.0.0.1; each request to a path consumes its next response (the last one repeats)."""

    def __init__(self, routes):
        self.routes = {k: list(v) for k, v in routes.items()}
        self.hits = {k: 0 for k in routes}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                replies = server.routes.get(self.path)
                if not replies:
                    self.send_error(404)
                    return
                i = server.hits[self.path]
                server.hits[self.path] += 1
                reply = replies[min(i, len(replies) - 1)]
                if isinstance(reply, tuple):  # ("truncate", full bytes, n bytes actually sent)
                    _, body, n = reply
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[:n])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
