"""Predictions against whole networks measured end to end: the report a user trusts a predictor by.

Fresh random networks of the space (none of those a calibration was fitted on) are measured on the
device and set beside each method: the table's plain block sum, the predictor (calibrated when it
is), the table's blocks through the predictor's calibration (what pxsearch prices given both;
shown when the table is not the one the predictor was fitted on, which it prices as measured), and
a FLOPs-proportional baseline (latency = k * MACs, with k from the calibration networks,
or else from the predictor's own block sums).

Every network is measured twice, in two passes one after the other, and the ground truth is the
mean of the two. How far the two passes disagree (the test–retest error) is the device's own
noise: a method whose error is within it is as good as the device allows, and no method can be
judged more finely than that. Networks are measured at the device speed of the predictor's table
when both timed the same reference block (profiler/tables/samples.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from profiler.files import atomic_path, write_text
from profiler.space.spaces import SearchSpace
from profiler.tables.latency import Filled

from .features import FEATURES, feature_matrix

MACS = [i for i, f in enumerate(FEATURES) if f.startswith("mmacs")]


def mmacs(space: SearchSpace, choices: list[str]) -> float:
    return float(feature_matrix(space.network(choices))[:, MACS].sum())


def fresh_architectures(space: SearchSpace, n: int, seed: int, exclude: list[list[str]]):
    """n random architectures, none of them in `exclude`."""
    from profiler.devices.check import random_architectures

    seen = {tuple(a) for a in exclude}
    found = []
    for attempt in range(100):
        for arch in random_architectures(space, n, seed + 7919 * attempt):
            if tuple(arch) not in seen and len(found) < n:
                seen.add(tuple(arch))
                found.append(arch)
        if len(found) == n:
            return found
    raise ValueError(f"space {space.name} has too few architectures for {n} fresh ones")


def metrics(predicted: np.ndarray, measured: np.ndarray, rel: np.ndarray | None = None) -> dict:
    """Errors of `predicted` against `measured`; `rel`, the relative errors, when they are
    measured otherwise than against `measured`."""
    rel = np.abs(predicted / measured - 1 if rel is None else rel)
    return {"rmse_ms": float(np.sqrt(np.mean((predicted - measured) ** 2))),
            "mape": float(np.mean(rel)), "median_ape": float(np.median(rel)),
            "p95_ape": float(np.percentile(rel, 95)),
            "within_5": float(np.mean(rel <= 0.05)), "within_10": float(np.mean(rel <= 0.10))}


def retest(first: np.ndarray, second: np.ndarray) -> dict:
    """The test–retest error of two measurements of the same networks: |a - b| over their mean
    (symmetric: neither pass is the truth)."""
    return metrics(first, second, 2 * (first - second) / (first + second))


def flops_rate(predictor, space: SearchSpace, archs) -> float:
    """ms per M MACs of the baseline."""
    info = predictor.calibration_info or {}
    # The calibration's networks set the rate when they are of this space (validating a space
    # at another width or resolution, their MACs here are not the MACs they were measured at).
    nets = info.get("networks") or [] if info.get("space") == space.name else []
    if nets:
        return sum(n["measured_ms"] for n in nets) / sum(mmacs(space, n["choices"]) for n in nets)
    return sum(predictor.architecture_latency(space, a) for a in archs) / \
        sum(mmacs(space, a) for a in archs)


SAMPLES = "networks.samples.json"


def validate(profile, space: SearchSpace, predictor, table, n: int, seed: int,
             out_dir: Path) -> tuple[list[dict], dict[str, dict]]:
    """Measure n fresh networks twice; write report.csv and scatter.png into out_dir. The raw
    samples are kept in out_dir/networks.samples.json as they are taken: a validation
    interrupted there resumes from them."""
    import pandas as pd

    from profiler.devices.check import measure_networks

    calibrated_on = [net["choices"] for net in (predictor.calibration_info or {}).get("networks", [])]
    archs = fresh_architectures(space, n, seed, calibrated_on)
    for source in (table, predictor):
        if source is not None:  # a source lacking blocks fails before measuring
            source.architecture_latency(space, archs[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    first, second = measure_networks(profile, space, archs, seed, at=predictor.reference,
                                     passes=2, checkpoint=out_dir / SAMPLES)
    measured = (first + second) / 2
    rate = flops_rate(predictor, space, archs)
    # The table's blocks through the predictor's calibration: what pxsearch prices given both;
    # the predictor itself when the table is the one it was fitted on (it prices those blocks as
    # measured).
    calibrated_table = Filled(table, predictor) if table is not None and predictor.calibration \
        and _beyond(table, predictor) else None
    rows = []
    for choices, ms, a, b in zip(archs, measured, first, second):
        row = {"arch": " ".join(choices), "measured_ms": ms, "measured_1_ms": a,
               "measured_2_ms": b, "retest": abs(a - b) / ms}
        if table is not None:
            row["table_ms"] = table.architecture_latency(space, choices)
        row["predictor_ms"] = predictor.architecture_latency(space, choices)
        if calibrated_table is not None:
            row["calibrated_table_ms"] = calibrated_table.architecture_latency(space, choices)
        row["flops_ms"] = rate * mmacs(space, choices)
        rows.append(row)
    df = pd.DataFrame(rows)
    methods = [c for c in LABELS if c.endswith("_ms") and c in df]
    summary = {"retest": retest(first, second)} | \
        {m: metrics(df[m].to_numpy(), measured) for m in methods}
    write_text(out_dir / "report.csv", df.to_csv(index=False, float_format="%.6g"))
    _scatter(df, methods, out_dir / "scatter.png",
             f"{space.name} on {profile.name}: {n} networks measured end to end\n"
             f"(bars: the two measurements; test–retest error median "
             f"{summary['retest']['median_ape']:.1%})")
    return rows, summary


def _beyond(table, predictor) -> bool:
    """Whether the table holds a block that the predictor prices otherwise."""
    return any(predictor.measured.get(key) != ms
               for key, ms in zip(table.keys, table.df["latency_ms"].to_numpy(float)))


LABELS = {"retest": "test–retest", "table_ms": "table sum", "predictor_ms": "predictor",
          "calibrated_table_ms": "table calibrated", "flops_ms": "FLOPs baseline"}


def _scatter(df, methods, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6))
    measured = df["measured_ms"]
    lo, hi = measured.min() * 0.8, measured.max() * 1.2
    for m in methods:
        lo, hi = min(lo, df[m].min() * 0.95), max(hi, df[m].max() * 1.05)
    line = np.array([lo, hi])
    ax.fill_between(line, line * 0.9, line * 1.1, color="0.9", label="±10 %")
    ax.plot(line, line, color="0.4", lw=1, label="y = x")
    # Error bars: where the two measurements of each network lie (the device's own noise).
    xerr = np.abs(df["measured_1_ms"] - df["measured_2_ms"]) / 2
    for m in methods:
        ax.errorbar(measured, df[m], xerr=xerr, fmt="o", ms=4, elinewidth=1, capsize=2,
                    label=LABELS[m])
    ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="measured (ms)", ylabel="predicted (ms)",
           title=title)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
