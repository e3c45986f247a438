"""Does searching beat picking at random at the same latency?

The search (pxsearch's defaults) runs on a space with latencies from a shipped table; then the
searched architecture, at least five random architectures whose table latency is within ±3 % of
it, and for `proxyless-mobile` the paper's published `proxyless_mobile` choices, are each retrained
from scratch with the same recipe and seeds (search/retrain.py) and scored on the test split:
accuracy and cross-entropy (on digits accuracy saturates; the loss still ranks).

Latency is always the table's, at the table's resolution (224 px for `proxyless-mobile`); training
may run at a smaller `--resolution` so the deep preset fits a CPU, in which case the accuracies are
those of the same architectures on smaller images.

    python bench/search_quality.py [--space tiny] [--table data/latency_tables/cpu-tiny.csv]
                                   [--resolution R] [--data digits|CIFAR_DIR] [--target 50%]
                                   [--random 5] [--seeds 0 1 2] [--retrain-epochs 15]
                                   [--warmup-epochs N] [--epochs N] [--out build/bench]
"""

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from profiler.space.spaces import get_space  # noqa: E402
from profiler.tables.table import LatencyTable  # noqa: E402
from search.config import RETRAIN_LR, SearchConfig  # noqa: E402
from search.data import load_data  # noqa: E402
from search.latency import ExpectedLatency  # noqa: E402
from search.retrain import retrain  # noqa: E402
from search.trainer import Searcher  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# ProxylessNAS's published mobile network (Cai et al., 2019, Figure 4) as choices of the 21
# searchable layers of `proxyless-mobile`; the published net widens the first stage to 32 channels,
# which this space keeps at 24.
PAPER = {"proxyless-mobile": [
    "k5_e3", "k3_e3", "zero", "zero",
    "k7_e3", "k3_e3", "k5_e3", "k5_e3",
    "k7_e6", "k5_e3", "k5_e3", "k5_e3",
    "k5_e6", "k5_e3", "k5_e3", "k5_e3",
    "k7_e6", "k7_e6", "k7_e3", "k7_e3",
    "k7_e6"]}
TOLERANCE = 0.03


def random_architectures(space, latency, target_ms: float, n: int, seed: int,
                         tries: int = 200_000) -> list[list[str]]:
    """`n` distinct uniformly drawn architectures within TOLERANCE of `target_ms`."""
    rng, found = random.Random(seed), []
    for _ in range(tries):
        choices = [rng.choice(layer.ops) for layer in space.layers()]
        if abs(latency.latency(choices) / target_ms - 1) <= TOLERANCE and choices not in found:
            found.append(choices)
            if len(found) == n:
                return found
    sys.exit(f"only {len(found)} random architectures within {TOLERANCE:.0%} of {target_ms:.4g} ms "
             f"in {tries} draws")


def test_loss(net, data) -> float:
    total = 0.0
    with torch.no_grad():
        for x, y in data.batches(data.test, 256):
            total += float(F.cross_entropy(net(x), y, reduction="sum"))
    return total / len(data.test)


def score(space, choices, data, args) -> dict:
    runs = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        net, accuracy = retrain(space, choices, data, args.retrain_epochs, args.batch_size,
                                RETRAIN_LR, seed=seed, progress=False)
        runs.append({"seed": seed, "accuracy": accuracy, "loss": test_loss(net, data),
                     "seconds": time.perf_counter() - t0})
    return {"accuracy": statistics.mean(r["accuracy"] for r in runs),
            "loss": statistics.mean(r["loss"] for r in runs), "runs": runs}


