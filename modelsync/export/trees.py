"""Converters for scikit-learn's trees and tree ensembles (see docs/format/trees.md).

Every tree is written as parallel arrays in scikit-learn's own node order, straight from the fitted
``tree_`` attributes, in the smallest integer types that hold them exactly (int16 / int32 indices,
uint8 missing flags); thresholds and values stay float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    IsolationForest,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreeClassifier,
    ExtraTreeRegressor,
)

from . import ExportContext, UnsupportedEstimator, converter

GB_CLASSIFIER_LOSSES = ("log_loss", "exponential")
GB_REGRESSOR_LOSSES = ("squared_error", "absolute_error", "huber", "quantile")


def label(v: Any) -> Any:
    """A class label as a JSON value (numpy scalars unwrapped)."""
    return v.item() if isinstance(v, np.generic) else v


def labels(classes: Any) -> list[Any]:
    return [label(v) for v in np.asarray(classes).tolist()]


def small_int(a: np.ndarray, low: int, high: int) -> np.ndarray:
    """``a`` as int16 when every value in [low, high] fits, else int32 (exact either way)."""
    dtype = np.int16 if low >= -(2**15) and high < 2**15 else np.int32
    return np.asarray(a).astype(dtype)


def allow_nan(est: Any) -> bool:
    """Whether scikit-learn's predict accepts NaN for this estimator (its ``allow_nan`` input tag)."""
    try:
        return bool(est.__sklearn_tags__().input_tags.allow_nan)
    except AttributeError:  # scikit-learn < 1.6
        return bool(est._get_tags().get("allow_nan", False))


def tree_node(tree: Any, ctx: ExportContext, value: np.ndarray, n_features: int, *, missing: bool = True,
              feature_map: np.ndarray | None = None) -> dict[str, Any]:
    """One tree: ``children_left/right`` (-1 at leaves), ``feature`` (-2 at leaves), ``threshold``,
    ``missing_go_to_left`` and ``value`` (node-major)."""
    n = int(tree.node_count)
    left = np.asarray(tree.children_left)
    right = np.asarray(tree.children_right)
    feature = np.asarray(tree.feature).astype(np.int64)
    if feature_map is not None:
        feature = np.where(left >= 0, feature_map[np.maximum(feature, 0)], feature)
    out: dict[str, Any] = {
        "children_left": ctx.array(small_int(left, -1, n)),
        "children_right": ctx.array(small_int(right, -1, n)),
        "feature": ctx.array(small_int(feature, -2, n_features)),
        "threshold": ctx.array(np.asarray(tree.threshold, dtype=np.float64)),
    }
    if missing:
        flags = getattr(tree, "missing_go_to_left", None)  # scikit-learn >= 1.3
        flags = np.zeros(n, dtype=np.uint8) if flags is None else np.asarray(flags).astype(np.uint8)
        out["missing_go_to_left"] = ctx.array(flags)
    out["value"] = ctx.array(np.ascontiguousarray(value, dtype=np.float64))
    return out


def _classifier_value(est: Any, tree: Any) -> np.ndarray:
    """Class fractions per node, ``(n_nodes, n_outputs, max_n_classes)``.

    scikit-learn >= 1.4 stores fractions; older versions stored weighted counts and normalised them
    in predict_proba, which normalising here reproduces exactly.
    """
    value = np.array(tree.value, dtype=np.float64)
    total = value.sum(axis=2, keepdims=True)
    if not np.allclose(total[total > 0], 1.0, rtol=0, atol=1e-6):
        total[total == 0.0] = 1.0
        value = value / total
    return value


def _classes(est: Any) -> tuple[Any, int]:
    n_outputs = int(est.n_outputs_)
    if n_outputs == 1:
        return labels(est.classes_), 1
    return [labels(c) for c in est.classes_], n_outputs


def _check_n_outputs(est: Any) -> None:
    if getattr(est, "n_outputs_", 1) < 1:
        raise UnsupportedEstimator(f"{type(est).__name__} has no outputs")


TREE_TYPES: dict[type, str] = {
    DecisionTreeClassifier: "decision_tree_classifier",
    ExtraTreeClassifier: "decision_tree_classifier",
    DecisionTreeRegressor: "decision_tree_regressor",
    ExtraTreeRegressor: "decision_tree_regressor",
    RandomForestClassifier: "random_forest_classifier",
    RandomForestRegressor: "random_forest_regressor",
    ExtraTreesClassifier: "extra_trees_classifier",
    ExtraTreesRegressor: "extra_trees_regressor",
}


@converter(DecisionTreeClassifier, ExtraTreeClassifier, RandomForestClassifier, ExtraTreesClassifier)
def convert_tree_classifier(est: Any, ctx: ExportContext) -> dict[str, Any]:
    _check_n_outputs(est)
    classes, n_outputs = _classes(est)
    n_features = int(est.n_features_in_)
    node: dict[str, Any] = {"type": TREE_TYPES[type(est)], "n_features_in": n_features,
                            "n_outputs": n_outputs, "classes": classes, "allow_nan": allow_nan(est)}
    trees = [est] if hasattr(est, "tree_") else list(est.estimators_)
    docs = [tree_node(t.tree_, ctx, _classifier_value(est, t.tree_), n_features) for t in trees]
    if hasattr(est, "tree_"):
        node["tree"] = docs[0]
    else:
        node["trees"] = docs
    return node


