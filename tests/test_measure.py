"""Measuring real blocks on this machine's runtimes, the way a user runs pxprof."""

import json
import signal
import subprocess

import pytest
import torch
import yaml

from profiler.outputs import writing
from profiler.space.spaces import space_from_dict
from profiler.tables.table import LatencyTable, samples_path

from conftest import BIN, QUICK_DEVICE, SMALL_SPACE, assert_bad_input, start_measuring


@pytest.mark.slow
def test_measure_small_space(run, cli, tmp_path, small_space, quick_device):
    proc = run("pxprof", "measure", "--device", quick_device, "--space", small_space, "-o", "t.csv")
    assert proc.returncode == 0, proc.stderr
    table = LatencyTable.load(tmp_path / "t.csv")
    space = space_from_dict(SMALL_SPACE, "small")
    assert table.keys == [b.key for b in space.blocks()]
    assert (table.df["latency_ms"] > 0).all()
    assert (table.df["samples"] == QUICK_DEVICE["rounds"] * QUICK_DEVICE["runs_per_round"]).all()
    fp = table.fingerprint
    assert fp["device"] == "quick" and fp["runtime"] == "onnxruntime" and fp["threads"] == 1
    assert fp["runtime_version"] and fp["host_cpu"]
    assert str(fp["cpu_affinity"]) == "0"  # pinned as the profile asks
    # The raw samples are kept beside the table, and the table's medians come from them.
    raw = json.loads(samples_path(tmp_path / "t.csv").read_text())
    key = table.keys[1]
    attempts = raw["blocks"][key]["attempts"]
    best = min(attempts, key=lambda a: _spread([t for r in a["rounds"] for t in r]))
    times = sorted(t for r in best["rounds"] for t in r)
    assert table.df.set_index("key").loc[key, "latency_ms"] == pytest.approx(
        (times[len(times) // 2 - 1] + times[len(times) // 2]) / 2, rel=1e-5)

    shown = cli("pxprof", "show", "t.csv")
    assert shown.returncode == 0 and "space:" in shown.stdout and "small" in shown.stdout
    assert "runtime_version: " in shown.stdout

    # Resuming a complete table measures nothing and changes nothing.
    before = (tmp_path / "t.csv").read_text()
    again = cli("pxprof", "measure", "--device", quick_device, "--space", small_space, "-o", "t.csv",
                "--resume")
    assert again.returncode == 0 and (tmp_path / "t.csv").read_text() == before
    # Without --resume an existing table is never overwritten.
    assert_bad_input(cli("pxprof", "measure", "--device", quick_device, "--space", small_space,
                         "-o", "t.csv"), "exists")
    # A damaged samples file is refused, and left as it is.
    spath = samples_path(tmp_path / "t.csv")
    good = spath.read_text()
    for damaged in ("{not json", json.dumps({**json.loads(good), "method": {}}),
                    good.replace('"inner": ', '"inner": -')):
        spath.write_text(damaged)
        assert_bad_input(cli("pxprof", "measure", "--device", quick_device, "--space", small_space,
                             "-o", "t.csv", "--resume"), "cannot resume")
        assert spath.read_text() == damaged
    spath.write_text(good)
    # Nor resumed with another device.
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**QUICK_DEVICE, "threads": 2}))
    assert_bad_input(cli("pxprof", "measure", "--device", other, "--space", small_space,
                         "-o", "t.csv", "--resume"), "cannot resume")


def _spread(times):
    import numpy as np
    q1, q2, q3 = np.percentile(times, [25, 50, 75])
    return (q3 - q1) / q2


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL, signal.SIGINT])
def test_killed_measure_resumes(env, tmp_path, small_space, sig):
    slow = tmp_path / "slow.yaml"  # long calibrated samples, so the kill lands mid-measurement
    slow.write_text(yaml.safe_dump({**QUICK_DEVICE, "rounds": 4, "min_sample_ms": 40, "max_spread": 1.0}))
    cmd = [str(BIN / "pxprof"), "measure", "--device", str(slow), "--space", str(small_space),
           "-o", "t.csv"]
    proc = start_measuring(cmd, env, tmp_path)
    spath = tmp_path / "t.samples.json"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig != signal.SIGKILL:
        assert proc.returncode == 130 and "--resume" in err
    kept = json.loads(spath.read_text())["blocks"]
    assert kept and all(len(b["attempts"][0]["rounds"]) < 4 for b in kept.values())

    done = subprocess.run(cmd + ["--resume"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    final = json.loads(spath.read_text())["blocks"]
    space = space_from_dict(SMALL_SPACE, "small")
    assert set(final) == {b.key for b in space.blocks()}
    for key, block in kept.items():  # nothing measured before the kill was lost or redone
        rounds = block["attempts"][0]["rounds"]
        assert final[key]["attempts"][0]["rounds"][:len(rounds)] == rounds
        assert len(final[key]["attempts"][0]["rounds"]) == 4
    assert len(LatencyTable.load(tmp_path / "t.csv")) == len(space.blocks())


def test_one_writer_at_a_time(env, tmp_path, small_space):
    slow = tmp_path / "slow.yaml"  # a measurement that outlasts the test
    slow.write_text(yaml.safe_dump({**QUICK_DEVICE, "rounds": 1000, "max_spread": 1.0}))
    cmd = [str(BIN / "pxprof"), "measure", "--device", str(slow), "--space", str(small_space),
           "-o", "t.csv"]
    proc = start_measuring(cmd, env, tmp_path)
    try:
        # Neither completing nor replacing the table while it is written: both name the writer.
        for flag in ("--resume", "--force"):
            second = subprocess.run(cmd + [flag], cwd=tmp_path, env=env, capture_output=True,
                                    text=True)
            assert_bad_input(second, f"being written by pxprof measure (pid {proc.pid}")
    finally:
        proc.kill()  # SIGKILL: no clean-up runs, and the kernel still releases the lock
        proc.communicate(timeout=60)
    with writing(tmp_path / "t.csv"):
        pass


def test_measure_bad_input(cli, small_space, quick_device, tmp_path):
    assert_bad_input(cli("pxprof", "measure", "--device", "nope", "-o", "t.csv"),
                     "unknown device", "cpu", "pixel1")
    assert_bad_input(cli("pxprof", "measure", "--device", quick_device, "--space", "nope",
                         "-o", "t.csv"), "unknown space")
    assert_bad_input(cli("pxprof", "measure", "--device", quick_device, "--space", small_space,
                         "-o", "no/dir/t.csv"), "does not exist")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**QUICK_DEVICE, "runtime": "tvm"}))
    assert_bad_input(cli("pxprof", "measure", "--device", bad, "-o", "t.csv"), "unknown runtime")
    bad.write_text(yaml.safe_dump({**QUICK_DEVICE, "cpus": "big"}))
    assert_bad_input(cli("pxprof", "measure", "--device", bad, "-o", "t.csv"), "CPU list")
    assert list(tmp_path.glob("t.*")) == []


