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

The elasticity is the device's and its models', not the run's: a run whose reference barely moved
(all its rounds in one state of the CPU) cannot tell it, and one read far from its own speed needs
it most. So a run measured against a table takes the table's elasticity as its prior, weighted by
what the table's rounds knew of it (`weight`: the sum of squared log-deviations of the reference
it was fitted over) against what its own rounds know. In the demo's validation, one pass found
only the CPU's slow state and fitted 1.23 alone against the table's 1.67, and was read 1.4x from
its own speed: the two passes disagreed by 18.7 %, and by 5.7 % with the table's as prior.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Elasticities a device can have. Fitted on this CPU: 0.69-1.02 for proxyless-mobile networks and
# blocks, 0.70-1.88 for tiny ones, over 20 runs idle and loaded. A fit outside (measured: -0.21 and 2.62,
# on 10 tiny networks at a load of 8) was driven by rounds that a preemption slowed from end to
# end, and then the run is read in proportion to the reference from the quantiles of all its
# samples, which those rounds do not reach.
PLAUSIBLE = (0.5, 2.5)
# A round in which a model (or its reference) took more than this times its fastest round was
# slowed from end to end by other work, not by the device's speed: the fast rounds of this CPU
# run 0.65-0.75x a normal one, so a normal round is at most 1.55x the fastest, while a round
# that a preemption slowed took 2-4x (tiny networks at a load of 3). Such rounds are left out.
DISTURBED = 1.8
# Without a table's elasticity, the slope is pulled toward 1 (latency in proportion to the
# reference) by this weight, a sum of squared log-deviations of the reference: a run whose
# reference never moved says nothing about the slope, and then a model's latency is read in
# proportion.
PRIOR = (1.0, 0.01)


@dataclass(frozen=True)
class Speed:
    beta: float               # d log(model) / d log(reference), over the run
    level: dict[str, float]   # each model's a: log ms at a reference of 1 ms
    reference_ms: float       # the reference's typical latency over the run
    weight: float = 0.0       # what beta rests on: squared log-deviations of the reference, prior's too

    def at(self, key: str, reference_ms: float) -> float:
        """`key`'s latency, ms, when the reference runs at `reference_ms`."""
        return math.exp(self.level[key] + self.beta * math.log(reference_ms))


@dataclass(frozen=True)
class Rounds:
    """What a run's speed is fitted from. `each[key]` = (the model's latency in each round, the
    reference's in the same rounds), each a quantile of that round's samples; `pooled[key]` = the
    same quantiles over all its samples, for a run whose fit is not one a device can have."""
    each: dict[str, tuple[list[float], list[float]]]
    pooled: dict[str, tuple[float, float]]


def fit_speed(rounds: Rounds, prior: tuple[float, float] = PRIOR) -> Speed | None:
    """The run's speed from each model's rounds, of which those that other work slowed from end
    to end are left out (DISTURBED); its elasticity pulled toward prior = (elasticity, weight).
    None without any round."""
    logs = {}
    for k, (m, r) in rounds.each.items():
        if len(m):
            m, r = np.log(m), np.log(r)
            calm = (m <= m.min() + math.log(DISTURBED)) & (r <= r.min() + math.log(DISTURBED))
            logs[k] = (m[calm], r[calm]) if calm.any() else (m, r)  # none calm: cannot tell
    if not logs:
        return None
    typical = float(np.exp(np.median(np.concatenate([r for _, r in logs.values()]))))
    # Within each model: its deviations from its own mean, so that levels do not enter the slope.
    dm = np.concatenate([m - m.mean() for m, _ in logs.values()])
    dr = np.concatenate([r - r.mean() for _, r in logs.values()])
    # The least-squares slope and the prior, each weighted by the reference's movement it saw.
    (b0, w0), own = prior, float((dr * dr).sum())
    beta = b0 + float(((dm - b0 * dr) * dr).sum() / (own + w0))
    if not PLAUSIBLE[0] <= beta <= PLAUSIBLE[1]:
        return Speed(1.0, {k: math.log(rounds.pooled[k][0] / rounds.pooled[k][1]) for k in logs},
                     typical)
    # Each level by the median over its rounds: one odd round does not move it.
    level = {k: float(np.median(m - beta * r)) for k, (m, r) in logs.items()}
    return Speed(beta, level, typical, own + w0)
