"""``ember.hub``: named pretrained weights, a local cache, and verified downloads (torch.hub's face).

    >>> from ember import hub
    >>> [w.name for w in hub.list_weights()]
    ['cnn.DIGITS_V1', 'mlp.DIGITS_V1']
    >>> net = ember.vision.models.get_model("cnn", weights="DEFAULT")   # shipped: no network
    >>> hub.get_weight("cnn.DIGITS_V1").meta["preprocessing"]
    {'to_tensor': True, 'mean': [0.5], 'std': [0.5], 'size': 8, 'channels': 1}
    >>> sd = hub.load_state_dict_from_url(url, sha256="9f2c...")       # cached under EMBER_HOME

The registry (``ember/weights/registry.json``) lists each entry's model class and builder
config, file (shipped inside the package) or url, sha256, licence, source, the preprocessing
it expects and its measured accuracy. Downloads go to ``$EMBER_HOME/hub/checkpoints``
(``EMBER_HOME`` defaults to ``~/.cache/ember``) through a ``.part`` file that is renamed into
place only once its size and sha256 are right; a file already in the cache is used without a
request.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

__all__ = ["Weights", "download_url_to_file", "get_dir", "get_model_weights", "get_weight",
           "list_weights", "load_state_dict_from_url", "load_weights_file", "lookup",
           "register_weights", "resolve", "set_dir"]

_WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
_REGISTRY: dict[str, Weights] = {}
_hub_dir: list[str] = []


def get_dir() -> str:
    """The hub cache folder: ``set_dir``'s, else ``$EMBER_HOME/hub`` (``~/.cache/ember/hub``)."""
    if _hub_dir:
        return _hub_dir[0]
    home = os.environ.get("EMBER_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ember")
    return os.path.join(os.path.expanduser(home), "hub")


def set_dir(d) -> None:
    """Use ``d`` as the hub cache folder from now on."""
    _hub_dir[:] = [os.path.expanduser(os.fspath(d))]


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _bar(total, progress):
    if not progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # the progress bar is optional: pip install "ember[progress]"
        return None
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr)


def download_url_to_file(url, dst, hash_prefix=None, progress=True, *, sha256=None) -> None:
    """Download ``url`` to ``dst``, verifying its size and (a prefix of) its sha256.

    The bytes go to a ``.part`` file next to ``dst``, renamed onto ``dst`` only when complete
    and verified; a failed download leaves no file behind.
    """
    dst = os.path.expanduser(os.fspath(dst))
    expected = (sha256 or hash_prefix or "").lower() or None
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    fd, part = tempfile.mkstemp(prefix=os.path.basename(dst) + ".", suffix=".part",
                                dir=os.path.dirname(os.path.abspath(dst)))
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            bar, got, h = _bar(total, progress), 0, hashlib.sha256()
            try:
                for chunk in iter(lambda: resp.read(1 << 16), b""):
                    out.write(chunk)
                    h.update(chunk)
                    got += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
        if total is not None and got != total:
            raise RuntimeError(f"download of {url} is truncated: got {got} of {total} bytes")
        digest = h.hexdigest()
        if expected is not None and not digest.startswith(expected):
            raise RuntimeError(f'invalid hash value for {url} (expected "{expected}", got '
                               f'"{digest}")')
        os.replace(part, dst)
    except BaseException:
        if os.path.exists(part):
            os.unlink(part)
        raise


def load_weights_file(path, map_location=None):
    """Read a weights file: ``.npz`` (NumPy only), ``.safetensors``, or what ``ember.load``
    reads (ember checkpoints, torch.save files)."""
    import ember

    path = os.fspath(path)
    if path.endswith(".npz"):
        import numpy as np

        with np.load(path, allow_pickle=False) as z:
            return {k: ember.from_numpy(np.array(z[k])) for k in z.files}
    return ember.load(path, map_location=map_location)


def load_state_dict_from_url(url, model_dir=None, map_location=None, progress=True,
                             check_hash=False, file_name=None, weights_only=True, *,
                             sha256=None):
    """The state_dict at ``url``, downloaded once into ``model_dir`` (default
    ``get_dir()/checkpoints``) and loaded from there afterwards.

    Args:
        check_hash: as torch.hub: the file name must end in ``-<sha256 prefix>.<ext>``
            and the download must match that prefix.
        sha256: the full expected sha256 (ember's stricter check); a cached file is
            checked against it too.

    Example::

        sd = ember.hub.load_state_dict_from_url("https://host/cnn-9f2c1a.npz", check_hash=True)
    """
    model_dir = os.fspath(model_dir) if model_dir is not None else os.path.join(
        get_dir(), "checkpoints")
    os.makedirs(model_dir, exist_ok=True)
    name = file_name or os.path.basename(urllib.parse.urlparse(url).path) or "weights"
    cached = os.path.join(model_dir, name)
    if not os.path.exists(cached):
        prefix = None
        if check_hash:
            m = re.search(r"-([a-f0-9]+)\.", name)
            prefix = m.group(1) if m else None
        if progress:
            print(f'Downloading: "{url}" to {cached}', file=sys.stderr)
        download_url_to_file(url, cached, prefix, progress=progress, sha256=sha256)
    elif sha256 is not None and _sha256(cached) != sha256.lower():
        raise RuntimeError(f"cached file {cached!r} does not match the expected sha256 "
                           f"{sha256}; delete it to download again")
    return load_weights_file(cached, map_location)


