"""The reference block (timed before every sample, so that measurements taken at different device
speeds are put on one), the quantile a latency is taken at, and validation against the device's
own test-retest error."""

import json
import math
import signal
import statistics
import subprocess
import time

import pytest
import yaml

from profiler.devices.measure import Timed
from profiler.tables.fingerprint import Reference
from profiler.tables.speed import Rounds, fit_speed
from profiler.tables.table import LatencyTable

from conftest import BIN, QUICK_DEVICE, SMALL_SPACE, assert_bad_input

REFERENCE = "expanded_conv-input:8x8x8-output:8x8x8-expand:3-kernel:3-stride:1-idskip:1"


def device(tmp_path, **settings):
    path = tmp_path / "ref.yaml"
    path.write_text(yaml.safe_dump({**QUICK_DEVICE, "reference": REFERENCE, **settings}))
    return path


def test_each_sample_follows_one_of_the_reference(run, tmp_path, small_space):
    proc = run("pxprof", "measure", "--device", device(tmp_path, retries=0), "--space",
               small_space, "-o", "t.csv")
    assert proc.returncode == 0, proc.stderr
    raw = json.loads((tmp_path / "t.samples.json").read_text())
    assert raw["version"] == 2 and raw["method"]["reference"] == REFERENCE
    per_round = []  # the reference's median in each round of each block
    for block in raw["blocks"].values():
        for attempt in block["attempts"]:
            assert [len(r) for r in attempt["ref"]] == [len(r) for r in attempt["rounds"]]
            per_round += [statistics.median(r) for r in attempt["ref"]]
    table = LatencyTable.load(tmp_path / "t.csv")
    # The reference's typical latency over the run: its median per round (less the rounds that
    # other work slowed from end to end, profiler/tables/speed.py).
    typical = math.exp(statistics.median(map(math.log, per_round)))
    assert table.reference[0] == REFERENCE
    assert table.reference[1] == pytest.approx(typical, rel=0.1)
    # A row is at the run's typical device speed (profiler/tables/speed.py), as networks measured
    # later are put on it (Timed.at): its level and the run's elasticity, at the reference's
    # median per round over the run.
    attempts = {k: b["attempts"][0] for k, b in raw["blocks"].items()}
    speed = fit_speed(Rounds(
        {k: ([statistics.median(r) for r in a["rounds"]], [statistics.median(r) for r in a["ref"]])
         for k, a in attempts.items()},
        {k: tuple(statistics.median(t for r in a[part] for t in r) for part in ("rounds", "ref"))
         for k, a in attempts.items()}))
    assert table.reference[1] == pytest.approx(speed.reference_ms, rel=1e-4)
    if speed.weight:  # the elasticity networks measured later take as their prior
        assert table.reference.elasticity == pytest.approx(speed.beta, rel=1e-4)
        assert table.reference.weight == pytest.approx(speed.weight, rel=1e-4)
    for key, row in table.df.set_index("key").iterrows():
        assert row["latency_ms"] == pytest.approx(speed.at(key, speed.reference_ms), rel=1e-4)


def test_a_latency_is_the_profiles_quantile_of_its_samples(run, cli, tmp_path, small_space):
    low = tmp_path / "low.yaml"
    low.write_text(yaml.safe_dump({**QUICK_DEVICE, "runs_per_round": 5, "quantile": 0.1}))
    assert run("pxprof", "measure", "--device", low, "--space", small_space,
               "-o", "t.csv").returncode == 0
    raw = json.loads((tmp_path / "t.samples.json").read_text())
    assert raw["method"]["quantile"] == 0.1
    table = LatencyTable.load(tmp_path / "t.csv").df.set_index("key")
    for key, block in raw["blocks"].items():
        # 10 samples: the 0.1-quantile lies a tenth of the way from the lowest to the next.
        quantiles = []
        for attempt in block["attempts"]:
            times = sorted(t for r in attempt["rounds"] for t in r)
            quantiles.append(pytest.approx(times[0] + 0.9 * (times[1] - times[0]), rel=1e-4))
        assert table.at[key, "latency_ms"] in quantiles
        assert table.at[key, "min_ms"] <= table.at[key, "latency_ms"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**QUICK_DEVICE, "quantile": 0.9}))
    assert_bad_input(cli("pxprof", "measure", "--device", bad, "--space", small_space,
                         "-o", "u.csv"), "quantile", "at most 0.5")


