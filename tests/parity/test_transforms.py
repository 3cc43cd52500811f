"""Parity of the transforms family (docs/format/transforms.md) beyond the case table: every whitelisted
function, every binning strategy and encoding, TargetEncoder for each target type, NaN inside Pipelines
and ColumnTransformers, pandas-output pipelines, and the refusals."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from harness import assert_parity, needs_sklearn
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_selection import SelectFromModel, SelectKBest, VarianceThreshold
from sklearn.linear_model import Lasso, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    KBinsDiscretizer,
    PowerTransformer,
    QuantileTransformer,
    SplineTransformer,
    StandardScaler,
    TargetEncoder,
)

import scorer
from modelsync.export import UnsupportedEstimator
from scorer import _numpy_funcs

RNG = np.random.RandomState(0)
X = RNG.normal(size=(200, 4)) * [1.0, 3.0, 0.5, 2.0] + [0.0, 1.0, 5.0, 0.0]
X_POS = np.abs(X) + 0.1
X_NAN = X.copy()
X_NAN[RNG.rand(*X.shape) < 0.1] = np.nan
Y_BIN = (X[:, 0] + RNG.normal(size=200) > 0).astype(int)
Y_REG = X @ [1.0, 2.0, 3.0, 4.0]


def _check(roundtrip: Any, est: Any, X_fit: Any, X_test: Any, y: Any = None) -> dict[str, Any]:
    est.fit(X_fit) if y is None else est.fit(X_fit, y)
    doc, model = roundtrip(est, X_fit[:20])
    assert_parity(est, X_test, model)
    return doc


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's log of a negative number: NaN, as scored
@pytest.mark.parametrize("name", [*_numpy_funcs.FUNCS, None])
def test_every_whitelisted_function(roundtrip: Any, name: str | None) -> None:
    func = None if name is None else _numpy_funcs.FUNCS[name]
    kw = {"a_min": -0.5, "a_max": None} if name == "clip" else None
    data = X_NAN * 0.1 if name in ("exp", "expm1") else X_NAN
    doc = _check(roundtrip, FunctionTransformer(func, kw_args=kw), data, data[:60])
    assert doc["estimator"]["func"] == name


def test_function_transformer_refusals(roundtrip: Any) -> None:
    with pytest.raises(UnsupportedEstimator, match="supported func: 'log', 'log1p'"):
        roundtrip(FunctionTransformer(np.tanh).fit(X), X[:5])
    with pytest.raises(UnsupportedEstimator, match="kw_args"):
        roundtrip(FunctionTransformer(np.log1p, kw_args={"out": None}).fit(X_POS), X_POS[:5])
    with pytest.raises(UnsupportedEstimator, match="a_min or a_max"):
        roundtrip(FunctionTransformer(np.clip, kw_args={"a_min": None, "a_max": None}).fit(X), X[:5])
    with pytest.raises(UnsupportedEstimator):
        roundtrip(FunctionTransformer(lambda a: a + 1).fit(X), X[:5])


def test_validated_function_transformer_refuses_nan(roundtrip: Any) -> None:
    est = FunctionTransformer(np.sqrt, validate=True).fit(X_POS)
    _, model = roundtrip(est, X_POS[:10])
    with pytest.raises(ValueError):
        est.transform(X_NAN)
    with pytest.raises(scorer.InvalidInput):
        model.transform(X_NAN)


@pytest.mark.parametrize("est, y", [(VarianceThreshold(1.0), None), (SelectKBest(k=2), Y_BIN),
                                    (SelectFromModel(Lasso(alpha=0.5)), Y_REG)])
def test_selectors(roundtrip: Any, est: Any, y: Any) -> None:
    doc = _check(roundtrip, est, X, X[:50], y)
    assert doc["estimator"]["type"] == "select_columns"


@pytest.mark.parametrize("method", ["yeo-johnson", "box-cox"])
@pytest.mark.parametrize("standardize", [True, False])
def test_power_transformer(roundtrip: Any, method: str, standardize: bool) -> None:
    data = X_POS if method == "box-cox" else X_NAN
    _check(roundtrip, PowerTransformer(method=method, standardize=standardize), data, data[:60] * 1.5)


def test_box_cox_refuses_non_positive_like_sklearn(roundtrip: Any) -> None:
    est = PowerTransformer(method="box-cox").fit(X_POS)
    _, model = roundtrip(est, X_POS[:10])
    bad = X_POS[:3].copy()
    bad[1, 2] = 0.0
    with pytest.raises(ValueError):
        est.transform(bad)
    with pytest.raises(scorer.InvalidInput, match="row 1"):
        model.transform(bad)


@pytest.mark.parametrize("strategy", ["uniform", "quantile", "kmeans"])
@pytest.mark.parametrize("encode", ["ordinal", "onehot", "onehot-dense"])
def test_kbins_every_strategy_and_encoding(roundtrip: Any, strategy: str, encode: str) -> None:
    outside = np.r_[X[:40] * 1.3, X[:5] * 100, np.round(X[:10], 0)]
    _check(roundtrip, KBinsDiscretizer(n_bins=4, strategy=strategy, encode=encode), X, outside)


@pytest.mark.parametrize("output", ["uniform", "normal"])
def test_quantile_transformer_repeated_quantiles(roundtrip: Any, output: str) -> None:
    ties = np.round(X_NAN, 0)
    test = np.r_[ties[:50], ties[:5] + 0.5, ties[:5] * 100, X_NAN[:20]]
    _check(roundtrip, QuantileTransformer(n_quantiles=30, output_distribution=output), ties, test)
    _check(roundtrip, QuantileTransformer(n_quantiles=100, output_distribution=output), X_NAN, test)


def test_ndtri_is_scipys() -> None:
    from scipy.special import ndtri as scipy_ndtri

    from scorer.models.transforms import ndtri

    y = np.r_[np.linspace(0, 1, 20001), np.logspace(-300, -1, 500), 1 - np.logspace(-16, -1, 500), np.nan]
    np.testing.assert_allclose(ndtri(y), scipy_ndtri(y), rtol=1e-15, atol=0)


CATS = pd.DataFrame({"a": RNG.choice(["u", "v", "w", None], 200), "b": RNG.choice(["p", "q"], 200)})
CATS_TEST = pd.concat([CATS.iloc[:30], pd.DataFrame({"a": ["zz", None], "b": ["q", "new"]})],
                      ignore_index=True)


@pytest.mark.parametrize("y, kind", [(Y_BIN, "ordinal_encoder"), (Y_REG, "ordinal_encoder"),
                                     (np.digitize(X[:, 1], [0, 2]), "column_transformer")])
def test_target_encoder_transform_of_new_data(roundtrip: Any, y: Any, kind: str) -> None:
    doc = _check(roundtrip, TargetEncoder(), CATS, CATS_TEST, y)
    assert doc["estimator"]["type"] == kind


def test_in_pipelines_and_column_transformers_with_nan(roundtrip: Any) -> None:
    frame = pd.DataFrame(X_NAN, columns=["a", "b", "c", "d"]).assign(cat=CATS["a"])
    ct = ColumnTransformer([
        ("log", FunctionTransformer(np.log1p), ["c"]),
        ("power", PowerTransformer(), ["a", "b"]),
        ("quant", QuantileTransformer(n_quantiles=20), ["d"]),
        ("target", TargetEncoder(), ["cat"]),
    ])
    model = make_pipeline(ct, VarianceThreshold(0.01), HistGradientBoostingClassifier(max_iter=5,
                                                                                      random_state=0))
    model.fit(frame, Y_BIN)
    _, loaded = roundtrip(model, frame.iloc[:20])
    assert_parity(model, frame.iloc[:60], loaded)


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")  # a constant bin
def test_set_output_pandas_pipeline(roundtrip: Any) -> None:
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    model = make_pipeline(StandardScaler(), KBinsDiscretizer(n_bins=3, encode="onehot-dense"),
                          SelectKBest(k=6), Ridge()).set_output(transform="pandas")
    model.fit(frame, Y_REG)
    _, loaded = roundtrip(model, frame.iloc[:20])
    assert_parity(model, frame.iloc[:50], loaded)
    transformer = make_pipeline(PowerTransformer(), FunctionTransformer(np.square))
    transformer.set_output(transform="pandas").fit(frame)
    _, loaded = roundtrip(transformer, frame.iloc[:20])
    assert_parity(transformer, frame.iloc[:50], loaded)
    clf = make_pipeline(SelectKBest(k=3), LogisticRegression()).set_output(transform="pandas")
    clf.fit(frame, Y_BIN)
    _, loaded = roundtrip(clf, frame.iloc[:20])
    assert_parity(clf, frame.iloc[:50], loaded)


@pytest.mark.parametrize("extrapolation", ["constant", "linear", "continue", "periodic", "error"])
@pytest.mark.parametrize("degree", [1, 2, 3])
@pytest.mark.parametrize("knots", ["uniform", "quantile"])
def test_spline_transformer(roundtrip: Any, extrapolation: str, degree: int, knots: str) -> None:
    if extrapolation == "linear" and degree == 1:
        with pytest.raises(UnsupportedEstimator, match="column order"):
            roundtrip(SplineTransformer(degree=1, extrapolation="linear").fit(X), X[:5])
        return
    test = X[:40] if extrapolation == "error" else np.r_[X[:40], X[:10] * 3]
    for bias in (True, False):
        _check(roundtrip, SplineTransformer(n_knots=5, degree=degree, knots=knots, include_bias=bias,
                                            extrapolation=extrapolation), X, test)


@needs_sklearn((1, 9), "SplineTransformer(handle_missing=)")
def test_spline_transformer_missing_zeros_and_errors(roundtrip: Any) -> None:
    est = SplineTransformer(n_knots=4, extrapolation="continue", handle_missing="zeros")
    _check(roundtrip, est, X_NAN, X_NAN[:60])
    strict = SplineTransformer(n_knots=4, extrapolation="error").fit(X)
    _, model = roundtrip(strict, X[:10])
    beyond = X[:3] * 10
    with pytest.raises(ValueError):
        strict.transform(beyond)
    with pytest.raises(scorer.InvalidInput, match="beyond the limits"):
        model.transform(beyond)
