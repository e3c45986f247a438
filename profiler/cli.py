"""pxprof: profile blocks on devices into latency tables, and read those tables.

What a command alone needs (pandas for tables, torch, scikit-learn) is imported in that command, so
--help and the commands on spaces start at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from profiler import __version__
from profiler.console import run
from profiler.devices.profile import get_device, list_devices
from profiler.devices.runtimes import RUNTIMES
from profiler.errors import DeviceUnavailable, UserError
from profiler.limits import MAX_SEED
from profiler.outputs import claimed, remove_stale
from profiler.space.arch import load_arch
from profiler.space.spaces import get_space, list_spaces, split_resolution

if TYPE_CHECKING:
    from profiler.tables.table import LatencyTable


# torch's and numpy's generators take seeds of 0 to 2**63 - 1; others crash after the work is done.
SEED = click.IntRange(0, MAX_SEED)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pxprof")
def cli():
    """Latency profiling for hardware-aware architecture search."""


def device_options(f):
    """--device (repeatable where several units may share the work), --runtime and
    --benchmark-binary, resolved into profiles."""
    f = click.option("--benchmark-binary", type=click.Path(path_type=Path), default=None,
                     help="TFLite's benchmark_model built for the phone (runtime benchmark_model).")(f)
    f = click.option("--runtime", type=click.Choice(list(RUNTIMES)), default=None,
                     help="Runtime on the device (needed with ssh://; overrides a profile's).")(f)
    return f


force_option = click.option("--force", is_flag=True,
                            help="Replace the output if it exists (it is never replaced otherwise).")


def profile_of(name: str, runtime, benchmark_binary):
    return get_device(name, runtime, benchmark_binary=str(benchmark_binary or ""))


@cli.command()
@click.option("--check", "check_name", default=None, metavar="DEVICE",
              help="Say whether DEVICE is reachable and ready, and what is missing.")
@device_options
def devices(check_name, runtime, benchmark_binary):
    """List the device profiles, or check one."""
    if check_name is None:
        profiles, problems = list_devices()
        for d in profiles:
            threads = f"{d.threads} thread{'s' if d.threads > 1 else ''}"
            click.echo(f"{d.name:12} {d.transport:6} {d.runtime:16} {threads:10} {d.description}")
        for problem in problems:
            click.echo(f"pxprof: skipped {problem}", err=True)
        return 2 if problems else 0
    from profiler.devices.session import DeviceSession
    profile = profile_of(check_name, runtime, benchmark_binary)
    try:
        with DeviceSession(profile) as session:
            fp = session.fingerprint
    except DeviceUnavailable as exc:
        click.echo(f"{profile.name}: not ready: {exc}")
        return 1
    click.echo(f"{profile.name}: ready: {session.transport.describe()}, {fp['runtime']} "
               f"{fp['runtime_version']}, {fp['host_cpu']} ({fp['host']})")


@cli.command()
@click.option("--json", "as_json", is_flag=True,
              help="Each preset's resolution and each searchable layer's candidate ops, as JSON.")
def spaces(as_json):
    """List the preset search spaces."""
    if as_json:
        import json
        click.echo(json.dumps({name: {"resolution": get_space(name).resolution,
                                      "layers": [layer.ops for layer in get_space(name).layers()]}
                               for name in list_spaces()}))
        return
    width = max(map(len, list_spaces()))
    for name in list_spaces():
        s = get_space(name)
        click.echo(f"{name:{width}}  {s.resolution} px, {len(s.layers())} searchable layers, "
                   f"{len(s.blocks())} blocks to profile, ops: {' '.join(s.ops)}")


def resolution_option(f):
    return click.option("--resolution", type=click.IntRange(1, 4096), default=None, metavar="R",
                        help="Take the space at R pixels (recorded as SPACE@R).")(f)


@cli.command()
@click.option("--space", "space_name", required=True, help="Preset name or space file.")
@resolution_option
@click.option("--informative", type=click.IntRange(1), default=None, metavar="N",
              help="Only the N blocks that `pxprof adapt --from P.json` would measure.")
@click.option("--for", "prior_path", type=click.Path(path_type=Path), default=None,
              metavar="P.json", help="The predictor --informative adapts from.")
def blocks(space_name, resolution, informative, prior_path):
    """Print the unique block keys of a space, one per line."""
    space = get_space(space_name, resolution)
    specs = space.blocks()
    if (informative is None) != (prior_path is None):
        raise UserError("--informative N and --for P.json go together")
    if informative is not None:
        specs = _informative(*_prior(prior_path, space), informative)
    for spec in specs:
        click.echo(spec.key)


@cli.command()
@click.option("--device", "device_names", required=True, multiple=True,
              help="Device profile name or file, ssh://USER@HOST[:PORT] or adb://SERIAL; "
                   "repeat it for several units of one model measuring one table together.")
@device_options
@click.option("--space", "space_name", default="tiny", show_default=True,
              help="Preset name or space file.")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Table to write (CSV); raw samples go beside it as .samples.json.")
@click.option("--resume", is_flag=True, help="Complete an interrupted table; measure only what is missing.")
@force_option
@click.option("--sample", type=click.IntRange(1), default=None, metavar="N",
              help="Instead of the space's blocks, N blocks sampled around it (widths x0.75-1.4, "
                   "resolutions down to 0.7x), for predictors that go beyond the table.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of --sample.")
@resolution_option
def measure(device_names, runtime, benchmark_binary, space_name, output, resume, force, sample,
            seed, resolution):
    """Measure every block of a space on a device."""
    from profiler.devices.measure import measure as measure_table  # imports torch: only when measuring
    from profiler.space.sampling import sample_blocks
    profiles = [profile_of(name, runtime, benchmark_binary) for name in device_names]
    space = get_space(space_name, resolution)
    specs, label = None, space.name
    if sample:
        specs, label = sample_blocks(space, sample, seed), f"{space.name}~sample{sample}-seed{seed}"
    read = [Path(n) for n in (*device_names, split_resolution(space_name)[0]) if Path(n).is_file()]
    table = measure_table(profiles, space, output, resume=resume, specs=specs, label=label,
                          force=force, inputs=read)
    unstable = int(table.df["unstable"].sum())
    click.echo(f"wrote {output}: {len(table)} blocks of {label} on "
               f"{table.fingerprint.get('device', '')}"
               + (f", {unstable} unstable" if unstable else ""))


@cli.command()
@click.argument("table_path", type=click.Path(path_type=Path))
def show(table_path):
    """Summarise a latency table: coverage, spread, fingerprint."""
    from profiler.tables.lut import coverage
    from profiler.tables.table import FINGERPRINT, LatencyTable

    table = LatencyTable.load(table_path)
    df = table.df
    click.echo(f"table:           {table_path}  ({len(table)} rows, schema {df['schema'].iloc[0]})")
    click.echo(f"space:           {table.space or '(none recorded)'}")
    cover = ", ".join(f"{n} {have}/{need}" for n, (have, need) in coverage(table.keys).items())
    click.echo(f"coverage:        {cover}")
    lat = df["latency_ms"]
    click.echo(f"latency:         {lat.min():.4g} .. {lat.max():.4g} ms per block (median {lat.median():.4g})")
    spread = df["spread"].dropna()
    if len(spread):
        unstable = df["key"][df["unstable"].astype(bool)]
        click.echo(f"spread:          median {spread.median():.1%}, max {spread.max():.1%}; "
                   f"{len(unstable)} unstable")
        for key in unstable:
            click.echo(f"  unstable:      {key}")
    samples = df["samples"].dropna()
    if len(samples):
        click.echo(f"samples:         {int(samples.min())}..{int(samples.max())} per block")
    fp = table.fingerprint
    for field in FINGERPRINT:
        value = fp.get(field)
        if value is not None and str(value) not in ("", "nan"):
            click.echo(f"{field + ':':17}{value}")


@cli.command("import-lut")
@click.argument("lut", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True)
@click.option("--device-name", default=None, help="Device to record (default: the file's name).")
@force_option
def import_lut_cmd(lut, output, device_name, force):
    """Import a ProxylessNAS/Once-for-All YAML lookup table ({key: {count, mean, var or std}}, ms)."""
    from profiler.tables.lut import import_lut

    table = import_lut(lut, device_name or lut.stem)
    _save_table(table, output, [lut], force)
    click.echo(f"wrote {output}: {len(table)} blocks; "
               + (f"covers preset {table.space}" if table.space else "covers no preset space fully"))


@cli.command()
@click.argument("tables", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True)
@force_option
def merge(tables, output, force):
    """Merge tables measured the same way (later tables win on shared keys)."""
    from profiler.tables.table import LatencyTable

    merged = LatencyTable.load(tables[0])
    for path in tables[1:]:
        merged = merged.merge(LatencyTable.load(path))
    _save_table(merged, output, tables, force)
    click.echo(f"wrote {output}: {len(merged)} blocks")


def _save_table(table: LatencyTable, output: Path, inputs, force: bool) -> None:
    """A table made from other files (imported, merged): no raw samples of its own, so a table's
    samples left at `output` described the old table and go with it."""
    from profiler.tables.table import samples_path

    with claimed(output, inputs, click.get_current_context().command_path, force=force,
                 companions=[samples_path(output)]):
        table.save(output)
        remove_stale([samples_path(output)])


class Folds(click.ParamType):
    name = "N|loo"

    def convert(self, value, param, ctx):
        if str(value) == "loo":
            return "loo"
        if str(value).isdigit() and int(value) >= 2:
            return int(value)
        self.fail(f"{value!r} is not a number of folds (2 or more) or loo", param, ctx)


@cli.command("fit-predictor")
@click.option("--table", "table_paths", type=click.Path(path_type=Path), required=True,
              multiple=True, help="Latency table(s) of one device; several are merged.")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True)
@click.option("--folds", type=Folds(), default="5", show_default=True,
              help="Cross-validation folds for the reported error, or loo (leave one out).")
@click.option("--cv-predictions", type=click.Path(path_type=Path), default=None,
              help="Write each block's cross-validated prediction to this CSV.")
@click.option("--model", "models", multiple=True, metavar="NAME",
              help="Model tried on each block kind (repeatable; default: every model: "
                   "positive-linear, gradient-boosting, random-forest); cross-validation chooses.")
@click.option("--calibrate-on", "device_name", default=None, metavar="DEVICE",
              help="Measure random whole networks on DEVICE and calibrate block sums to them.")
@device_options
@click.option("--networks", type=click.IntRange(3), default=10, show_default=True,
              help="Networks measured for the calibration.")
@click.option("--space", "space_name", default=None,
              help="Space of the calibration networks (default: the table's).")
@click.option("--seed", type=SEED, default=0, show_default=True)
@force_option
def fit_predictor(table_paths, output, folds, cv_predictions, models, device_name, runtime,
                  benchmark_binary, networks, space_name, seed, force):
    """Fit a latency predictor to tables; report its cross-validated error; calibrate it to whole
    networks measured end to end."""
    from predictors import calibrate, fit_table  # scikit-learn: only when fitting

    with claimed(output, table_paths, "pxprof fit-predictor", force=force, beside=cv_predictions):
        profile = profile_of(device_name, runtime, benchmark_binary) if device_name else None
        predictor = fit_table(list(table_paths), folds, cv_predictions=cv_predictions,
                              models=list(models) or None)
        cv = predictor.cv
        split = "leave-one-out" if folds == "loo" else f"{folds}-fold"
        for kind, report in cv["kinds"].items():
            errors = ", ".join(f"{name} {err:.1%}" for name, err in report["mape"].items())
            alone = " (too few blocks to try another model)" if len(report["mape"]) == 1 else ""
            click.echo(f"{kind} ({report['rows']} blocks): {errors} -> {report['model']}{alone}")
        click.echo(f"{split} cross-validated error per block: mean {cv['mape']:.1%}, "
                   f"median {cv['median_ape']:.1%}, p95 {cv['p95_ape']:.1%}, "
                   f"max {cv['max_ape']:.1%}; per-call cost {predictor.intercept_ms * 1e3:.3g} us")
        if profile:
            space = get_space(_space_name(space_name, predictor))
            predictor = calibrate(predictor, profile, space, networks, seed)
            info, cal = predictor.calibration_info, predictor.calibration
            errors = ", ".join(f"{form} {err:.1%}" for form, err in info["cv_mape"].items())
            click.echo(f"calibration on {networks} networks measured on {profile.name}: "
                       f"{info['form']} (scale {cal.scale:.3f}, per-call cost "
                       f"{cal.per_call_ms * 1e3:.3g} us); leave-one-out error {errors}"
                       f"{_left_out(info)}")
        predictor.save(output)
    click.echo(f"wrote {output}")


def _prior(path: Path, space=None):
    """The predictor adapted from, and the space it is used on: `space`, or its own."""
    from predictors import Predictor

    prior = Predictor.load(path)
    space = space or get_space(_space_name(None, prior))
    if prior.space != space.name:
        raise UserError(f"the predictor {path} is of space {prior.space!r}, not {space.name!r}")
    return prior, space


def _informative(prior, space, n: int):
    from predictors.adapt import informative

    return informative(prior, space, n)


@cli.command()
@click.option("--from", "prior_path", type=click.Path(path_type=Path), required=True,
              metavar="P.json", help="Predictor of another device to adapt from.")
@click.option("--device", "device_name", default=None, metavar="DEVICE",
              help="The new device: measure --blocks blocks (unless --table gives them) and "
                   "--networks whole networks on it.")
@device_options
@click.option("--table", "table_paths", type=click.Path(path_type=Path), multiple=True,
              help="A few measured entries of the new device instead (a partial table, or a "
                   "published lookup table cut down); repeatable.")
@click.option("--space", "space_name", default=None, help="Space (default: the predictor's).")
@click.option("--blocks", "n_blocks", type=click.IntRange(1), default=20, show_default=True,
              help="Blocks to measure on --device.")
@click.option("--networks", type=click.IntRange(0), default=5, show_default=True,
              help="Whole networks to measure on --device for the calibration (0: none).")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Predictor to write; the measured blocks go beside it as .blocks.csv.")
@click.option("--resume", is_flag=True, help="Complete an interrupted adaptation's block table.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@force_option
def adapt(prior_path, device_name, runtime, benchmark_binary, table_paths, space_name, n_blocks,
          networks, output, resume, seed, force):
    """Adapt another device's predictor to a new device from a few measured blocks."""
    import time

    from predictors import calibrate
    from predictors.model import adapt_table

    start = time.perf_counter()
    if not table_paths and not device_name:
        raise UserError("give the new device: --device D (blocks measured on it) or --table "
                        "FEW.csv (a few of its measured entries)")
    if device_name and 0 < networks < 3:
        raise UserError(f"--networks {networks}: a calibration needs at least 3 networks (0: none)")
    blocks_path = output.with_suffix(".blocks.csv")
    with claimed(output, [prior_path, *table_paths], "pxprof adapt", force=force, resume=resume,
                 companions=[] if table_paths else [blocks_path]):
        if device_name:
            prior, space = _prior(prior_path, get_space(space_name) if space_name else None)
        else:  # a table of a few entries names its space, which need not be a preset
            from predictors import Predictor

            prior = Predictor.load(prior_path)
        profile = profile_of(device_name, runtime, benchmark_binary) if device_name else None
        if not table_paths:
            from profiler.devices.measure import measure as measure_table

            chosen = _informative(prior, space, n_blocks)
            measure_table(profile, space, blocks_path, resume=resume, specs=chosen,
                          label=f"{space.name}~adapt{n_blocks}", force=force, inputs=[prior_path])
            table_paths = (blocks_path,)
            click.echo(f"measured {n_blocks} blocks on {profile.name} in "
                       f"{time.perf_counter() - start:.0f} s")
        predictor = adapt_table(prior, list(table_paths))
        cv = predictor.cv
        click.echo(f"adapted from {prior_path} ({prior.fingerprint.get('device', '?')}) with "
                   f"{len(predictor.measured)} measured blocks: {cv['speed_ratio']:.3g}x the "
                   f"source's latency plus its own deviation; leave-one-out error per block (an "
                   f"upper bound) mean {cv['mape']:.1%}, max {cv['max_ape']:.1%}")
        if profile is not None and networks:
            begun = time.perf_counter()
            predictor = calibrate(predictor, profile, space, networks, seed)
            info, cal = predictor.calibration_info, predictor.calibration
            click.echo(f"calibration on {networks} networks measured on {profile.name} in "
                       f"{time.perf_counter() - begun:.0f} s: {info['form']} (scale "
                       f"{cal.scale:.3f}, per-call cost {cal.per_call_ms * 1e3:.3g} us); "
                       f"leave-one-out error per network {info['cv_mape'][info['form']]:.1%}"
                       f"{_left_out(info)}")
        predictor.save(output)
    click.echo(f"wrote {output} in {time.perf_counter() - start:.0f} s")


