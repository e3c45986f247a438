"""Measure every block of a space on a device into a latency table.

The method, against a machine whose speed drifts by tens of percent over minutes:
- each block is warmed up until its times settle, then its calls are grouped into calibrated
  samples of at least `min_sample_ms` so the timer's cost is negligible;
- samples are taken in rounds; every round visits all blocks in a fresh random order, so slow drift
  of the machine lands on all blocks alike instead of on whichever block ran during a slow spell;
- the raw samples are kept (T.samples.json) and checkpointed after every round: an interrupted run
  keeps its finished rows and its partial samples, and `resume` measures only what is missing;
- an entry whose IQR/median exceeds `max_spread` is measured again from scratch (up to `retries`
  times) and the steadiest attempt is kept; one that stays noisy is marked `unstable`.
"""

from __future__ import annotations

import datetime
import json
import random
from pathlib import Path

from tqdm import tqdm

from . import __version__
from .blockspec import BlockSpec
from .devices import DeviceProfile
from .errors import UserError
from .export import block_file
from .files import check_writable, write_json
from .measurement import Measurement
from .runner import DeviceSession
from .space import SearchSpace
from .table import CHECKED, LatencyTable, measurement_row, samples_path

SAMPLES_FORMAT = "pxnas-samples"
SAMPLES_VERSION = 1
METHOD = ("warmup_s", "rounds", "runs_per_round", "min_sample_ms", "max_spread", "retries")


