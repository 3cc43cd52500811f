"""Naive Bayes: ``gaussian_nb``, ``multinomial_nb``, ``bernoulli_nb``, ``complement_nb``.

Each computes scikit-learn's joint log likelihood (``_joint_log_likelihood`` in
``sklearn/naive_bayes.py``) with the same operations in the same order; ``predict`` is its argmax and
``predict_proba`` is ``exp(jll - logsumexp(jll))`` with scikit-learn's own logsumexp
(``sklearn.utils._array_api._logsumexp``, :func:`scorer._links.log_softmax`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._base import Estimator, LoadContext, finite_matrix, register
from .._links import log_softmax, numpy_exp


class _NaiveBayes(Estimator):
    """predict / predict_proba from a joint log likelihood (n_samples, n_classes)."""

    def _jll(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(self, X: np.ndarray) -> np.ndarray:
        assert self.classes is not None
        return self.classes[np.argmax(self._jll(X), axis=1)]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return numpy_exp(log_softmax(self._jll(X)))

    def predict_log_proba(self, X: np.ndarray) -> np.ndarray:
        return log_softmax(self._jll(X))

    def _classes(self, node: dict[str, Any], ctx: LoadContext) -> int:
        self.n_features_in = ctx.integer(node, "n_features_in", minimum=1)
        self.classes = ctx.labels(node, "classes")
        return len(self.classes)


@register("gaussian_nb")
class GaussianNB(_NaiveBayes):
    """sklearn.naive_bayes.GaussianNB; ``var`` already includes scikit-learn's ``epsilon_``."""

    theta: np.ndarray
    var: np.ndarray
    log_prior: list[Any]
    log_norm: list[Any]

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> GaussianNB:
        self = cls()
        k = self._classes(node, ctx)
        d = self.n_features_in
        self.theta = ctx.array(node, "theta", ndim=2, shape=(k, d))
        self.var = ctx.array(node, "var", ndim=2, shape=(k, d))
        prior = ctx.array(node, "class_prior", ndim=1, shape=(k,))
        bad = np.argwhere(~(self.var > 0))
        if bad.size:
            raise ctx.fail("variances must be > 0", "var", int(bad[0][0]), int(bad[0][1]))
        neg = np.flatnonzero(prior < 0)
        if neg.size:
            raise ctx.fail("class priors must be >= 0", "class_prior", int(neg[0]))
        # The per-class constants, computed exactly as scikit-learn computes them on each call.
        with np.errstate(divide="ignore"):
            self.log_prior = [np.log(prior[i]) for i in range(k)]
        self.log_norm = [-0.5 * np.sum(np.log(2.0 * np.pi * self.var[i, :])) for i in range(k)]
        return self

    def _jll(self, X: np.ndarray) -> np.ndarray:
        Xf = finite_matrix(X, self.n_features_in, self.type_name)
        out = []
        for i in range(self.theta.shape[0]):
            n_ij = self.log_norm[i] - 0.5 * np.sum(((Xf - self.theta[i, :]) ** 2) / (self.var[i, :]), axis=1)
            out.append(self.log_prior[i] + n_ij)
        return np.stack(out).T


class _Discrete(_NaiveBayes):
    """Fields shared by the discrete models: ``feature_log_prob`` (classes x features), class log priors."""

    feature_log_prob: np.ndarray
    class_log_prior: np.ndarray

    def _load_discrete(self, node: dict[str, Any], ctx: LoadContext) -> None:
        k = self._classes(node, ctx)
        self.feature_log_prob = ctx.array(node, "feature_log_prob", ndim=2, shape=(k, self.n_features_in))
        self.class_log_prior = ctx.array(node, "class_log_prior", ndim=1, shape=(k,), finite=False)
        bad = np.flatnonzero(np.isnan(self.class_log_prior) | (self.class_log_prior == np.inf))
        if bad.size:
            raise ctx.fail("must be a finite number or -inf (a class with prior 0)", "class_log_prior",
                           int(bad[0]))


@register("multinomial_nb")
class MultinomialNB(_Discrete):
    """sklearn.naive_bayes.MultinomialNB: ``X @ feature_log_prob.T + class_log_prior``."""

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> MultinomialNB:
        self = cls()
        self._load_discrete(node, ctx)
        return self

    def _jll(self, X: np.ndarray) -> np.ndarray:
        Xf = finite_matrix(X, self.n_features_in, self.type_name)
        return Xf @ self.feature_log_prob.T + self.class_log_prior


@register("complement_nb")
class ComplementNB(_Discrete):
    """sklearn.naive_bayes.ComplementNB: ``X @ feature_log_prob.T`` (+ the prior with a single class)."""

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> ComplementNB:
        self = cls()
        self._load_discrete(node, ctx)
        return self

    def _jll(self, X: np.ndarray) -> np.ndarray:
        Xf = finite_matrix(X, self.n_features_in, self.type_name)
        jll = Xf @ self.feature_log_prob.T
        if len(self.classes) == 1:  # type: ignore[arg-type]
            jll += self.class_log_prior
        return jll


@register("bernoulli_nb")
class BernoulliNB(_Discrete):
    """sklearn.naive_bayes.BernoulliNB, with the optional ``binarize`` threshold (``x > t`` -> 1 else 0)."""

    binarize: float | None
    delta: np.ndarray
    bias: np.ndarray

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> BernoulliNB:
        self = cls()
        self._load_discrete(node, ctx)
        if "binarize" not in node:
            raise ctx.fail("required field is missing (a number, or null for no binarization)", "binarize")
        self.binarize = None if node["binarize"] is None else ctx.number(node, "binarize")
        bad = np.argwhere(~(self.feature_log_prob < 0))
        if bad.size:
            raise ctx.fail("log probabilities must be < 0", "feature_log_prob", int(bad[0][0]),
                           int(bad[0][1]))
        neg_prob = np.log(1 - np.exp(self.feature_log_prob))
        self.delta = self.feature_log_prob - neg_prob  # used transposed, as scikit-learn does
        self.bias = self.class_log_prior + neg_prob.sum(axis=1)
        return self

    def _jll(self, X: np.ndarray) -> np.ndarray:
        Xf = finite_matrix(X, self.n_features_in, self.type_name)
        if self.binarize is not None:
            Xf = (Xf > self.binarize).astype(np.float64)
        jll = Xf @ self.delta.T
        jll += self.bias
        return jll
