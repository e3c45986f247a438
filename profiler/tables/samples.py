"""The raw samples of a table being measured or done: what T.samples.json holds.

Format `pxnas-samples`, version 2:

    space, method {warmup_s, rounds, runs_per_round, min_sample_ms, max_spread, retries,
                   quantile, reference},
    fingerprint {…},
    blocks {key: {attempts: [{warmup, inner, unit?, rounds: [[ms, …] per round],
                              ref?: [[ms, …] per round: the reference's sample before each],
                              ref_inner?: calls per reference sample, in the last round}]}},
    drift [{unit, round, ratio, cooldowns, rebased, redone: [keys]}]   (optional)

An attempt is complete when it has `rounds` rounds; a key needs work until it has a complete
attempt steady enough (spread ≤ max_spread: profiler/tables/measurement.py) or has used its
retries.

With a reference (a device profile's `reference` block), each sample is taken right after one
of the reference, so that every round of a model says how fast the device ran then. How the
run's models follow the reference puts each at one device speed: the run's own for a table's
rows, a table's for networks measured later (`speed`, profiler/tables/speed.py, and
measure.Timed.at).

History: 1 (pxnas 0.1) first version; 2 adds the reference and the quantile. Version 1 files are
read as version 2 without a reference, with the median.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from profiler.errors import UserError
from profiler.files import write_text
from profiler.limits import MAX_BLOCK_MS
from profiler.records import check_fields, load_record, read_mapping, spec
from profiler.space.blockspec import BlockSpec
from .fingerprint import CHECKED, mismatch
from .measurement import Measurement
from .speed import Rounds, fit_speed
from .table import LatencyTable, measurement_row

SAMPLES_FORMAT = "pxnas-samples"
SAMPLES_VERSION = 2
READS = (1, 2)
METHOD = ("warmup_s", "rounds", "runs_per_round", "min_sample_ms", "max_spread", "retries",
          "quantile", "reference")


def method(profile) -> dict:
    return {m: getattr(profile, m) for m in METHOD}


@dataclass(frozen=True)
class _Attempt:
    warmup: int = spec(ge=0)
    inner: int = spec(ge=1)
    rounds: list[list[float]] = spec(gt=0, le=MAX_BLOCK_MS)  # ms, every one positive
    unit: str | None = None  # the farm unit that took it
    ref: list[list[float]] | None = spec(None, gt=0, le=MAX_BLOCK_MS)  # the reference's, before each
    ref_inner: int | None = spec(None, ge=1)

    def __post_init__(self):
        check_fields(self)
        if not all(self.rounds):
            raise UserError("rounds: a round holds at least one sample")
        if self.ref is not None and list(map(len, self.ref)) != list(map(len, self.rounds)):
            raise UserError("ref: one reference sample per sample")


@dataclass(frozen=True)
class _Block:
    attempts: list[_Attempt]

    def __post_init__(self):
        check_fields(self)


@dataclass(frozen=True)
class _SamplesFile:
    """The checked shape of a samples file (the file's data stays a plain mapping, appended to
    as the measurement goes)."""
    format: str
    version: int
    space: str
    method: dict
    fingerprint: dict
    blocks: dict[str, _Block]
    drift: list[dict] = spec(default_factory=list)

    def __post_init__(self):
        check_fields(self)
        for name, want in (("method", METHOD), ("fingerprint", CHECKED)):
            missing = [k for k in want if k not in getattr(self, name)]
            if missing:
                raise UserError(f"{name}: missing {', '.join(missing)}")


class Samples:
    def __init__(self, data: dict):
        self.data = data
        # Several units of a farm record into one Samples; a save must not see a half-made change.
        self.lock = threading.RLock()

    @classmethod
    def new(cls, space: str, method: dict, fp: dict) -> "Samples":
        return cls({"format": SAMPLES_FORMAT, "version": SAMPLES_VERSION, "space": space,
                    "method": dict(method), "fingerprint": fp, "blocks": {}})

    @classmethod
    def load(cls, path: Path) -> "Samples":
        try:
            data = read_mapping(Path(path), "pxnas samples file")
            if not isinstance(data, dict) or data.get("format") != SAMPLES_FORMAT:
                raise UserError(f"{path}: not a pxnas samples file")
            if data.get("version") not in READS:
                raise UserError(f"{path}: samples version {data.get('version')!r}, this pxnas "
                                f"reads {', '.join(map(str, READS))}")
            if data["version"] == 1 and isinstance(data.get("method"), dict):
                data["method"].update(reference="", quantile=0.5)
                data["version"] = SAMPLES_VERSION
            load_record(_SamplesFile, data, f"{path}: malformed samples")
        except UserError as exc:
            raise UserError(f"cannot resume: {exc}") from None
        return cls(data)

    def check_resumable(self, space: str, method: dict, fp: dict, path: Path) -> None:
        d = self.data
        if d["space"] != space:
            raise UserError(f"cannot resume {path}: it measures space {d['space']}, not {space}")
        if d["method"] != method:
            raise UserError(f"cannot resume {path}: the device's measurement settings changed "
                            f"since it was started")
        differ = mismatch(d["fingerprint"], fp)
        if differ:
            raise UserError(f"cannot resume {path}: it was measured with a different {differ}")

    @property
    def rounds(self) -> int:
        return self.data["method"]["rounds"]

    def attempts(self, key: str) -> list[dict]:
        return self.data["blocks"].setdefault(key, {"attempts": []})["attempts"]

    def open_attempt(self, key: str) -> dict | None:
        attempts = self.attempts(key)
        return attempts[-1] if attempts and len(attempts[-1]["rounds"]) < self.rounds else None

    def new_attempt(self, key: str, warmup: int, inner: int, unit: str) -> dict:
        with self.lock:
            self.attempts(key).append({"warmup": warmup, "inner": inner, "unit": unit, "rounds": []})
            return self.attempts(key)[-1]

    def add_round(self, key: str, times: list[float], ref: list[float] | None = None,
                  ref_inner: int | None = None) -> None:
        """A round of `key`; `ref`: the reference's sample before each of its samples, each of
        `ref_inner` calls."""
        with self.lock:
            attempt = self.open_attempt(key)
            attempt["rounds"].append(list(times))
            if ref is not None:
                attempt.setdefault("ref", []).append(list(ref))
                attempt["ref_inner"] = ref_inner

    def drop_round(self, key: str) -> None:
        """Forget the last round of `key`'s current attempt (taken while the device drifted)."""
        with self.lock:
            attempt = self.attempts(key)[-1]
            if attempt["rounds"]:
                attempt["rounds"].pop()
                if attempt.get("ref"):
                    attempt["ref"].pop()

    def add_drift(self, event: dict) -> None:
        with self.lock:
            self.data.setdefault("drift", []).append(event)

    @property
    def quantile(self) -> float:
        """The quantile of an entry's samples taken as its latency."""
        return self.data["method"]["quantile"]

    def speed_rounds(self, keys) -> Rounds:
        """What the device speed over the best attempts of `keys` is fitted from
        (profiler/tables/speed.py): those that timed the reference."""
        each, pooled = {}, {}
        for key in keys:
            _, attempt = self._best(key)
            if attempt and attempt.get("ref"):
                q = self.quantile
                each[key] = ([float(np.quantile(r, q)) for r in attempt["rounds"]],
                             [float(np.quantile(r, q)) for r in attempt["ref"]])
                pooled[key] = tuple(float(np.quantile(np.concatenate(attempt[part]), q))
                                    for part in ("rounds", "ref"))
        return Rounds(each, pooled)

    def _best(self, key: str) -> tuple[Measurement, dict] | tuple[None, None]:
        """The steadiest complete attempt of `key` as a Measurement, and the attempt."""
        done = [(Measurement(key, tuple(t for r in a["rounds"] for t in r), a["warmup"],
                             a["inner"], self.quantile, tuple(map(len, a["rounds"]))), a)
                for a in self.attempts(key) if len(a["rounds"]) >= self.rounds]
        return min(done, key=lambda d: d[0].spread) if done else (None, None)

    def best(self, key: str) -> Measurement | None:
        return self._best(key)[0]

    def needs_work(self, key: str) -> bool:
        method, attempts = self.data["method"], self.attempts(key)
        if not attempts or len(attempts[-1]["rounds"]) < method["rounds"]:
            return True
        return self.best(key).spread > method["max_spread"] and len(attempts) <= method["retries"]

    def table(self, specs: list[BlockSpec]) -> LatencyTable:
        """The finished entries of `specs`. With a reference, each at the run's typical device
        speed (profiler/tables/speed.py), as whole networks measured later are put on it: a
        block's own quantile is at the speed of the rounds it happened to find."""
        with self.lock:
            max_spread = self.data["method"]["max_spread"]
            done = [s.key for s in specs if s.key in self.data["blocks"] and not self.needs_work(s.key)]
            speed = fit_speed(self.speed_rounds(done))
            rows = []
            for key in done:
                rows.append(measurement_row(self.best(key), max_spread))
                if speed and key in speed.level:
                    rows[-1]["latency_ms"] = speed.at(key, speed.reference_ms)
            # Networks measured against the table are read at its speed, with its elasticity
            # as their prior (profiler/tables/speed.py); none where it was read in proportion.
            known = speed and speed.weight > 0
            reference = {"reference": self.data["method"]["reference"] or None,
                         "reference_ms": speed.reference_ms if speed else None,
                         "reference_elasticity": speed.beta if known else None,
                         "reference_weight": speed.weight if known else None}
            return LatencyTable.from_rows(rows, self.data["space"],
                                          self.data["fingerprint"] | reference)

    def save(self, path: Path) -> None:
        with self.lock:
            text = json.dumps(self.data, indent=1) + "\n"
        write_text(path, text)
