"""How repeatable is a latency table? Measure the same table in separate processes and compare.

For every pair of runs: the median and p95 over entries of |Δ latency| / latency. For every run:
the overhead ratio, wall time of `pxprof measure` ÷ Σ timed inference (the time inside calibrated
samples). Block exports are done once beforehand and are not in the wall time; their time is printed.

    python bench/profile_repeatability.py [--device cpu] [--space proxyless-mobile] [--runs 2]

Aims: median ≤ 1 %, p95 ≤ 3 %, overhead ≤ 1.5×.
"""

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from profiler.build.export import block_file
from profiler.devices.profile import get_device
from profiler.devices.runtimes import get_runtime
from profiler.space.spaces import get_space
from profiler.tables.table import LatencyTable, samples_path


def timed_seconds(table_csv: Path) -> float:
    raw = json.loads(samples_path(table_csv).read_text())
    return sum(t * a["inner"] for b in raw["blocks"].values() for a in b["attempts"]
               for r in a["rounds"] for t in r) / 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--space", default="proxyless-mobile")
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    profile, space = get_device(args.device), get_space(args.space)

    t0 = time.perf_counter()
    for spec in space.blocks():
        block_file(spec, get_runtime(profile.runtime), profile.batch)
    print(f"export (cached after the first time): {time.perf_counter() - t0:.1f} s")

    pxprof = Path(sys.executable).with_name("pxprof")
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            out = Path(tmp) / f"run{i}.csv"
            t0 = time.perf_counter()
            subprocess.run([str(pxprof), "measure", "--device", args.device, "--space", args.space,
                            "-o", str(out)], check=True, stderr=subprocess.DEVNULL)
            wall = time.perf_counter() - t0
            timed = timed_seconds(out)
            table = LatencyTable.load(out)
            tables.append(table)
            print(f"run {i}: {len(table)} entries, wall {wall:.1f} s, timed inference {timed:.1f} s, "
                  f"overhead {wall / timed:.2f}x, median spread (IQR/median) "
                  f"{table.df['spread'].median():.1%}, unstable {int(table.df['unstable'].sum())}")
    for (i, a), (j, b) in itertools.combinations(enumerate(tables), 2):
        la = a.df.set_index("key")["latency_ms"]
        lb = b.df.set_index("key")["latency_ms"].reindex(la.index)
        rel = np.abs(la - lb) / ((la + lb) / 2)
        total = la.sum() / lb.sum() - 1
        print(f"runs {i}-{j}: |Δ|/latency median {rel.median():.2%}, p95 {rel.quantile(0.95):.2%}, "
              f"max {rel.max():.2%}; sum of entries differs by {total:+.2%}")


if __name__ == "__main__":
    main()
