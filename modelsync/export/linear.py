"""Converters for scikit-learn's linear models (see docs/format/linear.md)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import (
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    Perceptron,
    Ridge,
    RidgeClassifier,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.svm import LinearSVC, LinearSVR

from . import ExportContext, UnsupportedEstimator, converter

REGRESSOR_TYPES: dict[type, str] = {
    LinearRegression: "linear_regression",
    Ridge: "ridge",
    Lasso: "lasso",
    ElasticNet: "elastic_net",
    SGDRegressor: "sgd_regressor",
    LinearSVR: "linear_svr",
}
CLASSIFIER_TYPES: dict[type, str] = {
    LogisticRegression: "logistic_regression",
    RidgeClassifier: "ridge_classifier",
    SGDClassifier: "sgd_classifier",
    LinearSVC: "linear_svc",
    Perceptron: "perceptron",
}


def dense(a: Any) -> np.ndarray:
    """Coefficients as a float64 ndarray (``sparsify()`` leaves a scipy sparse matrix behind)."""
    if hasattr(a, "toarray"):
        a = a.toarray()
    return np.asarray(a, dtype=np.float64)


def check_finite(est: Any, name: str, a: np.ndarray) -> None:
    ExportContext.refuse_unless(np.isfinite(a), est, name, a, "non-finite: was the fit diverging?")


def feature_names(est: Any) -> list[str] | None:
    names = getattr(est, "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]


def label(v: Any) -> Any:
    """A class label as a JSON value (numpy scalars unwrapped)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        raise UnsupportedEstimator(f"class label {v!r} cannot be represented")
    if not isinstance(v, (str, int, float, bool)):
        raise UnsupportedEstimator(f"class label {v!r} of type {type(v).__name__} is not supported "
                                   "(use strings or numbers)")
    return v


def base_node(est: Any, type_name: str) -> dict[str, Any]:
    node: dict[str, Any] = {"type": type_name, "n_features_in": int(est.n_features_in_)}
    names = feature_names(est)
    if names is not None:
        node["feature_names"] = names
    return node


@converter(*REGRESSOR_TYPES)
def linear_regressor(est: Any, ctx: ExportContext) -> dict[str, Any]:
    coef = dense(est.coef_)
    if coef.ndim not in (1, 2):
        raise UnsupportedEstimator(f"{type(est).__name__}.coef_ has {coef.ndim} dimensions")
    rows = 1 if coef.ndim == 1 else coef.shape[0]
    intercept = np.atleast_1d(np.asarray(est.intercept_, dtype=np.float64)).ravel()
    if intercept.size == 1 and rows != 1:
        intercept = np.full(rows, intercept[0])  # fit_intercept=False leaves the scalar 0.0
    if intercept.size != rows:
        raise UnsupportedEstimator(f"{type(est).__name__}: intercept_ does not match coef_")
    check_finite(est, "coef_", coef)
    check_finite(est, "intercept_", intercept)
    node = base_node(est, REGRESSOR_TYPES[type(est)])
    node["coef"] = ctx.array(coef)
    node["intercept"] = ctx.array(intercept)
    return node


def _probability(est: Any) -> str | None:
    n_classes = len(est.classes_)
    if isinstance(est, LogisticRegression):
        multi_class = getattr(est, "multi_class", "deprecated")
        if multi_class not in ("deprecated", "auto"):
            raise ExportContext.unsupported(est, "multi_class", multi_class, ["auto", "deprecated"])
        return "multinomial" if n_classes > 2 else "ovr"
    if isinstance(est, SGDClassifier):
        if est.loss == "log_loss":
            return "ovr"
        if est.loss == "modified_huber":
            return "modified_huber"
    return None


@converter(*CLASSIFIER_TYPES)
def linear_classifier(est: Any, ctx: ExportContext) -> dict[str, Any]:
    return classifier_node(est, ctx, CLASSIFIER_TYPES[type(est)])


def classifier_node(est: Any, ctx: ExportContext, type_name: str) -> dict[str, Any]:
    """The node of scikit-learn's LinearClassifierMixin (``coef_``, ``intercept_``, ``classes_``)."""
    binarizer = getattr(est, "_label_binarizer", None)
    if binarizer is not None and str(getattr(binarizer, "y_type_", "")).startswith("multilabel"):
        raise ExportContext.unsupported(est, "y", "multilabel", ["binary", "multiclass"])
    classes = [label(c) for c in np.asarray(est.classes_).tolist()]
    if np.ndim(est.classes_) != 1 or len(classes) < 2:
        raise UnsupportedEstimator(f"{type(est).__name__}: expected one list of at least two classes")
    coef = dense(est.coef_)
    if coef.ndim == 1:
        coef = coef.reshape(1, -1)
    intercept = np.atleast_1d(np.asarray(est.intercept_, dtype=np.float64)).ravel()
    if intercept.size == 1 and coef.shape[0] != 1:
        intercept = np.full(coef.shape[0], intercept[0])
    want = 1 if len(classes) == 2 else len(classes)
    if coef.shape[0] != want or intercept.size != want:
        raise UnsupportedEstimator(f"{type(est).__name__}: coef_ has {coef.shape[0]} rows for "
                                   f"{len(classes)} classes")
    check_finite(est, "coef_", coef)
    check_finite(est, "intercept_", intercept)
    node = base_node(est, type_name)
    node["classes"] = classes
    node["coef"] = ctx.array(coef)
    node["intercept"] = ctx.array(intercept)
    probability = _probability(est)
    if probability is not None:
        node["probability"] = probability
    return node
