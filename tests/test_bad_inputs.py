"""A corpus of bad files and options, run as a user runs the commands: each row is refused with one
line on stderr and exit status 2, and nothing is written (the folder is the same after the run).

Every kind of file the tools read appears: device profiles, spaces, lookup tables, latency tables,
samples files, architecture files, predictor files, search checkpoints and images. So does every
kind of hostile input: nested thousands of levels deep, never ending (/dev/zero), a few YAML lines
that stand for billions of values, a key given twice, and numbers finite but absurd."""

import io
import json
import shutil
import struct
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from predictors import fit_table
from predictors.features import FEATURES
from profiler.space.spaces import get_space

from conftest import QUICK_DEVICE

sys.path.insert(0, str(Path(__file__).parent))
from test_predictors import law_table  # noqa: E402

TINY = get_space("tiny")
CHOICES = [layer.ops[0] for layer in TINY.layers()]
NOT_UTF8 = b"\xff\xfe\x00bad\x80"
BINARY = bytes(range(256))


def device(**changes) -> str:
    return yaml.safe_dump({**QUICK_DEVICE, **changes})


def predictor_with(**changes) -> str:
    data = json.loads(Path(FILES_DIR, "p.json").read_text())
    data.pop("sha256")
    return json.dumps(data | changes)


def predictor_coef(**weights) -> str:
    """The predictor with some weights (ms per unit of a feature) changed, the rest zero."""
    return predictor_with(coef={f: 0.0 for f in FEATURES} | weights)


def table_times(factor: float = 1.0, **one_block) -> str:
    """The latency table with every latency times `factor`, or one block's set: block=KEY, ms=MS."""
    df = pd.read_csv(Path(FILES_DIR, "t.csv"))
    df["latency_ms"] *= factor
    if one_block:
        df.loc[df["key"] == one_block["block"], "latency_ms"] = one_block["ms"]
    return df.to_csv(index=False)


def deep(levels: int) -> str:
    """A list nested `levels` deep: JSON, and YAML's flow style alike."""
    return "[" * levels + "]" * levels


def nested_field(levels: int) -> dict:
    """A mapping nested `levels` deep: within what the readers recurse through, beyond any file."""
    value: dict = {}
    for _ in range(levels):
        value = {"a": value}
    return value


# Ten aliases of ten aliases ... six times over: a million values in a few lines.
ALIAS_BOMB = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
    f"{b}: &{b} [{', '.join(['*' + a] * 10)}]\n" for a, b in zip("abcde", "bcdef"))
HOSTILE_DEPTH = 100_000
ZERO = Path("/dev/zero")  # as a file's content: the file is a link to it
SEARCHED = TINY.layers()[3].candidates[TINY.layers()[3].ops[0]].key  # a block some layer may skip


def lut_at_two_resolutions() -> str:
    both = TINY.blocks() + get_space("tiny", 64).blocks()
    return yaml.safe_dump({b.key: {"mean": 1.0} for b in both})


def png_header(width: int, height: int) -> bytes:
    """A PNG that says it is width x height and holds almost nothing."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) \
        + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")


def npy(array: np.ndarray, shape=None) -> bytes:
    """`array` as a .npy file; with `shape`, its header claims that shape instead."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        out, np.lib.format.header_data_from_array_1_0(array) | ({"shape": shape} if shape else {}))
    return out.getvalue() + array.tobytes()


# An ImageFolder whose class `a` holds a good image; a row adds the bad one to class `b`.
GOOD_IMAGE = {"img/a/1.npy": npy(np.zeros((8, 8), np.float32))}


FILES_DIR = None  # the folder of valid inputs, set by the test

