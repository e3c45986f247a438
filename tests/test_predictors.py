"""Predictors: a scikit-learn estimator, fitted from tables, saved as JSON, checked on networks."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from predictors import LatencyRegressor, Predictor, fit_table
from predictors.features import FEATURES, block_features
from profiler.space.blockspec import parse_key
from profiler.space.spaces import get_space
from profiler.tables.latency import Filled
from profiler.tables.table import LatencyTable, shape_row
from search.latency import ExpectedLatency

from conftest import assert_bad_input

sys.path.insert(0, str(Path(__file__).parent))
from search_fixtures import FINGERPRINT  # noqa: E402

# A device whose latency follows a known law in the features: the fit must find it.
LAW = dict(zip(FEATURES, [0.02, 0.03, 0.01, 0.015, 0.05, 0.004, 0.002]))
OVERHEAD = 0.005


def law_ms(spec):
    return OVERHEAD + sum(LAW[k] * v for k, v in block_features(spec).items())


def law_table(space, path, drop=()):
    rows = [{"key": s.key, **shape_row(s), "latency_ms": law_ms(s), "samples": 10}
            for s in space.blocks() if s.key not in drop]
    LatencyTable.from_rows(rows, space.name, FINGERPRINT).save(path)
    return path


@parametrize_with_checks([LatencyRegressor(), LatencyRegressor(relative=False)])
def test_sklearn_conventions(estimator, check):
    check(estimator)


def test_features_by_hand():
    f = block_features(parse_key(
        "expanded_conv-input:56x56x24-output:28x28x40-expand:6-kernel:5-stride:2-idskip:0"))
    mid = 24 * 6
    assert f["mmacs_pointwise"] == pytest.approx((56 * 56 * 24 * mid + 28 * 28 * mid * 40) / 1e6)
    assert f["mmacs_dw5"] == pytest.approx(28 * 28 * mid * 25 / 1e6)
    assert f["mmacs_dw3"] == f["mmacs_dw7"] == f["mmacs_dense"] == 0
    assert f["mb_weights"] == pytest.approx((24 * mid + mid * 25 + mid * 40) * 4 / 1e6)


def test_fit_recovers_a_known_law(tmp_path):
    space = get_space("proxyless-mobile")
    pred = fit_table(law_table(space, tmp_path / "t.csv"))
    # Held-out blocks are predicted exactly, except where a fold holds the only block with some
    # feature (the stem is the one dense conv), which cross-validation rightly reports.
    assert pred.cv["median_ape"] < 1e-6 and pred.cv["max_ape"] > 0.1
    assert pred.intercept_ms == pytest.approx(OVERHEAD, rel=1e-4)
    for name, weight in LAW.items():
        assert pred.coef[name] == pytest.approx(weight, rel=1e-3)
    assert pred.space == "proxyless-mobile" and pred.fingerprint["device"] == "synthetic"
    pred.save(tmp_path / "p.json")
    again = Predictor.load(tmp_path / "p.json")
    specs = space.blocks()
    np.testing.assert_allclose(again.block_latencies(specs), [law_ms(s) for s in specs], rtol=1e-5)


def test_predictor_fills_what_a_table_lacks(tmp_path):
    space = get_space("tiny")
    pred = fit_table(law_table(space, tmp_path / "full.csv"))
    dropped = [s.key for s in space.blocks()[5:9]]
    partial = LatencyTable.load(law_table(space, tmp_path / "part.csv", drop=dropped))
    full = ExpectedLatency(space, LatencyTable.load(tmp_path / "full.csv"))
    filled = ExpectedLatency(space, Filled(partial, pred))
    choices = [layer.ops[0] for layer in space.layers()]
    assert filled.latency(choices) == pytest.approx(full.latency(choices), rel=1e-6)


@pytest.mark.slow
def test_cli_fit_check_and_search_with_a_predictor(cli, tmp_path, small_space, quick_device):
    space = get_space("tiny")
    law_table(space, tmp_path / "t.csv")
    # fit-predictor, check and pxsearch run whole as installed scripts in test_regressors,
    # test_netconfig and test_search_cli; here, forked, they make and search with a predictor.
    proc = cli("pxprof", "fit-predictor", "--table", "t.csv", "-o", "p.json")
    assert proc.returncode == 0, proc.stderr
    assert "cross-validated error" in proc.stdout
    saved = json.loads((tmp_path / "p.json").read_text())
    assert saved["format"] == "pxnas-predictor" and len(saved["table_sha256"]) == 64

    # Whole networks measured for real beside the predictor's sums (TorchScript: whole networks
    # export in a fraction of a second, ONNX takes seconds each).
    checked = cli("pxprof", "check", "--device", quick_device, "--runtime", "torch",
                  "--predictor", "p.json",
                  "--space", small_space, "--networks", "2")
    assert checked.returncode == 0, checked.stderr
    lines = checked.stdout.splitlines()
    assert [line.startswith("arch ") and " measured " in line for line in lines].count(True) == 2
    assert lines[-1].startswith("predictor / measured: mean")

    out = tmp_path / "search"
    searched = cli("pxsearch", "--predictor", "p.json", "--target-latency", "50%",
                   "--warmup-epochs", "0", "--epochs", "1", "--batch-size", "64",
                   "--train-subset", "256", "--retrain-epochs", "0", "--no-export", "--quiet",
                   "-o", out)
    assert searched.returncode == 0, searched.stderr
    assert json.loads((out / "arch.json").read_text())["space"] == "tiny"


def test_bad_predictor_input(cli, tmp_path):
    (tmp_path / "p.json").write_text('{"format": "pxnas-predictor", "version": 1, '
                                     '"model": "positive-linear", "coef": {}}')
    assert_bad_input(cli("pxprof", "check", "--device", "cpu", "--predictor", "p.json"),
                     "malformed predictor")
    (tmp_path / "x.json").write_text("[1, 2]")
    assert_bad_input(cli("pxsearch", "--predictor", "x.json", "--target-latency", "1", "-o", "o"),
                     "not a pxnas predictor")
    assert not (tmp_path / "o").exists()
    space = get_space("tiny")
    rows = [{"key": s.key, **shape_row(s), "latency_ms": 1.0} for s in space.blocks()[:3]]
    LatencyTable.from_rows(rows, "tiny", FINGERPRINT).save(tmp_path / "few.csv")
    assert_bad_input(cli("pxprof", "fit-predictor", "--table", "few.csv", "-o", "fitted.json"),
                     "too few")
