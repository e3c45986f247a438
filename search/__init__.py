"""Architecture search: mixed ops with binary gates and a differentiable expected-latency loss.

The whole search as one call (search/run.py; torchrun's processes each call it with their World):

    run_search(space, latency_source, data, SearchConfig(target_ms=...), out_dir) -> SearchResult

The plugin API, usable from a user's own supernet and training loop:

    ExpectedLatency(space, table_or_predictor)(probabilities) -> E[LAT] in ms, differentiable
    MixedOp({name: module}) with .alpha, .sample(gates), .set_arch_grad(), .rescale_alpha()
    GateSampler(mode, seed).path(alpha) / .arch(alpha) -> Gates
    LatencyLoss(form, target_ms)(ce, expected) and .update(expected) (budget's dual ascent)
"""

from .distributed import World, join
from .gates import MODES, GateSampler, Gates, binary_connect
from .latency import ExpectedLatency
from .loss import FORMS, LatencyLoss
from .mixed_op import MixedOp
from .run import RetrainConfig, SearchResult, check_search, run_search
from .supernet import Supernet
from .trainer import SearchConfig

__all__ = ["ExpectedLatency", "FORMS", "GateSampler", "Gates", "LatencyLoss", "MODES", "MixedOp",
           "RetrainConfig", "SearchConfig", "SearchResult", "Supernet", "World", "binary_connect",
           "check_search", "join", "run_search"]
