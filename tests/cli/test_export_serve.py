"""``ember export RUN --onnx`` and ``ember serve``: the file, the HTTP API, its 4xx errors, and a
server that keeps serving after bad requests. Servers run on free ports, bounded in time."""

import http.client
import json
import os
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest

import ember
from ember.cli import _runs, main
from ember.cli._data import DataInfo

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
PIL = pytest.importorskip("PIL")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INFO = DataInfo("digits", 1, 8, (0.3055,), (0.3777,), [str(i) for i in range(10)])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder as 'ember train' writes it (the checkpoint layout of ember.cli._runs), with an
    untrained CNN: exporting and serving do not depend on the weights' values."""
    run = tmp_path_factory.mktemp("runs") / "20250101-000000"
    run.mkdir()
    ember.manual_seed(0)
    model = _runs.build_model("cnn", INFO)
    _runs.save_checkpoint(str(run), {"model": model.state_dict(), "config": {"model": "cnn"},
                                     "data": INFO.to_dict(), "epoch": 1})
    return str(run)


@pytest.fixture(scope="module")
def onnx_file(run_dir, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("onnx") / "digits.onnx")
    assert main(["export", run_dir, "--onnx", path]) == 0
    return path


def _model(run_dir):
    from ember.cli.evaluate import load_run_model

    return load_run_model(run_dir)[0]


