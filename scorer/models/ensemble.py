"""scikit-learn's meta-estimators over other estimator nodes: voting, stacking and bagging.

Children are any supported estimator nodes (pipelines included), loaded with ``load_estimator``. The
classifiers' children were fitted by scikit-learn on the class *indices* 0..k-1 (its LabelEncoder /
``np.unique(return_inverse=True)``), so their ``classes`` are those integers and the meta node maps
indices back to its own ``classes``. The arithmetic follows sklearn/ensemble/_voting.py, _stacking.py
and _bagging.py operation for operation (see docs/format/ensemble.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._base import Estimator, LoadContext, MethodNotSupported, as_float, load_estimator, register
from .._links import softmax
from .linear import check_width, finite_matrix

STACK_METHODS = ("predict", "predict_proba", "decision_function")


def _members(node: dict[str, Any], ctx: LoadContext, key: str = "estimators") -> list[Estimator]:
    """The child estimators of ``node[key]``: a non-empty list of ``{name?, estimator, ...}`` objects."""
    raw = ctx.get(node, key, list)
    if not raw:
        raise ctx.fail("at least one estimator is needed", key)
    out = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or "estimator" not in entry:
            raise ctx.fail("expected an object with an 'estimator'", key, i)
        out.append(load_estimator(entry["estimator"], ctx.nested(key, i, "estimator")))
    return out


def _index_classes(est: Estimator, k: int, ctx: LoadContext, *parts: str | int, subset: bool = False) -> None:
    """A child classifier must have been fitted on class indices (all of 0..k-1, or a subset for bagging)."""
    cl = est.classes
    if cl is None or cl.dtype.kind not in "iu":
        raise ctx.fail("a child classifier must have integer classes (scikit-learn's class indices)", *parts)
    ok = (cl.size > 0 and int(cl.min()) >= 0 and int(cl.max()) < k and bool(np.all(np.diff(cl) > 0))
          if subset else cl.tolist() == list(range(k)))
    if not ok:
        raise ctx.fail(f"the child's classes must be {'a subset of ' if subset else ''}0..{k - 1}", *parts)


def _weights(node: dict[str, Any], ctx: LoadContext, n: int) -> np.ndarray | None:
    if node.get("weights") is None:
        return None
    w = ctx.array(node, "weights", ndim=1, shape=(n,))
    if not np.all(w >= 0) or not w.sum() > 0:
        raise ctx.fail("weights must be >= 0 and not all 0", "weights")
    return w


class _Meta(Estimator):
    estimators: list[Estimator]

    def _width(self, node: dict[str, Any], ctx: LoadContext) -> None:
        self.n_features_in = ctx.integer(node, "n_features_in", minimum=1)
        for i, est in enumerate(self.estimators):
            bagged = isinstance(self, Bagging)  # bagging children see column subsets
            if est.n_features_in and est.n_features_in != self.n_features_in and not bagged:
                raise ctx.fail(f"expects {est.n_features_in} columns, the ensemble has {self.n_features_in}",
                               "estimators", i, "estimator", "n_features_in")

    def _check(self, X: np.ndarray) -> None:
        check_width(X, self.n_features_in, self.type_name)

    def _head(self, node: dict[str, Any], ctx: LoadContext, classifier_type: str) -> bool:
        """``classes`` (for ``classifier_type``), the children and the width; True for a classifier."""
        classifier = node.get("type") == classifier_type
        self.classes = ctx.labels(node, "classes") if classifier else None
        self.estimators = _members(node, ctx)
        self._width(node, ctx)
        return classifier


@register("voting_classifier")
class VotingClassifier(_Meta):
    """``voting`` 'soft': np.average of the children's probabilities with ``weights``; 'hard': the
    weighted bincount of the children's predicted class indices. ``transform`` as scikit-learn's with
    ``flatten_transform=True``."""

    soft: bool
    weights: np.ndarray | None

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> VotingClassifier:
        self = cls()
        self.classes = ctx.labels(node, "classes")
        self.soft = ctx.string(node, "voting", choices=("hard", "soft")) == "soft"
        self.estimators = _members(node, ctx)
        self._width(node, ctx)
        self.weights = _weights(node, ctx, len(self.estimators))
        for i, est in enumerate(self.estimators):
            _index_classes(est, len(self.classes), ctx, "estimators", i, "estimator", "classes")
            need = "predict_proba" if self.soft else "predict"
            if not est.supports(need):
                raise ctx.fail(f"{est.type_name} has no {need}", "estimators", i, "estimator", "type")
        return self

    def supports(self, method: str) -> bool:
        return method in ("predict", "transform") or (method == "predict_proba" and self.soft)

    def _probas(self, X: np.ndarray) -> np.ndarray:
        self._check(X)
        return np.asarray([e.predict_proba(X) for e in self.estimators])

    def _votes(self, X: np.ndarray) -> np.ndarray:
        self._check(X)
        return np.asarray([e.predict(X) for e in self.estimators]).T

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if not self.soft:
            raise MethodNotSupported("voting_classifier with hard voting has no predict_proba")
        return np.average(self._probas(X), axis=0, weights=self.weights)

    def predict(self, X: np.ndarray) -> np.ndarray:
        assert self.classes is not None
        if self.soft:
            return self.classes[np.argmax(self.predict_proba(X), axis=1)]
        votes = self._votes(X).astype(np.intp)
        if not votes.shape[0]:
            return self.classes[:0]
        w = self.weights
        maj = np.apply_along_axis(lambda x: np.argmax(np.bincount(x, weights=w)), axis=1, arr=votes)
        return self.classes[maj]

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.hstack(list(self._probas(X))) if self.soft else self._votes(X)


@register("voting_regressor")
class VotingRegressor(_Meta):
    """np.average of the children's predictions with ``weights``; ``transform``: the predictions."""

    weights: np.ndarray | None

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> VotingRegressor:
        self = cls()
        self.estimators = _members(node, ctx)
        self._width(node, ctx)
        self.weights = _weights(node, ctx, len(self.estimators))
        for i, est in enumerate(self.estimators):
            if not est.supports("predict"):
                raise ctx.fail(f"{est.type_name} has no predict", "estimators", i, "estimator", "type")
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        self._check(X)
        return np.asarray([e.predict(X) for e in self.estimators]).T

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.average(self.transform(X), axis=1, weights=self.weights)


