"""Downloads from a local HTTP server on 127.0.0.1 and from file:// URLs: verification,
corruption, truncation, retry, and safe extraction (no network)."""

import gzip
import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ember.vision import datasets
from ember.vision.datasets import utils as dutils
from tests.vision._fixtures import (
    FileServer,
    cifar_subclass,
    make_cifar10_files,
    make_tar_gz,
    md5,
    write_idx,
)

pytest.importorskip("PIL.Image")
PAYLOAD = bytes(range(256)) * 40
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()


def test_download_url_good_then_cached(tmp_path):
    with FileServer({"/f.bin": [PAYLOAD]}) as srv:
        path = dutils.download_url(srv.url + "/f.bin", str(tmp_path), md5=PAYLOAD_MD5)
        assert Path(path).read_bytes() == PAYLOAD
        dutils.download_url(srv.url + "/f.bin", str(tmp_path), md5=PAYLOAD_MD5)
        assert srv.hits["/f.bin"] == 1  # verified copy reused
    assert not os.path.exists(path + ".part")


def test_corrupted_download_is_reported_deleted_and_retried(tmp_path, capsys):
    wrong = b"\x00" * len(PAYLOAD)
    with FileServer({"/f.bin": [wrong, PAYLOAD]}) as srv:
        path = dutils.download_url(srv.url + "/f.bin", str(tmp_path), md5=PAYLOAD_MD5)
        assert srv.hits["/f.bin"] == 2
    assert Path(path).read_bytes() == PAYLOAD
    err = capsys.readouterr().err
    assert "attempt 1/3" in err and f"expected {PAYLOAD_MD5}" in err


def test_truncated_download_is_detected_and_retried(tmp_path, capsys):
    with FileServer({"/f.bin": [("truncate", PAYLOAD, 1000), PAYLOAD]}) as srv:
        path = dutils.download_url(srv.url + "/f.bin", str(tmp_path), md5=None)
        assert srv.hits["/f.bin"] == 2
    assert Path(path).read_bytes() == PAYLOAD  # even with no md5 the short read is caught
    assert "attempt 1/3" in capsys.readouterr().err


def test_always_bad_download_fails_and_leaves_nothing(tmp_path):
    with FileServer({"/f.bin": [b"garbage"]}) as srv:
        with pytest.raises(RuntimeError, match=r"could not download .*f\.bin.* after 3 attempts"):
            dutils.download_url(srv.url + "/f.bin", str(tmp_path), md5=PAYLOAD_MD5)
        assert srv.hits["/f.bin"] == 3
        with pytest.raises(RuntimeError, match="HTTP Error 404"):
            dutils.download_url(srv.url + "/missing", str(tmp_path), retries=1)
    assert os.listdir(tmp_path) == []


def test_existing_corrupted_file_is_replaced(tmp_path, capsys):
    (tmp_path / "f.bin").write_bytes(PAYLOAD[:10])
    src = tmp_path / "src"
    src.mkdir()
    (src / "f.bin").write_bytes(PAYLOAD)
    dutils.download_url((src / "f.bin").as_uri(), str(tmp_path), md5=PAYLOAD_MD5)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD
    assert "exists but its md5" in capsys.readouterr().err


def _cifar_archive(tmp_path):
    stage = tmp_path / "stage"
    make_cifar10_files(str(stage / "cifar-10-batches-py"))
    archive = tmp_path / "cifar-10-python.tar.gz"
    make_tar_gz(str(archive), str(stage / "cifar-10-batches-py"), "cifar-10-batches-py")
    return stage / "cifar-10-batches-py", archive


def test_cifar10_download_over_http_with_a_corrupted_first_response(tmp_path, capsys):
    folder, archive = _cifar_archive(tmp_path)
    blob = archive.read_bytes()
    bad = blob[:100] + bytes(1) + blob[101:]
    with FileServer({"/cifar-10-python.tar.gz": [bad, blob]}) as srv:
        C = cifar_subclass(
            datasets.CIFAR10,
            str(folder),
            archive=str(archive),
            url=srv.url + "/cifar-10-python.tar.gz",
        )
        root = tmp_path / "root"
        ds = C(str(root), train=True, download=True)
        assert srv.hits["/cifar-10-python.tar.gz"] == 2
        assert len(ds) == 20 and ds._check_integrity()
        assert md5(root / "cifar-10-python.tar.gz") == C.tgz_md5
        C(str(root), download=True)  # verified: no new request
        assert srv.hits["/cifar-10-python.tar.gz"] == 2
    assert "failed (attempt 1/3)" in capsys.readouterr().err
    assert not any(n.startswith(".extract") or n.endswith(".part") for n in os.listdir(root))


