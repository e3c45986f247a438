"""The host side of device_scripts/pxbench.py: starts it where the profile says and talks to it."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from importlib.resources import files
from pathlib import Path

from .devices import DeviceProfile, list_devices
from .errors import ToolError, UserError


class DeviceError(ToolError):
    """The device or its runtime failed (not the user's input)."""


def device_script() -> Path:
    return Path(str(files("device_scripts") / "pxbench.py"))


def check_supported(profile: DeviceProfile) -> None:
    """Refuse, before any work, a profile this runner cannot reach."""
    if profile.transport != "local":
        local = [d.name for d in list_devices() if d.transport == "local"]
        raise UserError(f"device {profile.name}: transport {profile.transport!r} is not supported "
                        f"yet; local devices are: {', '.join(local)}")
    if profile.runtime == "benchmark_model":
        raise UserError(f"device {profile.name}: runtime benchmark_model is not supported yet")


class DeviceSession:
    """One pxbench process. Models are loaded by path; `local` transport shares this filesystem."""

    def __init__(self, profile: DeviceProfile):
        check_supported(profile)
        cmd = [sys.executable, str(device_script()), "--runtime", profile.runtime,
               "--threads", str(profile.threads), "--device", profile.accelerator]
        if profile.cpus:
            cmd += ["--cpus", profile.cpus]
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, text=True, bufsize=1)
        self.facts = self.request(op="hello")

    def request(self, **req) -> dict:
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            self._stderr.seek(0)
            tail = " ".join(self._stderr.read().strip().splitlines()[-1:])
            raise DeviceError(f"the device process ended unexpectedly: {tail or 'no message'}")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise DeviceError(answer.get("error", "device error"))
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
