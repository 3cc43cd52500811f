"""Converters for KMeans and MiniBatchKMeans (see docs/format/cluster.md)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans

from . import ExportContext, converter


@converter(KMeans, MiniBatchKMeans)
def convert_k_means(est: Any, ctx: ExportContext) -> dict[str, Any]:
    centers = np.asarray(est.cluster_centers_)
    if centers.dtype != np.float64:
        # Fitted on float32 data: scikit-learn then scores in float32, which the format does not model.
        raise ExportContext.unsupported(est, "cluster_centers_.dtype", str(centers.dtype), ["float64"])
    return {"type": "k_means", "n_features_in": int(est.n_features_in_),
            "cluster_centers": ctx.array(centers)}
