"""Torch modules for BlockSpecs: what is profiled, exported, and trained by the search. BUILDERS
holds, by kind name, the module that runs each block kind (profiler/space/kinds/): a new kind adds
its builder here."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from profiler.space.blockspec import BlockSpec
from profiler.space.kinds import KINDS
from profiler.space.kinds.mbconv3 import squeeze_width
from profiler.space.spaces import SearchSpace


def conv_bn(in_c: int, out_c: int, kernel: int, stride: int = 1, groups: int = 1,
            act: bool = True, hs: bool = False) -> nn.Sequential:
    layers = [nn.Conv2d(in_c, out_c, kernel, stride, kernel // 2, groups=groups, bias=False),
              nn.BatchNorm2d(out_c)]
    if act:
        layers.append(nn.Hardswish(inplace=True) if hs else nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation as MobileNetV3 and Once-for-All have it: average pool, 1x1 conv to
    the squeeze width + ReLU, 1x1 conv back + hard sigmoid, a per-channel scale of the input."""

    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.expand = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x):
        scale = nn.functional.adaptive_avg_pool2d(x, 1)
        scale = nn.functional.hardsigmoid(self.expand(nn.functional.relu(self.reduce(scale))))
        return x * scale


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand + BN + act (absent when the middle width is the input's), kxk
    depthwise + BN + act, squeeze-and-excitation where the spec says so, 1x1 project + BN, identity
    skip where the spec says so; act is ReLU6, or h-swish where the spec says so."""

    def __init__(self, spec: BlockSpec):
        super().__init__()
        mid = spec.middle
        self.expand = conv_bn(spec.in_c, mid, 1, hs=spec.hs) if mid != spec.in_c else nn.Identity()
        self.depthwise = conv_bn(mid, mid, spec.kernel, spec.stride, groups=mid, hs=spec.hs)
        self.se = SqueezeExcite(mid, squeeze_width(mid)) if spec.se else nn.Identity()
        self.project = conv_bn(mid, spec.out_c, 1, act=False)
        self.idskip = spec.idskip

    def forward(self, x):
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return x + y if self.idskip else y


class Logits(nn.Module):
    def __init__(self, spec: BlockSpec):
        super().__init__()
        self.fc = nn.Linear(spec.in_c, spec.out_c)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


BUILDERS: dict[str, Callable[[BlockSpec], nn.Module]] = {
    # The stem (kernel 3) and the feature mix (kernel 1); h-swish where the spec says so.
    "conv": lambda spec: conv_bn(spec.in_c, spec.out_c, spec.kernel, spec.stride, hs=spec.hs),
    "mbconv": MBConv,
    "mbconv3": MBConv,
    "pool": lambda spec: nn.AdaptiveAvgPool2d(1),
    # Once-for-All's final expand: a 1x1 conv without batch norm + h-swish, on the pooled features.
    "feature_mix": lambda spec: nn.Sequential(nn.Conv2d(spec.in_c, spec.out_c, 1, bias=False),
                                              nn.Hardswish()),
    "linear": Logits,
    "zero": lambda spec: nn.Identity(),
}
assert set(BUILDERS) == set(KINDS), "every block kind has a builder"


def build_block(spec: BlockSpec) -> nn.Module:
    return BUILDERS[spec.kind](spec)


def input_shape(spec: BlockSpec, batch: int = 1) -> tuple[int, int, int, int]:
    return (batch, spec.in_c, spec.in_h, spec.in_w)


def build_network(space: SearchSpace, choices: list[str]) -> nn.Sequential:
    return nn.Sequential(*[build_block(s) for s in space.network(choices)])
