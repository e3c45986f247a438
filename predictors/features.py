"""Features of a block for latency regression: work and memory traffic per kind of operator.

A block's latency is close to linear in the work of each of its operators, with a different cost
per unit of work for each kind (a depthwise 7x7 runs at another rate than a 1x1 conv), plus the
bytes it moves and a fixed per-call cost (the regression's intercept).
"""

from __future__ import annotations

import numpy as np

from profiler.blockspec import BlockSpec

FLOAT = 4  # bytes per activation and weight (float32)

FEATURES = [
    "mmacs_pointwise",  # 1x1 convs (expand, project, feature mix) and the classifier, in M MACs
    "mmacs_dense",      # full kxk convs (the stem)
    "mmacs_dw3",        # depthwise convs by kernel size
    "mmacs_dw5",
    "mmacs_dw7",
    "mb_activations",   # activation bytes read and written, in MB
    "mb_weights",       # weight bytes, in MB
]


def _dw_feature(kernel: int) -> str:
    # Kernels outside 3/5/7 count as the nearest: their cost per MAC is closest to it.
    return f"mmacs_dw{min((3, 5, 7), key=lambda k: abs(k - kernel))}"


def block_features(spec: BlockSpec) -> dict[str, float]:
    f = dict.fromkeys(FEATURES, 0.0)
    hw_in, hw_out = spec.in_h * spec.in_w, spec.out_h * spec.out_w
    if spec.kind == "conv":
        macs = hw_out * spec.out_c * spec.in_c * spec.kernel ** 2
        f["mmacs_pointwise" if spec.kernel == 1 else "mmacs_dense"] += macs / 1e6
        acts = hw_in * spec.in_c + hw_out * spec.out_c
        weights = spec.out_c * spec.in_c * spec.kernel ** 2
    elif spec.kind == "mbconv":
        mid = spec.in_c * spec.expand
        expand = hw_in * spec.in_c * mid if spec.expand != 1 else 0
        f["mmacs_pointwise"] += (expand + hw_out * mid * spec.out_c) / 1e6
        f[_dw_feature(spec.kernel)] += hw_out * mid * spec.kernel ** 2 / 1e6
        acts = hw_in * spec.in_c + (2 * hw_in * mid if spec.expand != 1 else 0) \
            + 2 * hw_out * mid + hw_out * spec.out_c * (2 if spec.idskip else 1)
        weights = (spec.in_c * mid if spec.expand != 1 else 0) + mid * spec.kernel ** 2 \
            + mid * spec.out_c
    elif spec.kind == "linear":
        f["mmacs_pointwise"] += spec.in_c * spec.out_c / 1e6
        acts = hw_in * spec.in_c + spec.in_c + spec.out_c
        weights = spec.in_c * spec.out_c
    else:  # zero: no work at all
        return f
    f["mb_activations"] = acts * FLOAT / 1e6
    f["mb_weights"] = weights * FLOAT / 1e6
    return f


def feature_matrix(specs: list[BlockSpec]) -> np.ndarray:
    return np.array([[block_features(s)[name] for name in FEATURES] for s in specs], dtype=float)
