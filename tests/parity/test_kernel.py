"""Parity of svc / svr / one_class_svm with scikit-learn's libsvm, and their failure modes."""

from __future__ import annotations

import copy
import json
import warnings
from typing import Any

import numpy as np
import pytest
from harness import TOL, assert_parity
from sklearn.datasets import load_digits, make_classification
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR, NuSVC, NuSVR, OneClassSVM

import scorer
from modelsync.export import UnsupportedEstimator, export_model

KERNELS = ["linear", "poly", "rbf", "sigmoid"]


def _scaled(ds: Any) -> tuple[np.ndarray, np.ndarray]:
    sc = StandardScaler().fit(ds.X_train)
    return sc.transform(ds.X_train), sc.transform(ds.X_test)


def _fit(est: Any, X: np.ndarray, y: np.ndarray | None = None) -> Any:
    with warnings.catch_warnings():  # SVC(probability=True) is deprecated in scikit-learn 1.9
        warnings.simplefilter("ignore", FutureWarning)
        return est.fit(X) if y is None else est.fit(X, y)


def _same(est: Any, model: Any, X: np.ndarray, methods: tuple[str, ...]) -> None:
    with warnings.catch_warnings():  # SVC(probability=True)'s predict_proba warns in scikit-learn 1.9
        warnings.simplefilter("ignore", FutureWarning)
        assert_parity(est, X, model, methods=methods)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("data", ["breast_cancer", "wine"])
def test_svc(kernel: str, data: str, datasets: Any, roundtrip: Any) -> None:
    ds = datasets(data)
    Xtr, Xte = _scaled(ds)
    compact = kernel in ("linear", "rbf")  # both encodings, across the matrix
    for shape in ("ovr", "ovo"):
        est = _fit(SVC(kernel=kernel, degree=2 if kernel == "poly" else 3, coef0=0.5,
                       decision_function_shape=shape), Xtr, ds.y_train)
        doc, model = roundtrip(est, Xte, compact=compact)
        assert doc["estimator"]["type"] == "svc"
        _same(est, model, Xte, ("predict", "decision_function"))
        assert model.estimator.supports("predict_proba") is False


@pytest.mark.parametrize("kernel", KERNELS)
def test_svc_probability(kernel: str, datasets: Any, roundtrip: Any) -> None:
    ds = datasets("wine")
    Xtr, Xte = _scaled(ds)
    for classes in (2, 3):
        keep = ds.y_train < classes
        est = _fit(SVC(kernel=kernel, probability=True, random_state=0), Xtr[keep], ds.y_train[keep])
        _, model = roundtrip(est, Xte, compact=classes == 2)
        _same(est, model, Xte, ("predict", "decision_function", "predict_proba"))


def test_svc_probability_many_classes(roundtrip: Any) -> None:
    """Ten classes: 45 pairwise sigmoids and the coupling solver running many iterations."""
    X, y = load_digits(return_X_y=True)
    X = X[:700] / 16.0
    y = y[:700]
    est = _fit(SVC(kernel="rbf", gamma="auto", probability=True, random_state=0), X[:600], y[:600])
    _, model = roundtrip(est, X[600:])
    _same(est, model, X[600:], ("predict", "decision_function", "predict_proba"))
    np.testing.assert_allclose(model.predict_proba(X[600:]).sum(axis=1), 1.0, atol=1e-6)


def test_svc_break_ties_and_string_labels(roundtrip: Any) -> None:
    X, y = make_classification(n_samples=260, n_features=6, n_informative=4, n_classes=5,
                               n_clusters_per_class=1, random_state=3)
    labels = np.array(["ant", "bee", "cat", "dog", "eel"], dtype=object)[y]
    for break_ties in (False, True):
        est = _fit(SVC(kernel="rbf", C=3.0, break_ties=break_ties), X[:200], labels[:200])
        _, model = roundtrip(est, X[200:])
        _same(est, model, X[200:], ("predict", "decision_function"))
        assert model.classes.tolist() == ["ant", "bee", "cat", "dog", "eel"]


def test_svc_gamma_variants_and_nu_svc(datasets: Any, roundtrip: Any) -> None:
    ds = datasets("classification")
    for est in (SVC(kernel="rbf", gamma="auto"), SVC(kernel="rbf", gamma=0.05),
                SVC(kernel="poly", degree=4, gamma=0.1, coef0=1.0), NuSVC(kernel="rbf", nu=0.3),
                SVC(kernel="linear", decision_function_shape="ovo", C=0.1)):
        _fit(est, ds.X_train, ds.y_train)
        doc, model = roundtrip(est, ds.X_test, compact=False)
        assert doc["estimator"]["gamma"] == pytest.approx(est._gamma)
        _same(est, model, ds.X_test, ("predict", "decision_function"))


@pytest.mark.parametrize("kernel", KERNELS)
def test_svr(kernel: str, datasets: Any, roundtrip: Any) -> None:
    ds = datasets("diabetes")
    Xtr, Xte = _scaled(ds)
    y_scale = ds.y_train.std()
    est = _fit(SVR(kernel=kernel, C=10.0, epsilon=0.1, degree=2), Xtr, ds.y_train / y_scale)
    doc, model = roundtrip(est, Xte, compact=kernel != "poly")
    assert doc["estimator"]["type"] == "svr"
    _same(est, model, Xte, ("predict",))