def test_export_writes_checked_model_with_metadata(run_dir, onnx_file, capsys, tmp_path):
    m = onnx.load(onnx_file)
    onnx.checker.check_model(m, full_check=True)
    meta = {p.key: p.value for p in m.metadata_props}
    assert meta["ember.model"] == "cnn" and json.loads(meta["ember.data"]) == INFO.to_dict()
    x = ember.randn(7, 1, 8, 8)
    got = ort.InferenceSession(onnx_file).run(None, {"input": x.numpy()})[0]
    with ember.no_grad():
        np.testing.assert_allclose(got, _model(run_dir)(x).numpy(), rtol=1e-3, atol=1e-5)
    assert main(["export", run_dir, "--onnx", str(tmp_path / "b.onnx"), "--check"]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "input [batch, 1, 8, 8]" in out and "(ok)" in out


def test_export_missing_run_is_a_one_line_error(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope"), "--onnx", str(tmp_path / "x.onnx")]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def _serve(target, **kw):
    from ember.serve import InferenceServer, load_predictor

    server = InferenceServer(load_predictor(target), "127.0.0.1", 0, **kw)
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True)
    t.start()
    return server, t


@pytest.fixture(scope="module")
def server(onnx_file):
    srv, t = _serve(onnx_file, max_body_bytes=64 << 10, max_batch=16)
    yield srv
    srv.shutdown()
    srv.server_close()
    t.join(5)


def _req(srv, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection(*srv.server_address[:2], timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        conn.close()


def _png(tmp_path, size=8):
    from ember.vision.datasets import Digits

    img = Digits(train=False)[0][0]
    path = tmp_path / "d.png"
    (img if size == 8 else img.resize((size, size))).save(path)
    return path.read_bytes()


JSON = {"Content-Type": "application/json"}


def test_health(server):
    status, doc = _req(server, "GET", "/health")
    assert status == 200 and doc["status"] == "ok"
    assert doc["input_shape"] == [1, 8, 8] and doc["classes"][:2] == ["0", "1"]


def test_predict_json_matches_the_model(server, run_dir):
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)
    status, doc = _req(server, "POST", "/predict", json.dumps({"inputs": x.tolist()}), JSON)
    assert status == 200 and doc["shape"] == [3, 10]
    with ember.no_grad():
        want = _model(run_dir)(ember.from_numpy(x)).numpy()
    np.testing.assert_allclose(np.array(doc["outputs"]), want, rtol=1e-3, atol=1e-5)
    assert [p["index"] for p in doc["predictions"]] == list(want.argmax(1))
    status, one = _req(server, "POST", "/predict", json.dumps({"inputs": x[0].tolist()}), JSON)
    assert status == 200 and one["shape"] == [1, 10]


def test_predict_image_raw_and_multipart(server, tmp_path):
    png = _png(tmp_path)
    s1, raw = _req(server, "POST", "/predict", png, {"Content-Type": "image/png"})
    boundary = "XyZ123"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.png\""
            f"\r\nContent-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{boundary}--\r\n" \
        .encode()
    s2, multi = _req(server, "POST", "/predict", body,
                     {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert s1 == s2 == 200 and raw["outputs"] == multi["outputs"] and raw["shape"] == [1, 10]


@pytest.mark.parametrize("body, headers, status, words", [
    (b"{inputs: [1", JSON, 400, "not valid JSON"),
    (b'{"x": 1}', JSON, 400, '{"inputs"'),
    (json.dumps({"inputs": [[1.0, 2.0]]}), JSON, 422, "expected ['N', 1, 8, 8]"),
    (json.dumps({"inputs": [["a", "b"]]}), JSON, 422, "must be numbers"),
    (b'{"inputs": [[1, 2], [3]]}', JSON, 422, "ragged"),
    (json.dumps({"inputs": np.full((1, 1, 8, 8), np.nan).tolist()}), JSON,
     422, "NaN"),
    (json.dumps({"inputs": np.zeros((17, 1, 8, 8)).tolist()}), JSON, 413, "at most 16"),
    (b"\x89PNG\r\n garbage", {"Content-Type": "image/png"}, 400, "cannot decode the image"),
    (b"abc", {"Content-Type": "text/plain"}, 415, "unsupported Content-Type"),
    (b"0" * (65 << 10), JSON, 413, "over the limit"),
    (b"--b\r\n\r\n--b--", {"Content-Type": "multipart/form-data; boundary=b"}, 400, "no file"),
], ids=["not-json", "no-inputs", "shape", "strings", "ragged", "nan", "batch", "image", "type",
        "too-large", "multipart-empty"])
def test_bad_requests_get_4xx_and_the_server_keeps_serving(server, body, headers, status, words):
    got, doc = _req(server, "POST", "/predict", body, headers)
    assert got == status and words in doc["error"] and doc["status"] == status
    assert _req(server, "GET", "/health")[0] == 200


def test_wrong_image_size_path_and_method(server, tmp_path):
    status, doc = _req(server, "POST", "/predict", _png(tmp_path, 16), {"Content-Type":
                                                                           "image/png"})
    assert status == 422 and "16x16" in doc["error"]
    assert _req(server, "GET", "/predict")[0] == 404
    assert _req(server, "POST", "/health", b"{}", JSON)[0] == 404
    assert _req(server, "PUT", "/predict", b"{}", JSON)[0] == 405


def test_missing_content_length_is_411(server):
    with socket.create_connection(server.server_address[:2], timeout=10) as s:
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n")
        assert b" 411 " in s.recv(4096).split(b"\r\n")[0] + b" "


def test_concurrent_clients(server):
    x = json.dumps({"inputs": np.ones((1, 8, 8)).tolist()})
    results = []

    def client():
        for _ in range(10):
            results.append(_req(server, "POST", "/predict", x, JSON)[0])

    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [200] * 60


def test_serve_a_run_folder_with_ember(run_dir, tmp_path):
    srv, t = _serve(run_dir)
    try:
        x = np.random.default_rng(1).standard_normal((2, 1, 8, 8)).astype(np.float32)
        status, doc = _req(srv, "POST", "/predict", json.dumps({"inputs": x.tolist()}), JSON)
        with ember.no_grad():
            want = _model(run_dir)(ember.from_numpy(x)).numpy()
        assert status == 200
        np.testing.assert_allclose(np.array(doc["outputs"]), want, rtol=1e-5, atol=1e-6)
        assert _req(srv, "POST", "/predict", _png(tmp_path), {"Content-Type": "image/png"})[0] \
            == 200
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def test_cli_serve_subprocess(onnx_file):
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "ember.cli", "serve", onnx_file, "--port",
                             "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    try:
        line = proc.stdout.readline()
        assert "serving digits.onnx on http://127.0.0.1:" in line
        port = int(line.rsplit(":", 1)[1].split()[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/health")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_serve_missing_model(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "none.onnx"), "--port", "0"]) == 2
    assert "no such model" in capsys.readouterr().err
