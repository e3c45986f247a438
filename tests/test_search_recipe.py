"""The training recipe shared by the search and retraining (search/recipe.py), and the warning
when a supernet has learned nothing by the end of warm-up."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from profiler.space.spaces import get_space
from search.config import SearchConfig
from search.data import Split, load_data
from search.latency import ExpectedLatency
from search.recipe import default_lr, init_for_training, schedule, sgd
from search.supernet import Supernet
from search.trainer import Searcher

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


def test_the_learning_rate_ramps_up_then_follows_a_cosine_per_phase_and_resumes():
    net = torch.nn.Linear(2, 2)
    opt = sgd(net.parameters(), 0.1, 0.9, 4e-5)
    sched = schedule(opt, [20, 100], warmup=10)
    rates = []
    for _ in range(120):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates[0] == pytest.approx(0.01) and rates[9] == pytest.approx(0.1)
    assert rates[19] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 19 / 20)))
    assert rates[20] == pytest.approx(0.1) and rates[70] == pytest.approx(0.05)  # the search restarts
    assert all(a >= b for a, b in zip(rates[20:], rates[21:]))
    # A scheduler loaded from another's state continues where that one was.
    again = schedule(sgd(torch.nn.Linear(2, 2).parameters(), 0.1, 0.9, 4e-5), [20, 100], warmup=10)
    again.load_state_dict(sched.state_dict())
    assert again.get_last_lr() == sched.get_last_lr() and again.last_epoch == 120


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


@pytest.mark.parametrize("name", ["tiny", "proxyless-mobile", "ofa-mbv3-w1.2"])
def test_the_candidates_of_a_layer_start_as_one_function(name):
    space = replace(get_space(name), resolution=32)
    torch.manual_seed(0)
    net = init_for_training(Supernet(space)).train()
    x = torch.randn(2, 3, 32, 32)
    x = net.prefix(x)
    for op, layer in zip(net.layers, space.layers()):
        outs = [c(x) for c in op.candidates]
        for name_, out in zip(op.names, outs):
            assert torch.allclose(out, outs[0], atol=1e-5), (layer, name_)
        x = outs[0] + torch.randn_like(outs[0])  # a non-trivial input for the next layer
    # Each candidate keeps weights of its own (copied, not shared), to train apart.
    pointers = [p.data_ptr() for op in net.layers for p in op.parameters()]
    assert len(pointers) == len(set(pointers))


@pytest.mark.slow
def test_the_deep_preset_learns_within_a_few_dozen_steps():
    """Regression: with independently drawn candidates and a learning rate of 0.1, `proxyless-mobile`
    stayed at chance on digits (training accuracy 0.1 after 300 steps); with running batch-norm
    statistics from random paths, derived architectures scored at chance on validation."""
    space = replace(get_space("proxyless-mobile"), resolution=16)
    data = load_data("digits", space.resolution, seed=0)
    data.train = Split(data.train.images[:512], data.train.labels[:512])
    latency = ExpectedLatency(space, synthetic_table(space))
    config = SearchConfig(target_ms=sum(latency.bounds()) / 2, warmup_epochs=2, epochs=0,
                          batch_size=32)
    searcher = Searcher(space, latency, data, config, progress=False, warn=lambda _: None)
    assert searcher.lr == pytest.approx(default_lr(21, 32))
    searcher.run()
    losses = [row["train_loss"] for row in searcher.rows]
    accuracies = [row["train_acc"] for row in searcher.rows]
    assert losses[1] < losses[0] and accuracies[1] > 0.2, searcher.rows
    assert searcher.rows[1]["val_acc"] > 0.2, searcher.rows


def test_squeeze_excite_candidates_start_as_one_function():
    from profiler.space.blockspec import BlockSpec
    from profiler.build.blocks import build_block
    from search.mixed_op import MixedOp
    from search.recipe import align_candidates
    torch.manual_seed(0)
    op = MixedOp({f"k{k}_m{m}": build_block(BlockSpec("mbconv3", 8, 8, 32, 32, kernel=k, mid=m,
                                                       idskip=True, se=True, hs=True))
                  for k in (3, 5) for m in (96, 192)})
    align_candidates(op)
    x = torch.randn(2, 32, 8, 8)
    outs = [c.train()(x) for c in op.candidates]
    assert all(torch.allclose(o, outs[0], atol=1e-5) for o in outs)


def test_a_checkpoint_of_another_version_says_how_to_start_afresh(tmp_path):
    from profiler.errors import UserError
    from search.trainer import CHECKPOINT_VERSION, read_checkpoint
    torch.save({"version": 2}, tmp_path / "checkpoint.pt")
    with pytest.raises(UserError, match=rf"checkpoint version 2, this one reads {CHECKPOINT_VERSION}\); start afresh "
                                        r"with --force"):
        read_checkpoint(tmp_path / "checkpoint.pt")
