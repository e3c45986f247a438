"""pxsearch: search an architecture for a target latency, derive it, retrain it, export it.

A thin face over search.run.run_search: it parses, prints, and starts the processes of a
distributed search (`--nproc N`, or under torchrun)."""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from profiler import __version__
from profiler.console import run
from profiler.errors import ToolError, UserError
from profiler.space.spaces import get_space, with_resolution

# Torch, the data and the search load when a search starts, not for --help or a bad option.
from .config import FORMS, MODES, PRECISIONS, RETRAIN_LR, RetrainConfig, SearchConfig

if TYPE_CHECKING:
    from .latency import ExpectedLatency

DEFAULTS = SearchConfig(target_ms=1.0)


def _space_and_latency(table_path, predictor_path, space_name, resolution):
    from predictors import open_source

    from .latency import ExpectedLatency

    source = open_source(table_path, predictor_path)
    if space_name is None and not source.space:
        raise UserError(f"{table_path or predictor_path} records no search space; pass --space")
    space_name = with_resolution(space_name or source.space, resolution)
    space = get_space(space_name)
    if source.space and source.space != space.name and predictor_path is None:
        raise UserError(f"{table_path} was measured for space {source.space!r}, not {space.name!r}; "
                        f"measure that space with pxprof measure --space {space_name}")
    names = " + ".join(Path(p).name for p in (table_path, predictor_path) if p is not None)
    return space_name, ExpectedLatency(space, source), names


def _target_ms(text: str, latency: ExpectedLatency) -> float:
    try:
        if text.strip().endswith("%"):
            lo, hi = latency.bounds()
            return lo + float(text.strip()[:-1]) / 100 * (hi - lo)
        return float(text)
    except ValueError:
        raise UserError(f"--target-latency {text!r}: give milliseconds (0.08) or a percentage of "
                        f"the space's latency range (40%)") from None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pxsearch")
@click.option("--latency-table", "table_path", type=click.Path(path_type=Path),
              help="Latency table (CSV) of the space's blocks on the target device.")
@click.option("--predictor", "predictor_path", type=click.Path(path_type=Path),
              help="Latency predictor file (pxprof fit-predictor); with a table, it fills the blocks the table lacks.")
@click.option("--target-latency", "target_texts", required=True, multiple=True, metavar="MS|P%",
              help="Target latency in ms, or P% of the way from the space's fastest architecture "
                   "to its slowest on this latency source (so a demo works on any machine). "
                   "Several (--target-latency 30% 50% 70%): one warm-up, then a search per target "
                   "in OUT_DIR/<target>ms/, and the trade-off in OUT_DIR/pareto.csv and pareto.png.")
@click.option("--space", "space_name", default=None,
              help="Preset or space file (default: the table's recorded space).")
@click.option("--resolution", type=click.IntRange(1, 4096), default=None, metavar="R",
              help="Search the space at R pixels (its blocks must be in the latency source).")
@click.option("--data", "data_spec", default="digits", show_default=True,
              help="digits, a CIFAR-10 python directory, a directory of MNIST-format IDX files "
                   "(gzipped or not), or an ImageFolder directory.")
@click.option("--train-subset", type=click.IntRange(2), default=None, metavar="N",
              help="Use N training images (weight training and validation together, drawn at "
                   "random); the test split stays whole.")
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
@click.option("--batch-size", type=click.IntRange(1), default=DEFAULTS.batch_size, show_default=True,
              help="The global batch, over all processes.")
@click.option("--lr", type=float, default=None,
              help="Weight learning rate of the search (default: 0.15 / searchable layers at batch 32, "
                   "scaled with the batch: deeper supernets need smaller steps).")
@click.option("--arch-lr", type=float, default=DEFAULTS.arch_lr, show_default=True,
              help="Adam learning rate of the architecture parameters.")
