"""Does searching beat picking at random at the same latency?

One warm-up of the supernet, then one search per target from it (as `pxsearch --target-latency A B C`
does); then, per target, the searched architecture and at least five random architectures whose
table latency is within ±3 % of it, plus hand-designed references (every layer `k3_e6`,
MobileNetV2's choice; for `proxyless-mobile` the paper's published choices), are each retrained
from scratch with the same recipe and seeds (search/retrain.py) and scored on the test split:
accuracy (with --test-loss, cross-entropy too). The searched network is the one the search
selects (SearchConfig.select); beside it are retrained, where they differ from it, the most likely
architecture (what the search returns with --select 0, as the paper: `likely`); the candidate
of the selection with the lowest validation loss inside the supernet is reported. It also
measures how well the supernet ranks the networks it chose among: Spearman's rank correlation
between each network's accuracy (and loss) inside the supernet (validation split, shared weights)
and its stand-alone test accuracy.

Latency is always the table's, at the table's resolution; training may run at a smaller
`--resolution` (the accuracies are then those of the same architectures on smaller images).
Retraining runs in `--jobs` processes of one thread each. Writes results.json, pareto.csv and
pareto.png in a fresh folder under --out.

    python bench/search_quality.py [--space tiny] [--table data/latency_tables/cpu-tiny.csv]
                                   [--resolution R] [--data digits|DIR] [--train-subset N]
                                   [--targets 30% 50% 70%] [--random 5] [--seeds 0 1 2] [--select N]
                                   [--target-ramp F]
                                   [--retrain-epochs 15] [--warmup-epochs N] [--epochs N]
                                   [--batch-size B] [--test-loss] [--jobs 2] [--out build/bench]
                                   [--reuse EARLIER_OUTPUT...]

Sized for 2 CPU cores (57 minutes, shared with other work) on Fashion-MNIST
(apt-get install dataset-fashion-mnist):

    python bench/search_quality.py --data /usr/share/datasets/fashion-mnist --train-subset 3000 \
        --resolution 28 --batch-size 64 --warmup-epochs 4 --epochs 4 --retrain-epochs 4 \
        --targets 30% 50% 75%

and with --select 16 (65 minutes) it retrains the selected networks beside the most likely ones.
With --reuse of an earlier output made with the same data and retraining settings, the networks
retrained there (the random and hand-designed ones, when only the search changed) are not
retrained again: 23 minutes at a load of 8, where only the searched networks were new.
"""

import argparse
import json
import math
import multiprocessing
import random
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
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
from search.pareto import KINDS, Point, write_pareto  # noqa: E402
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
HAND = "k3_e6"  # MobileNetV2's block in every layer
TOLERANCE = 0.03

# What every process of the bench shares: set by _setup (in each worker too).
S = {}


def _setup(args) -> None:
    torch.set_num_threads(args.threads)
    space = get_space(args.space)
    table_path = args.table or ROOT / "data" / "latency_tables" / f"cpu-{args.space}.csv"
    S.update(args=args, space=space, table_path=table_path,
             latency=ExpectedLatency(space, LatencyTable.load(table_path)),
             trained=replace(space, resolution=args.resolution or space.resolution))
    S["data"] = load_data(args.data, S["trained"].resolution, seed=0, subset=args.train_subset)


def _config(target: float) -> SearchConfig:
    a = S["args"]
    return SearchConfig(target_ms=target, warmup_epochs=a.warmup_epochs, epochs=a.epochs,
                        batch_size=a.batch_size, select=a.select, target_ramp=a.target_ramp)


def _searcher(target: float, out: Path | None = None) -> Searcher:
    return Searcher(S["trained"], S["latency"], S["data"], _config(target), out_dir=out,
                    progress=False, warn=print)


