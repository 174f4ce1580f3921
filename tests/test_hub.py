"""ember.hub: the registry, shipped digits weights, and downloads from a local HTTP server."""

import hashlib
import http.server
import io
import os
import re
import threading
import urllib.request

import numpy as np
import pytest

import ember
from ember import hub
from ember.utils.data import DataLoader
from ember.vision import models, transforms
from ember.vision.datasets import Digits


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the network was used")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def _accuracy(model, entry):
    pre = entry.meta["preprocessing"]
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(pre["mean"], pre["std"])])
    x, y = next(iter(DataLoader(Digits(train=False, transform=tf), batch_size=360)))
    model.eval()
    with ember.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def test_shipped_cnn_reaches_98_percent_offline(no_network):
    net = models.get_model("cnn", weights="DEFAULT")
    entry = hub.get_weight("cnn.DIGITS_V1")
    acc = _accuracy(net, entry)
    assert acc >= 0.98, acc
    assert abs(acc - entry.meta["metrics"]["test_accuracy"]) < 1e-3


def test_shipped_mlp_and_names(no_network):
    for w in ("DEFAULT", "DIGITS_V1", "mlp.DIGITS_V1", hub.get_weight("mlp.DIGITS_V1")):
        net = models.mlp(weights=w)
        assert _accuracy(net, hub.get_weight("mlp.DIGITS_V1")) >= 0.95


def test_registry_entries_are_complete():
    entries = hub.list_weights()
    assert {w.name for w in entries} >= {"cnn.DIGITS_V1", "mlp.DIGITS_V1"}
    for w in entries:
        path = os.path.join(os.path.dirname(hub.__file__), "weights", w.file)
        with open(path, "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == w.sha256
        assert {"licence", "source", "preprocessing", "metrics"} <= set(w.meta)
        with np.load(path, allow_pickle=False) as z:  # NumPy alone reads the shipped files
            assert set(z.files) == set(models.get_model(w.builder).state_dict())
    assert [w.name for w in hub.get_model_weights(models.CNN())] == ["cnn.DIGITS_V1"]


def test_unknown_or_damaged_weights(monkeypatch):
    with pytest.raises(ValueError, match="no pretrained weights 'NOPE' for CNN; available: "
                                         "DEFAULT, DIGITS_V1"):
        models.get_model("cnn", weights="NOPE")
    with pytest.raises(ValueError, match="no pretrained weights"):
        models.get_model("lenet", weights="DEFAULT")
    monkeypatch.setattr(hub.get_weight("cnn.DIGITS_V1"), "sha256", "0" * 64)
    with pytest.raises(RuntimeError, match="do not match their registered sha256"):
        models.get_model("cnn", weights="DEFAULT")


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    requests = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            name = self.path.rsplit("/", 1)[-1]
            data = (root / name).read_bytes() if (root / name).exists() else None
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            short = self.path.startswith("/truncated/")
            self.send_header("Content-Length", str(len(data) + (1000 if short else 0)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}", requests
    httpd.shutdown()
    httpd.server_close()


def _weights_file(root, name):
    sd = models.LeNet(in_channels=1, image_size=16).state_dict()
    buf = io.BytesIO()
    ember.save(sd, buf)
    (root / name).write_bytes(buf.getvalue())
    return sd, hashlib.sha256(buf.getvalue()).hexdigest()


def test_download_verify_and_cache(server, tmp_path):
    root, base, requests = server
    sd, sha = _weights_file(root, "lenet.pt")
    cache = tmp_path / "cache"
    got = hub.load_state_dict_from_url(f"{base}/lenet.pt", model_dir=cache, sha256=sha,
                                       progress=False)
    assert all(np.array_equal(got[k].numpy(), v.numpy()) for k, v in sd.items())
    assert len(requests) == 1 and os.listdir(cache) == ["lenet.pt"]
    hub.load_state_dict_from_url(f"{base}/lenet.pt", model_dir=cache, sha256=sha)
    assert len(requests) == 1  # served from the cache


def test_wrong_hash_and_truncation_leave_no_file(server, tmp_path):
    root, base, _ = server
    _, sha = _weights_file(root, "w.pt")
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError, match="invalid hash value"):
        hub.load_state_dict_from_url(f"{base}/w.pt", model_dir=cache, sha256="ab" * 32)
    assert os.listdir(cache) == []
    with pytest.raises(RuntimeError, match="truncated"):
        hub.load_state_dict_from_url(f"{base}/truncated/w.pt", model_dir=cache, sha256=sha)
    assert os.listdir(cache) == []
    # torch.hub's check_hash: the file name carries a sha256 prefix
    (root / f"w-{sha[:10]}.pt").write_bytes((root / "w.pt").read_bytes())
    hub.load_state_dict_from_url(f"{base}/w-{sha[:10]}.pt", model_dir=cache, check_hash=True)
    (root / "w-0123456789.pt").write_bytes((root / "w.pt").read_bytes())
    with pytest.raises(RuntimeError, match="invalid hash value"):
        hub.load_state_dict_from_url(f"{base}/w-0123456789.pt", model_dir=cache,
                                     check_hash=True)
    assert sorted(os.listdir(cache)) == [f"w-{sha[:10]}.pt"]


def test_registered_url_weights_use_ember_home(server, tmp_path, monkeypatch):
    root, base, requests = server
    sd, sha = _weights_file(root, "lenet16.pt")
    monkeypatch.setenv("EMBER_HOME", str(tmp_path / "home"))
    assert hub.get_dir() == str(tmp_path / "home" / "hub")
    entry = hub.register_weights(hub.Weights(
        name="lenet.TEST_V1", model_class="LeNet", sha256=sha, url=f"{base}/lenet16.pt",
        config={"in_channels": 1, "image_size": 16}, meta={"licence": "test"}))
    try:
        net = models.get_model("lenet", weights="TEST_V1", in_channels=1, image_size=16)
        assert np.array_equal(net.conv1.weight.detach().numpy(), sd["conv1.weight"].numpy())
        assert os.listdir(tmp_path / "home" / "hub" / "checkpoints") == ["lenet16.pt"]
        models.get_model("lenet", weights=entry, in_channels=1, image_size=16)
        assert len(requests) == 1
    finally:
        hub._REGISTRY.pop("lenet.TEST_V1")


def test_download_shows_a_progress_bar(server, tmp_path, capsys):
    pytest.importorskip("tqdm")
    root, base, _ = server
    _, sha = _weights_file(root, "bar.pt")
    hub.load_state_dict_from_url(f"{base}/bar.pt", model_dir=tmp_path / "c", sha256=sha)
    err = capsys.readouterr().err
    assert f'Downloading: "{base}/bar.pt"' in err
    assert re.search(r"100%\|.*\| (\d+k)/\1 \[", err), err  # tqdm's bar: all KiB of it read
    hub.load_state_dict_from_url(f"{base}/bar.pt", model_dir=tmp_path / "c2", sha256=sha,
                                 progress=False)
    assert capsys.readouterr().err == ""


def test_cache_folder_defaults_to_home_cache_and_follows_set_dir(tmp_path, monkeypatch):
    for var in ("EMBER_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert hub.get_dir() == str(tmp_path / ".cache" / "ember" / "hub")
    monkeypatch.setenv("EMBER_HOME", "~/e")
    assert hub.get_dir() == str(tmp_path / "e" / "hub")
    monkeypatch.setattr(hub, "_hub_dir", [])
    hub.set_dir(tmp_path / "x")
    assert hub.get_dir() == str(tmp_path / "x")
