"""Issue 2's package requirements: NumPy as the only core dependency, the test extra with the
torch oracle, the ``ember`` console script, CI running the README's test command, and ember never
importing torch."""

import os
import re
import subprocess
import sys

import pytest

import ember
from ember.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pyproject():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]


def test_dependencies_and_extras():
    p = _pyproject()
    assert p["requires-python"] == ">=3.10"
    assert [re.split(r"[<>=]", d)[0] for d in p["dependencies"]] == ["numpy"]
    test = p["optional-dependencies"]["test"]
    assert "torch==2.13.0" in test
    assert {"pytest", "hypothesis"} <= {re.split(r"[<>=]", d)[0] for d in test}
    assert p["scripts"]["ember"] == "ember.cli:main"


def test_console_script_version_and_help(capsys):
    for argv in (["--version"], ["--help"]):
        try:
            main(argv)
        except SystemExit as e:
            assert e.code in (0, None)
    out = capsys.readouterr().out
    assert f"ember {ember.__version__}" in out and "usage: ember" in out


def test_ci_runs_the_readme_test_command():
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci = f.read()
    cmd = 'pip install -q ".[test]" && python -m pytest'
    assert cmd in readme and cmd in ci and "python3 -m venv" in ci and "set -euo pipefail" in ci


def test_importing_ember_never_imports_torch():
    code = ("import sys, ember, ember.nn, ember.optim, ember.utils.data, ember.vision, "
            "ember.vision.transforms, ember.vision.datasets, ember.autograd, ember.io; "
            "import ember.nn.functional as F; x = ember.randn(2, 3, requires_grad=True); "
            "(x @ x.t()).sum().backward(); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=ROOT), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
