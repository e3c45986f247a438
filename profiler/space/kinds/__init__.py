"""Block kinds: what pxnas knows about one kind of block, one module per kind.

A kind holds its blocks' key codec (the syntax of the published ProxylessNAS / Once-for-All lookup
tables), the checks of its settings, the work a block does (the predictors' features), the glyph
the architecture figure draws (the interface: base.py). A new kind is a new module here,
registered in KINDS below; BlockSpec, tables, predictors, the search and the figure ask the kind.

The torch module of each kind is built in profiler/build/blocks.py (its BUILDERS, by kind name):
nothing here imports torch or the build layer, so reading a key or a table never imports torch.
"""

from __future__ import annotations

from profiler.errors import UserError

from . import conv, feature_mix, linear, mbconv, mbconv3, pool, zero
from .base import BlockKind

KINDS: dict[str, BlockKind] = {k.name: k for k in (conv.KIND, mbconv.KIND, mbconv3.KIND, pool.KIND,
                                                     feature_mix.KIND, linear.KIND, zero.KIND)}


def kind_of(name: str) -> BlockKind:
    try:
        return KINDS[name]
    except KeyError:
        raise UserError(f"unknown block kind {name!r}; known: {', '.join(KINDS)}") from None
