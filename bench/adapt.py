"""How well does a predictor adapted from another device predict a new one, for how much profiling?

Two modes.

Tables (offline): --source-table S.csv --target-table T.csv, two full tables of one space (two
runtimes, thread counts, phones, or published lookup tables). A predictor P is fitted to S; for
each budget k, `adapt` chooses k entries of T (`pxprof blocks --informative k --for P`) and adapts
P to them. Every method then prices --archs random architectures of the space, against T's own
block sums (the target as a table describes it):

    (a) P unchanged   (b) a positive-linear model fitted from scratch to the same k entries
    (c) P adapted with k entries   (+ the plain speed ratio of the two devices on those entries)

Devices (end to end): --source-device A --target-device B --space S. Measures A's table and fits P
(not timed: the source is what the user already has); then on B, timed: (d) a full table and its
calibration on --calibrate networks (`pxprof measure` + `fit-predictor --calibrate-on`), and (c)
`pxprof adapt` with each block budget and --networks networks; then --validate fresh networks of B
measured twice (the test–retest floor) against (a) P, (c) each adapted predictor and (d).

    python bench/adapt.py --source-table A.csv --target-table B.csv [--archs 200]
    python bench/adapt.py --source-device cpu --target-device cpu-tflite --space tiny \\
        [--blocks 5 10 20] [--networks 5] [--calibrate 10] [--validate 50] [--out build/bench]

Aim (c with at most 20 blocks and 5 networks): within ±10 % on ≥ 95 % of the target's networks, no
worse than (d) by more than 2 points, and at least 5x less profiling time than (d).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from commands import pxprof

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from predictors import Predictor, fit_table  # noqa: E402
from predictors.adapt import informative  # noqa: E402
from predictors.features import feature_matrix  # noqa: E402
from predictors.model import adapt_table  # noqa: E402
from predictors.regressors import LatencyRegressor  # noqa: E402
from profiler.devices.check import random_architectures  # noqa: E402
from profiler.space.spaces import get_space  # noqa: E402
from profiler.tables.table import LatencyTable  # noqa: E402


def errors(predicted, truth) -> str:
    rel = np.abs(np.asarray(predicted) / np.asarray(truth) - 1)
    return (f"MAPE {rel.mean():6.2%}  ±5 % {np.mean(rel <= 0.05):4.0%}  "
            f"±10 % {np.mean(rel <= 0.10):4.0%}  max {rel.max():6.2%}")


def sums(source, space, archs) -> np.ndarray:
    """Plain block sums (no calibration): what a table says of each network."""
    return np.array([source.block_latencies(space.network(a)).sum() for a in archs])


class Scratch:
    """(b): a positive-linear model fitted to the k entries alone."""

    def __init__(self, specs, y):
        self.reg = LatencyRegressor().fit(feature_matrix(specs), y)

    def block_latencies(self, specs):
        real = np.array([s.profiled for s in specs])
        out = np.zeros(len(specs))
        out[real] = self.reg.predict(feature_matrix([s for s in specs if s.profiled]))
        return out


def tables(args) -> None:
    source, target = LatencyTable.load(args.source_table), LatencyTable.load(args.target_table)
    space = get_space(target.space)
    out = args.out / f"tables-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True)
    prior = fit_table(args.source_table)
    prior.save(out / "source.predictor.json")
    prior = Predictor.load(out / "source.predictor.json")
    archs = random_architectures(space, args.archs, args.seed)
    truth = sums(target, space, archs)
    print(f"== {target.space}: {args.archs} random architectures priced by the target table "
          f"{args.target_table} ({target.fingerprint.get('device')}, "
          f"{target.fingerprint.get('runtime')}), source {args.source_table} "
          f"({source.fingerprint.get('device')}, {source.fingerprint.get('runtime')})")
    print(f"(a) source unchanged      {errors(sums(prior, space, archs), truth)}")
    for k in args.blocks:
        chosen = informative(prior, space, k)
        keys = [s.key for s in chosen]
        few = out / f"few{k}.csv"
        target.df[target.df["key"].isin(keys)].to_csv(few, index=False)
        adapted = adapt_table(prior, few)
        y = np.array([target.block_latencies([s])[0] for s in chosen])
        ratio = adapted.cv["speed_ratio"]
        print(f"k = {k:2d} entries: leave-one-out per block {adapted.cv['mape']:.1%}")
        print(f"  (b) scratch on k         {errors(sums(Scratch(chosen, y), space, archs), truth)}")
        print(f"  speed ratio alone        {errors(ratio * sums(prior, space, archs), truth)}")
        print(f"  (c) adapted              {errors(sums(adapted, space, archs), truth)}")


def devices(args) -> None:
    out = args.out / f"{args.space}-{args.source_device}-to-{args.target_device}-" \
                     f"{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True)
    pxprof("measure", "--device", args.source_device, "--space", args.space, "-o", out / "source.csv")
    pxprof("fit-predictor", "--table", out / "source.csv", "-o", out / "source.json")
    # Each timed way starts from an empty export cache of its own, as on a device new to the user:
    # converting its models for the target's runtime is part of what profiling it costs.
    timed = {}
    t0 = time.perf_counter()
    pxprof("measure", "--device", args.target_device, "--space", args.space, "-o", out / "target.csv",
           cache=out / "cache-d")
    pxprof("fit-predictor", "--table", out / "target.csv", "-o", out / "target.json",
           "--calibrate-on", args.target_device, "--networks", args.calibrate, cache=out / "cache-d")
    timed["(d) full table"] = time.perf_counter() - t0
    for k in args.blocks:
        t0 = time.perf_counter()
        print(pxprof("adapt", "--from", out / "source.json", "--device", args.target_device,
                     "--space", args.space, "--blocks", k, "--networks", args.networks,
                     "-o", out / f"adapted{k}.json", cache=out / f"cache-c{k}").strip())
        timed[f"(c) adapted, {k} blocks"] = time.perf_counter() - t0
    # Validate each against the same fresh networks: one validate run measures them, twice.
    report = pxprof("validate", "--device", args.target_device, "--predictor", out / "target.json",
                    "--networks", args.validate, "-o", out / "report")
    print(report.strip())
    df = pd.read_csv(out / "report" / "report.csv")
    space = get_space(args.space)
    archs = [a.split() for a in df["arch"]]
    floor = df["retest"].mean()
    print(f"== {args.space}: {args.source_device} -> {args.target_device}, {len(df)} fresh "
          f"networks measured twice; test–retest floor {floor:.2%}")
    methods = {"(a) source unchanged": out / "source.json", "(d) full table": out / "target.json"}
    methods |= {f"(c) adapted, {k} blocks": out / f"adapted{k}.json" for k in args.blocks}
    target = Predictor.load(out / "target.json")
    at = target.reference
    for name, path in methods.items():
        pred = Predictor.load(path)
        predicted = [pred.architecture_latency(space, a) for a in archs]
        # The networks were measured at the full table's device speed; each predictor is read at
        # its own (the reference timed with its blocks), as `pxprof validate` would measure them
        # for it.
        mine = pred.reference
        same = mine and at and mine[0] == at[0] and \
            pred.fingerprint.get("runtime") == target.fingerprint.get("runtime")
        speed = mine[1] / at[1] if same else 1.0
        spent = f"  profiling {timed[name]:6.0f} s" if name in timed else ""
        print(f"{name:24s} {errors(predicted, df['measured_ms'] * speed)}  (speed x{speed:.3f})"
              f"{spent}")
    full = timed["(d) full table"]
    for name, seconds in timed.items():
        print(f"{name}: {full / seconds:.1f}x less profiling time than the full table")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source-table", type=Path)
    ap.add_argument("--target-table", type=Path)
    ap.add_argument("--archs", type=int, default=200)
    ap.add_argument("--source-device")
    ap.add_argument("--target-device")
    ap.add_argument("--space", default="tiny")
    ap.add_argument("--blocks", type=int, nargs="+", default=[5, 10, 20])
    ap.add_argument("--networks", type=int, default=5)
    ap.add_argument("--calibrate", type=int, default=10)
    ap.add_argument("--validate", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("build/bench/adapt"))
    args = ap.parse_args()
    if args.source_table and args.target_table:
        tables(args)
    elif args.source_device and args.target_device:
        devices(args)
    else:
        ap.error("give --source-table and --target-table, or --source-device and --target-device")


if __name__ == "__main__":
    main()
