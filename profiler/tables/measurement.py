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

    def __post_init__(self):
        if not self.times_ms:
            raise UserError(f"{self.key}: a measurement needs at least one sample")
        if not all(isinstance(t, (int, float)) and math.isfinite(t) and t > 0 for t in self.times_ms):
            raise UserError(f"{self.key}: sample times must be positive finite milliseconds")

    @cached_property
    def _sorted(self) -> np.ndarray:
        return np.sort(np.asarray(self.times_ms, dtype=float))

    @property
    def median(self) -> float:
        return float(np.median(self._sorted))

    def quantile(self, q: float) -> float:
        """The q-quantile of the samples (0.5: the median)."""
        return float(np.quantile(self._sorted, q))

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
        """IQR / median: the relative noise of this entry."""
        return self.iqr / self.median
