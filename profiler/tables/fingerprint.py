"""The fingerprint of a measurement: how and where it was taken, and which of it must agree.

Two measurements are comparable (resumed into one table, merged, compared) only when their CHECKED
fields agree. UNIT fields say which unit of a device model measured; they may differ between the
phones of a farm measuring one table together, and nowhere else. The rest is information.
Device facts that no table column holds (Android version, ABI, CPU frequencies, …) stay in
`facts` and are kept in the raw samples file.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from typing import NamedTuple

from profiler import __version__
from .speed import PLAUSIBLE

CHECKED = ("device", "transport", "runtime", "runtime_version", "threads", "batch", "host",
           "host_cpu")
UNIT = ("device", "host")
# The device speed the measurement was taken at (Reference, below).
REFERENCE = ("reference", "reference_ms", "reference_elasticity", "reference_weight")
INFO = ("cpu_affinity", "governor", "temperature_c", "measured_at", "pxnas_version") + REFERENCE
FIELDS = CHECKED + INFO


@dataclass(frozen=True)
class DeviceFacts:
    """What a device says about itself when a session starts."""
    host: str
    host_cpu: str
    runtime_version: str
    cpu_affinity: str = ""
    governor: str = ""
    temperature_c: float | None = None
    facts: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> "DeviceFacts":
        known = {"host", "host_cpu", "runtime_version", "cpu_affinity", "governor", "temperature_c"}
        return cls(**{k: d.get(k) for k in known if k in d},
                   facts={k: v for k, v in d.items() if k not in known | {"ok", "runtime"}})


def fingerprint(profile, facts: DeviceFacts) -> dict:
    """The fingerprint of measuring on `profile` now, as tables and samples files record it."""
    return {"device": profile.name, "transport": profile.transport, "runtime": profile.runtime,
            "runtime_version": facts.runtime_version, "threads": profile.threads,
            "batch": profile.batch, "host": facts.host, "host_cpu": facts.host_cpu,
            "cpu_affinity": facts.cpu_affinity, "governor": facts.governor,
            "temperature_c": facts.temperature_c,
            "measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "pxnas_version": __version__, "facts": dict(facts.facts)}


class Reference(NamedTuple):
    """The device speed a measurement was taken at: the device profile's reference block, its
    typical latency over the run, and how the run's models followed it (profiler/tables/speed.py):
    their elasticity and its weight, what the run's rounds knew of it (None and 0: unknown)."""
    key: str
    ms: float
    elasticity: float | None = None
    weight: float = 0.0


def _number(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def reference_of(fp: dict) -> Reference | None:
    """The Reference of a measurement that timed one, else None. An elasticity that no device
    can have (speed.PLAUSIBLE) or a weight below 0 is not carried (tables predating them lack it)."""
    key, ms = fp.get("reference"), _number(fp.get("reference_ms"))
    if not (isinstance(key, str) and key and ms and ms > 0):
        return None
    beta, weight = _number(fp.get("reference_elasticity")), _number(fp.get("reference_weight"))
    if beta is None or not PLAUSIBLE[0] <= beta <= PLAUSIBLE[1] or weight is None or weight < 0:
        return Reference(str(key), ms)
    return Reference(str(key), ms, beta, weight)


def mismatch(a: dict, b: dict, fields=CHECKED) -> str | None:
    """The first checked field in which two fingerprints differ, said for a message; or None."""
    for name in fields:
        if str(a.get(name)) != str(b.get(name)):
            return f"{name} ({a.get(name)} vs {b.get(name)})"
    return None


def farm(fps: list[dict]) -> dict:
    """One fingerprint for several units of one device model measuring a table together, or the
    first difference that forbids it (ValueError)."""
    if len(fps) == 1:
        return fps[0]
    same = tuple(f for f in CHECKED if f not in UNIT)
    for other in fps[1:]:
        differ = mismatch(fps[0], other, same)
        if differ:
            raise ValueError(differ)
    joined = {f: "+".join(dict.fromkeys(str(fp[f]) for fp in fps)) for f in UNIT}
    units = [{f: fp[f] for f in UNIT} | {"facts": fp.get("facts", {})} for fp in fps]
    return fps[0] | joined | {"units": units}
