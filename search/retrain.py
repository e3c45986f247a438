"""Train a derived architecture from scratch (as the paper does) and report its test accuracy."""

from __future__ import annotations

from pathlib import Path

import torch

from profiler.build.blocks import build_network
from profiler.space.spaces import SearchSpace

from .config import RETRAIN_LR
from .data import Dataset
from .distributed import World
from .recipe import init_for_training
from .training import Trainer



def retrain(space: SearchSpace, choices: list[str], data: Dataset, epochs: int, batch_size: int = 64,
            lr: float = RETRAIN_LR, weight_decay: float = 4e-5, seed: int = 0,
            progress: bool = True, world: World | None = None, precision: str = "fp32",
            checkpoint: Path | None = None) -> tuple[torch.nn.Module, float]:
    """The standalone network trained on the training split with the search's loop and recipe
    (search/training.py); returns it (in eval mode, on the CPU) and its accuracy on the test
    split. `checkpoint`: saved after every epoch, and continued from when it holds this very
    retraining (the same architecture, data and settings)."""
    torch.manual_seed(seed)
    net = init_for_training(build_network(space, choices))
    trainer = Trainer(net, net.parameters(), data, batch_size, lr, [epochs],
                      weight_decay=weight_decay, seed=seed, world=world, precision=precision)
    run = {"space": space.to_dict(), "choices": list(choices), "data": data.describe(),
           "epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
           "seed": seed, "precision": precision, "world_size": trainer.world.size}
    trainer.fit(epochs, "retrain", progress, checkpoint, run)
    accuracy = trainer.accuracy(data.test)
    return net.eval().cpu(), accuracy
