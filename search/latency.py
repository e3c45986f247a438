"""ExpectedLatency: E[LAT] = fixed + sum_i sum_j p_ij L_ij, differentiable in the path probabilities.

L[layer, candidate] and the constant `fixed` (the fixed layers, and a calibrated source's constant)
come from a latency source (profiler/tables/latency.py): a table, a predictor, or a table whose gaps a
predictor fills. With one-hot probabilities E[LAT] is that source's network latency exactly.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from profiler.errors import UserError
from profiler.space.spaces import SearchSpace
from profiler.tables.latency import LatencySource


class ExpectedLatency(nn.Module):
    def __init__(self, space: SearchSpace, source: LatencySource):
        super().__init__()
        if not isinstance(source, LatencySource):
            raise TypeError("ExpectedLatency needs a LatencySource (a table, a predictor, or both)")
        self.space, self.source = space, source
        layers = space.layers()
        specs = space.fixed() + [s for layer in layers for s in layer.candidates.values()]
        source.check_covers(specs, f"space {space.name!r}")
        costs, constant = source.network_terms(specs)
        costs = costs.tolist()
        n_fixed = len(space.fixed())
        self.fixed_ms = float(sum(costs[:n_fixed]) + constant)
        self.ops = [layer.ops for layer in layers]
        width = max(len(ops) for ops in self.ops)
        # Padded to a matrix; a layer without `zero` has one op fewer, its padding cell is masked.
        matrix, mask, at = torch.zeros(len(layers), width, dtype=torch.float64), \
            torch.zeros(len(layers), width, dtype=torch.bool), n_fixed
        for i, ops in enumerate(self.ops):
            matrix[i, :len(ops)] = torch.tensor(costs[at:at + len(ops)], dtype=torch.float64)
            mask[i, :len(ops)] = True
            at += len(ops)
        self.register_buffer("matrix", matrix)
        self.register_buffer("mask", mask)

    def forward(self, probs: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """E[LAT] in ms from one probability vector per searchable layer (or a padded matrix)."""
        if isinstance(probs, torch.Tensor) and probs.dim() == 2:
            rows = [probs[i, :len(ops)] for i, ops in enumerate(self.ops)]
        else:
            rows = list(probs)
        if len(rows) != len(self.ops):
            raise ValueError(f"expected probabilities for {len(self.ops)} layers, got {len(rows)}")
        total = torch.tensor(self.fixed_ms, dtype=torch.float64, device=self.matrix.device)
        for i, p in enumerate(rows):
            total = total + (p.to(torch.float64) * self.matrix[i, :len(self.ops[i])]).sum()
        return total.to(rows[0].dtype)

    def latency(self, choices: list[str]) -> float:
        """The latency of one architecture (the one-hot case)."""
        self.space.check_choices(choices)
        return self.fixed_ms + sum(float(self.matrix[i, ops.index(c)])
                                   for i, (ops, c) in enumerate(zip(self.ops, choices)))

    def bounds(self) -> tuple[float, float]:
        """The fastest and the slowest architecture of the space, in ms."""
        big = torch.finfo(torch.float64).max
        lo = self.matrix.masked_fill(~self.mask, big).min(1).values.sum()
        hi = self.matrix.masked_fill(~self.mask, -big).max(1).values.sum()
        return self.fixed_ms + float(lo), self.fixed_ms + float(hi)

    def check_target(self, target_ms: float) -> float:
        lo, hi = self.bounds()
        if not lo <= target_ms <= hi:
            raise UserError(f"target latency {target_ms:g} ms is outside the achievable range of space "
                            f"{self.space.name!r}: {lo:.4g} .. {hi:.4g} ms")
        return target_ms
