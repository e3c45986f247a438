"""Search steps per second on 1 and N processes (DistributedDataParallel), and scaling efficiency.

A step is what a search does per training batch: a weight step on the global batch and an
architecture step on a validation batch (mode `two`, the budget loss). Each configuration runs as
`torchrun --standalone` would start it (torch's elastic launcher), on the shipped latency table of
the space and the digits dataset; the first epoch warms up, the next `--epochs` are timed between
barriers. Strong scaling: the global batch is the same for every configuration, so N processes
each take 1/N of it.

On CPUs it compares one process on one core, one process on all cores (torch's threads) and one
process per core; on a machine with GPUs, one GPU against one process per GPU.

Usage: python bench/ddp_scaling.py [--space tiny] [--batch-size 64] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from search.distributed import join, usable_cores

TABLES = Path(__file__).resolve().parent.parent / "data" / "latency_tables"


def worker(args) -> None:
    from tqdm import tqdm

    from profiler.space.spaces import get_space
    from profiler.tables.table import LatencyTable
    from search import SearchConfig
    from search.data import load_data
    from search.latency import ExpectedLatency
    from search.trainer import Searcher

    torch.set_num_threads(args.threads)
    world = join(args.device)
    # Trained at --resolution, the latency of the space's own resolution: only the step time counts.
    space = get_space(args.space, args.resolution)
    latency = ExpectedLatency(get_space(args.space), LatencyTable.load(TABLES / f"cpu-{args.space}.csv"))
    data = load_data("digits", space.resolution, seed=0)
    lo, hi = latency.bounds()
    config = SearchConfig(target_ms=(lo + hi) / 2, warmup_epochs=0, epochs=args.epochs + 1,
                          batch_size=args.batch_size, seed=0)
    searcher = Searcher(space, latency, data, config, progress=False, world=world)
    bar = tqdm(disable=True)
    seconds = []
    for epoch in range(args.epochs + 1):
        val = searcher._val_stream(epoch)
        world.barrier()
        if world.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        searcher.train_epoch(epoch, bar, between=lambda j: searcher.arch_step(*next(val)))
        if world.device.type == "cuda":
            torch.cuda.synchronize()
        world.barrier()
        seconds.append(time.perf_counter() - t0)
    if world.main:
        timed = sum(seconds[1:])
        Path(args.result).write_text(json.dumps({"steps_per_s": args.epochs * searcher.steps / timed,
                                                 "steps": searcher.steps}))
    world.close()


def run(args, processes: int, threads: int, device: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={processes}", __file__, "--worker", "--result", str(result),
               "--threads", str(threads), "--device", device, "--space", args.space,
               "--batch-size", str(args.batch_size), "--epochs", str(args.epochs)]
        if args.resolution:
            cmd += ["--resolution", str(args.resolution)]
        subprocess.run(cmd, check=True, env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
        return json.loads(result.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="tiny", help="a space with a shipped table (tiny, proxyless-mobile)")
    ap.add_argument("--resolution", type=int, default=None, help="train at this many pixels")
    ap.add_argument("--batch-size", type=int, default=64, help="the global batch")
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs of digits")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)

    if torch.cuda.is_available():
        gpus = torch.cuda.device_count()
        device, configs = "cuda", [(1, 1)] + ([(gpus, 1)] if gpus > 1 else [])
        unit = "GPU"
    else:
        cores = usable_cores()
        device, configs, unit = "cpu", [(1, 1), (1, cores), (cores, 1)], "core"
    print(f"{args.space}{f'@{args.resolution}' if args.resolution else ''}, global batch "
          f"{args.batch_size}, {device}; steps/s over {args.epochs} epochs of digits after one")
    print(f"| processes | threads each | {unit}s | steps/s | speed-up | efficiency |")
    print("|---|---|---|---|---|---|")
    base = None
    for processes, threads in configs:
        rate = run(args, processes, threads, device)["steps_per_s"]
        base = base or rate
        used = processes * (threads if device == "cpu" else 1)
        print(f"| {processes} | {threads} | {used} | {rate:.2f} | x{rate / base:.2f} | "
              f"{rate / base / used:.0%} |", flush=True)


if __name__ == "__main__":
    main()
