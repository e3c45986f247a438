"""Block configurations sampled around a search space, so a predictor fitted to them prices widths
and resolutions that no table holds.

Around a space are its variants at width multipliers 0.75 to 1.4 and at resolutions from about
0.7x the space's up to it (160 to 224 for a 224-pixel space): the same kinds of blocks (kernels,
expansions, strides, skips) at other channel counts and sizes. `sample_blocks` draws distinct
blocks of those variants that the space itself does not have.
"""

from __future__ import annotations

import random
from dataclasses import replace

from profiler.errors import UserError
from .blockspec import BlockSpec
from .spaces import SearchSpace

WIDTH_MULTS = (0.75, 1.0, 1.3, 1.4)


def resolutions(space: SearchSpace) -> list[int]:
    lo = space.resolution * 5 // 7
    return sorted({r for r in range(lo, space.resolution + 1) if r % 16 == 0} | {space.resolution})


def blocks_around(space: SearchSpace) -> list[BlockSpec]:
    """The distinct blocks of the space's variants that the space itself does not have."""
    own = {b.key for b in space.blocks()}
    pool: dict[str, BlockSpec] = {}
    for r in resolutions(space):
        for w in WIDTH_MULTS:
            variant = replace(space, resolution=r, width_mult=space.width_mult * w)
            pool.update((b.key, b) for b in variant.blocks() if b.key not in own)
    return sorted(pool.values(), key=lambda b: b.key)


def sample_blocks(space: SearchSpace, n: int, seed: int) -> list[BlockSpec]:
    pool = blocks_around(space)
    if n > len(pool):
        raise UserError(f"space {space.name!r} has {len(pool)} blocks around it that it does not "
                        f"have itself; --sample at most that")
    return random.Random(seed).sample(pool, n)