@converter(DecisionTreeRegressor, ExtraTreeRegressor, RandomForestRegressor, ExtraTreesRegressor)
def convert_tree_regressor(est: Any, ctx: ExportContext) -> dict[str, Any]:
    _check_n_outputs(est)
    n_features = int(est.n_features_in_)
    n_outputs = int(est.n_outputs_)
    node: dict[str, Any] = {"type": TREE_TYPES[type(est)], "n_features_in": n_features,
                            "n_outputs": n_outputs, "allow_nan": allow_nan(est)}
    trees = [est] if hasattr(est, "tree_") else list(est.estimators_)
    docs = [tree_node(t.tree_, ctx, np.asarray(t.tree_.value)[:, :, 0], n_features) for t in trees]
    if hasattr(est, "tree_"):
        node["tree"] = docs[0]
    else:
        node["trees"] = docs
    return node


def _gb_init(est: Any) -> np.ndarray:
    """The init estimator's raw prediction, a constant for the supported inits (scikit-learn's own code
    computes it, so the link function and clipping are exactly its)."""
    from sklearn.dummy import DummyClassifier, DummyRegressor

    init = est.init_
    if isinstance(init, str):
        if init != "zero":
            raise ExportContext.unsupported(est, "init", init, ["None", "'zero'", "DummyClassifier",
                                                                "DummyRegressor"])
    elif type(init) is DummyClassifier:
        if init.strategy not in ("prior", "most_frequent", "constant"):
            raise ExportContext.unsupported(est, "init", init, ["None", "'zero'",
                                                                "DummyClassifier(strategy='prior')"])
    elif type(init) is not DummyRegressor:
        raise ExportContext.unsupported(est, "init", init, ["None", "'zero'", "DummyClassifier",
                                                            "DummyRegressor"])
    X0 = np.zeros((2, int(est.n_features_in_)), dtype=np.float32)
    raw = np.asarray(est._raw_predict_init(X0), dtype=np.float64)
    if not np.array_equal(raw[0], raw[1]) or not np.all(np.isfinite(raw)):
        raise UnsupportedEstimator(f"{type(est).__name__}: the init estimator's prediction is not a finite "
                                   "constant")
    return raw[0]


@converter(GradientBoostingClassifier, GradientBoostingRegressor)
def convert_gradient_boosting(est: Any, ctx: ExportContext) -> dict[str, Any]:
    is_clf = isinstance(est, GradientBoostingClassifier)
    losses = GB_CLASSIFIER_LOSSES if is_clf else GB_REGRESSOR_LOSSES
    if est.loss not in losses:
        raise ExportContext.unsupported(est, "loss", est.loss, losses)
    n_features = int(est.n_features_in_)
    stages = np.asarray(est.estimators_)
    node: dict[str, Any] = {
        "type": "gradient_boosting_classifier" if is_clf else "gradient_boosting_regressor",
        "n_features_in": n_features,
    }
    if is_clf:
        node["classes"] = labels(est.classes_)
    node["loss"] = est.loss
    node["learning_rate"] = float(est.learning_rate)
    node["init"] = ctx.array(_gb_init(est))
    node["trees"] = [tree_node(t.tree_, ctx, np.asarray(t.tree_.value)[:, 0, 0], n_features, missing=False)
                     for stage in stages for t in stage]
    return node


@converter(IsolationForest)
def convert_isolation_forest(est: Any, ctx: ExportContext) -> dict[str, Any]:
    from sklearn.ensemble._iforest import _average_path_length

    n_features = int(est.n_features_in_)
    subsample = int(est._max_features) != n_features
    trees = []
    for i, (tree_est, features) in enumerate(zip(est.estimators_, est.estimators_features_, strict=True)):
        tree = tree_est.tree_
        depths = getattr(est, "_decision_path_lengths", None)
        apl = getattr(est, "_average_path_length_per_tree", None)
        dpl = np.asarray(depths[i]) if depths is not None else _node_depths(tree)
        avg = np.asarray(apl[i]) if apl is not None else _average_path_length(tree.n_node_samples)
        # exactly the per-leaf term scikit-learn adds: decision path length + c(n_samples) - 1
        value = dpl + avg - 1.0
        fmap = np.asarray(features, dtype=np.int64) if subsample else None
        trees.append(tree_node(tree, ctx, value, n_features, feature_map=fmap))
    return {
        "type": "isolation_forest",
        "n_features_in": n_features,
        "max_samples": int(est.max_samples_),
        "offset": float(est.offset_),
        "trees": trees,
    }


def _node_depths(tree: Any) -> np.ndarray:
    """Depth of every node (root 1, as ``Tree.compute_node_depths``), for scikit-learn < 1.4."""
    left, right = np.asarray(tree.children_left), np.asarray(tree.children_right)
    depth = np.zeros(int(tree.node_count), dtype=np.int64)
    depth[0] = 1
    for n in range(int(tree.node_count)):  # parents come before children
        if left[n] >= 0:
            depth[left[n]] = depth[right[n]] = depth[n] + 1
    return depth
