"""local: the machine pxprof runs on. Files are used where they are; nothing is copied."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from .base import Transport


class LocalTransport(Transport):
    name = "local"

    def describe(self) -> str:
        return f"this machine ({socket.gethostname()})"

    def command(self, argv):
        return [str(a) for a in argv]

    @property
    def python(self) -> str:
        return sys.executable

    def push_many(self, files, mode=""):
        return [str(Path(f).resolve()) for f in files]

    def send(self, local, remote):
        raise AssertionError("the local transport copies nothing")

    def pull(self, remote, local):
        raise AssertionError("the local transport copies nothing")
