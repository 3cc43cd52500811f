"""Parity of the linear models beyond the case table (tests/parity/cases.py), plus their unhappy paths."""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from harness import TOL, assert_parity, needs_sklearn
from sklearn.linear_model import (
    HuberRegressor,
    LinearRegression,
    LogisticRegression,
    Perceptron,
    Ridge,
    RidgeClassifier,
    SGDClassifier,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import scorer
from modelsync.export import UnsupportedEstimator, export_model


@pytest.mark.parametrize("make", [LinearRegression, Ridge])
def test_regressor_keeps_single_column_target_shape(make: Any, datasets: Any, roundtrip: Any) -> None:
    d = datasets("regression")
    est = make().fit(d.X_train, d.y_train.reshape(-1, 1))  # LinearRegression keeps (1, p) coef, Ridge ravels
    shape = (40, 1) if est.coef_.ndim == 2 else (40,)  # (Ridge ravels since scikit-learn 1.5 or so)
    assert make is Ridge or shape == (40, 1)
    _, model = roundtrip(est, d.X_test)
    assert est.predict(d.X_test).shape == model.predict(d.X_test).shape == shape
    np.testing.assert_allclose(model.predict(d.X_test), est.predict(d.X_test), rtol=0, atol=TOL)


@pytest.mark.parametrize("labels", [["no", "yes"], [-1, 7], ["setosa", "versicolor", "virginica"]])
def test_string_and_int_class_labels(labels: list[Any], datasets: Any, roundtrip: Any) -> None:
    d = datasets("binary" if len(labels) == 2 else "iris")
    y = np.array(labels, dtype=object if isinstance(labels[0], str) else np.int64)[d.y_train]
    est = LogisticRegression(max_iter=1000).fit(d.X_train, y)
    _, model = roundtrip(est, d.X_test)
    assert model.predict(d.X_test).tolist() == est.predict(d.X_test).tolist()
    assert model.classes.tolist() == labels
    np.testing.assert_allclose(model.predict_proba(d.X_test), est.predict_proba(d.X_test), rtol=0, atol=TOL)


def test_binary_logistic_uses_expit_and_multiclass_softmax(datasets: Any, roundtrip: Any) -> None:
    d = datasets("binary")
    est = LogisticRegression(max_iter=500).fit(d.X_train, d.y_train)
    doc, model = roundtrip(est, d.X_test)
    dec = est.decision_function(d.X_test)
    p1 = 1.0 / (1.0 + np.exp(-dec))
    np.testing.assert_allclose(model.predict_proba(d.X_test)[:, 1], p1, rtol=0, atol=1e-15)
    d3 = datasets("iris")
    est3 = LogisticRegression(max_iter=1000).fit(d3.X_train, d3.y_train)
    doc3, _ = roundtrip(est3, d3.X_test)
    assert doc["estimator"]["probability"] == "ovr" and doc3["estimator"]["probability"] == "multinomial"


def test_argmax_ties_pick_the_first_class(datasets: Any, roundtrip: Any) -> None:
    d = datasets("classification")
    est = RidgeClassifier().fit(d.X_train, d.y_train)
    est.coef_[2] = est.coef_[1]
    est.intercept_[2] = est.intercept_[1]
    est.coef_[0] = 0.0
    est.intercept_[0] = -1e9  # class 0 never wins: rows are ties between classes 1 and 2
    _, model = roundtrip(est, d.X_test)
    pred = model.predict(d.X_test)
    assert pred.tolist() == est.predict(d.X_test).tolist()
    assert set(pred.tolist()) == {1}


def test_binary_zero_score_is_the_negative_class(datasets: Any, roundtrip: Any) -> None:
    d = datasets("binary")
    est = Perceptron(random_state=0).fit(d.X_train, d.y_train)
    est.coef_[:] = 0.0
    est.intercept_[:] = 0.0
    _, model = roundtrip(est, d.X_test)
    assert model.predict(d.X_test).tolist() == est.predict(d.X_test).tolist() == [0] * len(d.y_test)


def test_modified_huber_all_zero_rows_become_uniform(datasets: Any, roundtrip: Any) -> None:
    d = datasets("classification")
    est = SGDClassifier(loss="modified_huber", random_state=0).fit(d.X_train, d.y_train)
    est.intercept_[:] = -1e3  # every score < -1: clipped probabilities all zero
    _, model = roundtrip(est, d.X_test)
    want = est.predict_proba(d.X_test)
    np.testing.assert_allclose(want, 1 / 3)
    np.testing.assert_allclose(model.predict_proba(d.X_test), want, rtol=0, atol=TOL)


def test_extreme_scores_do_not_overflow(datasets: Any, roundtrip: Any) -> None:
    d = datasets("binary")
    est = LogisticRegression(max_iter=500).fit(d.X_train, d.y_train)
    est.coef_ *= 1e4
    _, model = roundtrip(est, d.X_test)
    np.testing.assert_allclose(model.predict_proba(d.X_test), est.predict_proba(d.X_test), rtol=0, atol=TOL)


def test_no_predict_proba_where_sklearn_has_none(datasets: Any, roundtrip: Any) -> None:
    d = datasets("binary")
    est = SGDClassifier(loss="hinge", random_state=0).fit(d.X_train, d.y_train)
    _, model = roundtrip(est, d.X_test)
    assert not model.has("predict_proba") and model.has("decision_function")
    with pytest.raises(scorer.MethodNotSupported):
        model.predict_proba(d.X_test)
    reg = LinearRegression().fit(d.X_train, d.X_train[:, 0])
    _, rmodel = roundtrip(reg, d.X_test)
    assert rmodel.methods == ["predict"]
    with pytest.raises(scorer.MethodNotSupported):
        rmodel.decision_function(d.X_test)


@needs_sklearn((1, 9), "LogisticRegression keeping float32 coefficients")
def test_float32_fitted_models_match_for_float64_inputs(datasets: Any, roundtrip: Any) -> None:
    d = datasets("iris")
    est = LogisticRegression(max_iter=1000).fit(d.X_train.astype(np.float32), d.y_train)
    assert est.coef_.dtype == np.float32
    _, model = roundtrip(est, d.X_test)
    assert_parity(est, d.X_test, model)


# -- unhappy paths ------------------------------------------------------------------------------------

def test_unsupported_estimator_is_named(datasets: Any) -> None:
    d = datasets("regression")
    with pytest.raises(UnsupportedEstimator, match="HuberRegressor"):
        export_model(HuberRegressor().fit(d.X_train, d.y_train), d.X_test, name="h")


def test_unsupported_parameter_is_named(datasets: Any) -> None:
    d = datasets("iris")
    est = LogisticRegression(max_iter=500).fit(d.X_train, d.y_train)
    est.multi_class = "ovr"  # what an older scikit-learn would have fitted
    with pytest.raises(UnsupportedEstimator, match=r"LogisticRegression\(multi_class='ovr'\)"):
        export_model(est, d.X_test, name="x")
    multilabel = RidgeClassifier().fit(d.X_train, np.stack([d.y_train == 0, d.y_train == 1], axis=1))
    with pytest.raises(UnsupportedEstimator, match="RidgeClassifier"):
        export_model(multilabel, d.X_test, name="x")


def _doc(est: Any, X: Any) -> dict[str, Any]:
    return export_model(est, X, name="m", compact=False, feature_names=[f"x{i}" for i in range(X.shape[1])])


@pytest.mark.parametrize(("mutate", "pointer"), [
    (lambda e: e.update(coef=[row[:-1] for row in e["coef"]]), "/estimator/coef"),
    (lambda e: e.update(coef=e["coef"][:1]), "/estimator/coef"),
    (lambda e: e.update(intercept=e["intercept"][:2]), "/estimator/intercept"),
    (lambda e: e["coef"][0].__setitem__(0, "x"), "/estimator/coef"),
    (lambda e: e.pop("classes"), "/estimator/classes"),
    (lambda e: e.update(classes=[0, 1, 1]), "/estimator/classes"),
    (lambda e: e.update(probability="modified_huber"), "/estimator/probability"),
    (lambda e: e.update(n_features_in=0), "/estimator/n_features_in"),
    (lambda e: e.update(feature_names=["a"]), "/estimator/feature_names"),
])
def test_corrupted_classifier_node_points_at_the_field(mutate: Any, pointer: str, datasets: Any) -> None:
    d = datasets("iris")
    doc = _doc(LogisticRegression(max_iter=1000).fit(d.X_train, d.y_train), d.X_test)
    mutate(doc["estimator"])
    with pytest.raises(scorer.InvalidModel) as info:
        scorer.load_model(json.dumps(doc))
    assert info.value.problems[0][0] == pointer


def test_corrupted_regressor_and_nested_pointers(datasets: Any) -> None:
    d = datasets("regression_multi")
    doc = _doc(Ridge().fit(d.X_train, d.y_train), d.X_test)
    doc["estimator"]["coef"] = doc["estimator"]["coef"][0]  # 1-D coef with three intercepts
    with pytest.raises(scorer.InvalidModel) as info:
        scorer.load_model(doc)
    assert info.value.problems[0][0] == "/estimator/intercept"

    doc = _doc(make_pipeline(StandardScaler(), Ridge()).fit(d.X_train, d.y_train), d.X_test)
    doc["estimator"]["steps"][1]["estimator"]["coef"] = [[1.0, 2.0]] * 3
    with pytest.raises(scorer.InvalidModel) as info:
        scorer.load_model(doc)
    assert info.value.problems[0][0] == "/estimator/steps/1/estimator/coef"

    doc = export_model(Ridge().fit(d.X_train, d.y_train), d.X_test, name="m", compact=True,
                       feature_names=[f"x{i}" for i in range(d.X_test.shape[1])])
    doc["estimator"]["coef"]["shape"] = [3, 5]
    with pytest.raises(scorer.InvalidModel) as info:
        scorer.load_model(doc)
    assert info.value.problems[0][0] == "/estimator/coef/data"


def test_tampered_document_fails_validation(datasets: Any) -> None:
    d = datasets("binary")
    doc = _doc(LogisticRegression(max_iter=500).fit(d.X_train, d.y_train), d.X_test)
    bad = copy.deepcopy(doc)
    bad["estimator"]["intercept"] = [bad["estimator"]["intercept"][0] + 1.0]
    with pytest.raises(scorer.InvalidModel) as info:
        scorer.validate_model(bad)
    assert info.value.problems[0][0] == "/sha256"
    assert any(p.startswith("/test_vectors/outputs/") for p, _ in info.value.problems)


def test_bad_inputs_name_row_and_feature(datasets: Any, roundtrip: Any) -> None:
    d = datasets("binary")
    est = LogisticRegression(max_iter=500).fit(d.X_train, d.y_train)
    _, model = roundtrip(est, d.X_test)
    rows = d.X_test[:3].tolist()
    rows[1][2] = "abc"
    with pytest.raises(scorer.InvalidInput) as info:
        model.predict(rows)
    assert info.value.row == 1 and info.value.feature == "x2" and "'x2'" in str(info.value)
    with pytest.raises(scorer.InvalidInput) as info:
        model.predict([d.X_test[0].tolist(), d.X_test[1].tolist()[:-1]])
    assert info.value.row == 1 and "row 1" in str(info.value)
    records = [dict(zip(model.feature_names, r, strict=True)) for r in d.X_test[:2].tolist()]
    del records[1]["x4"]
    with pytest.raises(scorer.InvalidInput) as info:
        model.predict(records)
    assert info.value.row == 1 and info.value.feature == "x4"
    rows = d.X_test[:3].tolist()
    rows[2][3] = None  # missing: scikit-learn's LogisticRegression rejects NaN
    with pytest.raises(scorer.InvalidInput) as info:
        model.predict(rows)
    assert info.value.row == 2 and "row 2" in str(info.value) and "column 3" in str(info.value)
    assert model.predict(d.X_test[:0]).shape == (0,)
    # fitted on a DataFrame, the node knows the feature names and uses them
    frame = pd.DataFrame(d.X_train, columns=[f"f{i}" for i in range(d.X_train.shape[1])])
    est = LogisticRegression(max_iter=500).fit(frame, d.y_train)
    test = pd.DataFrame(d.X_test, columns=frame.columns)
    _, model = roundtrip(est, test)
    test.iloc[1, 4] = np.nan
    with pytest.raises(scorer.InvalidInput) as info:
        model.predict(test)
    assert info.value.row == 1 and info.value.feature == "f4" and "'f4'" in str(info.value)
