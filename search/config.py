"""The settings of a search and of the retraining, and the names they choose from: plain data,
checked when made. Nothing here imports torch, so `pxsearch --help` shows the defaults at once."""

from __future__ import annotations

import math
from dataclasses import dataclass

from profiler.errors import UserError
from profiler.limits import MAX_SEED
from profiler.records import check_fields, spec

MODES = ("two", "full_v2", "full", "reinforce")  # binary-gate modes (search/gates.py)
FORMS = ("budget", "add#linear", "mul#log")  # loss forms (search/loss.py)
PRECISIONS = ("fp32", "bf16")  # of the forward passes (search/training.py)
# A single network trains well at a larger step than a supernet of the same depth (recipe.default_lr).
RETRAIN_LR = 0.05


def check_loss(form: str, target_ms: float) -> None:
    """Refuse a loss form that is unknown or cannot work with this target."""
    if form not in FORMS:
        raise UserError(f"unknown loss {form!r}; known: {', '.join(FORMS)}")
    if not (target_ms > 0 and math.isfinite(target_ms)):
        raise UserError(f"target latency must be a positive number of ms, got {target_ms!r}")
    if form == "mul#log" and target_ms <= 1.0:
        # log E / log T flips sign below 1 ms: a faster network would then cost more.
        raise UserError(f"loss mul#log needs a target above 1 ms (log of the latency in ms is "
                        f"negative below it), got {target_ms:g} ms; use budget or add#linear")


@dataclass(frozen=True)
class SearchConfig:
    """Everything that decides what a search computes (a resume must match it). Checked when made:
    a bad value is a UserError (a ValueError) naming the field."""
    target_ms: float = spec(gt=0)
    mode: str = spec("two", choices=MODES)
    loss: str = spec("budget", choices=FORMS)
    # Defaults sized for `tiny` on digits: a search of a few minutes on two CPU cores.
    epochs: int = spec(20, ge=0, le=100_000)
    warmup_epochs: int = spec(5, ge=0, le=100_000)
    batch_size: int = spec(32, ge=1, le=1_000_000)  # the global batch, over all processes
    lr: float | None = spec(None, gt=0, le=100)  # None: recipe.default_lr for the space and batch
    momentum: float = spec(0.9, ge=0, le=1)
    weight_decay: float = spec(4e-5, ge=0, le=1)
    arch_lr: float = spec(0.15, gt=0, le=100)  # far above the paper's 1e-3: hundreds of steps
    arch_every: int = spec(1, ge=1, le=100_000)
    lam: float | None = spec(None, ge=0, le=1e6)  # add#linear's lambda / budget's starting one
    beta: float = spec(0.6, gt=0, le=10)  # mul#log's exponent
    dual_lr: float = spec(0.1, gt=0, le=100)  # budget's dual ascent step on the relative excess
    rho: float = spec(5.0, ge=0, le=1e6)  # budget's quadratic (augmented Lagrangian) weight
    # budget's target moves from E[LAT] at the search's start (the uniform distribution's) to the
    # target over this fraction of the search's architecture steps (search/loss.py); 0: at once
    target_ramp: float = spec(0.5, ge=0, le=1)
    # budget's derived architecture this close to the target; a target no architecture comes this
    # close to is refused before any search (search/derive.py)
    budget_tolerance: float = spec(0.01, gt=0, le=1)
    # After the search: this many architectures drawn from the learned distribution within the
    # budget (search/derive.py) are scored with the supernet's weights on the validation split
    # beside the most likely one, and the best is kept. 0 (the paper's way): the most likely one,
    # which sums the evidence of every architecture step; on a small validation split one score
    # each is the noisier choice (bench/search_quality.py measured it no better).
    select: int = spec(0, ge=0, le=10_000)
    rl_samples: int = spec(4, ge=1, le=10_000)
    reward_exponent: float = spec(0.07, ge=0, le=10)  # w in acc * (T / LAT) ** w
    baseline_decay: float = spec(0.9, ge=0, le=1)
    precision: str = spec("fp32", choices=PRECISIONS)  # bf16: autocast in forward passes
    seed: int = spec(0, ge=0, le=MAX_SEED)

    def __post_init__(self):
        check_fields(self)
        check_loss(self.loss, self.target_ms)



@dataclass(frozen=True)
class RetrainConfig:
    """Training the derived network from scratch after the search (epochs 0: not retrained)."""
    epochs: int = spec(15, ge=0, le=100_000)
    lr: float = spec(RETRAIN_LR, gt=0, le=100)

    def __post_init__(self):
        check_fields(self)
