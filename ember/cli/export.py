"""``ember export RUN --onnx model.onnx``: a trained run's model as an ONNX file.

    $ ember export runs/20250101-120000 --onnx digits.onnx
    wrote digits.onnx (cnn, input [batch, 1, 8, 8], opset 17, 0.9 MB)

The batch axis is dynamic. The dataset description (image size, normalisation, class names) is
stored in the file's metadata so ``ember serve digits.onnx`` can take image uploads.
"""

from __future__ import annotations

import argparse
import json
import os

__all__ = ["add_arguments", "run", "sample_shape"]


def add_arguments(p):
    p.add_argument("run", metavar="RUN", help="a run folder written by 'ember train' (or its "
                                              "checkpoint.pt)")
    p.add_argument("--onnx", required=True, metavar="FILE", help="the ONNX file to write")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version (default 17)")
    p.add_argument("--check", action="store_true",
                   help="compare onnxruntime's outputs with ember's on a random batch")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show full tracebacks on errors")


def sample_shape(info):
    """(C, H, W) of one preprocessed image of the run's dataset."""
    return (info.channels, info.resize or info.image_size, info.resize or info.image_size)


def run(args):
    import numpy as np

    import ember
    import ember.onnx
    from ember.cli._runs import need
    from ember.cli.evaluate import load_run_model

    need("onnx", "onnx", "ember export")
    model, info, ckpt = load_run_model(args.run)
    name = ckpt["config"]["model"]
    x = ember.randn(2, *sample_shape(info))
    meta = {"ember.model": name, "ember.data": json.dumps(info.to_dict())}
    ember.onnx.export(model, (x,), args.onnx, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      opset_version=args.opset, metadata=meta)
    size = os.path.getsize(args.onnx) / 2 ** 20
    print(f"wrote {args.onnx} ({name}, input [batch, {', '.join(map(str, x.shape[1:]))}], "
          f"opset {args.opset}, {size:.1f} MB)")
    if args.check:
        ort = need("onnxruntime", "onnx", "ember export --check")
        xs = ember.randn(5, *sample_shape(info))
        with ember.no_grad():
            ref = model(xs).numpy()
        got = ort.InferenceSession(args.onnx).run(None, {"input": xs.numpy()})[0]
        err = float(np.abs(got - ref).max())
        ok = np.allclose(got, ref, rtol=1e-3, atol=1e-5)
        print(f"onnxruntime vs ember on a batch of 5: max abs difference {err:.2e} "
              f"({'ok' if ok else 'MISMATCH'})")
        return 0 if ok else 1
    return 0
