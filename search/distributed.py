"""The processes of one search: PyTorch's DistributedDataParallel under torchrun, or one process.

A search on N processes is the search on one process with the same global batch, split N ways:

- every rank draws the same gates from the same seeded sampler and the same alpha, so every rank
  runs the same path and DDP averages the weight gradients of one sub-network;
- the architecture gradients are averaged here (`average_`), so Adam moves alpha identically on
  every rank, and the budget's lambda, computed from alpha alone, stays identical too;
- every global batch is split across ranks the way torch's DistributedSampler splits a dataset
  (rank r takes every N-th sample from r), so the ranks together see the single process's batches;
- rank 0 alone writes (checkpoints, logs, outputs); a resume needs the same number of processes,
  since the checkpoint's generator and optimizer states are those of that many.

`torchrun --nproc-per-node N pxsearch ...` starts the ranks (multi-node through its rendezvous);
`pxsearch --nproc N` starts them through torch's own launcher (`launch`).
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from profiler.errors import ToolError, UserError

# The launcher's worker processes know they were started by `pxsearch --nproc`: the launcher speaks
# for them when one fails.
LAUNCHED_ENV = "PXSEARCH_LAUNCHED"
# The exit status of a launched process that lost contact with the others (one of them failed).
LOST = 3
# ... and of one the launcher stopped (SIGTERM: an interruption) after another failed.
STOPPED = (130, -15)


@dataclass(frozen=True)
class World:
    """This process's place among the processes of one search (one process: rank 0 of 1)."""
    rank: int = 0
    size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def shard(self, idx: torch.Tensor, even: bool) -> torch.Tensor:
        """This rank's part of a global batch of indices: every size-th from rank. `even` first
        drops the last len % size samples, so every rank steps on a batch of one size (DDP
        averages per-rank means, which is the global mean only for equal parts)."""
        if self.size == 1:
            return idx
        if even:
            idx = idx[:len(idx) - len(idx) % self.size]
        return idx[self.rank::self.size]

    def wrap(self, net: torch.nn.Module) -> torch.nn.Module:
        """`net` under DistributedDataParallel (the same module on one process)."""
        if not self.distributed:
            return net
        from torch.nn.parallel import DistributedDataParallel
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(net, device_ids=ids)

    def average_(self, tensors: list[torch.Tensor]) -> None:
        """Replace every tensor by its mean over the ranks (one all-reduce of their concatenation)."""
        if not self.distributed or not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        dist.all_reduce(flat)
        flat /= self.size
        at = 0
        for t in tensors:
            t.copy_(flat[at:at + t.numel()].view_as(t))
            at += t.numel()

    def sum(self, values: list[float]) -> list[float]:
        """The sums over the ranks of a few numbers (counts, losses)."""
        if not self.distributed:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def join(device: str | None = None) -> World:
    """This process's World: torchrun's (its environment names RANK and WORLD_SIZE), with NCCL
    on GPUs and gloo on CPUs, or one process. `device`: cpu, cuda, or None for cuda where one is
    present."""
    want = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if want not in ("cpu", "cuda"):
        raise UserError(f"--device {device!r}: give cpu or cuda")
    if want == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: torch sees no GPU here")
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World(device=torch.device(want))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if want == "cuda":
        if local >= torch.cuda.device_count():
            raise UserError(f"{os.environ.get('LOCAL_WORLD_SIZE', '?')} processes on this machine but "
                            f"{torch.cuda.device_count()} GPU(s): one process per GPU")
        torch.cuda.set_device(local)
        where = torch.device("cuda", local)
    else:
        where = torch.device("cpu")
    dist.init_process_group("nccl" if want == "cuda" else "gloo")
    return World(rank, size, where)


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def check_nproc(nproc: int, device: str | None) -> None:
    """Refuse more processes than this machine can run one per GPU, or one per CPU core."""
    gpus = torch.cuda.device_count() if device != "cpu" and torch.cuda.is_available() else 0
    if device == "cuda" or gpus:
        if nproc > gpus:
            raise UserError(f"--nproc {nproc}: this machine has {gpus} GPU(s); one process per GPU")
        return
    cores = usable_cores()
    if nproc > cores:
        raise UserError(f"--nproc {nproc}: this machine lets pxsearch use {cores} CPU core(s); "
                        f"give at most {cores} processes")


def launch(nproc: int, argv: list[str]) -> None:
    """Run `pxsearch ARGV` as `nproc` processes on this machine through torch's elastic launcher
    (what torchrun --standalone does); a failed process fails the launch with one line."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    # The launcher's own chatter (process start, the closing signals it sends, its log line of a
    # failed process) is not the user's business; a failure is reported below, in one line. Its
    # loggers set their own levels, so each is quietened.
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    cores = usable_cores()
    # Every process gets its share of the cores (torchrun would give each one thread, and warn).
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cores // nproc)))
    os.environ[LAUNCHED_ENV] = "1"
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0,
                          monitor_interval=0.1)
    try:
        elastic_launch(config, sys.executable)("-m", "search.cli", *argv)
    except ChildFailedError as exc:
        raise _failure(exc, nproc) from None
    except SignalException:
        # Ctrl-C or a kill: the launcher has stopped the processes; said like any interruption.
        raise KeyboardInterrupt from None


def _failure(exc, nproc: int) -> Exception:
    """The error that says which process ended first and how; a user error (exit 2) stays one."""
    # The processes that lost the others or were stopped are not the cause, if there is another.
    rank, first = min(exc.failures.items(),
                      key=lambda kv: (kv[1].exitcode in (LOST, *STOPPED), kv[1].timestamp))
    code = first.exitcode
    if code == 2:
        # The process said why on stderr already (every rank checks the same input).
        return SystemExit(2)
    how = f"was killed by signal {first.signal_name()}" if code < 0 else f"exited with status {code}"
    return ToolError(f"search process {rank} of {nproc} {how}; the processes were stopped, the last "
                     f"finished epoch is kept: rerun with --resume")