def _left_out(info: dict) -> str:
    """The calibration networks left out of its fit (predictors/calibration.py), said."""
    out = info.get("left_out") or []
    return (f"; left out {len(out)} network(s) far from the others' fit (slowed by other work, "
            f"or unlike them): {out}") if out else ""


def _space_name(given, *sources) -> str:
    name = given or next((s.space for s in sources if s is not None and s.space), "")
    if not name:
        raise UserError("the latency source records no space; pass --space")
    return name


def _sources(table_path, predictor_path):
    """(the latency source, its table or None, its predictor or None), each file read once."""
    from predictors import open_source
    from profiler.tables.latency import Filled

    source = open_source(table_path, predictor_path)
    if isinstance(source, Filled):
        return source, source.table, source.predictor
    return source, source if table_path else None, source if predictor_path else None


def networks_options(least: int, networks: int, seed: int, predictor_required: bool = False):
    """The options of the commands that measure whole networks on a device against a latency
    source (check, validate): the device, the table and predictor, the space, and how many
    random networks (at least `least`) of which seed."""
    options = [
        click.option("--device", "device_name", required=True, help="Device profile name or file."),
        device_options,
        click.option("--table", "table_path", type=click.Path(path_type=Path), default=None),
        click.option("--predictor", "predictor_path", type=click.Path(path_type=Path),
                     required=predictor_required, default=None),
        click.option("--space", "space_name", default=None,
                     help="Preset or space file (default: the space the latency files record)."),
        click.option("--networks", type=click.IntRange(least), default=networks, show_default=True),
        click.option("--seed", type=SEED, default=seed, show_default=True)]

    def apply(f):
        for option in reversed(options):
            f = option(f)
        return f
    return apply


