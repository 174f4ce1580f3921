"""``ember train``: train a zoo model on a dataset, with a progress bar, checkpoints and plots.

    $ ember train                                   # the CNN on the bundled digits, < 1 minute
    $ ember train --model lenet --dataset cifar10 --batch-size 4 --epochs 2 --lr 0.001 \\
          --momentum 0.9 --download                 # the PyTorch CIFAR-10 tutorial
    $ ember train --resume runs/20250101-120000     # continue an interrupted run

Each epoch prints a summary line and rewrites ``runs/<id>/checkpoint.pt`` and ``metrics.json``;
``curves.png`` is drawn at the end. Ctrl-C finishes the current step, saves a checkpoint and exits;
``--resume`` then ends with the same weights as a run that was never interrupted.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import time

import numpy as np

from ember.cli import _runs
from ember.cli._data import build_datasets, dataset_names
from ember.cli._loop import evaluate, make_optimizer, make_scheduler

__all__ = ["add_arguments", "run", "DEFAULTS", "RECIPES"]

DEFAULTS = dict(model="cnn", dataset="digits", data_dir="data", download=False, epochs=10,
                batch_size=32, lr=0.01, momentum=0.9, optimizer="sgd", weight_decay=0.0,
                scheduler="none", augment=False, workers=0, seed=0, out="runs")
# Per-dataset defaults for options not given: the bundled digits train to >= 98% in seconds.
# Other datasets keep the plain defaults, so the CIFAR-10 tutorial's flags give its exact recipe.
RECIPES = {"digits": dict(epochs=15, lr=0.05, scheduler="cosine", augment=True)}
_RESUMABLE = ("epochs", "workers")  # options that may change when a run is resumed


def add_arguments(p):
    d = DEFAULTS
    p.add_argument("--model", help="a model of ember.vision.models: cnn, lenet, mlp, resnet20, "
                                    f"resnet18, vgg11, ... (default {d['model']})")
    p.add_argument("--dataset", help=f"one of: {', '.join(dataset_names())} "
                                     f"(default {d['dataset']})")
    p.add_argument("--data-dir", help=f"where datasets live (default {d['data_dir']!r})")
    p.add_argument("--download", action="store_true", default=None,
                   help="download the dataset if it is missing")
    p.add_argument("--epochs", type=int, help=f"default {d['epochs']} (15 on digits)")
    p.add_argument("--batch-size", type=int, help=f"default {d['batch_size']}")
    p.add_argument("--lr", type=float, help=f"learning rate (default {d['lr']}; 0.05 on digits)")
    p.add_argument("--momentum", type=float, help=f"SGD/RMSprop momentum (default {d['momentum']})")
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw", "rmsprop"],
                   help=f"default {d['optimizer']}")
    p.add_argument("--weight-decay", type=float, help=f"default {d['weight_decay']}")
    p.add_argument("--scheduler", choices=["none", "step", "cosine"],
                   help=f"learning-rate schedule per epoch (default {d['scheduler']}; cosine on "
                        "digits)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random crops (and flips for photos) on the training set (default: on "
                        "for digits, off otherwise)")
    p.add_argument("--workers", type=int, help="DataLoader worker processes (default 0)")
    p.add_argument("--seed", type=int, help=f"random seed (default {d['seed']})")
    p.add_argument("--out", help=f"folder for run folders (default {d['out']!r})")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this folder")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show full tracebacks on errors")


def _config(args, saved=None):
    given = {k: getattr(args, k) for k in DEFAULTS if getattr(args, k, None) is not None}
    if saved is None:
        dataset = given.get("dataset", DEFAULTS["dataset"])
        return {**DEFAULTS, **RECIPES.get(dataset, {}), **given}
    changed = [k for k, v in given.items() if k not in _RESUMABLE and v != saved.get(k)]
    if changed:
        raise ValueError(f"--resume continues a run with its saved settings; it cannot change "
                         f"{', '.join('--' + k.replace('_', '-') for k in changed)}")
    return {**saved, **given}


def _new_run_dir(out):
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, i = os.path.join(out, stamp), 1
    while os.path.exists(path):
        path, i = os.path.join(out, f"{stamp}-{i}"), i + 1
    os.makedirs(path)
    return path


class _StopFlag:
    """The first Ctrl-C asks to stop after the current step; a second one stops at once."""

    def __init__(self):
        self.stop = False

    def __call__(self, signum, frame):
        if self.stop:
            raise KeyboardInterrupt
        self.stop = True


def _restore_after_skip(skip, ckpt):
    # The batches done before an interruption were replayed from the epoch's starting RNG state
    # (so the loader's sampler is where it was); before the next batch is fetched, continue from
    # the global RNG states that the interrupted run had at that moment (its dropout and
    # augmentation draws included).
    if skip:
        _runs.set_rng_state(ckpt["rng"])
    return 0


def _data_for(cfg):
    """Train/test sets and their description, shaped for the configured model."""
    from ember.vision.models import get_model_builder

    get_model_builder(cfg["model"])  # an unknown model fails before any data is read
    args = (cfg["dataset"], cfg["data_dir"], cfg["download"], cfg["augment"])
    train_set, test_set, info = build_datasets(*args)
    channels, resize = _runs.model_input(cfg["model"], info)
    if (channels, resize) != (info.channels, info.resize):
        train_set, test_set, info = build_datasets(*args, resize, channels)
    return train_set, test_set, info


def _seed_everything(seed):
    import ember

    ember.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def run(args):
    import ember
    import ember.nn as nn
    from ember.utils.data import DataLoader

    tqdm = _runs.need_all([("tqdm", "progress"), ("matplotlib", "plot"), ("PIL", "vision")],
                          "'ember train'")[0].tqdm
    ckpt = _runs.load_checkpoint(args.resume) if args.resume else None
    cfg = _config(args, ckpt["config"] if ckpt else None)
    train_set, test_set, info = _data_for(cfg)
    _seed_everything(cfg["seed"])
    model = _runs.build_model(cfg["model"], info)
    optimizer = make_optimizer(cfg, model.parameters())
    scheduler = make_scheduler(cfg, optimizer)
    gen = ember.Generator().manual_seed(cfg["seed"])
    loader = DataLoader(train_set, batch_size=cfg["batch_size"], shuffle=True,
                        num_workers=cfg["workers"], generator=gen)
    test_loader = DataLoader(test_set, batch_size=256, num_workers=cfg["workers"])
    criterion = nn.CrossEntropyLoss()
    metrics, start, skip, partial = [], 1, 0, None
    if ckpt:
        run_dir = args.resume if os.path.isdir(args.resume) else os.path.dirname(args.resume)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None and ckpt.get("scheduler") is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
        metrics, start = list(ckpt["metrics"]), ckpt["epoch"] + 1
        skip, partial = ckpt.get("batch", 0), ckpt.get("partial")
        _runs.set_rng_state(ckpt["epoch_rng"] if skip else ckpt["rng"], gen)
        print(f"resuming {run_dir} at epoch {start}" + (f", batch {skip + 1}" if skip else ""))
    else:
        run_dir = _new_run_dir(cfg["out"])
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{cfg['model']} ({n_params:,} parameters) on {info.name}: {len(train_set)} train / "
          f"{len(test_set)} test images, {len(info.classes)} classes -> {run_dir}")

    flag = _StopFlag()
    old_handler = signal.signal(signal.SIGINT, flag)

    def checkpoint(epoch, batch=0, epoch_rng=None, part=None):
        _runs.save_checkpoint(run_dir, dict(
            model=model.state_dict(), optimizer=optimizer.state_dict(),
            scheduler=scheduler.state_dict() if scheduler is not None else None,
            rng=_runs.rng_state(gen), epoch_rng=epoch_rng, epoch=epoch, batch=batch,
            partial=part, config=cfg, data=info.to_dict(), metrics=metrics))

    try:
        for epoch in range(start, cfg["epochs"] + 1):
            epoch_rng = _runs.rng_state(gen)
            model.train()
            loss_sum, correct, seen, seconds = (partial or {}).get("sums", (0.0, 0, 0, 0.0))
            t0 = time.perf_counter() - seconds
            bar = tqdm(total=len(loader), initial=skip, desc=f"epoch {epoch}/{cfg['epochs']}",
                       unit="batch", leave=False, dynamic_ncols=True)
            batches = iter(loader)
            for _ in range(skip):  # replay the batches done before an interruption
                next(batches)
            first, skip = skip, _restore_after_skip(skip, ckpt)
            for i, (x, y) in enumerate(batches, start=first):
                out = model(x)
                loss = criterion(out, y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                n = y.shape[0]
                loss_sum += loss.item() * n
                correct += int((out.argmax(1) == y).sum().item())
                seen += n
                bar.update(1)
                bar.set_postfix({"loss": f"{loss_sum / seen:.4f}", "acc": f"{correct / seen:.2%}",
                                 "img/s": f"{seen / (time.perf_counter() - t0):.0f}"},
                                refresh=False)  # a dict keeps this order (keywords are sorted)
                if flag.stop:
                    bar.close()
                    sums = (loss_sum, correct, seen, time.perf_counter() - t0)
                    checkpoint(epoch - 1, i + 1, epoch_rng, {"sums": list(sums)})
                    print(f"interrupted: checkpoint saved in {run_dir}; continue with "
                          f"'ember train --resume {run_dir}'")
                    return 130
            bar.close()
            partial = None
            if scheduler is not None:
                scheduler.step()
            test_loss, test_acc = evaluate(model, test_loader, criterion)
            rec = dict(epoch=epoch, train_loss=loss_sum / max(seen, 1),
                       train_acc=correct / max(seen, 1), test_loss=test_loss, test_acc=test_acc,
                       seconds=round(time.perf_counter() - t0, 3))
            metrics.append(rec)
            print(f"epoch {epoch}/{cfg['epochs']}  train loss {rec['train_loss']:.4f} "
                  f"acc {rec['train_acc']:.2%}  test loss {test_loss:.4f} acc {test_acc:.2%}  "
                  f"{rec['seconds']:.1f}s  {seen / rec['seconds']:.0f} img/s")
            checkpoint(epoch)
            _runs.write_metrics(run_dir, metrics)
            if flag.stop:
                print(f"interrupted: checkpoint saved in {run_dir}; continue with "
                      f"'ember train --resume {run_dir}'")
                return 130
    finally:
        signal.signal(signal.SIGINT, old_handler)
    if metrics:
        _runs.plot_curves(run_dir, metrics)
        print(f"done: test accuracy {metrics[-1]['test_acc']:.2%}; saved checkpoint.pt, "
              f"metrics.json and curves.png in {run_dir}")
    return 0
