"""Shared test helpers: run the CLIs as a user does, on small spaces and a quick device profile."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from forked import run_forked
from sshd import sshd_server  # noqa: F401  (a fixture: a real OpenSSH server on 127.0.0.1)

BIN = Path(sys.executable).parent

# A space small enough to export and measure in seconds: 6 blocks to profile.
SMALL_SPACE = {
    "name": "small", "resolution": 16, "stem_width": 8, "first_width": 8,
    "stages": [{"width": 8, "repeats": 2, "stride": 1}, {"width": 16, "repeats": 1, "stride": 2}],
    "feature_width": 32, "classes": 10, "kernels": [3, 5], "expands": [3],
}
QUICK_DEVICE = {"transport": "local", "runtime": "onnxruntime", "threads": 1, "cpus": 0,
                "warmup_s": 0.1, "rounds": 2, "runs_per_round": 3, "min_sample_ms": 0.5}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a test of many seconds (a whole command or search); "
                                       "slow tests start first")
    # Two workers (make test) take one test at a time from a shared queue, not chunks of the
    # collection: with the slow tests first, the longest start at once and the short ones fill in
    # around them, so both workers end together rather than one finishing a long test alone.
    if getattr(config.option, "maxschedchunk", 0) is None:
        config.option.maxschedchunk = 1


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: slow first


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    # One export cache for the whole run, shared by parallel test workers (exports are written
    # atomically): exports are the slow part of measuring.
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "cache"
    shared.mkdir(exist_ok=True)
    return shared


@pytest.fixture
def env(cache_dir):
    return dict(os.environ, PXNAS_CACHE=str(cache_dir), PXNAS_DEVICES=str(cache_dir / "no-devices"))


@pytest.fixture
def run(env, tmp_path):
    """Run a console script in tmp_path; returns the CompletedProcess."""
    def _run(prog, *args, timeout=600, **kw):
        kw.setdefault("env", env)
        kw.setdefault("cwd", tmp_path)
        return subprocess.run([str(BIN / prog), *map(str, args)], capture_output=True, text=True,
                              timeout=timeout, **kw)
    return _run


@pytest.fixture
def cli(env, tmp_path):
    """As `run`, in a process forked from one that has imported pxnas already (tests/forked.py):
    for the refusals and quick commands, where a fresh interpreter would spend its time importing
    torch. A command's whole run goes through `run`, the installed script."""
    def _cli(prog, *args, timeout=300, cwd=None, **kw):
        return run_forked(prog, *args, cwd=cwd or tmp_path, env=kw.get("env", env), timeout=timeout)
    return _cli


@pytest.fixture
def small_space(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL_SPACE))
    return path


@pytest.fixture
def quick_device(tmp_path):
    path = tmp_path / "quick.yaml"
    path.write_text(yaml.safe_dump(QUICK_DEVICE))
    return path


def assert_bad_input(proc, *fragments):
    """Bad input: exit status 2, exactly one line on stderr, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def start_measuring(cmd, env, cwd):
    """Start `cmd` (a pxprof measure writing t.csv in cwd) and return it once its first round is
    checkpointed, so what a test does next lands mid-measurement."""
    # SIGINT as a terminal gives it: a suite started in the background (nohup ... &) would
    # otherwise hand its children an ignored SIGINT, and Python keeps ignoring it.
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    spath = Path(cwd) / "t.samples.json"
    deadline = time.time() + 300
    while not spath.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert spath.exists(), proc.communicate()
    return proc
