"""Architecture search: mixed ops with binary gates and a differentiable expected-latency loss.

The plugin API, usable from a user's own supernet and training loop:

    ExpectedLatency(space, table_or_predictor)(probabilities) -> E[LAT] in ms, differentiable
    MixedOp({name: module}) with .alpha, .sample(gates), .set_arch_grad(), .rescale_alpha()
    GateSampler(mode, seed).path(alpha) / .arch(alpha) -> Gates
    LatencyLoss(form, target_ms)(ce, expected) and .update(expected) (budget's dual ascent)
"""

from .gates import MODES, GateSampler, Gates, binary_connect
from .latency import ExpectedLatency
from .loss import FORMS, LatencyLoss
from .mixed_op import MixedOp
from .supernet import Supernet

__all__ = ["ExpectedLatency", "FORMS", "GateSampler", "Gates", "LatencyLoss", "MODES", "MixedOp",
           "Supernet", "binary_connect"]
