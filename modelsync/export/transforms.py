"""Converters for more transformers (see docs/format/transforms.md): whitelisted FunctionTransformer,
feature selectors, PowerTransformer, QuantileTransformer, KBinsDiscretizer and TargetEncoder.

TargetEncoder needs no type of its own: its fitted encodings are an ordinal_encoder's codes (unknown and
unseen-missing categories take the target mean), one per class inside a column_transformer when the
target is multiclass. Its ``transform`` of new data is what is exported, not ``fit_transform``'s
cross-fitted values (which exist only for the training rows).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.feature_selection import SelectFromModel, SelectKBest, VarianceThreshold
from sklearn.feature_selection._base import SelectorMixin
from sklearn.preprocessing import (
    FunctionTransformer,
    KBinsDiscretizer,
    PowerTransformer,
    QuantileTransformer,
    SplineTransformer,
    TargetEncoder,
)

from scorer import _numpy_funcs

from . import ExportContext, UnsupportedEstimator, converter
from .linear import base_node, check_finite
from .preprocessing import _categories, _vector

WHITELIST = [*_numpy_funcs.FUNCS, "None (identity)"]


def _allow_nan(est: Any) -> bool:
    """Whether scikit-learn's input check accepts NaN for this estimator (its ``allow_nan`` tag)."""
    try:
        from sklearn.utils import get_tags

        return bool(get_tags(est).input_tags.allow_nan)
    except ImportError:  # scikit-learn < 1.6
        return bool(est._get_tags().get("allow_nan", False))


def _number(est: Any, what: str, v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not math.isfinite(v):
        raise UnsupportedEstimator(f"{type(est).__name__}: {what}={v!r} must be a finite number or None")
    return float(v)


@converter(FunctionTransformer)
def function_transformer(est: Any, ctx: ExportContext) -> dict[str, Any]:
    name = None if est.func is None else _numpy_funcs.NAMES.get(est.func)
    if est.func is not None and name is None:
        raise ExportContext.unsupported(est, "func", est.func, WHITELIST)
    kw = dict(est.kw_args or {})
    node = base_node(est, "function_transformer")
    node["func"] = name
    if name == "clip":
        lo = kw.pop("a_min", kw.pop("min", None))
        hi = kw.pop("a_max", kw.pop("max", None))
        node["min"], node["max"] = _number(est, "a_min", lo), _number(est, "a_max", hi)
        if node["min"] is None and node["max"] is None:
            raise UnsupportedEstimator("FunctionTransformer(np.clip) needs a_min or a_max in kw_args")
    if kw:
        raise UnsupportedEstimator(f"FunctionTransformer: kw_args {sorted(kw)} are not supported "
                                   "(only a_min / a_max of np.clip)")
    node["allow_nan"] = not est.validate
    return node


@converter(VarianceThreshold, SelectKBest, SelectFromModel)
def select_columns(est: Any, ctx: ExportContext) -> dict[str, Any]:
    if not isinstance(est, SelectorMixin):
        raise UnsupportedEstimator(f"{type(est).__name__} is not a feature selector")
    node = base_node(est, "select_columns")
    node["columns"] = ctx.array(np.flatnonzero(est.get_support()).astype(np.int64))
    node["allow_nan"] = _allow_nan(est)
    return node


@converter(PowerTransformer)
def power_transformer(est: Any, ctx: ExportContext) -> dict[str, Any]:
    if est.method not in ("yeo-johnson", "box-cox"):
        raise ExportContext.unsupported(est, "method", est.method, ["yeo-johnson", "box-cox"])
    node = base_node(est, "power_transformer")
    node["method"] = est.method
    node["lambdas"] = _vector(est, "lambdas_", est.lambdas_, ctx)
    if est.standardize:
        node["mean"] = _vector(est, "mean_", est._scaler.mean_, ctx)
        node["scale"] = _vector(est, "scale_", est._scaler.scale_, ctx)
    return node


@converter(QuantileTransformer)
def quantile_transformer(est: Any, ctx: ExportContext) -> dict[str, Any]:
    if est.output_distribution not in ("uniform", "normal"):
        raise ExportContext.unsupported(est, "output_distribution", est.output_distribution,
                                        ["uniform", "normal"])
    node = base_node(est, "quantile_transformer")
    node["output_distribution"] = est.output_distribution
    q = np.asarray(est.quantiles_, dtype=np.float64)
    check_finite(est, "quantiles_", q)
    node["quantiles"] = ctx.array(q)
    node["references"] = _vector(est, "references_", est.references_, ctx)
    return node


@converter(KBinsDiscretizer)
def kbins_discretizer(est: Any, ctx: ExportContext) -> dict[str, Any]:
    if est.encode not in ("ordinal", "onehot", "onehot-dense"):
        raise ExportContext.unsupported(est, "encode", est.encode, ["ordinal", "onehot", "onehot-dense"])
    node = base_node(est, "kbins_discretizer")
    node["bin_edges"] = [_vector(est, "bin_edges_", e, ctx) for e in est.bin_edges_]
    node["encode"] = "ordinal" if est.encode == "ordinal" else "onehot"
    return node


@converter(TargetEncoder)
def target_encoder(est: Any, ctx: ExportContext) -> dict[str, Any]:
    cats = _categories(est)
    n = len(cats)
    means = np.atleast_1d(np.asarray(est.target_mean_, dtype=np.float64))
    check_finite(est, "target_mean_", means)

    def encoder(feature: int, enc: Any, mean: float, with_base: bool) -> dict[str, Any]:
        codes = np.asarray(enc, dtype=np.float64)
        check_finite(est, "encodings_", codes)
        node: dict[str, Any] = (base_node(est, "ordinal_encoder") if with_base
                                else {"type": "ordinal_encoder", "n_features_in": 1})
        node.update({"categories": [cats[feature]] if not with_base else cats,
                     "handle_unknown": "use_encoded_value", "unknown_value": mean,
                     "codes": [ctx.array(codes)]})
        return node

    if est.target_type_ != "multiclass":
        node = encoder(0, est.encodings_[0], float(means[0]), True)
        node["codes"] = [ctx.array(np.asarray(e, dtype=np.float64)) for e in est.encodings_]
        for e in est.encodings_:
            check_finite(est, "encodings_", np.asarray(e, dtype=np.float64))
        return node
    k = len(est.classes_)
    parts = [{"name": f"f{e // k}_c{e % k}", "columns": [e // k],
              "estimator": encoder(e // k, enc, float(means[e % k]), False)}
             for e, enc in enumerate(est.encodings_)]
    return {"type": "column_transformer", "n_features_in": n, "transformers": parts}


@converter(SplineTransformer)
def spline_transformer(est: Any, ctx: ExportContext) -> dict[str, Any]:
    if est.extrapolation == "linear" and est.degree <= 1 and est.n_features_in_ > 1:
        raise UnsupportedEstimator(
            "SplineTransformer(extrapolation='linear', degree<=1) with more than one feature is not "
            "supported: scikit-learn's transform raises the degree it uses for every column after the "
            "first (its outputs depend on the column order); use degree >= 2 or one SplineTransformer "
            "per column")
    node = base_node(est, "spline_transformer")
    node["degree"] = int(est.degree)
    node["knots"] = [_vector(est, "knots", spl.t, ctx) for spl in est.bsplines_]
    node["extrapolation"] = est.extrapolation
    node["include_bias"] = bool(est.include_bias)
    node["handle_missing"] = getattr(est, "handle_missing", "error")
    return node