@cli.command()
@networks_options(least=1, networks=5, seed=0)
@resolution_option
@click.option("--arch", "arch_paths", type=click.Path(path_type=Path), multiple=True,
              help="Measure this architecture (arch.json or net.config; repeatable) instead of "
                   "random ones.")
def check(device_name, runtime, benchmark_binary, table_path, predictor_path, space_name, networks,
          seed, resolution, arch_paths):
    """Measure random whole networks and compare them with a table's sums and a predictor."""
    import numpy as np

    from profiler.devices.check import check_networks  # torch: only when checking

    _, table, predictor = _sources(table_path, predictor_path)
    given = get_space(space_name, resolution) if space_name else None
    archs = [load_arch(path, given) for path in arch_paths]
    if any(s.to_dict() != archs[0][0].to_dict() for s, _ in archs):
        raise UserError("the --arch architectures are of different spaces; check them one by one")
    space = archs[0][0] if archs else get_space(_space_name(space_name, table, predictor), resolution)
    rows = check_networks(profile_of(device_name, runtime, benchmark_binary), space, table,
                          predictor, networks, seed, [choices for _, choices in archs] or None)
    for row in rows:
        click.echo("  ".join(f"{k} {v:.4g} ms" if isinstance(v, float) else f"{k} {v}"
                             for k, v in row.items()))
    for source in ("table", "predictor"):
        if source in rows[0]:
            ratio = np.array([r[source] / r["measured"] for r in rows])
            click.echo(f"{source} / measured: mean {ratio.mean():.3f}, range {ratio.min():.3f} .. "
                       f"{ratio.max():.3f}; mean |error| {np.abs(ratio - 1).mean():.1%}")


