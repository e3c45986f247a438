"""The raw samples of a table being measured or done: what T.samples.json holds.

Format `pxnas-samples`, version 1:

    space, method {warmup_s, rounds, runs_per_round, min_sample_ms, max_spread, retries},
    fingerprint {…},
    blocks {key: {attempts: [{warmup, inner, unit?, rounds: [[ms, …] per round]}]}},
    drift [{unit, round, ratio, cooldowns, rebased, redone: [keys]}]   (optional)

An attempt is complete when it has `rounds` rounds; a key needs work until it has a complete
attempt steady enough (IQR/median ≤ max_spread) or has used its retries.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

from .blockspec import BlockSpec
from .errors import UserError
from .files import write_text
from .fingerprint import CHECKED, mismatch
from .measurement import Measurement
from .records import check_fields, load_record, read_mapping, spec
from .table import LatencyTable, measurement_row

SAMPLES_FORMAT = "pxnas-samples"
SAMPLES_VERSION = 1
METHOD = ("warmup_s", "rounds", "runs_per_round", "min_sample_ms", "max_spread", "retries")


def method(profile) -> dict:
    return {m: getattr(profile, m) for m in METHOD}


@dataclass(frozen=True)
class _Attempt:
    warmup: int = spec(ge=0)
    inner: int = spec(ge=1)
    rounds: list[list[float]] = spec(gt=0)  # ms, every one positive
    unit: str | None = None  # the farm unit that took it

    def __post_init__(self):
        check_fields(self)
        if not all(self.rounds):
            raise UserError("rounds: a round holds at least one sample")


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
            if data.get("version") != SAMPLES_VERSION:
                raise UserError(f"{path}: samples version {data.get('version')!r}, this pxnas "
                                f"writes {SAMPLES_VERSION}")
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

    def add_round(self, key: str, times: list[float]) -> None:
        with self.lock:
            self.open_attempt(key)["rounds"].append(list(times))

    def drop_round(self, key: str) -> None:
        """Forget the last round of `key`'s current attempt (taken while the device drifted)."""
        with self.lock:
            attempt = self.attempts(key)[-1]
            if attempt["rounds"]:
                attempt["rounds"].pop()

    def add_drift(self, event: dict) -> None:
        with self.lock:
            self.data.setdefault("drift", []).append(event)

    def _complete(self, key: str) -> list[Measurement]:
        return [Measurement(key, tuple(t for r in a["rounds"] for t in r), a["warmup"], a["inner"])
                for a in self.attempts(key) if len(a["rounds"]) >= self.rounds]

    def best(self, key: str) -> Measurement | None:
        done = self._complete(key)
        return min(done, key=lambda m: m.spread) if done else None

    def needs_work(self, key: str) -> bool:
        method, attempts = self.data["method"], self.attempts(key)
        if not attempts or len(attempts[-1]["rounds"]) < method["rounds"]:
            return True
        return self.best(key).spread > method["max_spread"] and len(attempts) <= method["retries"]

    def table(self, specs: list[BlockSpec]) -> LatencyTable:
        with self.lock:
            max_spread = self.data["method"]["max_spread"]
            rows = [measurement_row(self.best(s.key), max_spread) for s in specs
                    if s.key in self.data["blocks"] and not self.needs_work(s.key)]
            return LatencyTable.from_rows(rows, self.data["space"], self.data["fingerprint"])

    def save(self, path: Path) -> None:
        with self.lock:
            text = json.dumps(self.data, indent=1) + "\n"
        write_text(path, text)
