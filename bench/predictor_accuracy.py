"""How close are predicted latencies to whole networks measured end to end?

For each space: a fresh table on this machine (`pxprof measure`), a predictor fitted to it and
calibrated on --calibrate random networks (`pxprof fit-predictor --calibrate-on`), then --networks
fresh random networks measured end to end, twice, against the plain table sum, the calibrated
predictor and a FLOPs-proportional baseline (`pxprof validate`). Prints the test–retest floor of the
two measurements, each method's RMSE, MAPE and ±5 % / ±10 % accuracy, and the calibrated
predictor's MAPE over the floor's; keeps the reports (report.csv, scatter.png) under --out.

    python bench/predictor_accuracy.py [--device cpu] [--spaces tiny proxyless-mobile]
                                       [--calibrate 10] [--networks 50] [--out build/bench]

Aim for the calibrated predictor: ±10 % accuracy ≥ 95 %, ±5 % ≥ 80 %, MAPE ≤ 1.5× the floor's
mean test–retest error, and better than both the table sum and the FLOPs baseline.
"""

import argparse
import time
from pathlib import Path

import pandas as pd

from commands import pxprof

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--spaces", nargs="+", default=["tiny", "proxyless-mobile"])
    ap.add_argument("--calibrate", type=int, default=10)
    ap.add_argument("--networks", type=int, default=50)
    ap.add_argument("--out", type=Path, default=Path("build/bench/predictor_accuracy"))
    args = ap.parse_args()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for space in args.spaces:
        out = args.out / f"{space}-{stamp}"
        out.mkdir(parents=True)
        t0 = time.perf_counter()
        pxprof("measure", "--device", args.device, "--space", space, "-o", out / "table.csv")
        fitted = pxprof("fit-predictor", "--table", out / "table.csv", "-o", out / "predictor.json",
                        "--calibrate-on", args.device, "--networks", args.calibrate)
        report = pxprof("validate", "--device", args.device, "--table", out / "table.csv",
                        "--predictor", out / "predictor.json", "--networks", args.networks,
                        "-o", out / "report")
        print(f"== {space} on {args.device} ({time.perf_counter() - t0:.0f} s)")
        print(fitted.strip())
        print(report.strip())
        df = pd.read_csv(out / "report" / "report.csv")
        floor = df["retest"].mean()
        for method in ("table_ms", "predictor_ms", "calibrated_table_ms", "flops_ms"):
            if method not in df:  # the table calibrated: shown only beside another table's
                continue
            mape = (df[method] / df["measured_ms"] - 1).abs().mean()
            print(f"{method[:-3]}: MAPE {mape:.2%} = {mape / floor:.2f}x the floor ({floor:.2%})")


if __name__ == "__main__":
    main()
