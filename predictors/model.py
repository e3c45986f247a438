"""Latency predictors fitted from a latency table, and their file format.

`LatencyRegressor` is a scikit-learn estimator: a non-negative linear model of latency in the block
features (predictors/features.py), fitted for relative error, since a table spans 0.01 to 10 ms and
a 1 % error matters as much on a small block as on a large one. Its intercept is the per-call cost
of the runtime. Non-negative weights keep it physical: more work never predicts less time.

A `Predictor` adds what a user needs to trust it: the table it was fitted on (sha256), the
device fingerprint, and its cross-validated error. It is saved as JSON and never unpickled.

File history: 1 (pxnas 0.1) first version; 2 adds `calibration` (null, or the calibration from
block sums to whole networks measured end to end: form, scale, per_call_ms, each form's
leave-one-out error, the networks and the device they were measured on) and `sha256`, the
checksum of the rest (sorted-key JSON). Version 1 files are still read.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold, LeaveOneOut, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.utils.validation import check_is_fitted, validate_data

from profiler.blockspec import BlockSpec, parse_key
from profiler.errors import UserError
from profiler.files import write_json, write_text
from profiler.latency import Calibration, LatencySource
from profiler.table import LatencyTable

from .features import FEATURES, feature_matrix

FORMAT = "pxnas-predictor"
VERSION = 2
READS = (1, 2)
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
        # The intercept is a column of ones among non-negative weights: the per-call cost of the
        # runtime is never negative, whatever the table (an unconstrained fit can make it so).
        ones = np.ones((len(X), 1))
        linear = LinearRegression(positive=True, fit_intercept=False)
        linear.fit(np.hstack([X, ones]), y, sample_weight=weight)
        self.coef_, self.intercept_ = linear.coef_[:-1], float(linear.coef_[-1])
        return self

    def predict(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return X @ self.coef_ + self.intercept_


class BlockFeatures(TransformerMixin, BaseEstimator):
    """Block keys to the features of predictors/features.py: the first step of a predictor's
    pipeline, so what is cross-validated is what is shipped."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return feature_matrix([parse_key(str(k)) for k in np.asarray(X, dtype=object).reshape(-1)])


def pipeline() -> Pipeline:
    return make_pipeline(BlockFeatures(), LatencyRegressor())


def _checksum(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _number(value) -> float:
    # JSON numbers only: a hand-edited "0.1" or true is refused, not coerced.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{value!r} is not a number")
    return float(value)


def _errors(y: np.ndarray, pred: np.ndarray) -> dict:
    ape = np.abs(pred - y) / y
    return {"mape": float(ape.mean()), "median_ape": float(np.median(ape)),
            "p95_ape": float(np.percentile(ape, 95)), "max_ape": float(ape.max())}


@dataclass
class Predictor(LatencySource):
    coef: dict[str, float]
    intercept_ms: float
    space: str
    fingerprint: dict
    table_sha256: str
    cv: dict
    calibration: Calibration | None = None
    calibration_info: dict | None = None  # form, cv, networks, fingerprint

    def regressor(self) -> LatencyRegressor:
        reg = LatencyRegressor()
        reg.coef_ = np.array([self.coef[f] for f in FEATURES])
        reg.intercept_ = self.intercept_ms
        reg.n_features_in_ = len(FEATURES)
        return reg

    source = "the predictor"

    def _latencies(self, specs: list[BlockSpec]) -> np.ndarray:
        """Latency (ms) of each block measured alone, as a table would hold it."""
        return self.regressor().predict(feature_matrix(specs))

    def save(self, path: Path) -> None:
        data = asdict(self)
        info = data.pop("calibration_info")
        data["calibration"] = None if self.calibration is None else {**asdict(self.calibration),
                                                                     **(info or {})}
        data = {"format": FORMAT, "version": VERSION, "model": MODEL, **data}
        write_json(path, data | {"sha256": _checksum(data)})

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
        # A file without a checksum was edited by hand on purpose; a wrong one was damaged.
        if "sha256" in data and data.pop("sha256") != _checksum(data):
            raise UserError(f"{path}: its checksum does not match its contents: the file was "
                            f"changed or damaged after it was written (delete the sha256 field "
                            f"to accept an edit made on purpose)")
        if data.get("version") not in READS or data.get("model") != MODEL:
            raise UserError(f"{path}: predictor version {data.get('version')} / model "
                            f"{data.get('model')!r}; this pxnas reads versions "
                            f"{', '.join(map(str, READS))} / {MODEL!r}")
        try:
            coef = {f: _number(data["coef"][f]) for f in FEATURES}
            cal = data.get("calibration")
            calibration = None if cal is None else \
                Calibration(_number(cal["scale"]), _number(cal["per_call_ms"]))
            info = None if cal is None else {k: v for k, v in cal.items()
                                             if k not in ("scale", "per_call_ms")}
            pred = cls(coef, _number(data["intercept_ms"]), str(data["space"]),
                       dict(data["fingerprint"]), str(data["table_sha256"]), dict(data["cv"]),
                       calibration, info)
        except (KeyError, TypeError, ValueError, UserError) as exc:
            raise UserError(f"{path}: malformed predictor ({exc})") from None
        if not all(math.isfinite(v) and v >= 0 for v in [*coef.values(), pred.intercept_ms]):
            raise UserError(f"{path}: malformed predictor (weights must be finite and "
                            f"non-negative)")
        pred.source = str(path)
        return pred


def fit_table(paths: Path | list[Path], folds: int | str = 5, seed: int = 0,
              cv_predictions: Path | None = None) -> Predictor:
    """Fit a predictor to the latency table(s) at `paths` (merged: they must have been measured
    the same way), with k-fold (or, with folds "loo", leave-one-out) cross-validated error; the
    per-block cross-validated predictions go to `cv_predictions` (CSV) when given."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    table = LatencyTable.load(paths[0])
    for path in paths[1:]:
        table = table.merge(LatencyTable.load(path))
    name = " + ".join(map(str, paths))
    least = len(FEATURES) + 1 if folds == "loo" else max(folds, len(FEATURES) + 1)
    if len(table) < least:
        raise UserError(f"{name}: {len(table)} rows are too few to fit and cross-validate "
                        f"({folds} folds, {len(FEATURES) + 1} weights)")
    keys = np.array(table.keys, dtype=object)
    y = table.df["latency_ms"].to_numpy(float)
    split = LeaveOneOut() if folds == "loo" else KFold(folds, shuffle=True, random_state=seed)
    cv_pred = cross_val_predict(pipeline(), keys, y, cv=split)
    reg = pipeline().fit(keys, y)[-1]
    if cv_predictions is not None:
        import pandas as pd
        write_text(cv_predictions, pd.DataFrame(
            {"key": keys, "latency_ms": y, "cv_predicted_ms": cv_pred,
             "ape": np.abs(cv_pred - y) / y}).to_csv(index=False, float_format="%.6g"))
    fp = {k: (None if isinstance(v, float) and math.isnan(v) else v)
          for k, v in table.fingerprint.items()}
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return Predictor(coef=dict(zip(FEATURES, map(float, reg.coef_))), intercept_ms=reg.intercept_,
                     space=table.space, fingerprint=json.loads(json.dumps(fp, default=str)),
                     table_sha256=digest.hexdigest(), cv={"folds": folds, **_errors(y, cv_pred)})
