"""Converters for VotingClassifier/Regressor, StackingClassifier/Regressor and BaggingClassifier/Regressor
(see docs/format/ensemble.md). The fitted children (``estimators_``) are converted with ``ctx.convert``:
any supported estimator, pipelines included.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import (
    AdaBoostClassifier,
    AdaBoostRegressor,
    BaggingClassifier,
    BaggingRegressor,
    StackingClassifier,
    StackingRegressor,
    VotingClassifier,
    VotingRegressor,
)

from . import ExportContext, UnsupportedEstimator, converter


def _classes(est: Any) -> list[Any]:
    return [c.item() if isinstance(c, np.generic) else c for c in np.asarray(est.classes_).tolist()]


def _active_names(est: Any) -> list[str]:
    return [str(name) for name, e in est.estimators if not (isinstance(e, str) and e == "drop")]


def _members(est: Any, ctx: ExportContext) -> list[dict[str, Any]]:
    return [{"name": n, "estimator": ctx.convert(e)}
            for n, e in zip(_active_names(est), est.estimators_, strict=True)]


def _weights(est: Any) -> list[float] | None:
    w = est._weights_not_none
    return None if w is None else [float(x) for x in w]


@converter(VotingClassifier)
def voting_classifier(est: Any, ctx: ExportContext) -> dict[str, Any]:
    if est.voting == "soft" and not est.flatten_transform:
        raise ExportContext.unsupported(est, "flatten_transform", False, [True])
    return {"type": "voting_classifier", "n_features_in": int(est.n_features_in_), "classes": _classes(est),
            "voting": est.voting, "weights": _weights(est), "estimators": _members(est, ctx)}


@converter(VotingRegressor)
def voting_regressor(est: Any, ctx: ExportContext) -> dict[str, Any]:
    return {"type": "voting_regressor", "n_features_in": int(est.n_features_in_), "weights": _weights(est),
            "estimators": _members(est, ctx)}


@converter(StackingClassifier, StackingRegressor)
def stacking(est: Any, ctx: ExportContext) -> dict[str, Any]:
    classifier = isinstance(est, StackingClassifier)
    if classifier and isinstance(est._label_encoder, list):
        raise UnsupportedEstimator("StackingClassifier fitted on multilabel targets is not supported")
    if getattr(getattr(est.final_estimator_, "coef_", None), "dtype", None) == np.float32:
        # the stacked predictions were float32 (every base estimator's, e.g. XGBoost's): scikit-learn fitted
        # the final linear model on them and scores it in float32, which the format does not model
        raise UnsupportedEstimator(
            f"{type(est).__name__}: the final estimator {type(est.final_estimator_).__name__} was fitted on "
            "float32 data (every base estimator predicts float32, as XGBoost's do), so scikit-learn "
            "scores it in float32, which the document format does not model; add a base estimator "
            "predicting float64 or use passthrough=True")
    members = [dict(m, method=str(meth))
               for m, meth in zip(_members(est, ctx), est.stack_method_, strict=True)]
    node: dict[str, Any] = {"type": "stacking_classifier" if classifier else "stacking_regressor",
                            "n_features_in": int(est.n_features_in_)}
    if classifier:
        node["classes"] = _classes(est)
    node.update({"estimators": members, "passthrough": bool(est.passthrough),
                 "final_estimator": ctx.convert(est.final_estimator_)})
    return node


@converter(BaggingClassifier, BaggingRegressor)
def bagging(est: Any, ctx: ExportContext) -> dict[str, Any]:
    classifier = isinstance(est, BaggingClassifier)
    node: dict[str, Any] = {"type": "bagging_classifier" if classifier else "bagging_regressor",
                            "n_features_in": int(est.n_features_in_)}
    if classifier:
        node["classes"] = _classes(est)
    node["estimators"] = [{"estimator": ctx.convert(e), "features": ctx.array(np.asarray(f, dtype=np.int64))}
                          for e, f in zip(est.estimators_, est.estimators_features_, strict=True)]
    return node


@converter(AdaBoostClassifier, AdaBoostRegressor)
def ada_boost(est: Any, ctx: ExportContext) -> dict[str, Any]:
    classifier = isinstance(est, AdaBoostClassifier)
    if classifier and getattr(est, "algorithm", "SAMME") not in ("SAMME", "deprecated"):
        raise ExportContext.unsupported(est, "algorithm", est.algorithm, ["SAMME"])
    node: dict[str, Any] = {"type": "ada_boost_classifier" if classifier else "ada_boost_regressor",
                            "n_features_in": int(est.n_features_in_)}
    if classifier:
        node["classes"] = _classes(est)
    node["estimator_weights"] = ctx.array(np.asarray(est.estimator_weights_, dtype=np.float64))
    node["estimators"] = [{"estimator": ctx.convert(e)} for e in est.estimators_]
    return node
