"""Train a derived architecture from scratch (as the paper does) and report its test accuracy."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from tqdm import tqdm

from profiler.blocks import build_network
from profiler.space import SearchSpace

from .data import Dataset
from .recipe import LABEL_SMOOTHING, init_for_training, learning_rate, sgd

# A single network trains well at a larger step than a supernet of the same depth (recipe.default_lr).
RETRAIN_LR = 0.05


def retrain(space: SearchSpace, choices: list[str], data: Dataset, epochs: int, batch_size: int = 64,
            lr: float = RETRAIN_LR, weight_decay: float = 4e-5, seed: int = 0,
            progress: bool = True) -> tuple[torch.nn.Module, float]:
    """The standalone network trained on the training split with the search's recipe
    (search/recipe.py); returns it (in eval mode) and its accuracy on the test split."""
    torch.manual_seed(seed)
    net = init_for_training(build_network(space, choices))
    opt = sgd(net.parameters(), lr, 0.9, weight_decay)
    steps = math.ceil(len(data.train) / batch_size)
    with tqdm(total=epochs * steps, unit="step", desc="retrain", disable=not progress,
              dynamic_ncols=True) as bar:
        for epoch in range(epochs):
            net.train()
            for j, (x, y) in enumerate(data.batches(data.train, batch_size, seed=seed + 7919 * epoch)):
                for group in opt.param_groups:
                    group["lr"] = learning_rate(lr, epoch * steps + j, epochs * steps,
                                                warmup=steps)
                loss = F.cross_entropy(net(x), y, label_smoothing=LABEL_SMOOTHING)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                bar.update()
    return net.eval(), test_accuracy(net, data)


def test_accuracy(net: torch.nn.Module, data: Dataset) -> float:
    net.eval()
    correct = 0
    with torch.no_grad():
        for x, y in data.batches(data.test, 256):
            correct += int((net(x).argmax(1) == y).sum())
    return correct / len(data.test)
