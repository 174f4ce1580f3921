"""What the server runs: an ONNX model in onnxruntime, or a trained ember run folder.

Both give ``predict(batch) -> array``, the per-sample input shape and dtype they accept, and
(when the model was trained on images by ``ember train``) the image preprocessing and class names,
which ``ember export`` stores in the ONNX file's metadata (``ember.data``).
"""

from __future__ import annotations

import io
import json
import os
import threading

import numpy as np

__all__ = ["InputError", "OnnxPredictor", "EmberPredictor", "load_predictor"]


class InputError(ValueError):
    """A request's input is unusable; ``status`` is the HTTP status to answer with."""

    def __init__(self, message, status=422):
        super().__init__(message)
        self.status = status


class _Base:
    name = "model"
    info = None  # ember.cli._data.DataInfo when the model was trained on images

    @property
    def classes(self):
        return list(self.info.classes) if self.info is not None else []

    def describe(self):
        return {"model": self.name, "input_shape": [d if isinstance(d, int) else None
                                                    for d in self.sample_shape],
                "input_dtype": np.dtype(self.dtype).name, "classes": self.classes}

    def check_batch(self, arr):
        """A batch (N, *sample_shape) of the model's dtype from a decoded JSON array."""
        want = list(self.sample_shape)
        if arr.ndim == len(want):
            arr = arr[None]
        if arr.ndim != len(want) + 1 or any(isinstance(w, int) and w != s
                                            for w, s in zip(want, arr.shape[1:])):
            shown = ["N"] + [w if isinstance(w, int) else "*" for w in want]
            raise InputError(f"inputs have shape {list(arr.shape)}; expected {shown} (or one "
                             f"sample of shape {shown[1:]})")
        if arr.shape[0] == 0:
            raise InputError("inputs hold no samples")
        if np.dtype(self.dtype).kind in "iu":
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
                raise InputError(f"this model takes integers ({self.dtype}); got non-integer "
                                 "numbers")
        elif not np.all(np.isfinite(arr)):
            raise InputError("inputs contain NaN or infinite values")
        return arr.astype(self.dtype)

    def image_batch(self, data):
        """Decode image bytes and preprocess them as at training time: (1, C, H, W)."""
        if self.info is None:
            raise InputError("this model has no image preprocessing recorded (export it with "
                             "'ember export RUN'); send JSON {\"inputs\": [...]} instead", 415)
        try:
            from PIL import Image, UnidentifiedImageError
        except ImportError:
            raise InputError("image uploads need Pillow on the server (pip install pillow)",
                             415) from None
        from ember.cli._data import eval_transform

        info = self.info
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                img = im.convert("L" if info.channels == 1 or info.gray_to_rgb else "RGB")
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
            why = "not an image file Pillow can read" if isinstance(e, UnidentifiedImageError) \
                else str(e).splitlines()[0]
            raise InputError(f"cannot decode the image: {why}", 400) from None
        if not info.resize and img.size != (info.image_size, info.image_size):
            w, h = img.size
            raise InputError(f"the image is {w}x{h} pixels; this model takes "
                             f"{info.image_size}x{info.image_size} {info.name} images")
        x = eval_transform(info)(img).numpy()
        return x[None].astype(self.dtype)


class OnnxPredictor(_Base):
    """Runs an ``.onnx`` file with onnxruntime (thread-safe: requests run concurrently)."""

    def __init__(self, path, threads=None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportError("serving an ONNX model needs onnxruntime: pip install "
                              "'ember[onnx]'") from None
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(os.fspath(path), opts,
                                            providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()
        if len(inp) != 1:
            raise ValueError(f"ember serve handles models with one input; {path!r} has "
                             f"{len(inp)}")
        self.input_name = inp[0].name
        self.sample_shape = list(inp[0].shape[1:])
        self.dtype = _ORT_TYPES.get(inp[0].type, np.float32)
        self.name = os.path.basename(os.fspath(path))
        meta = self.session.get_modelmeta().custom_metadata_map
        if "ember.data" in meta:
            from ember.cli._data import DataInfo

            self.info = DataInfo.from_dict(json.loads(meta["ember.data"]))

    def predict(self, batch):
        return self.session.run(None, {self.input_name: batch})[0]


_ORT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64,
              "tensor(int64)": np.int64, "tensor(int32)": np.int32}


class EmberPredictor(_Base):
    """Runs a run folder's trained model with ember (one request at a time)."""

    def __init__(self, run):
        from ember.cli.evaluate import load_run_model
        from ember.cli.export import sample_shape

        self.model, self.info, ckpt = load_run_model(run)
        self.name = f"{ckpt['config']['model']} ({os.path.basename(os.path.abspath(run))})"
        self.sample_shape = list(sample_shape(self.info))
        self.dtype = np.float32
        self._lock = threading.Lock()  # grad mode and the model's buffers are shared state

    def predict(self, batch):
        import ember

        with self._lock, ember.no_grad():
            return self.model(ember.from_numpy(batch)).numpy()


def load_predictor(target, threads=None):
    """``OnnxPredictor`` for an ``.onnx`` file, ``EmberPredictor`` for a run folder."""
    if os.path.isdir(target):
        return EmberPredictor(target)
    if not os.path.exists(target):
        raise FileNotFoundError(f"no such model: {target!r} (pass an .onnx file or a run folder "
                                "written by 'ember train')")
    if target.endswith(".pt"):
        return EmberPredictor(target)
    return OnnxPredictor(target, threads)
