"""``ember predict [RUN] image.png ...``: the top-3 classes of each image, with probabilities.

With a run folder written by ``ember train`` (or its ``checkpoint.pt``) first, its model
predicts; without one, the digits CNN whose weights ship with ember does (``ember.hub``'s
``cnn.DIGITS_V1``, with the preprocessing recorded in its registry entry), so predicting
works out of the box on 8x8 grayscale digit images::

    $ ember predict seven.png                        # the shipped digits CNN
    seven.png: 7 (99.1%), 1 (0.5%), 9 (0.2%)
    $ ember predict --model mlp seven.png            # the shipped digits MLP
    $ ember predict runs/20250101-120000 seven.png   # a model you trained
"""

from __future__ import annotations

import argparse
import os

from ember.cli._data import DataInfo, eval_transform
from ember.cli._runs import need
from ember.cli.evaluate import load_run_model, one_line

__all__ = ["add_arguments", "load_image", "load_shipped_model", "run"]

_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                     ".pgm", ".pbm")


def add_arguments(p):
    p.usage = ("ember predict [-h] [-k TOP] [--model NAME] [--weights NAME] [--debug] "
               "[RUN] IMAGE [IMAGE ...]")
    p.add_argument("inputs", metavar="[RUN] IMAGE", nargs="+",
                   help="a run folder written by 'ember train' (or its checkpoint.pt), then image "
                        "files (PNG, JPEG, ...); with no run, the digits CNN shipped with ember")
    p.add_argument("--model", help="use the weights shipped with ember for this model (cnn, mlp) "
                                   "instead of a run (default cnn)")
    p.add_argument("--weights", help="which shipped weights of --model (default DEFAULT), or a "
                                     "local weights file for it (same preprocessing)")
    p.add_argument("-k", "--top", type=int, default=3, help="how many classes to show (default 3)")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show full tracebacks on errors")


def _is_run(path: str) -> bool:
    """A run folder or checkpoint file (a path that is not there counts unless it names an
    image, so that a mistyped run gets 'no checkpoint at ...')."""
    if os.path.isdir(path):
        return True
    ext = os.path.splitext(path)[1].lower()
    return ext in (".pt", ".pth", ".ckpt") or (not os.path.exists(path)
                                              and ext not in _IMAGE_EXTENSIONS)


def _split_inputs(args):
    """``(run or None, images)`` from the positional arguments."""
    first, rest = args.inputs[0], args.inputs[1:]
    if args.model is not None or args.weights is not None or not _is_run(first):
        return None, args.inputs
    if not rest:
        raise ValueError(f"no image files given after the run {first!r}: ember predict RUN "
                         f"IMAGE [IMAGE ...]")
    return first, rest


def load_shipped_model(name: str = "cnn", weights: str | None = None):
    """``(model, info)``: zoo model ``name`` with weights shipped in ember (``ember.hub``) in
    eval mode, and a ``DataInfo`` built from the preprocessing its registry entry records."""
    from ember import hub
    from ember.vision import models

    models.get_model_builder(name)  # an unknown model lists the valid ones
    if not hub.list_weights(name.lower()):
        shipped = sorted({w.builder for w in hub.list_weights()})
        raise ValueError(f"no weights are shipped for model {name!r}; models with shipped "
                         f"weights: {', '.join(shipped)} (or give a run folder written by "
                         "'ember train')")
    local = weights is not None and os.path.isfile(weights)
    if weights and not local and (os.sep in weights or os.path.splitext(weights)[1]):
        raise FileNotFoundError(f"no such weights file: {weights!r}")
    entry = hub.resolve(models.get_model(name), "DEFAULT" if local or not weights else weights)
    model = models.get_model(name, **entry.config)
    try:
        if local:
            models.load_weights(model, weights)
        else:
            model.load_state_dict(entry.get_state_dict())
    except (RuntimeError, KeyError, ValueError) as e:
        raise ValueError(f"cannot load weights {weights or entry.name!r} into model {name!r}: "
                         f"{one_line(e)}") from None
    pre, meta = entry.meta["preprocessing"], entry.meta
    dataset = meta.get("dataset", entry.name).rsplit(".", 1)[-1].lower()
    info = DataInfo(dataset, pre["channels"], pre["size"], tuple(pre["mean"]), tuple(pre["std"]),
                    list(meta["classes"]))
    return model.eval(), info


def load_image(path, info):
    """Open ``path`` as the model's images look (mode, size), or raise a one-line ValueError."""
    need("PIL", "vision", "reading images")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            img = im.convert("L" if info.channels == 1 or info.gray_to_rgb else "RGB")
    except FileNotFoundError:
        raise FileNotFoundError(f"no such image file: {path!r}") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ValueError(f"cannot decode image {path!r}: {str(e).splitlines()[0]}") from None
    if not info.resize and img.size != (info.image_size, info.image_size):
        w, h = img.size
        raise ValueError(f"image {path!r} is {w}x{h} pixels; this model was trained on "
                         f"{info.image_size}x{info.image_size} {info.name} images")
    return img


def run(args):
    import numpy as np

    import ember

    run_dir, images = _split_inputs(args)
    if run_dir is None:
        model, info = load_shipped_model(args.model or "cnn", args.weights)
    else:
        model, info, _ = load_run_model(run_dir)
    tf = eval_transform(info)
    batch = ember.stack([tf(load_image(p, info)) for p in images])
    with ember.no_grad():
        logits = model(batch).numpy().astype(np.float64)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    k = max(1, min(args.top, probs.shape[1]))
    for path, p in zip(images, probs, strict=True):
        top = np.argsort(-p, kind="stable")[:k]
        print(f"{path}: " + ", ".join(f"{info.classes[i]} ({p[i]:.1%})" for i in top))
    return 0