def fingerprint(profile: DeviceProfile, facts: dict) -> dict:
    return {"device": profile.name, "transport": profile.transport, "runtime": profile.runtime,
            "runtime_version": facts["runtime_version"], "threads": profile.threads,
            "batch": profile.batch, "host": facts["host"], "host_cpu": facts["host_cpu"],
            "cpu_affinity": facts["cpu_affinity"], "governor": facts["governor"],
            "temperature_c": facts["temperature_c"],
            "measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "pxnas_version": __version__}


def _well_formed(data: dict) -> bool:
    try:
        return (isinstance(data["space"], str) and set(METHOD) <= set(data["method"])
                and set(CHECKED) <= set(data["fingerprint"])
                and all(a["inner"] >= 1 and a["warmup"] >= 0
                        and all(len(r) and all(t > 0 for t in r) for r in a["rounds"])
                        for block in data["blocks"].values() for a in block["attempts"]))
    except (KeyError, TypeError, AttributeError):
        return False


class Samples:
    """The raw samples of a measurement in progress or done: what T.samples.json holds."""

    def __init__(self, data: dict):
        self.data = data

    @classmethod
    def new(cls, space: str, profile: DeviceProfile, fp: dict) -> "Samples":
        return cls({"format": SAMPLES_FORMAT, "version": SAMPLES_VERSION, "space": space,
                    "method": {m: getattr(profile, m) for m in METHOD}, "fingerprint": fp,
                    "blocks": {}})

    @classmethod
    def load(cls, path: Path) -> "Samples":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot resume from {path}: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != SAMPLES_FORMAT:
            raise UserError(f"cannot resume from {path}: not a pxnas samples file")
        if data.get("version") != SAMPLES_VERSION:
            raise UserError(f"cannot resume from {path}: samples version {data.get('version')}, "
                            f"this pxnas writes {SAMPLES_VERSION}")
        if not _well_formed(data):
            raise UserError(f"cannot resume from {path}: its samples are malformed")
        return cls(data)

    def check_resumable(self, space: str, profile: DeviceProfile, fp: dict, path: Path) -> None:
        d = self.data
        if d["space"] != space:
            raise UserError(f"cannot resume {path}: it measures space {d['space']}, not {space}")
        method = {m: getattr(profile, m) for m in METHOD}
        if d["method"] != method:
            raise UserError(f"cannot resume {path}: device {profile.name}'s measurement settings "
                            f"changed since it was started")
        for c in CHECKED:
            if str(d["fingerprint"][c]) != str(fp[c]):
                raise UserError(f"cannot resume {path}: it was measured with {c} "
                                f"{d['fingerprint'][c]}, this run has {fp[c]}")

    def attempts(self, key: str) -> list[dict]:
        return self.data["blocks"].setdefault(key, {"attempts": []})["attempts"]

    def _complete(self, key: str) -> list[Measurement]:
        rounds = self.data["method"]["rounds"]
        return [Measurement(key, tuple(t for r in a["rounds"] for t in r), a["warmup"], a["inner"])
                for a in self.attempts(key) if len(a["rounds"]) >= rounds]

    def best(self, key: str) -> Measurement | None:
        done = self._complete(key)
        return min(done, key=lambda m: m.spread) if done else None

    def needs_work(self, key: str) -> bool:
        method, attempts = self.data["method"], self.attempts(key)
        if not attempts or len(attempts[-1]["rounds"]) < method["rounds"]:
            return True
        return self.best(key).spread > method["max_spread"] and len(attempts) <= method["retries"]

    def table(self, specs: list[BlockSpec]) -> LatencyTable:
        max_spread = self.data["method"]["max_spread"]
        rows = [measurement_row(self.best(s.key), max_spread) for s in specs
                if s.key in self.data["blocks"] and not self.needs_work(s.key)]
        return LatencyTable.from_rows(rows, self.data["space"], self.data["fingerprint"])

    def save(self, path: Path) -> None:
        write_json(path, self.data)


def measure(profile: DeviceProfile, space: SearchSpace, out: Path, resume: bool = False,
            specs: list[BlockSpec] | None = None) -> LatencyTable:
    """Measure `specs` (default: every block of `space`) into the table `out`, resuming if asked."""
    out = check_writable(Path(out))
    spath = samples_path(out)
    if not resume and (out.exists() or spath.exists()):
        raise UserError(f"{out} exists; pass --resume to complete it, or choose another output")
    if resume and out.exists() and not spath.exists():
        raise UserError(f"cannot resume {out}: its raw samples {spath.name} are missing")
    specs = specs or space.blocks()
    samples = Samples.load(spath) if resume and spath.exists() else None

    with DeviceSession(profile) as dev:
        fp = fingerprint(profile, dev.facts)
        if samples:
            samples.check_resumable(space.name, profile, fp, spath)
        else:
            samples = Samples.new(space.name, profile, fp)
        todo = [s for s in specs if samples.needs_work(s.key)]
        paths = {s.key: block_file(s, profile.model_format, profile.batch)
                 for s in tqdm(todo, desc="export", unit="block", leave=False)}
        loaded = set()

        def start(spec: BlockSpec) -> dict:
            """Load a block into this process if needed and return its open attempt, warming up and
            calibrating for every new attempt (and once per process for a resumed one)."""
            attempts = samples.attempts(spec.key)
            is_open = bool(attempts) and len(attempts[-1]["rounds"]) < profile.rounds
            if spec.key not in loaded:
                shape = device_shape(profile, (profile.batch, spec.in_c, spec.in_h, spec.in_w))
                dev.request(op="load", name=spec.key, path=str(paths[spec.key]), shape=shape)
                loaded.add(spec.key)
            elif is_open:
                return attempts[-1]
            warm = dev.request(op="warmup", name=spec.key, max_s=profile.warmup_s,
                               min_sample_ms=profile.min_sample_ms)
            if not is_open:
                attempts.append({"warmup": warm["warmup"], "inner": warm["inner"], "rounds": []})
            return attempts[-1]

        rng = random.Random(0)
        bar = tqdm(total=0, desc=f"measure {space.name} on {profile.name}", unit="block-round")
        try:
            while todo:
                current = {s.key: start(s) for s in tqdm(todo, desc="warm-up", unit="block",
                                                         leave=False)}
                bar.total += sum(profile.rounds - len(a["rounds"]) for a in current.values())
                bar.refresh()
                while True:
                    order = [s for s in todo if len(current[s.key]["rounds"]) < profile.rounds]
                    if not order:
                        break
                    rng.shuffle(order)
                    for s in order:
                        att = current[s.key]
                        times = dev.request(op="sample", name=s.key, inner=att["inner"],
                                            count=profile.runs_per_round)["times_ms"]
                        att["rounds"].append(times)
                        bar.update()
                    _checkpoint(samples, specs, out, spath)
                todo = [s for s in todo if samples.needs_work(s.key)]
        finally:
            bar.close()
            _checkpoint(samples, specs, out, spath)
    return samples.table(specs)


def device_shape(profile: DeviceProfile, nchw) -> list[int]:
    """The input shape a device's model file takes: TFLite files are exported channel-last."""
    n, c, h, w = nchw
    return [n, h, w, c] if profile.model_format == "tflite" else [n, c, h, w]


def measure_models(profile: DeviceProfile, models: dict[str, tuple[Path, tuple]],
                   progress: bool = True) -> dict:
    """Time whole model files ({name: (path, NCHW input shape)}) on a device, by the same method as
    blocks: warm-up and calibration, then rounds interleaved across the models. Nothing is kept."""
    with DeviceSession(profile) as dev:
        inner = {}
        for name, (path, shape) in models.items():
            dev.request(op="load", name=name, path=str(path), shape=device_shape(profile, shape))
            warm = dev.request(op="warmup", name=name, max_s=profile.warmup_s,
                               min_sample_ms=profile.min_sample_ms)
            inner[name] = (warm["warmup"], warm["inner"])
        times = {name: [] for name in models}
        rng = random.Random(0)
        for _ in tqdm(range(profile.rounds), desc="measure networks", unit="round", leave=False,
                      disable=not progress):
            order = list(models)
            rng.shuffle(order)
            for name in order:
                times[name] += dev.request(op="sample", name=name, inner=inner[name][1],
                                           count=profile.runs_per_round)["times_ms"]
    return {name: Measurement(name, tuple(times[name]), *inner[name]) for name in models}


def _checkpoint(samples: Samples, specs, out: Path, spath: Path) -> None:
    samples.save(spath)
    table = samples.table(specs)
    if len(table):
        table.save(out)
