"""Start-up time of the commands that need no model: `--help` of both tools, and pxprof's spaces,
blocks, show, merge, import-lut and predict from a table.

Each command runs as a user runs it (the venv's `pxprof`/`pxsearch` in a fresh process), 5 times
after one untimed run (the file cache warm); the table gives the median and the range of the wall
times. `--root DIR` times another checkout of pxnas (its packages come first on PYTHONPATH), e.g.
the last commit in a `git worktree`, to compare before and after a change.

    .venv/bin/python bench/startup.py [--root DIR] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
TABLE = Path(__file__).resolve().parent.parent / "data" / "latency_tables" / "cpu-tiny.csv"


def inputs(tmp: Path) -> None:
    """A lookup table (YAML) and an architecture file made from the shipped tiny table."""
    import csv

    with open(TABLE, newline="") as f:
        rows = list(csv.DictReader(f))
    with open(tmp / "lut.yaml", "w") as f:
        for row in rows:
            f.write(f"{row['key']}:\n  count: 10\n  mean: {row['latency_ms']}\n  var: 0.0\n")
    (tmp / "arch.json").write_text(json.dumps({"space": "tiny", "choices": arch_choices()}))


def arch_choices() -> list[str]:
    out = subprocess.run([str(BIN / "pxprof"), "spaces", "--json"], capture_output=True, text=True,
                         check=True, env=ENV).stdout
    return [ops[0] for ops in json.loads(out)["tiny"]["layers"]]


def commands(tmp: Path) -> list[list[str]]:
    return [
        ["pxprof", "--help"],
        ["pxsearch", "--help"],
        ["pxprof", "spaces"],
        ["pxprof", "blocks", "--space", "tiny"],
        ["pxprof", "show", str(TABLE)],
        ["pxprof", "merge", str(TABLE), str(TABLE), "-o", str(tmp / "merged.csv"), "--force"],
        ["pxprof", "import-lut", str(tmp / "lut.yaml"), "-o", str(tmp / "lut.csv"), "--force"],
        ["pxprof", "predict", "--table", str(TABLE), "--arch", str(tmp / "arch.json")],
    ]


def wall(argv: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run([str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True, env=ENV)
    elapsed = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"{' '.join(argv)} failed: {proc.stderr.strip()[-500:]}")
    return elapsed


def main() -> None:
    global ENV
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="checkout of pxnas to time")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if args.root:
        ENV = {**os.environ, "PYTHONPATH": str(args.root.resolve())}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        inputs(tmp)
        print(f"{'command':44} {'median s':>9} {'min s':>7} {'max s':>7}")
        for argv in commands(tmp):
            wall(argv)  # untimed: the file cache warm
            times = [wall(argv) for _ in range(args.runs)]
            label = " ".join(a if not a.startswith("/") else Path(a).name for a in argv)
            label = label.replace(" --force", "")
            print(f"{label[:44]:44} {statistics.median(times):9.2f} {min(times):7.2f} "
                  f"{max(times):7.2f}", flush=True)


ENV = dict(os.environ)

if __name__ == "__main__":
    main()
