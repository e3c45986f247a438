"""`zero`: the op that skips a searchable layer (its output is its input): no work, 0 ms, never
measured. Key (pxnas's own; the published tables have none): `Zero-input:HxWxC-output:HxWxC`."""

from __future__ import annotations

import re

from profiler.errors import UserError
from .base import NO_WORK, SHAPE, BlockKind, Work, shape_in, shape_out


class Zero(BlockKind):
    name = "zero"
    pattern = re.compile(rf"Zero-input:{SHAPE}-output:{SHAPE}")
    profiled = False

    def key(self, spec) -> str:
        return f"Zero-input:{shape_in(spec)}-output:{shape_out(spec)}"

    def fields(self, match, key) -> dict:
        ih, iw, ic, oh, ow, oc = map(int, match.groups())
        return dict(in_h=ih, in_w=iw, in_c=ic, out_c=oc)

    def check(self, spec) -> None:
        if spec.stride != 1 or spec.in_c != spec.out_c:
            raise UserError("a zero op needs stride 1 and as many output channels as input channels")

    def work(self, spec) -> Work:
        return NO_WORK

    def glyph(self, spec) -> None:
        return None


KIND = Zero()
