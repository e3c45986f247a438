"""What every block kind is made of: the BlockKind interface, the work a block does, its glyph,
and the shape helpers of key codecs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from profiler.errors import UserError

SHAPE = r"(\d+)x(\d+)x(\d+)"


def out_size(size: int, stride: int) -> int:
    """Output spatial size of a 'same'-padded conv: ceil(in / stride)."""
    return -(-size // stride)


def make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNet's rounding of a width: a multiple of `divisor`, never below 90 % of the value."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def stride_for(in_size: int, out: int, key: str) -> int:
    for stride in (1, 2, 3, 4):
        if out_size(in_size, stride) == out:
            return stride
    raise UserError(f"block key {key!r}: no stride maps input size {in_size} to {out}")


def shape_in(spec) -> str:
    return f"{spec.in_h}x{spec.in_w}x{spec.in_c}"


def shape_out(spec) -> str:
    return f"{spec.out_h}x{spec.out_w}x{spec.out_c}"


@dataclass(frozen=True)
class Work:
    """What one block computes: multiply-accumulates by operator (`pointwise` 1x1 convs and linear
    layers, `dense` full kxk convs, `dw3`/`dw5`/`dw7` depthwise convs by kernel), and the activation
    elements it reads and writes and the weights it holds."""
    macs: dict[str, float]
    activations: int
    weights: int


NO_WORK = Work({}, 0, 0)


@dataclass(frozen=True)
class Glyph:
    """A bar of the architecture figure: its label, its height in units, and the kernel whose
    colour it takes (None: the grey of fixed layers)."""
    label: str
    height: float
    kernel: int | None = None


class BlockKind:
    name: str
    pattern: re.Pattern
    profiled = True  # False: costs nothing and is never measured (`zero`)
    extras: tuple[str, ...] = ()  # which of BlockSpec's mid, se, hs this kind may set
    spatial = True   # False: the output is 1x1 whatever the input (the classifier)

    def key(self, spec) -> str:
        raise NotImplementedError

    def fields(self, match: re.Match, key: str) -> dict:
        """BlockSpec fields (all but `kind`) from a key this kind's pattern matched."""
        raise NotImplementedError

    def check(self, spec) -> None:
        """Refuse settings this kind cannot have (UserError)."""

    def work(self, spec) -> Work:
        raise NotImplementedError

    def glyph(self, spec) -> Glyph | None:
        """None: the layer is drawn as skipped."""
        raise NotImplementedError
