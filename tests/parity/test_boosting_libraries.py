"""XGBoost and LightGBM beyond the case table: native Boosters, every objective, early stopping, Pipelines,
LightGBM's missing types and categorical splits on awkward inputs (docs/format/xgboost.md, lightgbm.md)."""

from __future__ import annotations

import json
from typing import Any

import lightgbm
import numpy as np
import pytest
import xgboost
from cases import XGB_TOL
from harness import EXACT, assert_parity
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import scorer
from modelsync.export import UnsupportedEstimator, export_model

RNG = np.random.RandomState(0)
N = 600
X = RNG.randn(N, 5)
X[:, 3] = RNG.randint(0, 8, N)
X[::9, 1] = np.nan
X[::5, 2] = 0.0
Y3 = (X[:, 0] + (X[:, 3] % 3) + RNG.rand(N)).astype(int) % 3
# awkward rows: NaN, negative, fractional, huge and unseen category codes; zeros; tiny values
XT = X[:120].copy()
XT[:40, 3] = [np.nan, -0.5, -1, 2.7, 300, 7.9, 1e10, -3.2] * 5
XT[40:60, 2] = np.nan
XT[60:70, 0] = np.nan
XT[70:80, 2] = 1e-40


def _load(model: Any) -> Any:
    return scorer.load_model(json.dumps(export_model(model, X[:20], "m")))


class _Native:
    """A Booster seen as an estimator with ``predict`` on arrays (what the harness compares)."""

    def __init__(self, predict: Any) -> None:
        self.predict = predict


def _targets(objective: str) -> np.ndarray:
    if objective in ("count:poisson", "poisson", "tweedie", "reg:tweedie"):
        return RNG.poisson(2, N).astype(float)
    if objective in ("reg:gamma", "gamma"):
        return RNG.gamma(2.0, size=N) + 0.1
    if objective in ("binary:logistic", "binary:logitraw", "binary", "cross_entropy", "reg:logistic"):
        return (Y3 > 0).astype(float)
    if objective.startswith("multi"):
        return Y3.astype(float)
    return X[:, 0] * 3 + RNG.rand(N)


XGB_OBJECTIVES = ["binary:logistic", "reg:logistic", "binary:logitraw", "reg:squarederror",
                  "reg:absoluteerror", "reg:pseudohubererror", "count:poisson", "reg:gamma",
                  "reg:tweedie", "multi:softprob", "multi:softmax"]


@pytest.mark.parametrize("objective", XGB_OBJECTIVES)
def test_xgboost_booster_objectives(objective: str) -> None:
    params: dict[str, Any] = {"objective": objective, "max_depth": 4}
    if objective.startswith("multi"):
        params["num_class"] = 3
    booster = xgboost.train(params, xgboost.DMatrix(X, _targets(objective)), 25)
    model = _load(booster)
    assert model.type_name == "xgboost_booster"
    assert_parity(_Native(lambda A: booster.predict(xgboost.DMatrix(A))), XT, model, XGB_TOL,
                  methods=("predict",))
    margin = booster.predict(xgboost.DMatrix(XT), output_margin=True).reshape(len(XT), -1)
    np.testing.assert_array_equal(model.estimator.margin(XT), margin)  # the float32 sums: bit for bit


@pytest.mark.parametrize("objective, base_score", [("binary:logistic", 0.3), ("binary:logistic", 0.77),
                                                    ("reg:logistic", 0.6), ("count:poisson", 1.1),
                                                    ("reg:tweedie", 1.5125), ("reg:gamma", 2.3)])
def test_base_score_becomes_the_margin_xgboost_computes(objective: str, base_score: float) -> None:
    """ProbToMargin as XGBoost: float32 argument, correctly rounded logf (numpy's float32 log is one ulp
    off for some base scores: the margins, then the exported test vectors, were off)."""
    make = xgboost.XGBClassifier if objective == "binary:logistic" else xgboost.XGBRegressor
    y = (X[:, 0] > 0).astype(int) if "logistic" in objective else np.abs(X[:, 0]) + 0.1
    est = make(n_estimators=20, max_depth=3, objective=objective, base_score=base_score).fit(X, y)
    model = _load(est)  # export re-scores its test vectors at 1e-9: refused the model before
    margin = est.get_booster().predict(xgboost.DMatrix(XT), output_margin=True)
    np.testing.assert_array_equal(model.estimator.margin(XT)[:, 0], margin)
    assert_parity(est, XT, model, XGB_TOL)


@pytest.mark.parametrize("objective", ["binary", "cross_entropy", "regression", "regression_l1", "huber",
                                       "fair", "quantile", "poisson", "gamma", "tweedie", "multiclass"])
