"""Converters for LinearDiscriminantAnalysis and QuadraticDiscriminantAnalysis
(see docs/format/discriminant_analysis.md)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis, QuadraticDiscriminantAnalysis

from . import ExportContext, UnsupportedEstimator, converter
from .linear import base_node, check_finite, classifier_node, label


def _array(est: Any, name: str, a: Any, ctx: ExportContext) -> Any:
    a = np.asarray(a, dtype=np.float64)
    check_finite(est, name, a)
    return ctx.array(a)


@converter(LinearDiscriminantAnalysis)
def linear_discriminant_analysis(est: Any, ctx: ExportContext) -> dict[str, Any]:
    if est.solver not in ("svd", "eigen"):
        raise UnsupportedEstimator(f"LinearDiscriminantAnalysis(solver={est.solver!r}) is not supported: "
                                   "scikit-learn has no transform for it; supported solver: 'svd', 'eigen'")
    node = classifier_node(est, ctx, "linear_discriminant_analysis")
    node["probability"] = "multinomial" if len(est.classes_) > 2 else "ovr"
    if est.solver == "svd":
        node["xbar"] = _array(est, "xbar_", est.xbar_, ctx)
    node["scalings"] = _array(est, "scalings_", np.asarray(est.scalings_)[:, : est._max_components], ctx)
    return node


@converter(QuadraticDiscriminantAnalysis)
def quadratic_discriminant_analysis(est: Any, ctx: ExportContext) -> dict[str, Any]:
    node = base_node(est, "quadratic_discriminant_analysis")
    node["classes"] = [label(c) for c in np.asarray(est.classes_).tolist()]
    node["means"] = _array(est, "means_", est.means_, ctx)
    node["priors"] = _array(est, "priors_", est.priors_, ctx)
    node["rotations"] = [_array(est, "rotations_", r, ctx) for r in est.rotations_]
    node["scalings"] = [_array(est, "scalings_", s, ctx) for s in est.scalings_]
    if any(np.any(np.asarray(s) <= 0) for s in est.scalings_):
        raise UnsupportedEstimator("QuadraticDiscriminantAnalysis: a class covariance has a zero variance "
                                   "direction (scalings_ <= 0); use reg_param > 0")
    return node
