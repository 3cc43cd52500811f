"""LightGBM (``lightgbm.Booster``, ``LGBMClassifier``, ``LGBMRegressor``): LightGBM's double arithmetic.

LightGBM compares float64 inputs with float64 thresholds (``x <= threshold`` goes left) and adds the trees'
leaf values in double, tree after tree: the forest engine does exactly that. What differs is missing
values, decided per split by its ``missing_type``: None (NaN is read as 0.0), Zero (NaN and |x| <= 1e-35f
follow ``default_left``) or NaN (NaN follows ``default_left``). Each (column, missing_type) pair a forest
uses becomes one column of the matrix handed to the engine, rewritten so that the engine's one rule (NaN
follows ``missing_go_to_left``) decides as LightGBM does. A categorical split truncates the value to an
int; NaN, negative codes and codes not in its bitset go right.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._base import Estimator, LoadContext, RowPath, register
from .._inputs import plain_row
from .._links import libm_exp, libm_exp_scalar, sigmoid_libm, softmax_libm
from ._forest import Categorical, CompiledForest, compile_forest, load_tree, load_trees
from ._forest.float32 import check_matrix

SIGMOID = ("binary", "cross_entropy")
IDENTITY = ("regression", "regression_l1", "huber", "fair", "quantile", "mape")
LOG_LINK = ("poisson", "gamma", "tweedie")
OBJECTIVES = (*SIGMOID, *IDENTITY, *LOG_LINK, "multiclass")
CLASSIFIER_OBJECTIVES = ("binary", "multiclass")
NONE, ZERO, NAN, CATEGORY = 0, 1, 2, 3  # missing_type values in the document; CATEGORY: categorical column
ZERO_THRESHOLD = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (a float)
N_CODES = 256  # category bitsets hold codes 0..255


class _LightGBM(Estimator):
    objective = ""
    forest: CompiledForest
    sigmoid = 1.0
    _row_columns: list[int] | None = None
    _row_zero: list[int]
    n_outputs = 1
    columns: list[tuple[int, int]]  # engine column -> (input column, missing_type or CATEGORY)

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> Estimator:
        self = cls()
        F = self.n_features_in = ctx.integer(node, "n_features_in", minimum=1)
        is_clf = isinstance(self, LightGBMClassifier)
        allowed = CLASSIFIER_OBJECTIVES if is_clf else OBJECTIVES
        self.objective = ctx.string(node, "objective", choices=allowed)
        K = self.n_outputs = ctx.integer(node, "n_outputs", minimum=1, maximum=10_000)
        if (self.objective == "multiclass") != (K > 1):
            raise ctx.fail("multiclass has one output per class (at least 2), the others one", "n_outputs")
        if self.objective == "binary":
            self.sigmoid = ctx.number(node, "sigmoid")
            if self.sigmoid <= 0:
                raise ctx.fail("must be > 0", "sigmoid")
        if is_clf:
            self.classes = ctx.labels(node, "classes")
            if len(self.classes) != max(K, 2):
                raise ctx.fail("a classifier has 2 classes (binary) or n_outputs classes", "classes")
        cats = ctx.get(node, "categorical_features", list, default=[])
        if not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < F for c in cats) \
                or len(set(cats)) != len(cats):
            raise ctx.fail(f"must hold distinct column indices in [0, {F})", "categorical_features")
        cat_set = set(cats)
        engine_col: dict[tuple[int, int], int] = {}
        trees, values = [], []
        for i, tnode in enumerate(load_trees(node, ctx)):
            tctx = ctx.child("trees", i)
            tree, value = load_tree(tnode, tctx, F, (), categorical=cat_set)
            mtype = tctx.array(tnode, "missing_type", "uint8", shape=(tree.n_nodes,))
            inner = tree.left >= 0
            if (mtype[inner] > NAN).any():
                raise tctx.fail("must be 0 (None), 1 (Zero) or 2 (NaN)", "missing_type",
                                int(np.flatnonzero(inner & (mtype > NAN))[0]))
            assert tree.category_split is not None
            is_cat = inner & (tree.category_split >= 0)
            kind = np.where(is_cat, CATEGORY, mtype)
            feature = tree.feature.copy()
            for j in np.flatnonzero(inner).tolist():
                key = (int(tree.feature[j]), int(kind[j]))
                feature[j] = engine_col.setdefault(key, len(engine_col))
            tree.feature = feature
            tree.missing_left = tree.missing_left & ~is_cat  # NaN always goes right of a category split
            trees.append(tree)
            values.append(value.reshape(-1, 1))
        if len(trees) % K:
            raise ctx.fail(f"the number of trees must be a multiple of {K} (one per class per iteration)",
                           "trees")
        self.columns = sorted(engine_col, key=engine_col.__getitem__)
        n_engine = max(1, len(self.columns))
        categorical = {c: N_CODES for c, (_, kind) in enumerate(self.columns) if kind == CATEGORY}
        self.forest = compile_forest(trees, values, n_engine, per_stage=K,
                                     categorical=Categorical(categorical) if categorical else None)
        # single rows: the input column of each engine column, and the engine columns whose tiny values
        # are missing (Zero); none of this when a column is categorical (the general path encodes it)
        self._row_columns = [f for f, _ in self.columns] or None
        self._row_zero = [c for c, (_, kind) in enumerate(self.columns) if kind == ZERO]
        if categorical:
            self._row_columns = None
        return self

    def _engine_matrix(self, X: np.ndarray) -> np.ndarray:
        """One column per (input column, missing_type) the trees use, rewritten for the engine."""
        Xf = check_matrix(X, self.n_features_in, self.type_name)
        out = np.zeros((Xf.shape[0], max(1, len(self.columns))))
        with np.errstate(invalid="ignore"):
            for c, (f, kind) in enumerate(self.columns):
                x = Xf[:, f]
                nan = np.isnan(x)
                if kind == NONE:
                    out[:, c] = np.where(nan, 0.0, x)
                elif kind == ZERO:
                    out[:, c] = np.where(nan | (np.abs(x) <= ZERO_THRESHOLD), np.nan, x)
                elif kind == NAN:
                    out[:, c] = x
                else:  # static_cast<int>: truncation; NaN, negative and unknown codes go right
                    code = np.trunc(x)
                    out[:, c] = np.where(nan | (code < 0) | (code >= N_CODES), np.nan, code)
        return out

    def raw(self, X: np.ndarray) -> np.ndarray:
        """``(rows, n_outputs)``: ``predict(raw_score=True)``."""
        return self.forest.sums(self._engine_matrix(X))[:, :, 0]

    def _row_raw(self, row: list[Any]) -> float | np.ndarray | None:
        """One row's raw score: a float (one output) or ``(1, n_outputs)``; None for the general path
        (NaN, infinities, a value Zero-missing columns treat as missing, categorical columns)."""
        cols = self._row_columns
        if cols is None:
            return None
        x = plain_row(row, math.inf)
        if x is None:
            return None
        engine = [x[f] for f in cols]
        for c in self._row_zero:
            if abs(engine[c]) <= ZERO_THRESHOLD:
                return None
        if self.n_outputs == 1:
            return self.forest.row_total(engine)
        return self.forest.row_sums(engine).reshape(1, self.n_outputs)

    def _row_transformed(self, row: list[Any]) -> float | np.ndarray | None:
        """``transformed`` of one row: a float (one output) or ``(1, n_outputs)``; None: general path."""
        r = self._row_raw(row)
        if r is None or isinstance(r, np.ndarray):
            return r if r is None else self._transform(r)
        if self.objective in SIGMOID:
            scale = self.sigmoid if self.objective == "binary" else 1.0
            return 1.0 / (1.0 + libm_exp_scalar(-scale * r))  # sigmoid_libm's operations on one float
        if self.objective in LOG_LINK:
            return libm_exp_scalar(r)
        return r

    def transformed(self, X: np.ndarray) -> np.ndarray:
        """What ``Booster.predict`` returns: the objective's transform of the raw score, in double."""
        return self._transform(self.raw(X))

    def _transform(self, r: np.ndarray) -> np.ndarray:
        if self.objective in SIGMOID:
            scale = self.sigmoid if self.objective == "binary" else 1.0
            return sigmoid_libm(r[:, 0], scale)
        if self.objective in LOG_LINK:
            return libm_exp(r[:, 0])
        if self.objective == "multiclass":
            return softmax_libm(r)
        return r[:, 0]


