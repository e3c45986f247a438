"""Weight training on the training split: the one loop that the search's weight steps and the
retraining of a derived network share (the recipe is search/recipe.py).

One step: this process's part of a global batch (search/distributed.py), forward (under bf16
autocast if asked), cross-entropy with label smoothing, backward (DDP averages the gradients across
processes), SGD, then the learning-rate scheduler. Batches are drawn from a permutation seeded by
the epoch, so an interrupted run resumes on the batches it would have seen.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from profiler.files import atomic_path

from .data import Dataset, Split
from .distributed import World
from .recipe import LABEL_SMOOTHING, schedule, sgd



def _read_state(path: Path) -> dict | None:
    """A training checkpoint, or None where there is none that can be read (then training
    starts afresh: the file is this loop's own, rewritten after the first epoch)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return None
    return state if isinstance(state, dict) and isinstance(state.get("epoch"), int) else None


def correct(logits: torch.Tensor, labels: torch.Tensor) -> int:
    return int((logits.argmax(1) == labels).sum())


def steps_per_epoch(samples: int, batch_size: int, processes: int = 1) -> int:
    """Global batches of an epoch; a last one smaller than the number of processes is dropped
    (World.shard)."""
    full, rest = divmod(samples, batch_size)
    return full + (1 if rest >= processes else 0)


class Trainer:
    """Trains the `params` of `net` for `phases` (a list of epoch counts, each with its own cosine
    learning rate; the first epoch of all ramps it up)."""

    def __init__(self, net: torch.nn.Module, params, data: Dataset, batch_size: int, lr: float,
                 phases: list[int], momentum: float = 0.9, weight_decay: float = 4e-5,
                 seed: int = 0, world: World | None = None, precision: str = "fp32"):
        self.world = world or World()
        self.net = net.to(self.world.device)
        self.model = self.world.wrap(self.net)
        self.data, self.batch_size, self.seed, self.precision = data, batch_size, seed, precision
        self.steps = steps_per_epoch(len(data.train), batch_size, self.world.size)
        self.w_opt = sgd(params, lr, momentum, weight_decay)
        self.schedule = schedule(self.w_opt, [e * self.steps for e in phases], warmup=self.steps)

    def autocast(self):
        return torch.autocast(self.world.device.type, dtype=torch.bfloat16,
                              enabled=self.precision == "bf16")

    def on_device(self, batches):
        for x, y in batches:
            yield x.to(self.world.device), y.to(self.world.device)

    def batches(self, split: Split, batch_size: int, seed: int | None = None):
        """This process's part of every batch of `split`, on its device: the training split's in
        parts of one size (DDP steps on all of them), any other split's all of it."""
        part = functools.partial(self.world.shard, even=seed is not None)
        return self.on_device(self.data.batches(split, batch_size, seed=seed, part=part))

    def train_batches(self, epoch: int):
        return self.batches(self.data.train, self.batch_size, seed=self.seed * 1_000_003 + epoch * 1_009)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def after_backward(self) -> None:
        """What happens to the gradients before the optimizer step (nothing here)."""

    def weight_step(self, x, y) -> tuple[float, int]:
        """One SGD step; returns this process's loss and its number of correct predictions."""
        self.net.train()
        with self.autocast():
            logits = self.forward(x)
            loss = F.cross_entropy(logits, y, label_smoothing=LABEL_SMOOTHING)
        self.w_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.after_backward()
        self.w_opt.step()
        self.schedule.step()
        return float(loss.detach()), correct(logits, y)

    def train_epoch(self, epoch: int, bar, between=None) -> dict:
        """Weight steps over one epoch; `between(step)` runs after each (the architecture steps).
        Returns the learning rate of the last step and the training loss and accuracy over every
        process."""
        lr, loss_sum, hits, seen = float("nan"), 0.0, 0, 0
        for j, (x, y) in enumerate(self.train_batches(epoch)):
            lr = self.w_opt.param_groups[0]["lr"]
            loss, n_correct = self.weight_step(x, y)
            loss_sum, hits, seen = loss_sum + loss, hits + n_correct, seen + len(y)
            if between is not None:
                between(j)
            bar.update()
        loss_sum, hits, seen = self.world.sum([loss_sum, hits, seen])
        return {"lr": lr, "train_loss": loss_sum / max(self.steps * self.world.size, 1),
                "train_acc": hits / max(seen, 1)}

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "w_opt": self.w_opt.state_dict(),
                "schedule": self.schedule.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.schedule.load_state_dict(state["schedule"])

    def fit(self, epochs: int, desc: str, progress: bool = True, checkpoint: Path | None = None,
            run: dict | None = None) -> None:
        """Train for `epochs`. With a `checkpoint` file, the state is saved there after every
        epoch (by rank 0), and training continues from it when it holds this very `run` (a
        description of everything the training depends on); anything else there is replaced."""
        start = 0
        state = _read_state(checkpoint) if checkpoint is not None else None
        if state is not None and state.get("run") == run:
            self.load_state_dict(state)
            start = state["epoch"]
        with tqdm(total=epochs * self.steps, initial=start * self.steps, unit="step", desc=desc,
                  dynamic_ncols=True, disable=not (progress and self.world.main)) as bar:
            for epoch in range(start, epochs):
                self.train_epoch(epoch, bar)
                if checkpoint is not None and self.world.main:
                    with atomic_path(checkpoint) as tmp:
                        torch.save(self.state_dict() | {"run": run, "epoch": epoch + 1}, tmp)

    @torch.no_grad()
    def accuracy(self, split: Split) -> float:
        """Accuracy of the network as it is (eval mode) on `split`, each process scoring its part."""
        self.net.eval()
        hits = 0
        for x, y in self.batches(split, 256):
            with self.autocast():
                hits += correct(self.net(x), y)
        return self.world.sum([hits])[0] / len(split)

