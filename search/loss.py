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

Under `budget` the target ramps (`ramp_steps`, SearchConfig.target_ramp): it starts at E[LAT] of
the first architecture step (the uniform distribution's) and moves linearly to T over that many
steps. Without the ramp, a tight target starts far below E[LAT], its penalty outweighs the
cross-entropy at once, and the cheapest cut of expected latency wins everywhere: on `tiny` at 30 %
of its latency range every layer that can be skipped was `zero` with probability 0.67-0.78 after
the first search epoch, whichever layer it was, before the supernet's accuracy had a say. Ramped,
the constraint binds a little at every step, as at a target near the uniform distribution's
latency, and the layers part by what they are worth (0.22-0.61 after that epoch).
"""

from __future__ import annotations

import math

import torch

from .config import check_loss



class LatencyLoss:
    def __init__(self, form: str, target_ms: float, lam: float | None = None, beta: float = 0.6,
                 dual_lr: float = 0.1, rho: float = 5.0, ramp_steps: int = 0):
        check_loss(form, target_ms)
        self.form, self.target_ms, self.beta = form, target_ms, beta
        self.dual_lr, self.rho, self.ramp_steps = dual_lr, rho, ramp_steps
        self.lam = (0.0 if form == "budget" else 0.1) if lam is None else lam
        self.steps, self.start_ms = 0, None  # architecture steps taken; E[LAT] at the first

    def target_now(self) -> float:
        """The target of the next architecture step: T, or on the ramp from start_ms to T."""
        if self.form != "budget" or self.start_ms is None or self.steps >= self.ramp_steps:
            return self.target_ms
        return self.start_ms + (self.target_ms - self.start_ms) * self.steps / self.ramp_steps

    def __call__(self, ce: torch.Tensor, expected_ms: torch.Tensor) -> torch.Tensor:
        if self.start_ms is None:
            self.start_ms = float(expected_ms.detach())
        t = self.target_now()
        if self.form == "mul#log":
            return ce * (torch.log(expected_ms) / math.log(t)) ** self.beta
        c = (expected_ms - t) / t
        if self.form == "budget":
            return ce + self.lam * c + 0.5 * self.rho * c ** 2
        return ce + self.lam * c

    def update(self, expected_ms: float | torch.Tensor) -> None:
        """After an architecture step: the dual ascent step of `budget` (other forms keep lambda)."""
        if self.form == "budget":
            expected_ms, t = float(torch.as_tensor(expected_ms).detach()), self.target_now()
            self.lam += self.dual_lr * (expected_ms - t) / t
        self.steps += 1

    def state_dict(self) -> dict:
        return {"form": self.form, "lam": self.lam, "steps": self.steps, "start_ms": self.start_ms}

    def load_state_dict(self, state: dict) -> None:
        self.lam = float(state["lam"])
        self.steps, self.start_ms = int(state["steps"]), state["start_ms"]
