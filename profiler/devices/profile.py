"""Device profiles: data files that say where and how blocks are timed.

A profile is a YAML file; the shipped ones live in profiles/ beside this module, a user adds their own in
$PXNAS_DEVICES (default ~/.config/pxnas/devices) or passes a file path as the device name.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from profiler.errors import UserError
from profiler.records import check_fields, load_record, read_mapping, spec
from profiler.space.blockspec import parse_key
from .runtimes import RUNTIMES
from .transports import TRANSPORTS

# Devices written without a profile: ssh://USER@HOST[:PORT], adb://SERIAL.
ADDRESSED = {name: t for name, t in TRANSPORTS.items() if t.address}
_ADHOC = re.compile(rf"(?P<scheme>{'|'.join(ADDRESSED)})://(?P<rest>.*)")


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    transport: str = spec(choices=tuple(TRANSPORTS))
    runtime: str = spec(choices=tuple(RUNTIMES))
    description: str = ""
    threads: int = spec(1, ge=1, le=1024)
    batch: int = spec(1, ge=1, le=4096)
    cpus: str = spec("", text_numbers=True)  # CPU list to pin to ("" = no pinning): "0", "4-7"
    accelerator: str = spec("cpu", choices=("cpu", "cuda"))  # torch runtime only
    # ssh transport
    host: str = ""
    port: int = spec(22, ge=1, le=65535)
    user: str = ""            # "" = ssh's own default (your ssh config, else your user name)
    identity_file: str = ""   # "" = your ssh keys
    known_hosts: str = ""     # "" = your known_hosts
    python: str = "python3"   # the device's interpreter for the device script
    workdir: str = ""         # where pushed files live there (default per transport)
    # adb transport
    serial: str = spec("", text_numbers=True)  # "" = the one phone attached
    benchmark_binary: str = ""  # benchmark_model runtime: this machine's copy of the tool, pushed
    # Runs that take hours: per-request timeout, reconnection with back-off, drift watch.
    timeout_s: float = spec(120.0, gt=0, le=86400)  # a request taking longer fails
    reconnects: int = spec(3, ge=0, le=100)   # fresh connections tried after a transport failure
    backoff_s: float = spec(1.0, ge=0, le=3600)  # pause before reconnecting, doubled on each try
    drift_every: int = spec(0, ge=0, le=10**6)  # time a sentinel every this many samples (0: off)
    drift_threshold: float = spec(0.1, gt=0, le=10)  # sentinel off by more: cool down, redo
    cooldown_s: float = spec(30.0, ge=0, le=86400)  # each cool-down's wait
    cooldowns: int = spec(3, ge=0, le=100)  # cool-downs before accepting the device's new speed
    # Measurement method (see profiler/devices/measure.py).
    warmup_s: float = spec(1.0, gt=0, le=3600)  # at most this long warming up each block
    rounds: int = spec(5, ge=1, le=1000)  # rounds interleaved across all blocks
    runs_per_round: int = spec(10, ge=1, le=10000)  # samples of each block in each round
    min_sample_ms: float = spec(2.0, gt=0, le=60000)  # calibrated blocks: each sample this long
    max_spread: float = spec(0.05, gt=0, le=10)  # spread above this: measure it again
    retries: int = spec(2, ge=0, le=100)  # fresh attempts for a flagged entry; steadiest kept
    # The quantile of an entry's samples taken as its latency: the median, or lower on a device
    # whose noise only ever slows it (a shared CPU), where a low quantile is its undisturbed speed.
    quantile: float = spec(0.5, gt=0, le=0.5)
    # A block key timed in every round ("" = none): what is measured at different times (a
    # table at 10:00, networks at 10:30) is put on one device speed by it (profiler/tables/samples.py).
    reference: str = ""

    def __post_init__(self):
        # Messages name no device: a file's loader names the file, get_device the device.
        check_fields(self)
        if self.cpus and not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", self.cpus):
            raise UserError(f"cpus: a CPU list like 0 or 4-7 or 0,2, got {self.cpus!r}")
        self._check_transport()
        if self.reference:
            try:
                parse_key(self.reference)
            except UserError as exc:
                raise UserError(f"reference: {exc}") from None

    def _check_transport(self):
        TRANSPORTS[self.transport].check_profile(self)
        if not self.python.strip():
            raise UserError("python: names the device's interpreter")
        if not self.workdir and self.transport != "local":
            default = TRANSPORTS[self.transport].default_workdir or \
                f"/tmp/pxnas-{self.user or getpass.getuser()}"
            object.__setattr__(self, "workdir", default)
        if self.transport != "local" and not self.workdir.startswith("/"):
            raise UserError("workdir: must be an absolute path on the device")


def _dirs() -> list[Path]:
    user = os.environ.get("PXNAS_DEVICES") or Path.home() / ".config" / "pxnas" / "devices"
    return [Path(__file__).with_name("profiles"), Path(user)]


def _load(path: Path, name: str) -> DeviceProfile:
    return load_record(DeviceProfile, read_mapping(path, "device profile"), str(path), name=name)


def registry() -> dict[str, Path]:
    found = {}
    for d in _dirs():
        if d.is_dir():
            found.update({p.stem: p for p in sorted(d.glob("*.yaml"))})
    return found


def list_devices() -> tuple[list[DeviceProfile], list[str]]:
    """The profiles that load, and a line for each file that does not (one bad file in a user's
    folder does not hide the others)."""
    profiles, problems = [], []
    for name, path in sorted(registry().items()):
        try:
            profiles.append(_load(path, name))
        except UserError as exc:
            problems.append(str(exc))
    return profiles, problems


def _adhoc(name: str, scheme: str, rest: str, runtime: str | None) -> DeviceProfile:
    fields = ADDRESSED[scheme].adhoc(name, rest)
    runtime = runtime or fields.pop("runtime", None)
    if not runtime:
        raise UserError(f"{name}: say which runtime the board runs: --runtime "
                        f"{'|'.join(r for r in RUNTIMES if r != 'benchmark_model')}")
    return DeviceProfile(name=name, transport=scheme, **(fields | {"runtime": runtime}))


def get_device(name: str, runtime: str | None = None, **settings) -> DeviceProfile:
    """A registered profile by name, a profile file by path, or an ad-hoc device
    (ssh://USER@HOST[:PORT], adb://SERIAL); `runtime` and `settings` override the profile's."""
    known = registry()
    adhoc = _ADHOC.fullmatch(name)
    if adhoc:
        with _naming(name):
            profile = _adhoc(name, adhoc["scheme"], adhoc["rest"], runtime)
    elif name in known:
        profile = _load(known[name], name)
    elif Path(name).suffix in (".yaml", ".yml") and Path(name).exists():
        profile = _load(Path(name), Path(name).stem)
    else:
        raise UserError(f"unknown device {name!r}; known: {', '.join(sorted(known))} "
                        f"(or a .yaml profile file, "
                        f"{', '.join(t.address for t in ADDRESSED.values())})")
    changes = {k: v for k, v in (settings | {"runtime": runtime}).items() if v}
    with _naming(name):
        return replace(profile, **changes) if changes else profile


@contextlib.contextmanager
def _naming(name: str):
    """A profile built here, not read from a file: its errors name the device."""
    try:
        yield
    except UserError as exc:
        raise UserError(f"device {name}: {exc}") from None
