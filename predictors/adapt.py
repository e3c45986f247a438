"""A predictor for a new device from another device's predictor and a few measured blocks.

What a predictor P of a source device knows that holds on any device is the structure of a block's
latency: which operators it spends its time in (pointwise, dense and depthwise 3/5/7 work, bytes
moved, the per-call cost: the terms of P's linear model, GROUPS). What differs between devices is
mostly the speed of each: a phone's depthwise 7x7 may run 5x slower than a desktop CPU's, its 1x1
convs 2x. So the target D's latency of a block b is taken as P's latency of b with each of those
shares rescaled by D's speed over the source's for that operator:

    D(b) = P(b) * sum_g a_g * s_g(b)        s_g(b): the share of group g in P's linear price of b

with P(b) P's own price (the source's measurement where P has one). The scales a_g >= 0 are fitted
for relative error to the few blocks measured on D, shrunk towards one common scale (the plain
speed ratio of the two devices) by a ridge whose strength leave-one-out cross-validation picks: with
five blocks the common scale is about all the data can tell; with twenty, per-operator scales earn
their keep where the blocks disagree.

Which blocks to measure: those that tell the most about the a_g, given P — a greedy D-optimal
design over the share vectors s(b) (each step adds the block whose shares the blocks chosen so far
explain least), with the block's size (log of P's latency) as one more coordinate, so that the
blocks spread over operator mixes and over small and large blocks alike.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import lsq_linear
from sklearn.model_selection import LeaveOneOut

from profiler.errors import UserError
from profiler.space.blockspec import BlockSpec

from .features import FEATURES, feature_matrix

GROUPS = [*FEATURES, "per_call"]
# Ridge strengths tried (relative deviation of a group's scale from the common one, squared,
# against squared relative errors of blocks); infinity is the common scale alone.
STRENGTHS = (0.01, 0.1, 1.0, 10.0, math.inf)
# The fewest measured blocks an adapted predictor is fitted and cross-validated on.
MIN_BLOCKS = 3


def shares(prior, specs: list[BlockSpec]) -> np.ndarray:
    """(blocks x GROUPS) share of each group in the prior's linear price of each block."""
    X = feature_matrix(specs)
    coef = np.array([prior.coef[f] for f in FEATURES])
    parts = np.hstack([X * coef, np.full((len(specs), 1), prior.intercept_ms)])
    total = parts.sum(axis=1, keepdims=True)
    # A block the linear model prices at nothing: all of it is the per-call cost.
    parts[total[:, 0] <= 0, -1], total[total <= 0] = 1.0, 1.0
    return parts / total


def rescaled(prior, scales: dict[str, float], specs: list[BlockSpec]) -> np.ndarray:
    """The prior's latency of each block, each group's share rescaled."""
    a = np.array([scales[g] for g in GROUPS])
    return prior.block_latencies(specs) * (shares(prior, specs) @ a)


def _fit(base: np.ndarray, s: np.ndarray, y: np.ndarray, strength: float) -> np.ndarray:
    """Scales a_g >= 0 with base * (s @ a) ~ y in relative error, shrunk towards the common scale."""
    common = float(np.sum(base / y) / np.sum((base / y) ** 2))  # relative least squares of a*base
    if math.isinf(strength):
        return np.full(len(GROUPS), common)
    rows = s * (base / y)[:, None]
    prior_rows = math.sqrt(strength) * np.eye(len(GROUPS)) / common
    fit = lsq_linear(np.vstack([rows, prior_rows]),
                     np.concatenate([np.ones(len(y)), np.full(len(GROUPS), math.sqrt(strength))]),
                     bounds=(0, np.inf))
    return fit.x


def _loo(base, s, y, strength) -> np.ndarray:
    """Each block's relative error when the scales are fitted without it."""
    errors = np.empty(len(y))
    for train, test in LeaveOneOut().split(y):
        a = _fit(base[train], s[train], y[train], strength)
        errors[test] = base[test] * (s[test] @ a) / y[test] - 1
    return errors


def fit_scales(prior, specs: list[BlockSpec], y: np.ndarray) -> tuple[dict, dict]:
    """The scales fitted to blocks measured on the new device (ms `y`), and their leave-one-out
    error ({"folds": "loo", mape, median_ape, p95_ape, max_ape, strength, common_scale})."""
    y = np.asarray(y, dtype=float)
    if len(y) < MIN_BLOCKS:
        raise UserError(f"{len(y)} measured block(s) are too few to adapt a predictor and "
                        f"cross-validate it (at least {MIN_BLOCKS})")
    base, s = prior.block_latencies(specs), shares(prior, specs)
    loo = {k: np.abs(_loo(base, s, y, k)) for k in STRENGTHS}
    # The strongest shrinkage within a tenth of a point of the best: fewer effective parameters.
    best = min(float(e.mean()) for e in loo.values())
    strength = max(k for k in STRENGTHS if loo[k].mean() <= best + 0.001)
    a = _fit(base, s, y, strength)
    e = loo[strength]
    cv = {"folds": "loo", "mape": float(e.mean()), "median_ape": float(np.median(e)),
          "p95_ape": float(np.percentile(e, 95)), "max_ape": float(e.max()),
          "strength": None if math.isinf(strength) else strength,
          "common_scale": float(_fit(base, s, y, math.inf)[0])}
    return dict(zip(GROUPS, map(float, a))), cv


def informative(prior, candidates: list[BlockSpec], n: int) -> list[BlockSpec]:
    """The n blocks of `candidates` that tell the most about a new device given the prior."""
    candidates = [c for c in dict.fromkeys(candidates) if c.profiled]
    if not 1 <= n <= len(candidates):
        raise UserError(f"cannot choose {n} block(s) of {len(candidates)}: give between 1 and "
                        f"{len(candidates)}")
    size = np.log(prior.block_latencies(candidates))
    size = (size - size.mean()) / (2 * size.std() or 1.0)
    V = np.hstack([shares(prior, candidates), size[:, None]])
    inverse = np.eye(V.shape[1]) / 1e-2  # (eps I + chosen' chosen)^-1, kept by Sherman-Morrison
    chosen: list[int] = []
    for _ in range(n):
        gain = np.einsum("ij,jk,ik->i", V, inverse, V)
        gain[chosen] = -np.inf
        i = int(np.argmax(gain))
        chosen.append(i)
        v = inverse @ V[i]
        inverse -= np.outer(v, v) / (1 + V[i] @ v)
    return [candidates[i] for i in chosen]


