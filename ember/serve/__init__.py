"""``ember.serve``: a small HTTP inference server (standard library, one thread per request).

    from ember.serve import InferenceServer, load_predictor
    server = InferenceServer(load_predictor("model.onnx"), "127.0.0.1", 8000)
    server.serve_forever()

Endpoints:
    GET  /health   -> {"status": "ok", "model": ..., "input_shape": [...], ...}
    POST /predict  -> {"outputs": [[...]], "shape": [N, K], "predictions": [...]}
        body: JSON ``{"inputs": nested list}`` (one sample or a batch), raw image bytes
        (``Content-Type: image/png`` / ``image/jpeg``) or ``multipart/form-data`` with an image.

Bad requests get a JSON ``{"error": ...}`` with a 4xx status: 400 (not JSON, no ``inputs``,
undecodable image), 404/405 (wrong path or method), 411 (no Content-Length), 413 (body over
``max_body_bytes`` or too many samples), 415 (unsupported Content-Type), 422 (wrong shape or
dtype). The server keeps serving after any of them.
"""

from __future__ import annotations

import json
import sys
import time
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from ember.serve._predictors import EmberPredictor, InputError, OnnxPredictor, load_predictor

__all__ = ["InferenceServer", "load_predictor", "OnnxPredictor", "EmberPredictor", "InputError"]

_IMAGE_TYPES = ("image/png", "image/jpeg", "image/jpg", "image/bmp", "image/gif",
                "application/octet-stream")


class InferenceServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` answering ``/predict`` and ``/health`` with ``predictor``.

    Args:
        predictor: an ``OnnxPredictor`` / ``EmberPredictor`` (see ``load_predictor``).
        host, port: where to listen (port 0 picks a free port: see ``server_address``).
        max_body_bytes: larger request bodies get 413 without being read.
        max_batch: requests with more samples get 413.
        log: print one line per request to stderr.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, predictor, host="127.0.0.1", port=8000, max_body_bytes=8 << 20,
                 max_batch=256, log=False):
        self.predictor = predictor
        self.max_body_bytes = int(max_body_bytes)
        self.max_batch = int(max_batch)
        self.log = log
        super().__init__((host, port), _Handler)

    @property
    def url(self):
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server_version = "ember-serve"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

    def log_message(self, fmt, *args):
        if self.server.log:
            sys.stderr.write(f"{self.address_string()} - {fmt % args}\n")

    # ---------------------------------------------------------------- responses
    def _send(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status, message):
        self._send(status, {"error": message, "status": status})

    # ---------------------------------------------------------------- routes
    def do_GET(self):
        if self.path.split("?")[0] != "/health":
            self._drain()
            return self._error(404, f"no route GET {self.path}; use GET /health or POST "
                                    "/predict")
        self._send(200, {"status": "ok", **self.server.predictor.describe()})

    def do_POST(self):
        if self.path.split("?")[0] != "/predict":
            self._drain()
            return self._error(404, f"no route POST {self.path}; use POST /predict")
        try:
            body = self._read_body()
            batch = self._decode(body)
            if batch.shape[0] > self.server.max_batch:
                raise InputError(f"{batch.shape[0]} samples in one request; at most "
                                 f"{self.server.max_batch}", 413)
            t0 = time.perf_counter()
            out = np.asarray(self.server.predictor.predict(batch))
            ms = (time.perf_counter() - t0) * 1000
        except InputError as e:
            self.close_connection = self.close_connection or e.status in (411, 413)
            return self._error(e.status, str(e))
        except Exception as e:  # noqa: BLE001  (a model failure is the server's fault)
            return self._error(500, f"inference failed: {type(e).__name__}: {e}")
        self._send(200, self._payload(out, ms))

    def do_PUT(self):
        self._drain()
        self._error(405, "use POST /predict or GET /health")

    do_DELETE = do_PATCH = do_PUT

    # ---------------------------------------------------------------- request bodies
    def _drain(self):
        n = self.headers.get("Content-Length")
        if n and n.isdigit() and int(n) <= self.server.max_body_bytes:
            self.rfile.read(int(n))
        elif n:
            self.close_connection = True

    def _read_body(self):
        n = self.headers.get("Content-Length")
        if n is None:
            self.close_connection = True
            raise InputError("a Content-Length header is required", 411)
        if not n.isdigit():
            self.close_connection = True
            raise InputError(f"invalid Content-Length {n!r}", 400)
        if int(n) > self.server.max_body_bytes:
            self.close_connection = True  # the body is not read: the connection can't be reused
            raise InputError(f"request body of {int(n)} bytes is over the limit of "
                             f"{self.server.max_body_bytes} bytes", 413)
        return self.rfile.read(int(n))

    def _decode(self, body):
        ctype = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        ctype = ctype.lower()
        pred = self.server.predictor
        if ctype == "application/json":
            return pred.check_batch(_json_array(body))
        if ctype in _IMAGE_TYPES:
            return pred.image_batch(body)
        if ctype == "multipart/form-data":
            return pred.image_batch(_multipart_file(self.headers.get("Content-Type"), body))
        raise InputError(f"unsupported Content-Type {ctype!r}; send application/json, an image "
                         "(image/png, image/jpeg) or multipart/form-data", 415)

    def _payload(self, out, ms):
        res = {"outputs": out.tolist(), "shape": list(out.shape), "time_ms": round(ms, 3)}
        classes = self.server.predictor.classes
        if out.ndim == 2 and classes and out.shape[1] == len(classes):
            z = out.astype(np.float64)
            p = np.exp(z - z.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            res["predictions"] = [{"label": classes[int(i)], "index": int(i),
                                   "probability": float(row[i])}
                                  for row, i in zip(p, p.argmax(1))]
        return res


def _json_array(body):
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"the body is not valid JSON: {e}", 400) from None
    if not isinstance(doc, dict) or "inputs" not in doc:
        raise InputError('expected a JSON object {"inputs": nested list of numbers}', 400)
    try:
        arr = np.asarray(doc["inputs"])
    except ValueError:
        raise InputError("inputs is a ragged nested list (rows of different lengths)") from None
    if arr.dtype.kind not in "iuf" or arr.dtype == np.bool_:
        raise InputError(f"inputs must be numbers; got a nested list of "
                         f"{'mixed/ragged values' if arr.dtype == object else arr.dtype}")
    return arr


def _multipart_file(content_type, body):
    msg = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not msg.is_multipart():
        raise InputError("malformed multipart/form-data body", 400)
    for part in msg.iter_parts():
        data = part.get_payload(decode=True)
        if data:
            return data
    raise InputError("multipart/form-data body has no file part", 400)
