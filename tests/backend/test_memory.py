"""backend.memory.tune_malloc: applied once on import (glibc), idempotent, opt-out by env."""

import os
import subprocess
import sys

from ember.backend import memory


def test_tune_malloc_is_idempotent():
    first = memory.tune_malloc()
    assert isinstance(first, bool)
    assert memory.tune_malloc() is first
    if os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else False:
        assert first  # glibc: the settings are in effect after `import ember`


def test_env_opt_out():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run(
        [sys.executable, "-c",
         "import ember; from ember.backend import memory; print(memory._done)"],
        capture_output=True, text=True, cwd=root, check=True,
        env=dict(os.environ, EMBER_MALLOC_TUNE="0", PYTHONPATH=root))
    assert out.stdout.strip() == "False"
