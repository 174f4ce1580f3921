"""ember.save / ember.load: round trips, the safe format, the pickle fallback and its allow-list,
and clear errors (naming the file) for empty, truncated, corrupted, foreign and malicious files."""

import io
import json
import os
import zipfile
from collections import Counter, OrderedDict

import numpy as np
import pytest
import torch

import ember
from ember.nn import Parameter
from ember.serialization import (
    WeightsOnlyUnpicklingError,
    add_safe_globals,
    clear_safe_globals,
    get_safe_globals,
    safe_globals,
)


def _round_trip(obj, **load_kw):
    buf = io.BytesIO()
    ember.save(obj, buf)
    buf.seek(0)
    return ember.load(buf, **load_kw)


def _same(a, b):
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, ember.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and a.requires_grad == b.requires_grad
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


DTYPES = [ember.float32, ember.float64, ember.float16, ember.int64, ember.int32, ember.int16,
          ember.int8, ember.uint8, ember.bool]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2), (5,), (2, 3, 4)], ids=str)
def test_tensor_dtypes_and_shapes(dtype, shape):
    t = (ember.randn(*shape) * 10).to(dtype)
    out = _round_trip(t)
    _same(t, out)


def test_nested_training_checkpoint():
    sd = OrderedDict([("0.weight", ember.randn(4, 3)), ("0.bias", ember.zeros(4)),
                      ("bn.num_batches_tracked", ember.tensor(7))])
    sd._metadata = OrderedDict([("", {"version": 1}), ("bn", {"version": 2})])
    p = Parameter(ember.randn(3))
    opt = ember.optim.Adam([p], lr=1e-3)
    p.grad = ember.ones(3)
    opt.step()
    ck = {"model": sd, "optim": opt.state_dict(), "epoch": 3, "loss": 0.25, "best": float("inf"),
          "nan": float("nan"), "name": "run-1", "ok": True, "none": None, "z": 1 + 2j,
          "tup": (1, (2.0, "x"), [None]), "set": {1, 2}, "fs": frozenset({"a"}),
          "ints": {0: "a", -5: "b", (1, 2): "c", "$odd": 1}, "count": Counter({10: 1, 30: 2}),
          "dtype": ember.float16, "size": ember.Size([2, 3]), "bytes": b"\x00\xff",
          "bytearray": bytearray(b"\x01\xfe"), "dev": ember.device("cpu"),
          "np": np.arange(6, dtype=np.int32).reshape(2, 3),
          "npf": np.float32(1.5), "rng": ember.get_rng_state(), "big": 2**80}
    out = _round_trip(ck)
    _same(ck, out)
    assert out["model"]._metadata == sd._metadata
    assert type(out["size"]) is ember.Size and type(out["count"]) is Counter
    assert type(out["bytearray"]) is bytearray  # safe format: loads with weights_only=True
    assert out["optim"]["param_groups"][0]["betas"] == (0.9, 0.999)


def test_parameters_requires_grad_and_shared_tensors():
    w = Parameter(ember.randn(3, 2))
    frozen = Parameter(ember.randn(2), requires_grad=False)
    t = ember.randn(2, requires_grad=True)
    out = _round_trip({"w": w, "tied": w, "frozen": frozen, "t": t, "list": [t]})
    assert type(out["w"]) is Parameter and out["w"].requires_grad
    assert out["tied"] is out["w"] and out["list"][0] is out["t"]
    assert type(out["frozen"]) is Parameter and not out["frozen"].requires_grad
    assert type(out["t"]) is ember.Tensor and out["t"].requires_grad and out["t"].is_leaf


def test_non_contiguous_and_writable():
    base = ember.arange(24, dtype=ember.float32).reshape(4, 6)
    views = {"T": base.t(), "step": base[:, ::2], "neg": ember.tensor(np.arange(5)[::-1].copy())}
    out = _round_trip(views)
    _same(views, out)
    assert all(t.numpy().flags.writeable for t in out.values())
    # views of one array come back as views of one storage (torch.save's rule), else own data
    assert np.shares_memory(out["T"].numpy(), out["step"].numpy())
    assert out["neg"].numpy().flags.owndata


