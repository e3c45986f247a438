"""`mbconv3`: MobileNetV3's inverted residual, the block of Once-for-All's spaces: an MBConv whose
middle width is given as a channel count, with optional squeeze-and-excitation after the depthwise
conv and h-swish in place of ReLU. Key, as Once-for-All's published tables write it:
`expanded_conv-input:HxWxC-output:HxWxC-expand:MID-kernel:K-stride:S-idskip:0|1-se:0|1-hs:0|1`.

In these keys `expand:` is the middle channel count, not a ratio. A key without the `se`/`hs`
fields is an `mbconv` key (expand is a ratio), so the two conventions are never confused."""

from __future__ import annotations

import re

from profiler.errors import UserError
from .base import SHAPE, BlockKind, Glyph, Work, make_divisible, shape_in, shape_out
from .mbconv import inverted_residual_work


def squeeze_width(mid: int) -> int:
    """Squeeze-and-excitation's inner width: a quarter of the middle width (Once-for-All)."""
    return make_divisible(mid // 4)


class MBConv3(BlockKind):
    name = "mbconv3"
    extras = ("mid", "se", "hs")
    pattern = re.compile(rf"expanded_conv-input:{SHAPE}-output:{SHAPE}"
                         r"-expand:(\d+)-kernel:(\d+)-stride:(\d+)-idskip:([01])-se:([01])-hs:([01])")

    def key(self, spec) -> str:
        return (f"expanded_conv-input:{shape_in(spec)}-output:{shape_out(spec)}-expand:{spec.middle}"
                f"-kernel:{spec.kernel}-stride:{spec.stride}-idskip:{int(spec.idskip)}"
                f"-se:{int(spec.se)}-hs:{int(spec.hs)}")

    def fields(self, match, key) -> dict:
        ih, iw, ic, oh, ow, oc, mid, k, s, skip, se, hs = map(int, match.groups())
        return dict(in_h=ih, in_w=iw, in_c=ic, out_c=oc, kernel=k, stride=s, mid=mid,
                    idskip=bool(skip), se=bool(se), hs=bool(hs))

    def check(self, spec) -> None:
        if not spec.mid:
            raise UserError("mbconv3 blocks need their middle channel count (mid)")
        if spec.expand != 1:
            raise UserError("mbconv3 blocks give their middle width as mid, not as an expand ratio")
        if spec.kernel % 2 == 0:
            raise UserError(f"mbconv3 kernel must be odd, got {spec.kernel}")
        if spec.mid < spec.in_c:
            raise UserError(f"expand:{spec.mid} in a key with se/hs is the middle channel count, "
                            f"fewer than the {spec.in_c} input channels: an expand ratio belongs in "
                            f"a key without se/hs")

    def work(self, spec) -> Work:
        return inverted_residual_work(spec, squeeze_width(spec.mid) if spec.se else 0)

    def glyph(self, spec) -> Glyph:
        ratio = spec.mid / spec.in_c
        extras = "".join([" SE" if spec.se else "", " HS" if spec.hs else ""])
        return Glyph(f"MB{ratio:.3g} {spec.kernel}x{spec.kernel}{extras}", 1 + ratio, spec.kernel)


KIND = MBConv3()