@cli.command()
@click.option("--table", "table_path", type=click.Path(path_type=Path), default=None)
@click.option("--predictor", "predictor_path", type=click.Path(path_type=Path), default=None)
@click.option("--arch", "arch_path", type=click.Path(path_type=Path), required=True)
@click.option("--space", "space_name", default=None, help="Override the architecture's space.")
def predict(table_path, predictor_path, arch_path, space_name):
    """Whole-network latency of one architecture, in ms: a table's block sum, or a predictor's
    (calibrated when it is; a table given too is used where it has the block)."""
    source, _, _ = _sources(table_path, predictor_path)
    space, choices = load_arch(arch_path, get_space(space_name) if space_name else None)
    calibrated = " (calibrated)" if getattr(source, "calibration", None) else ""
    click.echo(f"{source.architecture_latency(space, choices):.6g} ms{calibrated}")


@cli.command("export")
@click.option("--arch", "arch_path", type=click.Path(path_type=Path), required=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="NET.onnx, NET.tflite or NET.pt (TorchScript): the format is the suffix.")
@click.option("--space", "space_name", default=None, help="Override the architecture's space.")
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the random weights.")
@force_option
def export_cmd(arch_path, output, space_name, batch, seed, force):
    """Write the whole network of an architecture (random weights: latency does not depend on
    them)."""
    from profiler.build.export import FORMATS
    by_suffix = {f.suffix: name for name, f in FORMATS.items()}
    if output.suffix not in by_suffix:
        raise UserError(f"cannot tell the format of {output}: use a suffix among "
                        f"{', '.join(by_suffix)}")
    with claimed(output, [arch_path], "pxprof export", force=force):
        space, choices = load_arch(arch_path, get_space(space_name) if space_name else None)
        import torch

        from profiler.build.blocks import build_network
        from profiler.build.export import export
        torch.manual_seed(seed)
        shape = space.input_shape(batch)
        export(build_network(space, choices), shape, by_suffix[output.suffix], output)
    click.echo(f"wrote {output}: {space.name}, input {'x'.join(map(str, shape))}")


