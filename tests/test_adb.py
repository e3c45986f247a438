"""Phones over adb, by stand-in: an `adb` first on PATH stands for phones with directories, and a
`benchmark_model` that really runs the .tflite with LiteRT and prints the tool's output."""

import json
import os
import stat
import statistics
import sys
from pathlib import Path

import pytest
import yaml

from profiler.space.spaces import space_from_dict
from profiler.tables.table import LatencyTable

from conftest import assert_bad_input

pytest.importorskip("litert_torch", reason="TFLite export needs the tflite extra")

STANDINS = Path(__file__).with_name("standins")
SHIPPED = Path(__file__).parents[1] / "profiler" / "devices" / "profiles"
# Six blocks, all among the small space's of the other tests (their exports are shared): a stem,
# the first block, two searchable layers, the feature mix and the classifier.
MICRO_SPACE = {"name": "micro", "resolution": 16, "stem_width": 8, "first_width": 8,
               "stages": [{"width": 8, "repeats": 1, "stride": 1},
                          {"width": 16, "repeats": 1, "stride": 2}],
               "feature_width": 32, "classes": 10, "kernels": [3], "expands": [3]}
# Few, short invocations: a test measures the method, not the phone.
QUICK = {"warmup_s": 0.02, "rounds": 2, "runs_per_round": 2, "min_sample_ms": 1.0,
         "max_spread": 1.0, "backoff_s": 0.1, "drift_every": 0}
# Where a test checks what happens around the samples (a phone lost and resumed, a farm sharing
# the blocks), one sample a round: every sample is a process that loads LiteRT.
ONE = {"runs_per_round": 1}
PIXEL = {"ro.product.model": "Pixel", "ro.build.version.release": "7.1.2",
         "ro.product.cpu.abi": "arm64-v8a"}


def install(tool: str, directory: Path) -> Path:
    """A stand-in, run by this interpreter (which has LiteRT)."""
    directory.mkdir(exist_ok=True)
    path = directory / tool
    text = (STANDINS / tool).read_text().split("\n", 1)[1]
    path.write_text(f"#!{sys.executable}\n{text}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def phones(tmp_path, env):
    """add(serial, state, **props): attach a stand-in phone."""
    bin_dir = tmp_path / "bin"
    install("adb", bin_dir)
    root = tmp_path / "phones"
    root.mkdir()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env["PXNAS_STANDIN_PHONES"] = str(root)

    def add(serial, state="device", props=PIXEL):
        phone = root / serial
        (phone / "fs").mkdir(parents=True)
        (phone / "state").write_text(state)
        (phone / "props.json").write_text(json.dumps(props))
        return phone
    return add


@pytest.fixture
def tool(tmp_path):
    return install("benchmark_model", tmp_path / "tools")


@pytest.fixture
def micro(tmp_path):
    path = tmp_path / "micro.yaml"
    path.write_text(yaml.safe_dump(MICRO_SPACE))
    return path


def profile(env, tmp_path, name, **settings) -> str:
    """A user profile `name`: the shipped pixel1 with the test's quick method and `settings`."""
    devices = Path(env["PXNAS_DEVICES"])
    devices.mkdir(exist_ok=True)
    shipped = yaml.safe_load((SHIPPED / "pixel1.yaml").read_text())
    (devices / f"{name}.yaml").write_text(yaml.safe_dump(shipped | QUICK | settings))
    return name


@pytest.fixture
def env(cache_dir, tmp_path):
    # Per test: the user's device profiles live in this test's directory.
    return dict(os.environ, PXNAS_CACHE=str(cache_dir), PXNAS_DEVICES=str(tmp_path / "devices"))


@pytest.mark.slow
def test_pixel1_end_to_end(run, cli, env, tmp_path, phones, tool, micro):
    phone = phones("FA6AB0301234")
    profile(env, tmp_path, "pixel1")  # the shipped pixel1, measured quickly
    proc = run("pxprof", "measure", "--device", "pixel1", "--benchmark-binary", tool,
               "--space", micro, "-o", "t.csv")
    assert proc.returncode == 0, proc.stderr
    table = LatencyTable.load(tmp_path / "t.csv")
    space = space_from_dict(MICRO_SPACE, "micro")
    assert table.keys == [b.key for b in space.blocks()]
    fp = table.fingerprint
    assert (fp["device"], fp["transport"], fp["runtime"]) == ("pixel1", "adb", "benchmark_model")
    assert fp["host"] == "FA6AB0301234" and fp["host_cpu"] == "Pixel (arm64-v8a)"
    assert fp["runtime_version"].startswith("benchmark_model ") and fp["cpu_affinity"] == "2-3"
    raw = json.loads((tmp_path / "t.samples.json").read_text())
    assert raw["fingerprint"]["facts"]["android"] == "7.1.2"
    # One invocation, one sample: the table's median is of exactly what the tool reported (in
    # the steadiest attempt, when a noisy one was measured again).
    for key, block in raw["blocks"].items():
        medians = []
        for attempt in block["attempts"]:
            times = [t for r in attempt["rounds"] for t in r]
            assert len(times) == QUICK["rounds"] * QUICK["runs_per_round"]
            medians.append(pytest.approx(statistics.median(times), rel=1e-5))
        assert table.df.set_index("key").loc[key, "latency_ms"] in medians

    # Models and the tool were pushed once, content-addressed; a second table (one sample a
    # block: it loads the same models) pushes nothing.
    store = phone / "fs" / "data" / "local" / "tmp" / "pxnas" / "files"
    pushed = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
    assert sum(n.endswith(".tflite") for n in pushed) == len(space.blocks())
    assert len(pushed) == len(space.blocks()) + 1
    profile(env, tmp_path, "once", rounds=1, runs_per_round=1)
    again = run("pxprof", "measure", "--device", "once", "--benchmark-binary", tool,
                "--space", micro, "-o", "u.csv")
    assert again.returncode == 0, again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in store.iterdir()} == pushed

    # The ad-hoc form reaches the same phone.
    ready = cli("pxprof", "devices", "--check", "adb://FA6AB0301234", "--benchmark-binary", tool)
    assert ready.returncode == 0, ready.stdout + ready.stderr
    assert "ready" in ready.stdout and "Pixel" in ready.stdout