# (files to write: name -> text, bytes or a callable giving text; the command; fragments of its
# one line of error)
CORPUS = [
    # device profiles
    ({"d.yaml": BINARY}, ["pxprof", "measure", "--device", "d.yaml", "-o", "o.csv"],
     "not a device profile"),
    ({"d.yaml": NOT_UTF8}, ["pxprof", "devices", "--check", "d.yaml"], "not UTF-8"),
    ({"d.yaml": device(threads=True)}, ["pxprof", "measure", "--device", "d.yaml", "-o", "o.csv"],
     "d.yaml: threads: expected an integer, got true"),
    ({"d.yaml": device(max_spread=float("nan"))},
     ["pxprof", "measure", "--device", "d.yaml", "-o", "o.csv"], "max_spread: expected a finite"),
    ({"d.yaml": device(rounds=10 ** 9)}, ["pxprof", "measure", "--device", "d.yaml", "-o", "o.csv"],
     "rounds: must be at most"),
    ({"d.yaml": device(runtime=["onnxruntime"])},
     ["pxprof", "measure", "--device", "d.yaml", "-o", "o.csv"], "runtime: expected text"),
    ({"d.yaml": device(colour="red")}, ["pxprof", "measure", "--device", "d.yaml", "-o", "o.csv"],
     "unknown field(s) colour"),
    ({"d.yaml": "- a list\n"}, ["pxprof", "measure", "--device", "d.yaml", "-o", "o.csv"],
     "expected a mapping"),
    # spaces
    ({"s.json": BINARY}, ["pxprof", "blocks", "--space", "s.json"], "not a space file"),
    ({"s.yaml": yaml.safe_dump({**TINY.to_dict(), "name": "mine", "stages": "wide"})},
     ["pxprof", "blocks", "--space", "s.yaml"], "stages: expected a list"),
    ({"s.yaml": yaml.safe_dump({**TINY.to_dict(), "name": "mine", "width_mult": 0})},
     ["pxprof", "blocks", "--space", "s.yaml"], "width_mult: must be more than 0"),
    ({"s.yaml": yaml.safe_dump({**TINY.to_dict(), "name": "mine", "kernels": [3, True]})},
     ["pxprof", "blocks", "--space", "s.yaml"], "kernels[1]: expected an integer"),
    ({}, ["pxprof", "measure", "--device", "q.yaml", "--space", "tiny", "--resolution", "4",
          "-o", "o.csv"], "cannot take resolution 4"),
    # lookup tables
    ({"l.yaml": NOT_UTF8}, ["pxprof", "import-lut", "l.yaml", "-o", "o.csv"], "not UTF-8"),
    ({"l.yaml": yaml.safe_dump({TINY.blocks()[0].key: {"mean": True}})},
     ["pxprof", "import-lut", "l.yaml", "-o", "o.csv"], "mean: expected a number"),
    ({"l.yaml": yaml.safe_dump({"Conv-x": {"mean": 1.0}, "Bad-y": {"mean": 1.0}})},
     ["pxprof", "import-lut", "l.yaml", "-o", "o.csv"], "2 unparseable block key(s)"),
    ({"l.yaml": yaml.safe_dump({  # an expansion ratio where a middle channel count belongs
        "expanded_conv-input:28x28x48-output:28x28x48-expand:4-kernel:5-stride:1-idskip:1-se:1-hs:0":
            {"mean": 1.0}})},
     ["pxprof", "import-lut", "l.yaml", "-o", "o.csv"], "unparseable block key"),
    # latency tables
    ({"t2.csv": BINARY}, ["pxprof", "show", "t2.csv"], "t2.csv"),
    ({"t2.csv": "key,latency_ms\nx,1\n"}, ["pxprof", "show", "t2.csv"], "missing column"),
    # samples files
    ({"r.csv": lambda: Path(FILES_DIR, "t.csv").read_text(), "r.samples.json": "[1]"},
     ["pxprof", "measure", "--device", "q.yaml", "--space", "tiny", "-o", "r.csv", "--resume"],
     "cannot resume", "not a pxnas samples file"),
    # architecture files
    ({"a.json": json.dumps({"space": "ofa-mbv3-w1.2", "choices": ["k3_e3", "zero"] + ["k3_e3"] * 18})},
     ["pxprof", "export", "--arch", "a.json", "-o", "n.onnx"], "layer 1: 'zero' is not a candidate"),
    ({"a.json": json.dumps({"space": "ofa-mbv3-w1.2", "choices": ["k3_e3"] * 19})},
     ["pxprof", "export", "--arch", "a.json", "-o", "n.onnx"], "20 searchable layers"),
    ({"a.json": json.dumps({"space": "tiny", "resolution": 2, "choices": CHOICES})},
     ["pxprof", "export", "--arch", "a.json", "-o", "n.onnx"], "cannot take resolution 2"),
    ({"a.json": json.dumps({"space": "tiny", "choices": [[c] for c in CHOICES]})},
     ["pxprof", "predict", "--table", "t.csv", "--arch", "a.json"], "choices[0]: expected text"),
    ({"a.json": NOT_UTF8}, ["pxprof", "predict", "--table", "t.csv", "--arch", "a.json"],
     "not an architecture file"),
    ({"a.json": json.dumps({"choices": CHOICES})},
     ["pxprof", "predict", "--table", "t.csv", "--arch", "a.json"], "missing field(s) space"),
    # predictor files
    ({"b.json": lambda: predictor_with(intercept_ms=-1.0)},
     ["pxprof", "predict", "--predictor", "b.json", "--arch", "arch.json"], "non-negative"),
    ({"b.json": lambda: predictor_with(space=["tiny"])},
     ["pxprof", "predict", "--predictor", "b.json", "--arch", "arch.json"], "space: expected text"),
    ({"b.json": lambda: predictor_with(version=7)},
     ["pxprof", "predict", "--predictor", "b.json", "--arch", "arch.json"], "predictor version 7"),
    ({"b.json": lambda: predictor_with(by_kind={"mbconv": {"model": "pickle"}})},
     ["pxprof", "predict", "--predictor", "b.json", "--arch", "arch.json"], "model must be one of"),
    ({"b.json": BINARY}, ["pxprof", "predict", "--predictor", "b.json", "--arch", "arch.json"],
     "not a pxnas predictor"),
    # search checkpoints
    ({"run/checkpoint.pt": BINARY},
     ["pxsearch", "--latency-table", "t.csv", "--target-latency", "50%", "-o", "run", "--resume"],
     "cannot resume"),
    # options, checked before anything is created
    ({}, ["pxsearch", "--latency-table", "t.csv", "--target-latency", "50%", "--lambda", "nan",
          "-o", "new"], "lam: expected a finite number"),
    ({}, ["pxsearch", "--latency-table", "t.csv", "--target-latency", "50%", "--lr", "inf",
          "-o", "new"], "lr: expected a finite number"),
    ({}, ["pxsearch", "--latency-table", "t.csv", "--target-latency", "50%", "--retrain-lr", "0",
          "-o", "new"], "--retrain-lr"),
    ({}, ["pxsearch", "--latency-table", "t.csv", "--target-latency", "nan", "-o", "new"],
     "target"),
    ({}, ["pxprof", "fit-predictor", "--table", "t.csv", "-o", "x.json", "--folds", "1"],
     "folds"),
    # nested thousands of levels deep (the readers recurse), or deeper than any pxnas file
    ({"a.json": deep(HOSTILE_DEPTH)}, ["pxprof", "predict", "--table", "t.csv", "--arch", "a.json"],
     "not an architecture file", "nested deeper"),
    ({"a.yaml": deep(HOSTILE_DEPTH)}, ["pxprof", "predict", "--table", "t.csv", "--arch", "a.yaml"],
     "not an architecture file", "nested deeper"),
    ({"b.json": deep(HOSTILE_DEPTH)},
     ["pxprof", "predict", "--predictor", "b.json", "--arch", "arch.json"], "nested deeper"),
    ({"s.yaml": deep(HOSTILE_DEPTH)}, ["pxprof", "blocks", "--space", "s.yaml"], "nested deeper"),
    ({"d.yaml": deep(HOSTILE_DEPTH)}, ["pxprof", "measure", "--device", "d.yaml", "-o", "o.csv"],
     "nested deeper"),
    ({"l.yaml": deep(HOSTILE_DEPTH)}, ["pxprof", "import-lut", "l.yaml", "-o", "o.csv"],
     "nested deeper"),
    ({"r.csv": lambda: Path(FILES_DIR, "t.csv").read_text(), "r.samples.json": deep(HOSTILE_DEPTH)},
     ["pxprof", "measure", "--device", "q.yaml", "--space", "tiny", "-o", "r.csv", "--resume"],
     "nested deeper"),
    ({"d.yaml": device(description=nested_field(40))},
     ["pxprof", "measure", "--device", "d.yaml", "-o", "o.csv"], "nested deeper than 32"),
    # never ending (/dev/zero) or too large, by what each file can be
    ({}, ["pxprof", "predict", "--table", "t.csv", "--arch", "/dev/zero"], "larger than 1 MiB"),
    ({"a.json": " " * (1 << 20) + "{}"},
     ["pxprof", "predict", "--table", "t.csv", "--arch", "a.json"], "larger than 1 MiB"),
    ({}, ["pxprof", "show", "/dev/zero"], "not a latency table", "larger than"),
    ({}, ["pxsearch", "--latency-table", "/dev/zero", "--target-latency", "50%", "-o", "new"],
     "larger than"),
    ({}, ["pxprof", "import-lut", "/dev/zero", "-o", "o.csv"], "not a lookup table", "larger than"),
    ({}, ["pxprof", "predict", "--predictor", "/dev/zero", "--arch", "arch.json"], "larger than"),
    ({"z.yaml": ZERO}, ["pxprof", "blocks", "--space", "z.yaml"], "not a space file", "larger than"),
    ({"z.yaml": ZERO}, ["pxprof", "measure", "--device", "z.yaml", "-o", "o.csv"],
     "not a device profile", "larger than"),
    ({"r.csv": lambda: Path(FILES_DIR, "t.csv").read_text(), "r.samples.json": ZERO},
     ["pxprof", "measure", "--device", "q.yaml", "--space", "tiny", "-o", "r.csv", "--resume"],
     "larger than"),
    # a few YAML lines that stand for a million values, or a list that holds itself
    ({"s.yaml": ALIAS_BOMB}, ["pxprof", "blocks", "--space", "s.yaml"], "aliases"),
    ({"a.yaml": "&a [*a]\n"}, ["pxprof", "predict", "--table", "t.csv", "--arch", "a.yaml"],
     "not an architecture file"),
    # a key given twice: the readers would keep the last one silently
    ({"l.yaml": f"{TINY.blocks()[0].key}: {{mean: 1.0}}\n{TINY.blocks()[0].key}: {{mean: 2.0}}\n"},
     ["pxprof", "import-lut", "l.yaml", "-o", "o.csv"], "given twice, on lines 1 and 2"),
    ({"d.yaml": device() + "threads: 2\n"},
     ["pxprof", "measure", "--device", "d.yaml", "-o", "o.csv"], "key 'threads' is given twice"),
    ({"b.json": lambda: '{"space": "tiny", ' + predictor_with()[1:]},
     ["pxprof", "predict", "--predictor", "b.json", "--arch", "arch.json"],
     "key 'space' is given twice"),
    # a lookup table of two resolutions would be searched as if it covered one space
    ({"l.yaml": lut_at_two_resolutions()}, ["pxprof", "import-lut", "l.yaml", "-o", "o.csv"],
     "2 input resolutions", "32, 64"),
    # numbers finite but absurd: latencies, weights and scales beyond any device
    ({"l.yaml": yaml.safe_dump({TINY.blocks()[0].key: {"mean": 1e300}})},
     ["pxprof", "import-lut", "l.yaml", "-o", "o.csv"], "mean: must be at most 1000000.0"),
    ({"t2.csv": lambda: table_times(1e-300)}, ["pxprof", "show", "t2.csv"], "latency_ms must be"),
    ({"t2.csv": lambda: table_times(1e20)},
     ["pxsearch", "--latency-table", "t2.csv", "--target-latency", "50%", "-o", "new"],
     "latency_ms must be", "1e-06 to 1e+06"),
    ({"t2.csv": lambda: table_times(1e38)},
     ["pxsearch", "--latency-table", "t2.csv", "--target-latency", "50%", "-o", "new"],
     "latency_ms must be"),
    ({"t2.csv": lambda: table_times(1e308)},
     ["pxprof", "fit-predictor", "--table", "t2.csv", "-o", "x.json"], "latency_ms must be"),
    # one block within the bound but far from the rest: no architecture near 50 % of the range
    ({"t2.csv": lambda: table_times(block=SEARCHED, ms=1e6)},
     ["pxsearch", "--latency-table", "t2.csv", "--target-latency", "50%", "-o", "new"],
     "no architecture of space 'tiny' is within 1% of the target"),
    ({"b.json": lambda: predictor_coef(mmacs_pointwise=1e300)},
     ["pxprof", "predict", "--predictor", "b.json", "--arch", "arch.json"], "at most 1e+06"),
    ({"b.json": lambda: predictor_with(intercept_ms=10 ** 400)},
     ["pxprof", "predict", "--predictor", "b.json", "--arch", "arch.json"],
     "intercept_ms: expected a finite number"),
    # (no measured blocks: the regression prices every block)
    ({"b.json": lambda: predictor_with(intercept_ms=1e6, coef={f: 1e6 for f in FEATURES},
                                       measured={})},
     ["pxprof", "predict", "--predictor", "b.json", "--arch", "arch.json"],
     "more than any block takes"),
    ({"b.json": lambda: predictor_with(calibration={"scale": 1e4, "per_call_ms": 0.0})},
     ["pxprof", "predict", "--predictor", "b.json", "--arch", "arch.json"], "scale 0.001 to 1000"),
    ({"b.json": lambda: predictor_with(by_kind={"mbconv": {
        "model": "random-forest", "init": 0.0, "scale": 1.0, "trees": [
            {"left": [-1], "right": [-1], "feature": [-2], "threshold": [0.0], "value": [1e300]}]}})},
     ["pxprof", "predict", "--predictor", "b.json", "--arch", "arch.json"], "tree 0 value"),
    ({"a.json": json.dumps({"space": "tiny", "resolution": 10 ** 400, "choices": CHOICES})},
     ["pxprof", "export", "--arch", "a.json", "-o", "n.onnx"], "resolution: expected a finite"),
    ({}, ["pxsearch", "--latency-table", "t.csv", "--target-latency", "50%", "--seed",
          str(10 ** 30), "-o", "new"], "seed: must be at most"),
    # images that claim more pixels than they hold, or than any image a search trains on
    ({**GOOD_IMAGE, "img/b/2.npy": npy(np.zeros(25, np.float32), shape=(100_000, 100_000, 3))},
     ["pxsearch", "--latency-table", "t.csv", "--target-latency", "50%", "--data", "img",
      "-o", "new"], "img/b/2.npy: not a readable .npy array"),
    ({**GOOD_IMAGE, "img/b/2.png": png_header(100_000, 100_000)},
     ["pxsearch", "--latency-table", "t.csv", "--target-latency", "50%", "--data", "img",
      "-o", "new"], "img/b/2.png: not a readable image", "decompression bomb"),
    # outputs: never an input, never replaced without --force
    ({}, ["pxprof", "import-lut", "l0.yaml", "-o", "l0.yaml"], "also an input"),
    ({}, ["pxprof", "measure", "--device", "q.yaml", "-o", "q.yaml"], "also an input"),
    ({}, ["pxprof", "merge", "t.csv", "-o", "t.csv"], "also an input"),
    ({}, ["pxprof", "fit-predictor", "--table", "t.csv", "-o", "t.csv"], "also an input"),
    ({"x.onnx": json.dumps({"space": "tiny", "choices": CHOICES})},
     ["pxprof", "export", "--arch", "x.onnx", "-o", "x.onnx"], "also an input"),
    ({}, ["pxprof", "validate", "--device", "q.yaml", "--predictor", "p.json", "-o", "p.json"],
     "also an input"),
    ({}, ["pxsearch", "--latency-table", "t.csv", "--target-latency", "50%", "-o", "t.csv"],
     "also an input"),
    ({}, ["pxprof", "merge", "t.csv", "-o", "p.json"], "p.json exists", "--force"),
    ({}, ["pxprof", "import-lut", "l0.yaml", "-o", "t.csv"], "t.csv exists", "--force"),
    ({}, ["pxprof", "fit-predictor", "--table", "t.csv", "-o", "p.json"], "exists", "--force"),
    ({}, ["pxprof", "export", "--arch", "arch.json", "-o", "p.json"], "suffix"),
    ({}, ["pxprof", "measure", "--device", "q.yaml", "-o", "t.csv"], "exists", "--force"),
    ({}, ["pxprof", "validate", "--device", "q.yaml", "--predictor", "p.json", "-o", "full"],
     "full exists", "--force"),
    ({}, ["pxsearch", "--latency-table", "t.csv", "--target-latency", "50%", "-o", "full"],
     "full exists", "--force"),
]


