"""Parity of gaussian_nb / multinomial_nb / bernoulli_nb / complement_nb with scikit-learn."""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pytest
from harness import assert_parity, needs_sklearn
from sklearn.datasets import load_digits
from sklearn.naive_bayes import BernoulliNB, CategoricalNB, ComplementNB, GaussianNB, MultinomialNB

import scorer
from modelsync.export import UnsupportedEstimator, export_model


def _same(est: Any, model: Any, X: np.ndarray) -> None:
    assert_parity(est, X, model)
    assert_parity(est, X, model.estimator, methods=("predict_log_proba",))


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    return X, y


@pytest.mark.parametrize("data", ["iris", "wine", "breast_cancer", "classification"])
@pytest.mark.parametrize("compact", [True, False])
def test_gaussian_nb(data: str, compact: bool, datasets: Any, roundtrip: Any) -> None:
    ds = datasets(data)
    est = GaussianNB().fit(ds.X_train, ds.y_train)
    doc, model = roundtrip(est, ds.X_test, compact=compact)
    assert doc["estimator"]["type"] == "gaussian_nb"
    _same(est, model, ds.X_test)


def test_gaussian_nb_priors_and_string_labels(datasets: Any, roundtrip: Any) -> None:
    ds = datasets("wine")
    labels = np.array(["barolo", "grignolino", "barbera"], dtype=object)[ds.y_train]
    est = GaussianNB(priors=[0.5, 0.3, 0.2], var_smoothing=1e-6).fit(ds.X_train, labels)
    _, model = roundtrip(est, ds.X_test)
    _same(est, model, ds.X_test)


@pytest.mark.parametrize("cls", [MultinomialNB, ComplementNB])
@pytest.mark.parametrize("compact", [True, False])
def test_multinomial_and_complement_nb(cls: type, compact: bool, digits: Any, roundtrip: Any) -> None:
    X, y = digits
    for est in (cls(), cls(alpha=0.3), cls(fit_prior=False) if cls is MultinomialNB else cls(norm=True)):
        est.fit(X[200:], y[200:])
        doc, model = roundtrip(est, X[:200], compact=compact)
        assert doc["estimator"]["type"] == ("multinomial_nb" if cls is MultinomialNB else "complement_nb")
        _same(est, model, X[:200])


@pytest.mark.parametrize("binarize", [0.0, 4.0, None])
def test_bernoulli_nb(binarize: float | None, digits: Any, roundtrip: Any) -> None:
    X, y = digits
    if binarize is None:
        X = (X > 6).astype(np.float64)
    est = BernoulliNB(binarize=binarize, alpha=0.5).fit(X[200:], y[200:])
    doc, model = roundtrip(est, X[:200], compact=binarize != 4.0)
    assert doc["estimator"]["binarize"] == binarize
    _same(est, model, X[:200])


@needs_sklearn((1, 9), "BernoulliNB on data with NaN")
def test_bernoulli_nb_binary_task(datasets: Any, roundtrip: Any) -> None:
    ds = datasets("binary")
    est = BernoulliNB(binarize=0.25, class_prior=[0.3, 0.7]).fit(ds.X_train, ds.y_train)
    _, model = roundtrip(est, ds.X_test)
    _same(est, model, ds.X_test)


# -- unhappy paths ----------------------------------------------------------------------------------

def _doc(est: Any, X: np.ndarray, compact: bool = False) -> dict[str, Any]:
    names = [f"x{i}" for i in range(X.shape[1])]
    return export_model(est, X, name="nb", compact=compact, feature_names=names)


def _pointer(doc: dict[str, Any]) -> str:
    with pytest.raises(scorer.InvalidModel) as info:
        scorer.load_model(json.dumps(doc))
    return info.value.problems[0][0]


def test_unsupported_categorical_nb() -> None:
    X = np.random.RandomState(0).randint(0, 3, size=(30, 2))
    with pytest.raises(UnsupportedEstimator, match="CategoricalNB"):
        _doc(CategoricalNB().fit(X, X[:, 0] > 0), X)


