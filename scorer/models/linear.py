"""Linear models: ``X @ coef.T + intercept`` and what scikit-learn builds on top of it.

Regressors keep scikit-learn's coefficient shape (1-D for one target, 2-D for several) so that the
matrix product is the same BLAS call as scikit-learn's and the outputs have the same shape.
Classifiers always hold a 2-D ``coef`` with one row (two classes) or one row per class.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._base import (
    Estimator,
    InvalidInput,
    LoadContext,
    MethodNotSupported,
    as_float,
    register,
)
from .._limits import RowCost
from .._links import binary_proba, expit, expit_scalar, numpy_exp, softmax

PROBABILITY_MODES = ("multinomial", "ovr", "modified_huber")

_add_reduce = np.add.reduce
_F8 = np.dtype(np.float64)


# -- helpers shared with the other families of this package (preprocessing, compose) ---------------

def load_feature_names(node: dict[str, Any], ctx: LoadContext, n_features: int) -> list[str] | None:
    """Optional ``feature_names``: the names scikit-learn saw at fit, only used in error messages."""
    names = ctx.get(node, "feature_names", list, default=None)
    if names is None:
        return None
    if len(names) != n_features or not all(isinstance(n, str) for n in names):
        raise ctx.fail(f"must be a list of {n_features} strings (one per input column)", "feature_names")
    return list(names)


def column_label(names: list[str] | None, column: int) -> str:
    return repr(names[column]) if names is not None and 0 <= column < len(names) else f"column {column}"


def check_width(X: np.ndarray, n_features: int, type_name: str) -> None:
    """Composites hand sub-matrices to their children; a mismatch here is a bug in the document."""
    if X.ndim != 2:
        raise InvalidInput(f"{type_name}: expected a 2-D matrix, got {X.ndim}-D")
    if n_features and X.shape[1] != n_features:
        raise InvalidInput(f"{type_name}: expected {n_features} columns, got {X.shape[1]}")


def finite_matrix(X: np.ndarray, n_features: int, type_name: str, names: list[str] | None = None,
                  allow_nan: bool = False) -> np.ndarray:
    """``as_float`` plus scikit-learn's input check: NaN (unless allowed) and infinities are errors."""
    check_width(X, n_features, type_name)
    Xf = as_float(X, type_name)
    # One reduction first: a NaN or an infinity anywhere makes the sum non-finite (a finite sum that
    # overflows only costs the exact check below).
    if not allow_nan and all_finite_fast(Xf):
        return Xf
    bad = np.isinf(Xf) if allow_nan else ~np.isfinite(Xf)
    if bad.any():
        r, c = (int(i) for i in np.argwhere(bad)[0])
        what = "an infinite value" if np.isinf(Xf[r, c]) else "a missing value (NaN)"
        feature = column_label(names, c)
        raise InvalidInput(f"row {r}, feature {feature}: {type_name} cannot handle {what}", row=r,
                           feature=names[c] if names is not None else str(c))
    return Xf




def all_finite_fast(X: np.ndarray) -> bool:
    """True when the float64 ``X`` has no NaN / infinity; may say False for a finite ``X`` whose sum
    overflows (callers then run the exact element-wise check). One row: a Python sum of its floats,
    cheaper than a numpy reduction at that size."""
    if X.shape[0] == 1:
        return math.isfinite(sum(X.tolist()[0])) if X.ndim == 2 else math.isfinite(sum(X.ravel().tolist()))
    return math.isfinite(_add_reduce(X, axis=None))










def ovr_normalize(prob: np.ndarray) -> np.ndarray:
    """Row-normalise one-vs-rest probabilities; all-zero rows become uniform (as scikit-learn)."""
    prob_sum = prob.sum(axis=1)
    all_zero = prob_sum == 0
    if all_zero.any():
        prob[all_zero, :] = 1
        prob_sum[all_zero] = prob.shape[1]
    prob /= prob_sum.reshape((prob.shape[0], 1))
    return prob


