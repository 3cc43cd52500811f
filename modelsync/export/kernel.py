"""Converters for libsvm-based estimators: SVC, NuSVC, SVR, NuSVR, OneClassSVM (see docs/format/kernel.md)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.svm import SVC, SVR, NuSVC, NuSVR, OneClassSVM

from . import ExportContext, converter

KERNELS = ("linear", "poly", "rbf", "sigmoid")


def _dense(a: Any) -> np.ndarray:
    """Models fitted on sparse input keep sparse support vectors / coefficients; the format is dense."""
    return np.asarray(a.toarray() if hasattr(a, "toarray") else a, dtype=np.float64)


def _kernel_fields(est: Any, ctx: ExportContext) -> dict[str, Any]:
    if callable(est.kernel) or est.kernel not in KERNELS:
        raise ExportContext.unsupported(est, "kernel", est.kernel, KERNELS)
    sv = _dense(est.support_vectors_)
    return {
        "n_features_in": int(est.n_features_in_),
        "kernel": est.kernel,
        "gamma": float(est._gamma),  # 'scale' / 'auto' resolved at fit
        "coef0": float(est.coef0),
        "degree": int(est.degree),
        "support_vectors": ctx.array(sv.reshape(sv.shape[0], int(est.n_features_in_))),
    }


@converter(SVC, NuSVC)
def convert_svc(est: Any, ctx: ExportContext) -> dict[str, Any]:
    if est.break_ties and est.decision_function_shape == "ovo":
        raise ExportContext.unsupported(est, "break_ties", True, [False])
    node: dict[str, Any] = {"type": "svc", **_kernel_fields(est, ctx)}
    node["classes"] = [c.item() if isinstance(c, np.generic) else c for c in est.classes_.tolist()]
    node["n_support"] = ctx.array(np.asarray(est.n_support_, dtype=np.int32))
    node["dual_coef"] = ctx.array(_dense(est.dual_coef_))
    node["intercept"] = ctx.array(np.asarray(est.intercept_, dtype=np.float64))
    node["decision_function_shape"] = est.decision_function_shape
    node["break_ties"] = bool(est.break_ties)
    # probA_/probB_ are deprecated properties over _probA/_probB since scikit-learn 1.9.
    prob_a = np.asarray(getattr(est, "_probA", np.empty(0)), dtype=np.float64)
    prob_b = np.asarray(getattr(est, "_probB", np.empty(0)), dtype=np.float64)
    if est.probability not in (False, "deprecated") and prob_a.size and prob_b.size:
        node["prob_a"] = ctx.array(prob_a)
        node["prob_b"] = ctx.array(prob_b)
    return node


@converter(SVR, NuSVR)
def convert_svr(est: Any, ctx: ExportContext) -> dict[str, Any]:
    return {"type": "svr", **_kernel_fields(est, ctx), "dual_coef": ctx.array(_dense(est.dual_coef_)),
            "intercept": ctx.array(np.asarray(est.intercept_, dtype=np.float64))}


@converter(OneClassSVM)
def convert_one_class_svm(est: Any, ctx: ExportContext) -> dict[str, Any]:
    return {"type": "one_class_svm", **_kernel_fields(est, ctx),
            "dual_coef": ctx.array(_dense(est.dual_coef_)),
            "intercept": ctx.array(np.asarray(est.intercept_, dtype=np.float64))}
