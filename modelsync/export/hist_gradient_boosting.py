"""Converters for HistGradientBoostingClassifier / Regressor (see docs/format/trees.md).

The document is written from the fitted predictors (``_predictors[i][k].nodes``), the baseline and,
for categorical features, the categories of scikit-learn's internal OrdinalEncoder, so that string
categories work end to end. Split features are remapped from the encoder's column order (categorical
columns first) back to the input's column order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from . import ExportContext, UnsupportedEstimator, converter
from .trees import label, labels, small_int

CLASSIFIER_LOSSES = ("log_loss",)
REGRESSOR_LOSSES = ("squared_error", "absolute_error", "quantile", "poisson", "gamma")


def _is_nan(v: Any) -> bool:
    return isinstance(v, float) and v != v


def _input_columns(est: Any) -> tuple[np.ndarray, dict[int, list[Any]], dict[int, np.ndarray]]:
    """Input column of every predictor feature; per categorical input column its categories and the
    map from the raw value the predictors' bitsets use to the category's index in that list."""
    n = int(est.n_features_in_)
    pre = getattr(est, "_preprocessor", None)
    is_cat = getattr(est, "is_categorical_", None)
    known = est._bin_mapper.bin_thresholds_
    if is_cat is None:
        return np.arange(n), {}, {}
    is_cat = np.asarray(is_cat, dtype=bool)
    categories: dict[int, list[Any]] = {}
    raw_to_index: dict[int, np.ndarray] = {}
    if pre is None:  # scikit-learn < 1.6 with integer-coded categories: predictors read raw values
        col_of = np.arange(n)
        for f in np.flatnonzero(is_cat).tolist():
            raw = np.asarray(known[f], dtype=np.float64)
            if not np.array_equal(raw, np.round(raw)) or raw.min(initial=0) < 0:
                raise UnsupportedEstimator("categorical features must hold non-negative integer codes")
            categories[f] = [int(v) for v in raw]
            raw_to_index[f] = raw.astype(np.int64)
        return col_of, categories, raw_to_index
    encoder = pre.named_transformers_["encoder"]
    enc_slice = pre.output_indices_["encoder"]
    num_slice = pre.output_indices_["numerical"]
    cat_cols = np.flatnonzero(is_cat)
    num_cols = np.flatnonzero(~is_cat)
    col_of = np.empty(n, dtype=np.int64)
    col_of[enc_slice] = cat_cols
    col_of[num_slice] = num_cols
    for i, (col, cats) in enumerate(zip(cat_cols.tolist(), encoder.categories_, strict=True)):
        values = [label(v) for v in np.asarray(cats, dtype=object).tolist()]
        if values and _is_nan(values[-1]):
            values = values[:-1]  # the encoder lists NaN last when the training data had missing values
        feature = enc_slice.start + i
        codes = np.asarray(known[feature], dtype=np.float64)
        if not np.array_equal(codes, np.arange(len(values), dtype=np.float64)):
            raise UnsupportedEstimator(f"{type(est).__name__}: unexpected category codes for column {col}")
        if any(isinstance(v, bool) for v in values) or not (
                all(isinstance(v, str) for v in values) or all(isinstance(v, (int, float)) for v in values)):
            raise UnsupportedEstimator(f"{type(est).__name__}: categories of column {col} must be all "
                                       "strings or all numbers")
        categories[col] = values
        raw_to_index[col] = np.arange(len(values), dtype=np.int64)
    return col_of, categories, raw_to_index


def _tree(predictor: Any, ctx: ExportContext, col_of: np.ndarray, n_features: int,
          raw_to_index: dict[int, np.ndarray]) -> dict[str, Any]:
    nodes = predictor.nodes
    n = len(nodes)
    leaf = nodes["is_leaf"].astype(bool)
    left = np.where(leaf, -1, nodes["left"].astype(np.int64))
    right = np.where(leaf, -1, nodes["right"].astype(np.int64))
    feature = np.where(leaf, -2, col_of[nodes["feature_idx"].astype(np.int64) * ~leaf])
    cat = nodes["is_categorical"].astype(bool) & ~leaf
    out: dict[str, Any] = {
        "children_left": ctx.array(small_int(left, -1, n)),
        "children_right": ctx.array(small_int(right, -1, n)),
        "feature": ctx.array(small_int(feature, -2, n_features)),
        "threshold": ctx.array(np.where(leaf | cat, 0.0, nodes["num_threshold"]).astype(np.float64)),
        "missing_go_to_left": ctx.array(nodes["missing_go_to_left"].astype(np.uint8)),
        "value": ctx.array(nodes["value"].astype(np.float64)),
    }
    if cat.any():
        raw_sets = np.asarray(predictor.raw_left_cat_bitsets, dtype="<u4")
        cat_nodes = np.flatnonzero(cat)
        bitsets = np.zeros((cat_nodes.size, 32), dtype=np.uint8)
        for j, nd in enumerate(cat_nodes.tolist()):
            b = int(nodes["bitset_idx"][nd])
            if b >= raw_sets.shape[0]:
                continue  # scikit-learn's "split on NaN" of a one-category feature: no category goes left
            raw_bits = np.unpackbits(raw_sets[b].view(np.uint8), bitorder="little").astype(bool)
            codes = raw_to_index[int(feature[nd])]
            left_codes = np.flatnonzero(raw_bits[np.clip(codes, 0, 255)] & (codes < 256))
            bits = np.zeros(256, dtype=bool)
            bits[left_codes] = True
            bitsets[j] = np.packbits(bits, bitorder="little")
        split = np.full(n, -1, dtype=np.int64)
        split[cat_nodes] = np.arange(cat_nodes.size)
        out["category_split"] = ctx.array(small_int(split, -1, cat_nodes.size))
        out["category_bitsets"] = ctx.array(bitsets)
    return out


@converter(HistGradientBoostingClassifier, HistGradientBoostingRegressor)
def convert_hist_gradient_boosting(est: Any, ctx: ExportContext) -> dict[str, Any]:
    is_clf = isinstance(est, HistGradientBoostingClassifier)
    losses = CLASSIFIER_LOSSES if is_clf else REGRESSOR_LOSSES
    if not isinstance(est.loss, str) or est.loss not in losses:
        raise ExportContext.unsupported(est, "loss", est.loss, losses)
    n_features = int(est.n_features_in_)
    col_of, categories, raw_to_index = _input_columns(est)
    K = int(est.n_trees_per_iteration_)
    node: dict[str, Any] = {
        "type": "hist_gradient_boosting_classifier" if is_clf else "hist_gradient_boosting_regressor",
        "n_features_in": n_features,
    }
    if is_clf:
        node["classes"] = labels(est.classes_)
    node["loss"] = est.loss
    node["baseline"] = ctx.array(np.asarray(est._baseline_prediction, dtype=np.float64).reshape(K))
    if categories:
        node["categorical_features"] = [{"column": int(c), "categories": categories[c]}
                                        for c in sorted(categories)]
    node["trees"] = [_tree(p, ctx, col_of, n_features, raw_to_index)
                     for predictors in est._predictors for p in predictors]
    return node
