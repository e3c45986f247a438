"""ssh: a board reached with the OpenSSH client as its user already uses it (their ssh config
applies), in batch mode, with host keys checked: an unknown or changed host key is an error that
says what to do, never a prompt and never switched off.

One master connection per device is shared by every command (ControlMaster), so a table of
thousands of requests pays the ssh handshake once, not per push or per command.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
import tempfile
import uuid
from pathlib import Path

from profiler.errors import TransportError, UserError
from .base import Transport, quote

# ssh says these on stderr (exit 255) when the connection, not the command, failed.
_REASONS = [
    (r"Host key verification failed|host key is known|REMOTE HOST IDENTIFICATION HAS CHANGED",
     "the host key of {host} is unknown or changed in {known_hosts}; check its fingerprint, then "
     "add it: ssh-keyscan -p {port} {host} >> {known_hosts}"),
    (r"Permission denied", "{dest} refused the login ({key}); put the public key in the board's "
     "~/.ssh/authorized_keys"),
    (r"Could not resolve hostname", "cannot resolve host name {host}"),
    (r"Connection refused|No route to host|Network is unreachable|Connection timed out|"
     r"timed out during banner exchange", "cannot reach {host} on port {port}: {line}"),
]
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:%\[\]-]*")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
# A device written USER@HOST[:PORT] (a profile's user and host, or ssh://USER@HOST[:PORT]).
_ADDRESS = re.compile(r"(?:(?P<user>[A-Za-z0-9_][A-Za-z0-9._-]*)@)?"
                      r"(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*)(?::(?P<port>\d+))?")


class SshTransport(Transport):
    name = "ssh"
    address = "ssh://USER@HOST[:PORT]"

    @classmethod
    def check_profile(cls, profile):
        user = f"{profile.user}@" if profile.user else ""
        if not profile.host or not _ADDRESS.fullmatch(user + profile.host):
            raise UserError(f"host: ssh needs a host name or address "
                            f"(and user: a user name), got {profile.host!r}")

    @classmethod
    def adhoc(cls, name, address):
        m = _ADDRESS.fullmatch(address)
        if not m:
            raise UserError(f"not an ssh device: {name!r}; write {cls.address}")
        return {"host": m["host"], "user": m["user"] or "", "port": int(m["port"] or 22),
                "description": "ad-hoc ssh device"}

    def __init__(self, profile):
        super().__init__(profile)
        # Checked here too, not only in the profile: ssh must never read a host as an option.
        if not _HOST.fullmatch(profile.host or ""):
            raise TransportError(f"device {profile.name}: ssh needs a host name or address, "
                                 f"got {profile.host!r}")
        if profile.user and not _USER.fullmatch(profile.user):
            raise TransportError(f"device {profile.name}: not a user name: {profile.user!r}")
        self._control = Path(tempfile.mkdtemp(prefix="pxnas-ssh-"))

    @property
    def destination(self) -> str:
        return f"{self.profile.user}@{self.profile.host}" if self.profile.user else self.profile.host

    def describe(self) -> str:
        return f"ssh {self.destination}:{self.profile.port}"

    def _options(self) -> list[str]:
        p = self.profile
        opts = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=5",
                "-o", "ServerAliveCountMax=3",
                "-o", "ControlMaster=auto", "-o", f"ControlPath={self._control}/%C",
                "-o", "ControlPersist=120", "-p", str(p.port)]
        if p.known_hosts:
            opts += ["-o", f"UserKnownHostsFile={p.known_hosts}"]
        if p.identity_file:
            opts += ["-i", str(p.identity_file), "-o", "IdentitiesOnly=yes"]
        if p.user:
            opts += ["-l", p.user]
        return opts

    def command(self, argv):
        # `--` ends ssh's options: the host can never be read as one. The remote shell parses
        # the one quoted command line.
        return ["ssh", *self._options(), "--", self.profile.host, quote(argv)]

    def send(self, local, remote):
        with open(local, "rb") as f:
            self._stream(["sh", "-c", 'cat > "$1"', "sh", remote], stdin=f)

    def store(self, files, store, mode):
        # One tar stream, one command, however many files: each command costs a login shell on
        # the board. They land in a directory of their own and are renamed whole into the store.
        with tempfile.TemporaryFile() as archive:
            with tarfile.open(fileobj=archive, mode="w") as tar:
                for name, local in files.items():
                    tar.add(local, arcname=name)
            archive.seek(0)
            incoming = f"{store}/.incoming-{uuid.uuid4().hex}"
            self._stream(["sh", "-c", 'mkdir -p "$1" && tar -xf - -C "$1" && chmod "$3" "$1"/* '
                          '&& mv -f "$1"/* "$2"/ && rmdir "$1"', "sh", incoming, store, mode],
                         stdin=archive)

    def pull(self, remote, local):
        with open(local, "wb") as f:
            self._stream(["cat", remote], stdout=f)

    def _stream(self, argv, **io):
        try:
            proc = subprocess.run(self.command(argv), stderr=subprocess.PIPE, timeout=600,
                                  **({"stdin": subprocess.DEVNULL} | io))
        except subprocess.TimeoutExpired:
            raise TransportError(f"{self.describe()}: copying a file took over 600 s") from None
        stderr = proc.stderr.decode(errors="replace")
        broken = self.failure(proc, stderr)
        if broken or proc.returncode:
            raise TransportError(broken or f"{self.describe()}: {quote(argv)} failed: "
                                 f"{stderr.strip().splitlines()[-1:] or 'no message'}")

    def failure(self, proc, stderr):
        if proc is not None and proc.returncode != 255:
            return None
        lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
        line = lines[-1] if lines else "ssh ended with no message"
        p = self.profile
        facts = {"host": p.host, "port": p.port, "dest": self.destination, "line": line,
                 "known_hosts": p.known_hosts or "~/.ssh/known_hosts",
                 "key": f"key {p.identity_file}" if p.identity_file else "your default keys"}
        for pattern, message in _REASONS:
            if re.search(pattern, stderr):
                return f"{self.describe()}: " + message.format(**facts)
        return f"{self.describe()}: connection failed: {line}"

    def connect(self):
        self.run(["true"], timeout=self.profile.timeout_s)

    def check(self):
        return [] if shutil.which("ssh") else ["ssh (the OpenSSH client) is not on PATH"]

    def close(self):
        # Ends the shared master connection; a new transport makes a new one.
        subprocess.run(["ssh", *self._options(), "-O", "exit", "--", self.profile.host],
                       capture_output=True, timeout=30)
        shutil.rmtree(self._control, ignore_errors=True)
