"""Several targets from one warm-up (search/targets.py, pxsearch --target-latency A B C)."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import pytest

from profiler.errors import UserError
from profiler.space.spaces import get_space
from search import RetrainConfig, SearchConfig, run_search, run_targets
from search.data import load_data
from search.latency import ExpectedLatency

from search_fixtures import synthetic_table
from test_search_cli import FAST, _bad, bounds, forked, tiny_table  # noqa: F401 (fixtures)

SPACE = get_space("tiny")
SETTINGS = dict(retrain_config=RetrainConfig(epochs=0), export_onnx=False, progress=False)


def _rows(result) -> list[dict]:
    # nan (no architecture step in warm-up) is no value to compare: None stands for it
    return [{k: None if v != v else v for k, v in r.items() if k != "seconds"} for r in result.log]


@pytest.fixture(scope="module")
def setup():
    latency = ExpectedLatency(SPACE, synthetic_table(SPACE))
    lo, hi = latency.bounds()
    data = load_data("digits", 32, seed=0, subset=160)
    config = SearchConfig(target_ms=lo, warmup_epochs=1, epochs=1, batch_size=64, seed=2,
                          select=2)
    return latency, data, config, [lo + 0.35 * (hi - lo), lo + 0.65 * (hi - lo)]


@pytest.fixture(scope="module")
def whole(setup, tmp_path_factory):
    latency, data, config, targets = setup
    out = tmp_path_factory.mktemp("whole") / "out"
    return out, run_targets("tiny", latency, data, config, targets, out, **SETTINGS)


@pytest.mark.slow
def test_each_target_ends_as_its_search_alone_would(setup, whole, tmp_path):
    latency, data, config, targets = setup
    out, results = whole
    assert [r.target_latency_ms for r in results] == targets
    alone = run_search("tiny", latency, data, replace(config, target_ms=targets[1]),
                       tmp_path / "alone", **SETTINGS)
    assert results[1].choices == alone.choices
    # The search epochs alike, number for number (the warm-up's rows derive for its own target).
    assert _rows(results[1])[1:] == _rows(alone)[1:]
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["warmup", f"{targets[0]:.4g}ms", f"{targets[1]:.4g}ms", "pareto.csv",
                            "pareto.png"])
    for r, target in zip(results, targets):
        arch = json.loads((out / f"{target:.4g}ms" / "arch.json").read_text())
        assert arch["choices"] == r.choices and arch["target_latency_ms"] == target
    rows = list(csv.DictReader((out / "pareto.csv").open()))
    assert [(row["kind"], float(row["target_ms"])) for row in rows] == \
        [("searched", pytest.approx(t, rel=1e-5)) for t in targets]
    assert [float(row["latency_ms"]) for row in rows] == \
        [pytest.approx(r.predicted_latency_ms, rel=1e-5) for r in results]
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_an_interrupted_run_resumes_to_the_same_end_and_force_starts_afresh(setup, whole,
                                                                           tmp_path):
    latency, data, config, targets = setup
    out = tmp_path / "out"

    def stop_at_second(result):
        if result.target_latency_ms == targets[1]:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_targets("tiny", latency, data, config, targets, out, on_search_done=stop_at_second,
                    **SETTINGS)
    assert (out / f"{targets[0]:.4g}ms" / "arch.json").exists()
    assert not (out / f"{targets[1]:.4g}ms" / "arch.json").exists()
    assert not (out / "pareto.csv").exists()
    with pytest.raises(UserError, match="pass --resume to complete it, --force"):
        run_targets("tiny", latency, data, config, targets, out, **SETTINGS)
    resumed = run_targets("tiny", latency, data, config, targets, out, resume=True, **SETTINGS)
    assert [r.choices for r in resumed] == [r.choices for r in whole[1]]
    assert [_rows(r) for r in resumed] == [_rows(r) for r in whole[1]]
    assert (whole[0] / "pareto.csv").read_text() == (out / "pareto.csv").read_text()

    # --force: another seed searches afresh over it, the warm-up included.
    forced = run_targets("tiny", latency, data, replace(config, seed=3), targets, out, force=True,
                         **SETTINGS)
    warm_log = (out / "warmup" / "search_log.csv").read_text().splitlines()
    assert len(warm_log) == 2 and [len(r.log) for r in forced] == [2, 2]


@pytest.mark.slow
def test_pxsearch_with_several_targets_writes_a_folder_each_and_the_curve(tiny_table, bounds,  # noqa: F811
                                                                          tmp_path):
    lo, hi = bounds
    r = forked("--latency-table", tiny_table, "--target-latency", "30%", "70%", *FAST,
                 "--retrain-epochs", "1", "--no-export", "-o", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    targets = [lo + 0.3 * (hi - lo), lo + 0.7 * (hi - lo)]
    rows = list(csv.DictReader((tmp_path / "out" / "pareto.csv").open()))
    assert [float(row["target_ms"]) for row in rows] == [pytest.approx(t, rel=1e-5) for t in targets]
    for row in rows:
        arch = json.loads((tmp_path / "out" / row["folder"] / "arch.json").read_text())
        assert float(row["accuracy"]) == pytest.approx(arch["test_accuracy"], abs=1e-6)
    assert r.stdout.count("predicted latency") == 2 and "pareto.png" in r.stdout


@pytest.mark.parametrize("second, message", [
    ("50%", "are the same"),
    ("101%", "outside the achievable range"),
])
def test_equal_targets_or_one_out_of_range_are_refused(tiny_table, tmp_path, second, message):  # noqa: F811
    line = _bad(tmp_path, "--latency-table", tiny_table, "--target-latency", "50%", second)
    assert message in line
