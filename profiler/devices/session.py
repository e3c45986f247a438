"""A session with one device: its transport, the bench that times models there, and reconnection.

A lost connection or a vanished device is retried with back-off on a fresh connection, up to the
profile's `reconnects`; files already pushed stay on the device and are not pushed again. What was
loaded and warmed up is forgotten on reconnection, so callers ask `ready()` before each use.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tqdm import tqdm

from profiler.errors import DeviceUnavailable, ToolError, TransportError
from profiler.tables.fingerprint import fingerprint
from .client import PxbenchClient, Warmup
from .runtimes import get_runtime
from .transports import open_transport


class DeviceSession:
    def __init__(self, profile):
        """Connect, or raise DeviceUnavailable with the reason: nothing has been done yet."""
        self.profile = profile
        self.runtime = get_runtime(profile.runtime)
        try:
            self.transport = open_transport(profile)
        except TransportError as exc:
            raise DeviceUnavailable(str(exc)) from None
        self.bench = None
        try:
            self._open()
        except ToolError as exc:
            self.transport.close()
            raise DeviceUnavailable(str(exc)) from None
        self.fingerprint = fingerprint(profile, self.bench.facts)

    def _open(self):
        self.transport.connect()
        self.bench = (self.runtime.client or PxbenchClient)(self.transport, self.profile, self.runtime)
        self.warm: dict[str, Warmup] = {}  # loaded and warmed up on this connection

    @property
    def unit(self) -> str:
        return str(self.fingerprint["host"])

    def call(self, fn):
        """fn(self), retried on a fresh connection when the transport fails."""
        for attempt in range(self.profile.reconnects + 1):
            try:
                if self.bench is None:
                    self._open()
                return fn(self)
            except TransportError as exc:
                if attempt == self.profile.reconnects:
                    raise ToolError(f"{exc} (gave up after {attempt} reconnection"
                                    f"{'s' if attempt != 1 else ''})") from None
                pause = self.profile.backoff_s * 2 ** attempt
                tqdm.write(f"pxprof: {exc}; reconnecting in {pause:g} s", file=sys.stderr)
                self._drop()
                time.sleep(pause)

    def _drop(self):
        if self.bench is not None:
            try:
                self.bench.close()
            except Exception:  # the connection is broken already; how it ends does not matter
                pass
        self.bench = None

    def ready(self, name: str, path: Path, nchw, force_warmup: bool = False) -> Warmup:
        """Load `name` on this connection and warm it up, once per connection (or again when
        asked); its warm-up and calibration."""
        if name not in self.warm or force_warmup:
            if name not in self.warm:
                self.bench.load(name, path, self.runtime.input_shape(nchw))
            self.warm[name] = self.bench.warmup(name, self.profile.warmup_s,
                                                self.profile.min_sample_ms)
        return self.warm[name]

    def close(self):
        self._drop()
        self.transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def check_supported(profile) -> None:
    """Refuse, before any work, a device that cannot be reached or lacks what it needs
    (DeviceUnavailable, with the reason)."""
    DeviceSession(profile).close()
