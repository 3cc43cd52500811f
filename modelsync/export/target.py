"""Converter for TransformedTargetRegressor (see docs/format/target.md): the regressor, then the target
transformer's ``inverse_transform`` written as the element-wise steps scikit-learn performs."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.preprocessing import (
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    RobustScaler,
    StandardScaler,
)

from scorer._numpy_funcs import UNARY, function_name

from . import ExportContext, UnsupportedEstimator, converter


def _step(op: str, value: Any, ctx: ExportContext) -> dict[str, Any]:
    return {"op": op, "value": ctx.array(np.asarray(value, dtype=np.float64).reshape(-1))}


def _casts_to_float32(tr: Any) -> bool:
    """Whether this scikit-learn's StandardScaler.inverse_transform of float32 values (XGBoost's predictions)
    casts ``scale_`` and ``mean_`` to float32 first (newer releases) rather than computing in float64 and
    rounding each result (older ones): asked of the fitted scaler on a few float32 values."""
    n = int(tr.n_features_in_)
    probe = np.linspace(-1e3, 1e3, 64 * n, dtype=np.float32).reshape(-1, n) + np.float32(0.1)
    got = tr.inverse_transform(probe)
    cast = probe.copy()
    if tr.with_std:
        cast *= np.asarray(tr.scale_).astype(np.float32)
    if tr.with_mean:
        cast += np.asarray(tr.mean_).astype(np.float32)
    return bool(np.array_equal(got, cast))


def _inverse(tr: Any, ctx: ExportContext) -> list[dict[str, Any]]:
    """scikit-learn's ``inverse_transform`` of the fitted target transformer, step by step."""
    kind = type(tr)
    if kind is FunctionTransformer:
        if tr.inverse_func is None:
            return []
        name = function_name(tr.inverse_func)
        if name not in UNARY or tr.inv_kw_args:
            raise UnsupportedEstimator(
                f"TransformedTargetRegressor: inverse_func={tr.inverse_func!r} is not supported; supported: "
                f"numpy's {', '.join(UNARY)} (without keyword arguments)")
        return [{"op": "function", "name": name}]
    if kind is StandardScaler:
        steps = ([_step("multiply", tr.scale_, ctx)] if tr.with_std else []) + (
            [_step("add", tr.mean_, ctx)] if tr.with_mean else [])
        if steps and _casts_to_float32(tr):
            for step in steps:
                step["cast"] = True
        return steps
    if kind is RobustScaler:
        return ([_step("multiply", tr.scale_, ctx)] if tr.with_scaling else []) + (
            [_step("add", tr.center_, ctx)] if tr.with_centering else [])
    if kind is MinMaxScaler:
        if tr.clip:
            raise UnsupportedEstimator("TransformedTargetRegressor: MinMaxScaler(clip=True) is not supported")
        return [_step("subtract", tr.min_, ctx), _step("divide", tr.scale_, ctx)]
    if kind is MaxAbsScaler:
        return [_step("multiply", tr.scale_, ctx)]
    raise UnsupportedEstimator(
        f"TransformedTargetRegressor: transformer {kind.__name__} is not supported; supported: "
        "StandardScaler, RobustScaler, MinMaxScaler, MaxAbsScaler, or func/inverse_func from numpy's "
        f"{', '.join(UNARY)}")


@converter(TransformedTargetRegressor)
def transformed_target_regressor(est: Any, ctx: ExportContext) -> dict[str, Any]:
    steps = _inverse(est.transformer_, ctx)
    n_targets = int(getattr(est.transformer_, "n_features_in_", 1))
    return {"type": "transformed_target_regressor", "regressor": ctx.convert(est.regressor_),
            "n_targets": n_targets, "one_d": est._training_dim == 1, "inverse": steps}
