"""`feature_mix`: Once-for-All's MobileNetV3 feature mix after the pool, a 1x1 conv without batch
norm followed by h-swish, on a 1x1 map. Key: `Conv_2-input:1x1xC-output:1x1xC'`."""

from __future__ import annotations

import re

from profiler.errors import UserError
from .base import BlockKind, Glyph, Work


class FeatureMix(BlockKind):
    name = "feature_mix"
    pattern = re.compile(r"Conv_2-input:1x1x(\d+)-output:1x1x(\d+)")

    def key(self, spec) -> str:
        return f"Conv_2-input:1x1x{spec.in_c}-output:1x1x{spec.out_c}"

    def fields(self, match, key) -> dict:
        ic, oc = map(int, match.groups())
        return dict(in_h=1, in_w=1, in_c=ic, out_c=oc)

    def check(self, spec) -> None:
        if (spec.in_h, spec.in_w, spec.kernel, spec.stride) != (1, 1, 1, 1):
            raise UserError("a feature mix is a 1x1 conv on a 1x1 map")

    def work(self, spec) -> Work:
        return Work({"pointwise": spec.in_c * spec.out_c}, spec.in_c + spec.out_c, spec.in_c * spec.out_c)

    def glyph(self, spec) -> Glyph:
        return Glyph("Conv 1x1", 1.5)


KIND = FeatureMix()
