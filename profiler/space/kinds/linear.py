"""`linear`: global average pool + the fully connected classifier. Key:
`Logits-input:HxWxC-output:CLASSES`."""

from __future__ import annotations

import re

from .base import SHAPE, BlockKind, Glyph, Work, shape_in


class Linear(BlockKind):
    name = "linear"
    pattern = re.compile(rf"Logits-input:{SHAPE}-output:(\d+)")
    spatial = False

    def key(self, spec) -> str:
        return f"Logits-input:{shape_in(spec)}-output:{spec.out_c}"

    def fields(self, match, key) -> dict:
        ih, iw, ic, oc = map(int, match.groups())
        return dict(in_h=ih, in_w=iw, in_c=ic, out_c=oc)

    def work(self, spec) -> Work:
        return Work({"pointwise": spec.in_c * spec.out_c},
                    spec.in_h * spec.in_w * spec.in_c + spec.in_c + spec.out_c,
                    spec.in_c * spec.out_c)

    def glyph(self, spec) -> Glyph:
        return Glyph("Pool FC", 1.5)


KIND = Linear()
