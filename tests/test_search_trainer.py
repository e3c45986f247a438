"""The search loop in-process on the `tiny` space and digits, and the dataset readers."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from profiler.errors import UserError
from profiler.space.spaces import get_space
from search.config import SearchConfig
from search.data import Split, load_data
from search.latency import ExpectedLatency
from search.trainer import Searcher

from search_fixtures import synthetic_table

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def setup():
    space = get_space("tiny")
    latency = ExpectedLatency(space, synthetic_table(space))
    # A third of digits: enough steps for the architecture to follow its target.
    data = load_data("digits", space.resolution, seed=0)
    data.train = Split(data.train.images[:384], data.train.labels[:384])
    data.val = Split(data.val.images[:192], data.val.labels[:192])
    return space, latency, data


def search(setup, fraction: float, **kw) -> tuple[Searcher, float, list[str]]:
    space, latency, data = setup
    lo, hi = latency.bounds()
    target = lo + fraction * (hi - lo)
    config = SearchConfig(target_ms=target, **{"warmup_epochs": 1, "epochs": 3, **kw})
    searcher = Searcher(space, latency, data, config, progress=False)
    return searcher, target, searcher.run()


@pytest.mark.slow
def test_a_tight_target_gives_a_faster_network_than_a_loose_one(setup):
    latency = setup[1]
    # No warm-up: the architecture steps from the first batch, and two epochs show the trend.
    _, _, tight = search(setup, 0.1, warmup_epochs=0, epochs=2, batch_size=64)
    _, _, loose = search(setup, 0.9, warmup_epochs=0, epochs=2, batch_size=64)
    assert latency.latency(tight) < latency.latency(loose)


@pytest.mark.slow
def test_budget_ends_within_five_percent_of_its_target(setup):
    # Small batches: many architecture steps in a few seconds.
    searcher, target, choices = search(setup, 0.4, epochs=3, batch_size=16)
    assert searcher.latency.latency(choices) == pytest.approx(target, rel=0.05)
    # lambda went where the target asked: E[LAT] came down from the uniform start towards T.
    first_expected = searcher.latency([torch.full((len(o),), 1 / len(o)) for o in searcher.latency.ops])
    assert abs(searcher.rows[-1]["expected_latency_ms"] - target) < abs(float(first_expected) - target)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["full_v2", "full", "reinforce"])
def test_every_gate_mode_moves_the_architecture(setup, mode):
    searcher, _, _ = search(setup, 0.5, mode=mode, epochs=1, warmup_epochs=0,
                            **({"loss": "add#linear"} if mode != "reinforce" else {}))
    alphas = torch.cat([a.detach() for a in searcher.net.arch_parameters()])
    assert bool((alphas != 0).any()) and bool(torch.isfinite(alphas).all())
    assert len(searcher.rows) == 1


def test_image_folder_of_pngs_and_arrays(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        for i in range(5):
            Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)).save(tmp_path / c / f"{i}.png")
        np.save(tmp_path / c / "extra.npy", rng.random((9, 9)).astype(np.float32))
    data = load_data(str(tmp_path), resolution=16, seed=1)
    assert data.classes == 2 and len(data.train) + len(data.val) + len(data.test) == 12
    x, y = next(data.batches(data.train, 4, seed=0))
    assert x.shape == (4, 3, 16, 16) and y.dtype == torch.int64


def test_cifar10_python_batches(tmp_path):
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(tmp_path / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 255, (20, 3072), dtype=np.uint8),
                         b"labels": list(rng.integers(0, 10, 20))}, f)
    data = load_data(str(tmp_path), resolution=24, seed=0)
    assert (len(data.train), len(data.val), len(data.test)) == (90, 10, 20)
    x, _ = next(data.batches(data.test, 8))
    assert x.shape == (8, 3, 24, 24)
    (tmp_path / "test_batch").write_bytes(b"garbage")
    with pytest.raises(UserError, match="not a CIFAR-10 python batch"):
        load_data(str(tmp_path), resolution=24)

    class Exploit:  # a pickle that would run a command when loaded
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": Exploit(), b"labels": []}, f)
    with pytest.raises(UserError, match="not a CIFAR-10 python batch"):
        load_data(str(tmp_path), resolution=24)
    assert not (tmp_path / "pwned").exists()


def test_splits_are_reproducible_from_the_seed():
    a, b, c = (load_data("digits", 16, seed=s) for s in (0, 0, 1))
    assert torch.equal(a.test.labels, b.test.labels)
    assert not torch.equal(a.test.labels, c.test.labels)
