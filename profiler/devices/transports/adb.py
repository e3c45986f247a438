"""adb: an Android phone through the adb client (`adb -s SERIAL push / shell / pull`).

With one phone attached the serial may be left out; with several, one must be named. The serial
is always a separate argument of the local adb (never shell text), and every command sent to the
phone's shell is quoted.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from profiler.errors import TransportError, UserError
from .base import Transport, quote

# adb's own failures (exit 1, "error: ..." or "adb: error: ..." on stderr), as opposed to the exit
# status of a command that ran on the phone.
_ADB_ERROR = re.compile(r"^(adb: )?error: (device .* not found|no devices|device offline|"
                        r"device unauthorized|device still authorizing|closed|protocol fault|"
                        r"more than one device|failed to (get feature set|connect))", re.M)


_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")


class AdbTransport(Transport):
    name = "adb"
    address = "adb://SERIAL"
    default_workdir = "/data/local/tmp/pxnas"

    @classmethod
    def check_profile(cls, profile):
        if profile.serial and not _SERIAL.fullmatch(profile.serial):
            raise UserError(f"serial: not an adb serial: {profile.serial!r}")

    @classmethod
    def adhoc(cls, name, address):
        if not _SERIAL.fullmatch(address):
            raise UserError(f"not an adb device: {name!r}; write {cls.address} (see adb devices)")
        return {"runtime": "benchmark_model", "serial": address,
                "description": "ad-hoc adb device"}

    def __init__(self, profile):
        super().__init__(profile)
        self.serial = profile.serial

    def describe(self) -> str:
        return f"phone {self.serial}" if self.serial else "adb"

    def _adb(self) -> list[str]:
        return ["adb", "-s", self.serial] if self.serial else ["adb"]

    def command(self, argv):
        # adb joins shell arguments with spaces for the phone's sh: pass one quoted line.
        return [*self._adb(), "shell", quote(argv)]

    def attached(self) -> dict[str, str]:
        """{serial: state} of the phones adb sees."""
        if not shutil.which("adb"):
            raise TransportError("adb is not on PATH: install Android's platform-tools "
                                 "(Debian: apt-get install adb)")
        try:
            out = subprocess.run(["adb", "devices"], capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            raise TransportError("adb devices did not answer within 60 s") from None
        found = {}
        for line in out.stdout.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 2 and not line.startswith("*"):
                found[parts[0]] = parts[1]
        return found

    def connect(self) -> None:
        """Settle which phone this is and that it is ready, or say why not."""
        phones = self.attached()
        if not self.serial:
            ready = sorted(phones)
            if not ready:
                raise TransportError("no phone attached (adb devices lists none): connect one "
                                     "with USB debugging on")
            if len(ready) > 1:
                raise TransportError(f"several phones attached ({', '.join(ready)}); name one: "
                                     f"--device adb://SERIAL, or serial: in the profile")
            self.serial = ready[0]
        state = phones.get(self.serial)
        if state is None:
            known = ", ".join(sorted(phones)) or "none"
            raise TransportError(f"phone {self.serial} is not attached (attached: {known})")
        if state == "unauthorized":
            raise TransportError(f"phone {self.serial} is unauthorized: unlock it and accept "
                                 f"the USB debugging prompt")
        if state != "device":
            raise TransportError(f"phone {self.serial} is {state}, not ready")

    def send(self, local, remote):
        self._adb_run(["push", str(local), remote])

    def pull(self, remote, local):
        self._adb_run(["pull", remote, str(local)])

    def _adb_run(self, args):
        try:
            proc = subprocess.run([*self._adb(), *args], capture_output=True, text=True,
                                  timeout=600, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise TransportError(f"{self.describe()}: adb {args[0]} took over 600 s") from None
        if proc.returncode:
            raise TransportError(self.failure(proc, proc.stderr)
                                 or f"{self.describe()}: adb {args[0]} failed: "
                                    f"{(proc.stderr.strip().splitlines() or ['no message'])[-1]}")

    def failure(self, proc, stderr):
        m = _ADB_ERROR.search(stderr)
        if not m:
            return None
        return f"{self.describe()}: {m.group(0).removeprefix('adb: ')} (disconnected?)"

    def check(self):
        try:
            self.connect()
        except TransportError as exc:
            return [str(exc)]
        return []
