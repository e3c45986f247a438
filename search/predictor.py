"""Latency predictors as a search's latency source.

The search needs only `predict_specs(list[BlockSpec]) -> array of ms` (and, optionally, `space`: the
space the predictor was fitted for). Predictor files are read by the predictors layer's own loader,
which never unpickles a file a user hands in; until that layer has one, --predictor says so.
"""

from __future__ import annotations

from pathlib import Path

from profiler.errors import UserError


def load_predictor(path: Path):
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such predictor: {path}")
    try:
        from predictors import load
    except ImportError:
        raise UserError(f"cannot read predictor {path}: this pxnas has no predictor loader yet "
                        f"(predictors.load); use --latency-table") from None
    predictor = load(path)
    if not callable(getattr(predictor, "predict_specs", None)):
        raise UserError(f"{path}: the loaded predictor has no predict_specs(specs) method")
    return predictor
