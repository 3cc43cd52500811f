"""Parity of LDA / QDA beyond the case table: every LDA solver with a transform, n_components, pipelines,
NaN refused like scikit-learn, lsqr and rank-deficient QDA refused at export."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from harness import assert_parity
from sklearn.datasets import load_iris
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis, QuadraticDiscriminantAnalysis
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PowerTransformer

import scorer
from modelsync.export import UnsupportedEstimator

X, Y = load_iris(return_X_y=True)


@pytest.mark.parametrize("est", [LinearDiscriminantAnalysis(n_components=1),
                                 LinearDiscriminantAnalysis(solver="eigen"),
                                 make_pipeline(PowerTransformer(), LinearDiscriminantAnalysis()),
                                 make_pipeline(PowerTransformer(), QuadraticDiscriminantAnalysis())])
def test_variants(roundtrip: Any, est: Any) -> None:
    est.fit(X, Y)
    _, model = roundtrip(est, X[:20])
    assert_parity(est, X, model)


def test_nan_is_an_input_error(roundtrip: Any) -> None:
    bad = X[:3].copy()
    bad[2, 1] = np.nan
    for est in (LinearDiscriminantAnalysis(), QuadraticDiscriminantAnalysis()):
        est.fit(X, Y)
        _, model = roundtrip(est, X[:10])
        with pytest.raises(ValueError):
            est.predict(bad)
        with pytest.raises(scorer.InvalidInput, match="row 2"):
            model.predict(bad)


def test_refusals(roundtrip: Any) -> None:
    with pytest.raises(UnsupportedEstimator, match="lsqr"):
        roundtrip(LinearDiscriminantAnalysis(solver="lsqr").fit(X, Y), X[:5])