def test_cifar10_download_from_file_url_and_repair_of_a_damaged_batch(tmp_path):
    folder, archive = _cifar_archive(tmp_path)
    C = cifar_subclass(datasets.CIFAR10, str(folder), archive=str(archive), url=archive.as_uri())
    root = tmp_path / "root"
    C(str(root), download=True)
    batch = root / "cifar-10-batches-py" / "data_batch_4"
    batch.write_bytes(batch.read_bytes()[:500])  # a half-written batch file
    with pytest.raises(RuntimeError, match="corrupted"):
        C(str(root))
    assert len(C(str(root), download=True)) == 20  # re-extracted from the verified archive


def _tar_with(tmp_path, add):
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        add(tar)
    return path


def _file(tar, name, data=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize(
    "kind,message",
    [
        ("dotdot", "'..'"),
        ("absolute", "absolute path"),
        ("symlink", "link to"),
        ("hardlink", "link to"),
        ("device", "device"),
    ],
)
def test_unsafe_archive_members_are_refused(tmp_path, kind, message):
    def add(tar):
        _file(tar, "cifar-10-batches-py/ok")
        if kind == "dotdot":
            _file(tar, "cifar-10-batches-py/../../evil")
        elif kind == "absolute":
            _file(tar, str(tmp_path / "abs_evil"))
        elif kind in ("symlink", "hardlink"):
            info = tarfile.TarInfo("cifar-10-batches-py/link")
            info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
        else:
            info = tarfile.TarInfo("cifar-10-batches-py/dev")
            info.type = tarfile.CHRTYPE
            tar.addfile(info)

    archive = _tar_with(tmp_path, add)
    dest = tmp_path / "out"
    with pytest.raises(RuntimeError, match=f"refusing to extract .*{message}"):
        dutils.extract_archive(str(archive), str(dest))
    assert not (tmp_path / "evil").exists() and not (tmp_path / "abs_evil").exists()
    assert not (dest / "cifar-10-batches-py").exists()  # nothing from a refused archive is kept


def test_zip_and_gz_extraction(tmp_path):
    zpath = tmp_path / "a.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("d/x.txt", "hello")
    dutils.extract_archive(str(zpath), str(tmp_path / "z"))
    assert (tmp_path / "z" / "d" / "x.txt").read_text() == "hello"
    with zipfile.ZipFile(tmp_path / "b.zip", "w") as zf:
        zf.writestr("../evil.txt", "no")
    with pytest.raises(RuntimeError, match="'..'"):
        dutils.extract_archive(str(tmp_path / "b.zip"), str(tmp_path / "z2"))
    (tmp_path / "c.bin.gz").write_bytes(gzip.compress(b"abc"))
    dutils.extract_archive(str(tmp_path / "c.bin.gz"), str(tmp_path / "g"))
    assert (tmp_path / "g" / "c.bin").read_bytes() == b"abc"
    with pytest.raises(RuntimeError, match="Archive type of .* is not supported"):
        dutils.extract_archive(str(tmp_path / "a.rar"))


def test_mnist_download_tries_the_next_mirror(tmp_path, capsys):
    stage = tmp_path / "stage"
    stage.mkdir()
    rng = np.random.default_rng(0)
    resources = []
    for prefix in ("train", "t10k"):
        for kind, arr in (
            ("images-idx3", rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)),
            ("labels-idx1", rng.integers(0, 10, 7).astype(np.uint8)),
        ):
            name = f"{prefix}-{kind}-ubyte.gz"
            write_idx(stage / name, arr)
            resources.append((name, md5(stage / name)))
    routes = {f"/good/{n}": [(stage / n).read_bytes()] for n, _ in resources}
    with FileServer(routes) as srv:
        M = type(
            "M",
            (datasets.MNIST,),
            {"mirrors": [srv.url + "/dead/", srv.url + "/good/"], "resources": resources},
        )
        ds = M(str(tmp_path / "root"), train=True, download=True)
    assert len(ds) == 7
    raw = tmp_path / "root" / "M" / "raw"
    assert (raw / "train-images-idx3-ubyte").exists() and (
        raw / "t10k-labels-idx1-ubyte.gz"
    ).exists()
    assert "trying next" in capsys.readouterr().err