# Architectures in and out: the net.config files of Once-for-All and ProxylessNAS.


@cli.group("arch")
def arch_group():
    """Read and write the net.config files of Once-for-All and ProxylessNAS (every --arch also
    takes a net.config as it is)."""


@arch_group.command("import")
@click.argument("net_config", type=click.Path(path_type=Path))
@click.option("--run-config", type=click.Path(path_type=Path), default=None,
              help="Once-for-All's run.config, for the image size (default: the run.config beside "
                   "NET_CONFIG, if any).")
@resolution_option
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Architecture file to write (arch.json).")
@force_option
def arch_import(net_config, run_config, resolution, output, force):
    """Write the architecture of a net.config in the preset space it belongs to."""
    from profiler.space.arch import save_arch
    from profiler.space.netconfig import beside, import_net_config

    run_config = run_config or beside(net_config)
    with claimed(output, [net_config, run_config], "pxprof arch import", force=force):
        space, choices = import_net_config(net_config, run_config, resolution)
        save_arch(output, space.name, choices)
    skipped = sum(c == "zero" for c in choices)
    click.echo(f"wrote {output}: {space.name}, {len(choices) - skipped} of {len(choices)} "
               f"searchable layers")


@arch_group.command("export")
@click.argument("arch_path", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="net.config to write: Once-for-All's format for mobilenetv3 spaces, "
                   "ProxylessNAS's for mobilenetv2 ones.")
