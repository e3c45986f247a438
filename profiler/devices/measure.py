"""Measure every block of a space on a device (or a farm of one device model) into a latency
table, by the loop in profiler/devices/schedule.py.

The raw samples are kept beside the table (T.samples.json, profiler/tables/samples.py) and checkpointed
after every round: an interrupted run keeps its finished rows and its partial samples, and
`resume` measures only what is missing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from profiler.build.export import block_file
from profiler.errors import UserError
from profiler.outputs import claimed, remove_stale
from profiler.space.blockspec import BlockSpec, parse_key
from profiler.space.spaces import SearchSpace
from profiler.tables.fingerprint import Reference, farm
from profiler.tables.samples import Samples, method
from profiler.tables.speed import PRIOR, Rounds, fit_speed
from profiler.tables.table import LatencyTable, samples_path
from .profile import DeviceProfile
from .runtimes import get_runtime
from .schedule import Model, measure_all
from .session import DeviceSession


def block_model(spec: BlockSpec, runtime, batch: int) -> Model:
    """A block's model file for `runtime` (exported once, then cached) at `batch`."""
    return Model(block_file(spec, runtime, batch), (batch, spec.in_c, spec.in_h, spec.in_w))


def reference_model(profile: DeviceProfile) -> Model | None:
    """The profile's reference block as a model to time in every round, or None."""
    if not profile.reference:
        return None
    return block_model(parse_key(profile.reference), get_runtime(profile.runtime), profile.batch)


@contextlib.contextmanager
def sessions(profiles: list[DeviceProfile]):
    """Open a session on every device (DeviceUnavailable before any work when one cannot be)."""
    opened = []
    try:
        for profile in profiles:
            opened.append(DeviceSession(profile))
        yield opened
    finally:
        for s in opened:
            s.close()


def _farm_fingerprint(units: list[DeviceSession]) -> dict:
    settings = {repr(method(s.profile)) for s in units}
    if len(settings) > 1:
        raise UserError("devices measuring one table together need the same measurement settings")
    try:
        return farm([s.fingerprint for s in units])
    except ValueError as exc:
        raise UserError(f"devices measuring one table together must be of one model and runtime; "
                        f"they differ in {exc}") from None


def measure(profiles: list[DeviceProfile] | DeviceProfile, space: SearchSpace, out: Path,
            resume: bool = False, specs: list[BlockSpec] | None = None,
            label: str | None = None, force: bool = False, inputs=()) -> LatencyTable:
    """Measure `specs` (default: every block of `space`) into the table `out`, resuming if asked
    (or replacing it, with `force`); several profiles split the blocks among them. The table
    records `label` (default: the space's name) as the space its rows were measured for.
    `inputs` are the files the run reads (profiles, a space file): never its output."""
    label = label or space.name
    profiles = [profiles] if isinstance(profiles, DeviceProfile) else list(profiles)
    spath = samples_path(Path(out))
    with claimed(Path(out), inputs, "pxprof measure", force=force, resume=resume,
                 companions=[spath]) as out:
        if force and not resume:
            remove_stale([out, spath])
        if resume and out.exists() and not spath.exists():
            raise UserError(f"cannot resume {out}: its raw samples {spath.name} are missing")
        specs = specs or space.blocks()
        samples = Samples.load(spath) if resume and spath.exists() else None
        return _measure(profiles, specs, label, samples, out, spath)


def _measure(profiles, specs, label, samples, out, spath) -> LatencyTable:
    with sessions(profiles) as units:
        fp = _farm_fingerprint(units)
        settings = method(profiles[0])
        if samples:
            samples.check_resumable(label, settings, fp, spath)
        else:
            samples = Samples.new(label, settings, fp)
        runtime, batch = units[0].runtime, profiles[0].batch
        todo = [s for s in specs if samples.needs_work(s.key)]
        models = {s.key: block_model(s, runtime, batch)
                  for s in tqdm(todo, desc="export", unit="block", leave=False)}

        def checkpoint():
            samples.save(spath)
            table = samples.table(specs)
            if len(table):
                table.save(out)

        names = " + ".join(dict.fromkeys(p.name for p in profiles))
        try:
            measure_all(units, samples, models, checkpoint, desc=f"measure {label} on {names}",
                        reference=reference_model(profiles[0]))
        finally:
            checkpoint()
    return samples.table(specs)


@dataclass(frozen=True)
class Timed:
    """Whole models timed on a device: each one's latency (ms: the profile's quantile of its
    samples) and, when the device has a reference, how they followed it in each round
    (profiler/tables/speed.py)."""
    ms: dict[str, float]
    rounds: Rounds
    reference: str  # the reference block's key, "" for none

    def at(self, reference: Reference | None) -> dict[str, float]:
        """Each model's latency at the device speed of a measurement whose reference block ran
        at reference.ms then (a table's `reference`), with its elasticity as the prior of this
        run's; the quantiles as measured when either has no reference or they are not the same
        block."""
        if not reference or reference.key != self.reference:
            return dict(self.ms)
        speed = fit_speed(self.rounds, PRIOR if reference.elasticity is None
                          else (reference.elasticity, reference.weight))
        if speed is None or not set(self.ms) <= set(speed.level):
            return dict(self.ms)
        return {name: speed.at(name, reference.ms) for name in self.ms}


def measure_models(profile: DeviceProfile, models: dict[str, Model], progress: bool = True,
                   units: list[DeviceSession] | None = None,
                   checkpoint: Path | None = None) -> Timed:
    """Time whole model files on a device (in `units`, sessions already open on it, if given) by
    the same loop as blocks. With `checkpoint`, the samples are kept there after every round,
    and what it holds already is not measured again."""
    with contextlib.ExitStack() as stack:
        units = units or stack.enter_context(sessions([profile]))
        settings = method(profile) | {"retries": 0}
        if checkpoint and checkpoint.exists():
            samples = Samples.load(checkpoint)
            samples.check_resumable("", settings, units[0].fingerprint, checkpoint)
        else:
            samples = Samples.new("", settings, units[0].fingerprint)
        try:
            measure_all(units, samples, models, desc="measure networks", progress=progress,
                        checkpoint=(lambda: samples.save(checkpoint)) if checkpoint else
                        (lambda: None), reference=reference_model(profile))
        finally:
            if checkpoint:
                samples.save(checkpoint)
    return Timed({name: samples.best(name).latency for name in models}, samples.speed_rounds(models),
                 profile.reference)
