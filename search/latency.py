"""ExpectedLatency: E[LAT] = fixed + sum_i sum_j p_ij L_ij, differentiable in the path probabilities.

L[layer, candidate] comes from a LatencyTable (`zero` ops cost 0) or from a predictor: any object
with `predict_specs(list[BlockSpec]) -> array of ms`. The fixed layers (stem, first block, head) are
a constant. With one-hot probabilities E[LAT] is the table latency of that architecture exactly.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from profiler.blockspec import BlockSpec
from profiler.errors import UserError
from profiler.space import SearchSpace
from profiler.table import LatencyTable


def _table_costs(table: LatencyTable, space: SearchSpace, specs: list[BlockSpec],
                 fallback=None) -> list[float]:
    missing = list(dict.fromkeys(table.missing(specs)))
    if missing and fallback is not None:
        # The predictor fills exactly the blocks the table lacks; measured entries win.
        lacking = [s for s in specs if s.key in set(missing)]
        filled = dict(zip((s.key for s in lacking), _predicted_costs(fallback, lacking)))
        return [filled[s.key] if s.key in filled else table.latency(s) for s in specs]
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        raise UserError(f"{table.source} lacks {len(missing)} block(s) that space {space.name!r} "
                        f"needs: {shown}")
    return [table.latency(s) for s in specs]


def _predicted_costs(predictor, specs: list[BlockSpec]) -> list[float]:
    # Zero ops cost nothing and are not something a predictor was trained on.
    real = [s for s in specs if s.kind != "zero"]
    ms = np.asarray(predictor.predict_specs(real), dtype=float).reshape(-1)
    if len(ms) != len(real) or not np.all(np.isfinite(ms)):
        raise UserError(f"the predictor returned {len(ms)} values for {len(real)} blocks, "
                        f"or a value that is not finite")
    it = iter(ms.tolist())
    return [0.0 if s.kind == "zero" else max(next(it), 0.0) for s in specs]


class ExpectedLatency(nn.Module):
    def __init__(self, space: SearchSpace, source, fallback=None):
        """`source`: a LatencyTable, or a predictor with predict_specs(list[BlockSpec]) -> ms.
        `fallback`: a predictor for the blocks a table lacks (otherwise they are an error)."""
        super().__init__()
        self.space = space
        layers = space.layers()
        specs = space.fixed() + [s for layer in layers for s in layer.candidates.values()]
        if isinstance(source, LatencyTable):
            costs = _table_costs(source, space, specs, fallback)
        elif callable(getattr(source, "predict_specs", None)):
            costs = _predicted_costs(source, specs)
        else:
            raise TypeError("ExpectedLatency needs a LatencyTable or an object with predict_specs()")
        n_fixed = len(space.fixed())
        self.fixed_ms = float(sum(costs[:n_fixed]))
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
        total = torch.tensor(self.fixed_ms, dtype=torch.float64)
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
