"""pxsearch: search an architecture for a target latency, derive it, retrain it, export it."""

from __future__ import annotations

from pathlib import Path

import click
import torch

import predictors
from profiler import __version__
from profiler.arch import save_arch
from profiler.blocks import build_network
from profiler.console import run
from profiler.devices import get_device
from profiler.errors import UserError
from profiler.export import export
from profiler.files import atomic_path
from profiler.measure import measure_models
from profiler.outputs import claim, writing
from profiler.runtimes import get_runtime
from profiler.schedule import Model
from profiler.session import check_supported
from profiler.space import PRESETS, get_space, split_resolution, with_resolution

from .data import load_data
from .figure import write_architecture_svg
from .gates import MODES
from .latency import ExpectedLatency
from .loss import FORMS, LatencyLoss
from .retrain import RETRAIN_LR, retrain
from .trainer import SearchConfig, Searcher, read_checkpoint

DEFAULTS = SearchConfig(target_ms=1.0)


def _space_and_latency(table_path, predictor_path, space_name, resolution):
    source = predictors.open_source(table_path, predictor_path)
    if space_name is None and not source.space:
        raise UserError(f"{table_path or predictor_path} records no search space; pass --space")
    space_name = with_resolution(space_name or source.space, resolution)
    space = get_space(space_name)
    if source.space and source.space != space.name and predictor_path is None:
        raise UserError(f"{table_path} was measured for space {source.space!r}, not {space.name!r}; "
                        f"measure that space with pxprof measure --space {space_name}")
    names = " + ".join(str(p) for p in (table_path, predictor_path) if p is not None)
    return space, space_name, ExpectedLatency(space, source), names


def _target_ms(text: str, latency: ExpectedLatency) -> float:
    try:
        if text.strip().endswith("%"):
            lo, hi = latency.bounds()
            return lo + float(text.strip()[:-1]) / 100 * (hi - lo)
        return float(text)
    except ValueError:
        raise UserError(f"--target-latency {text!r}: give milliseconds (0.08) or a percentage of "
                        f"the space's latency range (40%)") from None


def _check_out_dir(out: Path, resume: bool, force: bool, inputs) -> Path | None:
    """The checkpoint to resume from (None: start afresh); a finished or running search is never
    overwritten unless --force says so."""
    claim(out, inputs, force=force, resume=resume, directory=True)
    checkpoint = out / "checkpoint.pt"
    if resume and checkpoint.exists():
        read_checkpoint(checkpoint)
        return checkpoint
    return None


def _recorded_space(space_name: str) -> str:
    # A preset is recorded by name, a space file by its absolute path, so arch.json works anywhere.
    name, resolution = split_resolution(space_name)
    return with_resolution(name if name in PRESETS else str(Path(name).resolve()), resolution)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pxsearch")
@click.option("--latency-table", "table_path", type=click.Path(path_type=Path),
              help="Latency table (CSV) of the space's blocks on the target device.")
@click.option("--predictor", "predictor_path", type=click.Path(path_type=Path),
              help="Latency predictor file (pxprof fit-predictor); with a table, it fills the blocks the table lacks.")
@click.option("--target-latency", "target_text", required=True, metavar="MS|P%",
              help="Target latency in ms, or P% of the way from the space's fastest architecture "
                   "to its slowest on this latency source (so a demo works on any machine).")
@click.option("--space", "space_name", default=None,
              help="Preset or space file (default: the table's recorded space).")
@click.option("--resolution", type=click.IntRange(1, 4096), default=None, metavar="R",
              help="Search the space at R pixels (its blocks must be in the latency source).")
@click.option("--data", "data_spec", default="digits", show_default=True,
              help="digits, a CIFAR-10 python directory, or an ImageFolder directory.")
@click.option("--mode", type=click.Choice(MODES), default=DEFAULTS.mode, show_default=True,
              help="Binary-gate mode of the architecture steps.")
@click.option("--loss", "loss_form", type=click.Choice(FORMS), default=DEFAULTS.loss,
              show_default=True, help="How the expected latency enters the loss.")
@click.option("--lambda", "lam", type=float, default=None,
              help="add#linear's lambda (default 0.1); budget's starting lambda (default 0).")
@click.option("--epochs", type=click.IntRange(0), default=DEFAULTS.epochs, show_default=True,
              help="Search epochs (after warm-up).")
@click.option("--warmup-epochs", type=click.IntRange(0), default=DEFAULTS.warmup_epochs,
              show_default=True, help="Epochs training weights only.")
@click.option("--batch-size", type=click.IntRange(1), default=DEFAULTS.batch_size, show_default=True)
@click.option("--lr", type=float, default=None,
              help="Weight learning rate of the search (default: 0.15 / searchable layers at batch 32, "
                   "scaled with the batch: deeper supernets need smaller steps).")
@click.option("--arch-lr", type=float, default=DEFAULTS.arch_lr, show_default=True,
              help="Adam learning rate of the architecture parameters.")
@click.option("--arch-every", type=click.IntRange(1), default=DEFAULTS.arch_every, show_default=True,
              help="One architecture step every this many weight steps.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--retrain-epochs", type=click.IntRange(0), default=15, show_default=True,
              help="Train the derived network from scratch for this many epochs (0: skip).")
@click.option("--retrain-lr", type=click.FloatRange(0, 100, min_open=True), default=RETRAIN_LR, show_default=True,
              help="Learning rate of the retraining.")