def _write_inputs(d: Path) -> None:
    law_table(TINY, d / "t.csv")
    fit_table(d / "t.csv").save(d / "p.json")
    (d / "arch.json").write_text(json.dumps({"space": "tiny", "choices": CHOICES}))
    (d / "q.yaml").write_text(device())
    (d / "l0.yaml").write_text(yaml.safe_dump({b.key: {"mean": 1.0} for b in TINY.blocks()}))
    (d / "full").mkdir()
    (d / "full" / "kept.txt").write_text("a user's file")


def _listing(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): (p.read_bytes() if p.is_file() else b"")
            for p in sorted(d.rglob("*"))}


def _check_row(row, folder: Path, run) -> str | None:
    """None if the row's command is refused as it should be, else what went wrong."""
    files, argv, *fragments = row
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        content = content() if callable(content) else content
        if isinstance(content, Path):
            path.symlink_to(content)
        else:
            (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    before = _listing(folder)
    proc = run(argv[0], *argv[1:], cwd=folder)
    lines = proc.stderr.strip().splitlines()
    if proc.returncode != 2 or len(lines) != 1 or "Traceback" in proc.stderr:
        return f"exit {proc.returncode}, stderr {proc.stderr.strip()[-300:]!r}"
    missing = [f for f in fragments if f not in lines[0]]
    if missing:
        return f"{lines[0]!r} lacks {missing}"
    if _listing(folder) != before:
        return f"wrote or changed a file: {sorted(set(_listing(folder)) ^ set(before))}"
    return None


@pytest.mark.slow
def test_bad_inputs_are_refused_and_nothing_is_written(tmp_path, cli):
    global FILES_DIR
    FILES_DIR = tmp_path / "inputs"
    FILES_DIR.mkdir()
    _write_inputs(FILES_DIR)
    folders = []
    for i in range(len(CORPUS)):
        folders.append(tmp_path / f"row{i}")
        shutil.copytree(FILES_DIR, folders[-1])
    # Each row in its own copy of the inputs and its own process, several at once.
    with ThreadPoolExecutor(4) as pool:
        problems = list(pool.map(lambda i: _check_row(CORPUS[i], folders[i], cli),
                                 range(len(CORPUS))))
    failed = [f"row {i} ({' '.join(CORPUS[i][1][:2])}): {p}" for i, p in enumerate(problems) if p]
    assert not failed, "\n".join(failed)


def test_one_bad_profile_among_the_users_hides_no_other(run, env, tmp_path):
    mine = tmp_path / "devices"
    mine.mkdir()
    (mine / "good.yaml").write_text(device(description="my board"))
    (mine / "broken.yaml").write_bytes(NOT_UTF8)
    proc = run("pxprof", "devices", env={**env, "PXNAS_DEVICES": str(mine)})
    assert proc.returncode == 2
    assert "my board" in proc.stdout and "cpu " in proc.stdout
    assert proc.stderr.strip().splitlines() == [
        f"pxprof: skipped {mine / 'broken.yaml'}: not a device profile (not UTF-8 text)"]


def test_bare_commands_print_their_help(run):
    proc = run("pxprof")
    assert proc.returncode == 0 and proc.stdout.startswith("Usage: pxprof") and not proc.stderr
