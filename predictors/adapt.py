"""A predictor for a new device from another device's predictor and a few measured blocks.

What a predictor P of a source device knows that holds on another device is most of the structure
of a block's latency: bigger blocks take longer, in about the same proportions. What differs is
the speed of each kind of operator: a phone's or another runtime's depthwise 7x7 may run 5x slower
than this CPU's, its 1x1 convs twice as fast; a runtime that pays per operator (TorchScript, a GPU
launching kernels) pays more per call for a block of many operators (an MBConv) than for one of
few (the classifier). So the new device D's latency of a block b is P's, scaled, plus D's own
deviation from it, linear in the block's work:

    D(b) = c * P(b) + sum_j w_j * x_j(b) + w_kind(b)       c >= 0, w >= 0

with P(b) P's own price (the source's measurement where P has one), x_j(b) the block's features
(work per operator kind, bytes moved: predictors/features.py) and w_kind a per-call cost for each
block kind (GROUPS). The scale and weights are fitted for relative error to the few blocks measured
on D, the deviation weights under a weak ridge (RIDGE: why that one, there). The plain speed ratio
alone (c, no deviation) is what most adaptation amounts to; it missed this project's runtimes by
25 to 70 %, since they differ most in one kind of operator (LiteRT's depthwise 7x7, TorchScript's
per-call cost).

Which blocks to measure: those that tell the most about D's networks, given P — a greedy
I-optimal design: each step adds the block that most lowers the variance of the predicted relative
latency of random networks of the space (a block measured pins the weights along its features
relative to P's price; a network's prediction depends on them along its own). So the blocks spread
over the operator mixes the networks spend their time in, weighted by how much they do.
"""

from __future__ import annotations

import math
import random

import numpy as np
from scipy.optimize import lsq_linear
from sklearn.model_selection import LeaveOneOut

from profiler.errors import UserError
from profiler.space.blockspec import BlockSpec
from profiler.space.kinds import KINDS

from .features import FEATURES, feature_matrix

CALLS = [f"per_call_{kind}" for kind, k in KINDS.items() if k.profiled]
GROUPS = ["source", *FEATURES, *CALLS]
# The ridge on the deviation weights (each in units of the relative deviation it adds to a typical
# measured block). Weak: leave-one-out over a few blocks cannot choose it (each block chosen is
# often the only witness of its operator), and across the six pairs of three runtimes on this
# project's bench (bench/adapt.py) a weak ridge predicted networks best at 5, 10 and 20 blocks;
# the plain speed ratio alone missed them by 25 to 70 %.
RIDGE = 0.01
# The fewest measured blocks an adapted predictor is fitted and cross-validated on.
MIN_BLOCKS = 3


def deviations(specs: list[BlockSpec]) -> np.ndarray:
    """(blocks x GROUPS[1:]) what D's deviation from P is linear in: features and block kind."""
    calls = np.array([[float(s.kind == kind) for kind in KINDS if KINDS[kind].profiled]
                      for s in specs]).reshape(len(specs), len(CALLS))
    return np.hstack([feature_matrix(specs), calls])


def rescaled(prior, scales: dict[str, float], specs: list[BlockSpec]) -> np.ndarray:
    """D's latency of each block: the prior's, scaled, plus the deviation."""
    w = np.array([scales[g] for g in GROUPS[1:]])
    return scales["source"] * prior.block_latencies(specs) + deviations(specs) @ w


