"""A search on two processes (DistributedDataParallel, gloo on this CPU): through the library in
processes started as torchrun starts them, and through `pxsearch --nproc 2` as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch.distributed import TCPStore

from profiler.space.spaces import get_space

from forked import run_forked, start_forked
from search_fixtures import synthetic_table

PXSEARCH = str(Path(sys.executable).with_name("pxsearch"))
WORKER = Path(__file__).with_name("distributed_worker.py")
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def _workers(out: Path, nproc: int) -> dict:
    """The worker's search on `nproc` processes started as torchrun starts them: each with its
    rank and the world size in its environment, all meeting at a store their launcher (here,
    this test) holds. Each is forked from an interpreter that has imported torch (tests/forked.py);
    `pxsearch --nproc` below starts its processes through torch's launcher itself."""
    store = TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    env = dict(ENV, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(store.port), WORLD_SIZE=str(nproc),
               LOCAL_WORLD_SIZE=str(nproc), TORCHELASTIC_USE_AGENT_STORE="True")
    code = f"import sys; sys.path.insert(0, {str(WORKER.parent)!r}); import pathlib; " \
           f"from distributed_worker import main; main(pathlib.Path({str(out)!r}), 'two')"
    started = [start_forked("python", "-c", code, cwd=out,
                            env=dict(env, RANK=str(rank), LOCAL_RANK=str(rank)))
               for rank in range(nproc)]
    # As torchrun does, a process that failed stops the others (they would wait for it).
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not all(s.poll() == 0 for s in started) \
            and not any(s.poll() for s in started):
        time.sleep(0.05)
    for s in started:
        s.kill()
    done = [s.wait(60) for s in started]
    assert all(d.returncode == 0 for d in done), [d.stderr[-3000:] for d in done]
    return {rank: torch.load(out / f"rank{rank}-of-{nproc}.pt", weights_only=True)
            for rank in range(nproc)}


def _one_process(out: Path) -> dict:
    """The worker's search in this process, a library call as any caller makes it, on one thread
    as each torchrun process has."""
    from distributed_worker import main
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        main(out, "two")
    finally:
        torch.set_num_threads(threads)
    return torch.load(out / "rank0-of-1.pt", weights_only=True)


