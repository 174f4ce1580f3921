"""Download, verify and unpack dataset archives (torchvision.datasets.utils), defensively.

    >>> download_and_extract_archive(CIFAR10.url, "data", md5=CIFAR10.tgz_md5)

- A download goes to ``<file>.part`` and is renamed into place only after its md5 checks out, so
  a half-written or corrupted file is never used; a bad download is reported, deleted and fetched
  again (``retries`` attempts).
- ``http(s)://``, ``file://`` URLs via urllib with a timeout; a progress bar when tqdm is installed
  (``pip install "ember[progress]"``), none otherwise.
- Extraction refuses archive members with absolute paths or ``..``, links and device files (the
  tarfile ``data`` filter too, where Python has it); files land via a temporary folder and atomic
  renames.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import shutil
import stat
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile

__all__ = [
    "calculate_md5",
    "check_md5",
    "check_integrity",
    "download_url",
    "extract_archive",
    "download_and_extract_archive",
    "USER_AGENT",
]

USER_AGENT = "ember/vision"
_CHUNK = 1 << 20


def calculate_md5(fpath, chunk_size=_CHUNK):
    """md5 hex digest of a file, read in chunks."""
    md5 = hashlib.md5(usedforsecurity=False)
    with open(fpath, "rb") as f:
        while chunk := f.read(chunk_size):
            md5.update(chunk)
    return md5.hexdigest()


def check_md5(fpath, md5, **kwargs):
    return md5 == calculate_md5(fpath, **kwargs)


def check_integrity(fpath, md5=None):
    """True when ``fpath`` is a file and (if given) its md5 matches."""
    if not os.path.isfile(fpath):
        return False
    return True if md5 is None else check_md5(fpath, md5)


def _progress(total, desc):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, leave=False)


def _fetch(url, dest, timeout):
    """Copy ``url`` to ``dest``; raise OSError on a short read against Content-Length."""
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(req, timeout=timeout) as resp, open(dest, "wb") as out:
        total = resp.length if getattr(resp, "length", None) else None
        bar = _progress(total, os.path.basename(dest)[:-5])
        got = 0
        try:
            while chunk := resp.read(_CHUNK):
                out.write(chunk)
                got += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
    if total is not None and got < total:
        raise OSError(f"download of {url} was cut short: got {got} of {total} bytes")


def download_url(
    url, root, filename=None, md5=None, max_redirect_hops=3, *, retries=3, timeout=60.0
):
    """Download ``url`` to ``root/filename`` unless a verified copy is already there.

    A corrupted or partial file (md5 mismatch, short read, network error) is reported on stderr,
    deleted, and fetched again up to ``retries`` times; then RuntimeError says what went wrong.
    """
    root = os.path.expanduser(os.fspath(root))
    filename = filename or os.path.basename(url)
    fpath = os.path.join(root, filename)
    os.makedirs(root, exist_ok=True)
    if check_integrity(fpath, md5):
        return fpath
    if os.path.exists(fpath):
        print(
            f"{fpath} exists but its md5 is not {md5}: deleting it and downloading again",
            file=sys.stderr,
        )
        os.remove(fpath)
    part = fpath + ".part"
    problem = None
    for attempt in range(1, retries + 1):
        try:
            _fetch(url, part, timeout)
            if md5 is not None:
                got = calculate_md5(part)
                if got != md5:
                    raise OSError(f"md5 of the downloaded file is {got}, expected {md5}")
            os.replace(part, fpath)
            return fpath
        except (OSError, urllib.error.URLError) as e:  # URLError, HTTPError, timeouts, short reads
            problem = e
            if os.path.exists(part):
                os.remove(part)
            print(f"download of {url} failed (attempt {attempt}/{retries}): {e}", file=sys.stderr)
    raise RuntimeError(
        f"could not download {url} to {fpath} after {retries} attempts; last error: {problem}"
    )


def _refuse(member_name, archive, why):
    raise RuntimeError(f"refusing to extract {member_name!r} from {archive}: {why}")


def _check_name(name, archive):
    norm = name.replace("\\", "/")
    if norm.startswith("/") or os.path.isabs(name) or (len(norm) > 1 and norm[1] == ":"):
        _refuse(name, archive, "absolute path")
    if ".." in norm.split("/"):
        _refuse(name, archive, "path with '..' (would escape the destination)")


def _extract_tar(path, dest):
    with tarfile.open(path, "r:*") as tar:
        members = tar.getmembers()
        for m in members:
            _check_name(m.name, path)
            if m.issym() or m.islnk():
                _refuse(m.name, path, f"link to {m.linkname!r}")
            if not (m.isfile() or m.isdir()):
                _refuse(m.name, path, "device, fifo or other special file")
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members=members, filter="data")
        else:
            tar.extractall(dest, members=members)


def _extract_zip(path, dest):
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            _check_name(info.filename, path)
            if stat.S_ISLNK(info.external_attr >> 16):
                _refuse(info.filename, path, "symbolic link")
        zf.extractall(dest)


_DECOMPRESSORS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz")


def _move_tree(src, dest):
    """Move every file of ``src`` under ``dest`` with atomic per-file renames."""
    for dirpath, _, files in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        target_dir = os.path.normpath(os.path.join(dest, rel))
        os.makedirs(target_dir, exist_ok=True)
        for f in files:
            os.replace(os.path.join(dirpath, f), os.path.join(target_dir, f))


def extract_archive(from_path, to_path=None, remove_finished=False):
    """Unpack a tar(.gz/.bz2/.xz), zip, or single .gz/.bz2/.xz file; returns ``to_path``."""
    from_path = os.fspath(from_path)
    to_path = os.path.dirname(from_path) if to_path is None else os.fspath(to_path)
    os.makedirs(to_path, exist_ok=True)
    lower = from_path.lower()
    if lower.endswith(_TAR_SUFFIXES) or lower.endswith(".zip"):
        tmp = tempfile.mkdtemp(prefix=".extract-", dir=to_path)
        try:
            (_extract_zip if lower.endswith(".zip") else _extract_tar)(from_path, tmp)
            _move_tree(tmp, to_path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    else:
        suffix = os.path.splitext(lower)[1]
        if suffix not in _DECOMPRESSORS:
            raise RuntimeError(
                f"Archive type of {from_path} is not supported: use one of "
                f"{', '.join(_TAR_SUFFIXES + ('.zip', '.gz', '.bz2', '.xz'))}"
            )
        out = os.path.join(to_path, os.path.basename(from_path)[: -len(suffix)])
        with _DECOMPRESSORS[suffix](from_path, "rb") as src, open(out + ".part", "wb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
        os.replace(out + ".part", out)
    if remove_finished:
        os.remove(from_path)
    return to_path


def download_and_extract_archive(
    url, download_root, extract_root=None, filename=None, md5=None, remove_finished=False
):
    """``download_url`` then ``extract_archive`` (into ``extract_root``, default the same)."""
    download_root = os.path.expanduser(os.fspath(download_root))
    extract_root = download_root if extract_root is None else extract_root
    filename = filename or os.path.basename(url)
    archive = download_url(url, download_root, filename, md5)
    print(f"Extracting {archive} to {extract_root}", file=sys.stderr)
    return extract_archive(archive, extract_root, remove_finished)
