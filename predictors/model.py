"""Latency predictors fitted from latency tables, and their file format.

A predictor is a scikit-learn pipeline: block keys to features (`BlockFeatures`), then a regressor
of predictors/regressors.py. One positive-linear model is fitted to every block; a block kind with
enough rows may instead get another registered model (a tree ensemble), when cross-validation on
that kind's blocks says it predicts them better. The linear model wins ties: it extrapolates to
widths and resolutions beyond the table, which trees cannot.

A predictor keeps the latency of each block of its table as measured (`measured`) and prices those
blocks by it: a measurement of the very block is a better estimate than any regression of it (the
regression's residuals there are bias, not noise) — unless it lies far from the regression
(OUTLIER), where a disturbed measurement is likelier than a real effect. The regression prices the
blocks beyond the table (other widths, resolutions, kernels); its cross-validated error is the
error on those.

A `Predictor` adds what a user needs to trust it: the table it was fitted on (sha256), the
device fingerprint, and its cross-validated error, overall and per block kind for each model
tried. It is saved as JSON and never unpickled.

File history: 1 (pxnas 0.1) first version; 2 adds `calibration` (null, or the calibration from
block sums to whole networks measured end to end: form, scale, per_call_ms, each form's
leave-one-out error, the networks and the device they were measured on, and which of them were
left out as disturbed: `left_out`, indices, absent from older files) and `sha256`, the
checksum of the rest (sorted-key JSON); 3 adds `by_kind` (block kind: {"model": name, and that
model's fitted state}) for the kinds that use a model other than the shared linear one; 4 adds
`measured` ({key: ms} of the blocks of its table, priced as measured) and, for a predictor adapted
from another device's (predictors/adapt.py), `prior` (that predictor's file, whole, checksum
included) and `scales` (the scale of its prices, and the weights of the deviation from them). Versions 1 to 3
are still read (they price every block by the regression).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import KFold, LeaveOneOut, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline

from profiler.errors import UserError
from profiler.limits import MAX_BLOCK_MS, MAX_SCALE, MIN_BLOCK_MS
from profiler.files import write_json, write_text
from profiler.records import check_fields, load_record, read_mapping, spec
from profiler.space.blockspec import BlockSpec, parse_key
from profiler.space.kinds import KINDS
from profiler.tables.fingerprint import REFERENCE, Reference, reference_of
from profiler.tables.latency import Calibration, LatencySource
from profiler.tables.table import LatencyTable

from .adapt import CALLS, GROUPS, fit_scales, rescaled
from .features import FEATURES, feature_matrix
from .regressors import REGISTRY, LatencyRegressor, _number

FORMAT = "pxnas-predictor"
VERSION = 4
READS = (1, 2, 3, 4)
MODEL = LatencyRegressor.name
# A kind needs this many blocks before another model is tried on it: fewer cannot be split into
# folds that each teach a tree something.
MIN_ROWS = 20
# Another model replaces the linear one on a kind only if its cross-validated error is lower by
# more than this (half a percentage point).
TIE = 0.005
# A measured entry is priced as measured unless it lies this many times its kind's
# cross-validated mean error from the regression (Predictor._latencies).
OUTLIER = 3.0


class BlockFeatures(TransformerMixin, BaseEstimator):
    """Block keys to the features of predictors/features.py: the first step of a predictor's
    pipeline, so what is cross-validated is what is shipped."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return feature_matrix([parse_key(str(k)) for k in np.asarray(X, dtype=object).reshape(-1)])


def pipeline(model: str = MODEL, **params) -> Pipeline:
    return make_pipeline(BlockFeatures(), REGISTRY[model](**params))


