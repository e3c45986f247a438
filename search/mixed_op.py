"""MixedOp: one searchable layer holding every candidate, its architecture parameters and its gates.

Usage in any training loop (see search/trainer.py for the full one):

    op.sample(sampler.path(op.alpha))   # weight step: one path runs and gets weight gradients
    op.sample(sampler.arch(op.alpha))   # architecture step: gate gradients in the sampler's mode
    ... loss.backward() ...
    op.set_arch_grad()                  # gate gradients -> alpha.grad (BinaryConnect)
    arch_optimizer.step()
    op.rescale_alpha()                  # `two`: the unsampled paths keep their probabilities

A candidate's output is the layer's whole output: for candidates with an identity skip it includes
the shortcut, and the `zero` candidate is the identity (its output is the shortcut). Gate gradients
then differ from those of a mixed op without shortcut by the same <x, dL/dy> for every candidate,
which the BinaryConnect estimate cancels (sum_j p_j (delta_ij - p_i) = 0). So a layer whose active op
is `zero` still learns: the other candidates' gate gradients follow from dL/dy like any other's.
"""

from __future__ import annotations

import torch
from torch import nn

from .gates import Gates, binary_connect


class _GateGradient(torch.autograd.Function):
    """y = o_active in the forward pass; in the backward pass dL/do_active = dL/dy (the gate is 1) and
    dL/dg_k = <o_k(x), dL/dy> for every involved k, from `cached` outputs or recomputed without a graph.
    """

    @staticmethod
    def forward(ctx, out, gate_values, x, op, gates, cached):
        ctx.save_for_backward(out, x)
        ctx.op, ctx.gates, ctx.cached = op, gates, cached
        return out.view_as(out)

    @staticmethod
    def backward(ctx, grad_y):
        out, x = ctx.saved_tensors
        # The gate values live on the CPU; at least float32 even under bf16 autocast.
        grads = torch.zeros(len(ctx.op.candidates),
                            dtype=torch.promote_types(grad_y.dtype, torch.float32))
        with torch.no_grad():
            for k in ctx.gates.involved:
                if k == ctx.gates.active:
                    o_k = out
                elif k in ctx.cached:
                    o_k = ctx.cached[k]
                else:
                    o_k = ctx.op.candidates[k](x)
                grads[k] = (o_k.to(grads.dtype) * grad_y.to(grads.dtype)).sum()
        ctx.cached = None
        return grad_y, grads, None, None, None, None


class MixedOp(nn.Module):
    def __init__(self, candidates: dict[str, nn.Module]):
        super().__init__()
        self.names = list(candidates)
        self.candidates = nn.ModuleList(candidates.values())
        self.alpha = nn.Parameter(torch.zeros(len(self.names)))
        self.gates: Gates | None = None
        # The binary gates as a leaf tensor, so autograd leaves dL/dg in gate_values.grad. Not a
        # parameter: no optimizer updates it.
        self.gate_values = torch.zeros(len(self.names), requires_grad=True)
        self._sampled_alpha = None

    def probs(self) -> torch.Tensor:
        return torch.softmax(self.alpha, 0)

    def entropy(self) -> float:
        p = self.probs().detach()
        return float(-(p * torch.log(p.clamp_min(1e-12))).sum())

    def chosen(self) -> str:
        return self.names[int(self.alpha.detach().argmax())]

    def sample(self, gates: Gates) -> None:
        self.gates = gates
        with torch.no_grad():
            self.gate_values.zero_()
            self.gate_values[gates.active] = 1.0
        self.gate_values.grad = None
        self._sampled_alpha = self.alpha.detach()[list(gates.involved)].clone()

    def fix(self, name: str) -> None:
        """Run one named path from now on (evaluation of a derived architecture)."""
        i = self.names.index(name)
        self.sample(Gates(i, (i,), "path"))

    def forward(self, x):
        g = self.gates
        if g is None:
            raise RuntimeError("MixedOp: sample gates (or fix a path) before the forward pass")
        if g.run == "path":
            return self.candidates[g.active](x)
        if g.run == "full":
            outs = [c(x) for c in self.candidates]
            return sum(self.gate_values[k] * o for k, o in enumerate(outs))
        out = self.candidates[g.active](x)
        cached = {}
        if g.run == "two":
            with torch.no_grad():
                cached = {k: self.candidates[k](x) for k in g.involved if k != g.active}
        return _GateGradient.apply(out, self.gate_values, x, self, g, cached)

    def set_arch_grad(self) -> None:
        """Add the BinaryConnect estimate from the gate gradients to alpha.grad (which may already hold
        the latency term's gradient). In `two` mode only the sampled pair may move, so the gradient
        of every other path is cleared (Adam with beta1 = 0 then leaves those alphas as they are)."""
        g = self.gates
        if g is None or g.run == "path":
            return
        if self.alpha.grad is None:
            self.alpha.grad = torch.zeros_like(self.alpha)
        if self.gate_values.grad is not None:
            self.alpha.grad += binary_connect(self.alpha, self.gate_values.grad, g.involved)
        if g.run == "two":
            keep = torch.zeros_like(self.alpha, dtype=torch.bool)
            keep[list(g.involved)] = True
            self.alpha.grad[~keep] = 0.0

    @torch.no_grad()
    def rescale_alpha(self) -> None:
        """`two` mode, after the architecture step: shift the pair's alphas by one offset so that
        sum(exp(alpha)) over the pair is what it was, which keeps every other probability exactly."""
        g = self.gates
        if g is None or g.run != "two":
            return
        idx = list(g.involved)
        old, new = self._sampled_alpha, self.alpha[idx]
        offset = torch.logsumexp(new, 0) - torch.logsumexp(old, 0)
        self.alpha[idx] -= offset

    def log_prob(self) -> torch.Tensor:
        """log p of the active path (REINFORCE)."""
        return torch.log_softmax(self.alpha, 0)[self.gates.active]

    def drop_unsampled_grads(self) -> None:
        """Only the active candidate gets a weight update: the others lose their gradient, so SGD
        applies neither momentum nor weight decay to them (in `full` mode they were in the graph)."""
        for k, c in enumerate(self.candidates):
            if self.gates is None or k != self.gates.active:
                for p in c.parameters():
                    p.grad = None
