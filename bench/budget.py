"""The `budget` loss against three targets spread over a space's achievable latency range: the
derived architecture's latency (and the final E[LAT]) against each target, with the search defaults.

Usage: python bench/budget.py TABLE.csv [--space NAME] [--data digits] [--epochs N] [--seed S]
"""

from __future__ import annotations

import argparse
import time

import torch

from profiler.space.spaces import get_space
from profiler.tables.table import LatencyTable
from search.config import SearchConfig
from search.data import load_data
from search.latency import ExpectedLatency
from search.trainer import Searcher

FRACTIONS = (0.25, 0.5, 0.75)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("table")
    ap.add_argument("--space", default=None, help="default: the table's recorded space")
    ap.add_argument("--data", default="digits")
    ap.add_argument("--epochs", type=int, default=SearchConfig(target_ms=1).epochs)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    table = LatencyTable.load(args.table)
    space = get_space(args.space or table.space)
    latency = ExpectedLatency(space, table)
    data = load_data(args.data, space.resolution, args.seed)
    lo, hi = latency.bounds()
    print(f"{space.name}: achievable {lo:.4g} .. {hi:.4g} ms; {data.describe()}")
    errors = []
    for fraction in FRACTIONS:
        target = lo + fraction * (hi - lo)
        config = SearchConfig(target_ms=target, epochs=args.epochs, seed=args.seed)
        t0 = time.perf_counter()
        searcher = Searcher(space, latency, data, config, progress=False)
        choices = searcher.run()
        derived = latency.latency(choices)
        errors.append((derived - target) / target)
        print(f"target {target:.4g} ms: derived {derived:.4g} ms ({errors[-1]:+.1%}), "
              f"final E[LAT] {searcher.rows[-1]['expected_latency_ms']:.4g} ms, "
              f"val acc {searcher.rows[-1]['val_acc']:.3f}, {time.perf_counter() - t0:.0f} s  "
              f"[{' '.join(choices)}]", flush=True)
    print(f"largest deviation of the derived latency from its target: "
          f"{max(abs(e) for e in errors):.1%}")


if __name__ == "__main__":
    main()
