"""The training recipe shared by the supernet's weight steps and the retraining of a derived network.

ProxylessNAS's recipe where it applies: SGD with Nesterov momentum, weight decay on convolution and
linear weights only (not on batch-norm scales and shifts, nor biases: decaying them only fights the
normalisation), label smoothing 0.1 and a cosine learning rate. Three additions make a supernet
learn in the few hundred steps of a search on a small dataset:

- the candidates of a searchable layer start as one function (`align_candidates`). The paper draws
  every candidate's weights independently, so each of the 6^N paths starts as a different random
  network and the layers after a switch see unrelated features at every step: with two kernel sizes
  per layer a 21-layer supernet reached 0.41 training accuracy in 150 steps where one kernel size
  reached 0.97, and with all six candidates it stayed at chance. Aligned, the candidates still train
  apart (each keeps its own weights) but from a common start;
- a learning rate that falls with depth (`default_lr`): the shared layers get a gradient from a
  different path at every step, and a deep supernet diverged at rates a fixed network of the same
  depth trains well with;
- a linear learning-rate warm-up over the first epoch (Goyal et al., 2017), and the last batch norm
  of every residual block at zero scale, so a deep network starts as a shallow one (zero-gamma).
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from profiler.build.blocks import MBConv, SqueezeExcite

from .mixed_op import MixedOp

LABEL_SMOOTHING = 0.1
# The weight learning rate at batch 32 is LR_DEPTH / (searchable layers), scaled linearly with the
# batch. Measured on digits (150-300 steps, all candidates aligned): `tiny` (8 layers) learns at
# 0.01-0.1 and best near 0.02; `proxyless-mobile` (21 layers) best at 0.003-0.005, slower at 0.01,
# and stuck below 0.3 training accuracy at 0.02.
LR_DEPTH = 0.15
LR_BATCH = 32


def default_lr(layers: int, batch_size: int) -> float:
    return LR_DEPTH / max(layers, 1) * batch_size / LR_BATCH


def init_for_training(net: nn.Module) -> nn.Module:
    """Zero the scale of the last batch norm of every residual block of `net`, and start the
    candidates of every searchable layer as one function."""
    for module in net.modules():
        if isinstance(module, MBConv) and module.idskip:
            nn.init.zeros_(module.project[1].weight)
        if isinstance(module, MixedOp):
            align_candidates(module)
    return net


def _mid_and_kernel(block: MBConv) -> tuple[int, int]:
    weight = block.depthwise[0].weight  # mid x 1 x k x k
    return weight.shape[0], weight.shape[-1]


@torch.no_grad()
def align_candidates(op: MixedOp) -> None:
    """Make every MBConv candidate of `op` compute what its smallest one computes: the smallest
    one's depthwise kernel at the centre of every larger kernel (zeros around it), its expansion
    channels (and squeeze-and-excitation) first in every wider candidate, and the extra channels
    projected with zero weights. The
    extra weights still get gradients, so each candidate grows into its own function as it trains.
    Candidates that cannot hold the smallest one (another in/out shape) are left as drawn."""
    blocks = [c for c in op.candidates if isinstance(c, MBConv)]
    if len(blocks) < 2:
        return
    ref = min(blocks, key=_mid_and_kernel)
    mid, k = _mid_and_kernel(ref)
    for block in blocks:
        m, kk = _mid_and_kernel(block)
        if block is ref or m < mid or kk < k \
                or isinstance(block.expand, nn.Identity) != isinstance(ref.expand, nn.Identity):
            continue
        if not isinstance(ref.expand, nn.Identity):
            block.expand[0].weight[:mid] = ref.expand[0].weight
        at = (kk - k) // 2
        block.depthwise[0].weight[:mid] = 0.0
        block.depthwise[0].weight[:mid, :, at:at + k, at:at + k] = ref.depthwise[0].weight
        block.project[0].weight[:, :mid] = ref.project[0].weight
        block.project[0].weight[:, mid:] = 0.0
        if isinstance(ref.se, SqueezeExcite) and isinstance(block.se, SqueezeExcite):
            _align_squeeze_excite(ref.se, block.se, mid)
        # Batch norms start equal (scale 1, shift 0, or zero-gamma for both).


def _align_squeeze_excite(ref: SqueezeExcite, se: SqueezeExcite, mid: int) -> None:
    """The reference's scales on the first `mid` channels: its squeeze weights in the top-left
    corner, and no path from the extra channels or extra squeeze units into them."""
    squeeze = ref.reduce.out_channels
    se.reduce.weight[:squeeze] = 0.0
    se.reduce.weight[:squeeze, :mid] = ref.reduce.weight
    se.reduce.bias[:squeeze] = ref.reduce.bias
    se.expand.weight[:mid] = 0.0
    se.expand.weight[:mid, :squeeze] = ref.expand.weight
    se.expand.bias[:mid] = ref.expand.bias


def sgd(params, lr: float, momentum: float, weight_decay: float) -> torch.optim.SGD:
    """SGD with Nesterov momentum; weight decay on weights of two or more dimensions only."""
    params = list(params)
    decay = [p for p in params if p.ndim > 1]
    rest = [p for p in params if p.ndim <= 1]
    return torch.optim.SGD([{"params": decay, "weight_decay": weight_decay},
                            {"params": rest, "weight_decay": 0.0}],
                           lr=lr, momentum=momentum, nesterov=True)


def lr_factor(step: int, phases: tuple[int, ...], warmup: int = 0) -> float:
    """The learning rate at `step` as a multiple of the base rate: a linear ramp over the first
    `warmup` steps of all, then a cosine from 1 to 0 over each phase's steps in turn (the search
    restarts it when the architecture steps begin)."""
    if step < warmup:
        return (step + 1) / warmup
    for length in phases:
        if step < length:
            return 0.5 * (1 + math.cos(math.pi * step / length))
        step -= length
    return 0.0


def schedule(optimizer: torch.optim.Optimizer, phases: list[int],
             warmup: int = 0) -> torch.optim.lr_scheduler.LambdaLR:
    """`lr_factor` as torch's scheduler, stepped after every optimizer step; its state (the step)
    is part of a checkpoint."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, functools.partial(lr_factor, phases=tuple(phases), warmup=warmup))
