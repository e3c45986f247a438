"""The stand-ins for adb and benchmark_model behave as the real tools do where pxprof looks.

Both run as a user would run the real ones: a copy on PATH, as a subprocess.
"""

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from profiler.devices.runtimes.benchmark_output import parse_output

STANDINS = Path(__file__).parent / "standins"
QUICK = ["--num_runs=5", "--min_secs=0", "--warmup_runs=1", "--warmup_min_secs=0"]


def install(name, bin_dir: Path) -> Path:
    """A copy of stand-in `name` in bin_dir, run by this interpreter (the venv's, with LiteRT)."""
    text = (STANDINS / name).read_text().split("\n", 1)[1]
    path = bin_dir / name
    path.write_text(f"#!{sys.executable}\n{text}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def bin_dir(tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    install("adb", d)
    install("benchmark_model", d)
    return d


@pytest.fixture
def phones(tmp_path):
    root = tmp_path / "phones"
    root.mkdir()

    def make(serial, state=None, props=None, disconnect_after=None):
        d = root / serial
        (d / "fs").mkdir(parents=True)
        if state:
            (d / "state").write_text(state + "\n")
        (d / "props.json").write_text(json.dumps(props or {
            "ro.product.model": "Pixel", "ro.build.version.release": "10",
            "ro.product.cpu.abi": "arm64-v8a"}))
        if disconnect_after is not None:
            (d / "disconnect_after").write_text(f"{disconnect_after}\n")
        return d
    make.root = root
    return make


@pytest.fixture
def adb(bin_dir, phones, tmp_path):
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               PXNAS_STANDIN_PHONES=str(phones.root))
    env.pop("ANDROID_SERIAL", None)

    def run(*args, timeout=60):
        return subprocess.run(["adb", *map(str, args)], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=timeout)
    return run


# --- adb ------------------------------------------------------------------------------------------

def test_devices_lists_attached_phones_sorted(adb, phones):
    phones("ZZZ1")
    phones("AAA2", state="unauthorized")
    phones("MMM3", state="offline")
    phones("GONE4", state="gone")
    out = adb("devices")
    assert out.returncode == 0
    assert out.stdout == ("List of devices attached\n"
                          "AAA2\tunauthorized\nMMM3\toffline\nZZZ1\tdevice\n\n")


def test_no_phone_at_all(adb):
    for args in (["shell", "true"], ["get-state"]):
        out = adb(*args)
        assert (out.returncode, out.stderr) == (1, "error: no devices/emulators found\n")
    out = adb("push", __file__, "/data/local/tmp/x")
    assert out.returncode == 1
    assert out.stderr == "adb: error: failed to get feature set: no devices/emulators found\n"


def test_one_phone_needs_no_serial_several_do(adb, phones):
    phones("P1")
    assert adb("shell", "echo", "hi").stdout == "hi\n"
    phones("P2")
    out = adb("shell", "echo", "hi")
    assert (out.returncode, out.stderr) == (1, "error: more than one device/emulator\n")
    assert adb("-s", "P2", "shell", "echo", "hi").stdout == "hi\n"
    out = adb("-s", "XYZ", "shell", "echo", "hi")
    assert (out.returncode, out.stderr) == (1, "error: device 'XYZ' not found\n")


def test_unauthorized_and_offline_phones_refuse_commands(adb, phones):
    phones("LOCKED", state="unauthorized")
    phones("ASLEEP", state="offline")
    out = adb("-s", "LOCKED", "shell", "true")
    assert out.returncode == 1
    assert out.stderr.startswith("error: device unauthorized.\nThis adb server's $ADB_VENDOR_KEYS")
    out = adb("-s", "ASLEEP", "shell", "true")
    assert (out.returncode, out.stderr) == (1, "error: device offline\n")
    assert adb("-s", "LOCKED", "get-state").stdout == "unauthorized\n"
    assert adb("-s", "ASLEEP", "get-state").stdout == "offline\n"


