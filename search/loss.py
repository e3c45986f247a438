"""The architecture loss: cross-entropy plus the expected latency E[LAT] against a target T (ms).

    add#linear   CE + lambda (E - T) / T                       (ProxylessNAS, fixed lambda)
    mul#log      CE * (log E / log T) ** beta                  (ProxylessNAS, fixed beta)
    budget       CE + lambda c + rho / 2 c^2 with c = (E - T) / T, lambda adapted by dual ascent
                 (lambda += dual_lr * c after every architecture step), so E settles at T whatever
                 the scale of CE: lambda grows while E is above the target and shrinks (below zero
                 if the accuracy term alone would settle under T) while it is below. The quadratic
                 term (the augmented Lagrangian) damps the oscillation that plain dual ascent shows
                 when alpha and lambda chase each other. The architecture is then derived within
                 the budget (search/derive.py).
"""

from __future__ import annotations

import math

import torch

from .config import check_loss



class LatencyLoss:
    def __init__(self, form: str, target_ms: float, lam: float | None = None, beta: float = 0.6,
                 dual_lr: float = 0.1, rho: float = 5.0):
        check_loss(form, target_ms)
        self.form, self.target_ms, self.beta = form, target_ms, beta
        self.dual_lr, self.rho = dual_lr, rho
        self.lam = (0.0 if form == "budget" else 0.1) if lam is None else lam

    def __call__(self, ce: torch.Tensor, expected_ms: torch.Tensor) -> torch.Tensor:
        t = self.target_ms
        if self.form == "mul#log":
            return ce * (torch.log(expected_ms) / math.log(t)) ** self.beta
        c = (expected_ms - t) / t
        if self.form == "budget":
            return ce + self.lam * c + 0.5 * self.rho * c ** 2
        return ce + self.lam * c

    def update(self, expected_ms: float | torch.Tensor) -> None:
        """After an architecture step: the dual ascent step of `budget` (other forms keep lambda)."""
        if self.form == "budget":
            expected_ms = float(torch.as_tensor(expected_ms).detach())
            self.lam += self.dual_lr * (expected_ms - self.target_ms) / self.target_ms

    def state_dict(self) -> dict:
        return {"form": self.form, "lam": self.lam}

    def load_state_dict(self, state: dict) -> None:
        self.lam = float(state["lam"])
