"""Gradients of the search: E[LAT], the binary-gate estimate of dL/dalpha, the `two`-mode shift."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from profiler.build.blocks import build_block
from profiler.errors import UserError
from profiler.space.spaces import get_space, space_from_dict
from search import ExpectedLatency, GateSampler, Gates, LatencyLoss, MixedOp, Supernet

from search_fixtures import MacsPredictor, synthetic_table

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny():
    return get_space("tiny")


@pytest.fixture(scope="module")
def table(tiny):
    return synthetic_table(tiny)


def test_expected_latency_matches_finite_differences(tiny, table):
    lat = ExpectedLatency(tiny, table)
    torch.manual_seed(0)
    alphas = [torch.randn(len(layer.ops), dtype=torch.float64, requires_grad=True)
              for layer in tiny.layers()]
    expected = lat([torch.softmax(a, 0) for a in alphas])
    grads = torch.autograd.grad(expected, alphas)
    eps = 1e-6
    for a, g in zip(alphas, grads):
        for j in range(len(a)):
            with torch.no_grad():
                a[j] += eps
                up = lat([torch.softmax(b, 0) for b in alphas])
                a[j] -= 2 * eps
                down = lat([torch.softmax(b, 0) for b in alphas])
                a[j] += eps
            assert float(g[j]) == pytest.approx(float(up - down) / (2 * eps), rel=1e-5, abs=1e-10)


def test_one_hot_probabilities_give_the_table_latency(tiny, table):
    lat = ExpectedLatency(tiny, table)
    rng = random.Random(0)
    for _ in range(20):
        choices = [rng.choice(layer.ops) for layer in tiny.layers()]
        one_hot = [torch.nn.functional.one_hot(torch.tensor(layer.ops.index(c)), len(layer.ops))
                   .double() for layer, c in zip(tiny.layers(), choices)]
        exact = table.architecture_latency(tiny, choices)
        assert float(lat(one_hot)) == pytest.approx(exact, rel=1e-12)
        assert lat.latency(choices) == pytest.approx(exact, rel=1e-12)
    lo, hi = lat.bounds()
    fastest = [min(layer.ops, key=lambda o: table.latency(layer.candidates[o])) for layer in tiny.layers()]
    assert lo == pytest.approx(table.architecture_latency(tiny, fastest))
    assert lo < hi


def test_a_predictor_is_a_latency_source_like_a_table(tiny, table):
    from_table, from_predictor = ExpectedLatency(tiny, table), ExpectedLatency(tiny, MacsPredictor())
    assert torch.allclose(from_table.matrix, from_predictor.matrix)
    assert from_table.fixed_ms == pytest.approx(from_predictor.fixed_ms)


def test_a_table_missing_blocks_is_refused_with_their_keys(tiny):
    with pytest.raises(UserError, match=r"lacks 2 block\(s\).*Conv_1-input.*Logits-input"):
        ExpectedLatency(tiny, synthetic_table(tiny, drop=2))


def _layer(seed: int = 0, zero: bool = True) -> MixedOp:
    """A small mixed op of real candidates (MBConv with identity skip, and `zero`)."""
    space = space_from_dict(dict(name="t", resolution=8, stem_width=8, first_width=8, classes=3,
                                 stages=[dict(width=8, repeats=2, stride=1)], feature_width=16,
                                 kernels=[3, 5], expands=[1, 2], zero=zero), "test")
    torch.manual_seed(seed)
    layer = space.layers()[0]
    op = MixedOp({name: build_block(spec) for name, spec in layer.candidates.items()}).double()
    op.gate_values = op.gate_values.double().detach().requires_grad_()
    with torch.no_grad():
        op.alpha.copy_(torch.randn(len(op.names), dtype=torch.float64))
    return op.train()


def _gate_grads(op: MixedOp, gates: Gates, x, head) -> torch.Tensor:
    op.sample(gates)
    head(op(x)).backward()
    grad = op.gate_values.grad.clone()
    op.zero_grad(set_to_none=True)
    return grad


def test_full_v2_and_two_gate_gradients_equal_those_of_the_full_graph():
    op = _layer()
    x = torch.randn(4, 8, 8, 8, dtype=torch.float64)
    w = torch.randn(4, 8, 8, 8, dtype=torch.float64)
    head = lambda y: (torch.tanh(y) * w).sum()  # noqa: E731  a nonlinear loss
    op.eval()  # BN in eval mode, so recomputed outputs equal the forward ones exactly
    n = len(op.names)
    for active in range(n):
        full = _gate_grads(op, Gates(active, tuple(range(n)), "full"), x, head)
        v2 = _gate_grads(op, Gates(active, tuple(range(n)), "full_v2"), x, head)
        assert torch.allclose(full, v2, rtol=1e-10, atol=1e-10)
        other = (active + 1) % n
        two = _gate_grads(op, Gates(active, (active, other), "two"), x, head)
        assert torch.allclose(two[[active, other]], full[[active, other]], rtol=1e-10, atol=1e-10)
        assert float(two.abs().sum() - two[[active, other]].abs().sum()) == 0


def test_zero_active_still_gives_every_candidate_a_gradient():
    op = _layer().eval()
    zero = op.names.index("zero")
    x = torch.randn(2, 8, 8, 8, dtype=torch.float64)
    w = torch.randn(2, 8, 8, 8, dtype=torch.float64)
    op.sample(Gates(zero, tuple(range(len(op.names))), "full_v2"))
    y = op(x)
    assert torch.equal(y, x)  # the layer is skipped: its output is the shortcut
    (y * w).sum().backward()
    # dL/dg_k = <o_k(x), dL/dy> with dL/dy = w: checked against the candidates run directly.
    with torch.no_grad():
        direct = torch.stack([(c(x) * w).sum() for c in op.candidates])
    assert torch.allclose(op.gate_values.grad, direct, rtol=1e-10)
    op.set_arch_grad()
    assert op.alpha.grad is not None and bool((op.alpha.grad != 0).all())


@pytest.mark.parametrize("mode", ["full", "full_v2"])
def test_binary_connect_averages_to_the_exact_gradient_of_the_expected_loss(mode):
    """For a loss linear in the layer output, E_g[L] = sum_k p_k L(o_k), and the BinaryConnect
    estimate averaged over gate draws (and random inputs) converges to its exact gradient."""
    op = _layer(seed=1).eval()
    sampler = GateSampler(mode, seed=3)
    w = torch.randn(1, 8, 8, 8, dtype=torch.float64)
    gen = torch.Generator().manual_seed(5)
    estimate, exact, draws = torch.zeros_like(op.alpha), torch.zeros_like(op.alpha), 400
    for _ in range(draws):
        x = torch.randn(2, 8, 8, 8, dtype=torch.float64, generator=gen)
        op.sample(sampler.arch(op.alpha))
        op.alpha.grad = None
        (op(x) * w).sum().backward()
        op.set_arch_grad()
        estimate += op.alpha.grad / draws
        # The exact gradient of sum_k p_k L_k for this input, by autograd through softmax.
        with torch.no_grad():
            losses = torch.stack([(c(x) * w).sum() for c in op.candidates])
        alpha = op.alpha.detach().clone().requires_grad_()
        (torch.softmax(alpha, 0) * losses).sum().backward()
        exact += alpha.grad / draws
    assert torch.allclose(estimate, exact, rtol=1e-6, atol=1e-9)


def test_binary_connect_estimate_of_a_nonlinear_loss_points_along_the_exact_gradient():
    """With a nonlinear loss BinaryConnect is a first-order estimate: its average over many draws
    points the way the exact gradient of the expected loss does."""
    op = _layer(seed=2).eval()
    x = torch.randn(4, 8, 8, 8, dtype=torch.float64)
    target = torch.randn(4, 8, 8, 8, dtype=torch.float64)
    loss = lambda y: ((y - target) ** 2).mean()  # noqa: E731
    with torch.no_grad():
        losses = torch.stack([loss(c(x)) for c in op.candidates])
    alpha = op.alpha.detach().clone().requires_grad_()
    (torch.softmax(alpha, 0) * losses).sum().backward()
    exact = alpha.grad
    for mode in ("full_v2", "two"):
        sampler, estimate = GateSampler(mode, seed=0), torch.zeros_like(op.alpha)
        for _ in range(300):
            op.sample(sampler.arch(op.alpha))
            op.alpha.grad = None
            loss(op(x)).backward()
            op.set_arch_grad()
            estimate += op.alpha.grad
        cos = torch.nn.functional.cosine_similarity(estimate, exact, dim=0)
        assert cos > 0.9, (mode, float(cos))


def test_two_mode_step_keeps_the_unsampled_probabilities(table):
    space = get_space("tiny")
    torch.manual_seed(0)
    net = Supernet(space)
    with torch.no_grad():
        for a in net.arch_parameters():
            a.copy_(torch.randn_like(a))
    lat = ExpectedLatency(space, table)
    loss_fn = LatencyLoss("add#linear", target_ms=0.06, lam=1.0)
    opt = torch.optim.Adam(net.arch_parameters(), lr=0.3, betas=(0.0, 0.999))
    sampler = GateSampler("two", seed=0)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    for _ in range(3):
        before = [p.detach().clone() for p in net.probabilities()]
        net.sample_arch(sampler)
        loss = loss_fn(nn.functional.cross_entropy(net(x), y), lat(net.probabilities()))
        net.zero_grad(set_to_none=True)
        loss.backward()
        net.set_arch_grad()
        opt.step()
        net.rescale_alpha()
        for op, old, new in zip(net.layers, before, net.probabilities()):
            pair = list(op.gates.involved)
            rest = [k for k in range(len(op.names)) if k not in pair]
            assert torch.allclose(new.detach()[rest], old[rest], rtol=1e-6, atol=1e-7)
            assert float(new.detach()[pair].sum()) == pytest.approx(float(old[pair].sum()), rel=1e-5)
        assert any(not torch.allclose(n.detach(), o) for n, o in zip(net.probabilities(), before))


def test_unsampled_candidates_get_no_weight_update():
    space = get_space("tiny")
    torch.manual_seed(0)
    net = Supernet(space)
    opt = torch.optim.SGD(net.weight_parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    sampler = GateSampler("full", seed=0)
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    for step in range(4):
        # Alternate between weight steps (one path) and full-graph steps (every path in the graph).
        (net.sample_paths if step % 2 == 0 else net.sample_arch)(sampler)
        before = {id(p): p.detach().clone() for p in net.weight_parameters()}
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(net(x), y).backward()
        net.drop_unsampled_grads()
        opt.step()
        for op in net.layers:
            for k, cand in enumerate(op.candidates):
                if k != op.gates.active:
                    assert all(torch.equal(p, before[id(p)]) for p in cand.parameters())


def test_budget_loss_raises_lambda_above_the_target_and_lowers_it_below():
    loss = LatencyLoss("budget", target_ms=2.0)
    loss.update(3.0)
    assert loss.lam > 0
    loss.update(1.0)
    loss.update(1.0)
    assert loss.lam < 0
    with pytest.raises(UserError, match="mul#log needs a target above 1 ms"):
        LatencyLoss("mul#log", target_ms=0.5)
    with pytest.raises(UserError, match="unknown loss"):
        LatencyLoss("sq", target_ms=1.0)


def test_budget_target_ramps_from_the_first_expected_latency_to_the_target():
    ramped = LatencyLoss("budget", target_ms=1.0, ramp_steps=4)
    plain = LatencyLoss("budget", target_ms=1.0)
    ce = torch.tensor(1.0)
    # E[LAT] falls along the ramp: the ramped loss sees no excess, the plain one a large one.
    for k, expected in enumerate([3.0, 2.5, 2.0, 1.5, 1.0, 1.0]):
        assert float(ramped(ce, torch.tensor(expected))) == pytest.approx(1.0)
        assert ramped.target_now() == pytest.approx(max(1.0, 3.0 - 0.5 * k))
        ramped.update(expected)
        plain(ce, torch.tensor(expected))
        plain.update(expected)
    assert ramped.lam == pytest.approx(0.0) and plain.lam > 0.5
    # A resumed loss continues on the ramp where it was.
    resumed = LatencyLoss("budget", target_ms=1.0, ramp_steps=8)
    half = LatencyLoss("budget", target_ms=1.0, ramp_steps=8)
    for expected in (3.0, 2.75):
        half(ce, torch.tensor(expected))
        half.update(expected)
    resumed.load_state_dict(half.state_dict())
    assert resumed.target_now() == half.target_now() == pytest.approx(2.5)
