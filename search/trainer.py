"""The search loop: warm-up, then weight steps on the training split alternating with architecture
steps on the held-out validation split, checkpointed every epoch so an interrupted search resumes and
ends exactly where an uninterrupted one would.

- Weight steps (warm-up and search): one path per layer drawn from softmax(alpha) (uniform during
  warm-up, where alpha is still 0); SGD with Nesterov momentum and a cosine learning rate per phase.
  Only the sampled path runs, so unsampled candidates get no gradient, momentum or weight decay.
- Architecture steps, every `arch_every` weight steps: gates in the sampler's mode, the loss of
  search/loss.py, Adam with beta1 = 0 (a candidate that was not sampled has no gradient and must not
  move on stale momentum), then the `two`-mode rescaling. `reinforce` instead samples `rl_samples`
  architectures on the validation batch and follows (reward - baseline) * grad log p, with reward
  acc * (T / LAT) ** w and a moving-average baseline.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from profiler.errors import UserError
from profiler.files import atomic_path, write_text
from profiler.records import check_fields, load_record, spec
from profiler.space import SearchSpace

from .data import Dataset, Split
from .derive import most_likely_within
from .gates import MODES, GateSampler
from .latency import ExpectedLatency
from .loss import FORMS, LatencyLoss
from .recipe import LABEL_SMOOTHING, default_lr, init_for_training, learning_rate, sgd
from .supernet import Supernet

# Below this multiple of chance accuracy, a supernet has learned nothing usable to choose by.
CHANCE_MARGIN = 1.5
# Training images that recalibrate batch-norm statistics before a derived architecture is evaluated.
RECALIBRATION_IMAGES = 256
# 2: weight optimizer with two parameter groups (recipe.sgd); 3: the supernet's fixed layers are
# `prefix` and `head`
CHECKPOINT_VERSION = 3


@dataclass(frozen=True)
class SearchConfig:
    target_ms: float = spec(gt=0)
    mode: str = spec("two", choices=MODES)
    loss: str = spec("budget", choices=FORMS)
    # Defaults sized for `tiny` on digits: a search of a few minutes on two CPU cores.
    epochs: int = spec(20, ge=0, le=100_000)
    warmup_epochs: int = spec(5, ge=0, le=100_000)
    batch_size: int = spec(32, ge=1, le=1_000_000)
    lr: float | None = spec(None, gt=0, le=100)  # None: recipe.default_lr for the space and batch
    momentum: float = spec(0.9, ge=0, le=1)
    weight_decay: float = spec(4e-5, ge=0, le=1)
    arch_lr: float = spec(0.15, gt=0, le=100)  # far above the paper's 1e-3: hundreds of steps
    arch_every: int = spec(1, ge=1, le=100_000)
    lam: float | None = spec(None, ge=0, le=1e6)  # add#linear's lambda / budget's starting one
    beta: float = spec(0.6, gt=0, le=10)  # mul#log's exponent
    dual_lr: float = spec(0.1, gt=0, le=100)  # budget's dual ascent step on the relative excess
    rho: float = spec(5.0, ge=0, le=1e6)  # budget's quadratic (augmented Lagrangian) weight
    budget_tolerance: float = spec(0.01, gt=0, le=1)  # budget's derived architecture this close
    rl_samples: int = spec(4, ge=1, le=10_000)
    reward_exponent: float = spec(0.07, ge=0, le=10)  # w in acc * (T / LAT) ** w
    baseline_decay: float = spec(0.9, ge=0, le=1)
    seed: int = 0

    def __post_init__(self):
        check_fields(self)


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(1) == labels).float().mean())


class Searcher:
    def __init__(self, space: SearchSpace, latency: ExpectedLatency, data: Dataset,
                 config: SearchConfig, out_dir: Path | None = None, progress: bool = True,
                 warn=None):
        if data.classes > space.classes:
            raise UserError(f"{data.name} has {data.classes} classes, space {space.name!r} "
                            f"classifies into {space.classes}")
        self.space, self.latency, self.data, self.config = space, latency, data, config
        self.out_dir, self.progress = (Path(out_dir) if out_dir else None), progress
        self.warn = warn or logging.getLogger(__name__).warning
        torch.manual_seed(config.seed)
        self.net = init_for_training(Supernet(space))
        self.sampler = GateSampler(config.mode, config.seed)
        self.loss = LatencyLoss(config.loss, config.target_ms, config.lam, config.beta, config.dual_lr,
                                 config.rho)
        self.lr = config.lr if config.lr is not None else \
            default_lr(len(space.layers()), config.batch_size)
        self.w_opt = sgd(self.net.weight_parameters(), self.lr, config.momentum,
                         config.weight_decay)
        self.a_opt = torch.optim.Adam(self.net.arch_parameters(), lr=config.arch_lr,
                                      betas=(0.0, 0.999), eps=1e-8)
        self.epoch = 0
        self.rows: list[dict] = []
        self.baseline: float | None = None

    # -- checkpoints ---------------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "checkpoint.pt"

    def state_dict(self) -> dict:
        return {"version": CHECKPOINT_VERSION, "config": asdict(self.config),
                "space": self.space.to_dict(), "epoch": self.epoch, "net": self.net.state_dict(),
                "w_opt": self.w_opt.state_dict(), "a_opt": self.a_opt.state_dict(),
                "sampler": self.sampler.state_dict(), "loss": self.loss.state_dict(),
                "baseline": self.baseline, "rows": self.rows}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.sampler.load_state_dict(state["sampler"])
        self.loss.load_state_dict(state["loss"])
        self.baseline, self.epoch, self.rows = state["baseline"], state["epoch"], state["rows"]

    def save_checkpoint(self) -> None:
        with atomic_path(self.checkpoint_path) as tmp:
            torch.save(self.state_dict(), tmp)

    def resume(self, path: Path) -> None:
        """Continue from a checkpoint made by the same search; anything else is refused."""
        state = read_checkpoint(path)
        mine = asdict(self.config)
        if state["space"] != self.space.to_dict():
            raise UserError(f"cannot resume from {path}: it searches space {state['space']['name']!r} "
                            f"with other settings than this run")
        differ = [k for k in mine if state["config"].get(k) != mine[k]]
        if differ:
            k = differ[0]
            raise UserError(f"cannot resume from {path}: it was made with {k}={state['config'].get(k)!r}, "
                            f"this run has {k}={mine[k]!r}")
        try:
            self.load_state_dict(state)
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise UserError(f"cannot resume from {path}: checkpoint does not fit this search "
                            f"({str(exc).splitlines()[0]})") from None

    # -- steps ---------------------------------------------------------------------------------

    def weight_step(self, x, y) -> tuple[float, float]:
        self.net.train()
        self.net.sample_paths(self.sampler)
        logits = self.net(x)
        loss = F.cross_entropy(logits, y, label_smoothing=LABEL_SMOOTHING)
        self.w_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.net.drop_unsampled_grads()
        self.w_opt.step()
        return float(loss.detach()), _accuracy(logits, y)

    def arch_step(self, x, y) -> tuple[float, float]:
        """One architecture update; returns (architecture loss, E[LAT] in ms before the update)."""
        self.net.train()
        if self.config.mode == "reinforce":
            return self._reinforce_step(x, y)
        self.net.sample_arch(self.sampler)
        ce = F.cross_entropy(self.net(x), y)
        expected = self.latency(self.net.probabilities())
        loss = self.loss(ce, expected)
        self.net.zero_grad(set_to_none=True)
        loss.backward()
        self.net.set_arch_grad()
        self.a_opt.step()
        self.net.rescale_alpha()
        self.loss.update(float(expected.detach()))
        return float(loss.detach()), float(expected.detach())

    def _reinforce_step(self, x, y) -> tuple[float, float]:
        c = self.config
        rewards, actives = [], []
        with torch.no_grad():
            for _ in range(c.rl_samples):
                self.net.sample_arch(self.sampler)
                acc = _accuracy(self.net(x), y)
                lat = self.latency.latency(self.net.sampled())
                rewards.append(acc * (c.target_ms / lat) ** c.reward_exponent)
                actives.append([op.gates.active for op in self.net.layers])
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
            yield from self.data.batches(self.data.val, self.config.batch_size,
                                         seed=self.config.seed * 1_000_003 + epoch * 1_009 + rep + 1)

    def evaluate(self, choices: list[str], split) -> float:
        """Accuracy of one architecture inside the supernet: shared weights, batch-norm statistics
        recalibrated for it on RECALIBRATION_IMAGES training images (always the same ones)."""
        self.net.eval()
        self.net.fix(choices)
        images = min(RECALIBRATION_IMAGES, len(self.data.train))
        self.net.recalibrate_batch_norm(
            self.data.batches(Split(self.data.train.images[:images], self.data.train.labels[:images]),
                              self.config.batch_size))
        correct = 0
        with torch.no_grad():
            for x, y in self.data.batches(split, 256):
                correct += int((self.net(x).argmax(1) == y).sum())
        return correct / len(split)

    def run_epoch(self, epoch: int, bar) -> dict:
        c = self.config
        warm = epoch < c.warmup_epochs
        phase_epoch, phase_len = (epoch, c.warmup_epochs) if warm else \
            (epoch - c.warmup_epochs, c.epochs)
        steps = math.ceil(len(self.data.train) / c.batch_size)
        val = self._val_stream(epoch)
        t0 = time.perf_counter()
        w_loss = w_acc = a_loss = 0.0
        n_arch = 0
        expected = float("nan")
        for j, (x, y) in enumerate(self.data.batches(self.data.train, c.batch_size,
                                                     seed=c.seed * 1_000_003 + epoch * 1_009)):
            # The first epoch of all ramps the learning rate up (search/recipe.py).
            lr = learning_rate(self.lr, phase_epoch * steps + j, phase_len * steps,
                               warmup=steps if epoch == 0 else 0)
            for group in self.w_opt.param_groups:
                group["lr"] = lr
            loss, acc = self.weight_step(x, y)
            w_loss, w_acc = w_loss + loss, w_acc + acc
            if not warm and (j + 1) % c.arch_every == 0:
                al, expected = self.arch_step(*next(val))
                a_loss, n_arch = a_loss + al, n_arch + 1
            bar.update()
        with torch.no_grad():
            expected_now = float(self.latency(self.net.probabilities()))
        choices = self.derive()
        row = {"epoch": epoch + 1, "phase": "warmup" if warm else "search", "lr": lr,
               "train_loss": w_loss / steps, "train_acc": w_acc / steps,
               "arch_loss": a_loss / n_arch if n_arch else float("nan"),
               "val_acc": self.evaluate(choices, self.data.val),
               "expected_latency_ms": expected_now,
               "derived_latency_ms": self.latency.latency(choices),
               "lambda": self.loss.lam, "seconds": time.perf_counter() - t0}
        row |= {f"entropy_{i}": h for i, h in enumerate(self.net.entropies())}
        return row

    def run(self) -> list[str]:
        """Search to the end (from the loaded checkpoint, if any); returns the derived choices."""
        c = self.config
        total = c.warmup_epochs + c.epochs
        steps = math.ceil(len(self.data.train) / c.batch_size)
        bar = tqdm(total=total * steps, initial=self.epoch * steps, unit="step",
                   desc=f"search {self.space.name} ({c.mode})", disable=not self.progress,
                   dynamic_ncols=True)
        try:
            while self.epoch < total:
                row = self.run_epoch(self.epoch, bar)
                self.rows.append(row)
                if self.epoch + 1 == c.warmup_epochs:
                    self._check_learned(row["val_acc"])
                self.epoch += 1
                bar.set_postfix(acc=f"{row['val_acc']:.3f}",
                                lat=f"{row['expected_latency_ms']:.4g}ms", lam=f"{row['lambda']:.3g}")
                if self.progress:
                    bar.write(f"epoch {row['epoch']}/{total} ({row['phase']}): train loss "
                              f"{row['train_loss']:.3f}, accuracy {row['train_acc']:.3f}; "
                              f"validation accuracy {row['val_acc']:.3f}; E[LAT] "
                              f"{row['expected_latency_ms']:.4g} ms", file=sys.stderr)
                if self.out_dir:
                    self.write_log()
                    self.save_checkpoint()
        finally:
            bar.close()
        return self.derive()

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
    epoch: int = spec(ge=0)
    net: dict
    w_opt: dict
    a_opt: dict
    sampler: dict
    loss: dict
    baseline: float | None
    rows: list[dict]

    def __post_init__(self):
        check_fields(self)
