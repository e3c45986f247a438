"""The search loop: warm-up, then weight steps on the training split alternating with architecture
steps on the held-out validation split, checkpointed every epoch so an interrupted search resumes and
ends exactly where an uninterrupted one would.

- Weight steps (warm-up and search, search/training.py): one path per layer drawn from
  softmax(alpha) (uniform during warm-up, where alpha is still 0); SGD with Nesterov momentum and a
  cosine learning rate per phase. Only the sampled path runs, so unsampled candidates get no
  gradient, momentum or weight decay.
- Architecture steps, every `arch_every` weight steps: gates in the sampler's mode, the loss of
  search/loss.py, Adam with beta1 = 0 (a candidate that was not sampled has no gradient and must not
  move on stale momentum), then the `two`-mode rescaling. `reinforce` instead samples `rl_samples`
  architectures on the validation batch and follows (reward - baseline) * grad log p, with reward
  acc * (T / LAT) ** w and a moving-average baseline.
- On several processes (search/distributed.py) every step is the single process's step on the same
  global batch: the same gates everywhere, weight gradients averaged by DDP, architecture gradients
  and rewards averaged here.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from profiler.errors import UserError
from profiler.files import atomic_path, write_text
from profiler.outputs import remove_stale
from profiler.records import check_fields, load_record, spec
from profiler.space.spaces import SearchSpace

from .config import SearchConfig
from .data import Dataset, Split
from .derive import check_derived, most_likely_within, sample_within
from .distributed import World
from .gates import GateSampler
from .latency import ExpectedLatency
from .loss import LatencyLoss
from .recipe import default_lr, init_for_training
from .supernet import Supernet
from .training import Trainer, correct

# Below this multiple of chance accuracy, a supernet has learned nothing usable to choose by.
CHANCE_MARGIN = 1.5
# Training images that recalibrate batch-norm statistics before a derived architecture is evaluated.
RECALIBRATION_IMAGES = 256
# 2: weight optimizer with two parameter groups (recipe.sgd); 3: the supernet's fixed layers are
# `prefix` and `head`; 4: the learning-rate scheduler's state, the number of processes; 5: the
# latency loss's place on its target ramp
CHECKPOINT_VERSION = 5


def check_fits(space: SearchSpace, data: Dataset, config: SearchConfig, world_size: int) -> None:
    if data.classes > space.classes:
        raise UserError(f"{data.name} has {data.classes} classes, space {space.name!r} "
                        f"classifies into {space.classes}")
    if config.batch_size < world_size:
        raise UserError(f"a batch of {config.batch_size} cannot be split across {world_size} "
                        f"processes; give a --batch-size of at least {world_size}")


def check_resumable(state: dict, path: Path, space: SearchSpace, config: SearchConfig,
                    world_size: int, any_target: bool = False) -> None:
    """Refuse a checkpoint (read_checkpoint) of another search: another space, other settings,
    or another number of processes (its random streams are those of that many). `any_target`:
    the checkpoint is a warm-up, which several targets share: its target may differ (the warm-up
    trains weights alone, nothing of it depends on the target)."""
    mine = asdict(config)
    # The selection after the search decides nothing a checkpoint holds: any value resumes.
    mine["select"] = state["config"].get("select")
    if any_target:
        mine["target_ms"] = state["config"].get("target_ms")
    if state["space"] != space.to_dict():
        raise UserError(f"cannot resume from {path}: it searches space {state['space']['name']!r} "
                        f"with other settings than this run")
    differ = [k for k in mine if state["config"].get(k) != mine[k]]
    if differ:
        k = differ[0]
        raise UserError(f"cannot resume from {path}: it was made with {k}={state['config'].get(k)!r}, "
                        f"this run has {k}={mine[k]!r}")
    if state["world_size"] != world_size:
        raise UserError(f"cannot resume from {path}: it was made by {state['world_size']} "
                        f"process(es), this run has {world_size}; resume it with --nproc "
                        f"{state['world_size']}")


class Searcher(Trainer):
    def __init__(self, space: SearchSpace, latency: ExpectedLatency, data: Dataset,
                 config: SearchConfig, out_dir: Path | None = None, progress: bool = True,
                 warn=None, world: World | None = None):
        world = world or World()
        check_fits(space, data, config, world.size)
        self.space, self.config = space, config
        self.out_dir, self.progress = (Path(out_dir) if out_dir else None), progress
        self.warn = warn or logging.getLogger(__name__).warning
        torch.manual_seed(config.seed)
        net = init_for_training(Supernet(space))
        self.lr = config.lr if config.lr is not None else \
            default_lr(len(space.layers()), config.batch_size)
        super().__init__(net, net.weight_parameters(), data, config.batch_size, self.lr,
                         [config.warmup_epochs, config.epochs], config.momentum, config.weight_decay,
                         config.seed, world, config.precision)
        self.latency = latency.to(self.world.device)
        self.sampler = GateSampler(config.mode, config.seed)
        self.loss = LatencyLoss(config.loss, config.target_ms, config.lam, config.beta, config.dual_lr,
                                config.rho, round(config.target_ramp * config.epochs * self.steps
                                                  / config.arch_every))
        self.a_opt = torch.optim.Adam(self.net.arch_parameters(), lr=config.arch_lr,
                                      betas=(0.0, 0.999), eps=1e-8)
        self.epoch = 0
        self.rows: list[dict] = []
        self.baseline: float | None = None
        self.selection: list[dict] = []  # the candidates select() scored, the kept one first

    # -- checkpoints ---------------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "checkpoint.pt"

    def state_dict(self) -> dict:
        return super().state_dict() | {
            "version": CHECKPOINT_VERSION, "config": asdict(self.config),
            "space": self.space.to_dict(), "world_size": self.world.size, "epoch": self.epoch,
            "a_opt": self.a_opt.state_dict(), "sampler": self.sampler.state_dict(),
            "loss": self.loss.state_dict(), "baseline": self.baseline, "rows": self.rows}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.a_opt.load_state_dict(state["a_opt"])
        self.sampler.load_state_dict(state["sampler"])
        self.loss.load_state_dict(state["loss"])
        self.baseline, self.epoch, self.rows = state["baseline"], state["epoch"], state["rows"]

    def save_checkpoint(self) -> None:
        with atomic_path(self.checkpoint_path) as tmp:
            torch.save(self.state_dict(), tmp)

    def resume(self, path: Path, state: dict | None = None, any_target: bool = False) -> None:
        """Continue from a checkpoint made by the same search; anything else is refused. Every
        process reads it (on several machines, OUT_DIR is on a shared file system); `state`:
        what read_checkpoint(path) has already returned. `any_target`: a warm-up made for
        another target serves (check_resumable)."""
        state = state if state is not None else read_checkpoint(path)
        check_resumable(state, path, self.space, self.config, self.world.size, any_target)
        try:
            self.load_state_dict(state)
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise UserError(f"cannot resume from {path}: checkpoint does not fit this search "
                            f"({str(exc).splitlines()[0]})") from None

    def start_from(self, path: Path) -> None:
        """Start this search from a complete warm-up made for any target (search/targets.py):
        where a search of this target alone would be after its own warm-up."""
        state = read_checkpoint(path)
        if state["epoch"] != self.config.warmup_epochs:
            raise UserError(f"cannot start from {path}: it holds {state['epoch']} epoch(s), not "
                            f"the {self.config.warmup_epochs} of a complete warm-up")
        self.resume(path, state, any_target=True)

    # -- steps ---------------------------------------------------------------------------------

    def forward(self, x):
        """A weight step's forward: one path drawn per layer (the same on every process). Under
        DDP every parameter enters the graph (unsampled ones with weight zero): DDP, without
        find_unused_parameters, waits for a gradient of each."""
        self.net.sample_paths(self.sampler)
        return self.model(x, all_parameters=self.world.distributed)

    def after_backward(self) -> None:
        self.net.drop_unsampled_grads()

    def arch_step(self, x, y) -> tuple[float, float]:
        """One architecture update; returns (architecture loss, E[LAT] in ms before the update)."""
        self.net.train()
        if self.config.mode == "reinforce":
            return self._reinforce_step(x, y)
        self.net.sample_arch(self.sampler)
        with self.autocast():
            ce = F.cross_entropy(self.net(x), y)
        expected = self.latency(self.net.probabilities())
        loss = self.loss(ce.float(), expected)
        self.net.zero_grad(set_to_none=True)
        loss.backward()
        self.net.set_arch_grad()
        self.world.average_([op.alpha.grad for op in self.net.layers])
        self.a_opt.step()
        self.net.rescale_alpha()
        self.loss.update(float(expected.detach()))
        return float(loss.detach()), float(expected.detach())

    def _reinforce_step(self, x, y) -> tuple[float, float]:
        c = self.config
        hits, lats, actives = [], [], []
        with torch.no_grad(), self.autocast():
            for _ in range(c.rl_samples):
                self.net.sample_arch(self.sampler)
                hits.append(correct(self.net(x), y))
                lats.append(self.latency.latency(self.net.sampled()))
                actives.append([op.gates.active for op in self.net.layers])
        # Rewards from the accuracy on the whole global batch: the same on every process, and so
        # are the baseline and the update.
        *hits, seen = self.world.sum(hits + [len(y)])
        rewards = [h / seen * (c.target_ms / lat) ** c.reward_exponent for h, lat in zip(hits, lats)]
        log_probs = []
        for active in actives:
            log_probs.append(sum(torch.log_softmax(op.alpha, 0)[a]
                                 for op, a in zip(self.net.layers, active)))
        advantages = []
        for r in rewards:
            self.baseline = r if self.baseline is None else \
                c.baseline_decay * self.baseline + (1 - c.baseline_decay) * r
            advantages.append(r - self.baseline)
        loss = -sum(a * lp for a, lp in zip(advantages, log_probs)) / len(rewards)
        self.a_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.a_opt.step()
        with torch.no_grad():
            expected = float(self.latency(self.net.probabilities()))
        return float(loss.detach()), expected

    # -- epochs --------------------------------------------------------------------------------

    def _val_stream(self, epoch: int):
        # Validation batches for architecture steps, cycling through fresh permutations; seeded by
        # the epoch so a resumed search sees the same batches.
        for rep in range(10**9):
            yield from self.batches(self.data.val, self.config.batch_size,
                                    seed=self.config.seed * 1_000_003 + epoch * 1_009 + rep + 1)

    def evaluate(self, choices: list[str], split) -> float:
        """Accuracy of one architecture inside the supernet: shared weights, batch-norm statistics
        recalibrated for it on RECALIBRATION_IMAGES training images (always the same ones, on
        every process)."""
        self.net.eval()
        self.net.fix(choices)
        images = min(RECALIBRATION_IMAGES, len(self.data.train))
        self.net.recalibrate_batch_norm(self.on_device(self.data.batches(
            Split(self.data.train.images[:images], self.data.train.labels[:images]),
            self.config.batch_size)))
        return self.accuracy(split)

    def run_epoch(self, epoch: int, bar) -> dict:
        c = self.config
        warm = epoch < c.warmup_epochs
        val = self._val_stream(epoch)
        t0 = time.perf_counter()
        arch = {"loss": 0.0, "steps": 0}

        def architecture_step(j: int) -> None:
            if not warm and (j + 1) % c.arch_every == 0:
                arch["loss"] += self.arch_step(*next(val))[0]
                arch["steps"] += 1

        trained = self.train_epoch(epoch, bar, between=architecture_step)
        with torch.no_grad():
            expected_now = float(self.latency(self.net.probabilities()))
        choices = self.derive()
        row = {"epoch": epoch + 1, "phase": "warmup" if warm else "search", "lr": trained["lr"],
               "train_loss": trained["train_loss"], "train_acc": trained["train_acc"],
               "arch_loss": self.world.sum([arch["loss"]])[0] / self.world.size / arch["steps"]
               if arch["steps"] else float("nan"),
               "val_acc": self.evaluate(choices, self.data.val),
               "expected_latency_ms": expected_now,
               "derived_latency_ms": self.latency.latency(choices),
               "lambda": self.loss.lam, "target_ms": self.loss.target_now(),
               "seconds": time.perf_counter() - t0}
        row |= {f"entropy_{i}": h for i, h in enumerate(self.net.entropies())}
        return row

    def run(self) -> list[str]:
        """Search to the end (from the loaded checkpoint, if any); returns the derived choices."""
        self.run_epochs(self.config.warmup_epochs + self.config.epochs)
        return self._final(self.select())

    def run_epochs(self, until: int) -> None:
        """Train (and search) up to epoch `until`, from the loaded checkpoint if any: the warm-up
        alone (until = warmup_epochs) is what several targets share."""
        c = self.config
        total = c.warmup_epochs + c.epochs
        talk = self.progress and self.world.main
        bar = tqdm(total=total * self.steps, initial=self.epoch * self.steps, unit="step",
                   desc=f"search {self.space.name} ({c.mode})", disable=not talk,
                   dynamic_ncols=True)
        try:
            while self.epoch < until:
                row = self.run_epoch(self.epoch, bar)
                self.rows.append(row)
                if self.epoch + 1 == c.warmup_epochs and self.world.main:
                    self._check_learned(row["val_acc"])
                self.epoch += 1
                bar.set_postfix(acc=f"{row['val_acc']:.3f}",
                                lat=f"{row['expected_latency_ms']:.4g}ms", lam=f"{row['lambda']:.3g}")
                if talk:
                    bar.write(f"epoch {row['epoch']}/{total} ({row['phase']}): train loss "
                              f"{row['train_loss']:.3f}, accuracy {row['train_acc']:.3f}; "
                              f"validation accuracy {row['val_acc']:.3f}; E[LAT] "
                              f"{row['expected_latency_ms']:.4g} ms", file=sys.stderr)
                if self.out_dir and self.world.main:
                    # The checkpoint first: the log is a view of its rows, so a process killed
                    # between the two never leaves a log without the checkpoint it describes.
                    self.save_checkpoint()
                    self.write_log()
        finally:
            bar.close()

    def _check_learned(self, accuracy: float) -> None:
        """At the end of warm-up, say so when the supernet is no better than chance: the search
        would then choose by latency alone."""
        chance = 1 / self.data.classes
        if accuracy < CHANCE_MARGIN * chance:
            self.warn(f"after {self.config.warmup_epochs} warm-up epoch(s) the supernet is no "
                      f"better than chance (validation accuracy {accuracy:.3f}, chance "
                      f"{chance:.3f}): the search will choose by latency alone; give it more "
                      f"--warmup-epochs, or a lower --lr if its training loss rises "
                      f"(search_log.csv)")

    def derive(self) -> list[str]:
        """The architecture the search returns: argmax per layer, or under `budget` the most likely
        architecture within budget_tolerance of the target (search/derive.py)."""
        if self.config.loss == "budget":
            return most_likely_within(self.latency, self.net.arch_parameters(), self.config.target_ms,
                                      self.config.budget_tolerance)
        return self.net.derive()

    def select(self) -> list[str]:
        """The derived architecture, or with `select` candidates the one of them, or the derived
        one, that scores best inside the supernet on the validation split (ties: the derived
        one). The candidates are drawn from the learned distribution within budget_tolerance of
        the target (under the paper's losses, of the derived architecture's latency), with the
        search's seed: a resumed search selects the same."""
        c = self.config
        derived = self.derive()
        if not c.select:
            if self.out_dir and self.world.main:  # resumed without the selection it once made
                remove_stale([self.out_dir / "selection.csv"])
            return derived
        aim = c.target_ms if c.loss == "budget" else self.latency.latency(derived)
        drawn = sample_within(self.latency, self.net.arch_parameters(), aim, c.budget_tolerance,
                              c.select, seed=c.seed, exclude=[derived])
        scored = [{"choices": ch, "latency_ms": self.latency.latency(ch),
                   "val_acc": self.evaluate(ch, self.data.val), "derived": i == 0}
                  for i, ch in enumerate([derived] + drawn)]
        self.selection = sorted(scored, key=lambda r: (-r["val_acc"], not r["derived"]))
        best = self.selection[0]
        if self.progress and self.world.main:
            print(f"selected {'the most likely architecture' if best['derived'] else 'a drawn one'}"
                  f" of {len(scored)} within {c.budget_tolerance:.0%} of {aim:.4g} ms: validation "
                  f"accuracy {best['val_acc']:.3f} (most likely: {scored[0]['val_acc']:.3f})",
                  file=sys.stderr)
        if self.out_dir and self.world.main:
            write_text(self.out_dir / "selection.csv", log_csv(
                [{"rank": k + 1, "val_acc": r["val_acc"], "latency_ms": r["latency_ms"],
                  "most_likely": int(r["derived"]), "choices": " ".join(r["choices"])}
                 for k, r in enumerate(self.selection)]))
        return best["choices"]

    def _final(self, choices: list[str]) -> list[str]:
        """The architecture the search ends on, refused under `budget` when it misses the target
        by more than the tolerance, reported under the paper's losses (they weigh latency against
        accuracy and hold no target)."""
        c = self.config
        if c.loss == "budget":
            check_derived(self.latency, choices, c.target_ms, c.budget_tolerance)
            return choices
        off = self.latency.latency(choices) / c.target_ms - 1
        if abs(off) > c.budget_tolerance:
            self.warn(f"the derived architecture is {off:+.1%} off the target: loss {c.loss} "
                      f"weighs latency against accuracy without holding a target; --loss budget "
                      f"holds it within {c.budget_tolerance:.0%}")
        return choices

    def write_log(self) -> None:
        write_text(self.out_dir / "search_log.csv", log_csv(self.rows))


