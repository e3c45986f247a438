"""One process of a small search through the library, started by the tests as torchrun starts its
processes (or called alone: main(OUT, "two")): it writes what every process must agree on to
OUT/rank{R}-of-{N}.pt.

    python -m torch.distributed.run --standalone --nproc-per-node 2 distributed_worker.py OUT
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from profiler.space.spaces import get_space  # noqa: E402
from search import SearchConfig, join  # noqa: E402
from search.data import Split, load_data  # noqa: E402
from search.latency import ExpectedLatency  # noqa: E402
from search.trainer import Searcher  # noqa: E402

from search_fixtures import synthetic_table  # noqa: E402


def main(out: Path, mode: str) -> None:
    world = join("cpu")
    space = get_space("tiny")
    latency = ExpectedLatency(space, synthetic_table(space))
    data = load_data("digits", space.resolution, seed=0)
    data.train = Split(data.train.images[:256], data.train.labels[:256])
    data.val = Split(data.val.images[:128], data.val.labels[:128])
    lo, hi = latency.bounds()
    # The whole target from the first step (no ramp): the latency gradient, the same on every
    # process, then moves the architecture, and one process and two differ only by the batch-norm
    # statistics each takes over its part of a batch.
    config = SearchConfig(target_ms=lo + 0.3 * (hi - lo), mode=mode, warmup_epochs=1, epochs=2,
                          batch_size=64, seed=1, select=2, target_ramp=0.0)
    searcher = Searcher(space, latency, data, config, progress=False, world=world)
    searcher.run()
    torch.save({"alpha": [p.detach().clone() for p in searcher.net.arch_parameters()],
                "lambda": searcher.loss.lam,
                "weights": {k: p.detach().clone() for k, p in searcher.net.named_parameters()},
                "rows": searcher.rows},
               out / f"rank{world.rank}-of-{world.size}.pt")
    world.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "two")
