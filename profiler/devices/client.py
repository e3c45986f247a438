"""The host side of the JSON-lines protocol of device_scripts/pxbench.py, typed.

Every device bench (this client, or a runtime's own tool such as benchmark_model) offers the same
calls: `facts`, `load`, `warmup`, `sample`, `close`. Answers that never come (a dead connection, a
hung device) raise TransportError after the profile's `timeout_s`; an error the device answers
raises DeviceError.
"""

from __future__ import annotations

import json
import queue
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from profiler.errors import DeviceError, TransportError
from profiler.tables.fingerprint import DeviceFacts


@dataclass(frozen=True)
class Warmup:
    runs: int   # untimed calls before the first sample
    inner: int  # calls per calibrated sample
    call_ms: float = 0.0  # a warm call's typical time


def device_script() -> Path:
    return Path(str(files("device_scripts") / "pxbench.py"))


class PxbenchClient:
    """One pxbench process on the device, started through the transport."""

    def __init__(self, transport, profile, runtime):
        self.transport, self.profile = transport, profile
        script = transport.push(device_script())
        argv = [transport.python, script, "--runtime", runtime.name,
                "--threads", str(profile.threads), "--device", profile.accelerator]
        if profile.cpus:
            argv += ["--cpus", profile.cpus]
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = transport.start(argv, self._stderr)
        self._answers: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.facts = DeviceFacts.from_dict(self._request(op="hello"))

    def _read(self):
        # A reader thread turns a hung device into a timeout instead of a hung pxprof.
        for line in self.proc.stdout:
            self._answers.put(line)
        self._answers.put("")

    def _request(self, timeout: float = 0.0, **req) -> dict:
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass  # the process is gone; its end is reported below
        deadline = time.monotonic() + self.profile.timeout_s + timeout
        while True:
            try:
                line = self._answers.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.proc.kill()
                raise TransportError(f"{self.transport.describe()}: no answer to {req['op']} "
                                     f"within {self.profile.timeout_s + timeout:g} s") from None
            if not line:
                raise self._ended()
            try:
                answer = json.loads(line)
            except (ValueError, RecursionError):  # not an answer of the device script's
                answer = None
            if isinstance(answer, dict):
                break
            # Not an answer (a login script on the device printed something): read on.
        if not answer.get("ok"):
            raise DeviceError(f"{self.transport.describe()}: {answer.get('error', 'device error')}")
        return answer

    def _ended(self) -> Exception:
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = None
        self._stderr.seek(0)
        stderr = self._stderr.read()
        broken = self.transport.failure(self.proc, stderr)
        if broken:
            return TransportError(broken)
        last = (stderr.strip().splitlines() or ["no message"])[-1]
        if code == 127:  # the shell found no such interpreter
            return DeviceError(f"{self.transport.describe()}: cannot run {self.transport.python} "
                               f"there ({last}); set python: in the device profile")
        return TransportError(f"{self.transport.describe()}: the device script ended "
                              f"unexpectedly: {last}")

    def load(self, name: str, path: Path, shape: list[int]) -> None:
        self._request(op="load", name=name, path=self.transport.push(path), shape=list(shape))

    def warmup(self, name: str, max_s: float, min_sample_ms: float) -> Warmup:
        answer = self._request(timeout=max_s, op="warmup", name=name, max_s=max_s,
                               min_sample_ms=min_sample_ms)
        return Warmup(answer["warmup"], answer["inner"], answer["call_ms"])

    def sample(self, name: str, inner: int, count: int) -> list[float]:
        return self._request(op="sample", name=name, inner=inner, count=count)["times_ms"]

    def paired(self, name: str, inner: int, count: int, ref: str, ref_inner: int
               ) -> tuple[list[float], list[float]]:
        """`count` samples of `name`, each right after one of `ref`: (times, ref's times)."""
        answer = self._request(op="sample", name=name, inner=inner, count=count, ref=ref,
                               ref_inner=ref_inner)
        return answer["times_ms"], answer["ref_ms"]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
        self._stderr.close()
