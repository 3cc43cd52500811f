"""HistGradientBoostingClassifier / Regressor: ``raw = baseline + sum of the trees' leaf values``.

The trees are compiled by the forest engine (:mod:`._forest`), almost always into the QuickScorer
bit-vector layout (HGB trees have at most 31 leaves by default). Unlike scikit-learn's other trees, HGB
compares float64 inputs with float64 thresholds, and it has categorical splits: a categorical column is
first encoded to the index of its value in the document's ``categories`` (scikit-learn's internal
OrdinalEncoder); missing and unknown values become NaN and follow ``missing_go_to_left``; a category
index goes left when its bit is set in the split's bitset.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._base import Estimator, InvalidInput, LoadContext, RowPath, as_float, register
from .._inputs import plain_row
from .._limits import RowCost
from .._links import binary_proba, expit, expit_scalar, libm_exp, numpy_exp, softmax
from ._forest import Categorical, CompiledForest, Tree, compile_forest, load_tree, load_trees

CLASSIFIER_LOSSES = ("log_loss",)
REGRESSOR_LOSSES = ("squared_error", "absolute_error", "quantile", "poisson", "gamma")
LOG_LINK = ("poisson", "gamma")
MAX_CATEGORIES = 256  # bitsets hold 256 category codes


class CategoryEncoder:
    """Raw values of one categorical column -> category index (float), NaN for missing or unknown."""

    def __init__(self, column: int, categories: list[Any]) -> None:
        self.column = column
        self.strings = isinstance(categories[0], str)
        keys = np.array(categories, dtype=str if self.strings else np.float64)
        order = np.argsort(keys, kind="stable")
        self.sorted = keys[order]
        self.index = order.astype(np.float64)

    def encode(self, col: np.ndarray) -> np.ndarray:
        K = self.sorted.size
        if self.strings:
            if col.dtype.kind not in "OU":
                return np.full(col.shape, np.nan)  # numbers never equal a string category
            s = col.astype(str)
            pos = np.minimum(np.searchsorted(self.sorted, s), K - 1)
            hit = self.sorted[pos] == s
            if col.dtype == object:
                hit &= (col == s.astype(object)).astype(bool)  # None -> 'None', 1.0 -> '1.0' are not hits
        else:
            try:
                x = as_float(col.reshape(-1, 1), "categorical column").ravel()
            except InvalidInput:
                return self._mixed(col)
            pos = np.minimum(np.searchsorted(self.sorted, x), K - 1)
            hit = self.sorted[pos] == x
        return np.where(hit, self.index[pos], np.nan)

    def _mixed(self, col: np.ndarray) -> np.ndarray:
        """Numeric categories but some inputs are text: the text values are unknown categories."""
        is_text = np.frompyfunc(lambda v: isinstance(v, str), 1, 1)(col).astype(bool)
        numbers = col.copy()
        numbers[is_text] = None
        out = self.encode(numbers.astype(object))
        out[is_text] = np.nan
        return out


class _HistGradientBoosting(Estimator):
    losses: tuple[str, ...] = ()
    loss = ""
    per_stage = 1
    baseline: np.ndarray
    forest: CompiledForest
    encoders: list[CategoryEncoder]
    _num_cols: list[int]

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> Estimator:
        self = cls()
        F = self.n_features_in = ctx.integer(node, "n_features_in", minimum=1)
        self.loss = ctx.string(node, "loss", choices=self.losses)
        K = 1
        if isinstance(self, HistGradientBoostingClassifier):
            self.classes = ctx.labels(node, "classes")
            n = len(self.classes)
            if n < 2:
                raise ctx.fail("a classifier needs at least two classes", "classes")
            K = 1 if n == 2 else n
        self.per_stage = K
        self.baseline = ctx.array(node, "baseline", "float64", shape=(K,)).reshape(K, 1)
        self.encoders = []
        n_categories: dict[int, int] = {}
        raw_cats = ctx.get(node, "categorical_features", list, default=[])
        for i, entry in enumerate(raw_cats):
            cctx = ctx.child("categorical_features", i)
            if not isinstance(entry, dict):
                raise cctx.fail("must be an object with column and categories")
            col = cctx.integer(entry, "column", minimum=0, maximum=F - 1)
            if col in n_categories:
                raise cctx.fail(f"column {col} is listed twice", "column")
            cats = cctx.get(entry, "categories", list)
            if not 1 <= len(cats) <= MAX_CATEGORIES - 1:
                raise cctx.fail(f"needs 1 to {MAX_CATEGORIES - 1} categories", "categories")
            strings = all(isinstance(c, str) for c in cats)
            numbers = all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in cats)
            if not (strings or numbers):
                raise cctx.fail("categories must be all strings or all numbers", "categories")
            if len(set(cats)) != len(cats) or (numbers and len({float(c) for c in cats}) != len(cats)):
                raise cctx.fail("categories must be distinct", "categories")
            n_categories[col] = len(cats)
            self.encoders.append(CategoryEncoder(col, cats))
        self._num_cols = [j for j in range(F) if j not in n_categories]
        categorical = Categorical(n_categories) if n_categories else None
        tree_nodes = load_trees(node, ctx)
        if len(tree_nodes) % K:
            raise ctx.fail(f"the number of trees must be a multiple of {K} "
                           "(one tree per class per iteration)", "trees")
        trees: list[Tree] = []
        values: list[np.ndarray] = []
        for i, tnode in enumerate(tree_nodes):
            tctx = ctx.child("trees", i)
            tree, value = load_tree(tnode, tctx, F, (), categorical=set(n_categories))
            if tree.bitsets is not None and tree.category_split is not None and tree.bitsets.size:
                # a categorical split may only send known category codes left
                for f, k in n_categories.items():
                    sel = (tree.left >= 0) & (tree.category_split >= 0) & (tree.feature == f)
                    if not sel.any():
                        continue
                    bits = np.unpackbits(tree.bitsets[tree.category_split[sel]], axis=1, bitorder="little")
                    if bits[:, k:].any():
                        n = int(np.flatnonzero(sel)[np.flatnonzero(bits[:, k:].any(axis=1))[0]])
                        raise tctx.fail(f"the bitset of node {n} holds category codes beyond the {k} "
                                        f"categories of column {f}", "category_split", n)
            trees.append(tree)
            values.append(value.reshape(-1, 1))
        self.forest = compile_forest(trees, values, F, categorical=categorical, init=self.baseline,
                                     per_stage=K)
        return self

    def _matrix(self, X: np.ndarray) -> np.ndarray:
        """Float64 inputs with categorical columns replaced by their category index (NaN if unknown)."""
        if X.ndim != 2 or X.shape[1] != self.n_features_in:
            raise InvalidInput(f"{self.type_name}: expected {self.n_features_in} columns, got "
                               f"{X.shape[1] if X.ndim == 2 else X.ndim}")
        if not self.encoders:
            return as_float(X, self.type_name)
        out = np.empty(X.shape, dtype=np.float64)
        if self._num_cols:
            cols = np.asarray(self._num_cols, dtype=np.int64)
            out[:, cols] = as_float(X[:, cols], self.type_name)
        for enc in self.encoders:
            out[:, enc.column] = enc.encode(X[:, enc.column])
        return out

    def _raw(self, X: np.ndarray) -> np.ndarray:
        return self.forest.sums(self._matrix(X))[:, :, 0]

    def _row_raw(self, row: list[Any]) -> float | np.ndarray | None:
        """One row's raw prediction: a float (one tree per iteration) or ``(1, per_stage)``; None for the
        general path (categorical columns, NaN, infinities)."""
        if self.encoders:
            return None
        x = plain_row(row, math.inf)
        if x is None:
            return None
        if self.per_stage == 1:
            return self.forest.row_total(x)
        return self.forest.row_sums(x).reshape(1, self.per_stage)

    def row_cost(self) -> RowCost:
        return self.forest.row_cost(self.n_features_in, max(self.per_stage, 2))


@register("hist_gradient_boosting_regressor")
class HistGradientBoostingRegressor(_HistGradientBoosting):
    losses = REGRESSOR_LOSSES

    def row_path(self, method: str) -> RowPath | None:
        log_link = self.loss in LOG_LINK

        def predict(row: list[Any]) -> np.ndarray | None:
            raw = self._row_raw(row)
            if raw is None:
                return None
            out = np.array([raw])
            return numpy_exp(out) if log_link else out

        return predict if method == "predict" else None

    def predict(self, X: np.ndarray) -> np.ndarray:
        raw = self._raw(X)[:, 0]
        return numpy_exp(raw) if self.loss in LOG_LINK else raw  # scikit-learn's LogLink: np.exp


@register("hist_gradient_boosting_classifier")
class HistGradientBoostingClassifier(_HistGradientBoosting):
    losses = CLASSIFIER_LOSSES

    def row_path(self, method: str) -> RowPath | None:
        classes = self.classes
        assert classes is not None

        def decision_function(row: list[Any]) -> np.ndarray | None:
            raw = self._row_raw(row)
            return None if raw is None else raw if isinstance(raw, np.ndarray) else np.array([raw])

        def predict_proba(row: list[Any]) -> np.ndarray | None:
            raw = self._row_raw(row)
            if raw is None or isinstance(raw, np.ndarray):
                return raw if raw is None else softmax(np.asfortranarray(raw))
            p = expit_scalar(raw)  # scipy's expit, as HalfBinomialLoss
            return np.array([[1.0 - p, p]])

        def predict(row: list[Any]) -> np.ndarray | None:
            raw = self._row_raw(row)
            if raw is None or isinstance(raw, np.ndarray):
                return raw if raw is None else classes[np.argmax(raw, axis=1)]
            return classes[[1 if raw > 0 else 0]]

        paths = {"decision_function": decision_function, "predict_proba": predict_proba, "predict": predict}
        return paths.get(method)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        raw = self._raw(X)
        return raw[:, 0] if self.per_stage == 1 else raw

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        raw = self._raw(X)
        if self.per_stage > 1:
            return softmax(np.asfortranarray(raw))  # scikit-learn's raw predictions are F-ordered
        return binary_proba(expit(raw[:, 0], exp=libm_exp))  # scipy's expit, as HalfBinomialLoss

    def predict(self, X: np.ndarray) -> np.ndarray:
        assert self.classes is not None
        raw = self._raw(X)
        if self.per_stage == 1:
            return self.classes[(raw[:, 0] > 0).astype(np.int64)]  # HGB: "> 0" (GB uses ">= 0")
        return self.classes[np.argmax(raw, axis=1)]
