"""The transports registry: how the host reaches a device.

A transport is one module here with a `Transport` subclass. It starts a command on the device with
pipes to it (the device script), runs a command and collects its output, and pushes and pulls
files. Everything sent to a device's shell is quoted here, once: a key, path, serial or host can
never become a command.

Files are pushed content-addressed into the device's work directory (`files/<sha256><suffix>`):
a model or binary is pushed once per device and reused by later runs, and a partial push never
counts, because it is written under a temporary name and renamed when whole (base.py: the
Transport interface, quoting, content addresses).
"""

from __future__ import annotations

from .base import Transport


def _registry() -> dict[str, type[Transport]]:
    from . import adb, local, ssh
    return {t.name: t for t in (local.LocalTransport, ssh.SshTransport, adb.AdbTransport)}


TRANSPORTS = _registry()


def open_transport(profile) -> Transport:
    return TRANSPORTS[profile.transport](profile)
