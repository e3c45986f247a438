"""Where does a calibrated predictor's whole-network error come from? Each hypothesis, measured.

For each way of timing (without and with the device profile's reference block): a fresh table
of SPACE, then N random networks of it measured, in one run, as
  alone 1, alone 2   each network alone, two passes one after the other (the test–retest floor)
  beside blocks      in the same rounds as their blocks (how calibration measured them before)
  blocks again       the blocks alone again (the device's drift since the table)
  long samples       alone, with samples 5× longer (the warm-up and sample length)
and a calibration (predictors/calibration.py) fitted on the first half of the networks, judged on
the second half against `alone 2`, fitted
  old way            networks beside their blocks, on those blocks' sums; applied to the table's
  new way            networks alone, on the table's sums
Every figure is printed beside the test–retest floor of the same run.

    python bench/calibration_bias.py [--device cpu] [--space tiny] [--networks 20]
"""

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from predictors.calibration import fit_calibration, predict
from predictors.validate import retest
from profiler.build.blocks import build_network
from profiler.build.export import export
from profiler.devices.check import random_architectures
from profiler.devices.measure import block_model, measure, measure_models
from profiler.devices.profile import get_device
from profiler.devices.runtimes import get_runtime
from profiler.devices.schedule import Model
from profiler.space.spaces import get_space


def errors(predicted, measured) -> str:
    rel = predicted / measured - 1
    return (f"MAPE {np.mean(np.abs(rel)):5.1%}, bias {np.mean(rel):+6.1%}, "
            f"±5 % {np.mean(np.abs(rel) <= .05):4.0%}, ±10 % {np.mean(np.abs(rel) <= .1):4.0%}")


def ratio(a, b) -> str:
    r = np.asarray(a) / np.asarray(b)
    return f"mean {r.mean():.3f} (median {np.median(r):.3f}, range {r.min():.3f} .. {r.max():.3f})"


def run(profile, space, n: int, tmp: Path):
    runtime = get_runtime(profile.runtime)
    t0 = time.perf_counter()
    table = measure(profile, space, tmp / f"{profile.name}.csv", force=True)
    archs = random_architectures(space, n, seed=123)
    shape = space.input_shape(profile.batch)
    nets = {}
    for i, choices in enumerate(archs):
        torch.manual_seed(i)
        nets[f"net{i}"] = Model(export(build_network(space, choices), shape, runtime.format,
                                       tmp / f"{profile.name}-net{i}{runtime.suffix}"), shape)
    specs = [[s for s in space.network(a) if s.profiled] for a in archs]
    unique = {s.key: s for net in specs for s in net}
    blocks = {key: block_model(s, runtime, profile.batch) for key, s in unique.items()}
    at = table.reference

    def timed(models, p=profile):
        return measure_models(p, models, progress=False).at(at)
    alone1, beside, alone2 = timed(nets), timed(nets | blocks), timed(nets)
    again = timed(blocks)
    long = timed(nets, replace(profile, min_sample_ms=5 * profile.min_sample_ms))
    names = list(nets)
    a1, a2, b, lg = (np.array([m[k] for k in names]) for m in (alone1, alone2, beside, long))
    floor = retest(a1, a2)
    count = np.array([len(net) for net in specs])
    sum_table = np.array([sum(table.latency(s) for s in net) for net in specs])
    sum_beside = np.array([sum(beside[s.key] for s in net) for net in specs])
    print(f"== {space.name} on {profile.name}, reference {profile.reference or 'none'}: "
          f"{n} networks ({time.perf_counter() - t0:.0f} s)")
    print(f"  floor, alone 1 vs alone 2:   MAPE {floor['mape']:5.1%}, median "
          f"{floor['median_ape']:.1%}, p95 {floor['p95_ape']:.1%}, ±5 % {floor['within_5']:.0%}, "
          f"±10 % {floor['within_10']:.0%}")
    print(f"  context, beside / alone:     {ratio(b, (a1 + a2) / 2)}")
    print(f"  drift, blocks again / table: "
          f"{ratio([again[k] for k in blocks], [table.latency(s) for s in unique.values()])}")
    print(f"  long samples / alone 2:      {ratio(lg, a2)}; retest vs alone 2 "
          f"{retest(lg, a2)['mape']:.1%}")
    print(f"  network / table sum:         {ratio(a2, sum_table)}")
    half = n // 2
    fit, test = slice(0, half), slice(half, n)
    for name, sums, measured in (("old way", sum_beside, b), ("new way", sum_table, a1)):
        form, cal, cv, _ = fit_calibration(sums[fit], count[fit], measured[fit])
        predicted = predict(cal, sum_table[test], count[test])
        print(f"  calibration, {name}: {form} (scale {cal.scale:.3f}, per-call "
              f"{cal.per_call_ms * 1e3:.2f} us, leave-one-out {cv[form]:.1%}) -> on fresh "
              f"networks {errors(predicted, a2[test])}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--space", default="tiny")
    ap.add_argument("--networks", type=int, default=20)
    args = ap.parse_args()
    profile, space = get_device(args.device), get_space(args.space)
    with tempfile.TemporaryDirectory() as tmp:
        for p in (replace(profile, reference=""), profile):
            if p is profile and not profile.reference:
                break
            run(p, space, args.networks, Path(tmp))


if __name__ == "__main__":
    main()
