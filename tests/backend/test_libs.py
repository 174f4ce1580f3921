"""ember.backend._libs.address: the address that MKL's and oneDNN's calls get for an array."""

import numpy as np
import pytest

from ember.backend._libs import address


def _arrays():
    base = np.arange(4 * 6 * 5, dtype=np.float32).reshape(4, 6, 5)
    ro = base.copy()
    ro.flags.writeable = False
    return {
        "C-contiguous": base,
        "rows from the second": base[1:],
        "one row": base[2, 3],
        "transposed matrix": base[1].T,
        "permuted": base.transpose(2, 0, 1),
        "every second column": base[:, :, ::2],
        "reversed": base[::-1],
        "read-only": ro,
        "broadcast": np.broadcast_to(base[0, 0], (3, 5)),
        "empty": base[:, :0],
        "0-d": base[1, 2, 3, ...],
        "float64 F-order": np.asfortranarray(base[0].astype(np.float64)),
    }


@pytest.mark.parametrize("name", list(_arrays()))
def test_address_is_the_first_element(name):
    a = _arrays()[name]
    assert address(a) == a.ctypes.data
    if a.size:
        first = np.ctypeslib.as_array((np.ctypeslib.ctypes.c_char * a.itemsize).from_address(
            address(a)))
        assert bytes(first) == a.reshape(-1)[:1].tobytes()  # what lies there is a's first element
