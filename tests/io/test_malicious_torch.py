"""Malicious and malformed PyTorch checkpoints, generated here: each one raises one clear error
(``ember.serialization.CheckpointError``, of which ``TorchFileError`` is the torch reader's
subclass), runs nothing (a canary file the payload would create never appears) and is refused
before any unbounded allocation (bombs run in a child process under RLIMIT_AS)."""

import io
import os
import pickle
import random
import struct
import subprocess
import sys
import textwrap
import zipfile

import pytest
import torch

import ember
from ember.io.torch_format import MAGIC_NUMBER, TorchFileError
from ember.serialization import CheckpointError

CANARY = f"/tmp/ember-canary-{os.getpid()}"


def _p(obj):
    """The opcodes that push ``obj`` (a protocol-2 pickle without PROTO and STOP)."""
    return pickle.dumps(obj, protocol=2)[2:-1]


def _str(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _glob(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def _stack_glob(module, name):
    return _str(module) + _str(name) + b"\x93"


def _zip(pkl, storages=None, prefix="archive/", compress=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compress) as z:
        z.writestr(prefix + "data.pkl", pkl)
        z.writestr(prefix + "byteorder", "little")
        for k, v in (storages or {}).items():
            z.writestr(f"{prefix}data/{k}", v)
        z.writestr(prefix + "version", "3\n")
    return buf.getvalue()


def _legacy(pkl, keys=(), data=b""):
    info = {"protocol_version": 1001, "little_endian": True,
            "type_sizes": {"short": 2, "int": 4, "long": 4}}
    return (pickle.dumps(MAGIC_NUMBER, 2) + pickle.dumps(1001, 2) + pickle.dumps(info, 2) + pkl
            + pickle.dumps(list(keys), 2) + data)


# ------------------------------------------------------------------ payloads that run code
_SH = f"touch {CANARY}"
_PY = f"open({CANARY!r}, 'w').close()"
_CALLS = [
    ("os", "system", (_SH,)), ("posix", "system", (_SH,)), ("subprocess", "call", (_SH,)),
    ("subprocess", "Popen", (["sh", "-c", _SH],)), ("subprocess", "check_output", (_SH,)),
    ("subprocess", "run", (["sh", "-c", _SH],)), ("os", "popen", (_SH,)),
    ("builtins", "eval", (_PY,)), ("builtins", "exec", (_PY,)), ("__builtin__", "eval", (_PY,)),
    ("builtins", "open", (CANARY, "w")), ("io", "open", (CANARY, "w")),
    ("codecs", "open", (CANARY, "w")), ("builtins", "__import__", ("os",)),
    ("importlib", "import_module", ("os",)), ("builtins", "compile", (_PY, "x", "exec")),
    ("builtins", "getattr", (0, "__class__")), ("builtins", "setattr", (0, "x", 1)),
    ("pathlib", "Path", (CANARY,)), ("shutil", "copyfile", ("/etc/hostname", CANARY)),
    ("runpy", "run_path", ("/dev/null",)), ("pty", "spawn", (_SH,)), ("sys", "exit", (0,)),
    ("functools", "partial", (print,)), ("operator", "attrgetter", ("x",)),
    ("numpy.core.multiarray", "_reconstruct", (0,)), ("numpy", "load", (CANARY,)),
    ("torch", "load", (CANARY,)), ("torch.serialization", "load", (CANARY,)),
    ("torch._utils", "_rebuild_from_type_v2", (0,)), ("torch.nn.modules.linear", "Linear", (1, 1)),
    ("torch._C", "_set_grad_enabled", (False,)), ("collections", "namedtuple", ("x", "y")),
    ("copyreg", "_reconstructor", (0,)), ("ember.io.checkpoint", "load", (CANARY,)),
]


def _global_cases():
    for module, name, args in _CALLS:
        yield f"GLOBAL:{module}.{name}", b"\x80\x02" + _glob(module, name) + _p(args) + b"R."
        yield f"STACK_GLOBAL:{module}.{name}", (b"\x80\x04" + _stack_glob(module, name)
                                                + _p(args) + b"R.")
    # the global hidden inside an allowed structure, or built from memoised strings
    yield "nested-in-dict", (b"\x80\x02}" + _str("w") + _glob("os", "system") + _p((_SH,))
                             + b"Rs.")
    yield "stack-global-memo", (b"\x80\x04" + _str("os") + b"\x94" + _str("system") + b"\x94"
                                + b"h\x00h\x01\x93" + _p((_SH,)) + b"R.")
    yield "getattr-import", (b"\x80\x02" + _glob("builtins", "getattr") + b"(" +
                             _glob("builtins", "__import__") + _p(("os",)) + b"R" +
                             _str("system") + b"tR" + _p((_SH,)) + b"R.")
    yield "INST", b"(" + _p(_SH) + b"ios\nsystem\n."
    yield "OBJ", b"\x80\x02(" + _glob("os", "system") + _p(_SH) + b"o."
    yield "NEWOBJ", b"\x80\x02" + _glob("os", "system") + _p((_SH,)) + b"\x81."
    yield "NEWOBJ-allowed-class", (b"\x80\x02" + _glob("collections", "OrderedDict") + b")\x81."
                                   )
    yield "NEWOBJ_EX", b"\x80\x04" + _stack_glob("os", "system") + _p((_SH,)) + b"}\x92."
    yield "EXT1", b"\x80\x02\x82\x01" + _p((_SH,)) + b"R."
    yield "PERSID-text", b"Pos.system\n."

    class Evil:
        def __reduce__(self):
            return (os.system, (_SH,))

    for proto in range(6):
        yield f"__reduce__-protocol-{proto}", pickle.dumps({"w": Evil()}, protocol=proto)


GLOBAL_CASES = list(_global_cases())


# ------------------------------------------------- allowed globals used with hostile arguments
def _pid(key="0", numel=4, stype=("torch", "FloatStorage"), loc="cpu"):
    return b"(" + _str("storage") + _glob(*stype) + _p(key) + _p(loc) + _p(numel) + b"tQ"


def _tensor(pid=None, offset=0, size=(4,), stride=(1,), rg=False, hooks=b")R", extra=b""):
    return (b"\x80\x02" + _glob("torch._utils", "_rebuild_tensor_v2") + b"(" +
            (pid if pid is not None else _pid()) + _p(offset) + _p(size) + _p(stride) + _p(rg)
            + _glob("collections", "OrderedDict") + hooks + extra + b"tR.")


_F4 = {"0": b"\0" * 16}
ARG_CASES = [  # (name, pickle, storages)
    ("offset-past-end", _tensor(offset=4), _F4),
    ("size-past-end", _tensor(size=(5,)), _F4),
    ("stride-past-end", _tensor(size=(2,), stride=(4,)), _F4),
    ("huge-size-overflow", _tensor(size=(2 ** 40, 2 ** 40), stride=(1, 1)), _F4),
    ("size-2**70", _tensor(size=(2 ** 70,)), _F4),
    ("negative-stride", _tensor(size=(2,), stride=(-1,), offset=3), _F4),
    ("negative-size", _tensor(size=(-4,)), _F4),
    ("negative-offset", _tensor(offset=-1), _F4),
    ("size-stride-mismatch", _tensor(size=(2, 2), stride=(1,)), _F4),
    ("size-not-ints", _tensor(size=("a",)), _F4),
    ("too-many-dims", _tensor(size=(1,) * 100, stride=(1,) * 100), _F4),
    ("requires-grad-not-bool", _tensor(rg=1), _F4),
    ("backward-hooks", _tensor(hooks=b")R" + _p("k") + _p(1) + b"s"), _F4),
    ("storage-is-a-string", _tensor(pid=_p("not a storage")), _F4),
    ("storage-larger-than-file", _tensor(pid=_pid(numel=10 ** 12)), _F4),
    ("storage-size-mismatch", _tensor(pid=_pid(numel=3), size=(3,)), _F4),
    ("pid-key-outside-archive", _tensor(pid=_pid(key="../../../etc/passwd")), _F4),
    ("pid-key-missing", _tensor(pid=_pid(key="7")), _F4),
    ("pid-key-not-str", _tensor(pid=_pid(key=0)), _F4),
    ("pid-location-not-str", _tensor(pid=_pid(loc=None)), _F4),
    ("pid-type-not-storage", _tensor(pid=_pid(stype=("collections", "OrderedDict"))), _F4),
    ("pid-not-tuple", b"\x80\x02" + _p("storage") + b"Q.", _F4),
    ("pid-wrong-length", b"\x80\x02" + _p(("storage", 1)) + b"Q.", _F4),
    ("pid-module", b"\x80\x02" + _p(("module", "x", "y", "z")) + b"Q.", _F4),
    ("pid-unsupported-dtype", _tensor(pid=_pid(stype=("torch", "ComplexFloatStorage"))), _F4),
    ("v3-bfloat16-over-bytes", b"\x80\x02" + _glob("torch._utils", "_rebuild_tensor_v3") + b"(" +
     _pid(stype=("torch", "UntypedStorage"), numel=16) + _p(0) + _p((4,)) + _p((1,)) + _p(False)
     + b"N" + _glob("torch", "bfloat16") + b"tR.", {"0": b"\0" * 16}),
    ("parameter-of-a-string", b"\x80\x02" + _glob("torch._utils", "_rebuild_parameter") +
     _p(("x", True, None)) + b"R.", {}),
    ("codecs-other-encoding", b"\x80\x02" + _glob("_codecs", "encode") +
     _p(("x", "zlib_codec")) + b"R.", {}),
    ("device-evil", b"\x80\x02" + _glob("torch", "device") + _p(("evil",)) + b"R.", {}),
    ("size-of-strings", b"\x80\x02" + _glob("torch", "Size") + _p((("a",),)) + b"R.", {}),
    ("set-of-unhashable", b"\x80\x02" + _glob("builtins", "set") + _p(([[1]],)) + b"R.", {}),
    ("bytearray-of-huge-int", b"\x80\x02" + _glob("builtins", "bytearray") + _p((10 ** 12,))
     + b"R.", {}),
    ("complex-of-strings", b"\x80\x02" + _glob("builtins", "complex") + _p(("1+2j",)) + b"R.",
     {}),
    ("counter-of-a-list", b"\x80\x02" + _glob("collections", "Counter") + _p((["a"] * 9,))
     + b"R.", {}),
    ("build-on-list", b"\x80\x02]" + _p({"x": 1}) + b"b.", {}),
    ("build-odict-slotstate", b"\x80\x02" + _glob("collections", "OrderedDict") + b")R" +
     _p((None, {"x": 1})) + b"b.", {}),
    ("unsupported-dtype-global", b"\x80\x02" + _glob("torch", "complex64") + b".", {}),
    ("deep-lists", b"\x80\x02" + b"]" * 5000 + b"a" * 4999 + b".", {}),
    ("deep-tuples", b"\x80\x02" + b"(" * 3000 + b"t" * 3000 + b".", {}),
    ("deep-dicts", b"\x80\x02" + (b"}" + _p("k")) * 3000 + b"N" + b"s" * 3000 + b".", {}),
    ("self-containing-list", b"\x80\x02]q\x00h\x00a.", {}),
    ("empty-pickle", b"", {}),
    ("truncated-pickle", _tensor()[:-5], _F4),
    ("stack-underflow", b"\x80\x02R.", {}),
    ("bad-opcode", b"\x80\x02\xff.", {}),
    ("bad-utf8", b"\x80\x02X\x02\x00\x00\x00\xff\xfe.", {}),
    ("huge-string-length", b"\x80\x02X\xff\xff\xff\x7f" + b"a" * 10 + b".", {}),
    ("huge-long-text", b"\x80\x02L" + b"9" * 100000 + b"L\n.", {}),
]


def _assert_refused(path, canary, cls=CheckpointError):
    with pytest.raises(CheckpointError) as ei:
        ember.load(path)
    assert isinstance(ei.value, cls), f"{type(ei.value).__name__}: {ei.value}"
    assert os.path.basename(path) in str(ei.value)
    assert not os.path.exists(canary), "the payload ran"
    return str(ei.value)


@pytest.fixture(autouse=True)
def _no_canary():
    if os.path.exists(CANARY):
        os.unlink(CANARY)
    yield
    assert not os.path.exists(CANARY), "a payload ran"


@pytest.mark.parametrize("name,pkl", GLOBAL_CASES, ids=[c[0] for c in GLOBAL_CASES])
@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_code_running_pickles_are_refused(tmp_path, name, pkl, container):
    path = tmp_path / "evil.pt"
    path.write_bytes(_zip(pkl) if container == "zip" else _legacy(pkl))
    msg = _assert_refused(path, CANARY, TorchFileError)
    if name.startswith(("GLOBAL", "STACK_GLOBAL")) and "numpy" not in name:
        module, gname = name.split(":")[1].rsplit(".", 1)
        module = "builtins" if module == "__builtin__" else module
        assert f"needs the global '{module}.{gname}', which is not allowed" in msg
        assert "ember never runs code from a checkpoint" in msg
        with pytest.raises(pickle.UnpicklingError):  # also what torch.load raises here
            ember.load(path)


@pytest.mark.parametrize("name,pkl,storages", ARG_CASES, ids=[c[0] for c in ARG_CASES])
def test_hostile_arguments_are_refused(tmp_path, name, pkl, storages):
    path = tmp_path / "bad.pt"
    path.write_bytes(_zip(pkl, storages))
    _assert_refused(path, CANARY, TorchFileError)


def _real_file(new_zip=True):
    buf = io.BytesIO()
    torch.save({"w": torch.arange(64.0), "b": torch.ones(3, dtype=torch.int64)}, buf,
               _use_new_zipfile_serialization=new_zip)
    return buf.getvalue()


@pytest.mark.parametrize("new_zip", [True, False])
def test_every_truncation_is_refused(tmp_path, new_zip):
    data = _real_file(new_zip)
    cuts = sorted(set(range(0, len(data), max(1, len(data) // 40))) | {len(data) - 1})
    for cut in cuts:
        path = tmp_path / f"cut{cut}.pt"
        path.write_bytes(data[:cut])
        _assert_refused(path, CANARY)


def test_corrupted_central_directory_and_headers(tmp_path):
    data = _real_file()
    cd = data.rfind(b"PK\x01\x02")
    first_cd = data.find(b"PK\x01\x02")
    rng = random.Random(0)
    cases = []
    for _ in range(12):  # flip bytes inside the central directory
        b = bytearray(data)
        for _ in range(4):
            b[rng.randrange(first_cd, len(b))] ^= 0xFF
        cases.append(bytes(b))
    b = bytearray(data)  # a storage's declared sizes grown past the end of the file
    struct.pack_into("<II", b, cd + 20, 2 ** 31, 2 ** 31)
    cases.append(bytes(b))
    b = bytearray(data)  # header offsets past the end
    struct.pack_into("<I", b, cd + 42, len(data) * 10)
    cases.append(bytes(b))
    b = bytearray(data)  # the encrypted flag set on every local and central header
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = b.find(sig)
        while i >= 0:
            b[i + off] |= 1
            i = b.find(sig, i + 1)
    cases.append(bytes(b))
    for i, blob in enumerate(cases):
        path = tmp_path / f"cd{i}.pt"
        path.write_bytes(blob)
        try:
            got = ember.load(path)
        except CheckpointError as e:
            assert f"cd{i}.pt" in str(e)
            continue
        # A flip that only hits fields no reader uses may still load: then it loads right.
        assert got["w"].tolist() == list(range(64))


def test_duplicate_and_missing_records(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a/data.pkl", _tensor())
        z.writestr("b/data.pkl", _tensor())
    (tmp_path / "two.pt").write_bytes(buf.getvalue())
    _assert_refused(tmp_path / "two.pt", CANARY, TorchFileError)
    (tmp_path / "nobytes.pt").write_bytes(_zip(_tensor(), {}))
    assert "missing" in _assert_refused(tmp_path / "nobytes.pt", CANARY, TorchFileError)


@pytest.mark.parametrize("seed", range(16))
def test_random_bytes(tmp_path, seed):
    rng = random.Random(seed)
    prefix = [b"", b"PK\x03\x04", pickle.dumps(MAGIC_NUMBER, 2), b"\x80\x02"][seed % 4]
    path = tmp_path / "rand.pt"
    path.write_bytes(prefix + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4000))))
    _assert_refused(path, CANARY)


def test_legacy_specific_damage(tmp_path):
    good = _legacy(_tensor(pid=b"(" + _str("storage") + _glob("torch", "FloatStorage") +
                           _p("0") + _p("cpu") + _p(4) + b"NtQ"), ["0"],
                   struct.pack("<q", 4) + b"\0" * 16)
    (tmp_path / "ok.pt").write_bytes(good)
    assert ember.load(tmp_path / "ok.pt").tolist() == [0.0] * 4
    bad = {
        "wrong-keys": good.replace(pickle.dumps(["0"], 2), pickle.dumps(["1"], 2)),
        "count-mismatch": good.replace(struct.pack("<q", 4), struct.pack("<q", 5)),
        "protocol": good.replace(pickle.dumps(1001, 2), pickle.dumps(1002, 2)),
        "storage-claims-more-than-file": good.replace(_p(4) + b"NtQ", _p(10 ** 9) + b"NtQ"),
        "view-metadata": good.replace(_p(4) + b"NtQ", _p(4) + _p(("0", 0, 4)) + b"tQ"),
    }
    for name, blob in bad.items():
        path = tmp_path / f"{name}.pt"
        path.write_bytes(blob)
        _assert_refused(path, CANARY, TorchFileError)


_CHILD = textwrap.dedent("""
    import resource, sys
    import ember, ember.io.torch_format
    from ember.serialization import CheckpointError
    with open("/proc/self/statm") as f:
        vm = int(f.read().split()[0]) * resource.getpagesize()
    limit = vm + (384 << 20)   # everything below runs in 384 MB more address space
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    for path in sys.argv[1:]:
        try:
            ember.load(path)
        except CheckpointError as e:
            print("refused", path, str(e)[-300:])
        else:
            print("loaded", path)
""")


def test_bombs_are_refused_before_allocating(tmp_path):
    zeros = b"\0" * (96 << 20)
    files = []
    # a deflated pickle of 96 MB of zeros (~100 KB on disk): beyond the expansion budget
    files.append(("pickle-bomb.pt", _zip(zeros, compress=zipfile.ZIP_DEFLATED)))
    # a deflated 96 MB storage that the pickle asks for in full
    files.append(("storage-bomb.pt", _zip(_tensor(pid=_pid(numel=24 << 20), size=(24 << 20,)),
                                          {"0": zeros}, compress=zipfile.ZIP_DEFLATED)))
    # a small record whose declared uncompressed size is patched to 4 GB
    blob = bytearray(_zip(_tensor(), _F4, compress=zipfile.ZIP_DEFLATED))
    cd = blob.find(b"PK\x01\x02")
    struct.pack_into("<I", blob, cd + 24, 0xFFFFFFF0)
    files.append(("declared-4gb.pt", bytes(blob)))
    # a legacy file whose storage claims 10**11 elements
    files.append(("legacy-claim.pt", _legacy(_tensor(pid=b"(" + _str("storage") + _glob(
        "torch", "FloatStorage") + _p("0") + _p("cpu") + _p(10 ** 11) + b"NtQ"), ["0"])))
    # memo index 2**32-16: the C unpickler would allocate ~32 GB for it
    files.append(("memo-bomb.pt", _zip(b"\x80\x02N r\xf0\xff\xff\xff\x94." + b"")))
    files.append(("memo-bomb2.pt", _zip(b"\x80\x02}r\xf0\xff\xff\xff0" + _glob("os", "system")
                                        + b".")))
    paths = []
    for name, blob in files:
        assert len(blob) < (1 << 20)  # small files...
        (tmp_path / name).write_bytes(blob)
        paths.append(str(tmp_path / name))
    env = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH",
                                                                               ""))
    out = subprocess.run([sys.executable, "-c", _CHILD, *paths], capture_output=True, text=True,
                         timeout=120, env=env, cwd=os.getcwd(), check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert len(lines) == len(paths), out.stdout + out.stderr
    for line in lines:  # ...refused without touching the memory they claim
        assert line.startswith("refused") or "memo-bomb.pt" in line, line
    assert any("zip bomb" in line for line in lines)
    assert not os.path.exists(CANARY)


def test_case_count():
    # code-running pickles (zip and legacy) + hostile arguments; truncations, damaged
    # directories, random bytes, legacy damage and bombs come on top
    assert 2 * len(GLOBAL_CASES) + len(ARG_CASES) >= 200
