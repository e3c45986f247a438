"""run_targets: several targets from one warm-up, and the latency–accuracy curve they draw.

    from search import SearchConfig, run_targets
    results = run_targets("tiny", table, "digits", SearchConfig(target_ms=0.08), [0.06, 0.08, 0.1],
                          "out")

The warm-up trains the supernet's weights with the architecture still uniform: nothing of it
depends on the target, so it runs once and every target's search starts from it, exactly where a
search of that target alone would be after its warm-up. OUT_DIR then holds warmup/ (its
checkpoint), one folder per target named by its latency (`0.08ms/`: a search folder as run_search
writes it, started from the warm-up) and the summary pareto.csv and pareto.png. Interrupted at any
point, it resumes with `resume=True`: the warm-up where it stopped, each target from its own
checkpoint or, when it has none yet, from the warm-up.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path

from profiler.errors import UserError
from profiler.outputs import claim, remove_stale, writing
from profiler.space.spaces import SearchSpace, get_space
from profiler.tables.latency import LatencySource

from .config import RetrainConfig, SearchConfig
from .data import Dataset, load_data
from .distributed import World
from .latency import ExpectedLatency
from .pareto import Point, write_pareto
from .run import SearchResult, check_search, run_search
from .trainer import Searcher

WARMUP = "warmup"


def target_folder(target_ms: float) -> str:
    return f"{target_ms:.4g}ms"


def check_targets(space: SearchSpace | str, latency: ExpectedLatency, data: Dataset,
                  config: SearchConfig, targets: list[float], out: Path, *, resume: bool = False,
                  force: bool = False, world_size: int = 1, inputs=(), **options) -> list[str]:
    """Everything run_targets checks before it writes anything: two targets that would share a
    folder, OUT_DIR's policy, and each target as run_search will check it (its folder too, where
    OUT_DIR exists). Returns the targets' folder names."""
    names = [target_folder(t) for t in targets]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise UserError(f"targets {targets[names.index(name)]:g} and {targets[i]:g} ms are the "
                            f"same (to 4 significant digits); give distinct targets")
    claim(out, inputs, force=force, resume=resume, directory=True)
    options.pop("source_name", None)
    for name, t in zip(names, targets):
        check_search(space, latency, data, replace(config, target_ms=t),
                     out / name if out.is_dir() else None, resume=resume, force=force,
                     world_size=world_size, inputs=inputs, **options)
    return names


def run_targets(space: SearchSpace | str, latency_source: LatencySource | ExpectedLatency,
                data: Dataset | str, config: SearchConfig, targets: list[float],
                out_dir: Path | str, *, retrain_config: RetrainConfig = RetrainConfig(),
                resume: bool = False, force: bool = False, world: World | None = None,
                progress: bool = True, warn=None, inputs=(), on_start=None, on_search_done=None,
                **options) -> list[SearchResult]:
    """Search `space` for every one of `targets` (ms; `config.target_ms` is not used) from one
    warm-up, writing OUT_DIR as above; returns the results in the order of `targets`. The other
    arguments are run_search's, and so are `options` (export_onnx, measure_on, source_name);
    `on_search_done(result)` is called for each target when its architecture is known."""
    world = world or World()
    named, space = space, get_space(space) if isinstance(space, str) else space
    latency = latency_source if isinstance(latency_source, ExpectedLatency) else \
        ExpectedLatency(space, latency_source)
    data = load_data(data, space.resolution, config.seed) if isinstance(data, str) else data
    out = Path(out_dir)
    names = check_targets(named, latency, data, config, targets, out, resume=resume, force=force,
                          world_size=world.size, inputs=inputs, **options)
    configs = [replace(config, target_ms=t) for t in targets]
    warm = Searcher(space, latency, data, configs[0], out_dir=out / WARMUP, progress=progress,
                    warn=warn, world=world)
    warm_state = out / WARMUP / "checkpoint.pt"
    if resume and warm_state.exists():
        warm.resume(warm_state, any_target=True)  # a warm-up made for other targets serves
    world.barrier()
    with contextlib.ExitStack() as held:
        if world.main:
            held.enter_context(writing(out, "pxsearch"))
            (out / WARMUP).mkdir(parents=True, exist_ok=True)
            if not (resume and warm_state.exists()):
                remove_stale([warm_state, out / "pareto.csv", out / "pareto.png"])
        world.barrier()
        if on_start is not None:
            on_start()
        if warm.epoch < config.warmup_epochs or not warm_state.exists():
            warm.run_epochs(config.warmup_epochs)
            if world.main:
                warm.save_checkpoint()  # also where there are no warm-up epochs
        del warm  # each target's search holds its own supernet
        world.barrier()
        results = [run_search(named, latency, data, c, out / name, retrain_config=retrain_config,
                              resume=resume, force=force, world=world, progress=progress,
                              warn=warn, inputs=inputs, on_search_done=on_search_done,
                              warm_start=warm_state, **options)
                   for name, c in zip(names, configs)]
        if world.main:
            retrained = retrain_config.epochs > 0
            points = [Point("searched", name, r.predicted_latency_ms,
                            r.test_accuracy if retrained else r.search_val_accuracy,
                            target_ms=r.target_latency_ms, folder=name)
                      for name, r in zip(names, results)]
            files = write_pareto(out, points, f"{space.name} on {data.name}",
                                 "test accuracy" if retrained else
                                 "validation accuracy inside the supernet")
            for r in results:
                r.files |= files
        return results

