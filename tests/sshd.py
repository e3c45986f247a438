"""A real OpenSSH server on 127.0.0.1 for end-to-end tests of tools that work over ssh.

    from sshd import sshd_server  # noqa: F401  (importing a fixture makes it usable in the module)

    def test_remote(sshd_server):
        subprocess.run(["ssh", *sshd_server.ssh_args(), sshd_server.target, "--", "true"])
        sshd_server.ssh("echo", "hi")  # the same, output captured

The server has its own host key, client key, authorized_keys and config in a fresh directory, so
it neither reads nor changes the machine's ssh set-up; the client arguments from ssh_args() ignore
the user's ~/.ssh too. Linux only: kill_connections() walks /proc.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = Path("/usr/sbin/sshd")  # sshd insists on an absolute path: it re-executes itself
PRIVSEP_DIR = Path("/run/sshd")  # sshd as root refuses to start without it (its chroot)
HOST = "127.0.0.1"


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
                   check=True, capture_output=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    """Live children of pid, from /proc/*/stat (fields 3 and 4: state and parent pid)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # comm (field 2) may hold spaces and parentheses: split after its closing one.
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue  # the process ended while we looked
        if int(ppid) == pid and state != "Z":  # a zombie is a connection already gone
            found.append(int(stat.parent.name))
    return found


def _exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


@dataclass
class SshServer:
    """A running sshd (process) and what a client needs to reach it."""

    host: str
    port: int
    user: str
    identity_file: Path
    known_hosts: Path
    config_dir: Path
    process: subprocess.Popen

    @property
    def target(self) -> str:
        return f"{self.user}@{self.host}"

    @property
    def log_file(self) -> Path:
        return self.config_dir / "sshd.log"

    def ssh_args(self) -> list[str]:
        """Client options: no prompts, the server's host key checked, only our key offered."""
        return ["-F", "/dev/null",  # the user's and the system's ssh_config stay out of it
                "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "IdentitiesOnly=yes", "-i", str(self.identity_file), "-p", str(self.port)]

    def ssh(self, *command: str, options: tuple[str, ...] = (), timeout: float = 30,
            **kwargs) -> subprocess.CompletedProcess:
        """Run command remotely; text output captured. options go first because ssh keeps the
        first value it sees for an option: they override ssh_args() (but -i adds a key)."""
        kwargs.setdefault("stdin", None if "input" in kwargs else subprocess.DEVNULL)
        return subprocess.run(["ssh", *options, *self.ssh_args(), self.target, "--", *command],
                              capture_output=True, text=True, timeout=timeout, **kwargs)

    def kill_connections(self, commands: bool = True) -> int:
        """SIGKILL the server side of every open connection; the listener stays, so new connections
        work. Returns how many connections were cut.

        Each connection is a child of the listener (named sshd, or sshd-session from OpenSSH 9.8)
        with sshd descendants of the same binary, then the remote shell and command. With commands
        true these die too, so nothing outlives the test; with commands false they run on as
        orphans, as on a machine whose network link dropped.
        """
        connections = _children(self.process.pid)
        doomed = []
        for child in connections:
            # Collect the whole tree before killing: killed parents' children move to init.
            tree, exe = [child], _exe(child)
            for pid in tree:
                tree.extend(_children(pid))
            doomed += [pid for pid in tree if commands or _exe(pid) == exe]
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return len(connections)

    def stop(self) -> None:
        # The listener leaves open connections running when it exits: cut them first.
        self.kill_connections()
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def sshd_available() -> str | None:
    """None when start_sshd() can work here, else why not (for skip messages)."""
    if not SSHD.exists():
        return f"{SSHD} missing (Debian: apt-get install openssh-server)"
    for tool in ("ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"{tool} not on PATH (Debian: apt-get install openssh-client)"
    if not Path("/proc/self/stat").exists():
        return "no /proc: kill_connections() needs Linux"
    # sshd started by another user can only log that user in (it cannot switch users), which
    # is all the tests need; as root it needs its privilege-separation directory.
    if os.geteuid() == 0 and not PRIVSEP_DIR.is_dir():
        try:
            PRIVSEP_DIR.mkdir(mode=0o755)
        except OSError as e:
            return f"cannot create {PRIVSEP_DIR}: {e}"
    return None


def _config(directory: Path, port: int) -> str:
    return f"""\
ListenAddress {HOST}
Port {port}
HostKey {directory / "host_ed25519"}
PidFile {directory / "sshd.pid"}
AuthorizedKeysFile {directory / "authorized_keys"}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
# Tests run as root in containers; keys only.
PermitRootLogin prohibit-password
# Temporary directories are not owned the way sshd's ownership checks want.
StrictModes no
# PAM needs the machine's login set-up (loginuid, limits); keys need none of it.
UsePAM no
# No AcceptEnv: the remote side gets sshd's default environment, never the client's.
Subsystem sftp internal-sftp
# VERBOSE logs each connection, key and disconnect: enough to tell why a login failed.
LogLevel VERBOSE
"""


def start_sshd(directory: Path, timeout: float = 10.0) -> SshServer:
    """Start sshd on 127.0.0.1 at a free port with fresh keys in directory; returns once a real
    `ssh ... true` through it has worked. Raises RuntimeError with the log's tail otherwise."""
    if reason := sshd_available():
        raise RuntimeError(reason)
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    _keygen(directory / "host_ed25519")
    _keygen(directory / "id_ed25519")
    shutil.copy(directory / "id_ed25519.pub", directory / "authorized_keys")
    host_key = (directory / "host_ed25519.pub").read_text().split()[:2]  # type, base64 key
    log = directory / "sshd.log"
    for _ in range(3):  # another process may take the free port before sshd binds it
        port = _free_port()
        config = directory / "sshd_config"
        config.write_text(_config(directory, port))
        known_hosts = directory / "known_hosts"
        known_hosts.write_text(f"[{HOST}]:{port} {' '.join(host_key)}\n")
        log.write_text("")
        process = subprocess.Popen([str(SSHD), "-D", "-f", str(config), "-E", str(log)],
                                   stdin=subprocess.DEVNULL)
        server = SshServer(HOST, port, pwd.getpwuid(os.getuid()).pw_name,
                           directory / "id_ed25519", known_hosts, directory, process)
        deadline, client_error = time.monotonic() + timeout, ""
        while process.poll() is None and time.monotonic() < deadline:
            try:
                probe = server.ssh("true", options=("-o", "ConnectTimeout=2"), timeout=5)
            except subprocess.TimeoutExpired:
                client_error = "no answer in 5 s"
                continue
            if probe.returncode == 0:
                return server
            client_error = probe.stderr.strip()
            time.sleep(0.05)
        server.stop()
        if "Address already in use" not in log.read_text():
            break
    tail = "\n".join(log.read_text().splitlines()[-20:])
    raise RuntimeError(f"sshd on {HOST}:{port} did not accept `ssh true` "
                       f"(ssh said {client_error!r}); sshd log:\n{tail}")


@pytest.fixture
def sshd_server(tmp_path):
    """A fresh server per test (start_sshd takes a fraction of a second), in tmp_path/sshd.
    Skipped where sshd cannot run, except under CI=true: CI must run the ssh tests."""
    if reason := sshd_available():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the sshd tests cannot run: {reason}")
        pytest.skip(reason)
    server = start_sshd(tmp_path / "sshd")
    yield server
    server.stop()
