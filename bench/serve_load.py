"""Load test for ``ember serve``: the server in its own process, N concurrent clients here.

    python bench/serve_load.py                      # exports the digits CNN, 8 clients, 10 s
    python bench/serve_load.py --model d.onnx --clients 16 --seconds 20 --batch 4

Each client keeps one HTTP/1.1 connection and sends JSON ``/predict`` requests until the request
budget or the time is spent. Then malformed and oversized requests are sent, each must get a 4xx,
and the server must still answer ``/health`` and a valid ``/predict`` afterwards.
Prints requests/s and p50/p99 latency.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _default_model(path):
    """The digits CNN (random weights; speed does not depend on them) as an ONNX file."""
    sys.path.insert(0, ROOT)
    import ember
    import ember.onnx
    from ember.cli._data import DataInfo
    from ember.vision.models import CNN

    ember.manual_seed(0)
    info = DataInfo("digits", 1, 8, (0.3055,), (0.3777,), [str(i) for i in range(10)])
    ember.onnx.export(CNN(in_channels=1, image_size=8), (ember.randn(1, 1, 8, 8),), path,
                      input_names=["input"], dynamic_axes={"input": {0: "batch"}},
                      metadata={"ember.data": json.dumps(info.to_dict())})
    return path


def start_server(model, extra=()):
    """``ember serve`` on a free port in a subprocess; returns (process, port)."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "ember.cli", "serve", model, "--port", "0",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    line = proc.stdout.readline()
    if " on http://" not in line:
        proc.kill()
        raise RuntimeError(f"the server did not start: {line}{proc.stdout.read()}")
    port = int(line.rsplit(":", 1)[1].split()[0])
    return proc, port


def request(port, method, path, body=None, headers=None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def _client(port, body, stop, budget, lat, errors):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    while not stop.is_set():
        with budget["lock"]:
            if budget["left"] <= 0:
                return
            budget["left"] -= 1
        t0 = time.perf_counter()
        try:
            conn.request("POST", "/predict", body=body, headers=headers)
            r = conn.getresponse()
            r.read()
            ok = r.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        lat.append(time.perf_counter() - t0)
        if not ok:
            errors.append(1)
    conn.close()


def load(port, shape, clients, requests, seconds, batch):
    x = np.random.default_rng(0).standard_normal((batch, *shape)).astype(np.float32)
    body = json.dumps({"inputs": x.tolist()}).encode()
    stop, lat, errors = threading.Event(), [], []
    budget = {"left": requests, "lock": threading.Lock()}
    threads = [threading.Thread(target=_client, args=(port, body, stop, budget, lat, errors))
               for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, seconds - (time.perf_counter() - t0)))
    stop.set()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ms = np.asarray(lat) * 1000
    return {"requests": len(lat), "errors": len(errors), "seconds": wall,
            "rps": len(lat) / wall, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99))}


def abuse(port, shape, max_body):
    """Malformed and oversized requests: (description, status) for each; all must be 4xx."""
    good = json.dumps({"inputs": np.zeros(shape).tolist()}).encode()
    js = {"Content-Type": "application/json"}
    cases = [
        ("not JSON", b"{inputs: [1, 2", js),
        ("JSON without inputs", b'{"x": 1}', js),
        ("wrong shape", json.dumps({"inputs": [[1.0, 2.0, 3.0]]}).encode(), js),
        ("strings", json.dumps({"inputs": [["a"] * 3]}).encode(), js),
        ("ragged", b'{"inputs": [[1, 2], [3]]}', js),
        ("undecodable image", b"\x89PNG not really", {"Content-Type": "image/png"}),
        ("unsupported type", good, {"Content-Type": "text/plain"}),
        ("oversized body", b"0" * (max_body + 1), js),
        ("wrong path", good, js),
    ]
    out = []
    for name, body, headers in cases:
        path = "/nope" if name == "wrong path" else "/predict"
        status, _ = request(port, "POST", path, body, headers)
        out.append((name, status))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="an .onnx file or run folder (default: the digits CNN)")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=20000, help="total request budget")
    p.add_argument("--seconds", type=float, default=10.0, help="time budget")
    p.add_argument("--batch", type=int, default=1, help="samples per request")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads in the server")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or _default_model(os.path.join(tmp, "cnn.onnx"))
        max_body = 1 << 20
        proc, port = start_server(model, ["--threads", str(args.threads), "--max-body-mb", "1"])
        try:
            _, info = request(port, "GET", "/health")
            shape = json.loads(info)["input_shape"]
            shape = [d if d is not None else 1 for d in shape]
            print(f"server pid {proc.pid} on port {port}: {json.loads(info)['model']}, input "
                  f"{shape}; {args.clients} clients, batch {args.batch}, at most "
                  f"{args.requests} requests / {args.seconds:g} s")
            r = load(port, shape, args.clients, args.requests, args.seconds, args.batch)
            print(f"{r['requests']} requests in {r['seconds']:.1f} s: {r['rps']:.0f} requests/s, "
                  f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, {r['errors']} errors")
            bad = abuse(port, shape, max_body)
            for name, st in bad:
                print(f"  {name:20s} -> {st}")
            health, _ = request(port, "GET", "/health")
            after, _ = request(port, "POST", "/predict",
                               json.dumps({"inputs": np.zeros(shape).tolist()}).encode(),
                               {"Content-Type": "application/json"})
            ok = all(400 <= st < 500 for _, st in bad) and health == after == 200 and \
                r["errors"] == 0 and proc.poll() is None
            print(f"after the bad requests: /health {health}, /predict {after}; "
                  f"{'PASS' if ok else 'FAIL'}")
            return 0 if ok else 1
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
