"""Latency sources for the search tests: a synthetic but plausible table (a per-block overhead plus a
cost per multiply-accumulate, like a measured CPU table of `tiny`) and a predictor stand-in."""

from __future__ import annotations

import numpy as np

from profiler.space.blockspec import BlockSpec
from profiler.space.spaces import SearchSpace
from profiler.tables.latency import LatencySource
from profiler.tables.table import LatencyTable, shape_row

FINGERPRINT = {"device": "synthetic", "transport": "local", "runtime": "none", "runtime_version": "0",
               "threads": 1, "batch": 1, "host": "test", "host_cpu": "test"}


def macs(spec: BlockSpec) -> int:
    hw_in, hw_out = spec.in_h * spec.in_w, spec.out_h * spec.out_w
    if spec.kind == "conv":
        return hw_out * spec.in_c * spec.out_c * spec.kernel ** 2
    if spec.kind == "linear":
        return hw_in * spec.in_c + spec.in_c * spec.out_c
    if spec.kind == "zero":
        return 0
    mid = spec.middle
    expand = hw_in * spec.in_c * mid if mid != spec.in_c else 0
    return expand + hw_out * mid * spec.kernel ** 2 + hw_out * mid * spec.out_c


def synthetic_ms(spec: BlockSpec) -> float:
    return 0.004 + 4e-8 * macs(spec)


def synthetic_table(space: SearchSpace, drop: int = 0) -> LatencyTable:
    """Every block of `space` (less the last `drop` ones), recorded as measured for `space`."""
    specs = space.blocks()
    specs = specs[:len(specs) - drop] if drop else specs
    rows = [{"key": s.key, **shape_row(s), "latency_ms": synthetic_ms(s), "samples": 10}
            for s in specs]
    return LatencyTable.from_rows(rows, space.name, FINGERPRINT)


class MacsPredictor(LatencySource):
    """A latency source of the synthetic law, as a predictor would be."""
    source, space = "the synthetic law", ""

    def _latencies(self, specs):
        return np.array([synthetic_ms(s) for s in specs])
