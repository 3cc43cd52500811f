"""What every forest layout shares: the :class:`CompiledForest` interface (``sums``: leaf outputs added in
tree order, chunked), the strictly sequential sum over trees, and the categorical-column description."""

from __future__ import annotations

import numpy as np

from ..._limits import RowCost
from .rowwalk import RowWalker

COMPILED_MAX_ELEMENTS = 1 << 25  # leaf-output tables a layout may add to what the document holds


class Categorical:
    """Categorical input columns (HGB): column -> number of known categories. Inputs in such a column
    are category codes ``0..K-1`` (as floats) or NaN for missing / unknown."""

    def __init__(self, n_categories: dict[int, int]) -> None:
        self.n_categories = dict(n_categories)


class CompiledForest:
    """An ensemble compiled for scoring: ``sums(X)`` returns, per row, the trees' leaf outputs summed in
    tree order exactly as scikit-learn's loops add them (``out += tree_output``, one tree after the other).

    Trees are stage-major, ``per_stage`` trees per stage, tree ``s * per_stage + k`` adding to column
    ``k``; ``init`` (``(per_stage, n_outputs)``) is folded into the first stage's leaf values at compile
    time (``init + leaf`` is the very first addition scikit-learn makes, so this is exact).
    """

    n_trees: int
    n_outputs: int
    per_stage: int
    chunk_rows: int
    few_rows: int  # up to this many rows, one call of few numpy ops (the single-row path)
    sum_dtype: type = np.float64  # XGBoost adds leaf values in float32: it sets np.float32
    nodes_per_row: int = 0  # nodes one row visits: the sum over trees of (depth + 1), set by compile_forest
    walker: RowWalker | None = None  # single rows walked in Python (small forests), set by compile_forest
    few_calls: float = 0.0  # numpy calls of the single-row path (``_few``), for compile_forest's cost model

    def row_cost(self, n_features: int, out: int) -> RowCost:
        """One row: its (tree x row) lanes and leaf outputs of every tree, the sums, the result."""
        T, G, K = self.n_trees, self.per_stage, self.n_outputs
        return RowCost(width=2 * n_features + T * (K + 2) + 3 * G * K + 2 * out,
                       work=self.nodes_per_row + T * K + out, out=out)

    def sums(self, X: np.ndarray, has_nan: bool | None = None) -> np.ndarray:
        """``(rows, per_stage, n_outputs)``. ``has_nan``: whether X holds NaN, if the caller knows."""
        R = X.shape[0]
        T, G, K = self.n_trees, self.per_stage, self.n_outputs
        S = T // G
        if R == 0:
            return np.zeros((0, G, K))
        if R == 1 and self.few_rows:
            return self._one_row(self._few(X, has_nan))
        if self.few_rows >= R:
            vals: np.ndarray = self._few(X, has_nan).astype(self.sum_dtype, copy=False)  # (T, R, K)
            acc = sequential_sum(vals.reshape(S, G * R * K)) if S > 1 else vals
            return acc.reshape(G, R, K).transpose(1, 0, 2)
        result = np.empty((R, G, K))
        step = self.chunk_rows
        for start in range(0, R, step):
            Xc = X[start:start + step]
            r = Xc.shape[0]
            vals = np.empty((S, G, r, K))
            self._chunk(Xc, vals.reshape(T, r, K), has_nan)
            total = sequential_sum(vals.reshape(S, G * r * K).astype(self.sum_dtype, copy=False))
            result[start:start + r] = total.reshape(G, r, K).transpose(1, 0, 2)
        return result

    def _one_row(self, vals: np.ndarray) -> np.ndarray:
        """One row's ``(T, 1, K)`` leaf outputs -> ``(1, G, K)`` sums, stage after stage."""
        T, G, K = self.n_trees, self.per_stage, self.n_outputs
        if G * K == 1 and T > 1:  # one value per tree: cast and add in one call (the same operations)
            return np.add.accumulate(vals.reshape(T), dtype=self.sum_dtype)[-1:].reshape(1, 1, 1)
        vals = vals.astype(self.sum_dtype, copy=False)
        if T == G:
            return vals.reshape(1, G, K)
        return np.add.accumulate(vals.reshape(T // G, G * K), axis=0)[-1].reshape(1, G, K)

    def row_sums(self, row: list[float]) -> np.ndarray:
        """``sums`` of one row of Python floats without NaN (the caller checked): ``(G, K)``, in
        ``sum_dtype``. Small forests are walked in Python (:mod:`.rowwalk`), the others take ``_few``."""
        walker = self.walker
        if walker is None:
            X = np.array([row])
            if self.few_rows:  # what sums does for one row, without its dispatch
                return self._one_row(self._few(X, False))[0]
            return self.sums(X, False)[0].astype(self.sum_dtype, copy=False)
        leaves = walker.values.take(walker.leaves(row), axis=0)
        return self._one_row(leaves.reshape(self.n_trees, 1, self.n_outputs))[0]

    def row_total(self, row: list[float]) -> float:
        """The one sum of a forest with one output per row (``per_stage == n_outputs == 1``), as a float."""
        walker = self.walker
        if walker is not None and walker.scalar is not None and self.sum_dtype is np.float64:
            return walker.total(row)
        return float(self.row_sums(row)[0, 0])

    def _chunk(self, X: np.ndarray, out: np.ndarray, has_nan: bool | None) -> None:
        raise NotImplementedError

    def _few(self, X: np.ndarray, has_nan: bool | None) -> np.ndarray:
        out = np.empty((self.n_trees, X.shape[0], self.n_outputs))
        self._chunk(X, out, has_nan)
        return out


def sequential_sum(a: np.ndarray) -> np.ndarray:
    """``a[0] + a[1] + ... + a[-1]`` added strictly in that order (scikit-learn adds tree after tree).

    ``np.add.reduce`` over the outer axis of a C-contiguous 2-D array with at least two columns adds
    whole rows one after the other (pairwise summation only happens along the innermost axis); with a
    single column it would be pairwise, so ``accumulate`` (sequential by definition) is used instead.
    tests/parity/test_trees.py checks both against a Python loop.
    """
    if a.shape[0] == 1:
        return a[0]
    if a.shape[1] >= 2:
        return np.add.reduce(np.ascontiguousarray(a), axis=0)
    return np.add.accumulate(a, axis=0)[-1]
