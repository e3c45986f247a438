"""Latency predictors fitted from latency tables (scikit-learn estimators, saved as JSON), and
their calibration to whole networks measured end to end.

Names load on first use (each from its module below): a command that reads only a table (pxprof
predict --table) never imports scikit-learn.
"""

import importlib

_WHERE = {"calibrate": "calibration", "Predictor": "model", "fit_table": "model",
          "REGISTRY": "regressors", "LatencyRegressor": "regressors", "open_source": "sources"}

__all__ = ["REGISTRY", "LatencyRegressor", "Predictor", "calibrate", "fit_table", "load", "open_source"]


def __getattr__(name: str):
    if name == "load":
        value = __getattr__("Predictor").load
    elif name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE) | {"load"})
