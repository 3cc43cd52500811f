"""Converters for IsotonicRegression and CalibratedClassifierCV (see docs/format/calibration.md)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.isotonic import IsotonicRegression

from . import ExportContext, UnsupportedEstimator, converter


@converter(IsotonicRegression)
def isotonic_regression(est: Any, ctx: ExportContext) -> dict[str, Any]:
    x = np.asarray(est.X_thresholds_)
    if x.dtype not in (np.float64, np.float32):
        raise UnsupportedEstimator(f"IsotonicRegression fitted on {x.dtype} data is not supported "
                                   "(float64 or float32 only)")
    if float(est.X_min_) != float(x[0]) or float(est.X_max_) != float(x[-1]):
        raise UnsupportedEstimator("IsotonicRegression: thresholds do not span the training range")
    node = {"type": "isotonic_regression", "n_features_in": 1, "x": ctx.array(x.astype(np.float64)),
            "y": ctx.array(np.asarray(est.y_thresholds_, dtype=np.float64)),
            "out_of_bounds": str(est.out_of_bounds)}
    if x.dtype == np.float32:  # fitted on float32 (e.g. XGBoost's probabilities): scored in float32
        node["float32"] = True
    return node


def _calibrator(cal: Any, method: str, ctx: ExportContext) -> dict[str, Any]:
    if method == "sigmoid":
        return {"a": float(cal.a_), "b": float(cal.b_)}
    return isotonic_regression(cal, ctx)


@converter(CalibratedClassifierCV)
def calibrated_classifier(est: Any, ctx: ExportContext) -> dict[str, Any]:
    if est.method not in ("sigmoid", "isotonic"):
        raise ExportContext.unsupported(est, "method", est.method, ["sigmoid", "isotonic"])
    classes = np.asarray(est.classes_)
    folds = []
    for cc in est.calibrated_classifiers_:
        inner = cc.estimator
        inner = getattr(inner, "estimator", inner) if type(inner).__name__ == "FrozenEstimator" else inner
        idx = np.searchsorted(classes, np.asarray(inner.classes_))
        folds.append({"estimator": ctx.convert(inner), "class_indices": ctx.array(idx.astype(np.int64)),
                      "calibrators": [_calibrator(c, est.method, ctx) for c in cc.calibrators]})
    node = {"type": "calibrated_classifier",
            "classes": [c.item() if isinstance(c, np.generic) else c for c in classes.tolist()],
            "method": est.method, "calibrated": folds}
    if est.method == "sigmoid" and int(np.__version__.split(".")[0]) < 2:
        # numpy 1's value-based casting: float64 a_ times a float32 response (XGBoost's) stays float32
        node["legacy_casting"] = True
    return node
