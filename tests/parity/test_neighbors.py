"""Parity of k_neighbors_classifier / k_neighbors_regressor with scikit-learn, and their failure modes.

Neighbour ties at the k-th distance are resolved differently by scikit-learn's algorithms (kd-tree,
ball-tree, brute force); the data here are continuous so that no query has such a tie.
"""

from __future__ import annotations

import copy
import json
import warnings
from typing import Any

import numpy as np
import pytest
from harness import TOL, assert_parity
from sklearn.datasets import make_classification, make_regression
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.preprocessing import StandardScaler

import scorer
from modelsync.export import UnsupportedEstimator, export_model

METRICS = [("minkowski", 2), ("minkowski", 1), ("minkowski", 3), ("minkowski", np.inf), ("euclidean", 2),
           ("manhattan", 2), ("chebyshev", 2), ("cosine", 2), ("minkowski", 0.7)]


def _scaled(ds: Any) -> tuple[np.ndarray, np.ndarray]:
    sc = StandardScaler().fit(ds.X_train)
    return sc.transform(ds.X_train), sc.transform(ds.X_test)


def _fit(est: Any, X: np.ndarray, y: np.ndarray) -> Any:
    with warnings.catch_warnings():  # minkowski p < 1 warns that it falls back to brute force
        warnings.simplefilter("ignore", UserWarning)
        return est.fit(X, y)


def _no_ties(est: Any, X: np.ndarray) -> None:
    """Guard the test data: the k-th and (k+1)-th nearest distances differ for every query."""
    dist, _ = est.kneighbors(X, n_neighbors=est.n_neighbors + 1)
    assert np.all(dist[:, -1] > dist[:, -2] * (1 + 1e-12))


@pytest.mark.parametrize(("metric", "p"), METRICS)
@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_classifier(metric: str, p: float, weights: str, datasets: Any, roundtrip: Any) -> None:
    ds = datasets("breast_cancer")
    Xtr, Xte = _scaled(ds)
    tree = "ball_tree" if weights == "distance" else "kd_tree"
    algorithm = "brute" if metric == "cosine" or p < 1 else tree
    est = _fit(KNeighborsClassifier(n_neighbors=6, weights=weights, metric=metric, p=p,
                                    algorithm=algorithm), Xtr, ds.y_train)
    _no_ties(est, Xte)
    doc, model = roundtrip(est, Xte, compact=weights == "uniform")
    assert doc["estimator"]["type"] == "k_neighbors_classifier"
    assert_parity(est, Xte, model)


@pytest.mark.parametrize("algorithm", ["brute", "kd_tree", "ball_tree"])
def test_classifier_multiclass_string_labels(algorithm: str, datasets: Any, roundtrip: Any) -> None:
    ds = datasets("classification")
    labels = np.array(["red", "green", "blue"], dtype=object)
    for weights in ("uniform", "distance"):
        est = KNeighborsClassifier(n_neighbors=9, weights=weights, algorithm=algorithm).fit(
            ds.X_train, labels[ds.y_train])
        _no_ties(est, ds.X_test)
        _, model = roundtrip(est, ds.X_test, compact=algorithm != "brute")
        assert_parity(est, ds.X_test, model)


def test_classifier_votes_tie_to_lowest_class(roundtrip: Any) -> None:
    """Even k with two classes: equal votes go to the first class, as in scikit-learn."""
    X, y = make_classification(n_samples=200, n_features=3, n_informative=2, n_redundant=0, random_state=4)
    est = KNeighborsClassifier(n_neighbors=4).fit(X[:150], y[:150])
    _no_ties(est, X[150:])
    proba = est.predict_proba(X[150:])
    assert (proba[:, 0] == 0.5).any()  # the data does exercise the tie
    _, model = roundtrip(est, X[150:])
    np.testing.assert_array_equal(model.predict(X[150:]), est.predict(X[150:]))


def test_distance_weights_with_exact_matches(roundtrip: Any) -> None:
    """A query equal to training rows: only the zero-distance neighbours vote (trees give exact zeros)."""
    X, y = make_classification(n_samples=120, n_features=4, n_informative=3, n_redundant=0, random_state=5)
    queries = np.vstack([X[:5], X[60:63] + 0.01])
    for algorithm in ("kd_tree", "ball_tree"):
        est = KNeighborsClassifier(n_neighbors=5, weights="distance", algorithm=algorithm).fit(X, y)
        _, model = roundtrip(est, queries)
        assert_parity(est, queries, model)
        reg = KNeighborsRegressor(n_neighbors=5, weights="distance", algorithm=algorithm).fit(X, X[:, 0] * 3)
        _, rmodel = roundtrip(reg, queries, compact=False)
        assert_parity(reg, queries, rmodel)


