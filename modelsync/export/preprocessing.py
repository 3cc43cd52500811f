"""Converters for scikit-learn's transformers (see docs/format/preprocessing.md).

The encoders are written in a resolved form: for every fitted category the output column (one-hot) or
output value (ordinal) it produces, with drop / infrequent grouping / missing-value encoding already
applied, so a scorer needs no knowledge of those options.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import (
    Binarizer,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    RobustScaler,
    StandardScaler,
)

from . import ExportContext, UnsupportedEstimator, converter
from .linear import base_node, check_finite, dense


def _vector(est: Any, name: str, values: Any, ctx: ExportContext) -> Any:
    a = np.asarray(values, dtype=np.float64).ravel()
    check_finite(est, name, a)
    return ctx.array(a)


@converter(StandardScaler)
def standard_scaler(est: Any, ctx: ExportContext) -> dict[str, Any]:
    node = base_node(est, "standard_scaler")
    if est.with_mean:
        node["mean"] = _vector(est, "mean_", est.mean_, ctx)
    if est.with_std:
        node["scale"] = _vector(est, "scale_", est.scale_, ctx)
    return node


@converter(MinMaxScaler)
def min_max_scaler(est: Any, ctx: ExportContext) -> dict[str, Any]:
    node = base_node(est, "min_max_scaler")
    node["scale"] = _vector(est, "scale_", est.scale_, ctx)
    node["min"] = _vector(est, "min_", est.min_, ctx)
    node["clip"] = bool(est.clip)
    node["feature_range"] = [float(est.feature_range[0]), float(est.feature_range[1])]
    return node


@converter(MaxAbsScaler)
def max_abs_scaler(est: Any, ctx: ExportContext) -> dict[str, Any]:
    node = base_node(est, "max_abs_scaler")
    node["scale"] = _vector(est, "scale_", est.scale_, ctx)
    node["clip"] = bool(getattr(est, "clip", False))
    return node


@converter(RobustScaler)
def robust_scaler(est: Any, ctx: ExportContext) -> dict[str, Any]:
    node = base_node(est, "robust_scaler")
    if est.with_centering:
        node["center"] = _vector(est, "center_", est.center_, ctx)
    if est.with_scaling:
        node["scale"] = _vector(est, "scale_", est.scale_, ctx)
    return node


@converter(Normalizer)
def normalizer(est: Any, ctx: ExportContext) -> dict[str, Any]:
    if est.norm not in ("l1", "l2", "max"):
        raise ExportContext.unsupported(est, "norm", est.norm, ["l1", "l2", "max"])
    node = base_node(est, "normalizer")
    node["norm"] = est.norm
    return node


@converter(Binarizer)
def binarizer(est: Any, ctx: ExportContext) -> dict[str, Any]:
    t = float(est.threshold)
    if not math.isfinite(t):
        raise ExportContext.unsupported(est, "threshold", est.threshold, ["a finite number"])
    node = base_node(est, "binarizer")
    node["threshold"] = t
    return node


@converter(PCA)
def pca(est: Any, ctx: ExportContext) -> dict[str, Any]:
    node = base_node(est, "pca")
    node["mean"] = _vector(est, "mean_", est.mean_, ctx)
    components = dense(est.components_)
    check_finite(est, "components_", components)
    node["components"] = ctx.array(components)
    node["whiten"] = bool(est.whiten)
    if est.whiten:
        node["explained_variance"] = _vector(est, "explained_variance_", est.explained_variance_, ctx)
    return node


@converter(PolynomialFeatures)
def polynomial_features(est: Any, ctx: ExportContext) -> dict[str, Any]:
    node = base_node(est, "polynomial_features")
    node["min_degree"] = int(est._min_degree)
    node["max_degree"] = int(est._max_degree)
    node["interaction_only"] = bool(est.interaction_only)
    node["include_bias"] = bool(est.include_bias)
    node["n_output_features"] = int(est.n_output_features_)
    return node


# -- imputer --------------------------------------------------------------------------------------

def _is_nan(v: Any) -> bool:
    try:
        return bool(v != v)
    except (TypeError, ValueError):
        return False


def _json_scalar(est: Any, what: str, v: Any) -> Any:
    """A number or string for the document; anything else cannot be represented exactly."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        raise UnsupportedEstimator(f"{type(est).__name__}: {what} {v!r} of type {type(v).__name__} cannot be "
                                   "represented (numbers and strings only)")
    if isinstance(v, float) and not math.isfinite(v):
        raise UnsupportedEstimator(f"{type(est).__name__}: {what} {v!r} is not finite")
    return v


