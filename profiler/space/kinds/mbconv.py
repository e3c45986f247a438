"""`mbconv`: MobileNetV2's inverted residual (1x1 expand, kxk depthwise, 1x1 linear project, identity
skip where stride 1 and in == out), the candidate op of ProxylessNAS. Key:
`expanded_conv-input:HxWxC-output:HxWxC-expand:E-kernel:K-stride:S-idskip:0|1`, E the expansion
ratio."""

from __future__ import annotations

import re

from profiler.errors import UserError
from .base import SHAPE, BlockKind, Glyph, Work, shape_in, shape_out


# Expansion ratios above this are middle channel counts written in the wrong key form.
MAX_RATIO = 64


def _dw(kernel: int) -> str:
    # Kernels outside 3/5/7 count as the nearest: their cost per MAC is closest to it.
    return f"dw{min((3, 5, 7), key=lambda k: abs(k - kernel))}"


def inverted_residual_work(spec, squeeze: int = 0) -> Work:
    """Expansion (absent when the middle width is the input's), depthwise, squeeze-and-excitation
    to `squeeze` channels and back (0: none), projection, and the identity skip's add."""
    hw_in, hw_out = spec.in_h * spec.in_w, spec.out_h * spec.out_w
    mid = spec.middle
    expands = mid != spec.in_c
    se_macs = 2 * mid * squeeze
    return Work(
        {"pointwise": (hw_in * spec.in_c * mid if expands else 0) + hw_out * mid * spec.out_c + se_macs,
         _dw(spec.kernel): hw_out * mid * spec.kernel ** 2},
        hw_in * spec.in_c + (2 * hw_in * mid if expands else 0) + 2 * hw_out * mid
        + (2 * hw_out * mid if squeeze else 0) + hw_out * spec.out_c * (2 if spec.idskip else 1),
        (spec.in_c * mid if expands else 0) + mid * spec.kernel ** 2 + mid * spec.out_c
        + (se_macs + squeeze + mid if squeeze else 0))


class MBConv(BlockKind):
    name = "mbconv"
    pattern = re.compile(rf"expanded_conv-input:{SHAPE}-output:{SHAPE}"
                         r"-expand:(\d+)-kernel:(\d+)-stride:(\d+)-idskip:([01])")

    def key(self, spec) -> str:
        return (f"expanded_conv-input:{shape_in(spec)}-output:{shape_out(spec)}-expand:{spec.expand}"
                f"-kernel:{spec.kernel}-stride:{spec.stride}-idskip:{int(spec.idskip)}")

    def fields(self, match, key) -> dict:
        ih, iw, ic, oh, ow, oc, e, k, s, skip = map(int, match.groups())
        return dict(in_h=ih, in_w=iw, in_c=ic, out_c=oc, kernel=k, stride=s, expand=e,
                    idskip=bool(skip))

    def check(self, spec) -> None:
        if spec.kernel % 2 == 0:
            raise UserError(f"mbconv kernel must be odd, got {spec.kernel}")
        if spec.expand > MAX_RATIO:
            raise UserError(f"expand:{spec.expand} in a key without se/hs is an expansion ratio, "
                            f"above {MAX_RATIO}: a middle channel count belongs in a key with se/hs")

    def work(self, spec) -> Work:
        return inverted_residual_work(spec)

    def glyph(self, spec) -> Glyph:
        return Glyph(f"MB{spec.expand} {spec.kernel}x{spec.kernel}", 1 + spec.expand, spec.kernel)


KIND = MBConv()