def load_coef(node: dict[str, Any], ctx: LoadContext, n_features: int, classifier: bool,
              n_classes: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``coef`` (1-D or 2-D) and ``intercept`` (1-D) with their shapes checked against each other."""
    coef = ctx.array(node, "coef", "float64")
    if coef.ndim not in ((2,) if classifier else (1, 2)):
        raise ctx.fail(f"expected a {'2-D' if classifier else '1-D or 2-D'} array, got {coef.ndim}-D", "coef")
    if coef.shape[-1] != n_features:
        raise ctx.fail(f"coef has {coef.shape[-1]} columns but n_features_in is {n_features}", "coef")
    rows = 1 if coef.ndim == 1 else coef.shape[0]
    if classifier:
        want = 1 if n_classes == 2 else n_classes
        if rows != want:
            raise ctx.fail(f"coef needs {want} row(s) for {n_classes} classes, got {rows}", "coef")
    elif rows == 0:
        raise ctx.fail("coef has no rows", "coef")
    intercept = ctx.array(node, "intercept", "float64", ndim=1)
    if intercept.shape[0] != rows:
        raise ctx.fail(f"intercept has {intercept.shape[0]} values, coef has {rows} row(s)", "intercept")
    return coef, intercept


# -- regressors -------------------------------------------------------------------------------------

@register("linear_regressor", "linear_regression", "ridge", "lasso", "elastic_net", "sgd_regressor",
          "linear_svr")
class LinearRegressor(Estimator):
    """``predict(X) = X @ coef + intercept`` (1-D coef) or ``X @ coef.T + intercept`` (2-D coef)."""

    reads_input_only = True  # never writes into X: Model may hand it the caller's float64 array

    def __init__(self, coef: np.ndarray, intercept: np.ndarray, names: list[str] | None) -> None:
        self.coef = coef
        self.intercept = intercept
        self.n_features_in = coef.shape[-1]
        self.feature_names = names
        # Transposed view once, at load; for 1-D coef sklearn multiplies by the vector itself.
        self._coef_t = coef.T if coef.ndim == 2 else coef

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> LinearRegressor:
        n = ctx.integer(node, "n_features_in", minimum=1)
        coef, intercept = load_coef(node, ctx, n, classifier=False)
        est = cls(coef, intercept, load_feature_names(node, ctx, n))
        est.type_name = node["type"]
        return est

    def predict(self, X: np.ndarray) -> np.ndarray:
        Xf = finite_matrix(X, self.n_features_in, self.type_name, self.feature_names)
        out: np.ndarray = Xf @ self._coef_t + self.intercept
        return out

    def row_cost(self) -> RowCost:
        n, k = self.n_features_in, (self.coef.shape[0] if self.coef.ndim == 2 else 1)
        return RowCost(width=2 * n + 2 * k, work=n * k + k, out=k)


# -- classifiers ------------------------------------------------------------------------------------

@register("linear_classifier", "logistic_regression", "ridge_classifier", "sgd_classifier", "linear_svc",
          "perceptron")
class LinearClassifier(Estimator):
    """scikit-learn's LinearClassifierMixin; ``probability`` selects how predict_proba is derived."""

    reads_input_only = True  # never writes into X: Model may hand it the caller's float64 array

    _PROBA_ALLOWED: dict[str, tuple[str | None, ...]] = {
        "logistic_regression": ("multinomial", "ovr"),
        "sgd_classifier": (None, "ovr", "modified_huber"),
        "linear_classifier": (None, *PROBABILITY_MODES),
    }

    def __init__(self, coef: np.ndarray, intercept: np.ndarray, classes: np.ndarray, probability: str | None,
                 names: list[str] | None) -> None:
        self.coef = coef
        self.intercept = intercept
        self.classes = classes
        self.probability = probability
        self.n_features_in = coef.shape[1]
        self.feature_names = names
        self._coef_t = coef.T
        self._intercept0 = float(intercept[0]) if intercept.shape[0] == 1 else 0.0
        # one-row predict_proba in Python floats: two classes, a logistic probability
        self._row_logistic = coef.shape[0] == 1 and probability in ("multinomial", "ovr")

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> LinearClassifier:
        n = ctx.integer(node, "n_features_in", minimum=1)
        classes = ctx.labels(node, "classes")
        if len(classes) < 2:
            raise ctx.fail("a classifier needs at least two classes", "classes")
        if len(set(classes.tolist())) != len(classes):
            raise ctx.fail("classes must be distinct", "classes")
        coef, intercept = load_coef(node, ctx, n, classifier=True, n_classes=len(classes))
        type_name = node.get("type", "")
        allowed = cls._PROBA_ALLOWED.get(type_name, (None,))
        probability = ctx.get(node, "probability", str, default=None)
        if probability not in allowed:
            raise ctx.fail(f"{type_name} supports probability {[a for a in allowed if a]}"
                           if any(allowed) else f"{type_name} has no predict_proba", "probability")
        est = cls(coef, intercept, classes, probability, load_feature_names(node, ctx, n))
        est.type_name = type_name
        return est

    def supports(self, method: str) -> bool:
        if method == "predict_proba":
            return self.probability is not None
        return super().supports(method)

    def _scores(self, X: np.ndarray) -> np.ndarray:
        """``X @ coef.T + intercept`` as a fresh (rows, 1 or classes) array (the add done in place)."""
        Xf = finite_matrix(X, self.n_features_in, self.type_name, self.feature_names)
        scores: np.ndarray = Xf @ self._coef_t
        scores += self.intercept
        return scores

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        scores = self._scores(X)
        return scores.reshape(-1) if scores.shape[1] == 1 else scores

    def predict(self, X: np.ndarray) -> np.ndarray:
        scores = self.decision_function(X)
        indices = (scores > 0).astype(np.intp) if scores.ndim == 1 else scores.argmax(axis=1)
        assert self.classes is not None
        return self.classes.take(indices, axis=0)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if self.probability is None:
            raise MethodNotSupported(f"{self.type_name} has no predict_proba (loss without probabilities)")
        if (self._row_logistic and X.ndim == 2 and X.shape[0] == 1 and X.dtype == _F8
                and X.shape[1] == self.n_features_in and all_finite_fast(X)):
            # scikit-learn's arithmetic (X @ coef.T + intercept, scipy's expit, 1 - p) on one row
            p = expit_scalar(float((X @ self._coef_t)[0, 0]) + self._intercept0)
            out = np.empty((1, 2))
            out[0, 0] = 1.0 - p
            out[0, 1] = p
            return out
        scores = self._scores(X)
        if self.probability == "modified_huber":
            return _modified_huber_proba(scores.reshape(-1) if scores.shape[1] == 1 else scores)
        if scores.shape[1] == 1:
            if scores.shape[0] == 1:  # one row: Python floats, scipy's exact arithmetic, no numpy temporaries
                p = expit_scalar(float(scores[0, 0]))
                return np.array([[1.0 - p, p]])
            p1 = scores.reshape(-1)  # numpy's exp for batches (within one ulp of scipy's expit)
            return binary_proba(expit(p1, exp=numpy_exp, out=p1))
        if self.probability == "multinomial":
            return softmax(scores, copy=False)
        return ovr_normalize(expit(scores, exp=numpy_exp, out=scores))


def _modified_huber_proba(scores: np.ndarray) -> np.ndarray:
    """SGDClassifier(loss='modified_huber'): (clip(d, -1, 1) + 1) / 2, then OvR-normalised."""
    if scores.ndim == 1:
        prob2 = np.ones((scores.shape[0], 2))
        prob = prob2[:, 1]
        np.clip(scores, -1, 1, prob)
        prob += 1.0
        prob /= 2.0
        prob2[:, 0] -= prob
        return prob2
    prob = np.clip(scores, -1, 1)
    prob += 1.0
    prob /= 2.0
    return ovr_normalize(prob)

