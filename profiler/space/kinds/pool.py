"""`pool`: global average pooling on its own, as Once-for-All's MobileNetV3 head has it before its
last 1x1 conv. Key: `AvgPool2D-input:HxWxC-output:1x1xC`."""

from __future__ import annotations

import re

from profiler.errors import UserError
from .base import SHAPE, BlockKind, Glyph, Work, shape_in, shape_out


class Pool(BlockKind):
    name = "pool"
    pattern = re.compile(rf"AvgPool2D-input:{SHAPE}-output:1x1x(\d+)")
    spatial = False

    def key(self, spec) -> str:
        return f"AvgPool2D-input:{shape_in(spec)}-output:{shape_out(spec)}"

    def fields(self, match, key) -> dict:
        ih, iw, ic, oc = map(int, match.groups())
        return dict(in_h=ih, in_w=iw, in_c=ic, out_c=oc)

    def check(self, spec) -> None:
        if spec.in_c != spec.out_c:
            raise UserError("a pool keeps its channels: out_c must equal in_c")

    def work(self, spec) -> Work:
        return Work({}, spec.in_h * spec.in_w * spec.in_c + spec.out_c, 0)

    def glyph(self, spec) -> Glyph:
        return Glyph("Pool", 1.5)


KIND = Pool()
