"""How a search starts at a tight target, and what each way of starting it ends on.

One warm-up of the supernet, then one search per variant at one target from it, each printing per
search epoch the supernet's validation accuracy, E[LAT], lambda and the probability of `zero` in
every layer that can be skipped; then the architectures found are retrained from scratch with the
same recipe and seeds (search/retrain.py) and scored on the test split. Variants:

    ramp      the default: the target ramps from the starting E[LAT] (SearchConfig.target_ramp)
    noramp    the whole target from the first step (target_ramp 0), as before the ramp
    val900    noramp with 900 architecture-validation images instead of 300 (the same 2 700
              training images: the 300 are the first of the 900)
    warmup8   noramp after 8 warm-up epochs instead of 4 (its own warm-up)

Sized for 2 CPU cores (the four variants in 7 minutes at a load of 7):

    python bench/search_start.py --data /usr/share/datasets/fashion-mnist [--target 30%]
        [--variants ramp noramp val900 warmup8] [--seeds 0 1] [--jobs 3]

At 30 % of the range, after the first search epoch, p(zero) was 0.67-0.78 in every skippable
layer without the ramp (all three ways) and 0.22-0.61 with it; retrained (seeds 0 and 1): 82.1 %
ramped, 81.1, 81.1 and 81.0 % the other ways, each skipping 4 of the 8 layers.

Training at 28 px on 2 700 images, batch 64, 4 + 4 search epochs and 4 retraining epochs, as
the sizing of bench/search_quality.py; latency is the table's.
"""

import argparse
import multiprocessing
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from profiler.space.spaces import get_space  # noqa: E402
from profiler.tables.table import LatencyTable  # noqa: E402
from search.config import RETRAIN_LR, SearchConfig  # noqa: E402
from search.data import Dataset, Split, load_data  # noqa: E402
from search.latency import ExpectedLatency  # noqa: E402
from search.retrain import retrain  # noqa: E402
from search.trainer import Searcher  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TRAIN, VAL, RESOLUTION, BATCH, EPOCHS, RETRAIN_EPOCHS = 2700, 300, 28, 64, 4, 4
VARIANTS = {"ramp": {}, "noramp": {"target_ramp": 0.0},
            "val900": {"target_ramp": 0.0, "val": 900}, "warmup8": {"target_ramp": 0.0, "warmup": 8}}
S = {}  # what every process shares: set by _setup


def _setup(data_spec: str, target: str) -> None:
    torch.set_num_threads(1)
    space = get_space("tiny")
    latency = ExpectedLatency(space, LatencyTable.load(ROOT / "data/latency_tables/cpu-tiny.csv"))
    lo, hi = latency.bounds()
    S.update(space=replace(space, resolution=RESOLUTION), latency=latency, data_spec=data_spec,
             target=lo + float(target[:-1]) / 100 * (hi - lo) if target.endswith("%")
             else float(target))


def _data(val: int) -> Dataset:
    """TRAIN training images and the first `val` of one draw of validation images: what
    load_data(..., subset=TRAIN + VAL) holds for val = VAL (Dataset.subset draws in this order)."""
    full = load_data(S["data_spec"], RESOLUTION, seed=0)
    g = torch.Generator().manual_seed(0)
    train = torch.randperm(len(full.train), generator=g)[:TRAIN]
    held = torch.randperm(len(full.val), generator=g)[:val]
    return Dataset(f"{full.name}, subset", Split(full.train.images[train], full.train.labels[train]),
                   Split(full.val.images[held], full.val.labels[held]), full.test, full.classes,
                   RESOLUTION)


def search(name: str) -> dict:
    v = VARIANTS[name]
    t0 = time.perf_counter()
    config = SearchConfig(target_ms=S["target"], warmup_epochs=v.get("warmup", 4), epochs=EPOCHS,
                          batch_size=BATCH, target_ramp=v.get("target_ramp",
                                                              SearchConfig.target_ramp))
    searcher = Searcher(S["space"], S["latency"], _data(v.get("val", VAL)), config, progress=False)
    epochs = []
    for until in range(config.warmup_epochs + 1, config.warmup_epochs + config.epochs + 1):
        searcher.run_epochs(until)
        if until > config.warmup_epochs:
            p_zero = [float(op.probs().detach()[op.names.index("zero")])
                      for op in searcher.net.layers if "zero" in op.names]
            epochs.append(searcher.rows[-1] | {"p_zero": p_zero})
    choices = searcher.derive()
    return {"name": name, "choices": choices, "epochs": epochs,
            "seconds": time.perf_counter() - t0}


def train(choices: list[str], seed: int) -> float:
    _, accuracy = retrain(S["space"], choices, _data(VAL), RETRAIN_EPOCHS, BATCH, RETRAIN_LR,
                          seed=seed, progress=False)
    return accuracy


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a dataset pxsearch reads (an IDX directory)")
    ap.add_argument("--target", default="30%", help="ms, or P%% of the space's latency range")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--jobs", type=int, default=3)
    args = ap.parse_args()
    started = time.perf_counter()
    _setup(args.data, args.target)
    latency = S["latency"]
    print(f"== tiny at {RESOLUTION} px, target {S['target']:.4g} ms; {TRAIN} training images, "
          f"batch {BATCH}, {EPOCHS} search and {RETRAIN_EPOCHS} retraining epochs, seeds "
          f"{args.seeds}", flush=True)
    found, accuracies = {}, {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=context, initializer=_setup,
                             initargs=(args.data, args.target)) as pool:
        trainings = {}
        for done in as_completed([pool.submit(search, n) for n in args.variants]):
            r = done.result()
            found[r["name"]] = r
            print(f"{r['name']}: {' '.join(r['choices'])} ({latency.latency(r['choices']):.4g} ms, "
                  f"{r['choices'].count('zero')} zero) in {r['seconds']:.0f} s; per search epoch: "
                  f"validation accuracy, E[LAT] (ms), lambda, p(zero) of each skippable layer",
                  flush=True)
            for e in r["epochs"]:
                print(f"    {e['epoch']}: {e['val_acc']:.3f} {e['expected_latency_ms']:.4g} "
                      f"{e['lambda']:+.3f}  " + " ".join(f"{p:.2f}" for p in e["p_zero"]),
                      flush=True)
            key = tuple(r["choices"])
            if key not in trainings:
                trainings[key] = {s: pool.submit(train, r["choices"], s) for s in args.seeds}
        for key, runs in trainings.items():
            accuracies[key] = [runs[s].result() for s in args.seeds]
    print(f"\n| variant | table latency (ms) | zero layers | test accuracy (mean, seeds "
          f"{args.seeds}) | per seed | choices |\n|---|---|---|---|---|---|")
    for name in args.variants:
        r, acc = found[name], accuracies[tuple(found[name]["choices"])]
        print(f"| {name} | {latency.latency(r['choices']):.4g} | {r['choices'].count('zero')} "
              f"| {statistics.mean(acc):.4f} | {' '.join(f'{a:.4f}' for a in acc)} "
              f"| {' '.join(r['choices'])} |")
    print(f"in {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
