"""Time of a supernet weight step and architecture step against the standalone child network.

For a few architectures drawn at random from the space, the child is built standalone and timed for a
training step (forward + backward + SGD step); the supernet is timed for a weight step that samples
its gates (the sampler's draw is timed too) and runs that same architecture, and for an architecture
step per gate mode whose active path is that architecture (forward + backward + BinaryConnect + Adam,
plus the `two` rescaling). Medians of `--repeats` steps after warm-up; one torch thread.

Usage: python bench/search_speed.py [--space tiny] [--batch 32] [--archs 4] [--repeats 15]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
import torch.nn.functional as F

from profiler.build.blocks import build_network
from profiler.space.spaces import get_space
from search import GateSampler, Gates, Supernet

MODES = ("two", "full_v2", "full")


def _median_ms(step, repeats: int) -> float:
    for _ in range(3):
        step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="tiny")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--archs", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    space = get_space(args.space)
    r = space.resolution
    x, y = torch.randn(args.batch, 3, r, r), torch.randint(0, space.classes, (args.batch,))
    net = Supernet(space).train()
    w_opt = torch.optim.SGD(net.weight_parameters(), lr=0.01, momentum=0.9, nesterov=True,
                            weight_decay=4e-5)
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=1e-3, betas=(0.0, 0.999))
    sampler = GateSampler("two", seed=0)
    rng = random.Random(0)
    rows = []
    for _ in range(args.archs):
        choices = [rng.choice(layer.ops) for layer in space.layers()]
        child = build_network(space, choices).train()
        c_opt = torch.optim.SGD(child.parameters(), lr=0.01, momentum=0.9, nesterov=True,
                                weight_decay=4e-5)

        def child_step():
            loss = F.cross_entropy(child(x), y)
            c_opt.zero_grad(set_to_none=True)
            loss.backward()
            c_opt.step()

        def weight_step():
            net.sample_paths(sampler)  # the draw is part of the cost; the path is then fixed
            net.fix(choices)
            loss = F.cross_entropy(net(x), y)
            w_opt.zero_grad(set_to_none=True)
            loss.backward()
            net.drop_unsampled_grads()
            w_opt.step()

        def arch_step(mode):
            def step():
                for op, name in zip(net.layers, choices):
                    sampler.arch(op.alpha)  # drawn for its cost only: the active path is fixed
                    active = op.names.index(name)
                    involved = (active, (active + 1) % len(op.names)) if mode == "two" else \
                        tuple(range(len(op.names)))
                    op.sample(Gates(active, involved, mode))
                loss = F.cross_entropy(net(x), y)
                net.zero_grad(set_to_none=True)
                loss.backward()
                net.set_arch_grad()
                a_opt.step()
                net.rescale_alpha()
            return step

        row = {"child": _median_ms(child_step, args.repeats),
               "weight": _median_ms(weight_step, args.repeats)}
        for mode in MODES:
            row[mode] = _median_ms(arch_step(mode), args.repeats)
        rows.append(row)
        print(f"{' '.join(choices)}: child {row['child']:.1f} ms, weight step {row['weight']:.1f} ms "
              f"({row['weight'] / row['child']:.2f}x), arch step "
              + ", ".join(f"{m} {row[m]:.1f} ms ({row[m] / row['child']:.2f}x)" for m in MODES),
              flush=True)
    mean = {k: statistics.mean(r[k] / r["child"] for r in rows) for k in rows[0]}
    print(f"\n{args.space}, batch {args.batch}, one thread; mean ratio to the standalone child over "
          f"{len(rows)} architectures:")
    print(f"  weight step {mean['weight']:.2f}x; architecture step "
          + ", ".join(f"{m} {mean[m]:.2f}x" for m in MODES))


if __name__ == "__main__":
    main()
