"""The loopback sshd helper really is ssh: commands, streams, host keys, keys, dropped links and
connection sharing (ControlMaster) behave as with a remote machine."""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest



def gone(pid: int, within: float = 5.0) -> bool:
    """Whether pid ends (or is only a zombie) within the given seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def start_remote_sleep(server, *options):
    """ssh running `sleep 30` remotely; returns the client and the remote sleep's pid."""
    client = subprocess.Popen(["ssh", *options, *server.ssh_args(), server.target, "--",
                               "echo $$; exec sleep 30"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    return client, int(client.stdout.readline())


def test_runs_a_command(sshd_server):
    proc = sshd_server.ssh("echo", "hello")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "hello\n", "")


def test_remote_side_runs_as_us_with_an_absolute_interpreter(sshd_server):
    # Tests run the venv's python remotely by absolute path, whatever the remote PATH holds.
    proc = sshd_server.ssh(sys.executable, "-c", "'import getpass; print(getpass.getuser())'")
    assert (proc.returncode, proc.stdout.strip()) == (0, sshd_server.user), proc.stderr


def test_streams_a_file_through_stdin(sshd_server, tmp_path):
    data = os.urandom(1 << 20).hex()  # 2 MB of text, more than any pipe buffer
    target = tmp_path / "copy.txt"
    proc = sshd_server.ssh(f"cat > {target}", input=data)
    assert proc.returncode == 0, proc.stderr
    back = sshd_server.ssh("cat", str(target))
    assert back.returncode == 0 and back.stdout == data


@pytest.mark.parametrize("commands", [True, False])
def test_killed_connection_ends_the_client(sshd_server, commands):
    client, remote = start_remote_sleep(sshd_server)
    started = time.monotonic()
    assert sshd_server.kill_connections(commands=commands) >= 1
    assert client.wait(timeout=5) == 255  # ssh's own failure status, not the command's
    assert time.monotonic() - started < 5
    assert "closed by remote host" in client.stderr.read()
    # With commands the remote sleep dies too; without, it runs on like after a dropped link.
    assert gone(remote, within=5 if commands else 0.5) == commands
    if not commands:
        os.kill(remote, signal.SIGKILL)
    assert sshd_server.ssh("echo", "again").stdout == "again\n"  # the listener lives on


@pytest.mark.parametrize("known", ["empty", "other key"])
def test_host_key_is_checked(sshd_server, tmp_path, known):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    if known == "other key":
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", tmp_path / "other"],
                       check=True)
        key = (tmp_path / "other.pub").read_text().split()[:2]
        known_hosts.write_text(f"[127.0.0.1]:{sshd_server.port} {' '.join(key)}\n")
    proc = sshd_server.ssh("true", options=("-o", f"UserKnownHostsFile={known_hosts}"))
    assert proc.returncode == 255
    assert "Host key verification failed" in proc.stderr, proc.stderr


def test_unauthorized_key_is_refused(sshd_server, tmp_path):
    other = tmp_path / "id_other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other], check=True)
    # -i adds to the keys offered rather than replacing them: swap ours out of the arguments.
    args = [str(other) if a == str(sshd_server.identity_file) else a
            for a in sshd_server.ssh_args()]
    proc = subprocess.run(["ssh", *args, sshd_server.target, "--", "true"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 255
    assert "Permission denied" in proc.stderr, proc.stderr


def test_control_master_survives_killed_connections(sshd_server):
    # A short directory: a unix socket path must stay under about 100 bytes.
    with tempfile.TemporaryDirectory(prefix="cm-") as sockets:
        mux = ("-o", "ControlMaster=auto", "-o", f"ControlPath={sockets}/%C",
               "-o", "ControlPersist=60")

        def ssh(*command):
            proc = sshd_server.ssh(*command, options=mux)
            assert proc.returncode == 0, proc.stderr
            return proc

        def master_pid():
            check = subprocess.run(["ssh", *mux, *sshd_server.ssh_args(), "-O", "check",
                                    sshd_server.target], capture_output=True, text=True)
            found = re.search(r"Master running \(pid=(\d+)\)", check.stderr)
            return int(found[1]) if found else None

        try:
            # $PPID is the server's session process: the same one means the same connection.
            first = ssh("echo $PPID").stdout
            assert ssh("echo $PPID").stdout == first
            master = master_pid()
            assert master

            # A shared session is cut like any other; the master sees the link close and exits,
            # removing its socket, so the next command silently opens a fresh connection.
            client, _ = start_remote_sleep(sshd_server, *mux)
            assert sshd_server.kill_connections() >= 1
            assert client.wait(timeout=5) == 255
            assert gone(master)
            assert ssh("echo $PPID").stdout != first

            # A master killed outright leaves a stale socket; ssh with ControlMaster=auto
            # finds nobody listening on it, replaces it and connects afresh.
            os.kill(master_pid(), signal.SIGKILL)
            assert list(Path(sockets).iterdir())
            assert ssh("echo", "fresh").stdout == "fresh\n"
            assert master_pid()
        finally:
            subprocess.run(["ssh", *mux, *sshd_server.ssh_args(), "-O", "exit",
                            sshd_server.target], capture_output=True)
