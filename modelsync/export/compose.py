"""Converters for Pipeline and ColumnTransformer (see docs/format/compose.md).

Column selections (names, indices, boolean masks, slices, callables) are resolved into integer indices
over the ColumnTransformer's own input using the indices scikit-learn recorded at fit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from . import ExportContext, UnsupportedEstimator, converter

PASSTHROUGH = "passthrough"


def _is_passthrough(trans: Any) -> bool:
    if trans is None or (isinstance(trans, str) and trans == PASSTHROUGH):
        return True
    # ColumnTransformer replaces 'passthrough' by an identity FunctionTransformer when fitting.
    return (type(trans) is FunctionTransformer and trans.func is None and trans.inverse_func is None
            and not trans.kw_args)


def _annotate(node: dict[str, Any], names: Any) -> None:
    """Give a child node the names of its input columns (used only in error messages) when the child,
    fitted on an array handed over by the previous step, does not know them itself."""
    if (names is None or "feature_names" in node or not isinstance(node.get("n_features_in"), int)
            or node.get("type") in ("column_transformer", "pipeline")):
        return
    names = [str(n) for n in names]
    if len(names) == node["n_features_in"]:
        node["feature_names"] = names


def _names_after(est: Pipeline, i: int) -> Any:
    """Column names flowing into step ``i`` of a fitted pipeline, when scikit-learn can tell them."""
    try:
        return est[:i].get_feature_names_out()
    except (AttributeError, ValueError, TypeError, NotImplementedError):
        return None


@converter(Pipeline)
def pipeline(est: Any, ctx: ExportContext) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    for i, (name, step) in enumerate(est.steps):
        if step is None or (isinstance(step, str) and step == PASSTHROUGH):
            steps.append({"name": str(name), "estimator": PASSTHROUGH})
        elif isinstance(step, str):
            raise ExportContext.unsupported(est, f"steps[{name!r}]", step, [PASSTHROUGH, "an estimator"])
        else:
            node = ctx.convert(step)
            if i > 0:
                _annotate(node, _names_after(est, i))
            steps.append({"name": str(name), "estimator": node})
    return {"type": "pipeline", "steps": steps}


@converter(ColumnTransformer)
def column_transformer(est: Any, ctx: ExportContext) -> dict[str, Any]:
    if getattr(est, "_n_features", None) is not None and est._n_features != est.n_features_in_:
        raise UnsupportedEstimator("ColumnTransformer: inconsistent number of input features")
    weights = est.transformer_weights or {}
    parts = []
    for name, trans, columns in est.transformers_:
        if isinstance(trans, str) and trans == "drop":
            continue
        indices = [int(i) for i in est._transformer_to_input_indices[name]]
        if not indices:
            continue  # scikit-learn skips empty selections at transform time
        if np.isscalar(columns) or (isinstance(columns, str)):
            raise UnsupportedEstimator(
                f"ColumnTransformer: transformer {name!r} selects the scalar column {columns!r}, which hands "
                f"a 1-D array to the transformer; select a list ([{columns!r}]) instead")
        part: dict[str, Any] = {"name": str(name),
                                "columns": ctx.array(np.asarray(indices, dtype=np.int64))}
        if _is_passthrough(trans):
            part["estimator"] = PASSTHROUGH
        else:
            part["estimator"] = ctx.convert(trans)
            names = getattr(est, "feature_names_in_", None)
            _annotate(part["estimator"], None if names is None else [names[i] for i in indices])
        weight = weights.get(name)
        if weight is not None:
            part["weight"] = float(weight)
        parts.append(part)
    return {"type": "column_transformer", "n_features_in": int(est.n_features_in_), "transformers": parts}
