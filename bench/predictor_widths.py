"""Can a predictor price a network at a width no table holds?

A space's own table plus blocks sampled around it (`pxprof measure --sample`), with every block of
the wider variants taken out, so none of the networks validated below has a block the predictor
was fitted on; a predictor fitted and calibrated on the space itself, once with the model chosen
per block kind by cross-validation and once with the positive-linear model alone; then fresh
random networks of the space at each width multiplier measured end to end (`pxprof validate`)
against each predictor and the FLOPs baseline.

    python bench/predictor_widths.py [--device cpu] [--space tiny] [--sample 150]
                                     [--widths 1.3 1.4] [--calibrate 10] [--networks 20]
                                     [--out build/bench]
"""

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from profiler.space.sampling import blocks_around  # noqa: E402
from profiler.space.spaces import get_space  # noqa: E402
from profiler.tables.table import LatencyTable  # noqa: E402

from commands import pxprof  # noqa: E402

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--space", default="tiny")
    ap.add_argument("--sample", type=int, default=None,
                    help="blocks sampled around the space (default: all of them, at most 300)")
    ap.add_argument("--widths", type=float, nargs="+", default=[1.3, 1.4])
    ap.add_argument("--calibrate", type=int, default=10)
    ap.add_argument("--networks", type=int, default=20)
    ap.add_argument("--out", type=Path, default=Path("build/bench/predictor_widths"))
    args = ap.parse_args()
    out = args.out / f"{args.space}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    base = get_space(args.space)
    sample = args.sample or min(300, len(blocks_around(base)))
    wide = {w: replace(base, name=f"{base.name}-w{w:g}", width_mult=base.width_mult * w)
            for w in args.widths}
    for w, space in wide.items():
        (out / f"{space.name}.json").write_text(json.dumps(space.to_dict()))

    pxprof("measure", "--device", args.device, "--space", args.space, "-o", out / "table.csv")
    pxprof("measure", "--device", args.device, "--space", args.space, "--sample", sample,
           "-o", out / "sample.csv")
    held_out = {b.key for space in wide.values() for b in space.blocks()}
    sample = LatencyTable.load(out / "sample.csv")
    kept = sample.df[~sample.df["key"].isin(held_out)]
    LatencyTable(kept, "held-out sample").save(out / "around.csv")
    print(f"== {args.space} on {args.device}: {len(sample)} sampled blocks, "
          f"{len(sample) - len(kept)} of them in the wider networks taken out")

    for label, models in (("chosen per kind", []), ("positive-linear", ["positive-linear"])):
        if models and not json.loads((out / "predictor-chosen-per-kind.json").read_text())["by_kind"]:
            print("(positive-linear was chosen for every kind: nothing more to compare)")
            break
        predictor = out / f"predictor-{label.replace(' ', '-')}.json"
        fitted = pxprof("fit-predictor", "--table", out / "table.csv", "--table", out / "around.csv",
                        "-o", predictor, "--calibrate-on", args.device, "--networks", args.calibrate,
                        "--space", args.space, *[a for m in models for a in ("--model", m)])
        print(f"-- predictor: {label}")
        print(fitted.strip())
        for w, space in wide.items():
            report = pxprof("validate", "--device", args.device, "--predictor", predictor,
                            "--space", out / f"{space.name}.json", "--networks", args.networks,
                            "-o", out / f"report-{label.replace(' ', '-')}-w{w:g}")
            print(f"width {w:g}:")
            print(report.strip())
    print(f"({time.perf_counter() - t0:.0f} s; reports under {out})")


if __name__ == "__main__":
    main()