def test_views_share_storage_after_loading_as_in_torch():
    # torch.save docs: "Saving and loading tensors preserves views"
    base = ember.arange(12.0).reshape(3, 4)
    p = Parameter(ember.ones(4))
    obj = {"base": base, "row": base[1], "T": base.t(), "col": base[:, 2], "pv": p[1:], "p": p,
           "lone": ember.arange(10)[2:5], "other": ember.ones(2, requires_grad=True)}
    tobj = {k: torch.from_numpy(v.detach().numpy().copy()) for k, v in obj.items()}
    tb = tobj["base"]
    tobj.update(row=tb[1], T=tb.t(), col=tb[:, 2])
    buf = io.BytesIO()
    torch.save(tobj, buf)
    buf.seek(0)
    tout = torch.load(buf)
    out = _round_trip(obj)
    _same(obj, out)
    assert type(out["p"]) is Parameter and out["other"].requires_grad
    for o in (out, tout):
        o["base"][1, 2] = 100.0
        assert o["row"][2].item() == o["T"][2, 1].item() == o["col"][1].item() == 100.0
    assert np.shares_memory(out["p"].detach().numpy(), out["pv"].detach().numpy())
    again = _round_trip(out)  # loaded views are saved as views again
    again["base"][0, 2] = -1.0
    assert again["row"].tolist() == [4.0, 5.0, 100.0, 7.0] and again["col"][0].item() == -1.0
    assert out["lone"].tolist() == [2, 3, 4] and out["lone"].numpy().size == 3
    buf = io.BytesIO()
    ember.save(obj, buf)
    names = zipfile.ZipFile(buf).namelist()
    assert len(names) == 1 + 4  # data.json, lone, other and the two shared storages


def test_paths_and_map_location(tmp_path):
    sd = {"w": ember.randn(3, 3)}
    path = tmp_path / "m.pt"
    ember.save(sd, path)
    ember.save(sd, str(path))  # overwrite in place
    for ml in (None, "cpu", ember.device("cpu"), {"cuda:0": "cpu"}, lambda s, loc: s):
        _same(sd, ember.load(path, map_location=ml))
    with open(path, "rb") as fh:
        _same(sd, ember.load(fh))
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary files left
    with pytest.raises(TypeError, match="map_location"):
        ember.load(path, map_location=3)


def test_file_mode_and_symlink(tmp_path):
    target = tmp_path / "real.pt"
    ember.save({"a": 1}, target)
    os.chmod(target, 0o640)
    link = tmp_path / "link.pt"
    link.symlink_to(target)
    ember.save({"a": 2}, link)
    assert link.is_symlink() and ember.load(target) == {"a": 2}
    assert (os.stat(target).st_mode & 0o777) == 0o640


def test_same_bytes_for_same_object():
    sd = {"w": ember.ones(2, 2), "n": 3}
    a, b = io.BytesIO(), io.BytesIO()
    ember.save(sd, a)
    ember.save(sd, b)
    assert a.getvalue() == b.getvalue()


def test_save_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="directory .* does not exist"):
        ember.save({}, tmp_path / "missing" / "x.pt")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        ember.save({}, tmp_path)
    with pytest.raises(TypeError, match="f must be a path or a writable binary file"):
        ember.save({}, 3)


# ----------------------------------------------------------------------------- pickle fallback
class Config:
    def __init__(self, depth, weights):
        self.depth, self.weights = depth, weights


def test_pickle_fallback_needs_opt_in():
    obj = {"cfg": Config(3, ember.randn(2, 2)), "w": ember.ones(2)}
    buf = io.BytesIO()
    ember.save(obj, buf)
    with zipfile.ZipFile(buf) as zf:
        assert json.loads(zf.read("data.json"))["kind"] == "pickle"
        assert b"ember.tensor" not in zf.read("data.pkl")  # tensors are blobs, not pickled
    buf.seek(0)
    with pytest.raises(WeightsOnlyUnpicklingError) as ei:
        ember.load(buf)
    msg = str(ei.value)
    assert "weights_only=False" in msg and "test_checkpoint.Config" in msg
    assert "add_safe_globals([Config])" in msg and "<BytesIO>" in msg
    buf.seek(0)
    out = ember.load(buf, weights_only=False)
    assert out["cfg"].depth == 3
    _same(obj["cfg"].weights, out["cfg"].weights)


def test_safe_globals_allow_list():
    obj = Config(2, ember.zeros(1))
    assert get_safe_globals() == []
    with safe_globals([Config]):
        assert get_safe_globals() == [Config]
        assert _round_trip(obj).depth == 2
    assert get_safe_globals() == []
    add_safe_globals([(Config, "tests.io.test_checkpoint.Config")])
    try:
        assert _round_trip(obj).depth == 2
    finally:
        clear_safe_globals()
    with pytest.raises(WeightsOnlyUnpicklingError):
        _round_trip(obj)


def test_whole_module_pickles():
    lin = ember.nn.Linear(3, 2)
    out = _round_trip(lin, weights_only=False)
    np.testing.assert_array_equal(out.weight.detach().numpy(), lin.weight.detach().numpy())
    assert type(out.weight) is Parameter
    with pytest.raises(WeightsOnlyUnpicklingError, match="Linear"):
        _round_trip(lin)


def test_cycle_falls_back_to_pickle():
    a = [1]
    a.append(a)
    out = _round_trip(a, weights_only=False)
    assert out[1] is out
    out = _round_trip(a)  # a pickle of plain lists needs no global: weights_only accepts it
    assert out[1] is out