@click.option("--measure-on", "device_name", default=None,
              help="Device profile to measure the derived network on, end to end.")
@click.option("--export/--no-export", "do_export", default=True, show_default=True,
              help="Export the derived network to ONNX (--measure-on needs it).")
@click.option("--threads", type=click.IntRange(0), default=0,
              help="Torch threads for training (0: torch's default).")
@click.option("--resume", is_flag=True, help="Continue the search checkpointed in OUT_DIR.")
@click.option("--force", is_flag=True, help="Start afresh in OUT_DIR even if it holds a search.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("-o", "--output", "out", type=click.Path(path_type=Path), required=True,
              help="Output directory.")
def cli(table_path, predictor_path, target_text, space_name, resolution, data_spec, mode, loss_form, lam, epochs,
        warmup_epochs, batch_size, lr, arch_lr, arch_every, seed, retrain_epochs, retrain_lr,
        device_name,
        do_export, threads, resume, force, quiet, out):
    """Search an architecture of a space whose latency on a device meets a target (ProxylessNAS).

    Writes OUT_DIR/arch.json, search_log.csv, arch.svg, and the derived network retrained
    (derived.pt) and exported (derived.onnx)."""
    # Everything the user gave is checked before anything is written.
    space, space_name, latency, source = _space_and_latency(table_path, predictor_path, space_name,
                                                            resolution)
    target = latency.check_target(_target_ms(target_text, latency))
    config = SearchConfig(target_ms=target, mode=mode, loss=loss_form, epochs=epochs,
                          warmup_epochs=warmup_epochs, batch_size=batch_size, lr=lr, arch_lr=arch_lr,
                          arch_every=arch_every, lam=lam, seed=seed)
    LatencyLoss(loss_form, target, lam)  # checks the target against the loss form
    profile = get_device(device_name) if device_name else None
    if profile and not do_export:
        raise UserError("--measure-on measures the exported network; drop --no-export")
    if profile:
        check_supported(profile)
    data = load_data(data_spec, space.resolution, seed)
    checkpoint = _check_out_dir(out, resume, force, [table_path, predictor_path])
    # Held until the command ends: a second pxsearch on OUT_DIR refuses.
    click.get_current_context().with_resource(writing(out, "pxsearch"))
    if threads:
        torch.set_num_threads(threads)

    searcher = Searcher(space, latency, data, config, out_dir=out, progress=not quiet,
                        warn=lambda message: click.echo(f"pxsearch: warning: {message}", err=True))
    if checkpoint:
        searcher.resume(checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    lo, hi = latency.bounds()
    click.echo(f"searching {space.name} on {data.describe()}; target {target:g} ms, "
               f"space range {lo:.4g} .. {hi:.4g} ms", err=True)
    choices = searcher.run()
    predicted = latency.latency(choices)
    summary = {"predicted_latency_ms": round(predicted, 6), "target_latency_ms": target,
               "latency_source": Path(source).name, "mode": mode, "loss": loss_form,
               "search_val_accuracy": searcher.rows[-1]["val_acc"] if searcher.rows else None}
    save_arch(out / "arch.json", _recorded_space(space_name), choices, **summary)
    write_architecture_svg(out / "arch.svg", space, choices,
                           f"{space.name}: {predicted:.4g} ms predicted (target {target:g} ms)")
    click.echo(f"architecture: {' '.join(choices)}")
    click.echo(f"predicted latency: {predicted:.4g} ms (target {target:g} ms, "
               f"{(predicted - target) / target:+.1%})")

    shape = space.input_shape()
    if retrain_epochs:
        net, accuracy = retrain(space, choices, data, retrain_epochs, batch_size, retrain_lr, seed=seed,
                                progress=not quiet)
        summary["test_accuracy"] = accuracy
        summary["retrain_epochs"] = retrain_epochs
        click.echo(f"test accuracy after {retrain_epochs} epochs from scratch: {accuracy:.2%}")
    else:
        torch.manual_seed(seed)
        net = build_network(space, choices).eval()
    with atomic_path(out / "derived.pt") as tmp:
        torch.save({"space": _recorded_space(space_name), "choices": choices,
                    "state_dict": net.state_dict()}, tmp)
    if do_export:
        onnx_path = export(net, shape, "onnx", out / "derived.onnx")
        click.echo(f"wrote {onnx_path}")
    if profile:
        runtime = get_runtime(profile.runtime)
        # Measured at the profile's batch, like the blocks of its table.
        measured_shape = space.input_shape(profile.batch)
        if runtime.format == "onnx" and measured_shape == shape:
            path = onnx_path
        else:
            batch = f"-batch{profile.batch}" if profile.batch != 1 else ""
            path = export(net, measured_shape, runtime.format, out / f"derived{batch}{runtime.suffix}")
        measured = measure_models(profile, {"network": Model(path, measured_shape)},
                                  progress=not quiet)["network"].median
        summary |= {"measured_latency_ms": round(measured, 6), "measured_on": profile.name}
        click.echo(f"measured on {profile.name}: {measured:.4g} ms end to end "
                   f"(predicted {predicted:.4g} ms, {(measured - predicted) / predicted:+.1%})")
    save_arch(out / "arch.json", _recorded_space(space_name), choices, **summary)


def main():
    run(cli, "pxsearch")