def test_adb_bad_input(cli, env, tmp_path, phones, tool, micro):
    def measure(device="pixel1", binary=tool, **kw):
        args = ["measure", "--device", device, "--space", micro, "-o", "t.csv"]
        return cli("pxprof", *args, *(["--benchmark-binary", binary] if binary else []), **kw)

    profile(env, tmp_path, "pixel1")
    no_adb = dict(env, PATH=str(tmp_path / "nothing"))
    assert_bad_input(cli("pxprof", "measure", "--device", "pixel1", "--benchmark-binary", tool,
                         "--space", micro, "-o", "t.csv", env=no_adb), "adb is not on PATH")
    assert_bad_input(measure(), "no phone attached")
    phones("A1", state="unauthorized")
    assert_bad_input(measure(), "unauthorized")
    phones("B2")
    assert_bad_input(measure(), "several phones attached", "A1", "B2")
    assert_bad_input(measure("adb://C3"), "C3 is not attached")
    assert_bad_input(measure("adb://B2", binary=None), "--benchmark-binary")
    wrong = tmp_path / "not_the_tool"
    wrong.write_text("#!/bin/sh\necho hello\n")
    assert_bad_input(measure("adb://B2", binary=wrong), "does not run as TFLite's benchmark_model")
    assert_bad_input(measure("adb://B2;reboot"), "not an adb device")
    assert not list(tmp_path.glob("t.*"))


@pytest.mark.slow
def test_phone_that_disconnects(run, env, tmp_path, phones, tool, micro):
    phone = phones("P1")
    profile(env, tmp_path, "flaky", serial="P1", reconnects=1, **ONE)
    # Commands enough to push and check (12), warm the six blocks up and take the first round
    # (checkpointed) and one sample of the second; then the phone is gone.
    (phone / "disconnect_after").write_text("25")
    proc = run("pxprof", "measure", "--device", "flaky", "--benchmark-binary", tool,
               "--space", micro, "-o", "t.csv")
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("pxprof: failed:")
    assert "reconnecting" in proc.stderr and "Traceback" not in proc.stderr
    kept = json.loads((tmp_path / "t.samples.json").read_text())["blocks"]
    assert len(kept) == 6 and all(a["rounds"] for b in kept.values() for a in b["attempts"])
    (phone / "state").write_text("device")  # plugged in again
    done = run("pxprof", "measure", "--device", "flaky", "--benchmark-binary", tool,
               "--space", micro, "-o", "t.csv", "--resume")
    assert done.returncode == 0, done.stderr
    final = json.loads((tmp_path / "t.samples.json").read_text())["blocks"]
    for key, block in kept.items():
        for before, after in zip(block["attempts"], final[key]["attempts"]):
            assert after["rounds"][:len(before["rounds"])] == before["rounds"]
    assert len(LatencyTable.load(tmp_path / "t.csv")) == len(final) == 6


@pytest.mark.slow
def test_phone_farm(run, cli, env, tmp_path, phones, tool, micro):
    phones("A1")
    phones("B2")
    phones("C3", props=PIXEL | {"ro.product.model": "Pixel 2"})
    for serial in ("A1", "B2", "C3"):
        profile(env, tmp_path, f"phone{serial}", serial=serial, **ONE)
    proc = run("pxprof", "measure", "--device", "phoneA1", "--device", "phoneB2",
               "--benchmark-binary", tool, "--space", micro, "-o", "t.csv")
    assert proc.returncode == 0, proc.stderr
    table = LatencyTable.load(tmp_path / "t.csv")
    assert len(table) == 6 and table.fingerprint["host"] == "A1+B2"
    raw = json.loads((tmp_path / "t.samples.json").read_text())
    units = [a["unit"] for b in raw["blocks"].values() for a in b["attempts"]]
    assert set(units) == {"A1", "B2"}  # the blocks were split, each measured on one phone
    # Phones of different models never measure one table.
    assert_bad_input(cli("pxprof", "measure", "--device", "phoneA1", "--device", "phoneC3",
                         "--benchmark-binary", tool, "--space", micro, "-o", "u.csv"),
                     "one model", "Pixel 2")
