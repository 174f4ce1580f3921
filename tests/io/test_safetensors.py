"""ember.io.safetensors against the safetensors package's torch API (the oracle)."""

import sys

import numpy as np
import pytest
import torch

import ember
from ember.io import safetensors as es
from ember.io.checkpoint import CheckpointError

st = pytest.importorskip("safetensors.torch")
pytest.importorskip("ml_dtypes")

DTYPES = [torch.float32, torch.float64, torch.float16, torch.int64, torch.int32, torch.int16,
          torch.int8, torch.uint8, torch.bool]


def _torch_tensors():
    g = torch.Generator().manual_seed(0)
    out = {}
    for d in DTYPES:
        x = torch.randn(3, 4, generator=g) * 50
        out[str(d).split(".")[1]] = x.to(d)
    out["scalar"] = torch.tensor(2.5)
    out["empty"] = torch.zeros(0, 3)
    return out


def test_torch_file_loads_bitwise(tmp_path):
    ref = _torch_tensors()
    st.save_file(ref, tmp_path / "t.safetensors")
    got = es.load_file(tmp_path / "t.safetensors")
    assert set(got) == set(ref)
    for k, v in ref.items():
        assert isinstance(got[k], ember.Tensor)
        assert got[k].numpy().dtype == v.numpy().dtype and got[k].shape == tuple(v.shape)
        assert got[k].numpy().tobytes() == v.numpy().tobytes()
    got["float32"].add_(1)  # writable, as torch's tensors are


def test_ember_file_loads_in_torch(tmp_path):
    ref = {k: ember.from_numpy(v.numpy().copy()) for k, v in _torch_tensors().items()}
    es.save_file(ref, tmp_path / "e.safetensors")
    got = st.load_file(tmp_path / "e.safetensors")
    for k, v in ref.items():
        assert got[k].numpy().tobytes() == v.numpy().tobytes() and got[k].shape == v.shape


def test_bfloat16_loads_as_float32_and_on_request(tmp_path):
    x = (torch.randn(5, 7) * 3).to(torch.bfloat16)
    st.save_file({"w": x}, tmp_path / "b.safetensors")
    got = es.load_file(tmp_path / "b.safetensors")["w"]
    assert got.dtype == ember.float32
    np.testing.assert_array_equal(got.numpy(), x.float().numpy())  # bf16 -> f32 is exact
    raw = es.load_file(tmp_path / "b.safetensors", numpy=True)["w"]
    assert raw.dtype.name == "bfloat16"
    np.testing.assert_array_equal(raw.astype(np.float32), x.float().numpy())
    as64 = es.load_file(tmp_path / "b.safetensors", dtype=ember.float64)["w"]
    assert as64.dtype == ember.float64
    np.testing.assert_array_equal(as64.numpy(), x.double().numpy())
    data = (tmp_path / "b.safetensors").read_bytes()
    np.testing.assert_array_equal(es.load(data)["w"].numpy(), x.float().numpy())


def test_save_as_bfloat16_matches_torch_rounding(tmp_path):
    x = torch.randn(64, 9)
    es.save_file({"w": ember.from_numpy(x.numpy()), "i": ember.tensor([1, 2])},
                 tmp_path / "b.safetensors", dtype=ember.bfloat16)
    got = st.load_file(tmp_path / "b.safetensors")
    assert got["w"].dtype == torch.bfloat16 and got["i"].dtype == torch.int64
    assert torch.equal(got["w"], x.to(torch.bfloat16))


def test_metadata_round_trip(tmp_path):
    es.save_file({"a": ember.ones(2)}, tmp_path / "m.safetensors",
                 metadata={"arch": "mlp", "epochs": "3"})
    assert es.metadata(tmp_path / "m.safetensors") == {"arch": "mlp", "epochs": "3"}
    st.save_file({"a": torch.ones(2)}, tmp_path / "t.safetensors", metadata={"format": "pt"})
    assert es.metadata(tmp_path / "t.safetensors") == {"format": "pt"}
    es.save_file({"a": ember.ones(2)}, tmp_path / "n.safetensors")
    assert es.metadata(tmp_path / "n.safetensors") is None


def test_load_state_dict_accepts_loaded_file(tmp_path):
    tm = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    st.save_file(tm.state_dict(), tmp_path / "m.safetensors")
    em = ember.nn.Sequential(ember.nn.Linear(4, 8), ember.nn.ReLU(), ember.nn.Linear(8, 3))
    em.load_state_dict(es.load_file(tmp_path / "m.safetensors"))
    x = torch.randn(5, 4)
    np.testing.assert_allclose(em(ember.from_numpy(x.numpy())).detach().numpy(),
                               tm(x).detach().numpy(), rtol=1e-6, atol=1e-6)
    es.save_file(em.state_dict(), tmp_path / "e.safetensors")
    tm2 = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    tm2.load_state_dict(st.load_file(tmp_path / "e.safetensors"))
    assert all(torch.equal(a, b) for a, b in zip(tm.state_dict().values(),
                                                 tm2.state_dict().values()))


def test_bytes_and_ember_save_load_dispatch(tmp_path):
    sd = {"w": ember.randn(3, 2), "n": ember.tensor(7)}
    data = es.save(sd)
    assert st.load(data)["w"].numpy().tobytes() == sd["w"].numpy().tobytes()
    ember.save(sd, tmp_path / "x.safetensors", format="safetensors")
    got = ember.load(tmp_path / "x.safetensors")  # the bytes say safetensors
    assert got["w"].numpy().tobytes() == sd["w"].numpy().tobytes() and got["n"].item() == 7


def test_errors(tmp_path, monkeypatch):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": 1}garbage")
    with pytest.raises(CheckpointError, match="bad.safetensors.*not a valid safetensors"):
        es.load_file(path)
    with pytest.raises(CheckpointError, match="not valid safetensors bytes"):
        es.load(b"\x00" * 4)
    with pytest.raises(TypeError, match="keys must be str"):
        es.save({1: ember.ones(1)})
    with pytest.raises(TypeError, match="'w': expected a tensor"):
        es.save({"w": [1, 2]})
    st.save_file({"u": torch.zeros(3, dtype=torch.uint16)}, tmp_path / "u.safetensors")
    with pytest.raises(TypeError, match="'u' has dtype uint16"):
        es.load_file(tmp_path / "u.safetensors")
    assert es.load_file(tmp_path / "u.safetensors", numpy=True)["u"].dtype == np.uint16
    monkeypatch.setitem(sys.modules, "safetensors", None)
    with pytest.raises(ImportError, match=r'pip install "ember\[safetensors\]"'):
        es.load_file(path)