def test_nu_svr(datasets: Any, roundtrip: Any) -> None:
    ds = datasets("regression")
    est = _fit(NuSVR(kernel="rbf", C=50.0, nu=0.4), ds.X_train, ds.y_train / 100.0)
    _, model = roundtrip(est, ds.X_test)
    _same(est, model, ds.X_test, ("predict",))


@pytest.mark.parametrize("kernel", KERNELS)
def test_one_class_svm(kernel: str, datasets: Any, roundtrip: Any) -> None:
    ds = datasets("wine")
    Xtr, Xte = _scaled(ds)
    coef0 = 0.1 if kernel == "sigmoid" else 0.0
    est = _fit(OneClassSVM(kernel=kernel, nu=0.2, gamma="scale", coef0=coef0), Xtr)
    doc, model = roundtrip(est, Xte, compact=kernel in ("rbf", "poly"))
    assert doc["output"]["task"] == "outlier_detection"
    _same(est, model, Xte, ("predict", "decision_function"))
    np.testing.assert_allclose(model.estimator.score_samples(Xte), est.score_samples(Xte), rtol=0, atol=TOL)
    assert set(model.predict(Xte).tolist()) <= {-1, 1}


def test_row_blocks_and_sparse_fit(roundtrip: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernel matrices computed in row blocks; a model fitted on a sparse matrix is written dense."""
    import scipy.sparse as sp

    import scorer.models.kernel as impl

    X, y = make_classification(n_samples=500, n_features=8, n_informative=5, n_classes=3, random_state=2)
    est = _fit(SVC(kernel="rbf", probability=True, random_state=0), sp.csr_matrix(X[:300]), y[:300])
    _, model = roundtrip(est, X[300:320])
    monkeypatch.setattr(impl, "_CHUNK_ELEMENTS", 1000)  # a few rows per block
    _same(est, model, X[300:], ("predict", "decision_function", "predict_proba"))


# -- unhappy paths ----------------------------------------------------------------------------------

def _doc(est: Any, X: np.ndarray, compact: bool = True) -> dict[str, Any]:
    names = [f"x{i}" for i in range(X.shape[1])]
    return export_model(est, X, name="svm", compact=compact, feature_names=names)


@pytest.mark.parametrize("kernel", ["precomputed", "callable"])
def test_unsupported_kernel(kernel: str) -> None:
    X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    if kernel == "precomputed":
        est, Xs = SVC(kernel="precomputed").fit(X @ X.T, y), X @ X.T
    else:
        est, Xs = SVC(kernel=lambda a, b: a @ b.T).fit(X, y), X
    with pytest.raises(UnsupportedEstimator, match="kernel"):
        _doc(est, Xs)


@pytest.fixture(scope="module")
def svc_doc() -> tuple[dict[str, Any], np.ndarray]:
    X, y = make_classification(n_samples=120, n_features=5, n_informative=3, n_classes=3, random_state=0)
    est = _fit(SVC(kernel="rbf", probability=True, random_state=0), X, y)
    return _doc(est, X[:10], compact=False), X


def _pointer(doc: dict[str, Any]) -> str:
    with pytest.raises(scorer.InvalidModel) as info:
        scorer.load_model(json.dumps(doc))
    return info.value.problems[0][0]


def test_corrupted_svc_nodes(svc_doc: tuple[dict[str, Any], np.ndarray]) -> None:
    doc, _ = svc_doc
    node = doc["estimator"]

    bad = copy.deepcopy(doc)
    bad["estimator"]["n_support"][1] += 1
    assert _pointer(bad) == "/estimator/n_support"

    bad = copy.deepcopy(doc)
    bad["estimator"]["n_support"][2] = -1 - node["n_support"][0] - node["n_support"][1]
    assert _pointer(bad) == "/estimator/n_support/2"

    bad = copy.deepcopy(doc)
    bad["estimator"]["dual_coef"].pop()
    assert _pointer(bad) == "/estimator/dual_coef"

    bad = copy.deepcopy(doc)
    bad["estimator"]["intercept"] = bad["estimator"]["intercept"][:2]
    assert _pointer(bad) == "/estimator/intercept"

    bad = copy.deepcopy(doc)
    bad["estimator"]["kernel"] = "laplacian"
    assert _pointer(bad) == "/estimator/kernel"

    bad = copy.deepcopy(doc)
    bad["estimator"]["support_vectors"] = [row[:-1] for row in node["support_vectors"]]
    assert _pointer(bad) == "/estimator/support_vectors"

    bad = copy.deepcopy(doc)
    bad["estimator"]["prob_b"] = node["prob_b"][:1]
    assert _pointer(bad) == "/estimator/prob_b"

    bad = copy.deepcopy(doc)
    bad["estimator"]["gamma"] = "scale"
    assert _pointer(bad) == "/estimator/gamma"

    bad = copy.deepcopy(doc)
    bad["estimator"]["support_vectors"] = scorer.encode_array(
        np.full((len(node["support_vectors"]), 5), np.nan))
    assert _pointer(bad) == "/estimator/support_vectors"


def test_svc_rejects_nan_input(svc_doc: tuple[dict[str, Any], np.ndarray]) -> None:
    doc, X = svc_doc
    model = scorer.load_model(doc)
    rows = X[:3].copy()
    rows[1, 2] = np.nan
    with pytest.raises(scorer.InvalidInput, match="row 1"):
        model.predict(rows)
