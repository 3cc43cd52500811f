"""Parity of mlp_classifier / mlp_regressor with scikit-learn, and their failure modes."""

from __future__ import annotations

import copy
import json
import warnings
from typing import Any

import numpy as np
import pytest
from harness import TOL, assert_parity, needs_sklearn
from sklearn.datasets import load_digits, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler

import scorer
from modelsync.export import UnsupportedEstimator, export_model

ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]


def _fit(est: Any, X: np.ndarray, y: np.ndarray) -> Any:
    with warnings.catch_warnings():  # few iterations keep the tests fast
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def _scaled(ds: Any) -> tuple[np.ndarray, np.ndarray]:
    sc = StandardScaler().fit(ds.X_train)
    return sc.transform(ds.X_train), sc.transform(ds.X_test)


def _same_classifier(est: Any, model: Any, X: np.ndarray) -> None:
    assert_parity(est, X, model)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_multiclass(activation: str, roundtrip: Any) -> None:
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    est = _fit(MLPClassifier(hidden_layer_sizes=(40, 20), activation=activation, max_iter=40, random_state=0),
               X[300:], y[300:])
    doc, model = roundtrip(est, X[:300], compact=activation in ("relu", "tanh"))
    assert doc["estimator"]["out_activation"] == "softmax"
    assert doc["estimator"]["output"] == "multiclass"
    _same_classifier(est, model, X[:300])


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_binary(activation: str, datasets: Any, roundtrip: Any) -> None:
    ds = datasets("breast_cancer")
    Xtr, Xte = _scaled(ds)
    labels = np.array(["benign", "malignant"], dtype=object)
    est = _fit(MLPClassifier(hidden_layer_sizes=(16,), activation=activation, max_iter=60, random_state=1),
               Xtr, labels[ds.y_train])
    doc, model = roundtrip(est, Xte, compact=activation in ("identity", "logistic"))
    assert doc["estimator"]["output"] == "binary"
    _same_classifier(est, model, Xte)


def test_multilabel(roundtrip: Any) -> None:
    X, Y = make_multilabel_classification(n_samples=250, n_features=8, n_classes=4, random_state=0)
    est = _fit(MLPClassifier(hidden_layer_sizes=(25,), max_iter=80, random_state=0), X[:200], Y[:200])
    doc, model = roundtrip(est, X[200:])
    assert doc["estimator"]["output"] == "multilabel"
    np.testing.assert_array_equal(model.predict(X[200:]), est.predict(X[200:]))
    np.testing.assert_allclose(model.predict_proba(X[200:]), est.predict_proba(X[200:]), rtol=0, atol=TOL)


def test_default_hidden_layer(datasets: Any, roundtrip: Any) -> None:
    ds = datasets("classification")
    est = _fit(MLPClassifier(max_iter=50, random_state=0), ds.X_train, ds.y_train)
    _, model = roundtrip(est, ds.X_test, compact=False)
    _same_classifier(est, model, ds.X_test)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_regressor(activation: str, datasets: Any, roundtrip: Any) -> None:
    ds = datasets("diabetes")
    Xtr, Xte = _scaled(ds)
    y_scale = ds.y_train.std()
    est = _fit(MLPRegressor(hidden_layer_sizes=(20, 10), activation=activation, max_iter=60, random_state=0),
               Xtr, ds.y_train / y_scale)
    doc, model = roundtrip(est, Xte, compact=activation != "relu")
    assert doc["estimator"]["type"] == "mlp_regressor"
    got = model.predict(Xte)
    assert got.shape == (len(Xte),)
    np.testing.assert_allclose(got, est.predict(Xte), rtol=0, atol=TOL)


