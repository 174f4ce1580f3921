"""Hostile and broken files: each is refused with one clear error naming the file, and no code
from the file ever runs (a canary file that the payloads would create never appears)."""

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch

import ember
from ember.serialization import CheckpointError, WeightsOnlyUnpicklingError


def _ckpt_bytes():
    buf = io.BytesIO()
    ember.save({"w": ember.arange(64, dtype=ember.float32).reshape(8, 8), "b": ember.ones(8),
                "step": 12, "name": "run"}, buf)
    return buf.getvalue()


def _zip(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _ember_pickle_zip(pkl):
    header = {"format": "ember.checkpoint", "version": 1, "kind": "pickle", "tensors": []}
    return _zip({"data.json": json.dumps(header), "data.pkl": pkl})


def _write(tmp_path, data, name="model.pt"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


class _Payload:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _payloads(canary):
    cmd = f"touch {canary}"
    return {
        "os.system": pickle.dumps(_Payload(os.system, (cmd,))),
        "eval": pickle.dumps(_Payload(eval, (f"__import__('os').system({cmd!r})",))),
        "exec": pickle.dumps(_Payload(exec, (f"open({str(canary)!r}, 'w')",))),
        "open": pickle.dumps(_Payload(open, (str(canary), "w"))),
        "nested-in-dict": pickle.dumps({"w": [1, _Payload(os.system, (cmd,))]}),
        "getattr-import": (b"\x80\x04cbuiltins\ngetattr\n(cbuiltins\n__import__\n(Vos\ntRVsystem\ntR"
                           b"(V" + cmd.encode() + b"\ntR."),
        "protocol0": pickle.dumps(_Payload(os.system, (cmd,)), protocol=0),
        "defaultdict-factory": pickle.dumps(_Payload(
            __import__("collections").defaultdict, (os.system,))),
    }


@pytest.mark.parametrize("kind", list(_payloads("x")))
def test_malicious_pickle_in_ember_archive_refused(tmp_path, kind):
    canary = tmp_path / "canary"
    path = _write(tmp_path, _ember_pickle_zip(_payloads(canary)[kind]))
    with pytest.raises(WeightsOnlyUnpicklingError) as ei:
        ember.load(path)
    msg = str(ei.value)
    assert "model.pt" in msg and "Unsupported global" in msg and "weights_only=False" in msg
    assert not canary.exists()


@pytest.mark.parametrize("kind", list(_payloads("x")))
def test_raw_malicious_pickle_refused_even_with_weights_only_false(tmp_path, kind):
    canary = tmp_path / "canary"
    path = _write(tmp_path, _payloads(canary)[kind])
    for wo in (True, False):
        with pytest.raises(CheckpointError, match=r"'.*model\.pt' is (a raw pickle file|not an "
                                                  r"ember checkpoint)"):
            ember.load(path, weights_only=wo)
    assert not canary.exists()


def test_bad_persistent_ids_refused(tmp_path):
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return ("tensor", 99) if isinstance(obj, str) and obj == "t" else None

    buf = io.BytesIO()
    P(buf).dump(["t"])
    path = _write(tmp_path, _ember_pickle_zip(buf.getvalue()))
    with pytest.raises(CheckpointError, match="model.pt' has corrupted pickle data.*persistent"):
        ember.load(path)


@pytest.mark.parametrize("data,msg", [
    (b"", "is empty"),
    (b"hello world, not a checkpoint", r"is not an ember checkpoint \(bad zip header\)"),
    (bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
     r"not an ember checkpoint \(bad zip header\)"),
    (b"PK\x03\x04" + b"\x00" * 100, "is truncated or corrupted"),
    (_zip({"README": "hi"}), "zip archive without data.json"),
    (_zip({"data.json": "{not json"}), "is corrupted"),
    (_zip({"data.json": json.dumps({"format": "other"})}), "no ember format marker"),
    (_zip({"data.json": json.dumps({"format": "ember.checkpoint", "version": 99,
                                    "kind": "json", "tensors": [], "root": 1})}),
     "newer ember"),
    (_zip({"data.json": json.dumps({"format": "ember.checkpoint", "version": 1, "kind": "json",
                                    "tensors": [], "root": {"$type": "tensor", "id": 0}})}),
     "refers to tensor 0"),
    (_zip({"data.json": json.dumps({"format": "ember.checkpoint", "version": 1, "kind": "json",
                                    "tensors": [], "root": {"$type": "evil", "x": 1}})}),
     "unknown entry type 'evil'"),
    (_zip({"data.json": json.dumps({
        "format": "ember.checkpoint", "version": 1, "kind": "json", "root": 0,
        "tensors": [{"dtype": "float32", "shape": [2**20, 2**20], "nbytes": 2**42,
                     "kind": "tensor"}]}), "tensors/0": b"\x00" * 16}),
     "tensor 0: shape .* needs 4398046511104 bytes.* holds 16"),
    (_zip({"data.json": json.dumps({
        "format": "ember.checkpoint", "version": 1, "kind": "json", "root": 0,
        "tensors": [{"dtype": "float32", "shape": [4], "nbytes": 16, "kind": "tensor"}]})}),
     "tensor 0 is missing"),
    (_zip({"data.json": json.dumps({
        "format": "ember.checkpoint", "version": 1, "kind": "json", "root": 0,
        "tensors": [{"dtype": "object", "shape": [1], "nbytes": 8}]}), "tensors/0": b"\0" * 8}),
     "bad entry 0 in the tensor table"),
    (_zip({"data.json": json.dumps({
        "format": "ember.checkpoint", "version": 1, "kind": "json", "root": 0,
        "tensors": [{"dtype": "float32", "shape": [-1, -4], "nbytes": 16}]}),
           "tensors/0": b"\0" * 16}), r"shape \[-1, -4\]"),
])
def test_foreign_and_malformed_files(tmp_path, data, msg):
    path = _write(tmp_path, data)
    with pytest.raises(CheckpointError, match=r"ember\.load: '.*model\.pt' " + ".*" + msg):
        ember.load(path)


def _view_file(storage_keys=None, **view):
    """A version-2 file: a 4-float storage (entry 1) and a tensor entry 0 viewing it."""
    entry = {"dtype": "float32", "shape": [2], "nbytes": 0, "kind": "tensor", "storage": 1,
             "offset": 0, "stride": [1], **view}
    storage = {"dtype": "float32", "shape": [4], "nbytes": 16, "kind": "storage",
               **(storage_keys or {})}
    return _zip({"data.json": json.dumps({"format": "ember.checkpoint", "version": 2,
                                          "kind": "json", "root": {"$type": "tensor", "id": 0},
                                          "tensors": [entry, storage]}),
                 "tensors/1": np.arange(4, dtype="<f4").tobytes()})


def test_view_entries_are_bounds_checked(tmp_path):
    assert ember.load(_write(tmp_path, _view_file(offset=2))).tolist() == [2.0, 3.0]
    for view, msg in [
        ({"offset": 3}, "tensor 0 reaches past the end of storage 1"),
        ({"shape": [3], "stride": [2]}, "reaches past the end"),
        ({"shape": [1, 0]}, r"offset 0, shape \[1, 0\], stride \[1\]"),
        ({"shape": [0], "offset": 9}, "reaches past the end"),
        ({"offset": -1}, "offset -1"),
        ({"stride": [-1]}, r"stride \[-1\]"),
        ({"offset": 1.5}, "offset 1.5"),
        ({"storage": 0}, "tensor 0 views entry 0, not a float32 storage"),
        ({"storage": 7}, "views entry 7"),
        ({"storage": "1"}, "views entry '1'"),
        ({"dtype": "int32"}, "not a int32 storage"),
        ({"kind": "ndarray"}, "not a float32 storage"),
        ({"stride": None}, "bad entry 0 in the tensor table"),
        # a storage that claims to view another entry (it raised AttributeError on None)
        ({"storage_keys": {"storage": 0, "offset": 0, "stride": [1]}}, "views entry 1, not a"),
    ]:
        with pytest.raises(CheckpointError, match=msg):
            ember.load(_write(tmp_path, _view_file(**view)))


def test_torch_checkpoint_is_recognised(tmp_path):
    # Issue 7: torch.save files are read by ember.io.torch_format (tests/io/test_torch_format.py).
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, path)
    assert ember.load(path)["w"].tolist() == [1.0, 1.0]


def test_every_truncation_is_refused(tmp_path):
    data = _ckpt_bytes()
    for cut in list(range(0, len(data), max(1, len(data) // 60))) + [len(data) - 1]:
        path = _write(tmp_path, data[:cut])
        with pytest.raises(CheckpointError, match="model.pt"):
            ember.load(path)


def test_byte_flips_never_load_wrong_numbers():
    data = _ckpt_bytes()
    good = ember.load(io.BytesIO(data))
    rng = np.random.default_rng(1)
    refused = 0
    for pos in rng.choice(len(data), 300, replace=False):
        bad = bytearray(data)
        bad[pos] ^= 1 << int(rng.integers(8))
        try:
            out = ember.load(io.BytesIO(bytes(bad)))
        except CheckpointError as e:
            assert "<BytesIO>" in str(e)
            refused += 1
            continue
        # the flip hit a field nothing depends on (a timestamp...): the content is intact
        assert out["step"] == 12 and out["name"] == "run"
        np.testing.assert_array_equal(out["w"].numpy(), good["w"].numpy())
        np.testing.assert_array_equal(out["b"].numpy(), good["b"].numpy())
    assert refused > 200


def test_corrupted_tensor_bytes_fail_the_crc(tmp_path):
    data = bytearray(_ckpt_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("tensors/0")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 10] ^= 0xFF
    path = _write(tmp_path, bytes(data))
    with pytest.raises(CheckpointError, match="model.pt' is corrupted.*CRC"):
        ember.load(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        ember.load(tmp_path / "nope.pt")
