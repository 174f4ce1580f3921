"""``ember predict RUN image.png ...``: the top-3 classes of each image, with probabilities.

    $ ember predict runs/20250101-120000 seven.png
    seven.png: 7 (99.1%), 1 (0.5%), 9 (0.2%)
"""

from __future__ import annotations

import argparse

from ember.cli._data import eval_transform
from ember.cli._runs import need
from ember.cli.evaluate import load_run_model

__all__ = ["add_arguments", "run", "load_image"]


def add_arguments(p):
    p.add_argument("run", metavar="RUN", help="a run folder written by 'ember train'")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files (PNG, JPEG, ...)")
    p.add_argument("-k", "--top", type=int, default=3, help="how many classes to show (default 3)")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show full tracebacks on errors")


def load_image(path, info):
    """Open ``path`` as the run's images look (mode, size), or raise a one-line ValueError."""
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

    model, info, _ = load_run_model(args.run)
    tf = eval_transform(info)
    batch = ember.stack([tf(load_image(p, info)) for p in args.images])
    with ember.no_grad():
        logits = model(batch).numpy().astype(np.float64)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    k = max(1, min(args.top, probs.shape[1]))
    for path, p in zip(args.images, probs, strict=True):
        top = np.argsort(-p, kind="stable")[:k]
        print(f"{path}: " + ", ".join(f"{info.classes[i]} ({p[i]:.1%})" for i in top))
    return 0
