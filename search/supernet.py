"""Supernet: a SearchSpace as one network whose every searchable layer is a MixedOp.

The fixed layers (the space's prefix and head) and every candidate are the
foundation's block modules, so a derived architecture is exactly `build_network(space, choices)`.
"""

from __future__ import annotations

import torch
from torch import nn

from profiler.build.blocks import build_block
from profiler.space.spaces import SearchSpace

from .gates import GateSampler
from .mixed_op import MixedOp


class Supernet(nn.Module):
    def __init__(self, space: SearchSpace):
        super().__init__()
        self.space = space
        self.prefix = nn.Sequential(*map(build_block, space.prefix()))
        self.layers = nn.ModuleList(
            MixedOp({op: build_block(spec) for op, spec in layer.candidates.items()})
            for layer in space.layers())
        self.head = nn.Sequential(*map(build_block, space.head()))

    def forward(self, x, all_parameters: bool = False):
        """The sampled paths on `x`. `all_parameters`: every parameter also enters the graph with
        weight zero, so each gets a gradient (zero where unused), which DistributedDataParallel
        waits for; the unsampled ones are dropped before the optimizer step
        (drop_unsampled_grads). It costs one read of the weights, not a search of the graph as
        find_unused_parameters does."""
        out = self.prefix(x)
        for op in self.layers:
            out = op(out)
        out = self.head(out)
        if all_parameters:
            out = out + 0.0 * sum(p.sum() for p in self.parameters())
        return out

    def arch_parameters(self) -> list[nn.Parameter]:
        return [op.alpha for op in self.layers]

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def probabilities(self) -> list[torch.Tensor]:
        """softmax(alpha) of every layer, differentiable (what ExpectedLatency takes)."""
        return [op.probs() for op in self.layers]

    def sample_paths(self, sampler: GateSampler) -> None:
        for op in self.layers:
            op.sample(sampler.path(op.alpha))

    def sample_arch(self, sampler: GateSampler) -> None:
        for op in self.layers:
            op.sample(sampler.arch(op.alpha))

    def fix(self, choices: list[str]) -> None:
        for op, name in zip(self.layers, self.space.check_choices(choices)):
            op.fix(name)

    @torch.no_grad()
    def recalibrate_batch_norm(self, batches) -> None:
        """Batch-norm statistics for the fixed path, from `batches` of training images: running
        statistics gathered while every step ran another path do not fit any one of them (SPOS,
        Guo et al. 2020, found the same), so a derived architecture evaluated with them scores near
        chance. Only the norms on the path are reset; the others keep theirs."""
        on_path = [self.prefix, self.head] + \
            [op.candidates[op.gates.active] for op in self.layers]
        norms = [m for block in on_path for m in block.modules()
                 if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        saved = [(m.momentum, m.training) for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the batches
            m.train()
        for x, _ in batches:
            self(x)
        for m, (momentum, training) in zip(norms, saved):
            m.momentum = momentum
            m.train(training)

    def set_arch_grad(self) -> None:
        for op in self.layers:
            op.set_arch_grad()

    def rescale_alpha(self) -> None:
        for op in self.layers:
            op.rescale_alpha()

    def drop_unsampled_grads(self) -> None:
        for op in self.layers:
            op.drop_unsampled_grads()

    def sampled(self) -> list[str]:
        return [op.names[op.gates.active] for op in self.layers]

    def log_prob(self) -> torch.Tensor:
        return sum(op.log_prob() for op in self.layers)

    def derive(self) -> list[str]:
        """The most likely architecture: the argmax path of every layer."""
        return [op.chosen() for op in self.layers]

    def entropies(self) -> list[float]:
        return [op.entropy() for op in self.layers]
