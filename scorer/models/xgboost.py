"""XGBoost (``xgboost.Booster``, ``XGBClassifier``, ``XGBRegressor``): XGBoost's float32 arithmetic.

XGBoost rounds every input to float32 and sends a row left when ``x < split_condition`` (float32 on both
sides; NaN follows ``default_left``). The forest engine compares ``float32(x) <= t``, so each condition is
stored to the engine as the float32 just below it: the same decision for every input, bit for bit.
XGBoost then adds the trees' leaf values to the base margin in float32, one tree after the other
(``CompiledForest.sum_dtype = float32``), and applies the objective's transform in float32: every
intermediate result is rounded to float32 here too (exp computed in float64, then rounded: a correctly
rounded expf). docs/format/xgboost.md states the tolerance.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._base import Estimator, LoadContext, RowPath, register
from .._inputs import plain_row
from .._links import exp32, round32, sigmoid32, sigmoid32_scalar, softmax32, softmax_numpy32
from ._forest import CompiledForest, compile_forest, float32_checks, load_tree, load_trees
from ._forest.float32 import check_matrix

F32 = np.float32
LOGISTIC = ("binary:logistic", "reg:logistic")
IDENTITY = ("reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror", "binary:logitraw")
LOG_LINK = ("count:poisson", "reg:gamma", "reg:tweedie")
MULTICLASS = ("multi:softprob", "multi:softmax")
OBJECTIVES = LOGISTIC + IDENTITY + LOG_LINK + MULTICLASS
CLASSIFIER_OBJECTIVES = ("binary:logistic", "multi:softprob", "multi:softmax")


class _XGBoost(Estimator):
    objective = ""
    forest: CompiledForest
    n_outputs = 1

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> Estimator:
        self = cls()
        F = self.n_features_in = ctx.integer(node, "n_features_in", minimum=1)
        choices = CLASSIFIER_OBJECTIVES if isinstance(self, XGBoostClassifier) else OBJECTIVES
        self.objective = ctx.string(node, "objective", choices=choices)
        K = self.n_outputs = ctx.integer(node, "n_outputs", minimum=1, maximum=10_000)
        if (self.objective in MULTICLASS) != (K > 1):
            raise ctx.fail("multi:* objectives have one output per class (at least 2), the others one",
                           "n_outputs")
        if isinstance(self, XGBoostClassifier):
            self.classes = ctx.labels(node, "classes")
            if len(self.classes) != max(K, 2):
                raise ctx.fail("a classifier has 2 classes (binary:logistic) or n_outputs classes", "classes")
        base = ctx.array(node, "base_margin", "float64", shape=(K,))
        if not np.array_equal(base.astype(F32).astype(np.float64), base):
            raise ctx.fail("must hold float32 values", "base_margin")
        trees, values = [], []
        for i, tnode in enumerate(load_trees(node, ctx)):
            tctx = ctx.child("trees", i)
            tree, value = load_tree(tnode, tctx, F, ())
            if not np.array_equal(value.astype(F32).astype(np.float64), value):
                raise tctx.fail("leaf values must be float32 values", "value")
            inner = tree.left >= 0
            thr = tree.threshold[inner]
            if not np.array_equal(thr.astype(F32).astype(np.float64), thr):
                raise tctx.fail("split conditions must be float32 values", "threshold")
            # x < c  <=>  float32(x) <= the float32 just below c
            below = np.nextafter(tree.threshold.astype(F32), F32(-np.inf)).astype(np.float64)
            tree.threshold = np.where(inner, below, tree.threshold)
            trees.append(tree)
            values.append(value.reshape(-1, 1))
        if len(trees) % K:
            raise ctx.fail(f"the number of trees must be a multiple of {K} (one per class per iteration)",
                           "trees")
        for k in range(min(K, len(values))):  # base + first leaf: XGBoost's first float32 addition
            values[k] = (values[k] + base[k]).astype(F32).astype(np.float64)
        self.forest = compile_forest(trees, values, F, float32=True, per_stage=K)
        self.forest.sum_dtype = F32
        return self

    def margin(self, X: np.ndarray) -> np.ndarray:
        """``(rows, n_outputs)`` float32 margins, as ``predict(output_margin=True)``."""
        Xf = check_matrix(X, self.n_features_in, self.type_name)
        has_nan = float32_checks(Xf, self.type_name, allow_nan=True, allow_inf=True)
        return self.forest.sums(Xf, has_nan)[:, :, 0].astype(F32)

    def _row_margin(self, row: list[Any]) -> np.ndarray | None:
        """``margin`` of one row (``(1, n_outputs)``); None for the general path (NaN, infinities)."""
        x = plain_row(row, math.inf)
        if x is None:
            return None
        return self.forest.row_sums(x).reshape(1, self.n_outputs).astype(F32, copy=False)

    def transformed(self, X: np.ndarray) -> np.ndarray:
        """What ``Booster.predict`` returns (float32): the objective's transform of the margin."""
        return self._transform(self.margin(X))

    def _transform(self, m: np.ndarray) -> np.ndarray:
        if self.objective in LOGISTIC:
            return sigmoid32(m[:, 0])
        if self.objective in LOG_LINK:
            return exp32(m[:, 0])
        if self.objective == "multi:softprob":
            return softmax32(m)
        if self.objective == "multi:softmax":
            return np.argmax(m, axis=1).astype(F32)
        return m[:, 0]


