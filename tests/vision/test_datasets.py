"""Datasets read from files in the official formats, written by the tests (no network)."""

import gzip
import hashlib
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

import ember
from ember.vision import datasets, transforms
from ember.vision.datasets._safe_pickle import load_batch
from ember.vision.datasets.mnist import read_sn3_pascalvincent_tensor
from tests.vision._fixtures import (
    CIFAR10_LABELS,
    cifar_subclass,
    make_cifar10_files,
    md5,
    py2_pickle,
    write_idx,
)

Image = pytest.importorskip("PIL.Image")
DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "mnist")


@pytest.fixture
def cifar_root(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    expected = make_cifar10_files(str(folder))
    return tmp_path, cifar_subclass(datasets.CIFAR10, str(folder)), expected


# ------------------------------------------------------------------------------------ CIFAR
def test_cifar10_class_attributes_are_the_official_ones():
    c = datasets.CIFAR10
    assert c.url == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert c.filename == "cifar-10-python.tar.gz" and c.base_folder == "cifar-10-batches-py"
    assert c.tgz_md5 == "c58f30108f718f92721af3b95e74349a"
    assert c.train_list[0] == ["data_batch_1", "c99cafc152244af753f735de768cd75f"]
    assert c.test_list == [["test_batch", "40351d587109b95175f43aff81a1287e"]]
    assert c.meta == {
        "filename": "batches.meta",
        "key": "label_names",
        "md5": "5ff9c542aee3614f3951f8cda6e48888",
    }
    assert datasets.CIFAR100.meta["key"] == "fine_label_names"
    assert datasets.CIFAR100.train_list == [["train", "16019d7e3df5f24257cddd939b257f8d"]]


def test_cifar10_parses_python2_batches(cifar_root):
    root, C, (tx, ty, sx, sy) = cifar_root
    train, test = C(str(root), train=True), C(str(root), train=False)
    assert train.data.dtype == np.uint8 and train.data.shape == (20, 32, 32, 3)
    np.testing.assert_array_equal(train.data, tx)
    np.testing.assert_array_equal(test.data, sx)
    assert train.targets == ty and test.targets == sy and all(type(t) is int for t in ty)
    assert train.classes == CIFAR10_LABELS and train.class_to_idx["truck"] == 9
    assert len(train) == 20 and len(test) == 10
    img, label = train[3]
    assert img.mode == "RGB" and img.size == (32, 32) and label == ty[3]
    np.testing.assert_array_equal(np.asarray(img), tx[3])
    assert "Split: Train" in repr(train) and "Split: Test" in repr(test)


def test_cifar10_tutorial_pipeline(cifar_root):
    root, C, (tx, ty, _, _) = cifar_root
    tf = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]
    )
    ds = C(str(root), train=True, download=False, transform=tf, target_transform=lambda t: t + 100)
    x, y = ds[0]
    assert isinstance(x, ember.Tensor) and x.shape == (3, 32, 32) and x.dtype == ember.float32
    ref = (
        tx[0].transpose(2, 0, 1).astype(np.float32) / np.float32(255) - np.float32(0.5)
    ) / np.float32(0.5)
    np.testing.assert_array_equal(x.numpy(), ref)
    assert y == ty[0] + 100
    assert "Transform: Compose(" in repr(ds)


def test_cifar10_missing_or_corrupted_files_raise(cifar_root):
    root, C, _ = cifar_root
    with pytest.raises(
        RuntimeError, match="Dataset not found or corrupted. You can use download=True"
    ):
        C(str(root / "elsewhere"))
    with open(root / "cifar-10-batches-py" / "data_batch_3", "ab") as f:
        f.write(b"x")
    with pytest.raises(RuntimeError, match="Dataset not found or corrupted"):
        C(str(root))


def test_cifar100_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name, n in (("train", 6), ("test", 4)):
        entry = {
            "filenames": ["a"] * n,
            "batch_label": name,
            "fine_labels": list(range(n)),
            "coarse_labels": [0] * n,
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        }
        (folder / name).write_bytes(py2_pickle(entry))
    names = [f"class{i}" for i in range(100)]
    (folder / "meta").write_bytes(
        py2_pickle({"fine_label_names": names, "coarse_label_names": ["c"] * 20})
    )
    C = cifar_subclass(datasets.CIFAR100, str(folder))
    ds = C(str(tmp_path), train=True)
    assert len(ds) == 6 and ds.targets == list(range(6)) and ds.classes == names
    assert len(C(str(tmp_path), train=False)) == 4