@click.option("--run-config", type=click.Path(path_type=Path), default=None,
              help="Also write a run.config giving the image size (Once-for-All's).")
@click.option("--space", "space_name", default=None, help="Override the architecture's space.")
@force_option
def arch_export(arch_path, output, run_config, space_name, force):
    """Write the net.config of an architecture, for Once-for-All's or ProxylessNAS's code."""
    from profiler.space.netconfig import save_net_config

    with claimed(output, [arch_path], "pxprof arch export", force=force, beside=run_config):
        space, choices = load_arch(arch_path, get_space(space_name) if space_name else None)
        save_net_config(output, space, choices, run_config)
    click.echo(f"wrote {output}" + (f" and {run_config}" if run_config else "")
               + f": {space.name}")


@cli.command()
@networks_options(least=2, networks=20, seed=1, predictor_required=True)
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Report directory: report.csv, scatter.png and the raw samples.")
@click.option("--resume", is_flag=True, help="Complete an interrupted validation in OUTPUT.")
@force_option
def validate(device_name, runtime, benchmark_binary, predictor_path, table_path, space_name,
             networks, seed, out_dir, resume, force):
    """Measure fresh random networks end to end, twice, against the table sum, the predictor and
    a FLOPs baseline, beside the device's own test-retest error; write report.csv and
    scatter.png."""
    from predictors.validate import LABELS, SAMPLES, validate as run_validation

    with claimed(out_dir, [predictor_path, table_path], "pxprof validate", force=force,
                 resume=resume, directory=True):
        _, table, predictor = _sources(table_path, predictor_path)
        space = get_space(_space_name(space_name, predictor, table))
        profile = profile_of(device_name, runtime, benchmark_binary)
        if not resume:
            remove_stale([out_dir / SAMPLES])
        _, summary = run_validation(profile, space, predictor, table, networks, seed, out_dir)
    click.echo(f"{networks} networks of {space.name} measured end to end on {profile.name}, "
               f"twice:")
    click.echo(f"{'method':16} {'RMSE ms':>9} {'MAPE':>7} {'median':>7} {'p95':>7} {'±5 %':>7} "
               f"{'±10 %':>7}")
    for method, m in summary.items():
        click.echo(f"{LABELS[method]:16} {m['rmse_ms']:9.4g} {m['mape']:7.1%} "
                   f"{m['median_ape']:7.1%} {m['p95_ape']:7.1%} {m['within_5']:7.0%} "
                   f"{m['within_10']:7.0%}")
    click.echo(f"wrote {out_dir / 'report.csv'} and {out_dir / 'scatter.png'}")


def main():
    run(cli, "pxprof")
