"""The output policy: --force replaces a table with its samples, one writer at a time, and files
left half-written by a killed writer are swept."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import yaml

from profiler.files import atomic_path, remove_orphans
from profiler.outputs import writing
from profiler.space.spaces import get_space

from conftest import assert_bad_input

sys.path.insert(0, str(Path(__file__).parent))
from test_predictors import law_table  # noqa: E402

TINY = get_space("tiny")


def test_a_replaced_table_takes_its_samples_with_it(run, tmp_path):
    law_table(TINY, tmp_path / "t.csv")
    (tmp_path / "t.samples.json").write_text("{}")  # the raw samples of an earlier measurement
    (tmp_path / "l.yaml").write_text(yaml.safe_dump({b.key: {"mean": 2.0} for b in TINY.blocks()}))
    assert_bad_input(run("pxprof", "import-lut", "l.yaml", "-o", "t.csv"), "exists", "--force")
    done = run("pxprof", "import-lut", "l.yaml", "-o", "t.csv", "--force")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "t.samples.json").exists()
    assert "2," in (tmp_path / "t.csv").read_text().splitlines()[1]
    assert not list(tmp_path.glob(".*"))  # no lock or temporary file left


def test_a_search_being_written_is_not_touched(cli, tmp_path):
    law_table(TINY, tmp_path / "t.csv")
    with writing(tmp_path / "out", "another pxsearch"):
        proc = cli("pxsearch", "--latency-table", "t.csv", "--target-latency", "50%", "-o", "out",
                   "--resume")
    assert_bad_input(proc, "out is being written by another pxsearch")
    assert not (tmp_path / "out").exists()


def test_half_written_files_of_dead_writers_are_swept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    orphan = tmp_path / f".block.onnx.{dead}-x1y2.part.onnx"
    orphan.write_text("half a model")
    with atomic_path(tmp_path / "other.onnx") as live:
        live.write_text("being written")
        remove_orphans(tmp_path)
        assert live.exists() and not orphan.exists()
    assert (tmp_path / "other.onnx").read_text() == "being written"
    assert os.listdir(tmp_path) == ["other.onnx"]


def test_a_writer_that_waits_writes_once_the_first_is_done(tmp_path):
    # A shared export cache: a second process exporting the same block waits, then finds it.
    path = tmp_path / "block.onnx"
    taken = threading.Event()

    def second():
        with writing(path, "second", wait=True):
            taken.set()
    with writing(path, "first"):
        thread = threading.Thread(target=second)
        thread.start()
        assert not taken.wait(0.5)  # the first holds the lock: the second waits for it
    thread.join(30)
    assert taken.is_set() and not list(tmp_path.iterdir())  # and no lock is left behind