def test_planted_batch_file_cannot_run_code(tmp_path):
    canary = tmp_path / "canary"
    evil = b"cos\nsystem\n(S'touch " + str(canary).encode() + b"'\ntR."
    path = tmp_path / "data_batch_1"
    path.write_bytes(evil)
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load global 'os\.system'"):
        load_batch(str(path))
    assert not canary.exists()
    reduce_evil = b"\x80\x02cbuiltins\neval\nX\x0b\x00\x00\x00print('hi')\x85R."
    path.write_bytes(reduce_evil)
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        load_batch(str(path))


def test_planted_batch_inside_a_dataset_is_refused(cifar_root):
    root, _, _ = cifar_root
    canary = root / "canary"
    bad = root / "cifar-10-batches-py" / "data_batch_2"
    bad.write_bytes(b"cposix\nsystem\n(S'touch " + str(canary).encode() + b"'\ntR.")
    Evil = cifar_subclass(datasets.CIFAR10, str(root / "cifar-10-batches-py"))  # md5s "match"
    with pytest.raises(pickle.UnpicklingError, match="posix.system"):
        Evil(str(root))
    assert not canary.exists()


def test_batch_that_is_not_a_dict_is_refused(tmp_path):
    p = tmp_path / "b"
    p.write_bytes(py2_pickle([1, 2, 3]))
    with pytest.raises(RuntimeError, match="holds a list, expected a dict"):
        load_batch(str(p))


# ------------------------------------------------------------------------------------ MNIST
def _mnist_raw(root, cls="MNIST", n=12, gz=True, seed=0):
    raw = root / cls / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    ext = ".gz" if gz else ""
    for prefix in ("train", "t10k"):
        write_idx(raw / f"{prefix}-images-idx3-ubyte{ext}", imgs)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte{ext}", labels)
    return imgs, labels


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reads_idx_files(tmp_path, gz):
    imgs, labels = _mnist_raw(tmp_path, gz=gz)
    ds = datasets.MNIST(str(tmp_path), train=True)
    assert ds.data.dtype == ember.uint8 and tuple(ds.data.shape) == (12, 28, 28)
    assert ds.targets.dtype == ember.int64
    np.testing.assert_array_equal(ds.data.numpy(), imgs)
    np.testing.assert_array_equal(ds.targets.numpy(), labels)
    img, y = ds[5]
    assert img.mode == "L" and y == int(labels[5]) and type(y) is int
    np.testing.assert_array_equal(np.asarray(img), imgs[5])
    x, _ = datasets.MNIST(str(tmp_path), train=False, transform=transforms.ToTensor())[5]
    np.testing.assert_allclose(x.numpy()[0], imgs[5] / np.float32(255), rtol=0, atol=0)
    assert ds.raw_folder == os.path.join(str(tmp_path), "MNIST", "raw")
    assert ds.class_to_idx["3 - three"] == 3


def test_fashion_and_kmnist_use_their_own_folder_and_classes(tmp_path):
    _mnist_raw(tmp_path, "FashionMNIST")
    _mnist_raw(tmp_path, "KMNIST")
    assert datasets.FashionMNIST(str(tmp_path)).classes[9] == "Ankle boot"
    assert datasets.KMNIST(str(tmp_path)).classes == [
        "o",
        "ki",
        "su",
        "tsu",
        "na",
        "ha",
        "ma",
        "ya",
        "re",
        "wo",
    ]
    assert datasets.FashionMNIST.resources[2] == (
        "t10k-images-idx3-ubyte.gz",
        "bef4ecab320f06d8554ea6380940ec79",
    )
    with pytest.raises(RuntimeError, match="Dataset not found in .*MNIST.*download=True"):
        datasets.MNIST(str(tmp_path))


def test_idx_errors_are_clear(tmp_path):
    p = tmp_path / "bad"
    p.write_bytes(b"\x12\x34\x08\x03")
    with pytest.raises(RuntimeError, match="is not an IDX file"):
        read_sn3_pascalvincent_tensor(str(p))
    write_idx(p, np.zeros((4, 28, 28), np.uint8))
    p.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(RuntimeError, match=r"declares shape \(4, 28, 28\).*truncated"):
        read_sn3_pascalvincent_tensor(str(p))
    g = tmp_path / "bad.gz"
    g.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x05" + bytes(5))[:-6])
    with pytest.raises(RuntimeError, match="is corrupted"):
        read_sn3_pascalvincent_tensor(str(g))
    p.write_bytes(b"\x00\x00\x07\x01")
    with pytest.raises(RuntimeError, match="type code 0x07"):
        read_sn3_pascalvincent_tensor(str(p))


