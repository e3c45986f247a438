"""BlockSpec: one block of a network, and its canonical key.

The key is the single name of a block everywhere in pxnas (tables, predictors, search). It uses the
syntax of the published ProxylessNAS / Once-for-All lookup tables, so their tables import as they are:

    Conv-input:224x224x3-output:112x112x32                       3x3 stem conv + BN + ReLU6
    expanded_conv-input:112x112x16-output:56x56x24-expand:3-kernel:5-stride:2-idskip:0   MBConv
    Conv_1-input:7x7x320-output:7x7x1280                          1x1 feature-mix conv + BN + ReLU6
    Logits-input:7x7x1280-output:1000                             global average pool + linear
    Zero-input:56x56x24-output:56x56x24                           the `zero` op (pxnas's own; 0 ms)
"""

from __future__ import annotations

from dataclasses import dataclass

from profiler.errors import UserError
from .kinds import KINDS, kind_of
from .kinds.base import out_size  # noqa: F401  (out_size is part of this module's API)


@dataclass(frozen=True)
class BlockSpec:
    kind: str
    in_h: int
    in_w: int
    in_c: int
    out_c: int
    kernel: int = 1
    stride: int = 1
    expand: int = 1
    idskip: bool = False
    # MobileNetV3 blocks (kind mbconv3): the middle channel count, squeeze-and-excitation, h-swish.
    mid: int = 0
    se: bool = False
    hs: bool = False

    def __post_init__(self):
        kind = kind_of(self.kind)
        for name in ("in_h", "in_w", "in_c", "out_c", "kernel", "stride", "expand"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UserError(f"block {name} must be a positive integer, got {value!r}")
        if not isinstance(self.mid, int) or isinstance(self.mid, bool) or self.mid < 0:
            raise UserError(f"block mid must be a non-negative integer, got {self.mid!r}")
        for name in ("mid", "se", "hs"):
            if getattr(self, name) and name not in kind.extras:
                raise UserError(f"{self.kind} blocks have no {name}")
        kind.check(self)
        if self.idskip and (self.stride != 1 or self.in_c != self.out_c):
            raise UserError("an identity skip needs stride 1 and in_c == out_c")

    @property
    def out_h(self) -> int:
        return out_size(self.in_h, self.stride) if KINDS[self.kind].spatial else 1

    @property
    def out_w(self) -> int:
        return out_size(self.in_w, self.stride) if KINDS[self.kind].spatial else 1

    @property
    def key(self) -> str:
        return format_key(self)

    @property
    def middle(self) -> int:
        """Channels between the expansion and the projection."""
        return self.mid or self.in_c * self.expand

    @property
    def profiled(self) -> bool:
        """False for blocks that cost nothing and are never measured (`zero`)."""
        return KINDS[self.kind].profiled


def format_key(spec: BlockSpec) -> str:
    return KINDS[spec.kind].key(spec)


def parse_key(key: str) -> BlockSpec:
    """Parse a canonical key; the result's .key is the input again (anything else is refused)."""
    key = key.strip()
    for name, kind in KINDS.items():
        m = kind.pattern.fullmatch(key)
        if not m:
            continue
        spec = BlockSpec(name, **kind.fields(m, key))
        if spec.key != key:
            raise UserError(f"block key {key!r} is inconsistent (its shapes imply {spec.key!r})")
        return spec
    raise UserError(f"unparseable block key {key!r}")