def test_push_pull_round_trip(adb, phones, tmp_path):
    phone = phones("P1")
    local = tmp_path / "tool.bin"
    local.write_bytes(bytes(range(256)) * 10)
    local.chmod(0o755)
    out = adb("push", local, "/data/local/tmp/pxnas/")
    assert out.returncode == 0, out.stderr
    assert re.fullmatch(rf"{re.escape(str(local))}: 1 file pushed, 0 skipped\. [\d.]+ MB/s "
                        rf"\(2560 bytes in [\d.]+s\)\n", out.stdout)
    on_phone = phone / "fs/data/local/tmp/pxnas/tool.bin"
    assert on_phone.read_bytes() == local.read_bytes()
    assert os.access(on_phone, os.X_OK)   # mode bits kept: a pushed binary runs
    back = tmp_path / "back.bin"
    out = adb("pull", "/data/local/tmp/pxnas/tool.bin", back)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("/data/local/tmp/pxnas/tool.bin: 1 file pulled, 0 skipped. ")
    assert back.read_bytes() == local.read_bytes()
    out = adb("pull", "/data/local/tmp/nope", back)
    assert (out.returncode, out.stderr) == (
        1, "adb: error: remote object '/data/local/tmp/nope' does not exist\n")
    out = adb("push", tmp_path / "missing", "/sdcard/")
    assert out.returncode == 1 and "cannot stat" in out.stderr


def test_shell_maps_phone_paths_and_has_getprop(adb, phones):
    phone = phones("P1")
    (phone / "fs/sdcard").mkdir(parents=True)
    (phone / "fs/sdcard/note.txt").write_text("on the phone\n")
    assert adb("shell", "cat", "/sdcard/note.txt").stdout == "on the phone\n"
    # One line for the phone's sh, as real adb sends it: redirections and quotes are the phone's.
    adb("shell", "echo hello > /data/local/tmp/out.txt")
    assert (phone / "fs/data/local/tmp/out.txt").read_text() == "hello\n"
    assert adb("shell", "getprop", "ro.product.model").stdout == "Pixel\n"
    assert adb("shell", "getprop", "no.such.key").stdout == "\n"
    assert "[ro.product.cpu.abi]: [arm64-v8a]\n" in adb("shell", "getprop").stdout
    assert adb("shell", "echo", "$(getprop ro.build.version.release)").stdout == "10\n"
    # Paths the phone does not own are read from this machine, and the shell starts in /.
    assert adb("shell", "test -r /proc/self/status && pwd").stdout == "/\n"


def test_shell_passes_the_exit_status_and_both_streams(adb, phones):
    phones("P1")
    assert adb("shell", "exit", "3").returncode == 3
    out = adb("shell", "echo out; echo err >&2; false")
    assert (out.returncode, out.stdout, out.stderr) == (1, "out\n", "err\n")


def test_a_phone_disconnects_after_its_shell_commands(adb, phones):
    phone = phones("P1", disconnect_after=2)
    assert adb("shell", "echo", "1").stdout == "1\n"
    assert adb("shell", "echo", "2").stdout == "2\n"   # the last one it runs
    assert (phone / "state").read_text().strip() == "gone"
    assert not (phone / "disconnect_after").exists()
    out = adb("shell", "echo", "3")
    assert (out.returncode, out.stderr) == (1, "error: no devices/emulators found\n")
    assert adb("-s", "P1", "shell", "true").stderr == "error: device 'P1' not found\n"
    assert adb("devices").stdout == "List of devices attached\n\n"


def test_version_and_unknown_command(adb):
    assert adb("version").stdout.startswith("Android Debug Bridge version 1.0.41")
    out = adb("frobnicate")
    assert (out.returncode, out.stderr) == (1, "adb: unknown command frobnicate\n")


# --- benchmark_model ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def tflite_model(request, tmp_path_factory):
    """A small real TFLite model: one 3x3 convolution, 3 -> 8 channels on 16x16.

    Converting takes a while (litert_torch), so the file is kept in pytest's cache between runs;
    any conv model will do for the stand-in, whatever the torch version that made it."""
    cache = getattr(request.config, "cache", None)
    folder = cache.mkdir("pxnas-standin-model") if cache else tmp_path_factory.mktemp("model")
    path = folder / "conv.tflite"
    if path.exists():
        return path
    pytest.importorskip("litert_torch")
    torch = pytest.importorskip("torch")
    module, shape = torch.nn.Conv2d(3, 8, 3), (1, 3, 16, 16)
    try:
        from profiler.build.export import export
    except ImportError:  # profiler/ being reorganised: convert directly, as the exporter does
        import litert_torch
        litert_torch.convert(module.eval(), (torch.randn(*shape),)).export(str(path))
    else:
        export(module, shape, "tflite", path)
    return path