def test_real_mnist_test_files(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, official in datasets.MNIST.resources[2:]:
        src = os.path.join(DATA, name)
        assert md5(src) == official  # the copy in tests/data is byte-identical to the official
        shutil.copy(src, raw / name)
    ds = datasets.MNIST(str(tmp_path), train=False)
    assert len(ds) == 10000 and tuple(ds.data.shape) == (10000, 28, 28)
    counts = np.bincount(ds.targets.numpy(), minlength=10)
    assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert ds[0][1] == 7 and ds.data.numpy().max() == 255


# ------------------------------------------------------------------------------ ImageFolder
def _png_tree(root, spec, size=(6, 5)):
    rng = np.random.default_rng(0)
    for cls, names in spec.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for n in names:
            arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            if n.endswith((".png", ".PNG")):
                Image.fromarray(arr).save(root / cls / n)
            else:
                (root / cls / n).write_text("not an image")


def test_image_folder(tmp_path):
    _png_tree(
        tmp_path, {"dog": ["b.png", "a.PNG", "notes.txt"], "cat": ["z.png"], "bird": ["x.png"]}
    )
    (tmp_path / "dog" / "sub").mkdir()
    Image.new("RGB", (6, 5)).save(tmp_path / "dog" / "sub" / "c.png")
    ds = datasets.ImageFolder(str(tmp_path), transform=transforms.ToTensor())
    assert ds.classes == ["bird", "cat", "dog"]
    assert ds.class_to_idx == {"bird": 0, "cat": 1, "dog": 2}
    assert [os.path.relpath(p, tmp_path) for p, _ in ds.samples] == [
        "bird/x.png",
        "cat/z.png",
        "dog/a.PNG",
        "dog/b.png",
        "dog/sub/c.png",
    ]
    assert ds.targets == [0, 1, 2, 2, 2] and ds.imgs is ds.samples and len(ds) == 5
    x, y = ds[0]
    assert x.shape == (3, 5, 6) and y == 0


def test_dataset_folder_custom_loader_and_errors(tmp_path):
    _png_tree(tmp_path, {"a": ["1.txt", "2.txt"], "b": ["3.txt"]})
    ds = datasets.DatasetFolder(
        str(tmp_path), loader=lambda p: Path(p).read_text(), extensions=(".txt",)
    )
    assert len(ds) == 3 and ds[2] == ("not an image", 1)
    with pytest.raises(
        FileNotFoundError,
        match=r"Found no valid file for the classes a, b\. "
        r"Supported extensions are: \.jpg, \.jpeg",
    ):
        datasets.ImageFolder(str(tmp_path))
    ok = datasets.ImageFolder(str(tmp_path), allow_empty=True)
    assert len(ok) == 0 and ok.classes == ["a", "b"]
    only_b = datasets.ImageFolder(
        str(tmp_path), is_valid_file=lambda p: p.endswith("3.txt"), allow_empty=True
    )
    assert only_b.targets == [1]
    with pytest.raises(ValueError, match="Both extensions and is_valid_file cannot be None"):
        datasets.DatasetFolder(str(tmp_path), loader=open)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="Couldn't find any class folder in"):
        datasets.ImageFolder(str(empty))


# ----------------------------------------------------------------------------------- Digits
def test_digits_bundled_split_and_items():
    train, test = datasets.Digits(train=True), datasets.Digits(train=False)
    assert len(train) == 1437 and len(test) == 360
    assert train.classes == [str(i) for i in range(10)]
    assert train.data.dtype == ember.uint8 and tuple(train.data.shape) == (1437, 8, 8)
    assert train.targets.dtype == ember.int64
    assert np.bincount(test.targets.numpy()).tolist() == [36, 36, 35, 37, 36, 37, 36, 36, 35, 36]
    assert train.data.numpy().max() == 255 and train.data.numpy().min() == 0
    img, y = train[0]
    assert img.mode == "L" and img.size == (8, 8) and type(y) is int
    x, _ = datasets.Digits(transform=transforms.ToTensor())[0]
    assert x.shape == (1, 8, 8) and float(x.max()) <= 1.0