def test_devices_listed(run):
    proc = run("pxprof", "devices")
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    assert {"cpu", "cpu-tflite", "cuda", "pixel1"} <= set(names)


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["tflite", "torch"])
def test_other_runtimes(run, tmp_path, small_space, runtime):
    if runtime == "tflite":
        pytest.importorskip("litert_torch", reason="the tflite extra is not installed")
    dev = tmp_path / f"{runtime}.yaml"
    dev.write_text(yaml.safe_dump({**QUICK_DEVICE, "runtime": runtime}))
    proc = run("pxprof", "measure", "--device", dev, "--space", small_space, "-o", "t.csv")
    assert proc.returncode == 0, proc.stderr
    table = LatencyTable.load(tmp_path / "t.csv")
    assert len(table) == 9 and table.fingerprint["runtime"] == runtime


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_runtime(run, tmp_path, small_space):
    proc = run("pxprof", "measure", "--device", "cuda", "--space", small_space, "-o", "t.csv")
    assert proc.returncode == 0, proc.stderr
    assert "cuda" in LatencyTable.load(tmp_path / "t.csv").fingerprint["runtime_version"]


def test_noisy_entries_are_measured_again(run, tmp_path, small_space):
    strict = tmp_path / "strict.yaml"  # no real timing is this steady: every entry is retried
    strict.write_text(yaml.safe_dump({**QUICK_DEVICE, "max_spread": 1e-9, "retries": 1}))
    proc = run("pxprof", "measure", "--device", strict, "--space", small_space, "-o", "t.csv")
    assert proc.returncode == 0, proc.stderr
    assert "9 unstable" in proc.stdout
    raw = json.loads((tmp_path / "t.samples.json").read_text())["blocks"]
    table = LatencyTable.load(tmp_path / "t.csv").df.set_index("key")
    for key, block in raw.items():
        assert len(block["attempts"]) == 2
        spreads = [_spread([t for r in a["rounds"] for t in r]) for a in block["attempts"]]
        assert table.loc[key, "spread"] == pytest.approx(min(spreads), rel=1e-4, abs=1e-9)
        assert table.loc[key, "unstable"]


def test_drift_watch_redoes_samples(run, tmp_path, small_space):
    # A threshold no real device meets: every check finds drift, cools down (briefly), rebases
    # and takes the samples since the last check again.
    drifting = tmp_path / "drifting.yaml"
    drifting.write_text(yaml.safe_dump({**QUICK_DEVICE, "max_spread": 1.0, "drift_every": 4,
                                        "drift_threshold": 1e-9, "cooldown_s": 0.01,
                                        "cooldowns": 1}))
    proc = run("pxprof", "measure", "--device", drifting, "--space", small_space, "-o", "t.csv")
    assert proc.returncode == 0, proc.stderr
    assert "cooling down" in proc.stderr
    raw = json.loads((tmp_path / "t.samples.json").read_text())
    events = raw["drift"]
    assert events and all(e["cooldowns"] == 1 and e["rebased"] for e in events)
    assert len(events[0]["redone"]) == 4
    # A sample is taken again at most once, so the run ends however the device behaves.
    assert sum(len(e["redone"]) for e in events) <= 9 * QUICK_DEVICE["rounds"]
    # Redone samples replace the drifted ones: every block still has exactly `rounds` rounds.
    for block in raw["blocks"].values():
        assert [len(a["rounds"]) for a in block["attempts"]] == [QUICK_DEVICE["rounds"]]
    assert len(LatencyTable.load(tmp_path / "t.csv")) == 9
