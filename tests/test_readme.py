"""The README's Python examples run as written, each in a process of its own (forked from an
interpreter that has imported torch: tests/forked.py)."""

import json
import os
import re
from pathlib import Path

import pytest

from forked import run_forked

ROOT = Path(__file__).resolve().parents[1]


def test_plugin_example_runs():
    text = (ROOT / "README.md").read_text()
    (code,) = [c for c in re.findall(r"```python\n(.*?)```", text, re.S) if "MixedOp" in c]
    proc = run_forked("python", "-c", code, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ms")


@pytest.mark.slow
def test_library_example_runs(tmp_path):
    text = (ROOT / "README.md").read_text()
    (code,) = [c for c in re.findall(r"```python\n(.*?)```", text, re.S) if "run_search(" in c]
    (tmp_path / "data").symlink_to(ROOT / "data")
    proc = run_forked("python", "-c", code, cwd=tmp_path, timeout=600,
                      env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    arch = json.loads((tmp_path / "search-out" / "arch.json").read_text())
    assert proc.stdout.startswith(str(arch["choices"]))
