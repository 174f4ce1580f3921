"""``ember serve MODEL --port 8000``: an HTTP inference server for an ONNX file or a run folder.

    $ ember serve digits.onnx --port 8000
    serving digits.onnx on http://127.0.0.1:8000 (POST /predict, GET /health)
    $ curl -s localhost:8000/predict -H 'Content-Type: image/png' --data-binary @seven.png

``.onnx`` files run in onnxruntime; a run folder runs its trained model with ember.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_arguments", "run"]


def add_arguments(p):
    p.add_argument("model", metavar="MODEL", help="an .onnx file or a run folder written by "
                                                  "'ember train'")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--max-body-mb", type=float, default=8.0,
                   help="larger request bodies get 413 (default 8)")
    p.add_argument("--max-batch", type=int, default=256,
                   help="most samples in one request (default 256)")
    p.add_argument("--threads", type=int, default=None,
                   help="onnxruntime intra-op threads (default: onnxruntime's choice)")
    p.add_argument("--log", action="store_true", help="log every request to stderr")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show full tracebacks on errors")


def run(args):
    from ember.serve import InferenceServer, load_predictor

    predictor = load_predictor(args.model, args.threads)
    server = InferenceServer(predictor, args.host, args.port,
                             max_body_bytes=int(args.max_body_mb * 2 ** 20),
                             max_batch=args.max_batch, log=args.log)
    print(f"serving {predictor.name} on {server.url} (POST /predict, GET /health)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0
