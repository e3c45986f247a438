"""Measurement: the timings of one block on one device, with the statistics a table reports."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from profiler.errors import UserError


@dataclass(frozen=True)
class Measurement:
    key: str
    times_ms: tuple[float, ...]  # one per calibrated sample: the mean of `inner` back-to-back calls
    warmup: int                  # untimed calls before the first sample
    inner: int
    quantile: float = 0.5        # the quantile of the samples taken as the latency
    rounds: tuple[int, ...] = ()  # how many of times_ms each round took, in order (): one round

    def __post_init__(self):
        if not self.times_ms:
            raise UserError(f"{self.key}: a measurement needs at least one sample")
        if not all(isinstance(t, (int, float)) and math.isfinite(t) and t > 0 for t in self.times_ms):
            raise UserError(f"{self.key}: sample times must be positive finite milliseconds")
        if self.rounds and sum(self.rounds) != len(self.times_ms):
            raise UserError(f"{self.key}: the rounds do not add up to the samples")

    @cached_property
    def _sorted(self) -> np.ndarray:
        return np.sort(np.asarray(self.times_ms, dtype=float))

    @property
    def median(self) -> float:
        return float(np.median(self._sorted))

    def quantile_of(self, q: float) -> float:
        """The q-quantile of the samples (0.5: the median)."""
        return float(np.quantile(self._sorted, q))

    @property
    def latency(self) -> float:
        return self.quantile_of(self.quantile)

    @property
    def mean(self) -> float:
        return float(self._sorted.mean())

    @property
    def std(self) -> float:
        return float(self._sorted.std(ddof=1)) if len(self._sorted) > 1 else 0.0

    @property
    def iqr(self) -> float:
        q1, q3 = np.percentile(self._sorted, [25, 75])
        return float(q3 - q1)

    @property
    def min(self) -> float:
        return float(self._sorted[0])

    @property
    def spread(self) -> float:
        """How far the latency can be trusted, relative to it; above the device's max_spread the
        entry is measured again.

        The median's: IQR / median, the entry's relative noise. A low quantile's: its standard
        error, relative, by the jackknife over rounds (each round left out in turn). IQR / median
        does not suit a low quantile: on a loaded CPU most samples are slowed, so every entry's
        IQR is wide while its 5th percentile, the undisturbed speed, repeats within a percent or
        two. Rounds, not samples, are left out because the device's state changes between rounds
        and a round's samples share it."""
        if self.quantile >= 0.5 or len(self.rounds) < 2:
            return self.iqr / self.median
        edges = np.cumsum((0, *self.rounds))
        times = np.asarray(self.times_ms, dtype=float)
        left_out = np.array([np.quantile(np.concatenate([times[:a], times[b:]]), self.quantile)
                             for a, b in zip(edges[:-1], edges[1:])])
        n = len(left_out)
        standard_error = np.sqrt((n - 1) / n * ((left_out - left_out.mean()) ** 2).sum())
        return float(standard_error) / self.latency
