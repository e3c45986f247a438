"""pxsearch as a user runs it: a subprocess, with tiny settings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from profiler.space.arch import load_arch
from profiler.space.spaces import get_space
from search.latency import ExpectedLatency

from forked import run_forked
from search_fixtures import synthetic_table

PXSEARCH = str(Path(sys.executable).with_name("pxsearch"))
FAST = ["--warmup-epochs", "1", "--epochs", "2", "--batch-size", "64", "--train-subset", "256",
        "--select", "2", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def tiny_table(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tables") / "tiny.csv"
    synthetic_table(get_space("tiny")).save(path)
    return path


@pytest.fixture(scope="module")
def bounds():
    return ExpectedLatency(get_space("tiny"), synthetic_table(get_space("tiny"))).bounds()


def _env(cwd) -> dict:
    return dict(os.environ, PXNAS_CACHE=str(cwd or "."), OMP_NUM_THREADS="1")


def pxsearch(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([PXSEARCH, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=_env(cwd), timeout=300)


def forked(*args, cwd) -> subprocess.CompletedProcess:
    """pxsearch forked from an interpreter that has imported torch (tests/forked.py): for refusals,
    and runs whose outcome, not the installed script, is what a test checks."""
    return run_forked("pxsearch", *args, cwd=cwd, env=_env(cwd))


@pytest.mark.slow
def test_search_once_for_alls_space_at_a_small_resolution(tmp_path):
    space = get_space("ofa-mbv3-w1.2", 32)
    synthetic_table(space).save(tmp_path / "ofa.csv")
    # A few digits as an ImageFolder of .npy arrays: the supernet is large, one step is enough.
    digits = load_digits()
    for i, (image, label) in enumerate(zip(digits.images[:40], digits.target[:40])):
        (tmp_path / "data" / str(label)).mkdir(parents=True, exist_ok=True)
        np.save(tmp_path / "data" / str(label) / f"{i}.npy", image.astype(np.float32) / 16)
    out = tmp_path / "run"
    r = forked("--latency-table", "ofa.csv", "--target-latency", "50%", "--data", "data",
                 "--warmup-epochs", "0", "--epochs", "1", "--batch-size", "32", "--threads", "1",
                 "--quiet", "--retrain-epochs", "0", "--no-export", "-o", out, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    arch = json.loads((out / "arch.json").read_text())
    assert (arch["space"], arch["resolution"]) == ("ofa-mbv3-w1.2", 32)
    assert load_arch(out / "arch.json")[0] == space
    labels = [t.text for t in ET.parse(out / "arch.svg").getroot().iter("{http://www.w3.org/2000/svg}text")]
    assert any(label and "SE HS" in label for label in labels), labels  # stages 4 and 5


def _killed(args, out: Path, cwd: Path, ready) -> str:
    """Start the search of `args` into `out`, send it SIGTERM once `ready()`; its stderr."""
    proc = subprocess.Popen([PXSEARCH, *map(str, args), "-o", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err and not (out / "arch.json").exists()
    return err


@pytest.mark.slow
def test_a_search_writes_its_outputs_and_killed_while_searching_then_retraining_resumes_to_them(
        tiny_table, bounds, tmp_path):
    lo, hi = bounds
    target = lo + 0.4 * (hi - lo)
    # A few hundred images: epochs of a few steps, still long enough for a kill to land mid-run.
    args = ["--latency-table", tiny_table, "--target-latency", target, "--warmup-epochs", "1",
            "--epochs", "3", "--batch-size", "64", "--train-subset", "256", "--select", "2",
            "--threads", "1", "--retrain-epochs", "4", "--quiet", "--seed", "3"]
    whole = tmp_path / "whole"
    r = pxsearch(*args, "-o", whole, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "predicted latency" in r.stdout and "test accuracy" in r.stdout
    space, choices = load_arch(whole / "arch.json")
    assert space.name == "tiny"
    arch = json.loads((whole / "arch.json").read_text())
    table = synthetic_table(space)
    assert arch["predicted_latency_ms"] == pytest.approx(table.architecture_latency(space, choices), rel=1e-5)
    assert 0.0 <= arch["test_accuracy"] <= 1.0
    log = (whole / "search_log.csv").read_text().splitlines()
    header = log[0].split(",")
    assert len(log) == 1 + 4 and "expected_latency_ms" in header and "lambda" in header
    assert sum(h.startswith("entropy_") for h in header) == len(space.layers())
    svg = ET.parse(whole / "arch.svg").getroot()
    assert svg.tag.endswith("svg")
    import onnxruntime as ort
    sess = ort.InferenceSession(str(whole / "derived.onnx"))
    (y,) = sess.run(None, {sess.get_inputs()[0].name: np.zeros((1, 3, 32, 32), np.float32)})
    assert y.shape == (1, 10)

    keep = [i for i, c in enumerate(header) if c != "seconds"]
    rows = lambda p: [[r.split(",")[i] for i in keep] for r in p.read_text().splitlines()]  # noqa: E731
    # Killed after the warm-up was checkpointed, while searching; resumed and killed again while
    # retraining the derived network (retrain.pt is saved every epoch), its search complete by then
    # and logged as the uninterrupted one; resumed to the end.
    out = tmp_path / "killed"
    log = out / "search_log.csv"
    _killed(args, out, tmp_path, lambda: log.exists() and len(log.read_text().splitlines()) >= 2)
    _killed([*args, "--resume"], out, tmp_path, lambda: (out / "retrain.pt").exists())
    assert rows(whole / "search_log.csv") == rows(log)
    import torch
    done = torch.load(out / "retrain.pt", weights_only=True)["epoch"]
    assert 1 <= done < 4
    # The export was checked above; a resume may leave it out (it is no part of the search).
    # The last resume, which nothing interrupts, is forked (its imports done once).
    resumed = forked(*args, "--resume", "--no-export", "-o", out, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "arch.json").read_text()) == arch


def _bad(tmp_path, *args) -> str:
    out = tmp_path / "out"
    before = sorted(p.name for p in tmp_path.iterdir())
    r = forked(*args, "-o", out, *FAST, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pxsearch: error: "), r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    return lines[0]


def test_target_outside_the_achievable_range_names_the_range(tiny_table, bounds, tmp_path):
    lo, hi = bounds
    line = _bad(tmp_path, "--latency-table", tiny_table, "--target-latency", lo / 2)
    assert "outside the achievable range" in line and f"{lo:.4g}" in line and f"{hi:.4g}" in line


def test_a_table_for_another_space_is_refused(tmp_path):
    other = tmp_path / "mobile.csv"
    synthetic_table(get_space("proxyless-mobile")).save(other)
    line = _bad(tmp_path, "--latency-table", other, "--space", "tiny", "--target-latency", 0.1)
    assert "measured for space 'proxyless-mobile', not 'tiny'" in line


def test_a_table_missing_blocks_lists_them(tmp_path):
    short = tmp_path / "short.csv"
    synthetic_table(get_space("tiny"), drop=1).save(short)
    line = _bad(tmp_path, "--latency-table", short, "--target-latency", 0.1)
    assert "lacks 1 block(s)" in line and "Logits-input:4x4x128-output:10" in line


def test_a_data_path_that_is_not_a_dataset_is_refused(tiny_table, bounds, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "readme.txt").write_text("not images")
    target = sum(bounds) / 2
    line = _bad(tmp_path, "--latency-table", tiny_table, "--target-latency", target, "--data", folder)
    assert "is not a dataset" in line
    line = _bad(tmp_path, "--latency-table", tiny_table, "--target-latency", target,
                "--data", tiny_table)
    assert "is not a dataset" in line


def test_a_corrupt_checkpoint_is_refused_and_left_alone(tiny_table, bounds, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"\x80\x02 this is not a checkpoint")
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    r = forked("--latency-table", tiny_table, "--target-latency", sum(bounds) / 2, *FAST,
                "--resume", "-o", out, cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "checkpoint is corrupt" in lines[0], r.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_an_unfinished_output_directory_is_not_overwritten(tiny_table, bounds, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "search_log.csv").write_text("epoch\n1\n")
    r = forked("--latency-table", tiny_table, "--target-latency", sum(bounds) / 2, *FAST,
                "-o", out, cwd=tmp_path)
    assert r.returncode == 2 and "pass --resume" in r.stderr