def _relative(base: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """Rows of the model in relative terms: y / P = c + sum_j w_j z_j / P."""
    return np.hstack([np.ones((len(base), 1)), Z / base[:, None]])


def _fit(base: np.ndarray, Z: np.ndarray, y: np.ndarray, ridge: float = RIDGE) -> np.ndarray:
    """(c, w) >= 0 with c * base + Z @ w ~ y in relative error; ridge inf: c alone (the ratio)."""
    A = _relative(base, Z) * (base / y)[:, None]  # each row divided by y: relative error
    if math.isinf(ridge):
        return np.concatenate([[float(A[:, 0].sum() / (A[:, 0] ** 2).sum())], np.zeros(Z.shape[1])])
    # The ridge acts on each weight in units of the relative deviation it adds to a typical
    # measured block, so that one strength suits milliseconds per MMAC and per call alike.
    unit = np.abs(A[:, 1:]).mean(axis=0)
    unit[unit == 0] = 1.0
    rows = math.sqrt(ridge) * np.hstack([np.zeros((Z.shape[1], 1)), np.diag(unit)])
    fit = lsq_linear(np.vstack([A, rows]), np.concatenate([np.ones(len(y)), np.zeros(Z.shape[1])]),
                     bounds=(0, np.inf))
    return fit.x


def _loo(base, Z, y) -> np.ndarray:
    """Each block's relative error when the model is fitted without it."""
    errors = np.empty(len(y))
    for train, test in LeaveOneOut().split(y):
        x = _fit(base[train], Z[train], y[train])
        errors[test] = (x[0] * base[test] + Z[test] @ x[1:]) / y[test] - 1
    return errors


def fit_scales(prior, specs: list[BlockSpec], y: np.ndarray) -> tuple[dict, dict]:
    """The scale and deviation weights fitted to blocks measured on the new device (ms `y`), and
    their leave-one-out error ({"folds": "loo", mape, median_ape, p95_ape, max_ape, ridge,
    speed_ratio: the plain ratio of the two devices' latencies})."""
    y = np.asarray(y, dtype=float)
    if len(y) < MIN_BLOCKS:
        raise UserError(f"{len(y)} measured block(s) are too few to adapt a predictor and "
                        f"cross-validate it (at least {MIN_BLOCKS})")
    base, Z = prior.block_latencies(specs), deviations(specs)
    # An upper bound rather than an estimate: a block left out is often the only one of its kind
    # of operator, which the rest cannot know.
    e = np.abs(_loo(base, Z, y))
    cv = {"folds": "loo", "mape": float(e.mean()), "median_ape": float(np.median(e)),
          "p95_ape": float(np.percentile(e, 95)), "max_ape": float(e.max()), "ridge": RIDGE,
          "speed_ratio": float(_fit(base, Z, y, math.inf)[0])}
    return dict(zip(GROUPS, map(float, _fit(base, Z, y)))), cv


def informative(prior, space, n: int, networks: int = 200, seed: int = 0) -> list[BlockSpec]:
    """The n blocks of `space` that tell the most about a new device's networks, given the prior:
    each in turn the block that most lowers the variance of the adapted predictor's relative
    error, averaged over `networks` random architectures (a greedy I-optimal design)."""
    candidates = space.blocks()
    if not 1 <= n <= len(candidates):
        raise UserError(f"cannot choose {n} block(s) of {len(candidates)}: give between 1 and "
                        f"{len(candidates)}")
    # One measured block: y / P = its relative row @ (c, w), up to relative noise.
    V = _relative(prior.block_latencies(candidates), deviations(candidates))
    # What is predicted: each network's relative latency, its summed row over its P latency.
    rng = random.Random(seed)
    U = []
    for _ in range(networks):
        net = [s for s in space.network([rng.choice(layer.ops) for layer in space.layers()])
               if s.profiled]
        ms = prior.block_latencies(net)
        U.append(np.concatenate([[1.0], deviations(net).sum(axis=0) / ms.sum()]))
    U = np.array(U)
    # Columns on one scale (their typical size over the candidates), as the fit's ridge has them.
    unit = np.abs(V).mean(axis=0)
    unit[unit == 0] = 1.0
    V, U = V / unit, U / unit
    W = U.T @ U / len(U)
    inverse = np.eye(V.shape[1]) / 1e-2  # (eps I + chosen' chosen)^-1, kept by Sherman-Morrison
    chosen: list[int] = []
    for _ in range(n):
        # Adding v lowers trace(W M^-1) by v' M^-1 W M^-1 v / (1 + v' M^-1 v).
        MV = V @ inverse
        gain = np.einsum("ij,jk,ik->i", MV, W, MV) / (1 + np.einsum("ij,ij->i", MV, V))
        gain[chosen] = -np.inf
        i = int(np.argmax(gain))
        chosen.append(i)
        v = inverse @ V[i]
        inverse -= np.outer(v, v) / (1 + V[i] @ v)
    return [candidates[i] for i in chosen]
