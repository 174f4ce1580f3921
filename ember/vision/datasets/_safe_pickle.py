"""A restricted unpickler for the CIFAR batch files (pickles written by Python 2 and NumPy).

    >>> entry = load_batch("cifar-10-batches-py/data_batch_1")  # {'data': ndarray, 'labels': [...]}

The official files hold only dicts, lists, strings, bytes, ints and NumPy arrays. Loading them with
plain ``pickle`` would run whatever a planted file asks for; here ``find_class`` allows exactly the
globals that NumPy array reconstruction needs and refuses any other with an error naming it.
"""

from __future__ import annotations

import pickle

import numpy as np

__all__ = ["load_batch", "RestrictedUnpickler"]

# The array reconstruction function under its NumPy 1 name and its NumPy 2 name.
_reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only NumPy's array-reconstruction globals."""

    def __init__(self, file, *, path="<stream>", **kwargs):
        super().__init__(file, **kwargs)
        self._path = path

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global '{module}.{name}' from {self._path}: a dataset batch "
                "file may only contain dicts, lists, strings, numbers and NumPy arrays "
                "(is the file tampered with?)"
            ) from None


def _str_keys(obj):
    if isinstance(obj, dict):
        return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}
    return obj


def load_batch(path):
    """Load one CIFAR pickle (``encoding='latin1'``, as Python 2 wrote them); keys become str."""
    with open(path, "rb") as f:
        obj = RestrictedUnpickler(f, path=path, encoding="latin1").load()
    if not isinstance(obj, dict):
        raise RuntimeError(
            f"{path} holds a {type(obj).__name__}, expected a dict of arrays and "
            "lists as in the CIFAR batch files"
        )
    return _str_keys(obj)