@pytest.mark.slow
def test_every_process_holds_the_same_search_and_it_matches_one_process(tmp_path):
    ranks = _workers(tmp_path, 2)
    a, b = ranks[0], ranks[1]
    assert all(torch.equal(x, y) for x, y in zip(a["alpha"], b["alpha"]))
    assert a["lambda"] == b["lambda"] != 0.0
    assert a["weights"].keys() == b["weights"].keys()
    assert all(torch.equal(a["weights"][k], b["weights"][k]) for k in a["weights"])
    losses = [row["train_loss"] for row in a["rows"]]
    assert losses == sorted(losses, reverse=True) and losses[-1] < losses[0] - 0.03  # it trains
    assert max(float(x.abs().max()) for x in a["alpha"]) > 0.1  # the architecture moved

    # One process on the same global batches: the same search but for batch-norm statistics,
    # which each process takes over its own half of a batch.
    one = _one_process(tmp_path)
    probs = lambda run: [torch.softmax(x, 0) for x in run["alpha"]]  # noqa: E731
    assert max(float((p - q).abs().max()) for p, q in zip(probs(a), probs(one))) < 0.03
    assert a["lambda"] == pytest.approx(one["lambda"], rel=0.02)
    for r2, r1 in zip(a["rows"], one["rows"]):
        assert r2["expected_latency_ms"] == pytest.approx(r1["expected_latency_ms"], rel=1e-3)
        assert r2["train_loss"] == pytest.approx(r1["train_loss"], abs=0.05)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A latency table of `tiny` and 160 digits as an ImageFolder: three steps an epoch."""
    root = tmp_path_factory.mktemp("inputs")
    synthetic_table(get_space("tiny")).save(root / "tiny.csv")
    digits = load_digits()
    for i, (image, label) in enumerate(zip(digits.images[:160], digits.target[:160])):
        (root / "data" / str(label)).mkdir(parents=True, exist_ok=True)
        np.save(root / "data" / str(label) / f"{i}.npy", image.astype(np.float32) / 16)
    return root


def _args(inputs: Path) -> list[str]:
    return ["--latency-table", str(inputs / "tiny.csv"), "--target-latency", "50%",
            "--data", str(inputs / "data"), "--warmup-epochs", "1", "--epochs", "2",
            "--batch-size", "32", "--retrain-epochs", "1", "--seed", "2", "--select", "2",
            "--quiet"]


def pxsearch(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([PXSEARCH, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=dict(ENV, PXNAS_CACHE=str(cwd)), timeout=300)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


def _complaints(stderr: str) -> list[str]:
    # Everything but the line that says what is being searched.
    return [line for line in stderr.strip().splitlines() if not line.startswith("searching ")]


@pytest.mark.slow
def test_two_processes_write_once_and_a_search_whose_process_died_resumes(inputs, tmp_path):
    args = _args(inputs)
    whole = pxsearch(*args, "--nproc", "2", "-o", tmp_path / "whole", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    # Rank 0 alone writes and speaks.
    assert sorted(p.name for p in (tmp_path / "whole").iterdir()) == \
        ["arch.json", "arch.svg", "checkpoint.pt", "derived.onnx", "derived.pt", "net.config",
         "retrain.pt", "run.config", "search_log.csv", "selection.csv"]
    assert whole.stdout.count("architecture:") == 1 and whole.stdout.count("test accuracy") == 1
    assert "on 2 processes" in whole.stderr and _complaints(whole.stderr) == [], whole.stderr
    arch = json.loads((tmp_path / "whole" / "arch.json").read_text())
    assert arch["world_size"] == 2
    assert len((tmp_path / "whole" / "search_log.csv").read_text().splitlines()) == 1 + 3

    # A process dies (SIGKILL) after the first epoch: the launcher stops the other and says so.
    # (From here the launcher is forked from an interpreter that has imported torch; its search
    # processes are started by torch's launcher as above.)
    out = tmp_path / "killed"
    proc = start_forked("pxsearch", *args, "--nproc", "2", "-o", out, cwd=tmp_path,
                        env=dict(ENV, PXNAS_CACHE=str(tmp_path)))
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "search_log.csv").exists():
        time.sleep(0.05)
    workers = _children(proc.pid)
    assert len(workers) == 2, workers
    os.kill(workers[-1], signal.SIGKILL)
    stopped = proc.wait(120)
    err = stopped.stderr
    assert stopped.returncode == 1, err
    assert len(_complaints(err)) == 1, err
    assert _complaints(err)[0].startswith("pxsearch: failed: search process ") and \
        "of 2 was killed by signal SIGKILL" in err and "--resume" in err
    assert not (out / "arch.json").exists() and not _children(proc.pid)

    # It resumes only on as many processes as it was made with.
    checkpoint = (out / "checkpoint.pt").read_bytes()
    other = run_forked("pxsearch", *args, "--resume", "-o", out, cwd=tmp_path,
                       env=dict(ENV, PXNAS_CACHE=str(tmp_path)))
    assert other.returncode == 2
    assert other.stderr.strip().splitlines() == [
        f"pxsearch: error: cannot resume from {out / 'checkpoint.pt'}: it was made by 2 "
        f"process(es), this run has 1; resume it with --nproc 2"]
    assert (out / "checkpoint.pt").read_bytes() == checkpoint

    # The export was checked in the whole run; a resume may leave it out (no part of the search).
    resumed = run_forked("pxsearch", *args, "--nproc", "2", "--resume", "--no-export", "-o", out,
                         cwd=tmp_path, env=dict(ENV, PXNAS_CACHE=str(tmp_path)))
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "arch.json").read_text()) == arch
    strip = lambda p: [r.split(",")[:10] for r in (p / "search_log.csv").read_text().splitlines()]  # noqa: E731
    assert strip(out) == strip(tmp_path / "whole")  # up to the seconds column


def test_more_processes_than_the_machine_has_are_refused(inputs, tmp_path):
    r = run_forked("pxsearch", *_args(inputs), "--nproc", "4096", "-o", tmp_path / "out",
                   cwd=tmp_path, env=dict(ENV, PXNAS_CACHE=str(tmp_path)))
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("pxsearch: error: --nproc 4096: this machine lets pxsearch use ")
    assert not (tmp_path / "out").exists()