@register("xgboost_booster")
class XGBoostBooster(_XGBoost):
    """``Booster.predict`` (and XGBRegressor.predict): the transformed prediction."""

    def row_path(self, method: str) -> RowPath | None:
        def predict(row: list[Any]) -> np.ndarray | None:
            m = self._row_margin(row)
            return None if m is None else self._transform(m)

        return predict if method == "predict" else None

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.transformed(X)


@register("xgboost_classifier")
class XGBoostClassifier(_XGBoost):
    """XGBClassifier: probabilities as XGBoost computes them; labels from them as XGBClassifier does."""

    def row_path(self, method: str) -> RowPath | None:
        logistic = self.objective in LOGISTIC

        def one(row: list[Any]) -> np.ndarray | None:
            m = self._row_margin(row)
            return None if m is None else self._classifier_transform(m)

        def predict_proba(row: list[Any]) -> np.ndarray | None:
            if logistic:  # binary: float32 arithmetic on Python floats (round32), no array until the end
                x = plain_row(row, math.inf)
                if x is None:
                    return None
                p1 = sigmoid32_scalar(float(self.forest.row_sums(x)[0, 0]))  # the float32 margin
                return np.array([[round32(1.0 - p1), p1]], dtype=F32)
            p = one(row)
            return None if p is None else self._proba(p)

        def predict(row: list[Any]) -> np.ndarray | None:
            p = self._row_margin(row) if self.objective == "multi:softmax" else one(row)
            return None if p is None else self._labels(p)

        return {"predict_proba": predict_proba, "predict": predict}.get(method)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self._proba(self._classifier_transform(self.margin(X)))

    def _classifier_transform(self, m: np.ndarray) -> np.ndarray:
        """XGBClassifier's probabilities: under ``multi:softmax`` (whose Booster predicts class indices)
        the softmax of the float32 margins, as ``predict_proba`` computes it (scipy's softmax)."""
        return softmax_numpy32(m) if self.objective == "multi:softmax" else self._transform(m)

    @staticmethod
    def _proba(p: np.ndarray) -> np.ndarray:
        if p.ndim == 1:  # [1 - p, p] in float32, without np.stack's temporaries
            out = np.empty((p.shape[0], 2), dtype=F32)
            out[:, 1] = p
            np.subtract(F32(1.0), p, out=out[:, 0])
            return out
        return p

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.objective == "multi:softmax":  # the Booster's own labels: the first largest margin
            return self._labels(self.margin(X))
        return self._labels(self.transformed(X))

    def _labels(self, p: np.ndarray) -> np.ndarray:
        assert self.classes is not None
        index = (p > 0.5).astype(np.int64) if p.ndim == 1 else np.argmax(p, axis=1)
        return self.classes[index]
