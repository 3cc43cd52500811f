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


@converter(GaussianNB)
def convert_gaussian_nb(est: Any, ctx: ExportContext) -> dict[str, Any]:
    return {"type": "gaussian_nb", "n_features_in": int(est.n_features_in_), "classes": _classes(est),
            "class_prior": ctx.array(_f64(est.class_prior_)), "theta": ctx.array(_f64(est.theta_)),
            "var": ctx.array(_f64(est.var_))}


def _discrete(est: Any, ctx: ExportContext, type_name: str) -> dict[str, Any]:
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
    node["binarize"] = None if est.binarize is None else float(est.binarize)
    return node
