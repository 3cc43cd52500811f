"""Parity of k_neighbors_classifier / k_neighbors_regressor with scikit-learn, and their failure modes.

The continuous data sets have no query with a tie at the k-th distance (``_no_ties`` guards them); the
tie-heavy data at the end (integer features, duplicated rows, one feature) have many, which the scorer
resolves as the fitted search does (brute force, kd-tree, ball tree).
"""

from __future__ import annotations

import copy
import json
import warnings
from typing import Any

import numpy as np
import pytest
from harness import SKLEARN, TOL, assert_parity
from sklearn.datasets import make_classification, make_regression
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

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
    doc = _doc(KNeighborsClassifier(n_neighbors=3, leaf_size=5).fit(X, y), X[:5], compact=False)

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

    # the search: algorithm and the tree's layout (X has 3 features: algorithm="auto" fits a kd-tree)
    assert doc["estimator"]["algorithm"] == "kd_tree"
    bad = copy.deepcopy(doc)
    bad["estimator"]["algorithm"] = "octree"
    assert _pointer(bad) == "/estimator/algorithm"

    bad = copy.deepcopy(doc)
    del bad["estimator"]["tree"]
    assert _pointer(bad) == "/estimator/tree"

    bad = copy.deepcopy(doc)
    bad["estimator"]["metric"] = "cosine"
    assert _pointer(bad) == "/estimator/algorithm"  # cosine is searched by brute force only

    bad = copy.deepcopy(doc)
    bad["estimator"]["tree"]["idx_array"][0] = bad["estimator"]["tree"]["idx_array"][1]
    assert _pointer(bad) == "/estimator/tree/idx_array"

    bad = copy.deepcopy(doc)
    bad["estimator"]["tree"]["node_end"][1] = 41
    assert _pointer(bad) == "/estimator/tree/node_end/1"

    bad = copy.deepcopy(doc)
    n_nodes = len(bad["estimator"]["tree"]["node_is_leaf"])
    bad["estimator"]["tree"]["node_is_leaf"] = [False] * n_nodes
    assert _pointer(bad) == f"/estimator/tree/node_is_leaf/{n_nodes - 1}"

    bad = copy.deepcopy(doc)
    bad["estimator"]["tree"]["node_bounds"] = bad["estimator"]["tree"]["node_bounds"][:1]
    assert _pointer(bad) == "/estimator/tree/node_bounds"

    ball = _doc(KNeighborsClassifier(n_neighbors=3, algorithm="ball_tree").fit(X, y), X[:5], compact=False)
    bad = copy.deepcopy(ball)
    del bad["estimator"]["tree"]["node_radius"]
    assert _pointer(bad) == "/estimator/tree/node_radius"

    brute = _doc(KNeighborsClassifier(n_neighbors=3, algorithm="brute").fit(X, y), X[:5], compact=False)
    assert brute["estimator"]["algorithm"] == "brute" and "tree" not in brute["estimator"]

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
    elif kind == "duplicated_rows":  # continuous values, each row four times, scattered
        X = np.repeat(rng.normal(size=(n // 4, 2)), 4, axis=0)[rng.permutation(n // 4 * 4)]
    else:  # one integer feature
        X = rng.integers(0, 10, size=(n, 1)).astype(np.float64)
    return X, rng.integers(0, 3, size=n)


# (metric, p, k): k = 1 and k = 20 too (scikit-learn sorts more than 15 neighbours by introsort)
TIE_SEARCHES = [("euclidean", 2, 4), ("manhattan", 2, 3), ("chebyshev", 2, 7), ("minkowski", 3, 5),
                ("euclidean", 2, 1), ("chebyshev", 2, 20)]


def _tied_at_k(est: Any, X: np.ndarray) -> int:
    """Queries whose k-th and (k+1)-th nearest distances are equal: which tied rows are kept is up to
    the search."""
    dist, _ = est.kneighbors(X, n_neighbors=est.n_neighbors + 1)
    return int(np.sum(dist[:, -1] == dist[:, -2]))


def _agree_on_every_row(est: Any, X: np.ndarray, roundtrip: Any) -> None:
    _, model = roundtrip(est, X[:5])
    assert_parity(est, X, model)
    # the neighbours themselves (what every output above is computed from): the same rows, and from
    # scikit-learn 1.9 (its introsort simultaneous_sort, which the format specifies) in the same order
    dist, ind = est.kneighbors(X)
    got_dist, got_ind = model.estimator._kneighbors(X)
    np.testing.assert_array_equal(np.sort(got_ind, axis=1), np.sort(ind, axis=1))
    if SKLEARN >= (1, 9):
        np.testing.assert_array_equal(got_ind, ind)
    np.testing.assert_allclose(got_dist, dist, rtol=0, atol=TOL)


@pytest.mark.parametrize("algorithm", ["brute", "kd_tree", "ball_tree"])
@pytest.mark.parametrize("kind", ["integers", "duplicated_rows", "one_feature"])
def test_tie_heavy_data_agree_on_every_row(kind: str, algorithm: str, roundtrip: Any) -> None:
    """Integer features, duplicated rows, one feature: many queries have several training rows at their
    k-th distance. The document carries the search scikit-learn fitted (``algorithm``, the tree's layout)
    and the scorer replays it for those rows: every row agrees, classifier (uniform and distance weights)
    and regressor, and the neighbours come in scikit-learn's order."""
    X, y = _tie_heavy(kind, 120, 0)
    queries = np.vstack([_tie_heavy(kind, 60, 1)[0], X[:30]])  # training rows too: distance-0 ties
    tied = 0
    for j, (metric, p, k) in enumerate(TIE_SEARCHES):
        for est in (KNeighborsClassifier(n_neighbors=k, weights="uniform", metric=metric, p=p,
                                         algorithm=algorithm, leaf_size=4),
                    KNeighborsClassifier(n_neighbors=k, weights="distance", metric=metric, p=p,
                                         algorithm=algorithm),
                    KNeighborsRegressor(n_neighbors=k, weights=WEIGHTS_CYCLE[j % 2], metric=metric, p=p,
                                        algorithm=algorithm, leaf_size=3)):
            est.fit(X, y if isinstance(est, KNeighborsClassifier) else y * 1.7)
            tied += _tied_at_k(est, queries)
            _agree_on_every_row(est, queries, roundtrip)
    assert tied >= 200  # the data does hold ties at the k-th distance (counted over the searches)


WEIGHTS_CYCLE = ("uniform", "distance")


@pytest.mark.parametrize("algorithm", ["brute", "kd_tree", "ball_tree"])
def test_ties_with_many_training_rows(algorithm: str, roundtrip: Any) -> None:
    """More than 256 training rows: several chunks for brute force, a deeper tree. scikit-learn's brute
    force keeps tied rows per OpenMP thread; the format specifies the one-thread answer (the exporter
    computes its test vectors so), so scikit-learn runs with one thread here."""
    X, y = _tie_heavy("integers", 700, 2)
    queries = np.vstack([_tie_heavy("integers", 80, 3)[0], X[:20]])
    with threadpool_limits(limits=1, user_api="openmp"):
        for est in (KNeighborsClassifier(n_neighbors=6, metric="manhattan", algorithm=algorithm),
                    KNeighborsRegressor(n_neighbors=9, weights="distance", algorithm=algorithm)):
            est.fit(X, y if isinstance(est, KNeighborsClassifier) else y * 0.3)
            assert _tied_at_k(est, queries) >= 50
            _agree_on_every_row(est, queries, roundtrip)
