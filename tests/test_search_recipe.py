"""The training recipe shared by the search and retraining (search/recipe.py), and the warning
when a supernet has learned nothing by the end of warm-up."""

from __future__ import annotations


import pytest
import torch

from profiler.space import get_space
from search.data import Split, load_data
from search.latency import ExpectedLatency
from search.recipe import init_for_training, learning_rate, sgd
from search.supernet import Supernet
from search.trainer import SearchConfig, Searcher

from search_fixtures import synthetic_table


def test_residual_blocks_start_as_the_identity_and_norms_do_not_decay():
    space = get_space("tiny")
    net = init_for_training(Supernet(space)).train()
    i, spec = next((i, s) for i, layer in enumerate(space.layers())
                   for s in layer.candidates.values() if s.idskip)
    x = torch.randn(4, spec.in_c, spec.in_h, spec.in_w)
    assert torch.equal(net.layers[i].candidates[0](x), x)
    opt = sgd(net.weight_parameters(), 0.1, 0.9, 4e-5)
    decayed, free = opt.param_groups
    assert decayed["weight_decay"] == 4e-5 and free["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decayed["params"]) and all(p.ndim == 1 for p in free["params"])
    assert learning_rate(0.1, 0, 100, warmup=10) == pytest.approx(0.01)
    assert learning_rate(0.1, 9, 100, warmup=10) == pytest.approx(0.1)
    assert learning_rate(0.1, 100, 100) == pytest.approx(0.0)


def test_a_supernet_at_chance_after_warm_up_is_reported():
    space = get_space("tiny")
    data = load_data("digits", space.resolution, seed=0)
    data.train = Split(data.train.images[:64], data.train.labels[:64])
    latency = ExpectedLatency(space, synthetic_table(space))
    said = []
    # A learning rate that cannot move the weights: the supernet stays at chance.
    config = SearchConfig(target_ms=sum(latency.bounds()) / 2, warmup_epochs=1, epochs=1,
                          batch_size=32, lr=1e-9)
    Searcher(space, latency, data, config, progress=False, warn=said.append).run()
    assert len(said) == 1 and "no better than chance" in said[0] and "--warmup-epochs" in said[0]