@pytest.mark.parametrize(("metric", "p"), METRICS)
@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_regressor(metric: str, p: float, weights: str, datasets: Any, roundtrip: Any) -> None:
    ds = datasets("regression")  # continuous features: diabetes' binary column makes chebyshev ties
    Xtr, Xte = _scaled(ds)
    algorithm = "brute" if metric == "cosine" or p < 1 else "auto"
    est = _fit(KNeighborsRegressor(n_neighbors=7, weights=weights, metric=metric, p=p, algorithm=algorithm),
               Xtr, ds.y_train)
    _no_ties(est, Xte)
    doc, model = roundtrip(est, Xte, compact=weights == "distance")
    assert doc["estimator"]["type"] == "k_neighbors_regressor"
    assert_parity(est, Xte, model)


@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_regressor_multi_output(weights: str, datasets: Any, roundtrip: Any) -> None:
    ds = datasets("regression_multi")
    y_scale = np.abs(ds.y_train).max()
    est = KNeighborsRegressor(n_neighbors=4, weights=weights).fit(ds.X_train, ds.y_train / y_scale)
    _, model = roundtrip(est, ds.X_test)
    assert model.predict(ds.X_test).shape == (len(ds.X_test), 3)
    assert_parity(est, ds.X_test, model)


def test_many_rows_are_chunked(roundtrip: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """More queries than one block holds, many training rows (partial selection): same answers."""
    import scorer.models.neighbors as impl

    X, y = make_regression(n_samples=2600, n_features=20, random_state=0)
    est = KNeighborsRegressor(n_neighbors=3, weights="distance", algorithm="brute")
    est.fit(X[:2000], y[:2000] / 100)
    _, model = roundtrip(est, X[2000:2010])
    whole = model.predict(X[2000:])
    np.testing.assert_allclose(whole, est.predict(X[2000:]), rtol=0, atol=TOL)
    monkeypatch.setattr(impl, "_CHUNK_ROWS_X_TRAIN", 7000)  # 3 query rows per block
    np.testing.assert_array_equal(model.predict(X[2000:]), whole)


# -- unhappy paths ----------------------------------------------------------------------------------

def _doc(est: Any, X: np.ndarray, compact: bool = True) -> dict[str, Any]:
    names = [f"x{i}" for i in range(X.shape[1])]
    return export_model(est, X, name="knn", compact=compact, feature_names=names)


@pytest.mark.parametrize(("kwargs", "param"), [
    ({"metric": "haversine", "algorithm": "ball_tree"}, "metric"),
    ({"metric": "canberra"}, "metric"),
    ({"metric": lambda a, b: float(np.abs(a - b).sum())}, "metric"),
    ({"weights": lambda d: 1.0 / (1.0 + d)}, "weights"),
    ({"metric": "minkowski", "metric_params": {"w": np.ones(2)}}, "metric_params"),
])
def test_unsupported_parameters(kwargs: dict[str, Any], param: str) -> None:
    X, y = make_classification(n_samples=60, n_features=2, n_informative=2, n_redundant=0, random_state=0)
    est = KNeighborsClassifier(n_neighbors=3, **kwargs).fit(X, y)
    with pytest.raises(UnsupportedEstimator, match=param):
        _doc(est, X)


def test_unsupported_multi_output_classifier() -> None:
    X, y = make_classification(n_samples=60, n_features=3, n_informative=2, n_redundant=0, random_state=0)
    est = KNeighborsClassifier(n_neighbors=3).fit(X, np.c_[y, 1 - y])
    with pytest.raises(UnsupportedEstimator, match="KNeighborsClassifier"):
        _doc(est, X)


def _pointer(doc: dict[str, Any]) -> str:
    with pytest.raises(scorer.InvalidModel) as info:
        scorer.load_model(json.dumps(doc))
    return info.value.problems[0][0]


def test_corrupted_nodes() -> None:
    X, y = make_classification(n_samples=40, n_features=3, n_informative=2, n_redundant=0, n_classes=2,
                               random_state=0)
    doc = _doc(KNeighborsClassifier(n_neighbors=3).fit(X, y), X[:5], compact=False)

    bad = copy.deepcopy(doc)
    bad["estimator"]["y"][7] = 2
    assert _pointer(bad) == "/estimator/y/7"

    bad = copy.deepcopy(doc)
    bad["estimator"]["y"].pop()
    assert _pointer(bad) == "/estimator/y"

    bad = copy.deepcopy(doc)
    bad["estimator"]["n_neighbors"] = 41
    assert _pointer(bad) == "/estimator/n_neighbors"

    bad = copy.deepcopy(doc)
    bad["estimator"]["metric"] = "hamming"
    assert _pointer(bad) == "/estimator/metric"

    bad = copy.deepcopy(doc)
    bad["estimator"]["weights"] = "gaussian"
    assert _pointer(bad) == "/estimator/weights"

    bad = copy.deepcopy(doc)
    bad["estimator"]["metric"] = "minkowski"
    assert _pointer(bad) == "/estimator/p"

    bad = copy.deepcopy(doc)
    bad["estimator"]["fit_X"] = scorer.encode_array(np.ones((40, 4)))
    assert _pointer(bad) == "/estimator/fit_X"

    reg = _doc(KNeighborsRegressor(n_neighbors=3).fit(X, X[:, 0]), X[:5])
    bad = copy.deepcopy(reg)
    bad["estimator"]["y"] = scorer.encode_array(np.ones(39))
    assert _pointer(bad) == "/estimator/y"


def test_rejects_nan_input() -> None:
    X, y = make_classification(n_samples=40, n_features=3, n_informative=2, n_redundant=0, random_state=0)
    model = scorer.load_model(_doc(KNeighborsClassifier(n_neighbors=3).fit(X, y), X[:5]))
    with pytest.raises(scorer.InvalidInput, match="row 0"):
        model.predict([[np.nan, 1.0, 2.0]])


def _tie_heavy(kind: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "integers":
        X = rng.integers(0, 4, size=(n, 3)).astype(np.float64)
    elif kind == "duplicated_rows":
        X = np.repeat(rng.normal(size=(n // 4, 2)), 4, axis=0)
    else:  # one integer feature
        X = rng.integers(0, 10, size=(n, 1)).astype(np.float64)
    return X, rng.integers(0, 3, size=n)


@pytest.mark.parametrize("algorithm", ["brute", "kd_tree", "ball_tree"])
@pytest.mark.parametrize("kind", ["integers", "duplicated_rows", "one_feature"])
def test_tie_heavy_data_agree_where_the_kth_distance_is_not_tied(kind: str, algorithm: str,
                                                                 roundtrip: Any) -> None:
    """Tied distances inside the k nearest: every row agrees, every algorithm, metric and weighting.

    Rows whose k-th and (k+1)-th distances are equal are left out: which tied rows scikit-learn keeps
    there depends on its search (see docs/format/neighbors.md, *Ties*), and the format keeps the lowest
    training-row indices.
    """
    X, y = _tie_heavy(kind, 120, 0)
    queries = np.vstack([_tie_heavy(kind, 60, 1)[0], X[:30]])  # training rows too: distance-0 ties
    tied_inside = checked = 0
    for metric, k, weights in [("euclidean", 4, "uniform"), ("manhattan", 3, "distance"),
                               ("chebyshev", 7, "distance"), ("euclidean", 1, "uniform")]:
        for est in (KNeighborsClassifier(n_neighbors=k, weights=weights, metric=metric, algorithm=algorithm),
                    KNeighborsRegressor(n_neighbors=k, weights=weights, metric=metric, algorithm=algorithm)):
            est.fit(X, y if isinstance(est, KNeighborsClassifier) else y * 1.7)
            dist, _ = est.kneighbors(queries, n_neighbors=k + 1)
            keep = dist[:, k] > dist[:, k - 1]
            rows = queries[keep]
            if not len(rows):
                continue
            checked += len(rows)
            tied_inside += int(np.sum(np.any(dist[keep, 1:k] == dist[keep, :k - 1], axis=1)))
            _, model = roundtrip(est, rows)
            assert_parity(est, rows, model)
    assert checked >= 20 and tied_inside > 0  # the rows kept do hold tied neighbours
