"""Linear and quadratic discriminant analysis (see docs/format/discriminant_analysis.md).

LDA is scikit-learn's linear classifier (its predict_proba: expit for two classes, softmax otherwise) plus
a projection ``transform``; QDA scores each class with its own rotated, scaled distance to the class mean.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._base import Estimator, LoadContext, decode_array, register
from .linear import LinearClassifier, finite_matrix, load_feature_names
from .preprocessing import _vector


@register("linear_discriminant_analysis")
class LinearDiscriminantAnalysis(LinearClassifier):
    """``coef`` / ``intercept`` / ``classes`` / ``probability`` as linear classifiers; ``transform`` is
    ``(X - xbar) @ scalings`` (``xbar`` absent for the eigen solver), ``scalings`` already cut to the
    fitted number of components."""

    _PROBA_ALLOWED = {"linear_discriminant_analysis": ("multinomial", "ovr")}
    xbar: np.ndarray | None
    scalings: np.ndarray

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> LinearDiscriminantAnalysis:
        est = super().from_doc(node, ctx)
        assert isinstance(est, LinearDiscriminantAnalysis)
        n = est.n_features_in
        est.xbar = _vector(node, ctx, "xbar", n, required=False)
        est.scalings = ctx.array(node, "scalings", "float64", ndim=2)
        if est.scalings.shape[0] != n:
            raise ctx.fail(f"scalings has {est.scalings.shape[0]} rows but n_features_in is {n}", "scalings")
        return est

    def transform(self, X: np.ndarray) -> np.ndarray:
        Xf = finite_matrix(X, self.n_features_in, self.type_name, self.feature_names)
        if self.xbar is not None:
            Xf = Xf - self.xbar
        out: np.ndarray = Xf @ self.scalings
        return out


@register("quadratic_discriminant_analysis")
class QuadraticDiscriminantAnalysis(Estimator):
    """Class ``i`` scores ``-0.5 * (sum((X - means[i]) @ (rotations[i] * scalings[i] ** -0.5)) ** 2)
    + sum(log(scalings[i]))) + log(priors[i])``; two classes: decision = score1 - score0."""

    feature_names: list[str] | None
    _weights: list[np.ndarray]
    means: np.ndarray
    _u: np.ndarray
    _log_priors: np.ndarray

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> QuadraticDiscriminantAnalysis:
        n = ctx.integer(node, "n_features_in", minimum=1)
        classes = ctx.labels(node, "classes")
        k = len(classes)
        if k < 2 or len(set(classes.tolist())) != k:
            raise ctx.fail("a classifier needs at least two distinct classes", "classes")
        self = cls.__new__(cls)
        self.classes, self.n_features_in, self.type_name = classes, n, node["type"]
        self.feature_names = load_feature_names(node, ctx, n)
        self.means = ctx.array(node, "means", "float64", ndim=2, shape=(k, n))
        priors = ctx.array(node, "priors", "float64", ndim=1, shape=(k,))
        if np.any(priors <= 0):
            raise ctx.fail("priors must be > 0", "priors")
        rots, scals = ctx.get(node, "rotations", list), ctx.get(node, "scalings", list)
        if len(rots) != k or len(scals) != k:
            raise ctx.fail(f"expected {k} rotations and {k} scalings (one per class)", "rotations")
        self._weights, u = [], []
        for i in range(k):
            s = decode_array(scals[i], ctx.child("scalings", i), "float64", ndim=1)
            if np.any(s <= 0):
                raise ctx.fail("scalings must be > 0", "scalings", i)
            r = decode_array(rots[i], ctx.child("rotations", i), "float64", ndim=2, shape=(n, s.size))
            self._weights.append(r * (s ** (-0.5)))
            u.append(np.sum(np.log(s)))
        self._u = np.asarray(u)
        self._log_priors = np.log(priors)
        return self

    def _scores(self, X: np.ndarray) -> np.ndarray:
        Xf = finite_matrix(X, self.n_features_in, self.type_name, self.feature_names)
        norm2 = np.array([np.sum(np.dot(Xf - m, w) ** 2, axis=1) for m, w in zip(self.means, self._weights,
                                                                                  strict=True)]).T
        out: np.ndarray = -0.5 * (norm2 + self._u) + self._log_priors
        return out

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        s = self._scores(X)
        return s[:, 1] - s[:, 0] if s.shape[1] == 2 else s

    def predict(self, X: np.ndarray) -> np.ndarray:
        assert self.classes is not None
        return self.classes.take(self._scores(X).argmax(axis=1))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        s = self._scores(X)
        ll = s - s.max(axis=1)[:, np.newaxis]
        out: np.ndarray = np.exp(ll - np.log(np.exp(ll).sum(axis=1)[:, np.newaxis]))
        return out
