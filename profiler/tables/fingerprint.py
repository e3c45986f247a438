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

from profiler import __version__

CHECKED = ("device", "transport", "runtime", "runtime_version", "threads", "batch", "host",
           "host_cpu")
UNIT = ("device", "host")
# reference, reference_ms: the device profile's reference block and its latency over the run
# (profiler/tables/samples.py), the device speed the measurement was taken at.
INFO = ("cpu_affinity", "governor", "temperature_c", "measured_at", "pxnas_version", "reference",
        "reference_ms")
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


def reference_of(fp: dict) -> tuple[str, float] | None:
    """(reference block key, its latency in ms) of a measurement that timed one, else None."""
    key, ms = fp.get("reference"), fp.get("reference_ms")
    try:
        ms = float(ms)
    except (TypeError, ValueError):
        return None
    return (str(key), ms) if isinstance(key, str) and key and math.isfinite(ms) and ms > 0 \
        else None


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
