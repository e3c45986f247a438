"""Whole networks against per-block sums: a table (or predictor) is only as good as its additivity.

Runtimes fuse, schedule and cache across block boundaries and pay their per-call cost once per
network, not once per block, so the sum of separately measured blocks is not the network's latency.
This measures random architectures of a space end to end and sets them beside the predictions.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from .devices import DeviceProfile
from .export import block_file, export
from .measure import measure_models, sessions
from .runtimes import get_runtime
from .schedule import Model
from .space import SearchSpace
from .table import LatencyTable


def random_architectures(space: SearchSpace, n: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [[rng.choice(layer.ops) for layer in space.layers()] for _ in range(n)]


def measure_networks(profile: DeviceProfile, space: SearchSpace, archs: list[list[str]],
                     seed: int, with_blocks: bool = False) -> tuple[list[float], dict[str, float]]:
    """Build, export and measure each architecture end to end: the median latency of each, ms.
    With `with_blocks`, the blocks of those networks are measured in the same interleaved rounds
    (their medians by key): block sums and networks taken at one moment of the device."""
    import torch

    from .blocks import build_network

    shape = space.input_shape(profile.batch)
    runtime = get_runtime(profile.runtime)
    # The session opens first: an unreachable device is refused before anything is exported.
    with sessions([profile]) as units, tempfile.TemporaryDirectory() as tmp:
        models = {}
        for i, choices in enumerate(archs):
            torch.manual_seed(seed + i)
            path = Path(tmp) / f"net{i}{runtime.suffix}"
            export(build_network(space, choices), shape, runtime.format, path)
            models[f"net{i}"] = Model(path, shape)
        blocks = {s.key: s for a in archs for s in space.network(a) if s.profiled} \
            if with_blocks else {}
        for key, spec in blocks.items():
            models[key] = Model(block_file(spec, runtime, profile.batch),
                                (profile.batch, spec.in_c, spec.in_h, spec.in_w))
        measured = measure_models(profile, models, units=units)
    return [measured[f"net{i}"].median for i in range(len(archs))], \
        {key: measured[key].median for key in blocks}


def check_networks(profile: DeviceProfile, space: SearchSpace, table: LatencyTable | None,
                   predictor, n: int, seed: int) -> list[dict]:
    archs = random_architectures(space, n, seed)
    for source in (table, predictor):
        if source is not None:  # a source lacking blocks fails before measuring
            source.architecture_latency(space, archs[0])
    measured, _ = measure_networks(profile, space, archs, seed)
    rows = []
    for choices, ms in zip(archs, measured):
        row = {"arch": " ".join(choices), "measured": ms}
        for name, source in (("table", table), ("predictor", predictor)):
            if source is not None:
                row[name] = source.architecture_latency(space, choices)
        rows.append(row)
    return rows