@needs_sklearn((1, 9), "MLPRegressor(loss=...)")
def test_regressor_multi_output_and_poisson(datasets: Any, roundtrip: Any) -> None:
    ds = datasets("regression_multi")
    y_scale = np.abs(ds.y_train).max()
    est = _fit(MLPRegressor(hidden_layer_sizes=(12,), max_iter=60, random_state=0), ds.X_train,
               ds.y_train / y_scale)
    _, model = roundtrip(est, ds.X_test)
    assert model.predict(ds.X_test).shape == (len(ds.X_test), 3)
    np.testing.assert_allclose(model.predict(ds.X_test), est.predict(ds.X_test), rtol=0, atol=TOL)

    counts = np.exp(ds.y_train[:, 0] / y_scale)
    pois = _fit(MLPRegressor(loss="poisson", hidden_layer_sizes=(12,), max_iter=60, random_state=0),
                ds.X_train, counts)
    doc, model = roundtrip(pois, ds.X_test, compact=False)
    assert doc["estimator"]["out_activation"] == "exp"
    np.testing.assert_allclose(model.predict(ds.X_test), pois.predict(ds.X_test), rtol=0, atol=TOL)


# -- unhappy paths ----------------------------------------------------------------------------------

def _doc(est: Any, X: np.ndarray, compact: bool = False) -> dict[str, Any]:
    names = [f"x{i}" for i in range(X.shape[1])]
    return export_model(est, X, name="mlp", compact=compact, feature_names=names)


def test_unsupported_float32_weights(datasets: Any) -> None:
    ds = datasets("classification")
    est = _fit(MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0),
               ds.X_train.astype(np.float32), ds.y_train)
    with pytest.raises(UnsupportedEstimator, match=r"coefs_\.dtype"):
        _doc(est, ds.X_test)


def _pointer(doc: dict[str, Any]) -> str:
    with pytest.raises(scorer.InvalidModel) as info:
        scorer.load_model(json.dumps(doc))
    return info.value.problems[0][0]


def test_corrupted_nodes(datasets: Any) -> None:
    ds = datasets("classification")
    doc = _doc(_fit(MLPClassifier(hidden_layer_sizes=(6, 4), max_iter=5, random_state=0), ds.X_train,
                    ds.y_train), ds.X_test[:5])

    bad = copy.deepcopy(doc)
    bad["estimator"]["coefs"][1] = [row[:-1] for row in bad["estimator"]["coefs"][1]]
    assert _pointer(bad) == "/estimator/intercepts/1"

    bad = copy.deepcopy(doc)
    bad["estimator"]["coefs"][1] = bad["estimator"]["coefs"][1][:-1]
    assert _pointer(bad) == "/estimator/coefs/1"

    bad = copy.deepcopy(doc)
    bad["estimator"]["coefs"][0] = scorer.encode_array(np.zeros((9, 6)))
    assert _pointer(bad) == "/estimator/coefs/0"

    bad = copy.deepcopy(doc)
    bad["estimator"]["intercepts"].pop()
    assert _pointer(bad) == "/estimator/intercepts"

    bad = copy.deepcopy(doc)
    bad["estimator"]["activation"] = "gelu"
    assert _pointer(bad) == "/estimator/activation"

    bad = copy.deepcopy(doc)
    bad["estimator"]["out_activation"] = "logistic"
    assert _pointer(bad) == "/estimator/out_activation"

    bad = copy.deepcopy(doc)
    bad["estimator"]["classes"] = [0, 1, 2, 3]
    assert _pointer(bad) == "/estimator/coefs/2"

    bad = copy.deepcopy(doc)
    bad["estimator"]["intercepts"][0] = scorer.encode_array(np.array([1.0, np.inf, 0, 0, 0, 0]))
    assert _pointer(bad) == "/estimator/intercepts/0"


def test_rejects_nan_and_inf_input(datasets: Any) -> None:
    ds = datasets("classification")
    est = _fit(MLPClassifier(hidden_layer_sizes=(6,), activation="relu", max_iter=5, random_state=0),
               ds.X_train, ds.y_train)
    model = scorer.load_model(_doc(est, ds.X_test[:5]))
    rows = ds.X_test[:4].copy()
    rows[2, 1] = np.inf
    with pytest.raises(scorer.InvalidInput, match="row 2"):
        model.predict_proba(rows)
    rows[2, 1] = np.nan
    with pytest.raises(scorer.InvalidInput, match="row 2"):
        model.predict(rows)
    big = np.full((1, ds.X_test.shape[1]), 1e308)  # finite values whose sum overflows are still scored
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        assert model.predict_proba(big).shape == (1, 3)
