"""Converters for LightGBM: ``LGBMClassifier``, ``LGBMRegressor`` and ``lightgbm.Booster``
(docs/format/lightgbm.md).

The model is read from ``Booster.dump_model()`` (LightGBM's JSON, thresholds and leaf values printed with
17 significant digits, so read back exactly), never from a pickle. Only the trees ``predict`` uses are
written: up to ``best_iteration`` when early stopping recorded one (LightGBM's default ``num_iteration``).
Refused: linear trees, random-forest mode (averaged output), ``reg_sqrt``, objectives without an exact
transform, categorical codes above 255. Registered only when lightgbm imports
(``pip install modelsync[lightgbm]``).
"""

from __future__ import annotations

from typing import Any

import lightgbm
import numpy as np

from . import ExportContext, UnsupportedEstimator, converter, native_predict
from .trees import labels, small_int

OBJECTIVES = ("binary", "cross_entropy", "regression", "regression_l1", "huber", "fair", "quantile", "mape",
              "poisson", "gamma", "tweedie", "multiclass")
CLASSIFIER_OBJECTIVES = ("binary", "multiclass")
MISSING_TYPES = {"None": 0, "Zero": 1, "NaN": 2}
N_CODES = 256


def _objective(dump: dict[str, Any], allowed: tuple[str, ...]) -> tuple[str, float]:
    words = str(dump.get("objective", "")).split()
    name = words[0] if words else ""
    options = dict(w.split(":", 1) for w in words[1:] if ":" in w)
    if name not in allowed or "sqrt" in words[1:]:
        raise UnsupportedEstimator(f"LightGBM objective {' '.join(words)!r} is not supported; supported: "
                                   f"{', '.join(allowed)}")
    return name, float(options.get("sigmoid", 1.0))


def _flatten(root: dict[str, Any]) -> list[dict[str, Any]]:
    """LightGBM's nested tree as a node list, parent before children (preorder, no recursion)."""
    nodes: list[dict[str, Any]] = []
    stack = [root]
    while stack:
        nd = stack.pop()
        nd["_index"] = len(nodes)
        nodes.append(nd)
        if "leaf_value" not in nd:
            stack.extend((nd["right_child"], nd["left_child"]))  # left popped first
    return nodes


def _tree(info: dict[str, Any], ctx: ExportContext, n_features: int) -> tuple[dict[str, Any], set[int]]:
    nodes = _flatten(info["tree_structure"])
    n = len(nodes)
    left = np.full(n, -1, dtype=np.int64)
    right = np.full(n, -1, dtype=np.int64)
    feature = np.full(n, -2, dtype=np.int64)
    threshold = np.zeros(n)
    default_left = np.zeros(n, dtype=np.uint8)
    mtype = np.zeros(n, dtype=np.uint8)
    value = np.zeros(n)
    cat_nodes: list[int] = []
    bitsets: list[np.ndarray] = []
    cat_cols: set[int] = set()
    for i, nd in enumerate(nodes):
        if "leaf_value" in nd:
            value[i] = float(nd["leaf_value"])
            continue
        left[i] = nd["left_child"]["_index"]
        right[i] = nd["right_child"]["_index"]
        feature[i] = int(nd["split_feature"])
        default_left[i] = bool(nd["default_left"])
        mtype[i] = MISSING_TYPES[nd["missing_type"]]
        if nd["decision_type"] == "==":
            codes = [int(c) for c in str(nd["threshold"]).split("||")]
            if max(codes) >= N_CODES:
                raise UnsupportedEstimator(f"LightGBM category codes above {N_CODES - 1}: not supported")
            bits = np.zeros(N_CODES, dtype=bool)
            bits[codes] = True
            cat_nodes.append(i)
            bitsets.append(np.packbits(bits, bitorder="little"))
            cat_cols.add(int(feature[i]))
        elif nd["decision_type"] == "<=":
            threshold[i] = float(nd["threshold"])
        else:
            raise UnsupportedEstimator(f"LightGBM decision type {nd['decision_type']!r} is not supported")
    out: dict[str, Any] = {
        "children_left": ctx.array(small_int(left, -1, n)),
        "children_right": ctx.array(small_int(right, -1, n)),
        "feature": ctx.array(small_int(feature, -2, n_features)),
        "threshold": ctx.array(threshold),
        "missing_go_to_left": ctx.array(default_left),
        "missing_type": ctx.array(mtype),
        "value": ctx.array(value),
    }
    if cat_nodes:
        split = np.full(n, -1, dtype=np.int64)
        split[cat_nodes] = np.arange(len(cat_nodes))
        out["category_split"] = ctx.array(small_int(split, -1, len(cat_nodes)))
        out["category_bitsets"] = ctx.array(np.stack(bitsets))
    return out, cat_cols


def booster_node(booster: lightgbm.Booster, ctx: ExportContext, classes: Any = None) -> dict[str, Any]:
    """The document node of a Booster: the trees ``predict`` uses by default."""
    dump = booster.dump_model()  # num_iteration=None: up to best_iteration when there is one
    if dump.get("pandas_categorical"):
        raise UnsupportedEstimator("LightGBM models fitted on pandas 'category' columns are not supported; "
                                   "pass integer category codes and categorical_feature")
    if dump.get("average_output"):
        raise UnsupportedEstimator("LightGBM random-forest mode (average_output) is not supported")
    if booster.params.get("linear_tree"):
        raise UnsupportedEstimator("LightGBM linear trees are not supported")
    name, sigmoid = _objective(dump, OBJECTIVES if classes is None else CLASSIFIER_OBJECTIVES)
    K = int(dump["num_tree_per_iteration"])
    F = int(dump["max_feature_idx"]) + 1
    trees, cat_cols = [], set()
    for info in dump["tree_info"]:
        t, cols = _tree(info, ctx, F)
        trees.append(t)
        cat_cols |= cols
    node: dict[str, Any] = {"type": "lightgbm_booster" if classes is None else "lightgbm_classifier",
                            "n_features_in": F}
    if classes is not None:
        node["classes"] = labels(classes)
    node.update({"objective": name, "n_outputs": K})
    if name == "binary":
        node["sigmoid"] = sigmoid
    if cat_cols:
        node["categorical_features"] = sorted(cat_cols)
    node["trees"] = trees
    return node


@converter(lightgbm.LGBMClassifier)
def convert_lgbm_classifier(est: Any, ctx: ExportContext) -> dict[str, Any]:
    return booster_node(est.booster_, ctx, classes=est.classes_)


@converter(lightgbm.LGBMRegressor)
def convert_lgbm_regressor(est: Any, ctx: ExportContext) -> dict[str, Any]:
    return booster_node(est.booster_, ctx)


@converter(lightgbm.Booster)
def convert_booster(booster: Any, ctx: ExportContext) -> dict[str, Any]:
    return booster_node(booster, ctx)


@native_predict(lightgbm.Booster)
def predict_booster(booster: Any, X: Any) -> Any:
    return booster.predict(X)
