"""Latency predictors fitted from latency tables (scikit-learn estimators, saved as JSON)."""

from .model import LatencyRegressor, Predictor, fit_table

load = Predictor.load

__all__ = ["LatencyRegressor", "Predictor", "fit_table", "load"]
