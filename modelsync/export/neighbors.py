"""Converters for KNeighborsClassifier and KNeighborsRegressor (see docs/format/neighbors.md)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

from . import ExportContext, converter

# effective_metric_ (after scikit-learn folds minkowski p=1/2/inf and aliases) -> document metric
METRICS = {"euclidean": "euclidean", "l2": "euclidean", "manhattan": "manhattan", "l1": "manhattan",
           "cityblock": "manhattan", "chebyshev": "chebyshev", "infinity": "chebyshev",
           "minkowski": "minkowski", "cosine": "cosine"}
SUPPORTED_METRICS = ("euclidean", "manhattan", "chebyshev", "minkowski", "cosine")


def _common(est: Any, ctx: ExportContext) -> dict[str, Any]:
    if est.weights not in ("uniform", "distance"):
        raise ExportContext.unsupported(est, "weights", est.weights, ("uniform", "distance"))
    metric = est.effective_metric_
    if callable(metric) or not isinstance(metric, str) or metric not in METRICS:
        raise ExportContext.unsupported(est, "metric", est.metric, SUPPORTED_METRICS)
    params = dict(est.effective_metric_params_ or {})
    p = params.pop("p", None)
    w = params.pop("w", None)
    if w is not None:
        raise ExportContext.unsupported(est, "metric_params", {"w": "..."}, [None])
    if params:
        raise ExportContext.unsupported(est, "metric_params", est.metric_params, [None])
    fit_X = est._fit_X
    if hasattr(fit_X, "toarray"):
        fit_X = fit_X.toarray()
    node: dict[str, Any] = {
        "n_features_in": int(est.n_features_in_),
        "n_neighbors": int(est.n_neighbors),
        "weights": est.weights,
        "metric": METRICS[metric],
    }
    if node["metric"] == "minkowski":
        node["p"] = float(p if p is not None else est.p)
    node["fit_X"] = ctx.array(np.asarray(fit_X, dtype=np.float64))
    # The search decides which rows tied at the k-th distance are kept: the algorithm, and for the trees
    # the fitted node layout (sklearn/neighbors/_binary_tree.pxi.tp), as scikit-learn searches it.
    node["algorithm"] = est._fit_method
    if est._fit_method in ("kd_tree", "ball_tree"):
        _, idx_array, node_data, node_bounds = est._tree.get_arrays()
        tree = {"idx_array": ctx.array(np.asarray(idx_array, dtype=np.int64)),
                "node_start": ctx.array(np.asarray(node_data["idx_start"], dtype=np.int64)),
                "node_end": ctx.array(np.asarray(node_data["idx_end"], dtype=np.int64)),
                "node_is_leaf": ctx.array(np.asarray(node_data["is_leaf"], dtype=bool)),
                "node_bounds": ctx.array(np.asarray(node_bounds, dtype=np.float64))}
        if est._fit_method == "ball_tree":
            tree["node_radius"] = ctx.array(np.asarray(node_data["radius"], dtype=np.float64))
        node["tree"] = tree
    return node


@converter(KNeighborsClassifier)
def convert_knn_classifier(est: Any, ctx: ExportContext) -> dict[str, Any]:
    if est.outputs_2d_:
        raise ExportContext.unsupported(est, "y", "multi-output targets", ["one target column"])
    node = {"type": "k_neighbors_classifier", **_common(est, ctx)}
    node["classes"] = [c.item() if isinstance(c, np.generic) else c for c in est.classes_.tolist()]
    node["y"] = ctx.array(np.asarray(est._y, dtype=np.int32 if len(est.classes_) < 2**31 else np.int64))
    return node


@converter(KNeighborsRegressor)
def convert_knn_regressor(est: Any, ctx: ExportContext) -> dict[str, Any]:
    return {"type": "k_neighbors_regressor", **_common(est, ctx),
            "y": ctx.array(np.asarray(est._y, dtype=np.float64))}
