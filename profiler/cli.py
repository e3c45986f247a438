"""pxprof: profile blocks on devices into latency tables, and read those tables."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from . import __version__
from .arch import load_arch
from .console import run
from .devices import get_device, list_devices
from .errors import DeviceUnavailable, UserError
from .files import check_writable
from .lut import coverage, import_lut
from .runtimes import RUNTIMES
from .space import get_space, list_spaces
from .table import FINGERPRINT, LatencyTable


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


def profile_of(name: str, runtime, benchmark_binary):
    return get_device(name, runtime, benchmark_binary=str(benchmark_binary or ""))


@cli.command()
@click.option("--check", "check_name", default=None, metavar="DEVICE",
              help="Say whether DEVICE is reachable and ready, and what is missing.")
@device_options
def devices(check_name, runtime, benchmark_binary):
    """List the device profiles, or check one."""
    if check_name is None:
        for d in list_devices():
            threads = f"{d.threads} thread{'s' if d.threads > 1 else ''}"
            click.echo(f"{d.name:12} {d.transport:6} {d.runtime:16} {threads:10} {d.description}")
        return
    from .session import DeviceSession
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
def spaces():
    """List the preset search spaces."""
    for name in list_spaces():
        s = get_space(name)
        click.echo(f"{name:18} {s.resolution} px, {len(s.layers())} searchable layers, "
                   f"{len(s.blocks())} blocks to profile, ops: {' '.join(s.ops)}")


@cli.command()
@click.option("--space", "space_name", required=True, help="Preset name or space file.")
def blocks(space_name):
    """Print the unique block keys of a space, one per line."""
    for spec in get_space(space_name).blocks():
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
def measure(device_names, runtime, benchmark_binary, space_name, output, resume):
    """Measure every block of a space on a device."""
    from .measure import measure as measure_table  # imports torch: only when measuring
    profiles = [profile_of(name, runtime, benchmark_binary) for name in device_names]
    space = get_space(space_name)
    table = measure_table(profiles, space, output, resume=resume)
    unstable = int(table.df["unstable"].sum())
    click.echo(f"wrote {output}: {len(table)} blocks of {space.name} on "
               f"{table.fingerprint.get('device', '')}"
               + (f", {unstable} unstable" if unstable else ""))


@cli.command()
@click.argument("table_path", type=click.Path(path_type=Path))
def show(table_path):
    """Summarise a latency table: coverage, spread, fingerprint."""
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
        click.echo(f"spread:          IQR/median median {spread.median():.1%}, max {spread.max():.1%}; "
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
def import_lut_cmd(lut, output, device_name):
    """Import a ProxylessNAS/Once-for-All YAML lookup table ({key: {count, mean, var}}, ms)."""
    check_writable(output)
    table = import_lut(lut, device_name or lut.stem)
    table.save(output)
    click.echo(f"wrote {output}: {len(table)} blocks; "
               + (f"covers preset {table.space}" if table.space else "covers no preset space fully"))


@cli.command()
@click.argument("tables", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True)
def merge(tables, output):
    """Merge tables measured the same way (later tables win on shared keys)."""
    check_writable(output)
    merged = LatencyTable.load(tables[0])
    for path in tables[1:]:
        merged = merged.merge(LatencyTable.load(path))
    merged.save(output)
    click.echo(f"wrote {output}: {len(merged)} blocks")


@cli.command("fit-predictor")
@click.option("--table", "table_path", type=click.Path(path_type=Path), required=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True)
@click.option("--folds", type=click.IntRange(2), default=5, show_default=True,
              help="Cross-validation folds for the reported error.")
def fit_predictor(table_path, output, folds):
    """Fit a latency predictor to a table; report its cross-validated error."""
    from predictors import fit_table  # scikit-learn: only when fitting

    check_writable(output)
    predictor = fit_table(table_path, folds)
    predictor.save(output)
    cv = predictor.cv
    click.echo(f"wrote {output}: {folds}-fold cross-validated error per block: mean {cv['mape']:.1%}, "
               f"median {cv['median_ape']:.1%}, p95 {cv['p95_ape']:.1%}, max {cv['max_ape']:.1%}; "
               f"per-call cost {predictor.intercept_ms * 1e3:.3g} us")


@cli.command()
@click.option("--device", "device_name", required=True, help="Device profile name or file.")
@device_options
@click.option("--table", "table_path", type=click.Path(path_type=Path), default=None)
@click.option("--predictor", "predictor_path", type=click.Path(path_type=Path), default=None)
@click.option("--space", "space_name", default=None,
              help="Preset or space file (default: the table's or predictor's space).")
@click.option("--networks", type=click.IntRange(1), default=5, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def check(device_name, runtime, benchmark_binary, table_path, predictor_path, space_name, networks,
          seed):
    """Measure random whole networks and compare them with a table's sums and a predictor."""
    from .check import check_networks  # torch: only when checking

    if table_path is None and predictor_path is None:
        raise UserError("give --table, --predictor or both")
    table = LatencyTable.load(table_path) if table_path else None
    predictor = None
    if predictor_path:
        from predictors import load
        predictor = load(predictor_path)
    space_name = space_name or (table.space if table else "") or (predictor.space if predictor else "")
    if not space_name:
        raise UserError("the table records no space; pass --space")
    rows = check_networks(profile_of(device_name, runtime, benchmark_binary), get_space(space_name), table, predictor,
                          networks, seed)
    for row in rows:
        click.echo("  ".join(f"{k} {v:.4g} ms" if isinstance(v, float) else f"{k} {v}"
                             for k, v in row.items()))
    for source in ("table", "predictor"):
        if source in rows[0]:
            ratio = np.array([r[source] / r["measured"] for r in rows])
            click.echo(f"{source} / measured: mean {ratio.mean():.3f}, range {ratio.min():.3f} .. "
                       f"{ratio.max():.3f}; mean |error| {np.abs(ratio - 1).mean():.1%}")


@cli.command()
@click.option("--table", "table_path", type=click.Path(path_type=Path), required=True)
@click.option("--arch", "arch_path", type=click.Path(path_type=Path), required=True)
@click.option("--space", "space_name", default=None, help="Override the architecture's space.")
def predict(table_path, arch_path, space_name):
    """Table latency of one architecture: its blocks and fixed layers summed, in ms."""
    table = LatencyTable.load(table_path)
    space, choices = load_arch(arch_path, get_space(space_name) if space_name else None)
    click.echo(f"{table.network_latency(space, choices):.4f} ms")


def main():
    run(cli, "pxprof")
