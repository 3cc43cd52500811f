"""k-nearest neighbours: ``k_neighbors_classifier`` and ``k_neighbors_regressor``.

The document holds the training matrix, so the scorer first searches by brute force whatever
``algorithm`` scikit-learn used: distances to every training row, the k smallest (vectorised). Where the
k-th and (k+1)-th distances of a row are (nearly) equal, which tied rows scikit-learn keeps depends on
its search: those rows are replayed one at a time through ``_neighbor_search`` (scikit-learn's heap,
brute-force order or the exported kd-tree / ball-tree layout). The votes and weighted means after that
repeat scikit-learn's operations in the same order (``sklearn/neighbors/_classification.py``,
``_regression.py``, ``_base.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._base import Estimator, LoadContext, finite_matrix, register
from .._limits import RowCost
from ._neighbor_search import Search

METRICS = ("euclidean", "manhattan", "chebyshev", "minkowski", "cosine")
WEIGHTS = ("uniform", "distance")
ALGORITHMS = ("brute", "kd_tree", "ball_tree")
NEAR_TIE = 1e-9  # rows with two of their k+1 nearest distances this close (relative) are replayed
_CHUNK_ELEMENTS = 1 << 21  # bound on the (rows x train rows x features) difference block
_CHUNK_ROWS_X_TRAIN = 1 << 22  # bound on the (rows x train rows) distance matrix



def _normalize(X: np.ndarray) -> np.ndarray:
    """sklearn.preprocessing.normalize (l2, rows): zero rows are left as they are."""
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    norms[norms == 0.0] = 1.0
    return X / norms[:, np.newaxis]


def _k_smallest(dist: np.ndarray, k: int) -> np.ndarray:
    """Per row, the column indices of the k smallest values, ordered by (value, column).

    Equivalent to ``np.argsort(dist, axis=1, kind="stable")[:, :k]``; for many columns it partitions
    first and sorts only the candidates (every column tied with the k-th value is a candidate, so the
    tie order by column is kept).
    """
    n, m = dist.shape
    if m <= 4 * k or m <= 256:
        return np.argsort(dist, axis=1, kind="stable")[:, :k]
    kth = np.partition(dist, k - 1, axis=1)[:, k - 1:k]
    rows, cols = np.nonzero(dist <= kth)  # row-major: columns ascending within a row
    order = np.lexsort((dist[rows, cols], rows))  # stable: equal distances keep column order
    counts = np.bincount(rows, minlength=n)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    pick = starts[:, None] + np.arange(k)[None, :]
    return cols[order][pick]


class _Neighbors(Estimator):
    """Fields and the neighbour search shared by the classifier and the regressor."""

    n_neighbors: int
    weights: str
    metric: str
    p: float
    fit_X: np.ndarray
    fit_X_normalized: np.ndarray | None
    y: np.ndarray  # training targets (class indices, or values)
    algorithm: str
    search: Search

    def _load_common(self, node: dict[str, Any], ctx: LoadContext) -> int:
        self.n_features_in = ctx.integer(node, "n_features_in", minimum=1)
        self.fit_X = ctx.array(node, "fit_X", "float64", ndim=2)
        n_fit = self.fit_X.shape[0]
        if n_fit == 0:
            raise ctx.fail("needs at least one training row", "fit_X")
        if self.fit_X.shape[1] != self.n_features_in:
            raise ctx.fail(f"expected {self.n_features_in} columns (n_features_in), "
                           f"got {self.fit_X.shape[1]}", "fit_X")
        self.n_neighbors = ctx.integer(node, "n_neighbors", minimum=1)
        if self.n_neighbors > n_fit:
            raise ctx.fail(f"must be <= the number of training rows ({n_fit})", "n_neighbors")
        self.weights = ctx.get(node, "weights", str, choices=WEIGHTS)
        self.metric = ctx.get(node, "metric", str, choices=METRICS)
        self.p = 2.0
        if self.metric == "minkowski":
            self.p = ctx.number(node, "p")
            if not self.p > 0:
                raise ctx.fail("must be > 0", "p")
        self.fit_X_normalized = _normalize(self.fit_X) if self.metric == "cosine" else None
        self.algorithm = ctx.get(node, "algorithm", str, default="brute", choices=ALGORITHMS)
        tree = None
        if self.algorithm != "brute":
            if self.metric == "cosine" or self.p < 1:
                raise ctx.fail(f"{self.algorithm} needs a true metric (cosine and minkowski p < 1 are "
                               "searched by brute force only)", "algorithm")
            tree = self._load_tree(ctx.get(node, "tree", dict), ctx.child("tree"), n_fit)
        self.search = Search(self.algorithm, self.metric, self.p, self.fit_X, tree)
        return n_fit

    def _load_tree(self, node: dict[str, Any], ctx: LoadContext, n_fit: int) -> dict[str, np.ndarray]:
        """The fitted KDTree / BallTree layout: rows in node order, each node's row range and bounds."""
        idx = ctx.array(node, "idx_array", "int64", ndim=1, shape=[n_fit])
        if np.any((idx < 0) | (idx >= n_fit)) or np.any(np.bincount(idx, minlength=n_fit) != 1):
            raise ctx.fail(f"must be a permutation of 0..{n_fit - 1}", "idx_array")
        start = ctx.array(node, "node_start", "int64", ndim=1)
        n_nodes = start.shape[0]
        if n_nodes == 0:
            raise ctx.fail("needs at least one node", "node_start")
        end = ctx.array(node, "node_end", "int64", ndim=1, shape=[n_nodes])
        leaf = ctx.array(node, "node_is_leaf", "bool", ndim=1, shape=[n_nodes])
        bad = np.flatnonzero((start < 0) | (start > end) | (end > n_fit))
        if bad.size:
            raise ctx.fail(f"node {int(bad[0])}: row range {int(start[bad[0]])}..{int(end[bad[0]])} is not "
                           f"within 0..{n_fit}", "node_end", int(bad[0]))
        inner = np.flatnonzero(~leaf)
        if inner.size and 2 * int(inner[-1]) + 2 >= n_nodes:
            raise ctx.fail(f"node {int(inner[-1])} is not a leaf but has no children (nodes 2i+1, 2i+2)",
                           "node_is_leaf", int(inner[-1]))
        kd = self.algorithm == "kd_tree"
        out = {"idx_array": idx, "node_start": start, "node_end": end, "node_is_leaf": leaf,
               "node_bounds": ctx.array(node, "node_bounds", "float64", ndim=3,
                                        shape=[2 if kd else 1, n_nodes, self.n_features_in])}
        if not kd:
            out["node_radius"] = ctx.array(node, "node_radius", "float64", ndim=1, shape=[n_nodes])
        return out

    def _distances(self, X: np.ndarray) -> np.ndarray:
        """Distances (n_queries, n_train), computed as scikit-learn's DistanceMetric defines them."""
        if self.metric == "cosine":
            assert self.fit_X_normalized is not None
            # sklearn.metrics.pairwise.cosine_distances: 1 - cos similarity, clipped to [0, 2].
            S = _normalize(X) @ self.fit_X_normalized.T
            S *= -1
            S += 1
            return np.clip(S, 0, 2, out=S)
        n_fit, d = self.fit_X.shape
        out = np.empty((X.shape[0], n_fit))
        step = max(1, _CHUNK_ELEMENTS // max(1, n_fit * d))
        for s in range(0, X.shape[0], step):  # chunks bound memory; each row is still computed alike
            diff = np.abs(X[s:s + step, None, :] - self.fit_X[None, :, :])
            if self.metric == "euclidean":
                out[s:s + step] = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
            elif self.metric == "manhattan":
                out[s:s + step] = diff.sum(axis=2)
            elif self.metric == "chebyshev":
                out[s:s + step] = diff.max(axis=2)
            else:
                out[s:s + step] = (diff ** self.p).sum(axis=2) ** (1.0 / self.p)
        return out

    def _kneighbors(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distances and indices of the k nearest training rows, nearest first, as scikit-learn's search
        returns them (rows with a tie at the k-th distance are replayed through ``self.search``)."""
        Xf = finite_matrix(X, self.n_features_in, self.type_name)
        k, n_fit = self.n_neighbors, self.fit_X.shape[0]
        kk = min(k + 1, n_fit)  # one more: is the k-th distance tied with the next?
        step = max(1, _CHUNK_ROWS_X_TRAIN // n_fit)  # bounds the (rows x training rows) matrices
        dist_k = np.empty((Xf.shape[0], k))
        ind_k = np.empty((Xf.shape[0], k), dtype=np.intp)
        for s in range(0, Xf.shape[0], step):
            dist = self._distances(Xf[s:s + step])
            ind = _k_smallest(dist, kk)
            d = np.take_along_axis(dist, ind, axis=1)
            ind_k[s:s + step] = ind[:, :k]
            dist_k[s:s + step] = d[:, :k]
            if kk > 1:  # a tie anywhere in the k + 1 nearest: scikit-learn's order and choice, replayed
                tied = np.any(d[:, 1:] - d[:, :-1] <= NEAR_TIE * d[:, 1:], axis=1)
                for r in np.flatnonzero(tied).tolist():
                    dist_k[s + r], ind_k[s + r] = self.search.query(Xf[s + r], k, dist[r])
        return dist_k, ind_k

    def row_cost(self) -> RowCost:
        """A distance to every training row; the (rows x training rows x features) differences are a
        fixed block of at most _CHUNK_ELEMENTS values whatever the rows (16 MB), not a cost per row."""
        n, n_fit = self.n_features_in, int(self.fit_X.shape[0])
        out = max(len(self.classes) if self.classes is not None else int(self.y.shape[-1]), 1)
        return RowCost(width=2 * n + 3 * n_fit + 4 * self.n_neighbors + 2 * out,
                       work=n_fit * (n + 1) + self.n_neighbors * out, out=out)

    def _weights(self, dist: np.ndarray) -> np.ndarray | None:
        """sklearn.neighbors._base._get_weights: 1/d, or only the zero-distance neighbours when any."""
        if self.weights == "uniform":
            return None
        with np.errstate(divide="ignore"):
            w = 1.0 / dist
        inf_mask = np.isinf(w)
        inf_row = np.any(inf_mask, axis=1)
        w[inf_row] = inf_mask[inf_row]
        return w


@register("k_neighbors_classifier")
class KNeighborsClassifier(_Neighbors):
    """sklearn.neighbors.KNeighborsClassifier (single output)."""

    y: np.ndarray

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> KNeighborsClassifier:
        self = cls()
        n_fit = self._load_common(node, ctx)
        self.classes = ctx.labels(node, "classes")
        self.y = ctx.array(node, "y", "int64", ndim=1)
        if self.y.shape[0] != n_fit:
            raise ctx.fail(f"expected {n_fit} class indices (one per row of fit_X), got {self.y.shape[0]}",
                           "y")
        bad = np.flatnonzero((self.y < 0) | (self.y >= len(self.classes)))
        if bad.size:
            raise ctx.fail(f"class index {int(self.y[bad[0]])} is out of range for "
                           f"{len(self.classes)} classes", "y", int(bad[0]))
        self.y = self.y.astype(np.intp)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        dist, ind = self._kneighbors(X)
        return self._proba(self._weights(dist), self.y[ind])

    def _proba(self, w: np.ndarray | None, labels: np.ndarray) -> np.ndarray:
        n = labels.shape[0]
        proba = np.zeros((n, len(self.classes)))  # type: ignore[arg-type]
        rows = np.arange(n)
        if w is None:
            for i in range(labels.shape[1]):
                proba[rows, labels[:, i]] += 1.0
        else:
            for i in range(labels.shape[1]):  # neighbour rank order, as scikit-learn accumulates
                proba[rows, labels[:, i]] += w[:, i]
        proba /= proba.sum(axis=1)[:, np.newaxis]
        return proba

    def predict(self, X: np.ndarray) -> np.ndarray:
        assert self.classes is not None
        dist, ind = self._kneighbors(X)
        labels = self.y[ind]
        w = self._weights(dist)
        if w is None:
            return self.classes[np.argmax(self._proba(None, labels), axis=1)]
        # sklearn.utils.extmath.weighted_mode: per class, np.sum of the weights of its neighbours;
        # a later class wins only with a strictly larger total.
        best = np.zeros(labels.shape[0], dtype=np.intp)
        best_count = np.zeros(labels.shape[0])
        for c in range(len(self.classes)):
            counts = np.sum(np.where(labels == c, w, 0.0), axis=1)
            better = counts > best_count
            best[better] = c
            best_count = np.maximum(counts, best_count)
        return self.classes[best]


@register("k_neighbors_regressor")
class KNeighborsRegressor(_Neighbors):
    """sklearn.neighbors.KNeighborsRegressor (one or several targets)."""

    y: np.ndarray
    one_target: bool

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> KNeighborsRegressor:
        self = cls()
        n_fit = self._load_common(node, ctx)
        y = ctx.array(node, "y", "float64")
        if y.ndim not in (1, 2) or y.shape[0] != n_fit:
            raise ctx.fail(f"expected {n_fit} targets (1-D) or {n_fit} rows of targets (2-D), got shape "
                           f"{'x'.join(map(str, y.shape))}", "y")
        self.one_target = y.ndim == 1
        self.y = y.reshape(n_fit, -1)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        dist, ind = self._kneighbors(X)
        w = self._weights(dist)
        if w is None:
            y_pred = np.mean(self.y[ind], axis=1)
        else:
            y_pred = np.empty((dist.shape[0], self.y.shape[1]))
            denom = np.sum(w, axis=1)
            for j in range(self.y.shape[1]):
                y_pred[:, j] = np.sum(self.y[ind, j] * w, axis=1) / denom
        return y_pred.ravel() if self.one_target else y_pred
