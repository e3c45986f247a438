"""Architecture search: mixed ops with binary gates and a differentiable expected-latency loss.

The whole search as one call (search/run.py; torchrun's processes each call it with their World):

    run_search(space, latency_source, data, SearchConfig(target_ms=...), out_dir) -> SearchResult
    run_targets(space, latency_source, data, config, [t1, t2, ...], out_dir) -> [SearchResult]
        (search/targets.py: one warm-up, a search per target, pareto.csv and pareto.png)

The plugin API, usable from a user's own supernet and training loop:

    ExpectedLatency(space, table_or_predictor)(probabilities) -> E[LAT] in ms, differentiable
    MixedOp({name: module}) with .alpha, .sample(gates), .set_arch_grad(), .rescale_alpha()
    GateSampler(mode, seed).path(alpha) / .arch(alpha) -> Gates
    LatencyLoss(form, target_ms)(ce, expected) and .update(expected) (budget's dual ascent)

Names load on first use (each from its module below), so `pxsearch --help` starts without torch.
"""

import importlib

_WHERE = {
    "World": "distributed", "join": "distributed",
    "GateSampler": "gates", "Gates": "gates", "binary_connect": "gates",
    "ExpectedLatency": "latency",
    "LatencyLoss": "loss",
    "MixedOp": "mixed_op",
    "SearchResult": "run", "check_search": "run", "run_search": "run",
    "run_targets": "targets",
    "Supernet": "supernet",
    "FORMS": "config", "MODES": "config", "RetrainConfig": "config", "SearchConfig": "config",
}

__all__ = ["ExpectedLatency", "FORMS", "GateSampler", "Gates", "LatencyLoss", "MODES", "MixedOp",
           "RetrainConfig", "SearchConfig", "SearchResult", "Supernet", "World", "binary_connect",
           "check_search", "join", "run_search", "run_targets"]


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
