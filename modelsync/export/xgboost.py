"""Converters for XGBoost: ``XGBClassifier``, ``XGBRegressor`` and ``xgboost.Booster``
(docs/format/xgboost.md).

The model is read from XGBoost's own JSON (``Booster.save_raw("json")``), never from a pickle. Trees that
``predict`` would not use (after ``best_iteration`` of early stopping, for the scikit-learn wrappers) are
left out. Refused: gblinear and dart boosters, categorical splits, vector leaves, random-forest mode
(``num_parallel_tree > 1``), a ``missing`` value other than NaN, objectives without an exact transform.
Registered only when xgboost imports (``pip install modelsync[xgboost]``).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xgboost

from . import ExportContext, UnsupportedEstimator, converter, native_predict
from .trees import labels, small_int

OBJECTIVES = ("binary:logistic", "reg:logistic", "reg:squarederror", "reg:absoluteerror",
              "reg:pseudohubererror", "binary:logitraw", "count:poisson", "reg:gamma", "reg:tweedie",
              "multi:softprob", "multi:softmax")
CLASSIFIER_OBJECTIVES = ("binary:logistic", "multi:softprob", "multi:softmax")
F32 = np.float32


def base_margin(objective: str, base_score: np.ndarray) -> np.ndarray:
    """XGBoost's ProbToMargin of the stored base_score, in float32 as XGBoost computes it: the argument
    in float32, then a correctly rounded logf (the log in double, rounded once). numpy's own float32
    ``log`` is not correctly rounded (one ulp off for about one base score in six)."""
    bs = base_score.astype(F32)
    with np.errstate(divide="ignore"):
        if objective in ("binary:logistic", "reg:logistic"):
            return (-np.log((F32(1.0) / bs - F32(1.0)).astype(np.float64))).astype(F32)
        if objective in ("count:poisson", "reg:gamma", "reg:tweedie"):
            return np.log(bs.astype(np.float64)).astype(F32)
    return bs


def _tree(t: dict[str, Any], ctx: ExportContext, n_features: int) -> dict[str, Any]:
    if any(t["split_type"]) or t["categories"]:
        raise UnsupportedEstimator("XGBoost categorical splits are not supported")
    if int(t["tree_param"].get("size_leaf_vector", "1")) > 1:
        raise UnsupportedEstimator("XGBoost vector-leaf trees (multi_strategy) are not supported")
    left = np.asarray(t["left_children"], dtype=np.int64)
    right = np.asarray(t["right_children"], dtype=np.int64)
    leaf = left == -1
    n = left.size
    cond = np.asarray(t["split_conditions"], dtype=F32).astype(np.float64)  # leaves: the leaf value
    feature = np.where(leaf, -2, np.asarray(t["split_indices"], dtype=np.int64))
    return {
        "children_left": ctx.array(small_int(left, -1, n)),
        "children_right": ctx.array(small_int(right, -1, n)),
        "feature": ctx.array(small_int(feature, -2, n_features)),
        "threshold": ctx.array(np.where(leaf, 0.0, cond)),
        "missing_go_to_left": ctx.array(np.asarray(t["default_left"], dtype=np.uint8) * ~leaf),
        "value": ctx.array(np.where(leaf, cond, 0.0)),
    }


def booster_node(booster: xgboost.Booster, ctx: ExportContext, n_trees: int | None = None,
                 classes: Any = None) -> dict[str, Any]:
    """The document node of a Booster, its first ``n_trees`` trees (default: all)."""
    learner = json.loads(bytes(booster.save_raw("json")))["learner"]
    gb = learner["gradient_booster"]
    if gb["name"] != "gbtree":
        raise UnsupportedEstimator(f"XGBoost booster {gb['name']!r} is not supported; supported: 'gbtree'")
    objective = learner["objective"]["name"]
    allowed = OBJECTIVES if classes is None else CLASSIFIER_OBJECTIVES
    if objective not in allowed:
        raise UnsupportedEstimator(f"XGBoost objective {objective!r} is not supported; supported: "
                                   f"{', '.join(allowed)}")
    if "c" in (learner.get("feature_types") or []):
        raise UnsupportedEstimator("XGBoost categorical features (enable_categorical) are not supported")
    model = gb["model"]
    if int(model["gbtree_model_param"].get("num_parallel_tree", "1")) != 1:
        raise UnsupportedEstimator("XGBoost num_parallel_tree > 1 is not supported")
    param = learner["learner_model_param"]
    K = max(1, int(param["num_class"]))
    if int(param.get("num_target", "1")) != 1:
        raise UnsupportedEstimator("XGBoost multi-target models are not supported")
    raw = param["base_score"]
    base = np.asarray(json.loads(raw) if raw.startswith("[") else [float(raw)], dtype=np.float64)
    base = np.broadcast_to(base_margin(objective, base), (K,)).astype(np.float64)
    trees = model["trees"][:n_trees]
    info = np.asarray(model["tree_info"][: len(trees)], dtype=np.int64)
    if len(trees) % K or not np.array_equal(info, np.tile(np.arange(K), len(trees) // K)):
        raise UnsupportedEstimator("XGBoost trees must come one per class per iteration")
    F = int(param["num_feature"])
    node: dict[str, Any] = {"type": "xgboost_booster" if classes is None else "xgboost_classifier",
                            "n_features_in": F}
    if classes is not None:
        node["classes"] = labels(classes)
    node.update({"objective": objective, "n_outputs": K, "base_margin": ctx.array(base),
                 "trees": [_tree(t, ctx, F) for t in trees]})
    return node


def _check_missing(est: Any) -> None:
    missing = getattr(est, "missing", np.nan)
    if not (isinstance(missing, float) and np.isnan(missing)):
        raise ExportContext.unsupported(est, "missing", missing, [np.nan])


def _used_trees(est: Any, booster: xgboost.Booster) -> int | None:
    """The trees XGBModel.predict uses: up to best_iteration after early stopping, else all."""
    best = getattr(est, "best_iteration", None) if booster.attr("best_iteration") is not None else None
    if best is None:
        return None
    per_iter = max(1, int(json.loads(booster.save_config())["learner"]["learner_model_param"]["num_class"]))
    return (int(best) + 1) * per_iter


@converter(xgboost.XGBClassifier)
def convert_xgb_classifier(est: Any, ctx: ExportContext) -> dict[str, Any]:
    _check_missing(est)
    booster = est.get_booster()
    return booster_node(booster, ctx, _used_trees(est, booster), classes=est.classes_)


@converter(xgboost.XGBRegressor)
def convert_xgb_regressor(est: Any, ctx: ExportContext) -> dict[str, Any]:
    _check_missing(est)
    booster = est.get_booster()
    return booster_node(booster, ctx, _used_trees(est, booster))


@converter(xgboost.Booster)
def convert_booster(booster: Any, ctx: ExportContext) -> dict[str, Any]:
    return booster_node(booster, ctx)  # Booster.predict uses every tree unless told otherwise


@native_predict(xgboost.Booster)
def predict_booster(booster: Any, X: Any) -> Any:
    return booster.predict(xgboost.DMatrix(X))  # Booster.predict takes a DMatrix
