"""The registry of regressors: each a scikit-learn estimator whose fitted state is plain JSON, and
the choice among them per block kind by cross-validation."""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.utils.estimator_checks import parametrize_with_checks

from predictors import REGISTRY, Predictor, fit_table
from predictors.features import FEATURES
from predictors.regressors import BoostedTrees, RandomForest
from profiler.errors import UserError
from profiler.space.spaces import get_space
from profiler.tables.table import LatencyTable, shape_row

from conftest import assert_bad_input

sys.path.insert(0, str(Path(__file__).parent))
from search_fixtures import FINGERPRINT  # noqa: E402
from test_predictors import law_ms  # noqa: E402


@parametrize_with_checks([BoostedTrees(n_estimators=10), RandomForest(n_estimators=5)])
def test_sklearn_conventions(estimator, check):
    check(estimator)


@pytest.mark.parametrize("ours, theirs", [
    (BoostedTrees(n_estimators=30), GradientBoostingRegressor(n_estimators=30, random_state=0)),
    (RandomForest(n_estimators=8), RandomForestRegressor(n_estimators=8, min_samples_leaf=3,
                                                         random_state=0))])
def test_trees_predict_as_scikit_learn_and_survive_json(ours, theirs):
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 3, (120, len(FEATURES)))
    y = 0.1 + X[:, 0] ** 2 + np.where(X[:, 1] > 1.5, 2.0, 0.0)
    ours.fit(X, y)
    theirs.fit(X, y, sample_weight=1 / y ** 2)
    X_new = rng.uniform(-1, 4, (50, len(FEATURES)))
    np.testing.assert_allclose(ours.predict(X_new), theirs.predict(X_new), rtol=1e-12)
    again = type(ours).from_json(json.loads(json.dumps(ours.to_json())))
    np.testing.assert_array_equal(again.predict(X_new), ours.predict(X_new))


def table_with(space, path, law):
    rows = [{"key": s.key, **shape_row(s), "latency_ms": law(s), "samples": 10}
            for s in space.blocks()]
    LatencyTable.from_rows(rows, space.name, FINGERPRINT).save(path)
    return path


def stepped_ms(spec):
    # A runtime that switches kernels on wide layers: a step no linear model in the features
    # follows, which trees do.
    return law_ms(spec) * (3.0 if spec.kind == "mbconv" and spec.in_c * spec.expand > 60 else 1.0)


@pytest.mark.slow
def test_each_kind_gets_the_model_cross_validation_prefers(tmp_path, run):
    space = get_space("tiny")
    linear = fit_table(table_with(space, tmp_path / "law.csv", law_ms))
    assert linear.by_kind == {} and linear.cv["kinds"]["mbconv"]["model"] == "positive-linear"

    table_with(space, tmp_path / "step.csv", stepped_ms)
    proc = run("pxprof", "fit-predictor", "--table", "step.csv", "-o", "p.json",
               "--cv-predictions", "cv.csv")
    assert proc.returncode == 0, proc.stderr
    stepped = Predictor.load(tmp_path / "p.json")
    mbconv = stepped.cv["kinds"]["mbconv"]
    assert set(mbconv["mape"]) == set(REGISTRY) and mbconv["model"] != "positive-linear"
    assert mbconv["mape"][mbconv["model"]] < mbconv["mape"]["positive-linear"] - 0.005
    # Too few stems and heads to try trees on them: the shared linear model prices them.
    assert list(stepped.cv["kinds"]["conv"]["mape"]) == ["positive-linear"]
    assert set(stepped.by_kind) == {"mbconv"}
    assert f"-> {mbconv['model']}" in proc.stdout and "too few blocks" in proc.stdout
    cv = pd.read_csv(tmp_path / "cv.csv")
    assert set(cv["model"]) == {"positive-linear", mbconv["model"]}
    assert json.loads((tmp_path / "p.json").read_text())["version"] == 4
    # What was fitted is what was saved: the file regresses as a fresh fit does, and prices the
    # blocks of its table as they were measured.
    specs = space.blocks()
    np.testing.assert_allclose(stepped.regressed(specs),
                               fit_table(tmp_path / "step.csv").regressed(specs), rtol=1e-12)
    np.testing.assert_allclose(stepped.block_latencies(specs),
                               LatencyTable.load(tmp_path / "step.csv").block_latencies(specs))

    # One model asked for: used where a kind has blocks enough, the linear one elsewhere.
    forest = fit_table(tmp_path / "step.csv", models=["random-forest"])
    assert forest.by_kind["mbconv"].name == "random-forest"
    assert_bad_input(run("pxprof", "fit-predictor", "--table", "step.csv", "-o", "x.json",
                         "--model", "svm"), "unknown model 'svm'")
    assert not (tmp_path / "x.json").exists()


def test_hand_edited_models_are_refused(tmp_path):
    space = get_space("tiny")
    fit_table(table_with(space, tmp_path / "t.csv", stepped_ms)).save(tmp_path / "p.json")
    data = json.loads((tmp_path / "p.json").read_text())
    data.pop("sha256")
    model = data["by_kind"]["mbconv"]
    tree = model["trees"][0]
    cyclic = {**tree, "left": [0] * len(tree["left"])}
    for by_kind, fragment in [({"mbconv": {**model, "model": "svm"}}, "model must be one of"),
                              ({"dense": model}, "unknown block kind"),
                              ({"mbconv": {**model, "trees": [cyclic]}}, "later nodes"),
                              ({"mbconv": {**model, "trees": [{**tree, "value": ["1"]}]}},
                               "different lengths|not a number"),
                              ({"mbconv": {**model, "scale": -1.0}}, "non-negative")]:
        (tmp_path / "bad.json").write_text(json.dumps(data | {"by_kind": by_kind}))
        with pytest.raises(UserError, match=fragment):
            Predictor.load(tmp_path / "bad.json")
