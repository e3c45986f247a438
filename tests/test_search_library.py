"""The search as a Python caller uses it: run_search, its result and its errors (ValueErrors)."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import pytest
import torch

from profiler.space.arch import load_arch
from profiler.space.spaces import get_space
from search import RetrainConfig, SearchConfig, run_search
from search.data import Split, load_data
from search.latency import ExpectedLatency

from search_fixtures import synthetic_table


@pytest.fixture(scope="module")
def small_digits():
    data = load_data("digits", 32, seed=0)
    data.train = Split(data.train.images[:128], data.train.labels[:128])
    data.val = Split(data.val.images[:64], data.val.labels[:64])
    data.test = Split(data.test.images[:64], data.test.labels[:64])
    return data


@pytest.mark.slow
def test_run_search_returns_the_architecture_and_writes_it(small_digits, tmp_path):
    table = synthetic_table(get_space("tiny"))
    lo, hi = ExpectedLatency(get_space("tiny"), table).bounds()
    config = SearchConfig(target_ms=(lo + hi) / 2, warmup_epochs=1, epochs=1, batch_size=32,
                          select=4)
    out = tmp_path / "out"
    result = run_search("tiny", table, small_digits, config, out, progress=False,
                        retrain_config=RetrainConfig(epochs=1))
    space, choices = load_arch(out / "arch.json")
    assert result.choices == choices and result.space == space
    assert result.predicted_latency_ms == pytest.approx(table.architecture_latency(space, choices))
    assert result.target_latency_ms == config.target_ms
    assert 0.0 <= result.test_accuracy <= 1.0 and len(result.log) == 2
    assert result.network(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert set(result.files) == {"checkpoint", "log", "selection", "retrain_checkpoint", "svg",
                                 "network", "onnx", "arch", "net_config", "run_config"}
    # The selection: the kept architecture scored best of candidates that all meet the budget,
    # the most likely one among them.
    rows = list(csv.DictReader((out / "selection.csv").read_text().splitlines()))
    assert len(rows) == 1 + config.select and sum(r["most_likely"] == "1" for r in rows) == 1
    assert rows[0]["choices"].split() == choices
    assert float(rows[0]["val_acc"]) == pytest.approx(result.search_val_accuracy, abs=1e-5)
    assert float(rows[0]["val_acc"]) == max(float(r["val_acc"]) for r in rows)
    assert all(abs(float(r["latency_ms"]) / config.target_ms - 1) <= config.budget_tolerance
               for r in rows)
    assert load_arch(out / "net.config") == (space, choices)  # ProxylessNAS's format, read back
    assert json.loads((out / "arch.json").read_text())["world_size"] == 1

    # A finished search resumes to the same result without searching again.
    again = run_search("tiny", table, small_digits, config, out, progress=False, resume=True,
                       retrain_config=RetrainConfig(epochs=0), export_onnx=False)
    assert again.choices == result.choices and json.dumps(again.log) == json.dumps(result.log)
    # The selection changes nothing a checkpoint holds: resumed without it, the most likely one.
    plain = run_search("tiny", table, small_digits, replace(config, select=0), out,
                       progress=False, resume=True, retrain_config=RetrainConfig(epochs=0),
                       export_onnx=False)
    assert plain.choices == next(r["choices"].split() for r in rows if r["most_likely"] == "1")
    assert not (out / "selection.csv").exists()

    # Afresh over it, nothing of the earlier search stays to be taken for this one's.
    (out / "notes.txt").write_text("the user's")
    fresh = run_search("tiny", table, small_digits, config, out, progress=False, force=True,
                       retrain_config=RetrainConfig(epochs=0), export_onnx=False)
    assert sorted(p.name for p in out.iterdir()) == \
        ["arch.json", "arch.svg", "checkpoint.pt", "derived.pt", "net.config", "notes.txt",
         "run.config", "search_log.csv", "selection.csv"]
    assert "test_accuracy" not in json.loads((out / "arch.json").read_text())
    assert fresh.choices == result.choices  # the same seed


def test_bad_input_is_a_value_error_and_writes_nothing(small_digits, tmp_path):
    table = synthetic_table(get_space("tiny"))
    lo, hi = ExpectedLatency(get_space("tiny"), table).bounds()
    with pytest.raises(ValueError, match="mul#log needs a target above 1 ms"):
        SearchConfig(target_ms=0.5, loss="mul#log")
    with pytest.raises(ValueError, match="mode"):
        SearchConfig(target_ms=0.5, mode="three")
    with pytest.raises(ValueError, match="outside the achievable range"):
        run_search("tiny", table, small_digits, SearchConfig(target_ms=2 * hi), tmp_path / "a")
    with pytest.raises(ValueError, match="cannot be split across"):
        run_search("tiny", table, small_digits, SearchConfig(target_ms=hi, batch_size=1),
                   tmp_path / "a", world=_World(size=2))
    assert list(tmp_path.iterdir()) == []


def _World(size):
    from search import World
    return World(rank=0, size=size)
