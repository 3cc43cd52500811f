"""k-means: ``k_means`` (KMeans and MiniBatchKMeans share their predict and transform).

``predict`` follows scikit-learn's Lloyd kernel (``_k_means_lloyd.pyx``): the nearest centre by
``||c||^2 - 2 x.c`` (the row's own ``||x||^2`` is constant and dropped), ties to the lowest index.
``transform`` is ``sklearn.metrics.pairwise.euclidean_distances(X, cluster_centers_)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._base import Estimator, LoadContext, finite_matrix, register
from .._limits import RowCost


@register("k_means")
class KMeans(Estimator):
    """sklearn.cluster.KMeans / MiniBatchKMeans."""

    centers: np.ndarray
    centers_sq: np.ndarray

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> KMeans:
        self = cls()
        self.n_features_in = ctx.integer(node, "n_features_in", minimum=1)
        self.centers = ctx.array(node, "cluster_centers", "float64", ndim=2, shape=(None, self.n_features_in))
        if self.centers.shape[0] == 0:
            raise ctx.fail("needs at least one centre", "cluster_centers")
        self.centers_sq = np.einsum("ij,ij->i", self.centers, self.centers)  # row_norms(squared=True)
        return self

    def row_cost(self) -> RowCost:
        n, k = self.n_features_in, int(self.centers.shape[0])
        return RowCost(width=2 * n + 3 * k, work=n * k + 3 * k, out=k)

    def predict(self, X: np.ndarray) -> np.ndarray:
        Xf = finite_matrix(X, self.n_features_in, self.type_name)
        d = self.centers_sq - 2.0 * (Xf @ self.centers.T)
        return np.argmin(d, axis=1).astype(np.int32)

    def transform(self, X: np.ndarray) -> np.ndarray:
        Xf = finite_matrix(X, self.n_features_in, self.type_name)
        d = -2 * (Xf @ self.centers.T)
        d += np.einsum("ij,ij->i", Xf, Xf)[:, np.newaxis]
        d += self.centers_sq[np.newaxis, :]
        np.maximum(d, 0, out=d)
        return np.sqrt(d, out=d)
