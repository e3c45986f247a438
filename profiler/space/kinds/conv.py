"""`conv`: a full convolution + batch norm + ReLU6 (h-swish where the spec says so). The published
key syntax names two of them: the 3x3 stem (`Conv`) and the 1x1 feature mix (`Conv_1`). Their keys
do not say the activation (Once-for-All's tables use these names for h-swish convs too): a key
parses to the ReLU6 form, and the measured module is the space's."""

from __future__ import annotations

import re

from profiler.errors import UserError
from .base import SHAPE, BlockKind, Glyph, Work, shape_in, shape_out, stride_for


class Conv(BlockKind):
    name = "conv"
    extras = ("hs",)
    pattern = re.compile(rf"(Conv|Conv_1)-input:{SHAPE}-output:{SHAPE}")

    def key(self, spec) -> str:
        name = "Conv" if spec.kernel == 3 else "Conv_1"
        return f"{name}-input:{shape_in(spec)}-output:{shape_out(spec)}"

    def fields(self, match, key) -> dict:
        ih, iw, ic, oh, ow, oc = map(int, match.groups()[1:])
        return dict(in_h=ih, in_w=iw, in_c=ic, out_c=oc, kernel=3 if match[1] == "Conv" else 1,
                    stride=stride_for(ih, oh, key))

    def check(self, spec) -> None:
        if spec.kernel not in (1, 3):
            raise UserError(f"conv blocks have kernel 3 (stem) or 1 (feature mix), got {spec.kernel}")

    def work(self, spec) -> Work:
        hw_in, hw_out = spec.in_h * spec.in_w, spec.out_h * spec.out_w
        macs = hw_out * spec.out_c * spec.in_c * spec.kernel ** 2
        return Work({"pointwise" if spec.kernel == 1 else "dense": macs},
                    hw_in * spec.in_c + hw_out * spec.out_c,
                    spec.out_c * spec.in_c * spec.kernel ** 2)

    def glyph(self, spec) -> Glyph:
        return Glyph(f"Conv {spec.kernel}x{spec.kernel}", 1.5)


KIND = Conv()
