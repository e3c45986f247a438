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

from profiler.errors import UserError

from .latency import ExpectedLatency


def _best_by_cell(latency: ExpectedLatency, log_p: list[list[float]], target_ms: float,
                  tolerance: float) -> dict[int, tuple[float, float, list[str]]]:
    """Grid cell -> (log-probability, exact latency of the searchable layers, choices) of the
    most likely architecture whose latency rounds to that cell."""
    cost = latency.matrix.tolist()  # plain floats: the loops below run thousands of times
    # Grid fine enough that rounding over all layers stays within a quarter of the tolerance.
    step = target_ms * tolerance / (4 * len(latency.ops))
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
    return best


def most_likely_within(latency: ExpectedLatency, alphas: list[torch.Tensor], target_ms: float,
                       tolerance: float = 0.01) -> list[str]:
    log_p = [torch.log_softmax(a.detach().double(), 0).tolist() for a in alphas]
    best = _best_by_cell(latency, log_p, target_ms, tolerance)
    off = {cell: abs(latency.fixed_ms + ms - target_ms) for cell, (_, ms, _) in best.items()}
    found = [best[cell] for cell, miss in off.items() if miss <= tolerance * target_ms]
    if found:
        return max(found, key=lambda s: s[0])[2]
    return best[min(off, key=off.get)][2]


def check_reachable(latency: ExpectedLatency, target_ms: float, tolerance: float) -> None:
    """Refuse a target that no architecture of the space comes within `tolerance` of (a space of
    few, far apart latencies, or a table whose one absurd entry stretches the space's range):
    the search would end on an architecture far off the target."""
    flat = [[0.0] * len(ops) for ops in latency.ops]
    found = sorted(latency.fixed_ms + ms for _, ms, _ in
                   _best_by_cell(latency, flat, target_ms, tolerance).values())
    if any(abs(ms - target_ms) <= tolerance * target_ms for ms in found):
        return
    below = max((ms for ms in found if ms < target_ms), default=None)
    above = min((ms for ms in found if ms > target_ms), default=None)
    nearest = " and ".join(f"{ms:.4g} ms" for ms in (below, above) if ms is not None)
    raise UserError(f"no architecture of space {latency.space.name!r} is within {tolerance:.0%} "
                    f"of the target {target_ms:g} ms (the nearest take {nearest}); choose a "
                    f"target near one of them")


def check_derived(latency: ExpectedLatency, choices: list[str], target_ms: float,
                  tolerance: float) -> None:
    """Refuse to end a search under a budget on an architecture beyond the budget's tolerance."""
    ms = latency.latency(choices)
    if abs(ms - target_ms) > tolerance * target_ms:
        raise UserError(f"the derived architecture takes {ms:.4g} ms, {(ms - target_ms) / target_ms:+.1%} "
                        f"off the target {target_ms:g} ms, beyond the budget's {tolerance:.0%}; "
                        f"choose a target nearer an architecture of space {latency.space.name!r}")