def test_corrupted_nodes(datasets: Any) -> None:
    ds = datasets("iris")
    doc = _doc(GaussianNB().fit(ds.X_train, ds.y_train), ds.X_test[:5])

    bad = copy.deepcopy(doc)
    bad["estimator"]["var"][1][2] = 0.0
    assert _pointer(bad) == "/estimator/var/1/2"

    bad = copy.deepcopy(doc)
    bad["estimator"]["theta"] = bad["estimator"]["theta"][:2]
    assert _pointer(bad) == "/estimator/theta"

    bad = copy.deepcopy(doc)
    bad["estimator"]["class_prior"][0] = -0.1
    assert _pointer(bad) == "/estimator/class_prior/0"

    bad = copy.deepcopy(doc)
    bad["estimator"]["classes"] = []
    assert _pointer(bad) == "/estimator/classes"

    bern = _doc(BernoulliNB(binarize=0.5).fit(ds.X_train, ds.y_train), ds.X_test[:5])
    bad = copy.deepcopy(bern)
    bad["estimator"]["feature_log_prob"][2][3] = 0.0
    assert _pointer(bad) == "/estimator/feature_log_prob/2/3"

    bad = copy.deepcopy(bern)
    del bad["estimator"]["binarize"]
    assert _pointer(bad) == "/estimator/binarize"

    bad = copy.deepcopy(bern)
    bad["estimator"]["class_log_prior"] = scorer.encode_array(np.array([np.nan, -1.0, -1.0]))
    assert _pointer(bad) == "/estimator/class_log_prior/0"


def _counts() -> tuple[np.ndarray, np.ndarray]:
    """Poisson counts, 3 classes; feature 1 is never seen in class 0 and feature 2 only in class 0."""
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    X = rng.poisson(2.0, size=(60, 3)).astype(np.float64) + 1
    X[y == 0, 1] = 0
    X[y != 0, 2] = 0
    return X, y


@pytest.mark.parametrize(("make", "cols", "attr", "reason"), [
    (lambda: ComplementNB(norm=True), [0], "feature_log_prob_", "norm=True with a single feature"),
    (lambda: ComplementNB(alpha=0.0, force_alpha=True), None, "feature_log_prob_", "alpha of 0"),
    (lambda: MultinomialNB(alpha=0.0, force_alpha=True), None, "feature_log_prob_", "alpha of 0"),
    (lambda: BernoulliNB(alpha=0.0, force_alpha=True), None, "feature_log_prob_", "alpha of 0"),
    (lambda: GaussianNB(var_smoothing=0.0), None, "var_", "var_smoothing=0"),
])
def test_non_finite_fitted_values_are_refused(make: Any, cols: list[int] | None, attr: str,
                                              reason: str) -> None:
    """sklearn's fitted values hold NaN/inf (or a 0 variance): refused at export, naming why, never a
    document the scorer refuses; scikit-learn's own outputs for such models are NaN on some rows."""
    X, y = _counts()
    X = X[:, cols] if cols else X
    with np.errstate(divide="ignore", invalid="ignore"):
        est = make().fit(X, y)
    assert not np.all(np.isfinite(getattr(est, attr)) & (getattr(est, attr) != 0))  # the data do it
    with pytest.raises(UnsupportedEstimator, match=rf"fitted {attr}\[.*{reason}"):
        export_model(est, X, name="nb", feature_names=[f"x{i}" for i in range(X.shape[1])])


@pytest.mark.parametrize("make", [lambda: ComplementNB(), lambda: ComplementNB(alpha=1e-10),
                                  lambda: MultinomialNB(alpha=1e-10), lambda: BernoulliNB(alpha=1e-10)])
@pytest.mark.parametrize("one_feature", [True, False])
def test_edge_fits_that_stay_finite_export_and_load(make: Any, one_feature: bool, roundtrip: Any) -> None:
    """One count feature, or a tiny alpha on unseen counts: finite log-probabilities, exact parity."""
    X, y = _counts()
    X = X[:, :1] if one_feature else X
    est = make().fit(X, y)
    _, model = roundtrip(est, X)
    assert_parity(est, X, model)


def test_gaussian_nb_fitted_on_float32_is_refused(datasets: Any) -> None:
    """scikit-learn keeps float32 means and variances and scores with them: refused by name (export failed
    on its own test vectors before)."""
    d = datasets("iris")
    est = GaussianNB().fit(d.X_train.astype(np.float32), d.y_train)
    if est.theta_.dtype == np.float32:  # recent releases keep float32 means and variances
        with pytest.raises(UnsupportedEstimator, match=r"theta_.dtype='float32'"):
            export_model(est, d.X_test, name="g", feature_names=d.feature_names)
    else:  # older ones fit in float64: exported and exact
        doc = export_model(est, d.X_test, name="g", feature_names=d.feature_names)
        assert_parity(est, d.X_test, scorer.load_model(json.dumps(doc)))
