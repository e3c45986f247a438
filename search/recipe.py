"""The training recipe shared by the supernet's weight steps and the retraining of a derived network.

ProxylessNAS's recipe where it applies: SGD with Nesterov momentum, weight decay on convolution and
linear weights only (not on batch-norm scales and shifts, nor biases: decaying them only fights the
normalisation), label smoothing 0.1 and a cosine learning rate. Two additions make a deep preset
learn from the first step at a small batch (a 21-layer supernet at batch 32 and learning rate 0.1
diverged without them, training loss 8.4 against ln 1000 = 6.9 at the start):

- a linear learning-rate warm-up over the first epoch (Goyal et al., 2017), so the early steps, taken
  while batch-norm statistics and the head are still random, are small;
- the last batch norm of every residual block starts at zero scale, so each such block starts as
  the identity and a deep network starts as a shallow one (the same paper's zero-gamma).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from profiler.blocks import MBConv

LABEL_SMOOTHING = 0.1


def init_for_training(net: nn.Module) -> nn.Module:
    """Zero the scale of the last batch norm of every residual block of `net`."""
    for module in net.modules():
        if isinstance(module, MBConv) and module.idskip:
            nn.init.zeros_(module.project[1].weight)
    return net


def sgd(params, lr: float, momentum: float, weight_decay: float) -> torch.optim.SGD:
    """SGD with Nesterov momentum; weight decay on weights of two or more dimensions only."""
    params = list(params)
    decay = [p for p in params if p.ndim > 1]
    rest = [p for p in params if p.ndim <= 1]
    return torch.optim.SGD([{"params": decay, "weight_decay": weight_decay},
                            {"params": rest, "weight_decay": 0.0}],
                           lr=lr, momentum=momentum, nesterov=True)


def learning_rate(base: float, step: int, total: int, warmup: int = 0) -> float:
    """Cosine from `base` to 0 over `total` steps, after a linear ramp over the first `warmup`."""
    if step < warmup:
        return base * (step + 1) / warmup
    return 0.5 * base * (1 + math.cos(math.pi * step / max(total, 1)))