@converter(SimpleImputer)
def simple_imputer(est: Any, ctx: ExportContext) -> dict[str, Any]:
    node = base_node(est, "simple_imputer")
    mv = est.missing_values
    if mv is None:
        node["missing_values"] = "none"
    elif _is_nan(mv) or type(mv).__name__ == "NAType":
        node["missing_values"] = "nan"
    elif isinstance(mv, (numbers.Real, str)) and not isinstance(mv, bool):
        node["missing_values"] = "value"
        node["missing_value"] = _json_scalar(est, "missing_values", mv)
    else:
        raise ExportContext.unsupported(est, "missing_values", mv, ["np.nan", "None", "a number", "a string"])
    obj = est._fit_dtype.kind == "O"
    node["dtype"] = "object" if obj else "float64"
    stats: list[Any] = []
    for s in np.asarray(est.statistics_, dtype=object).tolist():
        if s is None and obj:
            raise UnsupportedEstimator("SimpleImputer: a statistic is None (None was the most frequent "
                                       "value); it cannot be told apart from a dropped column")
        stats.append(None if s is None or _is_nan(s) else _json_scalar(est, "statistic", s))
    node["statistics"] = stats
    if est.add_indicator:
        node["indicator_features"] = ctx.array(np.asarray(est.indicator_.features_, dtype=np.int64))
    return node


# -- encoders -------------------------------------------------------------------------------------

def _categories(est: Any) -> list[list[Any]]:
    """``categories_`` as JSON lists: strings, numbers, and null for the missing category (NaN or None)."""
    out = []
    for i, cats in enumerate(est.categories_):
        values: list[Any] = []
        missing = 0
        for v in np.asarray(cats, dtype=object).tolist():
            if v is None or _is_nan(v):
                missing += 1
                values.append(None)
                continue
            if isinstance(v, np.generic):
                v = v.item()
            if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                raise UnsupportedEstimator(f"{type(est).__name__}: category {v!r} of feature {i} has type "
                                           f"{type(v).__name__}; only strings and numbers are supported")
            if isinstance(v, float) and not math.isfinite(v):
                raise UnsupportedEstimator(f"{type(est).__name__}: category {v!r} of feature {i} is infinite")
            values.append(v)
        if missing > 1:
            raise UnsupportedEstimator(f"{type(est).__name__}: feature {i} was fitted with both None and NaN "
                                       "as categories; the scorer has one missing value. Use one of them.")
        out.append(values)
    return out


def _infrequent_mapping(est: Any, i: int) -> np.ndarray | None:
    if not getattr(est, "_infrequent_enabled", False):
        return None
    m = est._default_to_infrequent_mappings[i]
    return None if m is None else np.asarray(m, dtype=np.int64)


@converter(OneHotEncoder)
def one_hot_encoder(est: Any, ctx: ExportContext) -> dict[str, Any]:
    handle = est.handle_unknown
    if handle not in ("error", "ignore", "infrequent_if_exist", "warn"):
        raise ExportContext.unsupported(est, "handle_unknown", handle,
                                        ["error", "ignore", "infrequent_if_exist", "warn"])
    node = base_node(est, "one_hot_encoder")
    node["categories"] = _categories(est)
    node["handle_unknown"] = handle
    drops = est._drop_idx_after_grouping
    widths = [int(w) for w in est._n_features_outs]
    columns, unknown = [], []
    for i, cats in enumerate(est.categories_):
        n_cats = len(cats)
        mapping = _infrequent_mapping(est, i)
        grouped = mapping if mapping is not None else np.arange(n_cats, dtype=np.int64)
        drop = None if drops is None or drops[i] is None else int(drops[i])

        def column(g: int, drop: int | None = drop) -> int:
            if drop is None:
                return g
            return -1 if g == drop else g - (1 if g > drop else 0)

        cols = np.array([column(int(g)) for g in grouped], dtype=np.int64)
        columns.append(ctx.array(cols))
        if mapping is not None and handle in ("infrequent_if_exist", "warn"):
            unknown.append(column(int(mapping.max())))  # the infrequent group is the last grouped index
        else:
            unknown.append(-1)
        if cols.size and cols.max() >= widths[i]:
            raise UnsupportedEstimator(f"OneHotEncoder: could not resolve the output columns of feature {i}")
    node["n_columns"] = widths
    node["columns"] = columns
    node["unknown_columns"] = unknown
    return node


@converter(OrdinalEncoder)
def ordinal_encoder(est: Any, ctx: ExportContext) -> dict[str, Any]:
    handle = est.handle_unknown
    if handle not in ("error", "use_encoded_value"):
        raise ExportContext.unsupported(est, "handle_unknown", handle, ["error", "use_encoded_value"])
    node = base_node(est, "ordinal_encoder")
    node["categories"] = _categories(est)
    node["handle_unknown"] = handle
    missing = dict(getattr(est, "_missing_indices", {}) or {})
    emv = float(est.encoded_missing_value)
    codes = []
    for i, cats in enumerate(est.categories_):
        n_cats = len(cats)
        mapping = _infrequent_mapping(est, i)
        values = np.arange(n_cats, dtype=np.float64)
        if mapping is not None:
            upto = n_cats - 1 if i in missing else n_cats
            values[:upto] = mapping[:upto]
        # sklearn casts to the encoder's dtype before writing encoded_missing_value / unknown_value
        values = values.astype(est.dtype).astype(np.float64)
        if i in missing:
            values[int(missing[i])] = emv
        if np.isinf(values).any():
            raise UnsupportedEstimator("OrdinalEncoder: infinite codes cannot be represented")
        codes.append(ctx.array(values))
    node["codes"] = codes
    if handle == "use_encoded_value":
        uv = est.unknown_value
        node["unknown_value"] = None if math.isnan(float(uv)) else _json_scalar(est, "unknown_value", uv)
    return node
