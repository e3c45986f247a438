"""Latency predictors fitted from latency tables (scikit-learn estimators)."""
