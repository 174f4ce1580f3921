"""``ember train``, ``ember evaluate``, ``ember predict``: outputs, resume, Ctrl-C, bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import ember
from ember.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAST = ["--model", "mlp", "--epochs", "3", "--batch-size", "64"]


def only_run(out_dir):
    (name,) = os.listdir(out_dir)
    return os.path.join(out_dir, name)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short default-model run shared by the evaluate/predict tests."""
    out = tmp_path_factory.mktemp("runs")
    assert main(["train", "--epochs", "2", "--out", str(out)]) == 0
    return only_run(out)


def test_train_writes_run_folder(trained, capsys):
    assert sorted(os.listdir(trained)) == ["checkpoint.pt", "curves.png", "metrics.json"]
    with open(os.path.join(trained, "metrics.json")) as f:
        metrics = json.load(f)
    assert [m["epoch"] for m in metrics] == [1, 2]
    for m in metrics:
        assert set(m) == {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds"}
    assert metrics[1]["train_loss"] < metrics[0]["train_loss"]
    assert metrics[1]["test_acc"] > 0.8
    ckpt = ember.load(os.path.join(trained, "checkpoint.pt"))
    assert ckpt["epoch"] == 2 and ckpt["config"]["model"] == "cnn"
    assert {"model", "optimizer", "scheduler", "rng"} <= set(ckpt)
    with open(os.path.join(trained, "curves.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_train_prints_summary_lines(tmp_path, capsys):
    assert main(["train", *FAST[:3], "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "mlp (" in out and "digits" in out
    assert "epoch 1/1  train loss" in out and "test loss" in out and "img/s" in out
    assert "done: test accuracy" in out


def test_progress_bar_shows_loss_accuracy_and_images_per_second(tmp_path, capsys, monkeypatch):
    import types

    bars = []

    class Bar:
        def __init__(self, total, initial=0, desc="", **kwargs):
            self.total, self.desc, self.n, self.postfix = total, desc, initial, []
            bars.append(self)

        def update(self, n):
            self.n += n

        def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
            self.postfix.append(dict(ordered_dict or {}, **kwargs))

        def close(self):
            pass

    monkeypatch.setitem(sys.modules, "tqdm", types.SimpleNamespace(tqdm=Bar))
    assert main(["train", *FAST[:3], "2", "--out", str(tmp_path)]) == 0
    assert [b.desc for b in bars] == ["epoch 1/2", "epoch 2/2"]
    for b in bars:
        assert b.n == b.total == 45  # 1,437 images in batches of 32
        last = b.postfix[-1]
        assert list(last) == ["loss", "acc", "img/s"]
        assert float(last["loss"]) > 0 and last["acc"].endswith("%") and int(last["img/s"]) > 0


def _weights(run):
    state = ember.load(os.path.join(run, "checkpoint.pt"))["model"]
    return {k: v.numpy() for k, v in state.items()}


def _assert_same_weights(run_a, run_b):
    a, b = _weights(run_a), _weights(run_b)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def _start(out, *args):
    """``ember train`` in a process of its own, as a user starts it. Each run the resume tests
    compare runs so: a process that imported torch before ember (as this one) sets its BLAS
    threads otherwise, and NumPy's OpenBLAS on one thread rounds some products differently
    from two (seen on an AMD EPYC: 1-ulp differences). For the same reason the runs keep their
    thread count when other processes load the machine (EMBER_DYNAMIC_THREADS=0, as
    ``use_deterministic_algorithms(True)``): under a parallel test run's load, runs compared
    without it differed in the last bits."""
    env = dict(os.environ, PYTHONPATH=ROOT, EMBER_DYNAMIC_THREADS="0")
    cmd = [sys.executable, "-m", "ember.cli", "train", *(args or (*FAST, "--out", str(out)))]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _finish(proc):
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "done: test accuracy" in stdout, stderr


def _resume(run):
    _finish(_start(None, "--resume", run))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run, to compare resumed runs against."""
    out = tmp_path_factory.mktemp("ref")
    _finish(_start(out))
    return only_run(out)


def _wait_for_epoch(out, proc, n=1, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        runs = os.listdir(out) if os.path.isdir(out) else []
        path = os.path.join(out, runs[0], "metrics.json") if runs else None
        if path and os.path.exists(path):
            with open(path) as f:
                if len(json.load(f)) >= n:
                    return os.path.join(out, runs[0])
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    raise AssertionError("no epoch finished in time")


def test_resume_after_kill_matches_uninterrupted_run(tmp_path, reference):
    out = tmp_path / "runs"
    proc = _start(out)
    run = _wait_for_epoch(str(out), proc)
    proc.kill()
    proc.wait()
    _resume(run)
    with open(os.path.join(run, "metrics.json")) as f:
        assert [m["epoch"] for m in json.load(f)] == [1, 2, 3]
    _assert_same_weights(run, reference)


def test_ctrl_c_saves_checkpoint_and_resume_matches(tmp_path, reference, capsys):
    out = tmp_path / "runs"
    proc = _start(out)
    run = _wait_for_epoch(str(out), proc)
    proc.send_signal(signal.SIGINT)  # lands somewhere in epoch 2 (or just after it)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode in (0, 130), stderr
    if proc.returncode == 130:
        assert "interrupted: checkpoint saved" in stdout and "--resume" in stdout
        assert "Traceback" not in stderr
        _resume(run)
    _assert_same_weights(run, reference)


def test_resume_refuses_changed_settings(reference, capsys):
    assert main(["train", "--resume", reference, "--lr", "0.5"]) == 2
    assert "cannot change --lr" in capsys.readouterr().err


def test_evaluate_prints_table_and_writes_confusion_matrix(trained, capsys):
    assert main(["evaluate", trained]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "recall" in out and "precision" in out
    rows = [line for line in out.splitlines() if line[:1].isdigit() and len(line.split()) == 5]
    assert len(rows) == 10
    assert os.path.exists(os.path.join(trained, "confusion.png"))
    os.remove(os.path.join(trained, "confusion.png"))


def _digit_png(path, size=8):

    from ember.vision.datasets import Digits

    img, label = Digits(train=False)[0]
    img = img if size == 8 else img.resize((size, size))
    img.save(path)
    return label


def test_predict_prints_top3(trained, tmp_path, capsys):
    label = _digit_png(tmp_path / "digit.png")
    assert main(["predict", trained, str(tmp_path / "digit.png")]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{tmp_path / 'digit.png'}: {label} (")
    probs = [float(p) for p in __import__("re").findall(r"\(([0-9.]+)%\)", line)]
    assert len(probs) == 3 and probs == sorted(probs, reverse=True) and sum(probs) <= 100.1


def _top3(line):
    """``(path, [(class, percent), ...])`` of one line of ``ember predict``."""
    import re

    path, rest = line.split(": ", 1)
    return path, [(c, float(p)) for c, p in re.findall(r"(\S+) \(([0-9.]+)%\)", rest)]


@pytest.mark.parametrize("extra", [[], ["--model", "cnn"], ["--weights", "DEFAULT"],
                                   ["--model", "mlp"]])
def test_predict_works_out_of_the_box_with_shipped_weights(extra, tmp_path, capsys):
    from ember.vision.datasets import Digits

    test = Digits(train=False)
    paths, labels = [], []
    for i in range(5):  # the shipped CNN (99.2%) and MLP (97.8%) get these five right
        img, label = test[i]
        img.save(tmp_path / f"digit{i}.png")
        paths.append(str(tmp_path / f"digit{i}.png"))
        labels.append(str(label))
    assert main(["predict", *paths, *extra]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5
    for line, path, label in zip(lines, paths, labels, strict=True):
        got_path, top = _top3(line)
        assert got_path == path and len(top) == 3
        assert top[0][0] == label and top[0][1] > 90, line
        assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)


def test_predict_shipped_weights_preprocess_as_the_registry_says(tmp_path, capsys):
    from ember import hub
    from ember.cli.predict import load_shipped_model
    from ember.vision import transforms as T
    from ember.vision.datasets import Digits

    pre = hub.get_weight("cnn.DIGITS_V1").meta["preprocessing"]
    model, info = load_shipped_model("cnn")
    assert (info.mean, info.std, info.image_size, info.channels) == (
        tuple(pre["mean"]), tuple(pre["std"]), pre["size"], pre["channels"])
    img, _ = Digits(train=False)[3]
    img.save(tmp_path / "d.png")
    assert main(["predict", str(tmp_path / "d.png"), "-k", "10"]) == 0
    printed = dict(_top3(capsys.readouterr().out.strip())[1])
    x = T.Compose([T.ToTensor(), T.Normalize(pre["mean"], pre["std"])])(img).unsqueeze(0)
    with ember.no_grad():
        probs = ember.softmax(model(x), 1)[0].numpy()
    for c, p in printed.items():
        assert abs(p - 100 * probs[int(c)]) < 0.051


def test_predict_with_a_local_weights_file(tmp_path, capsys):
    from ember.vision.datasets import Digits
    from ember.vision.models import get_model

    img, label = Digits(train=False)[1]
    img.save(tmp_path / "d.png")
    np.savez(tmp_path / "mlp.npz", **{k: v.numpy() for k, v in
                                      get_model("mlp", weights="DEFAULT").state_dict().items()})
    argv = ["predict", "--model", "mlp", "--weights", str(tmp_path / "mlp.npz"),
            str(tmp_path / "d.png")]
    assert main(argv) == 0
    assert _top3(capsys.readouterr().out.strip())[1][0][0] == str(label)
    assert main(["predict", "--weights", str(tmp_path / "mlp.npz"), str(tmp_path / "d.png")]) == 2
    err = capsys.readouterr().err
    assert "cannot load weights" in err and "into model 'cnn'" in err
    assert len(err.strip().splitlines()) == 1


def test_predict_with_shipped_weights_bad_input(trained, tmp_path, capsys):
    from ember.vision.datasets import Digits

    img, _ = Digits(train=False)[0]
    img.save(tmp_path / "d.png")
    img.resize((28, 28)).save(tmp_path / "big.png")
    d = str(tmp_path / "d.png")
    cases = [
        (["predict", "--model", "resnet18", d],
         "no weights are shipped for model 'resnet18'; models with shipped weights: cnn, mlp"),
        (["predict", "--model", "resnet99", d], "unknown model 'resnet99'; valid models are"),
        (["predict", "--weights", "V9", d],
         "no pretrained weights 'V9' for CNN; available: DEFAULT, DIGITS_V1"),
        (["predict", "--weights", str(tmp_path / "w.npz"), d], "no such weights file"),
        (["predict", str(tmp_path / "big.png")],
         "is 28x28 pixels; this model was trained on 8x8 digits images"),
        (["predict", str(tmp_path / "no_run"), d], "no checkpoint at"),
        (["predict", trained], "no image files given after the run"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err, (argv, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("argv,message", [
    (["train", "--model", "resnet19"], "unknown model 'resnet19'; valid models are: cnn, lenet"),
    (["train", "--dataset", "imagenet-x"],
     "unknown dataset 'imagenet-x'; valid datasets are: digits, mnist"),
])
def test_unknown_names_list_valid_ones(argv, message, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_missing_dataset_says_how_to_get_it(tmp_path, capsys):
    assert main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "none"),
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "mnist dataset was not found" in err and "--download" in err
    assert len(err.strip().splitlines()) == 1


def test_bad_files_give_one_line_errors(trained, tmp_path, capsys):
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not an image at all")
    _digit_png(tmp_path / "big.png", size=16)
    bad_run = tmp_path / "bad_run"
    bad_run.mkdir()
    (bad_run / "checkpoint.pt").write_bytes(b"\x00corrupted checkpoint\xff" * 10)
    with open(os.path.join(trained, "checkpoint.pt"), "rb") as f:
        (tmp_path / "truncated.pt").write_bytes(f.read()[:300])
    cases = [
        (["predict", trained, str(garbage)], "cannot decode image"),
        (["predict", trained, str(tmp_path / "big.png")], "is 16x16 pixels; this model was "
                                                           "trained on 8x8"),
        (["predict", trained, str(tmp_path / "missing.png")], "no such image file"),
        (["evaluate", str(bad_run)], "cannot read checkpoint"),
        (["evaluate", str(tmp_path / "truncated.pt")], "cannot read checkpoint"),
        (["evaluate", str(tmp_path / "nothing")], "no checkpoint at"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err, (argv, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_debug_shows_the_exception(trained, tmp_path):
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"nope")
    with pytest.raises(ValueError, match="cannot decode image"):
        main(["predict", trained, str(garbage), "--debug"])


def test_seed_program_command_on_cifar10_lookalike(tmp_path, capsys, monkeypatch):
    from tests._fake_cifar import patch_checksums, write_cifar10

    patch_checksums(monkeypatch, write_cifar10(str(tmp_path / "data"), n_train=400, n_test=100))
    argv = ["train", "--model", "lenet", "--dataset", "cifar10", "--batch-size", "4",
            "--epochs", "1", "--lr", "0.001", "--momentum", "0.9", "--download",
            "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "runs")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "lenet (62,006 parameters) on cifar10: 400 train / 100 test images" in out
    ckpt = ember.load(os.path.join(only_run(tmp_path / "runs"), "checkpoint.pt"))
    cfg = ckpt["config"]
    # The tutorial's recipe: constant lr 0.001, momentum 0.9, no weight decay, no schedule.
    assert (cfg["lr"], cfg["momentum"], cfg["scheduler"], cfg["weight_decay"]) == (
        0.001, 0.9, "none", 0.0)
    assert ckpt["data"]["classes"][:2] == ["airplane", "automobile"]


def test_image_folder_dataset_with_augment_and_workers(tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, colour in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(10):
            arr = np.clip(np.array(colour) + rng.normal(0, 20, (12, 12, 3)), 0, 255)
            Image.fromarray(arr.astype(np.uint8)).save(tmp_path / "imgs" / cls / f"{i}.png")
    argv = ["train", "--dataset", str(tmp_path / "imgs"), "--model", "mlp", "--epochs", "2",
            "--augment", "--workers", "2", "--out", str(tmp_path / "runs")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "on folder: 16 train / 4 test images, 2 classes" in out
    run = only_run(tmp_path / "runs")
    assert main(["predict", run, str(tmp_path / "imgs" / "red" / "0.png")]) == 0
    assert capsys.readouterr().out.count("(") == 2  # two classes: top-3 shows both


def test_missing_extra_names_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # as if tqdm were not installed
    assert main(["train", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "pip install 'ember[progress]'" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setitem(sys.modules, "PIL", None)
    assert main(["train", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert ("'ember train' needs the 'tqdm', 'PIL' packages: pip install 'ember[progress,vision]' "
            "(or pip install tqdm pillow)") in err


def test_train_on_mnist_fashion_mnist_and_cifar100_files(tmp_path, capsys, monkeypatch):
    from tests.vision._fixtures import py2_pickle, write_idx

    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    for cls in ("MNIST", "FashionMNIST"):
        raw = data / cls / "raw"
        raw.mkdir(parents=True)
        for prefix, n in (("train", 40), ("t10k", 20)):
            write_idx(raw / f"{prefix}-images-idx3-ubyte.gz",
                      rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
            write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    folder = data / "cifar-100-python"
    folder.mkdir()
    for name, n in (("train", 30), ("test", 10)):
        (folder / name).write_bytes(py2_pickle({
            "filenames": ["a"] * n, "batch_label": name, "fine_labels": list(range(n)),
            "coarse_labels": [0] * n, "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}))
    (folder / "meta").write_bytes(py2_pickle({"fine_label_names": [f"c{i}" for i in range(100)],
                                              "coarse_label_names": ["x"] * 20}))
    from ember.vision.datasets import CIFAR100
    from tests.vision._fixtures import md5

    monkeypatch.setattr(CIFAR100, "train_list", [["train", md5(folder / "train")]])
    monkeypatch.setattr(CIFAR100, "test_list", [["test", md5(folder / "test")]])
    monkeypatch.setattr(CIFAR100, "meta", dict(CIFAR100.meta, md5=md5(folder / "meta")))
    for name, model, header in (
            ("mnist", "cnn", "cnn (421,642 parameters) on mnist: 40 train / 20 test images, "
                             "10 classes"),
            ("fashion-mnist", "mlp", "on fashion-mnist: 40 train / 20 test images, 10 classes"),
            ("cifar100", "resnet20", "on cifar100: 30 train / 10 test images, 100 classes")):
        argv = ["train", "--dataset", name, "--model", model, "--data-dir", str(data),
                "--epochs", "1", "--batch-size", "16", "--out", str(tmp_path / name)]
        assert main(argv) == 0, name
        out = capsys.readouterr().out
        assert header in out, out
        ckpt = ember.load(os.path.join(only_run(tmp_path / name), "checkpoint.pt"))
        assert ckpt["data"]["name"] == name and ckpt["config"]["model"] == model


@pytest.mark.parametrize("opt,extra,cls,group", [
    ("sgd", ["--scheduler", "step", "--weight-decay", "0.01", "--momentum", "0.5"], "SGD",
     {"weight_decay": 0.01, "momentum": 0.5}),
    ("adam", ["--scheduler", "cosine"], "Adam", {"weight_decay": 0.0}),
    ("adamw", ["--weight-decay", "0.1", "--scheduler", "none"], "AdamW", {"weight_decay": 0.1}),
    ("rmsprop", ["--momentum", "0.2"], "RMSprop", {"momentum": 0.2}),  # digits recipe: cosine
])
def test_optimizer_scheduler_and_weight_decay_options(opt, extra, cls, group, tmp_path, capsys,
                                                      monkeypatch):
    import ember.cli._loop as loop

    made = {}
    real = loop.make_optimizer
    monkeypatch.setattr(loop, "make_optimizer",
                        lambda cfg, params: made.setdefault("opt", real(cfg, params)))
    import ember.cli.train as train_cli

    monkeypatch.setattr(train_cli, "make_optimizer", loop.make_optimizer)
    argv = ["train", *FAST[:3], "2", "--optimizer", opt, "--lr", "0.003", *extra,
            "--out", str(tmp_path)]
    assert main(argv) == 0
    optimizer = made["opt"]
    assert type(optimizer).__name__ == cls
    for k, v in group.items():
        assert optimizer.param_groups[0][k] == v, k
    scheduler = extra[extra.index("--scheduler") + 1] if "--scheduler" in extra else "cosine"
    expected = {"step": 0.003 * 0.1 ** 2,  # StepLR(step_size=max(1, 2 // 3), gamma=0.1), 2 steps
                "cosine": 0.0,  # CosineAnnealingLR(T_max=epochs) ends at 0
                "none": 0.003}[scheduler]
    assert optimizer.param_groups[0]["lr"] == pytest.approx(expected, abs=1e-12)
    ckpt = ember.load(os.path.join(only_run(tmp_path), "checkpoint.pt"))
    assert ckpt["config"]["optimizer"] == opt and ckpt["config"]["scheduler"] == scheduler
    assert (ckpt["scheduler"] is None) == (scheduler == "none")


def test_seed_option_repeats_and_changes_the_run(tmp_path, capsys):
    runs = []
    for i, seed in enumerate(["3", "3", "4"]):
        assert main(["train", *FAST[:3], "1", "--seed", seed, "--out", str(tmp_path / str(i))]) == 0
        runs.append(only_run(tmp_path / str(i)))
    _assert_same_weights(runs[0], runs[1])
    with pytest.raises(AssertionError):
        _assert_same_weights(runs[0], runs[2])
