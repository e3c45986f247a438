"""Deriving the architecture from the architecture parameters.

ProxylessNAS keeps the most likely path of every layer (argmax). Under a latency budget that can miss
the target by a whole op: a layer the accuracy is indifferent to keeps a flat distribution, E[LAT]
counts it at its mean while argmax picks one extreme. `most_likely_within` derives instead the most
likely architecture (max sum of log p) whose latency is within `tolerance` of the target, by dynamic
programming over layers on a latency grid; when the argmax architecture meets the budget, it is the
answer.

`sample_within` draws architectures from the same distribution conditioned on the budget: the
candidates that the supernet scores after a search (Searcher.select).
"""

from __future__ import annotations

import numpy as np
import torch

from profiler.errors import UserError

from .latency import ExpectedLatency


def _grid_step(latency: ExpectedLatency, target_ms: float, tolerance: float) -> float:
    """The latency grid's step: fine enough that rounding over all layers stays within a quarter
    of the tolerance."""
    return target_ms * tolerance / (4 * len(latency.ops))


def _best_by_cell(latency: ExpectedLatency, log_p: list[list[float]], target_ms: float,
                  tolerance: float) -> dict[int, tuple[float, float, list[str]]]:
    """Grid cell -> (log-probability, exact latency of the searchable layers, choices) of the
    most likely architecture whose latency rounds to that cell."""
    cost = latency.matrix.tolist()  # plain floats: the loops below run thousands of times
    step = _grid_step(latency, target_ms, tolerance)
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


def draws_within(latency: ExpectedLatency, alphas: list[torch.Tensor], target_ms: float,
                 tolerance: float, seed: int):
    """Architectures drawn endlessly (repeats included) from the architecture distribution
    (p = softmax(alpha), layers independent) conditioned on a latency within `tolerance` of the
    target; nothing where no architecture is. Exact, not by rejection (which a tight target would
    starve): the probability mass of every latency-grid cell after each layer, then each draw from
    the last layer back. A cell holds a latency to within the grid's rounding: a draw near the
    budget's edge may miss it by that much (sample_within checks each)."""
    log_p = [torch.log_softmax(a.detach().double(), 0).cpu().numpy() for a in alphas]
    step = _grid_step(latency, target_ms, tolerance)
    cells = [[round(c / step) for c in row[:len(ops)]]
             for row, ops in zip(latency.matrix.tolist(), latency.ops)]
    size = sum(max(c) for c in cells) + 1
    mass = [np.full(size, -np.inf)]  # mass[i][cell]: log P(the first i layers sum to cell)
    mass[0][0] = 0.0
    for lp, costs in zip(log_p, cells):
        grown = np.full(size, -np.inf)
        for j, c in enumerate(costs):
            grown[c:] = np.logaddexp(grown[c:], mass[-1][:size - c] + lp[j])
        mass.append(grown)
    ms = latency.fixed_ms + np.arange(size) * step
    ends = np.flatnonzero((np.abs(ms - target_ms) <= tolerance * target_ms) & np.isfinite(mass[-1]))
    if not len(ends):
        return
    rng = np.random.default_rng(seed)
    weights = np.exp(mass[-1][ends] - mass[-1][ends].max())
    while True:
        cell, choices = rng.choice(ends, p=weights / weights.sum()), []
        for i in reversed(range(len(cells))):
            before = np.array([mass[i][cell - c] + log_p[i][j] if cell >= c else -np.inf
                               for j, c in enumerate(cells[i])])
            p = np.exp(before - before.max())
            j = rng.choice(len(p), p=p / p.sum())
            choices.insert(0, latency.ops[i][j])
            cell -= cells[i][j]
        yield choices


def sample_within(latency: ExpectedLatency, alphas: list[torch.Tensor], target_ms: float,
                  tolerance: float, n: int, seed: int, exclude=()) -> list[list[str]]:
    """Up to `n` distinct architectures, none of `exclude`, from draws_within that meet the
    budget exactly; fewer where the distribution holds fewer (20 n draws are tried)."""
    found, seen = [], [list(c) for c in exclude]
    for k, choices in enumerate(draws_within(latency, alphas, target_ms, tolerance, seed)):
        if len(found) == n or k == 20 * n:
            break
        if abs(latency.latency(choices) - target_ms) <= tolerance * target_ms \
                and choices not in seen:
            found.append(choices)
            seen.append(choices)
    return found


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