@register("lightgbm_booster")
class LightGBMBooster(_LightGBM):
    """``Booster.predict`` (and LGBMRegressor.predict): the transformed prediction."""

    def row_path(self, method: str) -> RowPath | None:
        def predict(row: list[Any]) -> np.ndarray | None:
            p = self._row_transformed(row)
            return None if p is None else p if isinstance(p, np.ndarray) else np.array([p])

        return predict if method == "predict" else None

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.transformed(X)


@register("lightgbm_classifier")
class LightGBMClassifier(_LightGBM):
    """LGBMClassifier: ``predict_proba`` as LightGBM computes it, ``predict`` its argmax,
    ``decision_function`` the raw score (LightGBM >= 4.7)."""

    def row_path(self, method: str) -> RowPath | None:
        classes = self.classes
        assert classes is not None

        def decision_function(row: list[Any]) -> np.ndarray | None:
            r = self._row_raw(row)
            return None if r is None else r if isinstance(r, np.ndarray) else np.array([r])

        def predict_proba(row: list[Any]) -> np.ndarray | None:
            p = self._row_transformed(row)
            return None if p is None else p if isinstance(p, np.ndarray) else np.array([[1.0 - p, p]])

        def predict(row: list[Any]) -> np.ndarray | None:
            p = predict_proba(row)
            return None if p is None else classes[np.argmax(p, axis=1)]

        paths = {"decision_function": decision_function, "predict_proba": predict_proba, "predict": predict}
        return paths.get(method)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        r = self.raw(X)
        return r[:, 0] if self.n_outputs == 1 else r

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = self.transformed(X)
        return np.stack([1.0 - p, p], axis=1) if p.ndim == 1 else p

    def predict(self, X: np.ndarray) -> np.ndarray:
        assert self.classes is not None
        return self.classes[np.argmax(self.predict_proba(X), axis=1)]