def test_timed_models_are_put_on_a_table_speed():
    # A run whose reference never moved (1 ms in both rounds): it says nothing of the elasticity.
    still = Rounds({"net": ([1.5, 1.5], [1.0, 1.0])}, {"net": (1.5, 1.0)})
    timed = Timed({"net": 2.0}, still, REFERENCE)
    # Without a table's elasticity, in proportion: 1.5 references, at 4 ms each.
    assert timed.at(Reference(REFERENCE, 4.0)) == {"net": pytest.approx(6.0)}
    # With the table's (2, known from a moving reference): 1.5 ms at 1 ms, 4**2 more at 4 ms.
    assert timed.at(Reference(REFERENCE, 4.0, 2.0, 1.0)) == {"net": pytest.approx(24.0)}
    # A run whose reference moved weighs its own elasticity (1 here) against the table's.
    moved = Rounds({"net": ([1.0, 1.5], [1.0, 1.5])}, {"net": (1.0, 1.0)})
    own = math.log(1.5) ** 2 / 2  # its squared log-deviations
    beta = (own * 1.0 + own * 2.0) / (2 * own)  # a table that knew as much: halfway
    assert Timed({"net": 1.2}, moved, REFERENCE).at(Reference(REFERENCE, 4.0, 2.0, own)) == \
        {"net": pytest.approx(1.5 ** ((1 - beta) / 2) * 4 ** beta, rel=1e-6)}
    assert timed.at(Reference("Conv-input:8x8x3-output:4x4x8", 4.0)) == {"net": 2.0}  # another block
    assert timed.at(None) == {"net": 2.0}
    assert Timed({"net": 2.0}, Rounds({}, {}), "").at(Reference(REFERENCE, 4.0)) == {"net": 2.0}


def test_a_long_models_reference_samples_last_as_long_as_its_own(tmp_path):
    # A loaded device shares its CPU with a long model in every sample; a short reference sample
    # would find the moments it is free. A network here takes several times the reference block.
    from profiler.devices.check import measure_networks, random_architectures
    from profiler.devices.profile import get_device
    from profiler.space.spaces import space_from_dict

    space = space_from_dict(SMALL_SPACE, "small")
    profile = get_device(str(device(tmp_path, runtime="torch", min_sample_ms=0.05)))
    measure_networks(profile, space, random_architectures(space, 2, 0), 0,
                     checkpoint=tmp_path / "n.json")
    for block in json.loads((tmp_path / "n.json").read_text())["blocks"].values():
        a = block["attempts"][-1]
        # Sized from the warm-up's typical calls; the fastest samples, the least disturbed, say
        # how long each took (without matching, one call of the reference: a third of the network).
        own = a["inner"] * min(t for r in a["rounds"] for t in r)
        ref = a["ref_inner"] * min(t for r in a["ref"] for t in r)
        assert a["ref_inner"] > 1 and 1 / 3 < ref / own < 3, (a["inner"], a["ref_inner"], own, ref)


def test_a_reference_that_is_no_block_is_refused(cli, tmp_path, small_space):
    bad = device(tmp_path, reference="Conv-input:oops")
    assert_bad_input(cli("pxprof", "measure", "--device", bad, "--space", small_space,
                         "-o", "t.csv"), "reference", "unparseable block key")
    assert not (tmp_path / "t.csv").exists() and not (tmp_path / "t.samples.json").exists()


@pytest.mark.slow
def test_validation_reads_against_the_floor_and_resumes(run, cli, env, tmp_path, small_space):
    quick = device(tmp_path, runtime="torch")  # TorchScript networks export in a blink
    assert run("pxprof", "measure", "--device", quick, "--space", small_space,
               "-o", "t.csv").returncode == 0
    assert cli("pxprof", "fit-predictor", "--table", "t.csv", "--folds", "loo",
               "-o", "p.json").returncode == 0
    slow = device(tmp_path, runtime="torch", rounds=40)  # long enough to be interrupted
    cmd = [str(BIN / "pxprof"), "validate", "--device", str(slow), "--predictor", "p.json",
           "--table", "t.csv", "--networks", "2", "--space", str(small_space), "-o", "report"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    samples = tmp_path / "report" / "networks.samples.json"
    deadline = time.time() + 300
    while not samples.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "--resume" in err, err
    kept = json.loads(samples.read_text())["blocks"]
    assert kept and not (tmp_path / "report" / "report.csv").exists()
    assert_bad_input(cli("pxprof", *cmd[1:]), "--resume")
    done = subprocess.run(cmd + ["--resume"], cwd=tmp_path, env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[2].startswith("test–retest")
    final = json.loads(samples.read_text())["blocks"]
    # What was measured before the interruption is kept, not measured again.
    for name, block in kept.items():
        if len(block["attempts"][0]["rounds"]) == 40:
            assert final[name]["attempts"] == block["attempts"]
    assert sorted(final) == ["net0", "net0#2", "net1", "net1#2"]
