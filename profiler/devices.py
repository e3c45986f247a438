"""Device profiles: data files that say where and how blocks are timed.

A profile is a YAML file; the shipped ones live in device_profiles/ beside this module, a user adds their own in
$PXNAS_DEVICES (default ~/.config/pxnas/devices) or passes a file path as the device name.
"""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path

import yaml

from .errors import UserError
from .runtimes import RUNTIMES

TRANSPORTS = ("local", "ssh", "adb")
DEFAULT_WORKDIR = {"adb": "/data/local/tmp/pxnas"}
_ADHOC = re.compile(r"(?P<scheme>ssh|adb)://(?P<rest>.*)")
_SSH = re.compile(r"(?:(?P<user>[A-Za-z0-9_][A-Za-z0-9._-]*)@)?(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*)"
                  r"(?::(?P<port>\d+))?")
_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    transport: str
    runtime: str
    description: str = ""
    threads: int = 1
    batch: int = 1
    cpus: str = ""            # CPU list to pin to ("" = no pinning), e.g. "0" or "4-7"
    accelerator: str = "cpu"  # torch runtime only: cpu or cuda
    # ssh transport
    host: str = ""
    port: int = 22
    user: str = ""            # "" = ssh's own default (your ssh config, else your user name)
    identity_file: str = ""   # "" = your ssh keys
    known_hosts: str = ""     # "" = your known_hosts
    python: str = "python3"   # the device's interpreter for the device script
    workdir: str = ""         # where pushed files live there (default per transport)
    # adb transport
    serial: str = ""          # "" = the one phone attached
    benchmark_binary: str = ""  # benchmark_model runtime: this machine's copy of the tool, pushed
    # Runs that take hours: per-request timeout, reconnection with back-off, drift watch.
    timeout_s: float = 120.0  # a request (one sample, one warm-up) that takes longer fails
    reconnects: int = 3       # fresh connections tried after a transport failure
    backoff_s: float = 1.0    # pause before reconnecting, doubled on each try
    drift_every: int = 0      # time a sentinel block every this many samples (0: no drift watch)
    drift_threshold: float = 0.1  # sentinel off its first latency by more: cool down, redo
    cooldown_s: float = 30.0  # each cool-down's wait
    cooldowns: int = 3        # cool-downs before accepting the device's new speed
    # Measurement method (see profiler/measure.py).
    warmup_s: float = 1.0     # at most this long warming up each block until its times settle
    rounds: int = 5           # rounds interleaved across all blocks
    runs_per_round: int = 10  # samples of each block in each round
    min_sample_ms: float = 2.0  # calibrated blocks: each sample runs at least this long
    max_spread: float = 0.05  # IQR/median above this flags an entry and measures it again
    retries: int = 2          # fresh attempts for a flagged entry; the steadiest is kept

    def __post_init__(self):
        if self.transport not in TRANSPORTS:
            raise UserError(f"device {self.name}: unknown transport {self.transport!r}; "
                            f"known: {', '.join(TRANSPORTS)}")
        if self.runtime not in RUNTIMES:
            raise UserError(f"device {self.name}: unknown runtime {self.runtime!r}; "
                            f"known: {', '.join(RUNTIMES)}")
        for name in ("threads", "batch", "rounds", "runs_per_round", "port"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UserError(f"device {self.name}: {name} must be a positive integer")
        for name in ("retries", "reconnects", "drift_every", "cooldowns"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise UserError(f"device {self.name}: {name} must be a non-negative integer")
        for name in ("backoff_s", "cooldown_s"):
            if not isinstance(getattr(self, name), (int, float)) or getattr(self, name) < 0:
                raise UserError(f"device {self.name}: {name} must be a non-negative number")
        for name in ("warmup_s", "min_sample_ms", "max_spread", "timeout_s", "drift_threshold"):
            if not isinstance(getattr(self, name), (int, float)) or getattr(self, name) <= 0:
                raise UserError(f"device {self.name}: {name} must be a positive number")

        # YAML reads `cpus: 2` as a number; a CPU list is text either way.
        object.__setattr__(self, "cpus", str(self.cpus) if self.cpus is not None else "")
        if self.cpus and not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", self.cpus):
            raise UserError(f"device {self.name}: cpus is a CPU list like 0 or 4-7 or 0,2, "
                            f"got {self.cpus!r}")
        if self.accelerator not in ("cpu", "cuda"):
            raise UserError(f"device {self.name}: accelerator is cpu or cuda, got {self.accelerator!r}")
        for name in ("host", "user", "identity_file", "known_hosts", "python", "workdir", "serial",
                     "benchmark_binary"):
            value = getattr(self, name)
            object.__setattr__(self, name, "" if value is None else str(value))
        self._check_transport()

    def _check_transport(self):
        if self.transport == "ssh":
            m = _SSH.fullmatch(f"{self.user + '@' if self.user else ''}{self.host}")
            if not self.host or not m:
                raise UserError(f"device {self.name}: ssh needs host: a host name or address "
                                f"(and user: a user name), got {self.host!r}")
        if self.serial and not _SERIAL.fullmatch(self.serial):
            raise UserError(f"device {self.name}: not an adb serial: {self.serial!r}")
        if not self.python.strip():
            raise UserError(f"device {self.name}: python names the device's interpreter")
        if not self.workdir and self.transport != "local":
            default = DEFAULT_WORKDIR.get(self.transport) or \
                f"/tmp/pxnas-{self.user or getpass.getuser()}"
            object.__setattr__(self, "workdir", default)
        if self.transport != "local" and not self.workdir.startswith("/"):
            raise UserError(f"device {self.name}: workdir must be an absolute path on the device")


def _dirs() -> list[Path]:
    user = os.environ.get("PXNAS_DEVICES") or Path.home() / ".config" / "pxnas" / "devices"
    return [Path(__file__).with_name("device_profiles"), Path(user)]


def _load(path: Path, name: str) -> DeviceProfile:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise UserError(f"cannot read device file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a device profile is a mapping of settings")
    known = {f.name for f in fields(DeviceProfile)} - {"name"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(f"{path}: unknown device setting(s) {', '.join(unknown)}; "
                        f"known: {', '.join(sorted(known))}")
    try:
        return DeviceProfile(name=name, **data)
    except TypeError as exc:
        raise UserError(f"{path}: {exc}") from None


def registry() -> dict[str, Path]:
    found = {}
    for d in _dirs():
        if d.is_dir():
            found.update({p.stem: p for p in sorted(d.glob("*.yaml"))})
    return found


def list_devices() -> list[DeviceProfile]:
    return [_load(path, name) for name, path in sorted(registry().items())]


def _adhoc(name: str, scheme: str, rest: str, runtime: str | None) -> DeviceProfile:
    if scheme == "ssh":
        m = _SSH.fullmatch(rest)
        if not m:
            raise UserError(f"not an ssh device: {name!r}; write ssh://USER@HOST[:PORT]")
        if not runtime:
            raise UserError(f"{name}: say which runtime the board runs: --runtime "
                            f"{'|'.join(r for r in RUNTIMES if r != 'benchmark_model')}")
        return DeviceProfile(name=name, transport="ssh", runtime=runtime, host=m["host"],
                             user=m["user"] or "", port=int(m["port"] or 22),
                             description="ad-hoc ssh device")
    if not _SERIAL.fullmatch(rest):
        raise UserError(f"not an adb device: {name!r}; write adb://SERIAL (see adb devices)")
    return DeviceProfile(name=name, transport="adb", runtime=runtime or "benchmark_model",
                         serial=rest, description="ad-hoc adb device")


def get_device(name: str, runtime: str | None = None, **settings) -> DeviceProfile:
    """A registered profile by name, a profile file by path, or an ad-hoc device
    (ssh://USER@HOST[:PORT], adb://SERIAL); `runtime` and `settings` override the profile's."""
    known = registry()
    adhoc = _ADHOC.fullmatch(name)
    if adhoc:
        profile = _adhoc(name, adhoc["scheme"], adhoc["rest"], runtime)
    elif name in known:
        profile = _load(known[name], name)
    elif Path(name).suffix in (".yaml", ".yml") and Path(name).exists():
        profile = _load(Path(name), Path(name).stem)
    else:
        raise UserError(f"unknown device {name!r}; known: {', '.join(sorted(known))} "
                        f"(or a .yaml profile file, ssh://USER@HOST[:PORT], adb://SERIAL)")
    changes = {k: v for k, v in (settings | {"runtime": runtime}).items() if v}
    return replace(profile, **changes) if changes else profile