def test_lightgbm_booster_objectives(objective: str) -> None:
    params: dict[str, Any] = {"objective": objective, "verbose": -1, "num_leaves": 15}
    if objective == "multiclass":
        params["num_class"] = 3
    booster = lightgbm.train(params, lightgbm.Dataset(X, _targets(objective), categorical_feature=[3]), 25)
    model = _load(booster)
    assert model.type_name == "lightgbm_booster"
    assert_parity(_Native(booster.predict), XT, model, EXACT, methods=("predict",))


@pytest.mark.parametrize("zero_as_missing", [False, True])
@pytest.mark.parametrize("use_missing", [False, True])
def test_lightgbm_missing_types_and_categories(zero_as_missing: bool, use_missing: bool) -> None:
    est = lightgbm.LGBMClassifier(n_estimators=25, verbose=-1, zero_as_missing=zero_as_missing,
                                  use_missing=use_missing).fit(X, Y3, categorical_feature=[3])
    doc = export_model(est, X[:20], "m")
    assert "category_split" in json.dumps(doc["estimator"])
    assert_parity(est, XT, scorer.load_model(json.dumps(doc)), EXACT)


def test_xgboost_classifier_binary_and_awkward_inputs() -> None:
    est = xgboost.XGBClassifier(n_estimators=30, max_depth=5).fit(X, (Y3 > 0).astype(int))
    Xw = XT.copy()
    Xw[80:85, 4] = [np.inf, -np.inf, 1e39, -1e39, 5e-46]  # beyond float32; below its smallest subnormal
    assert_parity(est, Xw, _load(est), XGB_TOL)


def test_xgboost_classifier_multi_softmax() -> None:
    """XGBClassifier(objective="multi:softmax"): labels from the Booster's margins, probabilities as
    XGBClassifier.predict_proba computes them (scipy's softmax of the float32 margins)."""
    est = xgboost.XGBClassifier(n_estimators=25, max_depth=4, objective="multi:softmax").fit(X, Y3)
    model = _load(est)
    assert model.estimator.objective == "multi:softmax"
    assert_parity(est, XT, model, XGB_TOL)


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
@pytest.mark.parametrize("ensemble", [True, False])
@pytest.mark.parametrize("y", [(Y3 > 0).astype(int), Y3], ids=["binary", "multiclass"])
def test_calibration_of_float32_probabilities(method: str, ensemble: bool, y: np.ndarray) -> None:
    """CalibratedClassifierCV(XGBClassifier()): sigmoid calibrates XGBoost's float32 probabilities in float64
    (scikit-learn's a_, b_ are float64 scalars: the scorer kept float32 and export refused the model);
    isotonic calibrators are fitted on float32 and score in float32 (refused at export before)."""
    from sklearn.calibration import CalibratedClassifierCV

    est = CalibratedClassifierCV(xgboost.XGBClassifier(n_estimators=10, max_depth=3), method=method,
                                 ensemble=ensemble, cv=3).fit(X, y)
    assert_parity(est, XT, _load(est), XGB_TOL)


@pytest.mark.parametrize("transformer", ["StandardScaler", "MinMaxScaler", "RobustScaler", "MaxAbsScaler",
                                         "log1p"])
def test_transformed_target_of_float32_predictions(transformer: str) -> None:
    """TransformedTargetRegressor(XGBRegressor()): scikit-learn inverts XGBoost's float32 predictions in
    float32 (StandardScaler casting scale_ and mean_ first); the scorer computed in float64 and export
    refused the model."""
    from sklearn import preprocessing
    from sklearn.compose import TransformedTargetRegressor

    reg = xgboost.XGBRegressor(n_estimators=10, max_depth=3)
    y = _targets("count:poisson") * 40 + 7
    if transformer == "log1p":
        est = TransformedTargetRegressor(reg, func=np.log1p, inverse_func=np.expm1)
    else:
        est = TransformedTargetRegressor(reg, transformer=getattr(preprocessing, transformer)())
    est.fit(X, y)
    assert_parity(est, XT, _load(est), XGB_TOL)


@pytest.mark.parametrize("classifier", [True, False])
def test_stacking_over_float32_outputs_only_is_refused_with_a_message(classifier: bool) -> None:
    """Base estimators that all predict float32 (XGBoost) make scikit-learn (recent releases) fit the final
    linear model on float32 data and score it in float32: refused by name, never a test-vector mismatch."""
    from sklearn.ensemble import StackingClassifier, StackingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge

    if classifier:
        est = StackingClassifier([("x", xgboost.XGBClassifier(n_estimators=5))], LogisticRegression(), cv=3)
        est.fit(X, Y3)
    else:
        est = StackingRegressor([("x", xgboost.XGBRegressor(n_estimators=5))], Ridge(), cv=3)
        est.fit(X, X[:, 0])
    if est.final_estimator_.coef_.dtype == np.float32:  # scikit-learn >= 1.8 keeps float32 coefficients
        with pytest.raises(UnsupportedEstimator, match="fitted on float32 data"):
            export_model(est, X[:5], "m")
    else:  # older releases fit in float64: exported and exact
        assert_parity(est, XT, _load(est), XGB_TOL)


