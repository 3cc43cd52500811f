"""Decision trees and tree ensembles: scikit-learn's decision trees, random forests / extra trees, gradient
boosting and isolation forests.

A document stores every tree as parallel arrays (``children_left``, ``children_right``, ``feature``,
``threshold``, ``missing_go_to_left``, ``value``) in scikit-learn's node order (docs/format/trees.md).
The trees are loaded, validated and compiled by the forest engine (:mod:`scorer.models._forest`); this
module holds what each estimator adds on top: how leaf outputs become predictions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._base import Estimator, LoadContext, RowPath, decode_labels, register
from .._inputs import plain_row
from .._limits import RowCost
from .._links import binary_proba, expit, expit_scalar, libm_exp, softmax
from ._forest import (
    FLOAT32_OVERFLOW,
    CompiledForest,
    Tree,
    check_matrix,
    check_node_count,
    compile_forest,
    float32_checks,
    forest_levels,
    load_tree,
    load_trees,
)

MAX_OUTPUTS = 100_000


def _load_classes(node: dict[str, Any], ctx: LoadContext, n_outputs: int) -> list[np.ndarray]:
    raw = ctx.get(node, "classes", list)
    if n_outputs == 1:
        return [ctx.labels(node, "classes")]
    if len(raw) != n_outputs or not all(isinstance(c, list) for c in raw):
        raise ctx.fail(f"a multi-output classifier needs a list of {n_outputs} label lists", "classes")
    return [decode_labels(c, ctx.child("classes", k)) for k, c in enumerate(raw)]


def _classes_attr(classes: list[np.ndarray]) -> np.ndarray:
    if len(classes) == 1:
        return classes[0]
    out = np.empty(len(classes), dtype=object)
    for k, c in enumerate(classes):
        out[k] = c.tolist()
    return out


def _label_matrix(classes: list[np.ndarray], winners: list[np.ndarray]) -> np.ndarray:
    """2-D labels for a multi-output classifier (scikit-learn uses the first output's label dtype)."""
    dtype = classes[0].dtype
    if any(c.dtype.kind != dtype.kind for c in classes):
        dtype = np.dtype(object)
    out = np.empty((winners[0].shape[0], len(classes)), dtype=dtype)
    for k, (c, w) in enumerate(zip(classes, winners, strict=True)):
        out[:, k] = c[w]
    return out


class _SklearnTrees(Estimator):
    """DecisionTree*, RandomForest*, ExtraTrees*: leaf values averaged over the trees."""

    single = False
    classifier = False
    n_outputs = 1
    allow_nan = True
    n_classes: list[int]
    class_lists: list[np.ndarray]
    forest: CompiledForest

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> Estimator:
        self = cls()
        self.n_features_in = ctx.integer(node, "n_features_in", minimum=1)
        self.n_outputs = ctx.integer(node, "n_outputs", default=1, minimum=1, maximum=MAX_OUTPUTS)
        self.allow_nan = ctx.boolean(node, "allow_nan", default=True)
        if self.classifier:
            self.class_lists = _load_classes(node, ctx, self.n_outputs)
            self.classes = _classes_attr(self.class_lists)
            self.n_classes = [len(c) for c in self.class_lists]
            value_shape: tuple[int, ...] = (self.n_outputs, max(self.n_classes))
        else:
            value_shape = (self.n_outputs,)
        if self.single:
            tree_nodes = [ctx.get(node, "tree", dict)]
            tctxs = [ctx.child("tree")]
            check_node_count(tree_nodes, ctx, "tree")
        else:
            tree_nodes = load_trees(node, ctx)
            tctxs = [ctx.child("trees", i) for i in range(len(tree_nodes))]
        trees: list[Tree] = []
        values: list[np.ndarray] = []
        for tnode, tctx in zip(tree_nodes, tctxs, strict=True):
            tree, value = load_tree(tnode, tctx, self.n_features_in, value_shape, levels=False)
            trees.append(tree)
            values.append(value.reshape(value.shape[0], -1))
        forest_levels(trees, tctxs)
        self.forest = compile_forest(trees, values, self.n_features_in, float32=True)
        return self

    def row_cost(self) -> RowCost:
        out = sum(self.n_classes) if self.classifier else self.n_outputs
        return self.forest.row_cost(self.n_features_in, out)

    def _sums(self, X: np.ndarray) -> np.ndarray:
        """Per row, the leaf values summed over trees then divided by their number (forest average)."""
        Xf = check_matrix(X, self.n_features_in, self.type_name)
        has_nan = float32_checks(Xf, self.type_name, self.allow_nan)
        total = self.forest.sums(Xf, has_nan)[:, 0, :]
        if not self.single:
            total /= self.forest.n_trees
        return total

    def _row_sums(self, row: list[Any]) -> np.ndarray | None:
        """``_sums`` of one row (``(1, outputs)``); None: the general path (NaN, beyond float32's range)."""
        x = plain_row(row, FLOAT32_OVERFLOW)
        if x is None:
            return None
        total = self.forest.row_sums(x)
        return total if self.single else total / self.forest.n_trees


class _TreeClassifier(_SklearnTrees):
    classifier = True

    def row_path(self, method: str) -> RowPath | None:
        if self.n_outputs != 1 or method not in ("predict", "predict_proba"):
            return None
        n, labels = self.n_classes[0], self.class_lists[0]

        def proba(row: list[Any]) -> np.ndarray | None:
            p = self._row_sums(row)
            return p if p is None or p.shape[1] == n else np.ascontiguousarray(p[:, :n])

        def predict(row: list[Any]) -> np.ndarray | None:
            p = proba(row)
            return None if p is None else labels[np.argmax(p, axis=1)]

        return proba if method == "predict_proba" else predict

    def _probas(self, X: np.ndarray) -> list[np.ndarray]:
        p = self._sums(X).reshape(X.shape[0], self.n_outputs, max(self.n_classes))
        return [np.ascontiguousarray(p[:, k, :n]) for k, n in enumerate(self.n_classes)]

    def predict_proba(self, X: np.ndarray) -> Any:
        probas = self._probas(X)
        return probas[0] if self.n_outputs == 1 else probas

    def predict(self, X: np.ndarray) -> np.ndarray:
        probas = self._probas(X)
        winners = [np.argmax(p, axis=1) for p in probas]
        if self.n_outputs == 1:
            return self.class_lists[0][winners[0]]
        return _label_matrix(self.class_lists, winners)


class _TreeRegressor(_SklearnTrees):
    def row_path(self, method: str) -> RowPath | None:
        if method != "predict" or self.n_outputs != 1:
            return None

        def predict(row: list[Any]) -> np.ndarray | None:
            out = self._row_sums(row)
            return None if out is None else out[:, 0]

        return predict

    def predict(self, X: np.ndarray) -> np.ndarray:
        out = self._sums(X)
        return out[:, 0] if self.n_outputs == 1 else out


@register("decision_tree_classifier")
class DecisionTreeClassifier(_TreeClassifier):
    single = True


@register("decision_tree_regressor")
class DecisionTreeRegressor(_TreeRegressor):
    single = True


@register("random_forest_classifier", "extra_trees_classifier")
class ForestClassifier(_TreeClassifier):
    pass


@register("random_forest_regressor", "extra_trees_regressor")
class ForestRegressor(_TreeRegressor):
    pass


# -- gradient boosting -----------------------------------------------------------------------------

GB_CLASSIFIER_LOSSES = ("log_loss", "exponential")
GB_REGRESSOR_LOSSES = ("squared_error", "absolute_error", "huber", "quantile")


class _GradientBoosting(Estimator):
    """``raw = init + sum over stages of learning_rate * tree_value`` (scikit-learn's predict_stages)."""

    per_stage = 1
    loss = ""
    init: np.ndarray
    forest: CompiledForest
    losses: tuple[str, ...] = ()

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> Estimator:
        self = cls()
        self.n_features_in = ctx.integer(node, "n_features_in", minimum=1)
        self.loss = ctx.string(node, "loss", choices=self.losses)
        lr = ctx.number(node, "learning_rate")
        K = 1
        if isinstance(self, GradientBoostingClassifier):
            self.classes = ctx.labels(node, "classes")
            n = len(self.classes)
            if n < 2:
                raise ctx.fail("a classifier needs at least two classes", "classes")
            if self.loss == "exponential" and n != 2:
                raise ctx.fail("the exponential loss is for two classes only", "loss")
            K = 1 if n == 2 else n
        self.per_stage = K
        self.init = ctx.array(node, "init", "float64", shape=(K,)).reshape(K, 1)
        tree_nodes = load_trees(node, ctx)
        if len(tree_nodes) % K:
            raise ctx.fail(f"the number of trees must be a multiple of {K} (one tree per class per stage)",
                           "trees")
        trees: list[Tree] = []
        values: list[np.ndarray] = []
        for i, tnode in enumerate(tree_nodes):
            tree, value = load_tree(tnode, ctx.child("trees", i), self.n_features_in, (), missing=False)
            trees.append(tree)
            values.append((lr * value).reshape(-1, 1))  # scikit-learn adds `scale * value[leaf]`
        self.forest = compile_forest(trees, values, self.n_features_in, float32=True, init=self.init,
                                     per_stage=K)
        return self

    def row_cost(self) -> RowCost:
        return self.forest.row_cost(self.n_features_in, max(self.per_stage, 2))

    def _raw(self, X: np.ndarray) -> np.ndarray:
        Xf = check_matrix(X, self.n_features_in, self.type_name)
        float32_checks(Xf, self.type_name, allow_nan=False)
        return self.forest.sums(Xf, False)[:, :, 0]

    def _row_raw(self, row: list[Any]) -> float | np.ndarray | None:
        """One row's raw prediction: a float (one tree per stage) or ``(1, per_stage)``; None for the
        general path (NaN, out of float32's range: it raises as scikit-learn does)."""
        x = plain_row(row, FLOAT32_OVERFLOW)
        if x is None:
            return None
        if self.per_stage == 1:
            return self.forest.row_total(x)
        return self.forest.row_sums(x).reshape(1, self.per_stage)


@register("gradient_boosting_regressor")
class GradientBoostingRegressor(_GradientBoosting):
    losses = GB_REGRESSOR_LOSSES

    def row_path(self, method: str) -> RowPath | None:
        def predict(row: list[Any]) -> np.ndarray | None:
            raw = self._row_raw(row)
            return None if raw is None else np.array([raw])

        return predict if method == "predict" else None

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._raw(X)[:, 0]


@register("gradient_boosting_classifier")
class GradientBoostingClassifier(_GradientBoosting):
    losses = GB_CLASSIFIER_LOSSES

    def row_path(self, method: str) -> RowPath | None:
        classes = self.classes
        assert classes is not None
        exponential = self.loss == "exponential"

        def decision_function(row: list[Any]) -> np.ndarray | None:
            raw = self._row_raw(row)
            return None if raw is None else raw if isinstance(raw, np.ndarray) else np.array([raw])

        def predict_proba(row: list[Any]) -> np.ndarray | None:
            raw = self._row_raw(row)
            if raw is None or isinstance(raw, np.ndarray):
                return raw if raw is None else softmax(raw)
            p = expit_scalar(2.0 * raw if exponential else raw)  # scipy's expit, as in predict_proba
            return np.array([[1.0 - p, p]])

        def predict(row: list[Any]) -> np.ndarray | None:
            raw = self._row_raw(row)
            if raw is None or isinstance(raw, np.ndarray):
                return raw if raw is None else classes[np.argmax(raw, axis=1)]
            return classes[[1 if raw >= 0 else 0]]

        paths = {"decision_function": decision_function, "predict_proba": predict_proba, "predict": predict}
        return paths.get(method)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        raw = self._raw(X)
        return raw[:, 0] if self.per_stage == 1 else raw

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        raw = self._raw(X)
        if self.per_stage > 1:
            return softmax(raw)
        # scipy's expit (the C library's exp), as scikit-learn's binomial and exponential losses
        return binary_proba(expit(2.0 * raw[:, 0] if self.loss == "exponential" else raw[:, 0], exp=libm_exp))

    def predict(self, X: np.ndarray) -> np.ndarray:
        assert self.classes is not None
        raw = self._raw(X)
        if self.per_stage == 1:
            return self.classes[(raw[:, 0] >= 0).astype(np.int64)]
        return self.classes[np.argmax(raw, axis=1)]


# -- isolation forest -------------------------------------------------------------------------------

def average_path_length(n: np.ndarray) -> np.ndarray:
    """scikit-learn's ``_average_path_length``: c(n) of an unsuccessful search in a binary search tree."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros(n.shape)
    big = n > 2
    out[n == 2] = 1.0
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


@register("isolation_forest")
class IsolationForest(Estimator):
    """Score = 2 ** -(mean path length / c(max_samples)); each tree's ``value`` holds, per node,
    ``depth + c(n_node_samples) - 1`` as scikit-learn adds it for the leaf a row reaches."""

    offset = -0.5
    forest: CompiledForest
    denominator = 1.0

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> Estimator:
        self = cls()
        self.n_features_in = ctx.integer(node, "n_features_in", minimum=1)
        self.offset = ctx.number(node, "offset")
        max_samples = ctx.integer(node, "max_samples", minimum=1)
        tree_nodes = load_trees(node, ctx)
        trees: list[Tree] = []
        values: list[np.ndarray] = []
        for i, tnode in enumerate(tree_nodes):
            tree, value = load_tree(tnode, ctx.child("trees", i), self.n_features_in, ())
            trees.append(tree)
            values.append(value.reshape(-1, 1))
        self.forest = compile_forest(trees, values, self.n_features_in, float32=True)
        self.denominator = len(trees) * float(average_path_length(np.array([max_samples]))[0])
        return self

    def row_cost(self) -> RowCost:
        return self.forest.row_cost(self.n_features_in, 1)

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        Xf = check_matrix(X, self.n_features_in, self.type_name)
        depths = self.forest.sums(Xf)[:, 0, 0]
        ratio = depths / self.denominator if self.denominator != 0 else np.ones_like(depths)
        return -(2 ** (-ratio))

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self.score_samples(X) - self.offset

    def predict(self, X: np.ndarray) -> np.ndarray:
        decision = self.decision_function(X)
        out = np.ones(decision.shape, dtype=np.int64)
        out[decision < 0] = -1
        return out
