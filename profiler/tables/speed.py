"""A run's device speed: how the models it timed follow the reference timed beside them.

A device's speed moves between rounds (a phone heating up; this shared CPU, whose neighbours take
or leave it cycles), and the reference block, timed right before every sample, sees it move. But
models do not all move in proportion to the reference. On this CPU, idle, some rounds ran the
reference 25 % faster and the `tiny` networks 35 % faster; so a model's latency over the
reference's, the obvious normalisation, changed by 20 % with the state a round happened to find,
and two passes over 50 networks disagreed by 10.7 % on average.

What repeats is the relation: over a run's rounds, log(model) = a_model + beta * log(reference),
one elasticity `beta` for the run's models (1.7-1.9 for `tiny` networks, 0.85-0.95 for
`proxyless-mobile` ones, on onnxruntime). Fitted per run, with each model's own level a_model,
a model's latency is read at one reference speed: the table's, so that blocks measured at 10:00
and networks measured at 10:30 are on one scale. Two passes over the same 50 networks then
agreed within 4.4 % instead of 10.7 % (tiny) and 1.6 % (proxyless-mobile) as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# The slope is pulled toward 1 (latency in proportion to the reference) by this much, as a sum of
# squared log-deviations of the reference: a run whose reference never moved says nothing about
# the slope, and then a model's latency is read in proportion.
PRIOR = 0.01


@dataclass(frozen=True)
class Speed:
    beta: float               # d log(model) / d log(reference), over the run
    level: dict[str, float]   # each model's a: log ms at a reference of 1 ms
    reference_ms: float       # the reference's typical latency over the run

    def at(self, key: str, reference_ms: float) -> float:
        """`key`'s latency, ms, when the reference runs at `reference_ms`."""
        return math.exp(self.level[key] + self.beta * math.log(reference_ms))


def fit_speed(rounds: dict[str, tuple[list[float], list[float]]]) -> Speed | None:
    """The run's speed from each model's rounds: `rounds[key]` = (the model's latency in each
    round, the reference's in the same rounds), each a quantile of that round's samples. None
    without any round."""
    logs = {k: (np.log(m), np.log(r)) for k, (m, r) in rounds.items() if len(m)}
    if not logs:
        return None
    # Within each model: its deviations from its own mean, so that levels do not enter the slope.
    dm = np.concatenate([m - m.mean() for m, _ in logs.values()])
    dr = np.concatenate([r - r.mean() for _, r in logs.values()])
    beta = 1.0 + float(((dm - dr) * dr).sum() / ((dr * dr).sum() + PRIOR))
    # Each level by the median over its rounds: one odd round does not move it.
    level = {k: float(np.median(m - beta * r)) for k, (m, r) in logs.items()}
    typical = float(np.exp(np.median(np.concatenate([r for _, r in logs.values()]))))
    return Speed(beta, level, typical)