def random_architectures(target_ms: float, n: int, seed: int, tries: int = 200_000):
    """`n` distinct uniformly drawn architectures within TOLERANCE of `target_ms`."""
    space, latency = S["space"], S["latency"]
    rng, found = random.Random(seed), []
    for _ in range(tries):
        choices = [rng.choice(layer.ops) for layer in space.layers()]
        if abs(latency.latency(choices) / target_ms - 1) <= TOLERANCE and choices not in found:
            found.append(choices)
            if len(found) == n:
                return found
    sys.exit(f"only {len(found)} random architectures within {TOLERANCE:.0%} of {target_ms:.4g} ms "
             f"in {tries} draws")


def search_target(target: float, warm: Path) -> dict:
    """One target's search from the shared warm-up, its random networks, and every one of them
    scored inside the searched supernet."""
    t0 = time.perf_counter()
    searcher = _searcher(target)
    searcher.start_from(warm)
    choices = searcher.run()
    seconds = time.perf_counter() - t0
    randoms = random_architectures(S["latency"].latency(choices), S["args"].random, seed=1)
    inside = [supernet_scores(searcher, c) for c in [choices] + randoms]
    # The selection's candidates by the other score, validation loss, to compare the two.
    by_loss = min(searcher.selection, key=lambda r: supernet_scores(searcher, r["choices"])[1],
                  default={"choices": choices})["choices"]
    return {"choices": choices, "likely": searcher.derive(), "by_loss": by_loss,
            "selection": searcher.selection, "randoms": randoms,
            "supernet_val": [acc for acc, _ in inside],
            "supernet_loss": [loss for _, loss in inside],
            "rows": searcher.rows[S["args"].warmup_epochs:], "seconds": seconds,
            "lr": searcher.lr}


def supernet_scores(searcher: Searcher, choices: list[str]) -> tuple[float, float]:
    """One architecture inside the supernet: validation accuracy and cross-entropy."""
    accuracy = searcher.evaluate(choices, S["data"].val)  # leaves it fixed and recalibrated
    return accuracy, mean_loss(searcher.net, S["data"], S["data"].val)


def mean_loss(net, data, split) -> float:
    total = 0.0
    net.eval()
    with torch.no_grad():
        for x, y in data.batches(split, 256):
            total += float(F.cross_entropy(net(x), y, reduction="sum"))
    return total / len(split)


def train_one(choices: list[str], seed: int) -> dict:
    a, data = S["args"], S["data"]
    t0 = time.perf_counter()
    net, accuracy = retrain(S["trained"], choices, data, a.retrain_epochs, a.batch_size,
                            RETRAIN_LR, seed=seed, progress=False)
    return {"seed": seed, "accuracy": accuracy,
            "loss": mean_loss(net, data, data.test) if a.test_loss else None,
            "seconds": time.perf_counter() - t0}


def earlier_runs(folders) -> dict:
    """(choices, seed) -> a retraining run of an earlier output of this bench (--reuse) that this
    one would repeat exactly: retraining is deterministic, and the same architecture, data, recipe
    and seed give the same accuracy. Only a folder made with this one's settings serves."""
    a, found = S["args"], {}
    mine = {"space": S["space"].name, "resolution": S["trained"].resolution,
            "data": S["data"].describe(), "retrain_epochs": a.retrain_epochs,
            "batch_size": a.batch_size, "retrain_lr": RETRAIN_LR}
    for folder in folders:
        try:
            done = json.loads((folder / "results.json").read_text())
        except (OSError, ValueError):
            sys.exit(f"--reuse {folder}: no results.json of this bench there")
        differ = [k for k in mine if done.get(k, mine[k]) != mine[k]]
        if differ:
            k = differ[0]
            sys.exit(f"--reuse {folder}: made with {k} {done[k]!r}, this run has {mine[k]!r}")
        for r in done["results"].values():
            for run in r["runs"]:
                if run["loss"] is not None or not a.test_loss:
                    found[(tuple(r["choices"]), run["seed"])] = run
    return found


