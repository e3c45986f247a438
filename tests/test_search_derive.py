"""Deriving the architecture under a latency budget, checked against brute force."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from profiler.space.spaces import space_from_dict
from search.derive import draws_within, most_likely_within, sample_within
from search.latency import ExpectedLatency

from search_fixtures import synthetic_table


@pytest.fixture(scope="module")
def small():
    space = space_from_dict(dict(name="small", resolution=16, stem_width=8, first_width=8, classes=4,
                                 stages=[dict(width=8, repeats=2, stride=1),
                                         dict(width=16, repeats=2, stride=2)], feature_width=32),
                            "test")
    return space, ExpectedLatency(space, synthetic_table(space))


def test_the_most_likely_architecture_within_the_budget_is_found(small):
    space, latency = small
    lo, hi = latency.bounds()
    gen = torch.Generator().manual_seed(0)
    for trial in range(5):
        alphas = [torch.randn(len(ops), generator=gen) for ops in latency.ops]
        target = lo + (0.2 + 0.15 * trial) * (hi - lo)
        got = most_likely_within(latency, alphas, target, tolerance=0.02)
        score = lambda ch: sum(float(torch.log_softmax(a, 0)[ops.index(c)])  # noqa: E731
                               for a, ops, c in zip(alphas, latency.ops, ch))
        inside = [list(ch) for ch in itertools.product(*latency.ops)
                  if abs(latency.latency(list(ch)) - target) <= 0.02 * target]
        assert inside, "the test needs a reachable budget"
        assert abs(latency.latency(got) - target) <= 0.02 * target
        assert score(got) == pytest.approx(max(score(ch) for ch in inside), abs=1e-9)


def test_a_decided_architecture_that_meets_the_budget_is_kept(small):
    space, latency = small
    choices = [ops[len(ops) // 2] for ops in latency.ops]
    alphas = [torch.tensor([8.0 if op == c else 0.0 for op in ops]) for ops, c in zip(latency.ops, choices)]
    assert most_likely_within(latency, alphas, latency.latency(choices)) == choices


def test_draws_follow_the_distribution_within_the_budget(small):
    """Conditioned on the budget, each layer's op is drawn as often as brute force says."""
    space, latency = small
    lo, hi = latency.bounds()
    target, tolerance = lo + 0.3 * (hi - lo), 0.03
    gen = torch.Generator().manual_seed(1)
    alphas = [torch.randn(len(ops), generator=gen) for ops in latency.ops]
    inside = [list(ch) for ch in itertools.product(*latency.ops)
              if abs(latency.latency(list(ch)) - target) <= tolerance * target]
    weight = [math.exp(sum(float(torch.log_softmax(a, 0)[ops.index(c)])
                           for a, ops, c in zip(alphas, latency.ops, ch))) for ch in inside]
    draws = list(itertools.islice(draws_within(latency, alphas, target, tolerance, seed=0), 1000))
    kept = [ch for ch in draws if abs(latency.latency(ch) - target) <= tolerance * target]
    assert len(kept) > 0.95 * len(draws)  # the grid's rounding loses few at the budget's edge
    for i, ops in enumerate(latency.ops):
        for op in ops:
            expected = sum(w for ch, w in zip(inside, weight) if ch[i] == op) / sum(weight)
            seen = sum(ch[i] == op for ch in kept) / len(kept)
            assert seen == pytest.approx(expected, abs=0.05), (i, op)


def test_samples_are_distinct_within_the_budget_and_skip_the_excluded(small):
    space, latency = small
    lo, hi = latency.bounds()
    target = lo + 0.5 * (hi - lo)
    alphas = [torch.zeros(len(ops)) for ops in latency.ops]
    first = most_likely_within(latency, alphas, target, 0.02)
    got = sample_within(latency, alphas, target, 0.02, 12, seed=3, exclude=[first])
    assert len(got) == 12 and first not in got
    assert len({tuple(ch) for ch in got}) == 12
    assert all(abs(latency.latency(ch) - target) <= 0.02 * target for ch in got)
    assert got == sample_within(latency, alphas, target, 0.02, 12, seed=3, exclude=[first])
    # A distribution decided on one architecture holds no other.
    decided = [torch.tensor([20.0 if op == c else 0.0 for op in ops])
               for ops, c in zip(latency.ops, first)]
    assert sample_within(latency, decided, latency.latency(first), 0.02, 5, seed=0,
                         exclude=[first]) == []
