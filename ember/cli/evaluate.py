"""``ember evaluate RUN``: test accuracy, a per-class table and a confusion-matrix PNG.

    $ ember evaluate runs/20250101-120000
    $ ember evaluate runs/20250101-120000 --out confusion.png
"""

from __future__ import annotations

import argparse
import os

from ember.cli import _runs
from ember.cli._data import DataInfo, build_datasets
from ember.cli._loop import predict_all

__all__ = ["add_arguments", "confusion_matrix", "load_run_model", "one_line", "run"]


def add_arguments(p):
    p.add_argument("run", metavar="RUN", help="a run folder written by 'ember train' (or its "
                                              "checkpoint.pt)")
    p.add_argument("--data-dir", help="where the dataset lives (default: the run's setting)")
    p.add_argument("--batch-size", type=int, default=256, help="default 256")
    p.add_argument("--out", help="confusion-matrix PNG (default RUN/confusion.png)")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show full tracebacks on errors")


def load_run_model(run):
    """``(model, info, ckpt)`` of a run: the trained model in eval mode and its data description."""
    ckpt = _runs.load_checkpoint(run)
    info = DataInfo.from_dict(ckpt["data"])
    model = _runs.build_model(ckpt["config"]["model"], info)
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, KeyError, ValueError) as e:
        raise ValueError(f"checkpoint {_runs.checkpoint_path(run)!r} does not fit its model: "
                         f"{one_line(e)}") from None
    return model.eval(), info, ckpt


def one_line(error, limit=300):
    """An exception's message on one line (load_state_dict's span several), cut to ``limit``."""
    text = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def confusion_matrix(pred, target, n):
    """``n x n`` counts: row = true class, column = predicted class."""
    import numpy as np

    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (target, pred), 1)
    return cm


def _plot_confusion(cm, classes, path, title):
    matplotlib = _runs.need("matplotlib", "plot", "the confusion-matrix picture")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(classes)
    size = min(12, 2 + 0.45 * n)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues")
    if n <= 20:
        ax.set_xticks(range(n), classes, rotation=90 if n > 10 else 0)
        ax.set_yticks(range(n), classes)
        half = cm.max() / 2
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if cm[i, j] > half else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(args):
    from ember.utils.data import DataLoader

    model, info, ckpt = load_run_model(args.run)
    cfg = ckpt["config"]
    _, test_set, _ = build_datasets(cfg["dataset"], args.data_dir or cfg["data_dir"], False,
                                    False, info.resize, info.channels)
    logits, targets = predict_all(model, DataLoader(test_set, batch_size=args.batch_size))
    pred = logits.argmax(1)
    n = len(info.classes)
    cm = confusion_matrix(pred, targets, n)
    acc = float((pred == targets).mean())
    print(f"{cfg['model']} on {info.name} test split ({len(targets)} images): "
          f"accuracy {acc:.2%}")
    width = max(5, max(len(c) for c in info.classes))
    print(f"{'class':<{width}}  {'count':>6}  {'correct':>7}  {'recall':>7}  {'precision':>9}")
    for i, name in enumerate(info.classes):
        count, hit, predicted = cm[i].sum(), cm[i, i], cm[:, i].sum()
        recall = f"{hit / count:.2%}" if count else "-"
        precision = f"{hit / predicted:.2%}" if predicted else "-"
        print(f"{name:<{width}}  {count:>6}  {hit:>7}  {recall:>7}  {precision:>9}")
    run_dir = args.run if os.path.isdir(args.run) else os.path.dirname(args.run) or "."
    out = args.out or os.path.join(run_dir, "confusion.png")
    _plot_confusion(cm, info.classes, out, f"{cfg['model']} on {info.name}: {acc:.2%}")
    print(f"confusion matrix written to {out}")
    return 0
