"""Latency tables: schema round-trip, validation, merging, LUT import, predict."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml

from profiler.errors import UserError
from profiler.space.spaces import get_space, space_from_dict
from profiler.tables.measurement import Measurement
from profiler.tables.speed import Rounds, fit_speed
from profiler.tables.table import COLUMNS, LatencyTable, measurement_row

from conftest import SMALL_SPACE, assert_bad_input

FP = {"device": "cpu", "transport": "local", "runtime": "onnxruntime", "runtime_version": "1.0",
      "threads": 1, "batch": 1, "host": "h", "host_cpu": "c", "cpu_affinity": "0",
      "governor": "", "temperature_c": None, "measured_at": "2026-01-01T00:00:00+00:00",
      "pxnas_version": "0.1.0"}


def make_table(space, latency=lambda i: 0.5 + i, fp=FP):
    rows = []
    for i, spec in enumerate(space.blocks()):
        m = Measurement(spec.key, (latency(i), latency(i) * 1.1, latency(i) * 0.9), warmup=10, inner=2)
        rows.append(measurement_row(m, max_spread=0.05))
    return LatencyTable.from_rows(rows, space.name, fp)


def test_measurement_statistics():
    times = (1.0, 2.0, 3.0, 4.0, 10.0)
    m = Measurement("k", times, warmup=3, inner=1)
    assert m.median == 3.0 and m.mean == 4.0 and m.min == 1.0
    assert m.iqr == pytest.approx(4.0 - 2.0)
    assert m.std == pytest.approx(pd.Series(times).std())
    assert m.spread == pytest.approx(2.0 / 3.0)
    with pytest.raises(UserError):
        Measurement("k", (1.0, -1.0), 1, 1)


def test_a_low_quantile_is_as_steady_as_its_rounds_agree():
    # A loaded CPU: most samples slowed at random, the undisturbed speed (1.0) in every round.
    rng = np.random.default_rng(0)
    rounds = [np.r_[1.0, 1.0 + rng.exponential(1.0, 19)] for _ in range(5)]
    steady = Measurement("k", tuple(np.concatenate(rounds)), 1, 1, 0.05, (20,) * 5)
    assert steady.latency == pytest.approx(1.0, rel=0.02)
    assert steady.iqr / steady.median > 0.5 and steady.spread < 0.02
    # Rounds that each found another undisturbed speed: the latency is not to be trusted.
    rounds = [r * speed for r, speed in zip(rounds, (1.0, 1.3, 1.15, 1.45, 1.2))]
    moved = Measurement("k", tuple(np.concatenate(rounds)), 1, 1, 0.05, (20,) * 5)
    assert moved.spread > 0.05
    # The median keeps IQR / median.
    assert Measurement("k", steady.times_ms, 1, 1, 0.5, (20,) * 5).spread == \
        pytest.approx(steady.iqr / steady.median)
    with pytest.raises(UserError, match="rounds"):
        Measurement("k", (1.0, 2.0), 1, 1, 0.05, (3,))



def _rounds(rng, models: dict[str, float], beta: float, fast: list[bool]) -> dict:
    """Each model's latency per round (and the reference's), on a device whose fast rounds run
    the reference 25 % faster and each model 0.75**beta as fast; 1 % noise on each."""
    ref = np.where(fast, 0.75, 1.0) * 0.4
    return {k: (ms * (ref / 0.4) ** beta * rng.normal(1, 0.01, len(ref)),
                ref * rng.normal(1, 0.01, len(ref))) for k, ms in models.items()}


def test_a_runs_speed_puts_its_models_on_one_reference_speed():
    rng = np.random.default_rng(0)
    models = {f"net{i}": 0.1 * (1 + i / 10) for i in range(20)}
    # Two passes over the same models: one found two fast rounds of five, the other none.
    first = _fit(_rounds(rng, models, 1.8, [False, True, False, True, False]))
    second = _fit(_rounds(rng, models, 1.8, [False] * 5))
    assert first.beta == pytest.approx(1.8, abs=0.15)
    for key, ms in models.items():  # both read at the slow rounds' speed: the models' own latency
        assert first.at(key, 0.4) == pytest.approx(ms, rel=0.03)
        assert second.at(key, 0.4) == pytest.approx(ms, rel=0.03)
    assert first.reference_ms == pytest.approx(0.4, rel=0.03)
    # The ratio to the reference, the obvious normalisation, moved with the fast rounds.
    ratio = {k: np.quantile(m, 0.05) / np.quantile(r, 0.05)
             for k, (m, r) in _rounds(rng, models, 1.8, [False, True, False, True, False]).items()}
    assert all(ratio[k] * 0.4 < 0.95 * ms for k, ms in models.items())
    # A reference that never moved says nothing of the slope: latency in proportion to it.
    still = _fit({"a": ([1.0, 1.0], [0.5, 0.5]), "b": ([2.0, 2.0], [0.5, 0.5])})
    assert still.beta == 1.0 and still.at("b", 1.0) == pytest.approx(4.0)
    assert _fit({}) is None


def _fit(rounds):
    """fit_speed, with each model's quantiles over all its samples taken as its lowest round's."""
    return fit_speed(Rounds(rounds, {k: (min(m), min(r)) for k, (m, r) in rounds.items()}))


def _loaded(seed: int, slowed_by: tuple[float, float], slowed_rounds: int) -> dict:
    """Ten models on a loaded device: in `slowed_rounds` of five, other work slowed a model by
    `slowed_by` from end to end while its reference, timed in other moments, ran as ever; in
    another round the reference was slowed 1.4x."""
    rng = np.random.default_rng(seed)
    rounds = {}
    for i in range(10):
        ref = 0.3 * rng.normal(1, 0.01, 5)
        model = 0.1 * (1 + i / 10) * rng.normal(1, 0.01, 5)
        slowed = rng.choice(5, slowed_rounds, replace=False)
        model[slowed] *= rng.uniform(*slowed_by, slowed_rounds)
        ref[rng.choice([r for r in range(5) if r not in slowed])] *= 1.4
        rounds[f"net{i}"] = (model, ref)
    return rounds


def test_rounds_that_other_work_slowed_are_left_out():
    speed = _fit(_loaded(2, (2.5, 4.0), 3))  # most rounds slowed: their median would be too
    for i in range(10):
        assert speed.at(f"net{i}", 0.3) == pytest.approx(0.1 * (1 + i / 10), rel=0.05)


def test_a_fit_that_no_device_can_have_is_read_in_proportion():
    # Rounds slowed too little to be left out, in other rounds than the reference's: the slope
    # comes out below any a device has, and the run is read from its lowest quantiles.
    speed = _fit(_loaded(3, (1.3, 1.7), 2))
    assert speed.beta == 1.0
    for i in range(10):
        assert speed.at(f"net{i}", 0.3) == pytest.approx(0.1 * (1 + i / 10), rel=0.05)


def test_schema_round_trip(tmp_path):
    table = make_table(get_space("tiny"))
    table.save(tmp_path / "t.csv")
    again = LatencyTable.load(tmp_path / "t.csv")
    assert list(again.df.columns) == COLUMNS
    assert again.keys == table.keys
    assert again.space == "tiny"
    for spec in get_space("tiny").blocks():
        assert again.latency(spec) == pytest.approx(table.latency(spec), rel=1e-5)
    assert again.fingerprint["runtime"] == "onnxruntime"


def test_validation(tmp_path):
    table = make_table(get_space("tiny"))
    path = tmp_path / "t.csv"
    table.df.drop(columns=["latency_ms", "host_cpu"]).to_csv(path, index=False)
    with pytest.raises(UserError, match="missing column.*latency_ms, host_cpu"):
        LatencyTable.load(path)
    df = table.df.copy()
    df.loc[3, "latency_ms"] = 0
    df.to_csv(path, index=False)
    with pytest.raises(UserError, match="positive"):
        LatencyTable.load(path)
    df = table.df.copy()
    df.loc[3, "in_c"] = 999
    df.to_csv(path, index=False)
    with pytest.raises(UserError, match="disagree"):
        LatencyTable.load(path)


def test_merge_refuses_other_fingerprints():
    space = space_from_dict(SMALL_SPACE, "t")
    a = make_table(space)
    b = make_table(space, latency=lambda i: 9.0 + i)
    merged = a.merge(b)
    assert len(merged) == len(a) and merged.df["latency_ms"].min() == 9.0
    for field, value in [("runtime", "tflite"), ("threads", 4), ("host_cpu", "other")]:
        with pytest.raises(UserError, match=f"different {field}"):
            a.merge(make_table(space, fp={**FP, field: value}))


def test_cli_merge(run, cli, tmp_path):
    space = space_from_dict(SMALL_SPACE, "t")
    make_table(space).save(tmp_path / "a.csv")
    make_table(space, latency=lambda i: 9.0 + i).save(tmp_path / "b.csv")
    make_table(space, fp={**FP, "runtime": "tflite"}).save(tmp_path / "c.csv")
    proc = run("pxprof", "merge", "a.csv", "b.csv", "-o", "m.csv")
    assert proc.returncode == 0, proc.stderr
    assert LatencyTable.load(tmp_path / "m.csv").df["latency_ms"].min() == 9.0
    assert_bad_input(cli("pxprof", "merge", "a.csv", "c.csv", "-o", "n.csv"),
                     "refusing to merge", "different runtime")
    assert not (tmp_path / "n.csv").exists()


def test_predict_is_the_hand_sum(run, tmp_path):
    space = get_space("tiny")
    table = make_table(space, latency=lambda i: 0.25 * (i + 1))
    table.save(tmp_path / "t.csv")
    lat = {spec.key: 0.25 * (i + 1) for i, spec in enumerate(space.blocks())}
    choices = ["k3_e3", "zero", "k7_e6", "k5_e3", "zero", "k3_e6", "k7_e3", "zero"]
    (tmp_path / "arch.json").write_text(json.dumps({"space": "tiny", "choices": choices}))
    # By hand: stem + first block (k3) + chosen blocks (zero costs nothing) + feature mix + logits.
    r, stem, first = 32, "Conv-input:32x32x3-output:16x16x16", \
        "expanded_conv-input:16x16x16-output:16x16x8-expand:1-kernel:3-stride:1-idskip:0"
    chosen = [
        "expanded_conv-input:16x16x8-output:8x8x16-expand:3-kernel:3-stride:2-idskip:0",
        "expanded_conv-input:8x8x16-output:8x8x16-expand:6-kernel:7-stride:1-idskip:1",
        "expanded_conv-input:8x8x16-output:4x4x24-expand:3-kernel:5-stride:2-idskip:0",
        "expanded_conv-input:4x4x24-output:4x4x24-expand:6-kernel:3-stride:1-idskip:1",
        "expanded_conv-input:4x4x24-output:4x4x32-expand:3-kernel:7-stride:1-idskip:0",
    ]
    head = ["Conv_1-input:4x4x32-output:4x4x128", "Logits-input:4x4x128-output:10"]
    expected = sum(lat[k] for k in [stem, first, *chosen, *head])
    proc = run("pxprof", "predict", "--table", "t.csv", "--arch", "arch.json")
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout.split()[0]) == pytest.approx(expected, abs=1e-4)
    assert r == space.resolution


def _lut(space, scale=1.0):
    return {spec.key: {"count": 20, "mean": scale * (1 + i), "var": 0.01}
            for i, spec in enumerate(space.blocks())}


def test_import_lut_in_the_published_format(run, tmp_path):
    tiny = get_space("tiny")
    (tmp_path / "pixel.yaml").write_text(yaml.safe_dump(_lut(tiny)))
    proc = run("pxprof", "import-lut", "pixel.yaml", "-o", "pixel.csv")
    assert proc.returncode == 0, proc.stderr
    assert "covers preset tiny" in proc.stdout
    table = LatencyTable.load(tmp_path / "pixel.csv")
    assert table.space == "tiny" and table.fingerprint["device"] == "pixel"
    first = tiny.blocks()[0]
    assert table.latency(first) == 1.0
    assert table.df["std_ms"].iloc[0] == pytest.approx(math.sqrt(0.01))
    shown = run("pxprof", "show", "pixel.csv")
    assert shown.returncode == 0 and "tiny 42/42" in shown.stdout


def test_import_once_for_all_lut_at_another_resolution_and_predict(run, tmp_path):
    keys = sorted(b.key for b in get_space("ofa-mbv3-w1.2@160").blocks())  # checked by hand elsewhere
    lat = {k: round(0.01 * (i + 1), 4) for i, k in enumerate(keys)}
    (tmp_path / "160_lookup_table.yaml").write_text(yaml.safe_dump(
        {k: {"count": 50, "mean": v, "std": 0.001} for k, v in lat.items()}))
    proc = run("pxprof", "import-lut", "160_lookup_table.yaml", "--device-name", "note10", "-o",
               "n.csv")
    assert proc.returncode == 0, proc.stderr
    table = LatencyTable.load(tmp_path / "n.csv")
    assert table.space == "ofa-mbv3-w1.2@160" and table.df["std_ms"].iloc[0] == pytest.approx(0.001)
    choices = ["k3_e3", "k5_e4", "zero", "zero", "k7_e6", "k3_e3", "k3_e3", "zero",
               "k5_e3", "k3_e4", "zero", "zero", "k3_e6", "k3_e3", "k7_e3", "k3_e3",
               "k5_e4", "k3_e3", "zero", "zero"]
    (tmp_path / "arch.json").write_text(json.dumps({"space": "ofa-mbv3-w1.2", "resolution": 160,
                                                    "choices": choices}))
    # By hand, from Once-for-All's definition (zero layers cost nothing).
    e = "expanded_conv-input:"
    by_hand = [
        "Conv-input:160x160x3-output:80x80x24",
        e + "80x80x24-output:80x80x24-expand:24-kernel:3-stride:1-idskip:1-se:0-hs:0",
        e + "80x80x24-output:40x40x32-expand:72-kernel:3-stride:2-idskip:0-se:0-hs:0",
        e + "40x40x32-output:40x40x32-expand:128-kernel:5-stride:1-idskip:1-se:0-hs:0",
        e + "40x40x32-output:20x20x48-expand:192-kernel:7-stride:2-idskip:0-se:1-hs:0",
        e + "20x20x48-output:20x20x48-expand:144-kernel:3-stride:1-idskip:1-se:1-hs:0",
        e + "20x20x48-output:20x20x48-expand:144-kernel:3-stride:1-idskip:1-se:1-hs:0",
        e + "20x20x48-output:10x10x96-expand:144-kernel:5-stride:2-idskip:0-se:0-hs:1",
        e + "10x10x96-output:10x10x96-expand:384-kernel:3-stride:1-idskip:1-se:0-hs:1",
        e + "10x10x96-output:10x10x136-expand:576-kernel:3-stride:1-idskip:0-se:1-hs:1",
        e + "10x10x136-output:10x10x136-expand:408-kernel:3-stride:1-idskip:1-se:1-hs:1",
        e + "10x10x136-output:10x10x136-expand:408-kernel:7-stride:1-idskip:1-se:1-hs:1",
        e + "10x10x136-output:10x10x136-expand:408-kernel:3-stride:1-idskip:1-se:1-hs:1",
        e + "10x10x136-output:5x5x192-expand:544-kernel:5-stride:2-idskip:0-se:1-hs:1",
        e + "5x5x192-output:5x5x192-expand:576-kernel:3-stride:1-idskip:1-se:1-hs:1",
        "Conv_1-input:5x5x192-output:5x5x1152", "AvgPool2D-input:5x5x1152-output:1x1x1152",
        "Conv_2-input:1x1x1152-output:1x1x1536", "Logits-input:1x1x1536-output:1000"]
    proc = run("pxprof", "predict", "--table", "n.csv", "--arch", "arch.json")
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout.split()[0]) == pytest.approx(sum(lat[k] for k in by_hand), abs=1e-4)


def test_bad_tables_and_luts(cli, tmp_path):
    tiny = get_space("tiny")
    cases = {
        "list.yaml": ("- 1\n- 2\n", "not a lookup table"),
        "nomean.yaml": (yaml.safe_dump({tiny.blocks()[0].key: {"count": 1}}), "missing field(s) mean"),
        "badkey.yaml": (yaml.safe_dump({"Conv-input:oops": {"mean": 1.0}}), "unparseable block key"),
        "zero.yaml": (yaml.safe_dump({tiny.blocks()[0].key: {"mean": 0.0}}), "mean: must be at least"),
    }
    for name, (text, fragment) in cases.items():
        (tmp_path / name).write_text(text)
        assert_bad_input(cli("pxprof", "import-lut", name, "-o", "out.csv"), fragment)
        assert not (tmp_path / "out.csv").exists()
    (tmp_path / "pixel.yaml").write_text(yaml.safe_dump(_lut(tiny)))
    assert_bad_input(cli("pxprof", "import-lut", "pixel.yaml", "-o", "no/such/dir/t.csv"),
                     "does not exist")

    table = make_table(tiny)
    table.df.drop(columns=["latency_ms"]).to_csv(tmp_path / "nolat.csv", index=False)
    assert_bad_input(cli("pxprof", "show", "nolat.csv"), "missing column", "latency_ms")
    df = table.df.copy()
    df.loc[0, "latency_ms"] = -1.0
    df.to_csv(tmp_path / "neg.csv", index=False)
    assert_bad_input(cli("pxprof", "show", "neg.csv"), "positive")
    assert_bad_input(cli("pxprof", "show", "missing.csv"), "no such latency table")

    table.save(tmp_path / "t.csv")
    (tmp_path / "arch.json").write_text(json.dumps({"space": "tiny", "choices": ["k3_e3"] * 7}))
    assert_bad_input(cli("pxprof", "predict", "--table", "t.csv", "--arch", "arch.json"),
                     "8 searchable layers")
    (tmp_path / "arch.json").write_text(json.dumps({"space": "tiny", "choices": ["zero"] * 8}))
    assert_bad_input(cli("pxprof", "predict", "--table", "t.csv", "--arch", "arch.json"),
                     "not a candidate")
    (tmp_path / "arch.json").write_text(json.dumps({"space": "proxyless-mobile",
                                                    "choices": ["k3_e3"] * 21}))
    assert_bad_input(cli("pxprof", "predict", "--table", "t.csv", "--arch", "arch.json"), "lacks")