def _checksum(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


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
    by_kind: dict = field(default_factory=dict)  # block kind: a fitted regressor of another model
    measured: dict[str, float] = field(default_factory=dict)  # key: ms of its table's blocks
    # Adapted from another device's predictor (predictors/adapt.py): that predictor's file, and
    # the scale of its prices and this device's deviation from them (GROUPS).
    prior: dict | None = None
    scales: dict[str, float] = field(default_factory=dict)

    source = "the predictor"

    @property
    def reference(self) -> Reference | None:
        return reference_of(self.fingerprint)

    def regressor(self) -> LatencyRegressor:
        """The linear model shared by every block kind without a model of its own."""
        return LatencyRegressor.from_json({"coef": self.coef, "intercept_ms": self.intercept_ms})

    def _latencies(self, specs: list[BlockSpec]) -> np.ndarray:
        """Latency (ms) of each block measured alone, as a table would hold it: measured where
        its table measured it, unless the measurement is an outlier; regressed elsewhere."""
        regressed = self.regressed(specs)
        ms = np.array([self.measured.get(s.key, np.nan) for s in specs])
        # An entry OUTLIER times further from the regression than its kind's blocks are on
        # average (their cross-validated error) is more likely a measurement the device disturbed
        # (a long block on a loaded CPU finds no quiet moment) than an effect of its own.
        typical = np.array([self._typical_error(s.kind) for s in specs])
        far = np.abs(np.log(ms / regressed)) > np.log1p(OUTLIER * typical)
        return np.where(np.isnan(ms) | far, regressed, ms)

    def _typical_error(self, kind: str) -> float:
        """The cross-validated mean relative error of the model that prices blocks of `kind`."""
        report = self.cv.get("kinds", {}).get(kind)
        if report:
            return float(report["mape"][report["model"]])
        return float(self.cv.get("mape", np.inf))

    def regressed(self, specs: list[BlockSpec]) -> np.ndarray:
        """The regression's latency (ms) of each block, measured or not."""
        if self.prior is not None:
            return rescaled(self.source_predictor, self.scales, specs)
        X = feature_matrix(specs)
        ms = self.regressor().predict(X)
        for kind, reg in self.by_kind.items():
            rows = [i for i, s in enumerate(specs) if s.kind == kind]
            if rows:
                ms[rows] = reg.predict(X[rows])
        return ms

    @functools.cached_property
    def source_predictor(self) -> "Predictor":
        """The predictor this one was adapted from (its `prior`)."""
        return Predictor.from_data(dict(self.prior), "its prior")

    def save(self, path: Path) -> None:
        write_json(path, self.to_data())

    def to_data(self) -> dict:
        """What its file holds."""
        data = asdict(self)
        info = data.pop("calibration_info")
        data["calibration"] = None if self.calibration is None else {**asdict(self.calibration),
                                                                     **(info or {})}
        data["by_kind"] = {kind: {"model": reg.name, **reg.to_json()}
                           for kind, reg in self.by_kind.items()}
        data = {"format": FORMAT, "version": VERSION, "model": MODEL, **data}
        return data | {"sha256": _checksum(data)}

    @classmethod
    def load(cls, path: Path) -> "Predictor":
        pred = cls.from_data(read_mapping(Path(path), "pxnas predictor"), path)
        pred.source = str(path)
        return pred

    @classmethod
    def from_data(cls, data, path) -> "Predictor":
        """A predictor from a file's data; `path` names it in messages."""
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
        where = f"{path}: malformed predictor"
        record = load_record(_PredictorFile, data, where)
        try:
            linear = LatencyRegressor.from_json(data)
            cal = record.calibration
            calibration = None if cal is None else \
                Calibration(_number(cal.get("scale"), "scale"),
                            _number(cal.get("per_call_ms"), "per_call_ms"))
            info = None if cal is None else {k: v for k, v in cal.items()
                                             if k not in ("scale", "per_call_ms")}
            by_kind = _load_kinds(record.by_kind)
            measured = _load_measured(record.measured)
            scales = _load_scales(record.scales, record.prior)
        except (KeyError, TypeError, ValueError, UserError) as exc:
            raise UserError(f"{where} ({exc})") from None
        pred = cls(dict(zip(FEATURES, map(float, linear.coef_))), linear.intercept_, record.space,
                   record.fingerprint, record.table_sha256, record.cv, calibration, info, by_kind,
                   measured, record.prior, scales)
        if pred.prior is not None:
            try:  # read now: a damaged prior is the file's fault, said when it is loaded
                prior = pred.source_predictor
            except UserError as exc:
                raise UserError(f"{where}: {exc}") from None
            if prior.space != pred.space:
                raise UserError(f"{where}: its prior is of space {prior.space!r}, it is of "
                                f"{pred.space!r}")
        return pred


@dataclass(frozen=True)
class _PredictorFile:
    """The checked shape of a predictor file; each model checks its own state (from_json)."""
    format: str
    version: int
    model: str
    coef: dict[str, float]
    intercept_ms: float
    space: str
    fingerprint: dict
    table_sha256: str
    cv: dict
    calibration: dict | None = None
    by_kind: dict[str, dict] = spec(default_factory=dict)
    measured: dict[str, float] = spec(default_factory=dict)
    prior: dict | None = None
    scales: dict[str, float] = spec(default_factory=dict)

    def __post_init__(self):
        check_fields(self)


def _load_scales(data: dict, prior) -> dict[str, float]:
    if (prior is None) != (not data) or (data and set(data) != set(GROUPS)):
        raise ValueError(f"a prior needs scales, one for each of {', '.join(GROUPS)}, and "
                         f"scales a prior")
    # The scale of the prior is a ratio of two devices' speeds; the rest, ms per unit (a weight).
    return {g: _number(data[g], f"scale {g}", True, MAX_SCALE if g == "source" else MAX_BLOCK_MS)
            for g in GROUPS} if data else {}


def _load_measured(data: dict) -> dict[str, float]:
    """Checked as a table's entries are: keys that parse, latencies a device can take."""
    measured = {}
    for key, ms in data.items():
        parse_key(key)
        measured[key] = _number(ms, f"measured {key}")
        if not MIN_BLOCK_MS <= measured[key] <= MAX_BLOCK_MS:
            raise ValueError(f"measured {key}: {ms!r} ms is not a latency a block takes "
                             f"({MIN_BLOCK_MS:g} to {MAX_BLOCK_MS:g} ms)")
    return measured


def _load_kinds(data) -> dict:
    if not isinstance(data, dict):
        raise TypeError("by_kind must be a mapping of block kinds to models")
    by_kind = {}
    for kind, model in data.items():
        if kind not in KINDS or not KINDS[kind].profiled:
            raise ValueError(f"by_kind: unknown block kind {kind!r}")
        if not isinstance(model, dict) or model.get("model") not in REGISTRY:
            raise ValueError(f"by_kind {kind}: model must be one of {', '.join(REGISTRY)}")
        by_kind[kind] = REGISTRY[model["model"]].from_json(model)
    return by_kind


def _splitter(folds: int | str, n: int, seed: int):
    if folds == "loo":
        return LeaveOneOut()
    return KFold(min(folds, n), shuffle=True, random_state=seed)


def choose_models(keys: np.ndarray, y: np.ndarray, folds: int | str, seed: int,
                  models: list[str]) -> tuple[np.ndarray, dict, dict]:
    """Cross-validate the shared linear model on every block, and each of `models` on each block
    kind with enough rows. Returns the cross-validated predictions of the chosen models, the
    per-kind report ({kind: {"rows", "model", "mape": {model: error}}}) and {kind: fitted
    regressor} for the kinds that do not use the linear model."""
    cv_pred = cross_val_predict(pipeline(), keys, y, cv=_splitter(folds, len(y), seed))
    kinds = np.array([str(parse_key(str(k)).kind) for k in keys])
    report, by_kind = {}, {}
    for kind in sorted(set(kinds)):
        rows = np.flatnonzero(kinds == kind)
        preds = {MODEL: cv_pred[rows]}
        if len(rows) >= MIN_ROWS:
            for name in models:
                if name != MODEL:
                    preds[name] = cross_val_predict(pipeline(name), keys[rows], y[rows],
                                                    cv=_splitter(folds, len(rows), seed))
        errors = {name: float(np.mean(np.abs(p - y[rows]) / y[rows])) for name, p in preds.items()}
        tried = {name: err for name, err in errors.items() if name in models}
        best = min(tried, key=tried.get) if tried else MODEL
        chosen = MODEL if MODEL in tried and errors[best] >= errors[MODEL] - TIE else best
        report[kind] = {"rows": int(len(rows)), "model": chosen, "mape": errors}
        if chosen != MODEL:
            by_kind[kind] = pipeline(chosen).fit(keys[rows], y[rows])[-1]
            cv_pred[rows] = preds[chosen]
    return cv_pred, report, by_kind


def read_tables(paths: Path | list[Path]) -> tuple[list[Path], LatencyTable]:
    """The paths, and their tables merged (they must have been measured the same way)."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    table = LatencyTable.load(paths[0])
    for path in paths[1:]:
        table = table.merge(LatencyTable.load(path))
    return paths, table


def table_fingerprint(table: LatencyTable) -> dict:
    """The fingerprint a predictor records of the table(s) it was made from, as plain JSON."""
    fp = {k: (None if isinstance(v, float) and math.isnan(v) else v)
          for k, v in table.fingerprint.items()}
    if table.reference is None:  # rows at different device speeds (merged tables): none is theirs
        fp |= dict.fromkeys(REFERENCE)
    return json.loads(json.dumps(fp, default=str))


def files_sha256(paths) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def fit_table(paths: Path | list[Path], folds: int | str = 5, seed: int = 0,
              cv_predictions: Path | None = None, models: list[str] | None = None) -> Predictor:
    """Fit a predictor to the latency table(s) at `paths` (merged: they must have been measured
    the same way), with k-fold (or, with folds "loo", leave-one-out) cross-validated error; the
    per-block cross-validated predictions go to `cv_predictions` (CSV) when given. `models` are
    the registered models tried per block kind (default: all); the linear one is always fitted,
    for the kinds with too few blocks for another."""
    models = list(REGISTRY) if models is None else models
    unknown = [m for m in models if m not in REGISTRY]
    if unknown:
        raise UserError(f"unknown model {unknown[0]!r}; known: {', '.join(REGISTRY)}")
    paths, table = read_tables(paths)
    name = " + ".join(map(str, paths))
    least = len(FEATURES) + 1 if folds == "loo" else max(folds, len(FEATURES) + 1)
    if len(table) < least:
        raise UserError(f"{name}: {len(table)} rows are too few to fit and cross-validate "
                        f"({folds} folds, {len(FEATURES) + 1} weights)")
    keys = np.array(table.keys, dtype=object)
    y = table.df["latency_ms"].to_numpy(float)
    cv_pred, kinds, by_kind = choose_models(keys, y, folds, seed, models)
    reg = pipeline().fit(keys, y)[-1]
    if cv_predictions is not None:
        import pandas as pd
        model = [kinds[parse_key(str(k)).kind]["model"] for k in keys]
        write_text(cv_predictions, pd.DataFrame(
            {"key": keys, "model": model, "latency_ms": y, "cv_predicted_ms": cv_pred,
             "ape": np.abs(cv_pred - y) / y}).to_csv(index=False, float_format="%.6g"))
    return Predictor(coef=dict(zip(FEATURES, map(float, reg.coef_))), intercept_ms=reg.intercept_,
                     space=table.space, fingerprint=table_fingerprint(table),
                     table_sha256=files_sha256(paths),
                     cv={"folds": folds, **_errors(y, cv_pred), "kinds": kinds}, by_kind=by_kind,
                     measured=dict(zip(map(str, keys), map(float, y))))


def adapt_table(prior: Predictor, paths: Path | list[Path]) -> Predictor:
    """The predictor of the device whose few measured blocks of the prior's space are in the
    table(s) at `paths`, adapted from `prior` (predictors/adapt.py)."""
    paths, table = read_tables(paths)
    if table.space.split("~")[0] != prior.space:  # a sampled or adapted table keeps its space
        raise UserError(f"{' + '.join(map(str, paths))} was measured for space {table.space!r}, "
                        f"the predictor adapted from is of {prior.space!r}")
    y = table.df["latency_ms"].to_numpy(float)
    scales, cv = fit_scales(prior, [parse_key(k) for k in table.keys], y)
    # Its own linear part is the deviation (ms per unit of each feature, per call): what it
    # adds to the scaled prior.
    return Predictor(coef={f: scales[f] for f in FEATURES},
                     intercept_ms=float(np.mean([scales[c] for c in CALLS])), space=prior.space,
                     fingerprint=table_fingerprint(table), table_sha256=files_sha256(paths),
                     cv=cv, measured=dict(zip(table.keys, map(float, y))), prior=prior.to_data(),
                     scales=scales)
