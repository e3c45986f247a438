"""A predictor adapted to a new device from another device's and a few measured blocks."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from predictors import Predictor, fit_table
from predictors.adapt import GROUPS, informative
from predictors.features import FEATURES, block_features
from predictors.model import adapt_table
from profiler.devices.check import random_architectures
from profiler.errors import UserError
from profiler.space.spaces import get_space
from profiler.tables.table import LatencyTable, shape_row

from conftest import assert_bad_input

sys.path.insert(0, str(Path(__file__).parent))
from search_fixtures import FINGERPRINT  # noqa: E402
from test_predictors import LAW, OVERHEAD, law_table  # noqa: E402

# The new device: the source's law with each operator at another speed (depthwise 7x7 five times
# slower, pointwise twice, the rest alike), as a phone differs from a desktop CPU.
SPEED = dict.fromkeys(FEATURES, 1.3) | {"mmacs_dw7": 5.0, "mmacs_pointwise": 2.0}


def target_ms(spec):
    return 1.3 * OVERHEAD + sum(SPEED[k] * LAW[k] * v for k, v in block_features(spec).items())


def few_table(space, path, keys):
    rows = [{"key": s.key, **shape_row(s), "latency_ms": target_ms(s), "samples": 10}
            for s in space.blocks() if s.key in keys]
    LatencyTable.from_rows(rows, space.name, FINGERPRINT | {"device": "phone"}).save(path)
    return path


def test_a_few_blocks_carry_the_source_to_the_new_device(tmp_path):
    space = get_space("tiny")
    prior = fit_table(law_table(space, tmp_path / "source.csv"))
    archs = random_architectures(space, 50, seed=1)
    nets = [[s for s in space.network(a) if s.profiled] for a in archs]
    truth = np.array([sum(map(target_ms, net)) for net in nets])
    error = lambda source: np.mean([abs(source.block_latencies(net).sum() / t - 1)  # noqa: E731
                                    for net, t in zip(nets, truth)])
    errors = {}
    for n in (5, 10):
        chosen = informative(prior, space, n)
        assert len({s.key for s in chosen}) == n
        adapted = adapt_table(prior, few_table(space, tmp_path / f"few{n}.csv",
                                               {s.key for s in chosen}))
        assert adapted.prior["sha256"] == prior.to_data()["sha256"]
        assert set(adapted.scales) == set(GROUPS)
        errors[n] = error(adapted)
        # Measured blocks are priced as measured.
        assert np.allclose(adapted.block_latencies(chosen), [target_ms(s) for s in chosen])
    # Ten blocks find each operator's speed; five more than halve the error.
    assert errors[10] < 0.02 and errors[5] < error(prior) / 2, (errors, error(prior))

    # What is saved predicts as what was fitted, its prior included.
    adapted.save(tmp_path / "q.json")
    again = Predictor.load(tmp_path / "q.json")
    specs = space.blocks()
    np.testing.assert_allclose(again.block_latencies(specs), adapted.block_latencies(specs))
    # A damaged prior is refused when the file is read.
    data = json.loads((tmp_path / "q.json").read_text())
    data.pop("sha256")
    data["prior"]["intercept_ms"] += 1
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match="its prior: its checksum does not match"):
        Predictor.load(tmp_path / "bad.json")


@pytest.mark.slow
def test_adapt_offline_and_online(run, cli, tmp_path, small_space, quick_device):
    space = get_space(str(small_space))
    law_table(space, tmp_path / "source.csv")
    fitted = cli("pxprof", "fit-predictor", "--table", "source.csv", "-o", "p.json")
    assert fitted.returncode == 0, fitted.stderr
    listed = cli("pxprof", "blocks", "--space", small_space, "--informative", "4", "--for", "p.json")
    assert listed.returncode == 0, listed.stderr
    keys = listed.stdout.split()
    assert len(keys) == 4 and set(keys) <= {s.key for s in space.blocks()}

    # Offline: a few entries measured by other means.
    few_table(space, tmp_path / "few.csv", set(keys))
    offline = cli("pxprof", "adapt", "--from", "p.json", "--table", "few.csv", "-o", "q.json")
    assert offline.returncode == 0, offline.stderr
    assert "4 measured blocks" in offline.stdout and "leave-one-out" in offline.stdout
    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps({"space": str(small_space),
                                "choices": [layer.ops[0] for layer in space.layers()]}))
    predicted = cli("pxprof", "predict", "--predictor", "q.json", "--arch", arch)
    assert predicted.returncode == 0, predicted.stderr
    truth = sum(target_ms(s) for s in space.network([layer.ops[0] for layer in space.layers()])
                if s.profiled)
    assert abs(float(predicted.stdout.split()[0]) / truth - 1) < 0.05

    # Online, as a user runs it: the same blocks measured on a device, and three networks for
    # the calibration (TorchScript: whole networks export in a fraction of a second).
    online = run("pxprof", "adapt", "--from", "p.json", "--device", quick_device, "--runtime",
                 "torch", "--space", small_space, "--blocks", "4", "--networks", "3",
                 "-o", "d.json")
    assert online.returncode == 0, online.stderr
    assert sorted(LatencyTable.load(tmp_path / "d.blocks.csv").keys) == sorted(keys)
    adapted = Predictor.load(tmp_path / "d.json")
    assert len(adapted.calibration_info["networks"]) == 3 and len(adapted.measured) == 4
    # Its block table is the adaptation's checkpoint: taken unless resumed.
    (tmp_path / "d.json").unlink()
    again = cli("pxprof", "adapt", "--from", "p.json", "--device", quick_device, "--runtime",
                "torch", "--space", small_space, "--blocks", "4", "--networks", "0", "-o", "d.json")
    assert_bad_input(again, "--resume")
    resumed = cli("pxprof", "adapt", "--from", "p.json", "--device", quick_device, "--runtime",
                  "torch", "--space", small_space, "--blocks", "4", "--networks", "0",
                  "-o", "d.json", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert Predictor.load(tmp_path / "d.json").measured == adapted.measured


def test_bad_adaptations_are_refused(cli, tmp_path, small_space):
    tiny = get_space("tiny")
    fit_table(law_table(tiny, tmp_path / "source.csv")).save(tmp_path / "p.json")
    two = [s.key for s in tiny.blocks()[:2]]
    few_table(tiny, tmp_path / "two.csv", set(two))
    small = get_space(str(small_space))
    few_table(small, tmp_path / "other.csv", {s.key for s in small.blocks()})
    cases = [
        (("--table", "two.csv"), "too few"),
        (("--table", "other.csv"), "space"),
        (("--device", "cpu", "--space", small_space), "space"),
        (("--device", "cpu", "--blocks", "0"), "--blocks"),
        (("--device", "cpu", "--blocks", "1000"), "between 1 and"),
        (("--device", "cpu", "--networks", "2"), "at least 3"),
        (("--device", "ssh://nobody@127.0.0.1:1", "--runtime", "onnxruntime", "--blocks", "3"),
         "127.0.0.1"),
        ((), "--device D"),
    ]
    for args, fragment in cases:
        assert_bad_input(cli("pxprof", "adapt", "--from", "p.json", *args, "-o", "q.json"),
                         fragment)
        assert not (tmp_path / "q.json").exists() and not (tmp_path / "q.blocks.csv").exists()
    assert_bad_input(cli("pxprof", "blocks", "--space", "tiny", "--informative", "3"), "--for")