def spread(values) -> str:
    values = list(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {std:.4f}"


def _std(values) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def spearman(a, b) -> float:
    from scipy.stats import spearmanr
    return float(spearmanr(a, b).statistic)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="tiny")
    ap.add_argument("--table", type=Path, default=None,
                    help="latency table (default: data/latency_tables/cpu-SPACE.csv)")
    ap.add_argument("--resolution", type=int, default=None, help="train at this resolution")
    ap.add_argument("--data", default="digits")
    ap.add_argument("--train-subset", type=int, default=None,
                    help="training images kept (weight training and validation together)")
    ap.add_argument("--targets", nargs="+", default=["30%", "50%", "70%"],
                    help="ms, or P%% of the space's latency range")
    ap.add_argument("--random", type=int, default=5)
    ap.add_argument("--select", type=int, default=SearchConfig.select,
                    help="candidates the search scores inside the supernet after searching "
                         "(SearchConfig.select; 0: the most likely architecture)")
    ap.add_argument("--target-ramp", type=float, default=SearchConfig.target_ramp,
                    help="SearchConfig.target_ramp (0: the search before the ramp)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--retrain-epochs", type=int, default=15)
    ap.add_argument("--batch-size", type=int, default=SearchConfig.batch_size)
    ap.add_argument("--warmup-epochs", type=int, default=SearchConfig.warmup_epochs)
    ap.add_argument("--epochs", type=int, default=SearchConfig.epochs)
    ap.add_argument("--test-loss", action="store_true",
                    help="also the test cross-entropy (ranks where accuracy saturates, as on digits)")
    ap.add_argument("--jobs", type=int, default=2, help="processes that search and retrain")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--out", type=Path, default=Path("build/bench/search_quality"))
    ap.add_argument("--reuse", type=Path, nargs="+", default=[], metavar="DIR",
                    help="earlier outputs of this bench: a network retrained there with the same "
                         "seed and settings is not retrained again")
    args = ap.parse_args()
    started = time.perf_counter()
    _setup(args)
    space, latency, trained, data = S["space"], S["latency"], S["trained"], S["data"]
    out = args.out / f"{space.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True)
    lo, hi = latency.bounds()
    targets = [lo + float(t[:-1]) / 100 * (hi - lo) if t.endswith("%") else float(t)
               for t in args.targets]
    print(f"== {space.name}: table {S['table_path'].name}, latency range {lo:.4g} .. {hi:.4g} ms, "
          f"targets {', '.join(f'{t:.4g}' for t in targets)} ms; training at {trained.resolution} px "
          f"on {data.describe()}; search: {args.warmup_epochs} warm-up + {args.epochs} epochs, "
          f"batch {args.batch_size}, target ramp {args.target_ramp:g}; retraining: "
          f"{args.retrain_epochs} epochs, seeds {args.seeds}; {args.jobs} processes of "
          f"{args.threads} thread(s)", flush=True)

    t0 = time.perf_counter()
    warm = _searcher(targets[0], out / "warmup")
    (out / "warmup").mkdir()
    warm.run_epochs(args.warmup_epochs)
    warm.save_checkpoint()
    warm_seconds = time.perf_counter() - t0
    print(f"warm-up in {warm_seconds:.0f} s (lr {warm.lr:.4g}); supernet validation accuracy per "
          f"epoch: " + " ".join(f"{r['val_acc']:.3f}" for r in warm.rows), flush=True)

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=context, initializer=_setup,
                             initargs=(args,)) as pool:
        searches = list(pool.map(search_target, targets, [warm.checkpoint_path] * len(targets)))
        (out / "searches.json").write_text(json.dumps(searches, indent=1))
        candidates = {}  # name -> (kind, target index or None, choices)
        for i, (target, s) in enumerate(zip(targets, searches)):
            print(f"target {target:.4g} ms: searched in {s['seconds']:.0f} s: "
                  f"{' '.join(s['choices'])} ({latency.latency(s['choices']):.4g} ms); supernet "
                  f"validation accuracy per epoch: "
                  + " ".join(f"{r['val_acc']:.3f}" for r in s["rows"]) + "; E[LAT] (ms): "
                  + " ".join(f"{r['expected_latency_ms']:.4g}" for r in s["rows"]), flush=True)
            for r in s["selection"]:
                print(f"  candidate {r['latency_ms']:.4g} ms, supernet validation accuracy "
                      f"{r['val_acc']:.3f}{' (most likely)' if r['derived'] else ''}: "
                      f"{' '.join(r['choices'])}", flush=True)
            candidates[f"searched@{i + 1}"] = ("searched", i, s["choices"])
            if s["likely"] != s["choices"]:  # what the search returns with --select 0
                candidates[f"likely@{i + 1}"] = ("likely", i, s["likely"])
            for j, choices in enumerate(s["randoms"]):
                candidates[f"random@{i + 1}.{j + 1}"] = ("random", i, choices)
        if all(HAND in layer.ops for layer in space.layers()):
            candidates[f"all-{HAND}"] = ("reference", None, [HAND] * len(space.layers()))
        if space.name in PAPER:
            candidates["paper"] = ("reference", None, PAPER[space.name])
        # Seed by seed: should the bench be stopped, every network has as many runs as the others.
        jobs = [(name, seed) for seed in args.seeds for name in candidates]
        reused = earlier_runs(args.reuse)
        todo = [(n, s) for n, s in jobs if (tuple(candidates[n][2]), s) not in reused]
        fresh = pool.map(train_one, [candidates[n][2] for n, _ in todo], [s for _, s in todo])
        results = {name: {"kind": kind, "target": i, "choices": choices,
                          "latency_ms": latency.latency(choices), "runs": []}
                   for name, (kind, i, choices) in candidates.items()}
        with open(out / "runs.jsonl", "w") as log:
            for name, seed in jobs:
                earlier = reused.get((tuple(candidates[name][2]), seed))
                run = earlier | {"reused": True} if earlier else next(fresh)
                results[name]["runs"].append(run)
                log.write(json.dumps({"name": name, "choices": candidates[name][2]} | run) + "\n")
                log.flush()
                r = results[name]
                print(f"  seed {run['seed']} {name:14s} {r['latency_ms']:8.4g} ms  accuracy "
                      f"{run['accuracy']:.4f}" + (f"  loss {run['loss']:.4f}" if run["loss"]
                                                  is not None else "")
                      + ("  (reused)" if earlier else ""), flush=True)
    for r in results.values():
        r["accuracy"] = statistics.mean(x["accuracy"] for x in r["runs"])
        r["accuracy_std"] = _std([x["accuracy"] for x in r["runs"]])
    print(f"\n| network | table latency (ms) | test accuracy (mean ± std, {len(args.seeds)} seeds) "
          f"| choices |\n|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['latency_ms']:.4g} | {r['accuracy']:.4f} ± {r['accuracy_std']:.4f} "
              f"| {' '.join(r['choices'])} |")

    # The supernet's ranking: inside the supernet each target searched with, its networks.
    ranking = {}
    for i, s in enumerate(searches):
        names = [f"searched@{i + 1}"] + [f"random@{i + 1}.{j + 1}" for j in range(args.random)]
        standalone = [results[n]["accuracy"] for n in names]
        ranking[f"target {i + 1}"] = {
            "supernet_val": s["supernet_val"], "standalone_test": standalone,
            "spearman_all": spearman(s["supernet_val"], standalone),
            "spearman_random": spearman(s["supernet_val"][1:], standalone[1:]),
            "spearman_random_by_loss": spearman([-x for x in s["supernet_loss"][1:]],
                                                standalone[1:])}
    # ... and inside the warm-up supernet, which has not yet chosen: every random network.
    pooled = [n for n, r in results.items() if r["kind"] == "random"]
    warm_val = [warm.evaluate(results[n]["choices"], data.val) for n in pooled]
    ranking["warm-up, all random"] = {
        "supernet_val": warm_val, "standalone_test": [results[n]["accuracy"] for n in pooled],
        "spearman_random": spearman(warm_val, [results[n]["accuracy"] for n in pooled])}

    accuracies = lambda names: [x["accuracy"] for n in names for x in results[n]["runs"]]  # noqa: E731
    print(f"\n| {space.name} @ {trained.resolution} px, {data.describe()} | table latency (ms) "
          f"| test accuracy (mean ± std over seeds{', pooled over networks' if args.random > 1 else ''}) "
          f"| best random (mean over seeds) | searched − best random |\n|---|---|---|---|---|")
    for i, target in enumerate(targets):
        name = f"searched@{i + 1}"
        randoms = [f"random@{i + 1}.{j + 1}" for j in range(args.random)]
        best = max(results[n]["accuracy"] for n in randoms)
        print(f"| target {target:.4g} ms: searched | {results[name]['latency_ms']:.4g} "
              f"| {spread(accuracies([name]))} | | {results[name]['accuracy'] - best:+.4f} |")
        if f"likely@{i + 1}" in results:  # the search without selection
            r = results[f"likely@{i + 1}"]
            print(f"| most likely (--select 0) | {r['latency_ms']:.4g} "
                  f"| {spread(accuracies([f'likely@{i + 1}']))} | | {r['accuracy'] - best:+.4f} |")
        print(f"| {args.random} random (±{TOLERANCE:.0%}) | "
              f"{min(results[n]['latency_ms'] for n in randoms):.4g} .. "
              f"{max(results[n]['latency_ms'] for n in randoms):.4g} "
              f"| {spread(accuracies(randoms))} | {best:.4f} | |")
    for name, r in results.items():
        if r["kind"] == "reference":
            print(f"| {name} | {r['latency_ms']:.4g} | {spread(accuracies([name]))} | | |")
    print("\nlayers skipped (`zero`): " + "; ".join(
        f"target {target:.4g} ms: searched {results[f'searched@{i + 1}']['choices'].count('zero')}, "
        f"random " + " ".join(str(results[f"random@{i + 1}.{j + 1}"]["choices"].count("zero"))
                              for j in range(args.random))
        for i, target in enumerate(targets)))
    print("\nseeds per network to tell each difference from zero (two-sided 5 %, power 80 %: "
          "n = 2 (1.96 + 0.84)^2 s^2 / d^2, s the seed-to-seed std of the two networks):")
    for i, target in enumerate(targets):
        name = f"searched@{i + 1}"
        best = max((f"random@{i + 1}.{j + 1}" for j in range(args.random)),
                   key=lambda n: results[n]["accuracy"])
        d = results[name]["accuracy"] - results[best]["accuracy"]
        s2 = (results[name]["accuracy_std"] ** 2 + results[best]["accuracy_std"] ** 2) / 2
        print(f"  target {target:.4g} ms: searched − best random {d:+.4f}, s {s2 ** 0.5:.4f}: "
              f"{math.ceil(2 * (1.96 + 0.84) ** 2 * s2 / d ** 2) if d else 'any number of'} seeds")
    print("\nsupernet ranking (Spearman, supernet validation accuracy vs stand-alone test "
          "accuracy):")
    for name, r in ranking.items():
        print(f"  {name}: " + ", ".join(f"{k} {v:+.2f}" for k, v in r.items()
                                        if k.startswith("spearman")))

    points = [Point(r["kind"], name, r["latency_ms"], r["accuracy"], r["accuracy_std"],
                    targets[r["target"]] if r["target"] is not None else None)
              for name, r in results.items() if r["kind"] in KINDS]
    write_pareto(out, points, f"{space.name} on {data.name} ({trained.resolution} px, "
                              f"{len(args.seeds)} seeds)")
    total = time.perf_counter() - started
    (out / "results.json").write_text(json.dumps(
        {"space": space.name, "table": S["table_path"].name, "resolution": trained.resolution,
         "data": data.describe(), "train_subset": args.train_subset, "targets_ms": targets,
         "seeds": args.seeds, "retrain_epochs": args.retrain_epochs, "retrain_lr": RETRAIN_LR,
         "warmup_epochs": args.warmup_epochs, "epochs": args.epochs,
         "target_ramp": args.target_ramp,
         "batch_size": args.batch_size, "warmup_seconds": warm_seconds,
         "warmup_log": warm.rows, "searches": searches, "results": results, "ranking": ranking,
         "seconds": total}, indent=1))
    print(f"wrote {out / 'results.json'}, {out / 'pareto.png'} in {total / 60:.1f} min")


if __name__ == "__main__":
    main()
