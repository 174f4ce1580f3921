"""Let NumPy's OpenBLAS threads go to sleep soon after each product: set before NumPy loads it.

OpenBLAS's worker threads spin for 2^28 cycles (~0.1 s) after every multi-threaded product, waiting
for the next. ember also runs its own kernels on two Python threads (``ember.backend.parallel``),
and a spinning BLAS thread takes the second core from them: on the 2-core reference machine,
with the default spin, splitting made LeNet at batch 64 slower (15.3 -> 16.7 ms a step) and
ResNet-20 (525 -> 576 ms); with ``OPENBLAS_THREAD_TIMEOUT=16`` (2^16 cycles, ~25 us) the split
gives 14.1 -> 9.0-10.5 ms and 551 -> 356-387 ms, and BERT-MiniLM encodes in 635 instead of 775 ms.
The price: back-to-back two-thread products wake the sleeping threads (LSTM 128->256 over 32
steps, 23.7 -> 27.4 ms; the char-LSTM 51 -> 55 ms).

OpenBLAS reads the variable once, when NumPy loads it, so this module must run before NumPy is
imported (``import ember`` before ``import numpy``) and only sets the variable if the user has
not. ``BLAS_SLEEPS`` says whether OpenBLAS's threads are known to go to sleep quickly; when they
are not (NumPy came first, as in most scripts), ember does not split its own kernels over
threads, and where MKL or oneDNN is loaded it keeps its own products off OpenBLAS's threads
(``ember.backend.blas._openblas_spins``): a spinning thread had made mlp128's step 1.7x slower.
"""

import os
import sys

TIMEOUT = 16  # log2 of the spin, in cycles (OpenBLAS clamps to 4..30)


def _apply():
    value = os.environ.get("OPENBLAS_THREAD_TIMEOUT")
    if value is None:
        if "numpy" in sys.modules:  # OpenBLAS already read its settings
            return False
        os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(TIMEOUT)
        return True
    try:
        return int(value) <= 20
    except ValueError:
        return False


BLAS_SLEEPS = _apply()
