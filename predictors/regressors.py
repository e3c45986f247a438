"""The regressors a predictor can hold, one class each, registered by name.

Each is a scikit-learn estimator on block features (predictors/features.py) fitted for relative
error (a table spans 0.01 to 10 ms, and a 1 % error matters as much on a small block as on a large
one), and each turns its fitted state into plain JSON and back (`to_json`, `from_json`): predictor
files are never unpickled. A new model is one class here with a `name`, added to `REGISTRY`.

- positive-linear: latency linear in the work of each operator kind and the bytes moved, with
  non-negative weights (more work never predicts less time); its intercept is the runtime's
  per-call cost. It extrapolates to wider or larger blocks than those it was fitted on.
- gradient-boosting, random-forest: tree ensembles (nn-Meter's choice), which fit what is not
  linear (cache effects, kernels a runtime fuses) but predict no further than the blocks they
  saw. Their fitted trees are read out of scikit-learn into arrays, and the same arrays predict
  before and after a save, so what is cross-validated is what is shipped.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import LinearRegression
from sklearn.utils.validation import check_is_fitted, validate_data

from profiler.limits import MAX_BLOCK_MS

from .features import FEATURES


def _relative_weight(y: np.ndarray) -> np.ndarray:
    # Least squares weighted by 1 / latency^2 is least squares of the relative error.
    return 1.0 / np.maximum(np.abs(y), 1e-12) ** 2


def _number(value, what: str, nonnegative: bool = False,
            largest: float | None = MAX_BLOCK_MS) -> float:
    """A number of a model's state. In ms, or in ms per unit of a feature (an MMAC, a MB: a
    weight), it is at most `largest` in size: one unit of a feature taking longer than any block
    (profiler/limits.py) is a damaged or hand-made file, whose predictions would be nonsense."""
    # JSON numbers only: a hand-edited "0.1" or true is refused, not coerced.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what}: {value!r} is not a number")
    try:
        value = float(value)  # an integer too large for a float is no finite number
    except OverflowError:
        value = math.inf
    if not math.isfinite(value) or (nonnegative and value < 0) \
            or (largest is not None and abs(value) > largest):
        raise ValueError(f"{what} must be finite" + (" and non-negative" if nonnegative else "")
                         + (f", at most {largest:g} in size" if largest is not None else "")
                         + f", got {value!r}")
    return value


class Regressor(RegressorMixin, BaseEstimator):
    """A registered model: fitted for relative error, saved as JSON."""

    name = ""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Fitted for relative error under physical constraints, these models suit latencies, not
        # the arbitrary targets (near zero, negative) of scikit-learn's generic checks.
        tags.regressor_tags.poor_score = True
        return tags

    def to_json(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_json(cls, data: dict) -> "Regressor":
        raise NotImplementedError


class LatencyRegressor(Regressor):
    name = "positive-linear"

    def __init__(self, relative: bool = True):
        self.relative = relative

    def fit(self, X, y):
        X, y = validate_data(self, X, y, y_numeric=True)
        weight = _relative_weight(y) if self.relative else None
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

    def to_json(self) -> dict:
        return {"coef": dict(zip(FEATURES, map(float, self.coef_))),
                "intercept_ms": float(self.intercept_)}

    @classmethod
    def from_json(cls, data: dict) -> "LatencyRegressor":
        reg = cls()
        reg.coef_ = np.array([_number(data["coef"][f], f"weight {f}", True) for f in FEATURES])
        reg.intercept_ = _number(data["intercept_ms"], "intercept_ms", True)
        reg.n_features_in_ = len(FEATURES)
        return reg


class TreeEnsemble(Regressor):
    """prediction = init + scale * sum of the trees' leaf values, whether the trees were boosted
    (init: a constant, scale: the learning rate) or bagged (init 0, scale 1 / trees)."""

    def _sklearn(self):
        raise NotImplementedError

    def _read(self, est) -> tuple[float, float, list]:
        raise NotImplementedError

    def fit(self, X, y):
        X, y = validate_data(self, X, y, y_numeric=True)
        est = self._sklearn().fit(X, y, sample_weight=_relative_weight(y))
        self.init_, self.scale_, estimators = self._read(est)
        self.trees_ = [_tree_arrays(e.tree_) for e in estimators]
        return self

    def predict(self, X):
        check_is_fitted(self)
        # Trees split float32 features, as scikit-learn's do, so the thresholds cut alike.
        X = validate_data(self, X, reset=False).astype(np.float32)
        return self.init_ + self.scale_ * sum(_tree_predict(t, X) for t in self.trees_)

    def to_json(self) -> dict:
        return {"init": float(self.init_), "scale": float(self.scale_),
                "trees": [{k: v.tolist() for k, v in t.items()} for t in self.trees_]}

    @classmethod
    def from_json(cls, data: dict) -> "TreeEnsemble":
        reg = cls()
        reg.init_ = _number(data["init"], "init")
        reg.scale_ = _number(data["scale"], "scale", True)
        reg.trees_ = [_checked_tree(t, i) for i, t in enumerate(data["trees"])]
        reg.n_features_in_ = len(FEATURES)
        return reg


class BoostedTrees(TreeEnsemble):
    name = "gradient-boosting"

    def __init__(self, n_estimators: int = 200, max_depth: int = 3, learning_rate: float = 0.1,
                 random_state: int = 0):
        self.n_estimators, self.max_depth = n_estimators, max_depth
        self.learning_rate, self.random_state = learning_rate, random_state

    def _sklearn(self):
        return GradientBoostingRegressor(n_estimators=self.n_estimators, max_depth=self.max_depth,
                                         learning_rate=self.learning_rate,
                                         random_state=self.random_state)

    def _read(self, est):
        return float(est.init_.constant_.reshape(-1)[0]), est.learning_rate, \
            list(est.estimators_[:, 0])


class RandomForest(TreeEnsemble):
    name = "random-forest"

    # Leaves of at least 3 blocks keep a saved forest to a few hundred kB on a full table.
    def __init__(self, n_estimators: int = 50, min_samples_leaf: int = 3, random_state: int = 0):
        self.n_estimators, self.min_samples_leaf = n_estimators, min_samples_leaf
        self.random_state = random_state

    def _sklearn(self):
        return RandomForestRegressor(n_estimators=self.n_estimators,
                                     min_samples_leaf=self.min_samples_leaf,
                                     random_state=self.random_state)

    def _read(self, est):
        return 0.0, 1.0 / len(est.estimators_), list(est.estimators_)


TREE_FIELDS = ("left", "right", "feature", "threshold", "value")


def _tree_arrays(tree) -> dict[str, np.ndarray]:
    return {"left": tree.children_left.astype(np.int64), "right": tree.children_right.astype(np.int64),
            "feature": tree.feature.astype(np.int64), "threshold": tree.threshold.astype(float),
            "value": tree.value.reshape(-1).astype(float)}


def _checked_tree(data: dict, index: int) -> dict[str, np.ndarray]:
    """A tree from a file, refused unless every node leads only to later nodes (so a walk ends)
    and splits a feature that exists."""
    what = f"tree {index}"
    if not isinstance(data, dict) or set(data) != set(TREE_FIELDS):
        raise ValueError(f"{what} must have exactly the fields {', '.join(TREE_FIELDS)}")
    ints = {k: data[k] for k in ("left", "right", "feature")}
    floats = {k: data[k] for k in ("threshold", "value")}
    for k, v in {**ints, **floats}.items():
        if not isinstance(v, list) or not v:
            raise ValueError(f"{what}: {k} must be a non-empty list")
    n = len(data["left"])
    if any(len(data[k]) != n for k in TREE_FIELDS):
        raise ValueError(f"{what}: its fields have different lengths")
    for k, v in ints.items():
        if any(isinstance(x, bool) or not isinstance(x, int) for x in v):
            raise TypeError(f"{what}: {k} must hold integers")
    tree = {k: np.array(v, dtype=np.int64) for k, v in ints.items()}
    # A threshold is a feature's value, not a latency: it has no bound of its own.
    tree |= {k: np.array([_number(x, f"{what} {k}", largest=None if k == "threshold" else
                                  MAX_BLOCK_MS) for x in v]) for k, v in floats.items()}
    node = np.arange(n)
    leaf = tree["left"] < 0
    inner = ~leaf
    if not (np.all(tree["left"][leaf] == -1) and np.all(tree["right"][leaf] == -1)
            and np.all(tree["left"][inner] > node[inner]) and np.all(tree["left"][inner] < n)
            and np.all(tree["right"][inner] > node[inner]) and np.all(tree["right"][inner] < n)
            and np.all((tree["feature"][inner] >= 0) & (tree["feature"][inner] < len(FEATURES)))):
        raise ValueError(f"{what}: nodes must lead to later nodes and split known features")
    return tree


def _tree_predict(tree: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    node = np.zeros(len(X), dtype=np.int64)
    rows = np.arange(len(X))
    while True:
        inner = tree["left"][node] >= 0
        if not inner.any():
            return tree["value"][node]
        at, r = node[inner], rows[inner]
        go_left = X[r, tree["feature"][at]] <= tree["threshold"][at]
        node[inner] = np.where(go_left, tree["left"][at], tree["right"][at])


REGISTRY = {cls.name: cls for cls in (LatencyRegressor, BoostedTrees, RandomForest)}