def test_digits_file_matches_source_and_readme():
    from ember.vision.datasets import digits

    with open(digits._FILE, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    readme = Path(digits._FILE).with_name("README.md").read_text()
    assert sha in readme and "CC BY 4.0" in readme and "Alpaydin" in readme
    with np.load(digits._FILE) as z:
        assert z["images"].shape == (1797, 8, 8) and z["images"].max() == 16
        assert sorted(np.concatenate([z["train_idx"], z["test_idx"]]).tolist()) == list(range(1797))
    sk = pytest.importorskip("sklearn.datasets")
    d = sk.load_digits()
    with np.load(digits._FILE) as z:
        np.testing.assert_array_equal(z["images"], d.images.astype(np.uint8))
        np.testing.assert_array_equal(z["labels"], d.target)


def test_seed_program_data_pipeline_with_two_workers(cifar_root):
    """The tutorial's loader verbatim: CIFAR10 + Compose([ToTensor(), Normalize]) +
    DataLoader(batch_size=4, shuffle=True, num_workers=2); batches are the samples of a seeded
    permutation, the same as with no workers."""
    root, C, (tx, ty, _, _) = cifar_root
    import ember as torch
    import ember.vision.transforms as transforms

    transform = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    trainset = C(root=str(root), train=True, download=True, transform=transform)
    trainloader = torch.utils.data.DataLoader(trainset, batch_size=4, shuffle=True, num_workers=2)
    torch.manual_seed(0)
    batches = [(x.numpy().copy(), y.tolist()) for x, y in trainloader]
    torch.manual_seed(0)
    single = [(x.numpy(), y.tolist()) for x, y in
              torch.utils.data.DataLoader(trainset, batch_size=4, shuffle=True)]
    assert len(trainloader) == len(batches) == 5
    assert all(x.shape == (4, 3, 32, 32) and x.dtype == np.float32 for x, _ in batches)
    assert [y for _, y in batches] == [y for _, y in single]
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(batches, single))
    # each image is the normalized HWC sample whose label it carries
    norm = (tx.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255) - np.float32(0.5)) \
        / np.float32(0.5)
    for x, y in batches:
        for img, label in zip(x, y):
            k = next(i for i in range(len(norm)) if np.array_equal(norm[i], img))
            assert ty[k] == label
    assert sorted(sum((y for _, y in batches), [])) == sorted(ty)


def test_image_folder_malformed_inputs_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        datasets.ImageFolder(str(tmp_path / "missing"))
    (tmp_path / "plain_file").write_text("x")
    with pytest.raises(NotADirectoryError, match="plain_file"):
        datasets.ImageFolder(str(tmp_path / "plain_file"))
    (tmp_path / "root" / "cls").mkdir(parents=True)
    (tmp_path / "root" / "cls" / "broken.png").write_bytes(b"not a png at all")
    ds = datasets.ImageFolder(str(tmp_path / "root"))
    with pytest.raises(OSError, match="broken.png"):  # PIL.UnidentifiedImageError
        ds[0]


class _Reduce:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_restricted_unpickler_refuses_every_other_global(tmp_path, protocol):
    import builtins
    import subprocess

    canary = tmp_path / "canary"
    gadgets = [
        (os.system, (f"touch {canary}",)),
        (subprocess.Popen, (["touch", str(canary)],)),
        (builtins.exec, (f"open({str(canary)!r}, 'w')",)),
        (builtins.getattr, ("", "join")),
        (pickle.loads, (b"\x80\x02cos\nsystem\n.",)),
        (np.load, (str(canary),)),
        (shutil.rmtree, (str(tmp_path / "nothing"),)),
    ]
    for fn, args in gadgets:
        path = tmp_path / "data_batch_1"
        path.write_bytes(pickle.dumps({"data": _Reduce(fn, args), "labels": [1]}, protocol=protocol))
        with pytest.raises(pickle.UnpicklingError, match="refusing to load global"):
            load_batch(str(path))
        assert not canary.exists()
    ok = {"data": np.arange(6, dtype=np.uint8).reshape(2, 3), "labels": [1, 2]}
    (tmp_path / "good").write_bytes(py2_pickle(ok))  # what the official files hold still loads
    got = load_batch(str(tmp_path / "good"))
    np.testing.assert_array_equal(got["data"], ok["data"])
    assert got["labels"] == [1, 2]
