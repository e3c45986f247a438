"""Latency predictors fitted from latency tables (scikit-learn estimators, saved as JSON), and
their calibration to whole networks measured end to end."""

from .calibration import calibrate
from .model import LatencyRegressor, Predictor, fit_table
from .sources import open_source

load = Predictor.load

__all__ = ["LatencyRegressor", "Predictor", "calibrate", "fit_table", "load", "open_source"]