@register("stacking_classifier", "stacking_regressor")
class Stacking(_Meta):
    """``transform``: each child's ``method`` output side by side (1-D outputs as one column; for two
    classes, predict_proba without its first column), then the input itself when ``passthrough``. The
    final estimator scores that matrix; a classifier maps its class indices back to ``classes``."""

    methods: list[str]
    final: Estimator
    passthrough: bool

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> Stacking:
        self = cls()
        classifier = self._head(node, ctx, "stacking_classifier")
        self.methods = []
        for i, (entry, est) in enumerate(zip(node["estimators"], self.estimators, strict=True)):
            m = ctx.child("estimators", i).string(entry, "method", choices=STACK_METHODS if classifier
                                                  else ("predict",))
            if not est.supports(m):
                raise ctx.fail(f"{est.type_name} has no {m}", "estimators", i, "method")
            if classifier and self.classes is not None:
                _index_classes(est, len(self.classes), ctx, "estimators", i, "estimator", "classes")
            self.methods.append(m)
        self.passthrough = ctx.boolean(node, "passthrough")
        if "final_estimator" not in node:
            raise ctx.fail("required field is missing", "final_estimator")
        self.final = load_estimator(node["final_estimator"], ctx.nested("final_estimator"))
        if classifier and self.classes is not None:
            _index_classes(self.final, len(self.classes), ctx, "final_estimator", "classes")
        return self

    def supports(self, method: str) -> bool:
        return method in ("predict", "transform") or (self.classes is not None
                                                      and self.final.supports(method))

    def transform(self, X: np.ndarray) -> np.ndarray:
        self._check(X)
        binary = self.classes is not None and len(self.classes) == 2
        meta = []
        for est, m in zip(self.estimators, self.methods, strict=True):
            pred = np.asarray(getattr(est, m)(X))
            if pred.ndim == 1:
                meta.append(pred.reshape(-1, 1))
            elif m == "predict_proba" and binary:
                meta.append(pred[:, 1:])
            else:
                meta.append(pred)
        if self.passthrough:
            meta.append(as_float(X, self.type_name))
        return np.hstack(meta)

    def predict(self, X: np.ndarray) -> np.ndarray:
        pred = self.final.predict(self.transform(X))
        if self.classes is None:
            return pred
        return self.classes[np.asarray(pred).astype(np.intp)]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if self.classes is None:
            raise MethodNotSupported(f"{self.type_name} has no predict_proba")
        return self.final.predict_proba(self.transform(X))

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        if self.classes is None:
            raise MethodNotSupported(f"{self.type_name} has no decision_function")
        return self.final.decision_function(self.transform(X))