@click.option("--arch-every", type=click.IntRange(1), default=DEFAULTS.arch_every, show_default=True,
              help="One architecture step every this many weight steps.")
@click.option("--target-ramp", type=click.FloatRange(0, 1), default=DEFAULTS.target_ramp,
              show_default=True, metavar="F",
              help="budget: the target moves from the starting expected latency to the target over "
                   "this fraction of the search (0: the whole target from the first step).")
@click.option("--select", type=click.IntRange(0, 10_000), default=DEFAULTS.select, show_default=True,
              metavar="N", help="After the search, score N architectures drawn from the learned "
                                "distribution within the budget, and the most likely one, with "
                                "the supernet's weights on the validation split; keep the best "
                                "(0: the most likely one, as the paper). OUT_DIR/selection.csv "
                                "lists them. Worth it where the validation split is large.")
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
@click.option("--nproc", type=click.IntRange(1), default=1, show_default=True,
              help="Search on this many processes of this machine (DistributedDataParallel: one per "
                   "GPU, or per CPU core); --batch-size is then split between them.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None,
              help="Where to train (default: cuda where torch sees a GPU, else cpu).")
@click.option("--precision", type=click.Choice(PRECISIONS), default=DEFAULTS.precision,
              show_default=True, help="bf16: forward passes under bfloat16 autocast (for GPUs).")
@click.option("--resume", is_flag=True, help="Continue the search checkpointed in OUT_DIR.")
@click.option("--force", is_flag=True, help="Start afresh in OUT_DIR even if it holds a search.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("-o", "--output", "out", type=click.Path(path_type=Path), required=True,
              help="Output directory.")
# The targets after the first: `--target-latency 30% 50% 70%` reads as one option and two arguments.
@click.argument("more_targets", nargs=-1, metavar="[MORE_TARGETS]...")
def cli(table_path, predictor_path, target_texts, space_name, resolution, data_spec, train_subset,
        mode, loss_form, lam, epochs, warmup_epochs, batch_size, lr, arch_lr, arch_every, target_ramp,
        select, seed, retrain_epochs, retrain_lr, device_name, do_export, threads, nproc, device,
        precision, resume, force, quiet, out, more_targets):
    """Search an architecture of a space whose latency on a device meets a target (ProxylessNAS).

    Writes OUT_DIR/arch.json, search_log.csv, arch.svg, and the derived network retrained
    (derived.pt) and exported (derived.onnx); for several targets, one such folder per target."""
    import torch

    from . import distributed
    from .data import load_data
    from .run import check_search
    from .targets import check_targets

    under_torchrun = "WORLD_SIZE" in os.environ
    if nproc > 1 and under_torchrun:
        raise UserError("--nproc starts processes itself; under torchrun, give --nproc-per-node "
                        "to torchrun instead")
    # Everything the user gave is checked before anything is written (and before processes start).
    space_name, latency, source = _space_and_latency(table_path, predictor_path, space_name,
                                                     resolution)
    targets = [latency.check_target(_target_ms(t, latency)) for t in target_texts + more_targets]
    config = SearchConfig(target_ms=targets[0], mode=mode, loss=loss_form, epochs=epochs,
                          warmup_epochs=warmup_epochs, batch_size=batch_size, lr=lr, arch_lr=arch_lr,
                          arch_every=arch_every, lam=lam, target_ramp=target_ramp, select=select,
                          precision=precision, seed=seed)
    retrain_config = RetrainConfig(retrain_epochs, retrain_lr)
    data = load_data(data_spec, latency.space.resolution, seed, train_subset)
    options = dict(export_onnx=do_export, measure_on=device_name, resume=resume, force=force,
                   inputs=[table_path, predictor_path])
    if nproc > 1:
        distributed.check_nproc(nproc, device)
        if len(targets) > 1:
            check_targets(latency.space, latency, data, config, targets, out, world_size=nproc,
                          **options)
        else:
            check_search(space_name, latency, data, config, out, world_size=nproc, **options)
        distributed.launch(nproc, _without_nproc(sys.argv[1:]))
        return
    if threads:
        torch.set_num_threads(threads)
    world = distributed.join(device)
    launched = distributed.LAUNCHED_ENV in os.environ
    try:
        _search(world, space_name, latency, source, data, config, targets, retrain_config, quiet,
                out, options)
    except UserError:
        if world.main:
            raise
        _quit(2)  # every process checks the same input: rank 0 says what is wrong
    except KeyboardInterrupt:
        if world.main and not launched:
            raise
        _quit(130)  # the launcher or rank 0 says it
    except RuntimeError as exc:
        if not world.distributed:
            raise
        if launched:
            _quit(distributed.LOST)  # the launcher says which process failed
        raise ToolError(f"search process {world.rank} of {world.size} lost the others "
                        f"({_first_sentence(exc)}); rerun with --resume") from None
    finally:
        world.close()


