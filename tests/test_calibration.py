"""Calibration from block sums to whole networks, the latency-source protocol, and the commands
that predict, export and validate whole networks."""

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
import yaml

from predictors import LatencyRegressor, Predictor, fit_table
from predictors.calibration import _fit, fit_calibration, predict
from profiler.errors import UserError
from profiler.space.spaces import get_space, space_from_dict
from profiler.tables.latency import Calibration, Filled
from profiler.tables.table import LatencyTable
from search.latency import ExpectedLatency

from conftest import QUICK_DEVICE, SMALL_SPACE, assert_bad_input

sys.path.insert(0, str(Path(__file__).parent))
from test_predictors import law_table  # noqa: E402


def networks(rng, n=12):
    sums = rng.uniform(1.0, 5.0, n)
    blocks = rng.integers(10, 25, n).astype(float)
    return sums, blocks


def test_fit_calibration_finds_the_form_and_its_parameters():
    rng = np.random.default_rng(0)
    sums, blocks = networks(rng)
    truth = 0.8 * (sums - (blocks - 1) * 0.02)
    form, cal, cv, _ = fit_calibration(sums, blocks, truth)
    assert form == "per-call+scale" and cv[form] < 1e-9
    assert cal.scale == pytest.approx(0.8) and cal.per_call_ms == pytest.approx(0.02)
    # Networks that are their block sums: the simplest form wins the tie.
    form, cal, _, _ = fit_calibration(sums, blocks, sums * (1 + rng.normal(0, 1e-6, len(sums))))
    assert form == "sum" and cal == Calibration()
    # The per-call cost is never negative, whatever the networks say.
    form, cal, _, _ = fit_calibration(sums, blocks, sums + (blocks - 1) * 0.05)
    assert cal.per_call_ms >= 0
    with pytest.raises(Exception, match="scale > 0"):
        Calibration(scale=-1.0)


def test_networks_that_other_work_slowed_are_left_out_of_the_calibration():
    rng = np.random.default_rng(2)
    sums, blocks = networks(rng, 10)
    truth = sums - (blocks - 1) * 0.02
    measured = truth * rng.normal(1, 0.01, len(sums))
    measured[[6, 7]] *= 1.2  # two consecutive networks measured while other work ran
    form, cal, cv, left_out = fit_calibration(sums, blocks, measured)
    assert left_out == [6, 7] and form == "per-call"
    assert cal.per_call_ms == pytest.approx(0.02, rel=0.2)
    assert np.abs(predict(cal, sums, blocks) / truth - 1).max() < 0.04
    # Without leaving them out, least squares follow them: every fresh network is mispriced.
    kept = _fit("per-call+scale", sums, blocks, measured)
    assert np.abs(predict(kept, sums, blocks) / truth - 1).mean() > 0.04
    # Too many to tell which are disturbed: none is left out.
    measured[[1, 2, 3, 4]] *= 1.2
    assert fit_calibration(sums, blocks, measured)[3] == []


def test_intercept_is_never_negative():
    rng = np.random.default_rng(1)
    X = rng.uniform(0, 1, (40, 3))
    y = X @ np.array([1.0, 2.0, 0.5]) - 0.3  # an unconstrained fit's intercept is -0.3
    reg = LatencyRegressor(relative=False).fit(X, y)
    assert reg.intercept_ >= 0 and np.all(reg.coef_ >= 0)


def test_calibrated_expected_latency_is_the_network_latency(tmp_path):
    space = get_space("tiny")
    pred = fit_table(law_table(space, tmp_path / "t.csv"))
    cal = replace(pred, calibration=Calibration(scale=0.7, per_call_ms=0.004))
    latency = ExpectedLatency(space, cal)
    for seed in range(5):
        rng = np.random.default_rng(seed)
        choices = [layer.ops[rng.integers(len(layer.ops))] for layer in space.layers()]
        specs = space.network(choices)
        real = [s for s in specs if s.kind != "zero"]
        by_hand = 0.7 * (pred.block_latencies(real).sum() - (len(real) - 1) * 0.004)
        assert cal.architecture_latency(space, choices) == pytest.approx(by_hand, rel=1e-9)
        assert latency.latency(choices) == pytest.approx(by_hand, rel=1e-9)
    # Still linear in the probabilities: E[LAT] of uniform probabilities is the mean of the
    # one-hot latencies, layer by layer.
    probs = [torch.full((len(layer.ops),), 1 / len(layer.ops), dtype=torch.float64)
             for layer in space.layers()]
    mean = latency.fixed_ms + sum(float(latency.matrix[i, :len(layer.ops)].mean())
                                  for i, layer in enumerate(space.layers()))
    assert float(latency(probs)) == pytest.approx(mean, rel=1e-9)