@dataclass
class Weights:
    """One entry of the registry: where the weights are, what they are, what they expect."""

    name: str                     # "cnn.DIGITS_V1": builder name and tag
    model_class: str              # the class the state_dict fits ("CNN")
    sha256: str
    file: str | None = None       # shipped: a path inside ember/weights/
    url: str | None = None        # downloadable
    default: bool = False
    config: dict = field(default_factory=dict)   # builder kwargs the weights need
    meta: dict = field(default_factory=dict)     # licence, source, preprocessing, metrics...

    @property
    def builder(self) -> str:
        return self.name.split(".")[0]

    @property
    def tag(self) -> str:
        return self.name.split(".", 1)[1]

    def get_state_dict(self, progress=True, check_hash=True):
        """Load the state_dict: the shipped file, else the cache, else a verified download."""
        if self.file is not None:
            path = os.path.join(_WEIGHTS_DIR, self.file)
            if check_hash and _sha256(path) != self.sha256:
                raise RuntimeError(f"shipped weights {path!r} do not match their registered "
                                   f"sha256 {self.sha256}: the installation is damaged")
            return load_weights_file(path)
        if self.url is None:
            raise RuntimeError(f"weights {self.name!r} have neither a file nor a url")
        return load_state_dict_from_url(self.url, progress=progress,
                                        sha256=self.sha256 if check_hash else None)


def _load_registry():
    if _REGISTRY:
        return
    with open(os.path.join(_WEIGHTS_DIR, "registry.json"), encoding="utf-8") as f:
        for entry in json.load(f)["weights"]:
            register_weights(Weights(**entry))


def register_weights(weights: Weights) -> Weights:
    """Add an entry (e.g. your own weights on a server) to the registry; returns it."""
    if "." not in weights.name:
        raise ValueError(f"weights names are 'builder.TAG', got {weights.name!r}")
    _REGISTRY[weights.name] = weights
    return weights


def list_weights(model: str | None = None) -> list[Weights]:
    """Every registered entry, or those of one builder (``"cnn"``)."""
    _load_registry()
    return [w for n, w in sorted(_REGISTRY.items()) if model is None or w.builder == model]


def get_weight(name: str) -> Weights:
    """The entry called ``name`` (``"cnn.DIGITS_V1"``)."""
    _load_registry()
    if name not in _REGISTRY:
        raise ValueError(f"unknown weights {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def get_model_weights(model) -> list[Weights]:
    """The entries whose state_dict fits ``model`` (an ``nn.Module``, or a builder name)."""
    if isinstance(model, str):
        return list_weights(model)
    cls = type(model).__name__
    return [w for w in list_weights() if w.model_class == cls]


def resolve(model, weights):
    """The entry that ``weights`` (``"DEFAULT"``, a tag, ``"builder.TAG"`` or a ``Weights``)
    names for ``model``; a ``ValueError`` listing the choices if none."""
    if isinstance(weights, Weights):
        return weights
    choices = get_model_weights(model)
    for w in choices:
        if weights in (w.name, w.tag) or (weights == "DEFAULT" and w.default):
            return w
    names = ", ".join(["DEFAULT"] * bool(choices) + [w.tag for w in choices]) or "none"
    raise ValueError(f"no pretrained weights {weights!r} for {type(model).__name__}; available: "
                     f"{names} (or pass the path of a local weights file)")


def lookup(model, weights):
    """The entry ``weights`` names for ``model``, or ``None`` when it is not a registered name
    (a file path, say). ``ember.vision.models`` builders call this for ``weights=``."""
    if isinstance(weights, Weights):
        return weights
    if not isinstance(weights, str) or os.path.exists(weights):
        return None
    choices = get_model_weights(model)
    if weights == "DEFAULT" and choices or any(weights in (w.name, w.tag) for w in choices):
        return resolve(model, weights)
    if choices and os.sep not in weights and weights.isupper():
        return resolve(model, weights)  # a tag that is not there: the error lists the choices
    return None
