"""Latency predictors fitted from a latency table, and their file format.

`LatencyRegressor` is a scikit-learn estimator: a non-negative linear model of latency in the block
features (predictors/features.py), fitted for relative error, since a table spans 0.01 to 10 ms and
a 1 % error matters as much on a small block as on a large one. Its intercept is the per-call cost
of the runtime. Non-negative weights keep it physical: more work never predicts less time.

A `Predictor` adds what a user needs to trust it: the table it was fitted on (sha256), the
device fingerprint, and its cross-validated error. It is saved as JSON and never unpickled.

File history: 1 (pxnas 0.1) first version.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.utils.validation import check_is_fitted, validate_data

from profiler.blockspec import BlockSpec, parse_key
from profiler.errors import UserError
from profiler.files import write_json
from profiler.table import LatencyTable

from .features import FEATURES, feature_matrix

FORMAT = "pxnas-predictor"
VERSION = 1
MODEL = "positive-linear"


class LatencyRegressor(RegressorMixin, BaseEstimator):
    def __init__(self, relative: bool = True):
        self.relative = relative

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Non-negative weights fit latencies, not arbitrary targets (sklearn's generic checks).
        tags.regressor_tags.poor_score = True
        return tags

    def fit(self, X, y):
        X, y = validate_data(self, X, y, y_numeric=True)
        # Relative least squares: weight each block by 1 / latency^2.
        weight = 1.0 / np.maximum(np.abs(y), 1e-12) ** 2 if self.relative else None
        linear = LinearRegression(positive=True).fit(X, y, sample_weight=weight)
        self.coef_, self.intercept_ = linear.coef_, float(linear.intercept_)
        return self

    def predict(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return X @ self.coef_ + self.intercept_


def _errors(y: np.ndarray, pred: np.ndarray) -> dict:
    ape = np.abs(pred - y) / y
    return {"mape": float(ape.mean()), "median_ape": float(np.median(ape)),
            "p95_ape": float(np.percentile(ape, 95)), "max_ape": float(ape.max())}


@dataclass
class Predictor:
    coef: dict[str, float]
    intercept_ms: float
    space: str
    fingerprint: dict
    table_sha256: str
    cv: dict

    def regressor(self) -> LatencyRegressor:
        reg = LatencyRegressor()
        reg.coef_ = np.array([self.coef[f] for f in FEATURES])
        reg.intercept_ = self.intercept_ms
        reg.n_features_in_ = len(FEATURES)
        return reg

    def predict_specs(self, specs: list[BlockSpec]) -> np.ndarray:
        """Latency (ms) of each block measured alone, as a table would hold it; zero ops cost 0."""
        specs = list(specs)
        out = np.zeros(len(specs))
        real = [i for i, s in enumerate(specs) if s.kind != "zero"]
        if real:
            out[real] = self.regressor().predict(feature_matrix([specs[i] for i in real]))
        return out

    def save(self, path: Path) -> None:
        write_json(path, {"format": FORMAT, "version": VERSION, "model": MODEL, **asdict(self)})

    @classmethod
    def load(cls, path: Path) -> "Predictor":
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise UserError(f"no such predictor: {path}") from None
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: not a pxnas predictor ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise UserError(f"{path}: not a pxnas predictor file")
        if data.get("version") != VERSION or data.get("model") != MODEL:
            raise UserError(f"{path}: predictor version {data.get('version')} / model "
                            f"{data.get('model')!r}; this pxnas reads version {VERSION} / {MODEL!r}")
        try:
            coef = {f: float(data["coef"][f]) for f in FEATURES}
            pred = cls(coef, float(data["intercept_ms"]), str(data["space"]), dict(data["fingerprint"]),
                       str(data["table_sha256"]), dict(data["cv"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{path}: malformed predictor ({exc!r})") from None
        if not all(math.isfinite(v) for v in [*coef.values(), pred.intercept_ms]):
            raise UserError(f"{path}: malformed predictor (non-finite weights)")
        return pred


def fit_table(path: Path, folds: int = 5, seed: int = 0) -> Predictor:
    """Fit a predictor to the latency table at `path`, with k-fold cross-validated error."""
    table = LatencyTable.load(path)
    if len(table) < max(folds, len(FEATURES) + 1):
        raise UserError(f"{path}: {len(table)} rows are too few to fit and cross-validate "
                        f"({folds} folds, {len(FEATURES) + 1} weights)")
    X = feature_matrix([parse_key(k) for k in table.keys])
    y = table.df["latency_ms"].to_numpy(float)
    cv_pred = cross_val_predict(LatencyRegressor(), X, y,
                                cv=KFold(folds, shuffle=True, random_state=seed))
    reg = LatencyRegressor().fit(X, y)
    fp = {k: (None if isinstance(v, float) and math.isnan(v) else v)
          for k, v in table.fingerprint.items()}
    return Predictor(coef=dict(zip(FEATURES, map(float, reg.coef_))), intercept_ms=reg.intercept_,
                     space=table.space, fingerprint=json.loads(json.dumps(fp, default=str)),
                     table_sha256=hashlib.sha256(Path(path).read_bytes()).hexdigest(),
                     cv={"folds": folds, **_errors(y, cv_pred)})