def log_csv(rows: list[dict]) -> str:
    if not rows:
        return ""
    cols = list(rows[0])
    fmt = lambda v: f"{v:.6g}" if isinstance(v, float) else str(v)  # noqa: E731
    return "\n".join([",".join(cols)] + [",".join(fmt(r[c]) for c in cols) for r in rows]) + "\n"


def read_checkpoint(path: Path) -> dict:
    """A checkpoint, read without unpickling arbitrary objects; a damaged one is a clear error."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"cannot resume: no checkpoint at {path}") from None
    except Exception as exc:
        raise UserError(f"cannot resume from {path}: the checkpoint is corrupt or not a pxsearch "
                        f"checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or type(state.get("version")) is not int:
        raise UserError(f"cannot resume from {path}: not a pxsearch checkpoint")
    if state["version"] != CHECKPOINT_VERSION:
        raise UserError(f"cannot resume from {path}: it was made by another pxsearch (checkpoint "
                        f"version {state['version']}, this one reads {CHECKPOINT_VERSION}); start "
                        f"afresh with --force")
    load_record(_Checkpoint, state, f"cannot resume from {path}")
    return state


@dataclass(frozen=True)
class _Checkpoint:
    """The checked shape of a checkpoint (tensors inside the state dicts are torch's to check)."""
    version: int
    config: dict
    space: dict
    world_size: int = spec(ge=1)
    epoch: int = spec(ge=0)
    net: dict
    w_opt: dict
    schedule: dict
    a_opt: dict
    sampler: dict
    loss: dict
    baseline: float | None
    rows: list[dict]

    def __post_init__(self):
        check_fields(self)