def test_predictor_files(tmp_path, cli):
    space = get_space("tiny")
    pred = fit_table(law_table(space, tmp_path / "t.csv"))
    info = {"form": "per-call+scale", "cv_mape": {"sum": 0.3}, "networks": []}
    cal = replace(pred, calibration=Calibration(0.9, 0.01), calibration_info=info)
    cal.save(tmp_path / "p.json")
    again = Predictor.load(tmp_path / "p.json")
    assert again.calibration == cal.calibration and again.calibration_info["form"] == info["form"]
    data = json.loads((tmp_path / "p.json").read_text())
    # A change after writing breaks the checksum; without one, the edit is taken as meant.
    (tmp_path / "bad.json").write_text(json.dumps(data | {"intercept_ms": 0.5}))
    with pytest.raises(UserError, match="checksum"):
        Predictor.load(tmp_path / "bad.json")
    data.pop("sha256")
    (tmp_path / "edited.json").write_text(json.dumps(data | {"intercept_ms": 0.5}))
    assert Predictor.load(tmp_path / "edited.json").intercept_ms == 0.5
    # Version 1 files (no calibration) are still read.
    v1 = {k: v for k, v in data.items() if k != "calibration"} | {"version": 1}
    (tmp_path / "v1.json").write_text(json.dumps(v1))
    assert Predictor.load(tmp_path / "v1.json").calibration is None
    for bad, fragment in [(data | {"version": 99}, "versions 1, 2"),
                          (data | {"intercept_ms": -0.1}, "non-negative"),
                          (data | {"intercept_ms": "0.1"}, "expected a number"),
                          (data | {"calibration": {"scale": 0, "per_call_ms": 0}}, "scale > 0"),
                          (data | {"measured": {"Conv-input:a": 1.0}}, "Conv-input:a"),
                          (data | {"measured": {space.blocks()[0].key: 0.0}}, "not a latency"),
                          (data | {"coef": data["coef"] | {"mb_weights": float("nan")}}, "finite")]:
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        with pytest.raises(UserError, match=fragment):
            Predictor.load(tmp_path / "bad.json")
    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps({"space": "tiny", "choices": [l.ops[0] for l in space.layers()]}))
    assert_bad_input(cli("pxprof", "predict", "--predictor", "bad.json", "--arch", arch), "finite")