def bench(bin_dir, *args, slowdown=None):
    env = dict(os.environ)
    env.pop("PXNAS_STANDIN_SLOWDOWN", None)
    if slowdown is not None:
        env["PXNAS_STANDIN_SLOWDOWN"] = str(slowdown)
    return subprocess.run([str(bin_dir / "benchmark_model"), *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=120)


def test_benchmark_model_runs_the_model_and_parses(bin_dir, tflite_model):
    out = bench(bin_dir, f"--graph={tflite_model}", "--num_threads=1", *QUICK)
    assert out.returncode == 0, out.stderr
    for line in ("INFO: STARTING!", "INFO: Log parameter values verbosely: [0]",
                 f"INFO: Graph: [{tflite_model}]", "INFO: #threads used for CPU inference: [1]",
                 f"INFO: Loaded model {tflite_model}", "INFO: The input model file size (MB): ",
                 "INFO: Initialized session in ",
                 "INFO: Running benchmark for at least 5 iterations and at least 0 seconds but "
                 "terminate if exceeding 150 seconds.",
                 "INFO: Inference timings in us: Init: ",
                 "INFO: Memory footprint delta from the start of the tool (MB): init="):
        assert line in out.stderr
    result = parse_output(out.stdout + out.stderr)
    assert result.count >= 5
    assert 0 < result.min_us <= result.avg_us <= result.max_us < 1e6
    assert result.init_us > 0 and result.warmup_avg_us > 0


def test_benchmark_model_keeps_running_until_min_secs(bin_dir, tflite_model):
    out = bench(bin_dir, f"--graph={tflite_model}", "--num_runs=1", "--min_secs=0.2",
                "--warmup_runs=1", "--warmup_min_secs=0")
    result = parse_output(out.stderr)
    assert result.count > 1   # a run takes microseconds: 0.2 s holds many


def test_slowdown_multiplies_the_reported_times(bin_dir, tflite_model):
    fast = parse_output(bench(bin_dir, f"--graph={tflite_model}", *QUICK).stderr)
    slow = parse_output(bench(bin_dir, f"--graph={tflite_model}", *QUICK, slowdown=10).stderr)
    assert slow.min_us >= 4 * fast.min_us


def test_unknown_flags_are_reported_and_ignored(bin_dir, tflite_model):
    out = bench(bin_dir, f"--graph={tflite_model}", *QUICK, "--use_xnnpack=true",
                "--enable_op_profiling=true", "--no_such_flag=1", "stray")
    assert out.returncode == 0, out.stderr
    assert "WARN: Unconsumed cmdline flags: --no_such_flag=1 stray\n" in out.stderr
    assert parse_output(out.stderr).count >= 5


def test_a_missing_graph_fails_as_the_real_tool_does(bin_dir, tmp_path):
    missing = tmp_path / "missing.tflite"
    out = bench(bin_dir, f"--graph={missing}")
    assert out.returncode == 1
    assert f"ERROR: Could not open '{missing}'.\n" in out.stderr
    assert out.stderr.endswith("ERROR: Benchmarking failed.\n")
    with pytest.raises(ValueError, match=re.escape(f"it said: ERROR: Could not open '{missing}'.")):
        parse_output(out.stdout + out.stderr)
    garbage = tmp_path / "garbage.tflite"
    garbage.write_text("not a model")
    out = bench(bin_dir, f"--graph={garbage}")
    assert out.returncode == 1 and f"ERROR: Failed to mmap model {garbage}\n" in out.stderr


def test_benchmark_model_on_a_stand_in_phone(adb, phones, bin_dir, tflite_model):
    """The two together, as pxprof drives a phone: push the tool and the model, run, read."""
    phones("P1")
    assert adb("push", bin_dir / "benchmark_model", "/data/local/tmp/").returncode == 0
    assert adb("push", tflite_model, "/data/local/tmp/conv.tflite").returncode == 0
    out = adb("shell", "/data/local/tmp/benchmark_model", "--graph=/data/local/tmp/conv.tflite",
              *QUICK)
    assert out.returncode == 0, out.stderr
    assert "INFO: Graph: [/" in out.stderr
    assert parse_output(out.stdout + out.stderr).count >= 5
