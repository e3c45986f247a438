"""Latency sources: where the latency of a block, and of a whole network, comes from.

One protocol for a latency table, a predictor, and a table whose gaps a predictor fills. A source
prices blocks measured alone (`block_latencies`) and whole networks (`network_terms`: one term per
block plus a constant, so the expected latency of a supernet stays linear in the path
probabilities, and differentiable, even when a calibration turns block sums into network latency).

A `zero` op (the layer skipped) costs nothing: said here, once (`runs`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from profiler.errors import UserError
from profiler.limits import MAX_BLOCK_MS, MAX_SCALE, MIN_SCALE
from profiler.space.blockspec import BlockSpec
from .fingerprint import Reference


def runs(specs) -> np.ndarray:
    """Which of `specs` run on the device. A `zero` op (the layer skipped) runs nothing: it costs
    nothing, pays no per-call cost, and no source is asked to price it."""
    return np.array([s.profiled for s in specs], dtype=bool)


@dataclass(frozen=True)
class Calibration:
    """From blocks measured alone to the network they make: network = scale * (sum of blocks -
    (blocks - 1) * per_call_ms). A block measured alone pays the runtime's per-call cost once; a
    network pays it once in all, and fuses and caches across blocks (the scale)."""
    scale: float = 1.0
    per_call_ms: float = 0.0

    def __post_init__(self):
        if not (MIN_SCALE <= self.scale <= MAX_SCALE and 0 <= self.per_call_ms <= MAX_BLOCK_MS):
            raise UserError(f"a calibration needs scale > 0 and per-call cost >= 0, within what a "
                            f"device does (scale {MIN_SCALE:g} to {MAX_SCALE:g}, per-call cost at "
                            f"most {MAX_BLOCK_MS:g} ms), got {self.scale!r} and {self.per_call_ms!r}")

    def terms(self, block_ms: np.ndarray, running: np.ndarray) -> tuple[np.ndarray, float]:
        """One term per block (`running`: see `runs`) and a constant, summing to the network."""
        return np.where(running, self.scale * (block_ms - self.per_call_ms), 0.0), \
            self.scale * self.per_call_ms


class LatencySource:
    """Subclasses give `_latencies` (blocks that are not `zero`) and, if some blocks are beyond
    them, `missing`; a calibrated source also overrides `network_terms`."""

    source: str  # what it is, for messages
    space: str   # the search space it was made for, "" when unknown
    calibration: Calibration | None  # block sums to network latency; None: plain sums
    # The device speed the source's latencies were measured at (profiler/tables/fingerprint.py);
    # None when no reference was timed.
    reference: Reference | None = None

    def _latencies(self, specs: list[BlockSpec]) -> np.ndarray:
        raise NotImplementedError

    def missing(self, specs) -> list[str]:
        """Keys of the blocks this source cannot price (of blocks that run)."""
        return []

    def check_covers(self, specs, what: str = "this architecture") -> None:
        specs = list(specs)
        missing = list(dict.fromkeys(self.missing([s for s, r in zip(specs, runs(specs)) if r])))
        if missing:
            shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4
                                               else "")
            raise UserError(f"{self.source} lacks {len(missing)} block(s) of {what}: {shown}")

    def block_latencies(self, specs) -> np.ndarray:
        """Milliseconds of each block measured alone; `zero` costs 0."""
        specs = list(specs)
        out = np.zeros(len(specs))
        real = np.flatnonzero(runs(specs))
        if len(real):
            self.check_covers([specs[i] for i in real], "these blocks")
            ms = np.asarray(self._latencies([specs[i] for i in real]), dtype=float).reshape(-1)
            if len(ms) != len(real) or not np.all(np.isfinite(ms)):
                raise UserError(f"{self.source} gave {len(ms)} values for {len(real)} blocks, "
                                f"or a value that is not finite")
            if ms.max() > MAX_BLOCK_MS:  # a predictor's weights can be absurd where a table's cannot
                at = int(ms.argmax())
                raise UserError(f"{self.source} gives block {specs[real[at]].key} {ms[at]:.4g} ms, "
                                f"more than any block takes ({MAX_BLOCK_MS:g} ms)")
            out[real] = np.maximum(ms, 0.0)  # no block takes negative time
        return out

    def network_terms(self, specs) -> tuple[np.ndarray, float]:
        """(one term per block, a constant) summing to the latency of a network of these blocks."""
        specs = list(specs)
        ms = self.block_latencies(specs)
        calibration = getattr(self, "calibration", None)
        if calibration is None:
            return ms, 0.0
        return calibration.terms(ms, runs(specs))

    def network_latency(self, specs) -> float:
        """The latency of the network made of `specs` (one architecture, fixed layers included)."""
        specs = list(specs)
        self.check_covers(specs)
        terms, constant = self.network_terms(specs)
        return float(terms.sum() + constant)

    def architecture_latency(self, space, choices: list[str]) -> float:
        return self.network_latency(space.network(choices))


class Filled(LatencySource):
    """A table whose missing blocks a predictor prices; measured entries win."""

    def __init__(self, table: LatencySource, predictor: LatencySource):
        self.table, self.predictor = table, predictor
        self.source = f"{table.source} + {predictor.source}"
        self.space = table.space or predictor.space
        self.calibration = getattr(predictor, "calibration", None)
        self.reference = table.reference or predictor.reference

    def missing(self, specs):
        lacking = set(self.table.missing(specs))
        return self.predictor.missing([s for s in specs if s.key in lacking])

    def _latencies(self, specs):
        lacking = set(self.table.missing(specs))
        known = [s for s in specs if s.key not in lacking]
        filled = [s for s in specs if s.key in lacking]
        ms = dict(zip((s.key for s in known), self.table.block_latencies(known)))
        ms |= dict(zip((s.key for s in filled), self.predictor.block_latencies(filled)))
        return np.array([ms[s.key] for s in specs])
