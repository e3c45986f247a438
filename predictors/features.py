"""Features of a block for latency regression: work and memory traffic per kind of operator.

A block's latency is close to linear in the work of each of its operators, with a different cost
per unit of work for each kind (a depthwise 7x7 runs at another rate than a 1x1 conv), plus the
bytes it moves and a fixed per-call cost (the regression's intercept).
"""

from __future__ import annotations

import numpy as np

from profiler.space.blockspec import BlockSpec
from profiler.space.kinds import KINDS

FLOAT = 4  # bytes per activation and weight (float32)

FEATURES = [
    # M MACs by operator (profiler/space/kinds: Work.macs): 1x1 convs and the classifier, full kxk convs
    # (the stem), depthwise convs by kernel size
    "mmacs_pointwise",
    "mmacs_dense",
    "mmacs_dw3",
    "mmacs_dw5",
    "mmacs_dw7",
    "mb_activations",   # activation bytes read and written, in MB
    "mb_weights",       # weight bytes, in MB
]


def block_features(spec: BlockSpec) -> dict[str, float]:
    work = KINDS[spec.kind].work(spec)
    f = dict.fromkeys(FEATURES, 0.0)
    for op, macs in work.macs.items():
        f[f"mmacs_{op}"] += macs / 1e6
    f["mb_activations"] = work.activations * FLOAT / 1e6
    f["mb_weights"] = work.weights * FLOAT / 1e6
    return f


def feature_matrix(specs: list[BlockSpec]) -> np.ndarray:
    return np.array([[block_features(s)[name] for name in FEATURES] for s in specs], dtype=float)
