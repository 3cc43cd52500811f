"""Parity of k_means (KMeans, MiniBatchKMeans) with scikit-learn, and its failure modes."""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pytest
from harness import assert_parity
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.datasets import load_digits, make_blobs

import scorer
from modelsync.export import UnsupportedEstimator, export_model


def _same(est: Any, model: Any, X: np.ndarray) -> None:
    assert_parity(est, X, model)


@pytest.mark.parametrize("compact", [True, False])
@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
def test_kmeans_blobs(compact: bool, algorithm: str, roundtrip: Any) -> None:
    X, _ = make_blobs(n_samples=400, n_features=5, centers=6, cluster_std=2.5, random_state=0)
    est = KMeans(n_clusters=6, n_init=3, algorithm=algorithm, random_state=0).fit(X[:300])
    doc, model = roundtrip(est, X[300:], compact=compact)
    assert doc["estimator"]["type"] == "k_means"
    assert doc["output"]["task"] == "clustering"
    _same(est, model, X[300:])


@pytest.mark.parametrize("data", ["iris", "wine", "diabetes"])
def test_kmeans_datasets(data: str, datasets: Any, roundtrip: Any) -> None:
    ds = datasets(data)
    est = KMeans(n_clusters=4, n_init=2, random_state=1).fit(ds.X_train)
    _, model = roundtrip(est, ds.X_test)
    _same(est, model, ds.X_test)
    _same(est, model, ds.X_train)


def test_kmeans_digits_many_clusters(roundtrip: Any) -> None:
    X, _ = load_digits(return_X_y=True)
    est = KMeans(n_clusters=12, n_init=1, random_state=0).fit(X[:1200])
    _, model = roundtrip(est, X[1200:1300])
    _same(est, model, X[1200:])


def test_minibatch_kmeans(roundtrip: Any) -> None:
    X, _ = make_blobs(n_samples=600, n_features=3, centers=4, random_state=2)
    est = MiniBatchKMeans(n_clusters=5, n_init=2, batch_size=64, random_state=0).fit(X[:500])
    doc, model = roundtrip(est, X[500:], compact=False)
    assert doc["output"]["task"] == "clustering"
    _same(est, model, X[500:])


def test_equidistant_point_goes_to_lowest_centre(roundtrip: Any) -> None:
    X = np.array([[0.0, 0.0], [0.0, 0.2], [4.0, 0.0], [4.0, 0.2]])
    est = KMeans(n_clusters=2, n_init=1, random_state=0).fit(X)
    query = np.array([[2.0, 0.1], [2.0, 5.0]])
    assert np.allclose(est.transform(query)[:, 0], est.transform(query)[:, 1])
    _, model = roundtrip(est, query)
    _same(est, model, query)


# -- unhappy paths ----------------------------------------------------------------------------------

def _doc(est: Any, X: np.ndarray, compact: bool = False) -> dict[str, Any]:
    names = [f"x{i}" for i in range(X.shape[1])]
    return export_model(est, X, name="km", compact=compact, feature_names=names)


def test_unsupported_float32_centres() -> None:
    X, _ = make_blobs(n_samples=50, n_features=2, centers=2, random_state=0)
    est = KMeans(n_clusters=2, n_init=1, random_state=0).fit(X.astype(np.float32))
    with pytest.raises(UnsupportedEstimator, match=r"cluster_centers_\.dtype"):
        _doc(est, X)


def _pointer(doc: dict[str, Any]) -> str:
    with pytest.raises(scorer.InvalidModel) as info:
        scorer.load_model(json.dumps(doc))
    return info.value.problems[0][0]


def test_corrupted_nodes() -> None:
    X, _ = make_blobs(n_samples=50, n_features=3, centers=2, random_state=0)
    doc = _doc(KMeans(n_clusters=3, n_init=1, random_state=0).fit(X), X[:5])

    bad = copy.deepcopy(doc)
    bad["estimator"]["cluster_centers"] = [row[:2] for row in bad["estimator"]["cluster_centers"]]
    assert _pointer(bad) == "/estimator/cluster_centers"

    bad = copy.deepcopy(doc)
    bad["estimator"]["cluster_centers"][1][1] = "far"
    assert _pointer(bad) == "/estimator/cluster_centers"

    bad = copy.deepcopy(doc)
    bad["estimator"]["cluster_centers"] = scorer.encode_array(np.array([[0.0, np.nan, 1.0]]))
    assert _pointer(bad) == "/estimator/cluster_centers"

    bad = copy.deepcopy(doc)
    del bad["estimator"]["n_features_in"]
    assert _pointer(bad) == "/estimator/n_features_in"


def test_rejects_nan_input() -> None:
    X, _ = make_blobs(n_samples=50, n_features=3, centers=2, random_state=0)
    model = scorer.load_model(_doc(KMeans(n_clusters=2, n_init=1, random_state=0).fit(X), X[:5]))
    with pytest.raises(scorer.InvalidInput, match="row 1"):
        model.transform([[0.0, 0.0, 0.0], [None, 1.0, 2.0]])
