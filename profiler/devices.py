"""Device profiles: data files that say where and how blocks are timed.

A profile is a YAML file; the shipped ones live in device_profiles/ beside this module, a user adds their own in
$PXNAS_DEVICES (default ~/.config/pxnas/devices) or passes a file path as the device name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from .errors import UserError

TRANSPORTS = ("local", "ssh", "adb")
# runtime -> the model format it loads
RUNTIMES = {"onnxruntime": "onnx", "tflite": "tflite", "torch": "torchscript",
            "benchmark_model": "tflite"}


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
    host: str = ""            # ssh transport
    serial: str = ""          # adb transport
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
        for name in ("threads", "batch", "rounds", "runs_per_round"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UserError(f"device {self.name}: {name} must be a positive integer")
        if not isinstance(self.retries, int) or self.retries < 0:
            raise UserError(f"device {self.name}: retries must be a non-negative integer")
        for name in ("warmup_s", "min_sample_ms", "max_spread"):
            if not isinstance(getattr(self, name), (int, float)) or getattr(self, name) <= 0:
                raise UserError(f"device {self.name}: {name} must be a positive number")

        # YAML reads `cpus: 2` as a number; a CPU list is text either way.
        object.__setattr__(self, "cpus", str(self.cpus) if self.cpus is not None else "")
        if self.cpus and not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", self.cpus):
            raise UserError(f"device {self.name}: cpus is a CPU list like 0 or 4-7 or 0,2, "
                            f"got {self.cpus!r}")
        if self.accelerator not in ("cpu", "cuda"):
            raise UserError(f"device {self.name}: accelerator is cpu or cuda, got {self.accelerator!r}")

    @property
    def model_format(self) -> str:
        return RUNTIMES[self.runtime]


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


def get_device(name: str) -> DeviceProfile:
    """A registered profile by name, or a profile file by path."""
    known = registry()
    if name in known:
        return _load(known[name], name)
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return _load(path, path.stem)
    raise UserError(f"unknown device {name!r}; known: {', '.join(sorted(known))} "
                    f"(or a .yaml profile file)")