@pytest.mark.slow
def test_predict_export_validate(run, cli, tmp_path, small_space):
    # TorchScript: whole networks export in a fraction of a second (ONNX takes seconds each).
    quick_device = tmp_path / "quick-torch.yaml"
    quick_device.write_text(yaml.safe_dump({**QUICK_DEVICE, "runtime": "torch"}))
    space = space_from_dict(SMALL_SPACE, "small")
    measured = run("pxprof", "measure", "--device", quick_device, "--space", small_space,
                   "-o", "t.csv")
    assert measured.returncode == 0, measured.stderr
    # Blocks around the space (other widths and resolutions), measured like any block.
    sampled = cli("pxprof", "measure", "--device", quick_device, "--space", small_space,
                  "--sample", "4", "-o", "s.csv")
    assert sampled.returncode == 0, sampled.stderr
    around = LatencyTable.load(tmp_path / "s.csv")
    assert len(around) == 4 and not set(around.keys) & {b.key for b in space.blocks()}
    assert around.space == "small"
    fitted = run("pxprof", "fit-predictor", "--table", "t.csv", "--table", "s.csv",
                 "--folds", "loo", "-o", "p.json",
                 "--calibrate-on", quick_device, "--networks", "3", "--space", small_space,
                 "--cv-predictions", "cv.csv")
    assert fitted.returncode == 0, fitted.stderr
    assert "calibration on 3 networks" in fitted.stdout and "leave-one-out" in fitted.stdout
    pred = Predictor.load(tmp_path / "p.json")
    assert pred.calibration is not None and len(pred.calibration_info["networks"]) == 3
    import pandas as pd
    cv = pd.read_csv(tmp_path / "cv.csv")
    assert len(cv) == len(space.blocks()) + 4 and set(cv.columns) == {"key", "model", "latency_ms",
                                                                   "cv_predicted_ms", "ape"}

    choices = [layer.ops[-1] for layer in space.layers()]
    (tmp_path / "arch.json").write_text(json.dumps({"space": str(small_space), "choices": choices}))
    predicted = cli("pxprof", "predict", "--predictor", "p.json", "--arch", "arch.json")
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.strip().endswith("ms (calibrated)")
    assert float(predicted.stdout.split()[0]) == pytest.approx(
        pred.architecture_latency(space, choices), rel=1e-3)

    exported = cli("pxprof", "export", "--arch", "arch.json", "-o", "net.onnx")
    assert exported.returncode == 0, exported.stderr
    session = onnxruntime.InferenceSession(str(tmp_path / "net.onnx"))
    out = session.run(None, {session.get_inputs()[0].name:
                             np.zeros((1, 3, 16, 16), dtype=np.float32)})
    assert out[0].shape == (1, 10)
    assert_bad_input(cli("pxprof", "export", "--arch", "arch.json", "-o", "net.xyz"), "suffix")

    validated = run("pxprof", "validate", "--device", quick_device, "--predictor", "p.json",
                    "--table", "t.csv", "--networks", "3", "--space", small_space, "-o", "report")
    assert validated.returncode == 0, validated.stderr
    rows = validated.stdout.splitlines()
    # The device's own noise comes first: every method is read against it.
    assert rows[2].startswith("test–retest")
    assert all(m in validated.stdout for m in ("table sum", "predictor", "FLOPs baseline"))
    report = pd.read_csv(tmp_path / "report" / "report.csv")
    # The table is the predictor's own: it prices its blocks as measured, so the table through
    # its calibration is the predictor, and is not shown twice.
    assert "table calibrated" not in validated.stdout
    assert list(report.columns) == ["arch", "measured_ms", "measured_1_ms", "measured_2_ms",
                                    "retest", "table_ms", "predictor_ms", "flops_ms"]
    both_files = Filled(LatencyTable.load(tmp_path / "t.csv"), pred)
    assert np.allclose(report["predictor_ms"], [both_files.architecture_latency(space, a.split())
                                                for a in report["arch"]], rtol=1e-5)
    assert len(report) == 3 and (report["measured_ms"] > 0).all()
    both = report[["measured_1_ms", "measured_2_ms"]]
    assert np.allclose(report["measured_ms"], both.mean(axis=1), rtol=1e-4)
    assert np.allclose(report["retest"], (both.max(axis=1) - both.min(axis=1)) /
                       report["measured_ms"], rtol=1e-3)
    calibrated_on = {" ".join(n["choices"]) for n in pred.calibration_info["networks"]}
    assert not set(report["arch"]) & calibrated_on  # fresh networks only
    assert (tmp_path / "report" / "scatter.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert_bad_input(cli("pxprof", "validate", "--device", quick_device, "--predictor", "p.json",
                         "--networks", "3", "--space", small_space, "-o", "report"),
                     "report exists")

    # A table of another device than the predictor's is refused.
    other = pd.read_csv(tmp_path / "t.csv")
    other["threads"] = 2
    other.to_csv(tmp_path / "u.csv", index=False)
    assert_bad_input(cli("pxprof", "predict", "--predictor", "p.json", "--table", "u.csv",
                         "--arch", "arch.json"), "different devices")


def test_spaces_json(run):
    proc = run("pxprof", "spaces", "--json")
    data = json.loads(proc.stdout)
    tiny = get_space("tiny")
    assert data["tiny"] == {"resolution": 32, "layers": [layer.ops for layer in tiny.layers()]}
    assert len(data["proxyless-mobile"]["layers"]) == 21