def _first_sentence(exc: Exception) -> str:
    # gloo's and NCCL's messages start with a source location and run on for lines.
    text = re.sub(r"^\[[^\]]*\]\s*", "", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return text.split(". ")[0]


def _quit(status: int):
    # On its way out a process may still get the launcher's SIGTERM (it stops the others when one
    # fails): it ends the process quietly now, not as an interruption raised in exit handlers.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sys.exit(status)


def _without_nproc(argv: list[str]) -> list[str]:
    at = next(i for i, a in enumerate(argv) if a == "--nproc" or a.startswith("--nproc="))
    return argv[:at] + argv[at + (1 if "=" in argv[at] else 2):]


def _search(world, space_name, latency, source, data, config, targets, retrain_config, quiet, out,
            options):
    from .run import run_search
    from .targets import run_targets

    say = click.echo if world.main else (lambda *a, **k: None)

    def started():
        lo, hi = latency.bounds()
        processes = f" on {world.size} processes" if world.distributed else ""
        said = ", ".join(f"{t:g}" for t in targets)
        say(f"searching {latency.space.name} on {data.describe()}{processes}; "
            f"target{'s' if len(targets) > 1 else ''} {said} ms, space range {lo:.4g} .. {hi:.4g} ms",
            err=True)

    def searched(result):
        target = result.target_latency_ms
        say(f"architecture: {' '.join(result.choices)}")
        say(f"predicted latency: {result.predicted_latency_ms:.4g} ms (target {target:g} ms, "
            f"{(result.predicted_latency_ms - target) / target:+.1%})")

    common = dict(retrain_config=retrain_config, world=world, progress=not quiet,
                  source_name=source,
                  warn=lambda message: say(f"pxsearch: warning: {message}", err=True),
                  on_start=started, on_search_done=searched, **options)
    if len(targets) == 1:
        _report(say, run_search(space_name, latency, data, config, out, **common), retrain_config,
                options)
        return
    results = run_targets(space_name, latency, data, config, targets, out, **common)
    for result in results:
        say(f"target {result.target_latency_ms:g} ms:")
        _report(say, result, retrain_config, options)
    if "pareto_png" in results[0].files:
        say(f"wrote {results[0].files['pareto_csv']} and {results[0].files['pareto_png']}")


def _report(say, result, retrain_config, options):
    if result.test_accuracy is not None:
        say(f"test accuracy after {retrain_config.epochs} epochs from scratch: "
            f"{result.test_accuracy:.2%}")
    if "onnx" in result.files:
        say(f"wrote {result.files['onnx']}")
    if result.measured_latency_ms is not None:
        measured, predicted = result.measured_latency_ms, result.predicted_latency_ms
        say(f"measured on {options['measure_on']}: {measured:.4g} ms end to end "
            f"(predicted {predicted:.4g} ms, {(measured - predicted) / predicted:+.1%})")


def main():
    run(cli, "pxsearch")


if __name__ == "__main__":
    main()
