"""Converters for GaussianNB, MultinomialNB, BernoulliNB and ComplementNB (see docs/format/naive_bayes.md)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.naive_bayes import BernoulliNB, ComplementNB, GaussianNB, MultinomialNB

from . import ExportContext, converter


def _classes(est: Any) -> list[Any]:
    return [c.item() if isinstance(c, np.generic) else c for c in est.classes_.tolist()]


def _f64(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


_ALPHA = "a smoothing alpha of 0 leaves a count of 0 in a log; refit with alpha > 0"


@converter(GaussianNB)
def convert_gaussian_nb(est: Any, ctx: ExportContext) -> dict[str, Any]:
    if np.asarray(est.theta_).dtype != np.float64:
        # Fitted on float32 data (e.g. the final estimator of a stacking over XGBoost models): scikit-learn
        # then scores with float32 means and variances, which the format does not model.
        raise ExportContext.unsupported(est, "theta_.dtype", str(np.asarray(est.theta_).dtype), ["float64"])
    ctx.refuse_unless(est.var_ > 0, est, "var_", est.var_,
                      "variances must be > 0: var_smoothing=0 with a feature constant within a class")
    return {"type": "gaussian_nb", "n_features_in": int(est.n_features_in_), "classes": _classes(est),
            "class_prior": ctx.array(_f64(est.class_prior_)), "theta": ctx.array(_f64(est.theta_)),
            "var": ctx.array(_f64(est.var_))}


def _discrete(est: Any, ctx: ExportContext, type_name: str) -> dict[str, Any]:
    """The log-probability fields; ``feature_log_prob_`` must be finite (sklearn's ``0 * -inf`` is NaN)."""
    flp = _f64(est.feature_log_prob_)
    why = (_ALPHA if type_name != "complement_nb" or not est.norm or flp.shape[1] > 1
           else "norm=True with a single feature divides 0 by 0; use norm=False")
    ctx.refuse_unless(np.isfinite(flp), est, "feature_log_prob_", flp,
                      f"{why}; scikit-learn's own predictions are NaN for such rows")
    return {"type": type_name, "n_features_in": int(est.n_features_in_), "classes": _classes(est),
            "class_log_prior": ctx.array(_f64(est.class_log_prior_)),
            "feature_log_prob": ctx.array(_f64(est.feature_log_prob_))}


@converter(MultinomialNB)
def convert_multinomial_nb(est: Any, ctx: ExportContext) -> dict[str, Any]:
    return _discrete(est, ctx, "multinomial_nb")


@converter(ComplementNB)
def convert_complement_nb(est: Any, ctx: ExportContext) -> dict[str, Any]:
    return _discrete(est, ctx, "complement_nb")


@converter(BernoulliNB)
def convert_bernoulli_nb(est: Any, ctx: ExportContext) -> dict[str, Any]:
    node = _discrete(est, ctx, "bernoulli_nb")
    ctx.refuse_unless(est.feature_log_prob_ < 0, est, "feature_log_prob_", est.feature_log_prob_,
                      f"log probabilities must be < 0, log(1 - p) is -inf for p = 1: {_ALPHA}")
    node["binarize"] = None if est.binarize is None else float(est.binarize)
    return node
