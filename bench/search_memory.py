"""Peak memory of one training step of the supernet, per gate mode, against the standalone child.

For `tiny` and `proxyless-mobile` with 4, 7 and 13 candidates per layer (kernels 3/5/7 x expands
{6}, {3, 6}, {2, 3, 4, 6}, plus `zero`), each case runs in a fresh process and reports

    peak RSS during the step - RSS just before it (resource.getrusage ru_maxrss vs /proc/self/statm)

i.e. the activations, gradients and optimizer state the step allocates, not the model itself. A step is
forward + backward + optimizer step:
    child      the standalone network of the largest candidate per layer (SGD)
    path       a supernet weight step on that same path (SGD)
    two, full_v2, full
               a supernet architecture step (Adam on alpha) whose active path is that same network

Usage: python bench/search_memory.py [--tiny-batch 64] [--mobile-batch 4] [--mobile-resolution 224]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys

SPACES = {4: ((3, 5, 7), (6,)), 7: ((3, 5, 7), (3, 6)), 13: ((3, 5, 7), (2, 3, 4, 6))}
VARIANTS = ("child", "path", "two", "full_v2", "full")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _space(name: str, candidates: int, resolution: int):
    from profiler.space.spaces import PRESETS, space_from_dict
    kernels, expands = SPACES[candidates]
    return space_from_dict(dict(PRESETS[name], name=f"{name}-{candidates}", resolution=resolution,
                                kernels=list(kernels), expands=list(expands)), "bench")


def one(space_name: str, candidates: int, variant: str, batch: int, resolution: int) -> dict:
    import torch
    import torch.nn.functional as F
    from profiler.build.blocks import build_network
    from search import Gates, Supernet
    torch.set_num_threads(1)
    torch.manual_seed(0)
    space = _space(space_name, candidates, resolution)
    largest = [max(layer.ops, key=lambda o: (o != "zero", layer.candidates[o].expand,
                                              layer.candidates[o].kernel)) for layer in space.layers()]
    x = torch.randn(batch, 3, resolution, resolution)
    y = torch.randint(0, space.classes, (batch,))
    if variant == "child":
        net = build_network(space, largest).train()
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    else:
        net = Supernet(space).train()
        params = net.weight_parameters() if variant == "path" else net.arch_parameters()
        opt = torch.optim.SGD(params, lr=0.01, momentum=0.9) if variant == "path" else \
            torch.optim.Adam(params, lr=0.01, betas=(0.0, 0.999))
        for op, name in zip(net.layers, largest):
            active = op.names.index(name)
            if variant == "path":
                op.sample(Gates(active, (active,), "path"))
            elif variant == "two":
                partner = (active + 1) % len(op.names)
                op.sample(Gates(active, (active, partner), "two"))
            else:
                op.sample(Gates(active, tuple(range(len(op.names))), variant))
    params = sum(p.numel() for p in net.parameters())
    before = _rss_bytes()
    loss = F.cross_entropy(net(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if variant not in ("child", "path"):
        net.set_arch_grad()
    opt.step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"space": space_name, "candidates": candidates, "variant": variant,
            "step_mb": (peak - before) / 2**20, "params_m": params / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny-batch", type=int, default=64)
    ap.add_argument("--mobile-batch", type=int, default=4)
    ap.add_argument("--mobile-resolution", type=int, default=224)
    ap.add_argument("--one", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        name, cands, variant, batch, res = args.one
        print(json.dumps(one(name, int(cands), variant, int(batch), int(res))))
        return
    cases = [("tiny", args.tiny_batch, 32), ("proxyless-mobile", args.mobile_batch,
                                               args.mobile_resolution)]
    print("peak RSS increase during one step (MB); ratio to the standalone child")
    print(f"{'space':18} {'cand':>4} " + " ".join(f"{v:>15}" for v in VARIANTS))
    for name, batch, res in cases:
        for cands in SPACES:
            results = {}
            for variant in VARIANTS:
                out = subprocess.run([sys.executable, __file__, "--one", name, str(cands), variant,
                                      str(batch), str(res)], capture_output=True, text=True)
                if out.returncode:
                    sys.exit(f"{name} {cands} {variant} failed: {out.stderr.strip()[-500:]}")
                results[variant] = json.loads(out.stdout.strip().splitlines()[-1])["step_mb"]
            child = results["child"]
            cells = [f"{results[v]:8.1f} ({results[v] / child:4.2f}x)" for v in VARIANTS]
            print(f"{name:18} {cands:>4} " + " ".join(f"{c:>15}" for c in cells), flush=True)
    print(f"batch {args.tiny_batch} at 32 px (tiny), {args.mobile_batch} at "
          f"{args.mobile_resolution} px (proxyless-mobile); one torch thread")


if __name__ == "__main__":
    main()
