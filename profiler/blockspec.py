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

import re
from dataclasses import dataclass

from .errors import UserError

KINDS = ("conv", "mbconv", "linear", "zero")

# Output spatial size of a 'same'-padded conv: ceil(in / stride).
def out_size(size: int, stride: int) -> int:
    return -(-size // stride)


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

    def __post_init__(self):
        if self.kind not in KINDS:
            raise UserError(f"unknown block kind {self.kind!r}; known: {', '.join(KINDS)}")
        for name in ("in_h", "in_w", "in_c", "out_c", "kernel", "stride", "expand"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UserError(f"block {name} must be a positive integer, got {value!r}")
        if self.kind == "conv" and self.kernel not in (1, 3):
            # The published key syntax names only the 3x3 stem (Conv) and the 1x1 feature mix (Conv_1).
            raise UserError(f"conv blocks have kernel 3 (stem) or 1 (feature mix), got {self.kernel}")
        if self.kind == "mbconv" and self.kernel % 2 == 0:
            raise UserError(f"mbconv kernel must be odd, got {self.kernel}")
        if self.kind == "zero" and (self.stride != 1 or self.in_c != self.out_c):
            raise UserError("a zero op needs stride 1 and as many output channels as input channels")
        if self.idskip and (self.stride != 1 or self.in_c != self.out_c):
            raise UserError("an identity skip needs stride 1 and in_c == out_c")

    @property
    def out_h(self) -> int:
        return 1 if self.kind == "linear" else out_size(self.in_h, self.stride)

    @property
    def out_w(self) -> int:
        return 1 if self.kind == "linear" else out_size(self.in_w, self.stride)

    @property
    def key(self) -> str:
        return format_key(self)


def _shape(h: int, w: int, c: int) -> str:
    return f"{h}x{w}x{c}"


def format_key(spec: BlockSpec) -> str:
    inp = _shape(spec.in_h, spec.in_w, spec.in_c)
    out = _shape(spec.out_h, spec.out_w, spec.out_c)
    if spec.kind == "conv":
        name = "Conv" if spec.kernel == 3 else "Conv_1"
        return f"{name}-input:{inp}-output:{out}"
    if spec.kind == "mbconv":
        return (f"expanded_conv-input:{inp}-output:{out}-expand:{spec.expand}-kernel:{spec.kernel}"
                f"-stride:{spec.stride}-idskip:{int(spec.idskip)}")
    if spec.kind == "linear":
        return f"Logits-input:{inp}-output:{spec.out_c}"
    return f"Zero-input:{inp}-output:{out}"


_SHAPE = r"(\d+)x(\d+)x(\d+)"
_PATTERNS = {
    "conv": re.compile(rf"(Conv|Conv_1)-input:{_SHAPE}-output:{_SHAPE}"),
    "mbconv": re.compile(rf"expanded_conv-input:{_SHAPE}-output:{_SHAPE}"
                         r"-expand:(\d+)-kernel:(\d+)-stride:(\d+)-idskip:([01])"),
    "linear": re.compile(rf"Logits-input:{_SHAPE}-output:(\d+)"),
    "zero": re.compile(rf"Zero-input:{_SHAPE}-output:{_SHAPE}"),
}


def _stride(in_size: int, out: int, key: str) -> int:
    for stride in (1, 2, 3, 4):
        if out_size(in_size, stride) == out:
            return stride
    raise UserError(f"block key {key!r}: no stride maps input size {in_size} to {out}")


def parse_key(key: str) -> BlockSpec:
    """Parse a canonical key; the result's .key is the input again (anything else is refused)."""
    key = key.strip()
    for kind, pattern in _PATTERNS.items():
        m = pattern.fullmatch(key)
        if not m:
            continue
        g = m.groups()
        if kind == "conv":
            ih, iw, ic, oh, ow, oc = map(int, g[1:])
            spec = BlockSpec("conv", ih, iw, ic, oc, kernel=3 if g[0] == "Conv" else 1,
                             stride=_stride(ih, oh, key))
        elif kind == "mbconv":
            ih, iw, ic, oh, ow, oc, e, k, s, skip = map(int, g)
            spec = BlockSpec("mbconv", ih, iw, ic, oc, kernel=k, stride=s, expand=e, idskip=bool(skip))
        elif kind == "linear":
            ih, iw, ic, oc = map(int, g)
            spec = BlockSpec("linear", ih, iw, ic, oc)
        else:
            ih, iw, ic, oh, ow, oc = map(int, g)
            spec = BlockSpec("zero", ih, iw, ic, oc)
        if spec.key != key:
            raise UserError(f"block key {key!r} is inconsistent (its shapes imply {spec.key!r})")
        return spec
    raise UserError(f"unparseable block key {key!r}")
