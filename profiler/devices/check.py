"""Whole networks against per-block sums: a table (or predictor) is only as good as its additivity.

Runtimes fuse, schedule and cache across block boundaries and pay their per-call cost once per
network, not once per block, so the sum of separately measured blocks is not the network's latency.
This measures random architectures of a space end to end and sets them beside the predictions.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import numpy as np

from profiler.build.export import export
from profiler.space.spaces import SearchSpace
from profiler.tables.fingerprint import Reference
from profiler.tables.table import LatencyTable
from .measure import measure_models, sessions
from .profile import DeviceProfile
from .runtimes import get_runtime
from .schedule import Model


def random_architectures(space: SearchSpace, n: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [[rng.choice(layer.ops) for layer in space.layers()] for _ in range(n)]


def measure_networks(profile: DeviceProfile, space: SearchSpace, archs: list[list[str]],
                     seed: int, at: Reference | None = None, passes: int = 1,
                     checkpoint: Path | None = None) -> np.ndarray:
    """Build, export and measure each architecture end to end, `passes` times (each pass a
    measurement of its own, after the one before): the median latency of each, ms, one row per
    pass, at the device speed of the reference `at` (Timed.at). With `checkpoint`, the samples
    are kept there and an interrupted measurement resumes from them."""
    import torch

    from profiler.build.blocks import build_network

    shape = space.input_shape(profile.batch)
    runtime = get_runtime(profile.runtime)
    # The session opens first: an unreachable device is refused before anything is exported.
    with sessions([profile]) as units, tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, choices in enumerate(archs):
            torch.manual_seed(seed + i)
            paths.append(export(build_network(space, choices), shape, runtime.format,
                                Path(tmp) / f"net{i}{runtime.suffix}"))
        ms = np.zeros((passes, len(archs)))
        for p in range(passes):
            names = [f"net{i}" + (f"#{p + 1}" if p else "") for i in range(len(archs))]
            timed = measure_models(profile, {n: Model(path, shape) for n, path in
                                             zip(names, paths)}, units=units,
                                   checkpoint=checkpoint).at(at)
            ms[p] = [timed[n] for n in names]
    return ms


def check_networks(profile: DeviceProfile, space: SearchSpace, table: LatencyTable | None,
                   predictor, n: int, seed: int, archs: list[list[str]] | None = None) -> list[dict]:
    """Each of `archs` (else `n` random architectures) measured end to end, beside its block sums."""
    archs = archs or random_architectures(space, n, seed)
    for source in (table, predictor):
        if source is not None:  # a source lacking blocks fails before measuring
            source.architecture_latency(space, archs[0])
    measured = measure_networks(profile, space, archs, seed)[0]
    rows = []
    for choices, ms in zip(archs, measured):
        row = {"arch": " ".join(choices), "measured": ms}
        for name, source in (("table", table), ("predictor", predictor)):
            if source is not None:
                row[name] = source.architecture_latency(space, choices)
        rows.append(row)
    return rows
