"""Converters for MLPClassifier and MLPRegressor (see docs/format/neural_network.md)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.neural_network import MLPClassifier, MLPRegressor

from . import ExportContext, converter

HIDDEN = ("identity", "logistic", "tanh", "relu")
KINDS = {"binary": "binary", "multiclass": "multiclass", "multilabel-indicator": "multilabel"}


def _layers(est: Any, ctx: ExportContext) -> dict[str, Any]:
    if est.activation not in HIDDEN:
        raise ExportContext.unsupported(est, "activation", est.activation, HIDDEN)
    for W in est.coefs_:
        if np.asarray(W).dtype != np.float64:
            # Fitted on float32 data: scikit-learn then scores in mixed precision the format does not model.
            raise ExportContext.unsupported(est, "coefs_.dtype", str(np.asarray(W).dtype), ["float64"])
    return {
        "n_features_in": int(est.n_features_in_),
        "activation": est.activation,
        "out_activation": est.out_activation_,
        "coefs": [ctx.array(np.asarray(W, dtype=np.float64)) for W in est.coefs_],
        "intercepts": [ctx.array(np.asarray(b, dtype=np.float64)) for b in est.intercepts_],
    }


@converter(MLPClassifier)
def convert_mlp_classifier(est: Any, ctx: ExportContext) -> dict[str, Any]:
    y_type = est._label_binarizer.y_type_
    if y_type not in KINDS:
        raise ExportContext.unsupported(est, "target type", y_type, list(KINDS))
    node: dict[str, Any] = {"type": "mlp_classifier", **_layers(est, ctx)}
    node["output"] = KINDS[y_type]
    node["classes"] = [c.item() if isinstance(c, np.generic) else c
                       for c in np.asarray(est.classes_).tolist()]
    return node


@converter(MLPRegressor)
def convert_mlp_regressor(est: Any, ctx: ExportContext) -> dict[str, Any]:
    return {"type": "mlp_regressor", **_layers(est, ctx)}
