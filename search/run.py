"""run_search: the whole search as one library call, which `pxsearch` is a thin face over.

    from search import SearchConfig, run_search
    result = run_search("tiny", LatencyTable.load("cpu-tiny.csv"), "digits",
                        SearchConfig(target_ms=0.08), "out")
    result.choices, result.predicted_latency_ms, result.test_accuracy, result.network

Everything is checked before anything is written (bad input raises UserError, a ValueError);
OUT_DIR then gets, from rank 0 alone: checkpoint.pt and search_log.csv every search epoch,
selection.csv when the search ends (the candidates scored, SearchConfig.select), retrain.pt
every retraining epoch, and at the end arch.json, arch.svg, net.config and run.config
(the architecture for Once-for-All's or ProxylessNAS's code), derived.pt (the derived network,
retrained) and derived.onnx. A search interrupted at any point resumes with
`resume=True`, retraining included.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from profiler.build.blocks import build_network
from profiler.build.export import export
from profiler.devices.measure import measure_models
from profiler.devices.profile import DeviceProfile, get_device
from profiler.devices.runtimes import get_runtime
from profiler.devices.schedule import Model
from profiler.devices.session import check_supported
from profiler.errors import UserError
from profiler.files import atomic_path
from profiler.outputs import claim, remove_stale, writing
from profiler.space.arch import save_arch
from profiler.space.netconfig import save_net_config
from profiler.space.spaces import PRESETS, SearchSpace, get_space, split_resolution, with_resolution
from profiler.tables.fingerprint import Reference
from profiler.tables.latency import LatencySource

from .config import RetrainConfig, SearchConfig
from .data import Dataset, load_data
from .derive import check_reachable
from .distributed import World
from .figure import write_architecture_svg
from .latency import ExpectedLatency
from .retrain import retrain
from .trainer import Searcher, check_fits, check_resumable, read_checkpoint


@dataclass
class SearchResult:
    space: SearchSpace
    choices: list[str]
    predicted_latency_ms: float
    target_latency_ms: float
    network: torch.nn.Module  # the derived network: retrained, or as initialised (eval mode, CPU)
    log: list[dict] = field(default_factory=list)  # one row per epoch (search_log.csv)
    search_val_accuracy: float | None = None  # the derived architecture inside the supernet
    test_accuracy: float | None = None  # after retraining
    measured_latency_ms: float | None = None  # end to end on `measure_on`
    files: dict[str, Path] = field(default_factory=dict)  # what was written, by name


def _outputs(out: Path) -> list[Path]:
    """Every file a search writes in `out` (and nothing else there)."""
    named = ["arch.json", "arch.svg", "checkpoint.pt", "search_log.csv", "selection.csv", "retrain.pt",
             "net.config", "run.config"]
    return [out / n for n in named] + list(out.glob("derived.*")) + list(out.glob("derived-batch*.*"))


def _recorded_space(space_name: str) -> str:
    # A preset is recorded by name, a space file by its absolute path, so arch.json works anywhere.
    name, resolution = split_resolution(space_name)
    return with_resolution(name if name in PRESETS or not Path(name).exists()
                           else str(Path(name).resolve()), resolution)


@dataclass
class _Plan:
    """A search whose every input has been checked."""
    space: SearchSpace
    recorded: str
    latency: ExpectedLatency
    target: float
    data: Dataset
    profile: DeviceProfile | None
    out: Path | None
    checkpoint: Path | None
    state: dict | None  # the checkpoint, read


def check_search(space: SearchSpace | str, latency_source: LatencySource | ExpectedLatency,
                 data: Dataset | str, config: SearchConfig, out_dir: Path | str | None = None, *,
                 export_onnx: bool = True, measure_on: DeviceProfile | str | None = None,
                 resume: bool = False, force: bool = False, world_size: int = 1,
                 inputs=()) -> _Plan:
    """Everything run_search checks before it writes anything (a UserError if anything is wrong):
    the space, the latency source's coverage, the target, the device, the data, OUT_DIR's policy
    (profiler/outputs.py) and a checkpoint to resume."""
    # A space named by a file is recorded by that file's path (a SearchSpace by its name).
    recorded = _recorded_space(space if isinstance(space, str) else space.name)
    space = get_space(space) if isinstance(space, str) else space
    latency = latency_source if isinstance(latency_source, ExpectedLatency) else \
        ExpectedLatency(space, latency_source)
    if latency.space.to_dict() != space.to_dict():
        raise UserError(f"the expected latency is of space {latency.space.name!r}, not {space.name!r}")
    target = latency.check_target(config.target_ms)
    check_reachable(latency, target, config.budget_tolerance)
    profile = get_device(measure_on) if isinstance(measure_on, str) else measure_on
    if profile and not export_onnx:
        raise UserError("the derived network is measured from its export: --measure-on "
                        "(measure_on) needs it, drop --no-export (export_onnx=False)")
    if profile:
        check_supported(profile)
    data = load_data(data, space.resolution, config.seed) if isinstance(data, str) else data
    check_fits(space, data, config, world_size)
    out = Path(out_dir) if out_dir is not None else None
    checkpoint = state = None
    if out is not None:
        claim(out, inputs, force=force, resume=resume, directory=True)
        if resume and (out / "checkpoint.pt").exists():
            checkpoint = out / "checkpoint.pt"
            state = read_checkpoint(checkpoint)
            check_resumable(state, checkpoint, space, config, world_size)
    return _Plan(space, recorded, latency, target, data, profile, out, checkpoint, state)


def run_search(space: SearchSpace | str, latency_source: LatencySource | ExpectedLatency,
               data: Dataset | str, config: SearchConfig, out_dir: Path | str | None = None, *,
               retrain_config: RetrainConfig = RetrainConfig(), export_onnx: bool = True,
               measure_on: DeviceProfile | str | None = None, resume: bool = False,
               force: bool = False, world: World | None = None, progress: bool = True,
               warn=None, source_name: str | None = None, inputs=(), on_start=None,
               on_search_done=None, warm_start: Path | None = None) -> SearchResult:
    """Search `space` for `config.target_ms` on `latency_source` and `data`, derive the
    architecture, retrain, export and measure it; write the results to `out_dir` (None: write
    nothing, resume nothing).

    `space`: a SearchSpace, or a preset or space file name (NAME@R at R pixels); `data`: a
    Dataset or what load_data takes ("digits", a CIFAR-10 or ImageFolder directory). `world`:
    this process's place among several (search/distributed.py: every process of a torchrun calls
    run_search alike); `resume` continues a search checkpointed in `out_dir`, `force` starts
    afresh over one; `inputs` are files that `out_dir` must not be; `on_start()` is called when
    every input has been checked, `on_search_done(result)` when the architecture is known, before
    retraining. `warm_start`: a warm-up's checkpoint, made for any target, to start from where
    there is no checkpoint of this search to resume (search/targets.py)."""
    world = world or World()
    plan = check_search(space, latency_source, data, config, out_dir, export_onnx=export_onnx,
                        measure_on=measure_on, resume=resume, force=force, world_size=world.size,
                        inputs=inputs)
    searcher = Searcher(plan.space, plan.latency, plan.data, config, out_dir=plan.out,
                        progress=progress, warn=warn, world=world)
    if plan.checkpoint:
        searcher.resume(plan.checkpoint, plan.state)
    elif warm_start is not None:
        searcher.start_from(warm_start)
    # Every process has checked its input before rank 0 writes anything.
    world.barrier()
    with contextlib.ExitStack() as held:
        if plan.out is not None and world.main:
            # Held until the search ends: a second search on OUT_DIR refuses.
            held.enter_context(writing(plan.out, "pxsearch"))
            plan.out.mkdir(parents=True, exist_ok=True)
            if plan.checkpoint is None:
                # Afresh (--force): nothing of an earlier search may be taken for this one's.
                remove_stale(_outputs(plan.out))
        world.barrier()
        if on_start is not None:
            on_start()
        return _search(searcher, plan, retrain_config, export_onnx, world, progress, source_name,
                       on_search_done)


def _search(searcher: Searcher, plan: _Plan, retrain_config, export_onnx, world, progress,
            source_name, on_search_done) -> SearchResult:
    space, latency, data, target, out, profile = \
        plan.space, plan.latency, plan.data, plan.target, plan.out, plan.profile
    choices = searcher.run()
    predicted = latency.latency(choices)
    rows, selection = searcher.rows, searcher.selection
    result = SearchResult(space, choices, predicted, target, network=None, log=rows,
                          search_val_accuracy=selection[0]["val_acc"] if selection else
                          rows[-1]["val_acc"] if rows else None)
    if on_search_done is not None:
        on_search_done(result)
    c = searcher.config
    if retrain_config.epochs:
        result.network, result.test_accuracy = retrain(
            space, choices, data, retrain_config.epochs, c.batch_size, retrain_config.lr,
            seed=c.seed, progress=progress, world=world, precision=c.precision,
            checkpoint=out / "retrain.pt" if out is not None else None)
    else:
        torch.manual_seed(c.seed)
        result.network = build_network(space, choices).eval()
    if out is None or not world.main:
        return result
    files = result.files
    files["checkpoint"], files["log"] = out / "checkpoint.pt", out / "search_log.csv"
    if selection:
        files["selection"] = out / "selection.csv"
    if retrain_config.epochs:
        files["retrain_checkpoint"] = out / "retrain.pt"
    files["svg"] = out / "arch.svg"
    write_architecture_svg(files["svg"], space, choices,
                           f"{space.name}: {predicted:.4g} ms predicted (target {target:g} ms)")
    files["network"] = out / "derived.pt"
    with atomic_path(files["network"]) as tmp:
        torch.save({"space": plan.recorded, "choices": choices,
                    "state_dict": result.network.state_dict()}, tmp)
    shape = space.input_shape()
    if export_onnx:
        files["onnx"] = export(result.network, shape, "onnx", out / "derived.onnx")
    if profile:
        result.measured_latency_ms = _measure(result.network, space, profile, files, out, progress,
                                              plan.latency.source.reference)
    summary = {"predicted_latency_ms": round(predicted, 6), "target_latency_ms": target,
               "latency_source": source_name, "mode": c.mode, "loss": c.loss,
               "search_val_accuracy": result.search_val_accuracy, "world_size": world.size}
    if retrain_config.epochs:
        summary |= {"test_accuracy": result.test_accuracy, "retrain_epochs": retrain_config.epochs}
    if profile:
        summary |= {"measured_latency_ms": round(result.measured_latency_ms, 6),
                    "measured_on": profile.name}
    # For Once-for-All's or ProxylessNAS's code to train at ImageNet scale (profiler/space/netconfig.py).
    files["net_config"], files["run_config"] = out / "net.config", out / "run.config"
    save_net_config(files["net_config"], plan.space, choices, files["run_config"])
    # Written last: an arch.json says the search, retraining and export are complete.
    files["arch"] = out / "arch.json"
    save_arch(files["arch"], plan.recorded, choices, **summary)
    return result


def _measure(net, space: SearchSpace, profile: DeviceProfile, files: dict, out: Path,
             progress: bool, reference: Reference | None) -> float:
    """The derived network's latency end to end on the profile's device, at the profile's batch
    (like the blocks of its table), and at the device speed of the latency source's `reference`
    where both timed the same one."""
    runtime = get_runtime(profile.runtime)
    shape = space.input_shape(profile.batch)
    if runtime.format == "onnx" and shape == space.input_shape():
        path = files["onnx"]
    else:
        batch = f"-batch{profile.batch}" if profile.batch != 1 else ""
        path = files["measured"] = export(net, shape, runtime.format,
                                          out / f"derived{batch}{runtime.suffix}")
    return measure_models(profile, {"network": Model(path, shape)},
                          progress=progress).at(reference)["network"]
