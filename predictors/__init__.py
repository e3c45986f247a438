"""Latency predictors fitted from latency tables (scikit-learn estimators, saved as JSON), and
their calibration to whole networks measured end to end."""

from .calibration import calibrate
from .model import Predictor, fit_table
from .regressors import REGISTRY, LatencyRegressor
from .sources import open_source

load = Predictor.load

__all__ = ["REGISTRY", "LatencyRegressor", "Predictor", "calibrate", "fit_table", "load", "open_source"]