@register("bagging_classifier", "bagging_regressor")
class Bagging(_Meta):
    """Each child sees the input columns ``features``. Regressor: the children's predictions summed in
    order, divided by their number. Classifier: probabilities summed into the columns of each child's
    classes (a vote of 1 per row for a child without predict_proba), divided by the number of children;
    ``predict`` is their argmax; ``decision_function`` the mean of the children's."""

    features: list[np.ndarray]

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> Bagging:
        self = cls()
        self._head(node, ctx, "bagging_classifier")
        self.features = []
        for i, (entry, est) in enumerate(zip(node["estimators"], self.estimators, strict=True)):
            f = ctx.child("estimators", i).array(entry, "features", "int64", ndim=1)
            if f.size == 0 or f.min() < 0 or f.max() >= self.n_features_in:
                raise ctx.fail(f"feature indices must be in [0, {self.n_features_in})", "estimators", i,
                               "features")
            if est.n_features_in and est.n_features_in != f.size:
                raise ctx.fail(f"selects {f.size} columns, the estimator expects {est.n_features_in}",
                               "estimators", i, "features")
            if self.classes is not None:
                _index_classes(est, len(self.classes), ctx, "estimators", i, "estimator", "classes",
                               subset=True)
            elif not est.supports("predict"):
                raise ctx.fail(f"{est.type_name} has no predict", "estimators", i, "estimator", "type")
            self.features.append(f.astype(np.intp))
        return self

    def supports(self, method: str) -> bool:
        if self.classes is None:
            return method == "predict"
        if method == "decision_function":
            return all(e.supports(method) for e in self.estimators)
        return method in ("predict", "predict_proba")

    def _parts(self, X: np.ndarray) -> list[tuple[Estimator, np.ndarray]]:
        self._check(X)
        return [(e, X[:, f]) for e, f in zip(self.estimators, self.features, strict=True)]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if self.classes is None:
            raise MethodNotSupported(f"{self.type_name} has no predict_proba")
        k = len(self.classes)
        proba = np.zeros((X.shape[0], k))
        for est, sub in self._parts(X):
            assert est.classes is not None
            if est.supports("predict_proba"):
                p = est.predict_proba(sub)
                if k == len(est.classes):
                    proba += p
                else:
                    proba[:, est.classes] += p[:, range(len(est.classes))]
            else:
                pred = np.asarray(est.predict(sub)).astype(np.intp)
                for i in range(X.shape[0]):
                    proba[i, pred[i]] += 1
        return proba / len(self.estimators)  # scikit-learn: sum(per-job sums) / n; one job

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.classes is None:
            y: Any = sum(est.predict(sub) for est, sub in self._parts(X))
            return y / len(self.estimators)
        return self.classes.take(np.argmax(self.predict_proba(X), axis=1), axis=0)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        if not self.supports("decision_function"):
            raise MethodNotSupported(f"{self.type_name} has no decision_function")
        d: Any = sum(est.decision_function(sub) for est, sub in self._parts(X))
        return d / len(self.estimators)



@register("ada_boost_classifier", "ada_boost_regressor")
class AdaBoost(_Meta):
    """SAMME (classifier): ``decision_function`` is the sum over children of ``w`` where the child predicts
    the class and ``-w / (k - 1)`` elsewhere, divided by the sum of ``estimator_weights``. AdaBoost.R2
    (regressor): the weighted median of the children's predictions. Children predict labels themselves."""

    weights: np.ndarray

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> AdaBoost:
        self = cls()
        classifier = self._head(node, ctx, "ada_boost_classifier")
        w = ctx.array(node, "estimator_weights", ndim=1)
        if w.size < len(self.estimators):
            raise ctx.fail(f"expected at least {len(self.estimators)} weights", "estimator_weights")
        if classifier and not w.sum() > 0:
            raise ctx.fail("weights must not sum to 0", "estimator_weights")
        self.weights = w
        for i, est in enumerate(self.estimators):
            if not est.supports("predict"):
                raise ctx.fail(f"{est.type_name} has no predict", "estimators", i, "estimator", "type")
            if classifier and (est.classes is None or est.classes.tolist() != self.classes.tolist()):  # type: ignore[union-attr]
                raise ctx.fail("a child's classes must be the ensemble's", "estimators", i, "estimator",
                               "classes")
        return self

    def supports(self, method: str) -> bool:
        return method == "predict" or (self.classes is not None and method in ("predict_proba",
                                                                               "decision_function"))

    def _check(self, X: np.ndarray) -> None:
        if X.dtype.kind == "O":  # string columns reach the children (a pipeline) as in scikit-learn
            check_width(X, self.n_features_in, self.type_name)
        else:
            finite_matrix(X, self.n_features_in, self.type_name)  # AdaBoost refuses NaN, unlike its children

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        if self.classes is None:
            raise MethodNotSupported(f"{self.type_name} has no decision_function")
        self._check(X)
        k = len(self.classes)
        classes = self.classes[:, np.newaxis]
        pred: Any = sum(np.where((est.predict(X) == classes).T, w, -1 / (k - 1) * w)
                        for est, w in zip(self.estimators, self.weights, strict=False))
        pred /= self.weights.sum()
        if k == 2:
            pred[:, 0] *= -1
            return pred.sum(axis=1)
        return pred

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if self.classes is None:
            raise MethodNotSupported(f"{self.type_name} has no predict_proba")
        k = len(self.classes)
        decision = self.decision_function(X)
        if k == 2:
            decision = np.vstack([-decision, decision]).T / 2
        else:
            decision /= k - 1
        return softmax(decision, copy=False)

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.classes is not None:
            pred = self.decision_function(X)
            if len(self.classes) == 2:
                return self.classes.take(pred > 0, axis=0)
            return self.classes.take(np.argmax(pred, axis=1), axis=0)
        self._check(X)
        predictions = np.array([est.predict(X) for est in self.estimators]).T
        sorted_idx = np.argsort(predictions, axis=1)
        weight_cdf = np.cumsum(self.weights[sorted_idx], axis=1)
        median_or_above = weight_cdf >= 0.5 * weight_cdf[:, -1][:, np.newaxis]
        median_idx = median_or_above.argmax(axis=1)
        rows = np.arange(X.shape[0])
        return predictions[rows, sorted_idx[rows, median_idx]]