@pytest.mark.parametrize("out_of_bounds", ["clip", "nan"])
def test_isotonic_regression_fitted_on_float32(out_of_bounds: str) -> None:
    """scipy's float32 interpolation, bit for bit, thresholds themselves and rows outside the range too."""
    from sklearn.isotonic import IsotonicRegression

    x = RNG.rand(300).astype(np.float32)
    est = IsotonicRegression(out_of_bounds=out_of_bounds).fit(x, x + RNG.rand(300).astype(np.float32) / 2)
    T = np.r_[RNG.rand(200), est.X_thresholds_, -0.5, 1.5].reshape(-1, 1)
    doc = export_model(est, T[:20], "m")
    assert doc["estimator"]["float32"] is True
    assert_parity(est, T, scorer.load_model(json.dumps(doc)), EXACT)


@pytest.mark.filterwarnings("ignore:The argument 'eval_set' is deprecated")
def test_early_stopping_uses_best_iteration() -> None:
    Xtr, Xva, ytr, yva = X[:400], X[400:], Y3[:400], Y3[400:]
    xgb = xgboost.XGBClassifier(n_estimators=300, learning_rate=0.5, early_stopping_rounds=3)
    xgb.fit(Xtr, ytr, eval_set=[(Xva, yva)], verbose=False)
    assert xgb.best_iteration + 1 < xgb.get_booster().num_boosted_rounds()
    model = _load(xgb)
    assert model.estimator.forest.n_trees == 3 * (xgb.best_iteration + 1)
    assert_parity(xgb, XT, model, XGB_TOL)
    lgb = lightgbm.LGBMClassifier(n_estimators=300, learning_rate=0.5, verbose=-1)
    lgb.fit(Xtr, ytr, eval_set=[(Xva, yva)], callbacks=[lightgbm.early_stopping(3, verbose=False)])
    model = _load(lgb)
    assert model.estimator.forest.n_trees == 3 * lgb.best_iteration_
    assert_parity(lgb, XT, model, EXACT)


@pytest.mark.parametrize("make", [lambda: xgboost.XGBRegressor(n_estimators=20),
                                  lambda: lightgbm.LGBMRegressor(n_estimators=20, verbose=-1)])
def test_inside_a_pipeline(make: Any) -> None:
    pipe = make_pipeline(StandardScaler(), make()).fit(X, _targets("regression"))
    model = _load(pipe)
    assert model.type_name == "pipeline"
    tol = EXACT if "LGBM" in type(pipe[-1]).__name__ else XGB_TOL
    assert_parity(pipe, XT, model, tol)


def test_refused_with_a_message() -> None:
    dart = xgboost.XGBRegressor(n_estimators=3, booster="dart").fit(X, X[:, 0])
    with pytest.raises(UnsupportedEstimator, match="dart"):
        export_model(dart, X[:5], "m")
    miss = xgboost.XGBRegressor(n_estimators=3, missing=0.0).fit(X, X[:, 0])
    with pytest.raises(UnsupportedEstimator, match="missing"):
        export_model(miss, X[:5], "m")
    rf = lightgbm.LGBMRegressor(n_estimators=3, boosting_type="rf", bagging_freq=1, bagging_fraction=0.5,
                                verbose=-1).fit(X, X[:, 0])
    with pytest.raises(UnsupportedEstimator, match="random-forest"):
        export_model(rf, X[:5], "m")


def test_pandas_category_columns_are_refused() -> None:
    import pandas as pd

    frame = pd.DataFrame({"a": X[:, 0], "c": pd.Categorical(np.where(X[:, 0] > 0, "p", "n"))})
    lgb = lightgbm.LGBMClassifier(n_estimators=3, verbose=-1).fit(frame, Y3)
    with pytest.raises(UnsupportedEstimator, match="category"):
        export_model(lgb, frame.iloc[:5], "m")
    xgb = xgboost.XGBClassifier(n_estimators=3, enable_categorical=True).fit(frame, Y3)
    with pytest.raises(UnsupportedEstimator, match="categorical"):
        export_model(xgb, frame.iloc[:5], "m")
