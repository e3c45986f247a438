"""The Transport interface every transport implements, the quoting of what goes to a device's shell,
and content-addressed files."""

from __future__ import annotations

import hashlib
import shlex
import subprocess
from pathlib import Path

from profiler.errors import TransportError

ADDRESS_DIGITS = 24


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def quote(argv: list[str]) -> str:
    """One shell command line that runs exactly `argv`."""
    return " ".join(shlex.quote(str(a)) for a in argv)


class Transport:
    name = ""
    address = ""  # how a device of this transport is written without a profile ("": it is not)
    # Where pushed files live on the device when the profile names no workdir ("": a folder of
    # the user's under /tmp).
    default_workdir = ""

    # What each transport asks of a device profile (profile.py calls these).
    @classmethod
    def check_profile(cls, profile) -> None:
        """Refuse (UserError) the settings of a profile this transport cannot use."""

    @classmethod
    def adhoc(cls, name: str, address: str) -> dict:
        """The profile fields of the ad-hoc device `name`, written as `cls.address` says
        (`address`: what follows `<transport>://`); its runtime, where the transport has a
        default one."""
        raise NotImplementedError

    def __init__(self, profile):
        self.profile = profile
        self._present: set[str] | None = None  # content-addressed files known on the device
        self._addresses: dict[tuple, str] = {}  # a file is hashed once, not on every load

    # What each transport provides.
    def describe(self) -> str:
        raise NotImplementedError

    @property
    def workdir(self) -> str:
        return self.profile.workdir

    def command(self, argv: list[str]) -> list[str]:
        """The local command line that runs `argv` on the device."""
        raise NotImplementedError

    def send(self, local: Path, remote: str) -> None:
        """Copy a local file to a device path."""
        raise NotImplementedError

    def pull(self, remote: str, local: Path) -> None:
        raise NotImplementedError

    def failure(self, proc: subprocess.CompletedProcess | None, stderr: str) -> str | None:
        """The message for a failure of the transport itself (not of the command it ran), or None."""
        return None

    def connect(self) -> None:
        """Reach the device once, raising TransportError with the reason when it cannot be."""

    def check(self) -> list[str]:
        """What is missing before this device can be reached, as lines for the user."""
        return []

    @property
    def python(self) -> str:
        """The interpreter that runs the device script there."""
        return self.profile.python

    def close(self) -> None:
        pass

    # Built on those.
    def start(self, argv: list[str], stderr) -> subprocess.Popen:
        """Start `argv` on the device with pipes to its stdin and stdout."""
        return subprocess.Popen(self.command(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=stderr, text=True, bufsize=1)

    def run(self, argv: list[str], timeout: float, check: bool = True) -> subprocess.CompletedProcess:
        """Run `argv` on the device; a failure of the transport raises TransportError, and so does
        a failing command when `check`."""
        try:
            proc = subprocess.run(self.command(argv), capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise TransportError(f"{self.describe()}: {argv[0]} did not finish within "
                                 f"{timeout:g} s") from None
        broken = self.failure(proc, proc.stderr)
        if broken:
            raise TransportError(broken)
        if check and proc.returncode != 0:
            tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no message"]
            raise TransportError(f"{self.describe()}: {quote(argv)} failed "
                                 f"(exit {proc.returncode}): {tail[0]}")
        return proc

    def push(self, local: Path, mode: str = "") -> str:
        """Push a local file into the device's content-addressed store; its device path."""
        return self.push_many([local], mode)[0]

    def push_many(self, files: list[Path], mode: str = "") -> list[str]:
        """Push the files the device does not have yet; the device paths of all of them."""
        store = f"{self.workdir}/files"
        if self._present is None:
            listing = self.run(["sh", "-c", 'mkdir -p "$1" && ls -1 "$1"', "sh", store],
                               timeout=self.profile.timeout_s)
            self._present = set(listing.stdout.split())
        names = [self._address(Path(f)) for f in files]
        missing = {n: Path(f) for n, f in zip(names, files) if n not in self._present}
        if missing:
            self.store(missing, store, mode or "644")
            self._present.update(missing)
        return [f"{store}/{n}" for n in names]

    def _address(self, local: Path) -> str:
        st = local.stat()
        key = (str(local.resolve()), st.st_size, st.st_mtime_ns)
        if key not in self._addresses:
            self._addresses[key] = file_digest(local)[:ADDRESS_DIGITS] + local.suffix
        return self._addresses[key]

    def store(self, files: dict[str, Path], store: str, mode: str) -> None:
        """Copy files into the directory `store` under their names, each whole or not at all."""
        for name, local in files.items():
            partial = f"{store}/.{name}.part"
            self.send(local, partial)
            self.run(["sh", "-c", 'chmod "$1" "$2" && mv -f "$2" "$3"', "sh", mode, partial,
                      f"{store}/{name}"], timeout=self.profile.timeout_s)
