"""Binary gates: which paths of a mixed op run, and which of them receive a gate gradient.

ProxylessNAS replaces the softmax-weighted sum of all paths by binary gates g (one-hot) drawn from the
path probabilities p = softmax(alpha). A weight step runs one sampled path. An architecture step runs
the active path and estimates dL/dalpha from the gate gradients dL/dg_k = <o_k(x), dL/dy>
(BinaryConnect); the modes differ in which o_k are computed and how:

    two        two paths drawn from p without replacement, the active one from the renormalised
               pair; the inactive output is computed without a graph (two paths in memory)
    full_v2    every gate gradient, the other outputs recomputed without a graph in the backward pass
    full       every path in the autograd graph (DARTS-like memory): the memory baseline
    reinforce  one path; alpha is trained by REINFORCE, not through gates
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from profiler.errors import UserError

from .config import MODES



@dataclass(frozen=True)
class Gates:
    """One draw: the active path (gate 1), the paths that get a gate gradient, and how they are run.

    `run` is "path" (the active path alone, no gate gradient), "two", "full_v2" or "full"."""
    active: int
    involved: tuple[int, ...]
    run: str


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise UserError(f"unknown gate mode {mode!r}; known: {', '.join(MODES)}")
    return mode


class GateSampler:
    """Draws binary gates from architecture parameters, with its own seeded random stream (its state
    is part of a search checkpoint, so a resumed search draws the same gates)."""

    def __init__(self, mode: str = "two", seed: int = 0):
        self.mode = check_mode(mode)
        self.generator = torch.Generator().manual_seed(seed)

    def _draw(self, probs: torch.Tensor, n: int) -> list[int]:
        return torch.multinomial(probs, n, replacement=False, generator=self.generator).tolist()

    def path(self, alpha: torch.Tensor) -> Gates:
        """One path drawn from softmax(alpha): what a weight step (and a REINFORCE sample) runs."""
        (active,) = self._draw(torch.softmax(alpha.detach().float().cpu(), 0), 1)
        return Gates(active, (active,), "path")

    def arch(self, alpha: torch.Tensor) -> Gates:
        """The gates of an architecture step in this sampler's mode."""
        if self.mode == "reinforce":
            return self.path(alpha)
        # Drawn on the CPU from the sampler's own generator, wherever alpha lives.
        alpha = alpha.detach().float().cpu()
        probs = torch.softmax(alpha, 0)
        if self.mode == "two" and len(probs) > 1:
            pair = self._draw(probs, 2)
            renormed = torch.softmax(alpha[pair], 0)
            (pick,) = self._draw(renormed, 1)
            return Gates(pair[pick], (pair[pick], pair[1 - pick]), "two")
        (active,) = self._draw(probs, 1)
        return Gates(active, tuple(range(len(probs))), "full" if self.mode == "full" else "full_v2")

    def state_dict(self) -> dict:
        return {"mode": self.mode, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.mode = check_mode(state["mode"])
        self.generator.set_state(state["generator"])


def binary_connect(alpha: torch.Tensor, gate_grad: torch.Tensor, involved) -> torch.Tensor:
    """dL/dalpha_i = sum_j dL/dg_j p_j (delta_ij - p_i) over the involved paths, with p the softmax of
    their alphas (renormalised over the pair in `two` mode); zero for the others."""
    idx = torch.as_tensor(list(involved), device=alpha.device)
    p = torch.softmax(alpha.detach()[idx], 0)
    g = gate_grad.to(alpha.device)[idx]
    out = torch.zeros_like(alpha)
    out[idx] = p * (g - (p * g).sum())
    return out