def spread(values) -> str:
    values = list(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {std:.4f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="tiny")
    ap.add_argument("--table", type=Path, default=None,
                    help="latency table (default: data/latency_tables/cpu-SPACE.csv)")
    ap.add_argument("--resolution", type=int, default=None, help="train at this resolution")
    ap.add_argument("--data", default="digits")
    ap.add_argument("--target", default="50%", help="ms, or P%% of the space's latency range")
    ap.add_argument("--random", type=int, default=5)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--retrain-epochs", type=int, default=15)
    ap.add_argument("--batch-size", type=int, default=SearchConfig.batch_size)
    ap.add_argument("--warmup-epochs", type=int, default=SearchConfig.warmup_epochs)
    ap.add_argument("--epochs", type=int, default=SearchConfig.epochs)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("build/bench/search_quality"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out / f"{args.space}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True)

    space = get_space(args.space)
    table_path = args.table or ROOT / "data" / "latency_tables" / f"cpu-{args.space}.csv"
    table = LatencyTable.load(table_path)
    latency = ExpectedLatency(space, table)
    trained = replace(space, resolution=args.resolution or space.resolution)
    data = load_data(args.data, trained.resolution, seed=0)
    lo, hi = latency.bounds()
    target = lo + float(args.target[:-1]) / 100 * (hi - lo) if args.target.endswith("%") \
        else float(args.target)
    print(f"== {space.name}: table {table_path.name}, latency range {lo:.4g} .. {hi:.4g} ms, "
          f"target {target:.4g} ms; training at {trained.resolution} px on {data.describe()}",
          flush=True)

    t0 = time.perf_counter()
    config = SearchConfig(target_ms=target, warmup_epochs=args.warmup_epochs, epochs=args.epochs,
                          batch_size=args.batch_size)
    searcher = Searcher(trained, latency, data, config, progress=False, warn=print)
    searched = searcher.run()
    search_seconds = time.perf_counter() - t0
    print(f"searched in {search_seconds:.0f} s (lr {searcher.lr:.4g}): {' '.join(searched)}")
    print("supernet validation accuracy per epoch: " +
          " ".join(f"{r['val_acc']:.3f}" for r in searcher.rows), flush=True)

    candidates = {"searched": searched}
    at = latency.latency(searched)
    for i, choices in enumerate(random_architectures(space, latency, at, args.random, seed=1)):
        candidates[f"random {i + 1}"] = choices
    if space.name in PAPER:
        candidates["paper"] = PAPER[space.name]
    results = {}
    for name, choices in candidates.items():
        results[name] = {"choices": choices, "latency_ms": latency.latency(choices)} | \
            score(trained, choices, data, args)
        r = results[name]
        print(f"  {name:10s} {r['latency_ms']:8.4g} ms  accuracy {r['accuracy']:.4f}  "
              f"loss {r['loss']:.4f}", flush=True)

    randoms = [r for name, r in results.items() if name.startswith("random")]
    accuracies = lambda rs: [run["accuracy"] for r in rs for run in r["runs"]]  # noqa: E731
    losses = lambda rs: [run["loss"] for r in rs for run in r["runs"]]  # noqa: E731
    print(f"\n| {space.name} @ {trained.resolution} px | table latency (ms) | test accuracy "
          f"| test loss |\n|---|---|---|---|")
    print(f"| searched | {at:.4g} | {spread(accuracies([results['searched']]))} "
          f"| {spread(losses([results['searched']]))} |")
    print(f"| {len(randoms)} random (±{TOLERANCE:.0%}) | "
          f"{min(r['latency_ms'] for r in randoms):.4g} .. {max(r['latency_ms'] for r in randoms):.4g} "
          f"| {spread(accuracies(randoms))} | {spread(losses(randoms))} |")
    if "paper" in results:
        p = results["paper"]
        print(f"| paper's {space.name} | {p['latency_ms']:.4g} | {spread(accuracies([p]))} "
              f"| {spread(losses([p]))} |")
    (out / "results.json").write_text(json.dumps(
        {"space": space.name, "table": table_path.name, "resolution": trained.resolution,
         "data": data.describe(), "target_ms": target, "seeds": args.seeds,
         "retrain_epochs": args.retrain_epochs, "search_seconds": search_seconds,
         "search_log": searcher.rows, "results": results}, indent=1))
    print(f"wrote {out / 'results.json'}")


if __name__ == "__main__":
    main()
