"""Deriving the architecture from the architecture parameters.

ProxylessNAS keeps the most likely path of every layer (argmax). Under a latency budget that can miss
the target by a whole op: a layer the accuracy is indifferent to keeps a flat distribution, E[LAT]
counts it at its mean while argmax picks one extreme. `most_likely_within` derives instead the most
likely architecture (max sum of log p) whose latency is within `tolerance` of the target, by dynamic
programming over layers on a latency grid; when the argmax architecture meets the budget, it is the
answer.
"""

from __future__ import annotations

import torch

from .latency import ExpectedLatency


def most_likely_within(latency: ExpectedLatency, alphas: list[torch.Tensor], target_ms: float,
                       tolerance: float = 0.01) -> list[str]:
    log_p = [torch.log_softmax(a.detach().double(), 0).tolist() for a in alphas]
    cost = latency.matrix.tolist()  # plain floats: the loops below run thousands of times
    # Grid fine enough that rounding over all layers stays within a quarter of the tolerance.
    step = target_ms * tolerance / (4 * len(latency.ops))
    # Grid cell -> (log-probability, exact latency of the layers so far, their choices).
    best: dict[int, tuple[float, float, list[str]]] = {0: (0.0, 0.0, [])}
    for i, ops in enumerate(latency.ops):
        grown: dict[int, tuple[float, float, list[str]]] = {}
        for cell, (score, ms, choices) in best.items():
            for j, op in enumerate(ops):
                at = cell + round(cost[i][j] / step)
                value = score + log_p[i][j]
                if at not in grown or value > grown[at][0]:
                    grown[at] = (value, ms + cost[i][j], choices + [op])
        best = grown
    off = {cell: abs(latency.fixed_ms + ms - target_ms) for cell, (_, ms, _) in best.items()}
    found = [best[cell] for cell, miss in off.items() if miss <= tolerance * target_ms]
    if found:
        return max(found, key=lambda s: s[0])[2]
    return best[min(off, key=off.get)][2]
