"""Boards over ssh, for real: pxprof measures through an OpenSSH server on 127.0.0.1 that the
test starts with its own host and user keys. The "board" is this machine, but it shares nothing
with pxprof except what ssh carries: models and the device script are pushed into its workdir."""

import json
import subprocess
import sys
from pathlib import Path

import yaml

from profiler.space.spaces import space_from_dict
from profiler.tables.table import LatencyTable

from conftest import BIN, QUICK_DEVICE, SMALL_SPACE, assert_bad_input, start_measuring


def board(tmp_path: Path, server, **settings) -> Path:
    """A device profile for the test's sshd; its workdir has a space and a $(…) in its name,
    which the remote shell must see as plain text."""
    path = tmp_path / "board.yaml"
    path.write_text(yaml.safe_dump({
        **QUICK_DEVICE, "transport": "ssh", "host": server.host, "port": server.port,
        "user": server.user, "identity_file": str(server.identity_file),
        "known_hosts": str(server.known_hosts), "python": sys.executable,
        "workdir": str(tmp_path / "board dir $(touch pwned)"), "backoff_s": 0.2, **settings}))
    return path


def test_measure_over_ssh(run, tmp_path, small_space, sshd_server):
    device = board(tmp_path, sshd_server)
    proc = run("pxprof", "measure", "--device", device, "--space", small_space, "-o", "t.csv")
    assert proc.returncode == 0, proc.stderr
    table = LatencyTable.load(tmp_path / "t.csv")
    space = space_from_dict(SMALL_SPACE, "small")
    assert table.keys == [b.key for b in space.blocks()]
    fp = table.fingerprint
    assert fp["transport"] == "ssh" and fp["runtime"] == "onnxruntime" and str(fp["cpu_affinity"]) == "0"
    assert not list(tmp_path.rglob("pwned"))  # the workdir's name stayed text

    # Models and the device script were pushed, content-addressed, into the board's workdir.
    store = tmp_path / "board dir $(touch pwned)" / "files"
    pushed = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
    assert sum(n.endswith(".onnx") for n in pushed) == len(space.blocks())
    assert sum(n.endswith(".py") for n in pushed) == 1
    assert not [n for n in pushed if n.startswith(".")]  # no partial push left behind
    # A second table reuses them: nothing is pushed again.
    again = run("pxprof", "measure", "--device", device, "--space", small_space, "-o", "u.csv")
    assert again.returncode == 0, again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in store.iterdir()} == pushed

    check = run("pxprof", "devices", "--check", device)
    assert check.returncode == 0 and "ready" in check.stdout and "ssh" in check.stdout


def _measure_and_cut(env, tmp_path, small_space, server, **settings):
    """Start a slow measurement over ssh, cut the server's connections midway, return the run."""
    # No retries: a block measured again would be a second attempt, which the checks of
    # "nothing lost or doubled" would read as doubled.
    device = board(tmp_path, server, rounds=4, min_sample_ms=30, retries=0, **settings)
    cmd = [str(BIN / "pxprof"), "measure", "--device", str(device), "--space", str(small_space),
           "-o", "t.csv"]
    proc = start_measuring(cmd, env, tmp_path)
    assert server.kill_connections() >= 1
    out, err = proc.communicate(timeout=300)
    return cmd, proc.returncode, err


def _assert_complete(tmp_path):
    """Every block has exactly one attempt of exactly `rounds` rounds: nothing lost or doubled."""
    blocks = json.loads((tmp_path / "t.samples.json").read_text())["blocks"]
    space = space_from_dict(SMALL_SPACE, "small")
    assert set(blocks) == {b.key for b in space.blocks()}
    for block in blocks.values():
        assert [len(a["rounds"]) for a in block["attempts"]] == [4]
        assert all(len(r) == QUICK_DEVICE["runs_per_round"] for r in block["attempts"][0]["rounds"])
    assert len(LatencyTable.load(tmp_path / "t.csv")) == len(space.blocks())


def test_cut_connection_is_retried(env, tmp_path, small_space, sshd_server):
    _, code, err = _measure_and_cut(env, tmp_path, small_space, sshd_server)
    assert code == 0, err
    assert "reconnecting" in err
    _assert_complete(tmp_path)


def test_cut_connection_without_retries_resumes(env, tmp_path, small_space, sshd_server):
    cmd, code, err = _measure_and_cut(env, tmp_path, small_space, sshd_server, reconnects=0)
    assert code == 1, err  # a failure after work began
    lines = err.strip().splitlines()
    assert lines[-1].startswith("pxprof: failed:") and "Traceback" not in err
    kept = json.loads((tmp_path / "t.samples.json").read_text())["blocks"]
    assert kept  # the rounds finished before the cut are kept
    done = subprocess.run(cmd + ["--resume"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for key, block in kept.items():  # nothing measured before the cut was lost or redone
        rounds = block["attempts"][0]["rounds"]
        final = json.loads((tmp_path / "t.samples.json").read_text())["blocks"][key]
        assert final["attempts"][0]["rounds"][:len(rounds)] == rounds
    _assert_complete(tmp_path)


def test_ssh_bad_input(cli, tmp_path, small_space, sshd_server):
    def measure(**settings):
        return cli("pxprof", "measure", "--device", board(tmp_path, sshd_server, **settings),
                   "--space", small_space, "-o", "t.csv")

    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    assert_bad_input(measure(known_hosts=str(empty)), "host key", "ssh-keyscan")
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    assert_bad_input(measure(identity_file=str(stranger)), "refused")
    closed = sshd_server.port + 1 if sshd_server.port < 65535 else 1
    assert_bad_input(measure(port=closed), "cannot reach")
    # A board whose python lacks numpy and the runtime: the message names what to install.
    bare = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}"
    assert_bad_input(measure(python=str(bare)), "pip install")
    assert_bad_input(measure(python="/nonexistent/python3"), "python")
    assert_bad_input(measure(host="127.0.0.1;touch pwned"), "host")
    assert not list(tmp_path.rglob("pwned")) and not list(tmp_path.glob("t.*"))

    not_ready = cli("pxprof", "devices", "--check", board(tmp_path, sshd_server,
                                                         known_hosts=str(empty)))
    assert not_ready.returncode == 1 and "not ready" in not_ready.stdout

    # The ad-hoc form: a runtime must be named; host keys are checked against the user's own
    # known_hosts, which does not know this server.
    adhoc = f"ssh://{sshd_server.user}@{sshd_server.host}:{sshd_server.port}"
    assert_bad_input(cli("pxprof", "measure", "--device", adhoc, "--space", small_space,
                         "-o", "t.csv"), "--runtime")
    proc = cli("pxprof", "measure", "--device", adhoc, "--runtime", "onnxruntime", "--space",
               small_space, "-o", "t.csv")
    assert_bad_input(proc)
    assert not list(tmp_path.glob("t.*"))
