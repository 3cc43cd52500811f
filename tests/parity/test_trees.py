"""Parity of decision trees, forests, gradient boosting and isolation forests with scikit-learn.

Every model is exported, serialised to JSON text, reloaded and compared with scikit-learn on held-out
rows: labels, probabilities and regression values exactly (boosting probabilities too).
The plain fit-export-compare cases are in the case table (tests/parity/cases.py); this file holds the
rest. Each comparison runs through every layout of the forest engine, scorer/models/_forest (bit-vector,
level tables, explicit breadth-first), in small chunks (to cross chunk boundaries) and row by row.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from harness import EXACT, assert_parity, needs_sklearn
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_iris,
    load_wine,
    make_classification,
    make_regression,
)
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import (
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    IsolationForest,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression
from sklearn.tree import DecisionTreeClassifier

import scorer
from modelsync.export import UnsupportedEstimator, export_model
from scorer.models import _forest as F

# -- helpers ---------------------------------------------------------------------------------------


def split(X: np.ndarray, y: np.ndarray | None, n_test: int = 40, seed: int = 0) -> tuple[Any, ...]:
    order = np.random.RandomState(seed).permutation(len(X))
    te, tr = order[:n_test], order[n_test:]
    if y is None:
        return X[tr], X[te], None, None
    return X[tr], X[te], y[tr], y[te]


def with_nans(X: np.ndarray, frac: float = 0.1, seed: int = 0) -> np.ndarray:
    X = np.array(X, dtype=np.float64)
    X[np.random.RandomState(seed).rand(*X.shape) < frac] = np.nan
    return X


def export_text(est: Any, X_sample: np.ndarray, compact: bool = True, **kw: Any) -> str:
    names = [f"x{i}" for i in range(X_sample.shape[1])]
    doc = export_model(est, X_sample, name="parity", compact=compact, feature_names=names, **kw)
    return json.dumps(doc)


def check_roundtrip(
    est: Any,
    X_train: np.ndarray,
    X_test: np.ndarray,
    forest_layouts: Callable[[str], Iterator[scorer.Model]],
    tol: float = EXACT,
) -> dict[str, Any]:
    """Both array encodings, validate_model, and every layout."""
    doc: dict[str, Any] = {}
    for compact in (True, False):
        text = export_text(est, X_train[:20], compact=compact)
        scorer.validate_model(text)
        doc = json.loads(text)
        for model in forest_layouts(text):
            assert_parity(est, X_test, model, tol)
    return doc


# -- data ------------------------------------------------------------------------------------------


def iris() -> tuple[Any, ...]:
    X, y = load_iris(return_X_y=True)
    return split(X, y)


def wine() -> tuple[Any, ...]:
    X, y = load_wine(return_X_y=True)
    return split(X, y)


def cancer() -> tuple[Any, ...]:
    X, y = load_breast_cancer(return_X_y=True)
    return split(X, y)


def diabetes() -> tuple[Any, ...]:
    X, y = load_diabetes(return_X_y=True)
    return split(X, y)


def classification_nan() -> tuple[Any, ...]:
    X, y = make_classification(n_samples=300, n_features=6, n_informative=4, n_classes=3, random_state=0)
    return split(with_nans(X), y)


def regression_multi() -> tuple[Any, ...]:
    X, y = make_regression(n_samples=200, n_features=5, n_targets=3, noise=1.0, random_state=2)
    return split(X, y)


# -- decision trees and forests ----------------------------------------------------------------------

def test_string_labels_and_binary(forest_layouts: Callable[[str], Iterator[scorer.Model]]) -> None:
    X_train, X_test, y_train, _ = cancer()
    labels = np.array(["benign", "malignant"], dtype=object)[y_train]
    est = RandomForestClassifier(n_estimators=4, max_depth=6, random_state=0).fit(X_train, labels)
    check_roundtrip(est, X_train, X_test, forest_layouts)


@needs_sklearn((1, 6), "ExtraTrees fitted on NaN")
def test_regressor_with_nans(forest_layouts: Callable[[str], Iterator[scorer.Model]]) -> None:
    X_train, X_test, y_train, _ = diabetes()
    X_train, X_test = with_nans(X_train, 0.15, 1), with_nans(X_test, 0.15, 2)
    for est in (
        RandomForestRegressor(n_estimators=4, random_state=0),
        ExtraTreesRegressor(n_estimators=3, random_state=0),
    ):
        est.fit(X_train, y_train)
        check_roundtrip(est, X_train, X_test, forest_layouts)


def test_nan_at_predict_for_a_tree_fitted_without_nan(
    forest_layouts: Callable[[str], Iterator[scorer.Model]],
) -> None:
    """scikit-learn still routes NaN (to the child that saw more samples): so must we."""
    X_train, X_test, y_train, _ = wine()
    est = RandomForestClassifier(n_estimators=4, random_state=0).fit(X_train, y_train)
    check_roundtrip(est, X_train, with_nans(X_test, 0.3, 5), forest_layouts)


def test_multi_output_classifier(forest_layouts: Callable[[str], Iterator[scorer.Model]]) -> None:
    X, y = load_iris(return_X_y=True)
    Y = np.c_[y, (y + 1) % 3]  # same number of classes per output: the envelope's test vectors hold it
    X_train, X_test, Y_train, _ = split(X, Y)
    for est in (
        DecisionTreeClassifier(random_state=0),
        RandomForestClassifier(n_estimators=3, random_state=0),
    ):
        est.fit(X_train, Y_train)
        check_roundtrip(est, X_train, X_test, forest_layouts)


def test_multi_output_classifier_ragged_classes() -> None:
    """Outputs with different numbers of classes: predict_proba is a list of per-output arrays."""
    from modelsync.export import ExportContext, convert

    X, y = load_iris(return_X_y=True)
    Y = np.c_[y, y == 2, np.array(["a", "b", "c", "d"])[np.arange(len(y)) % 4]].astype(object)
    Y[:, 1] = Y[:, 1].astype(bool).astype(int)
    X_train, X_test, Y_train, _ = split(X, Y)
    est = RandomForestClassifier(n_estimators=3, random_state=0).fit(X_train, Y_train.astype(str))
    node = json.loads(json.dumps(convert(est, ExportContext())))
    model = scorer.load_estimator(node, scorer.LoadContext("/estimator"))
    got, want = model.predict_proba(X_test), est.predict_proba(X_test)
    assert [g.shape for g in got] == [w.shape for w in want]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    np.testing.assert_array_equal(model.predict(X_test), est.predict(X_test))


# -- gradient boosting -----------------------------------------------------------------------------

def test_gradient_boosting_early_stopping(forest_layouts: Callable[[str], Iterator[scorer.Model]]) -> None:
    X, y = make_regression(n_samples=300, n_features=6, noise=20.0, random_state=3)
    X_train, X_test, y_train, _ = split(X, y)
    est = GradientBoostingRegressor(
        n_estimators=200, n_iter_no_change=3, validation_fraction=0.2, random_state=0
    ).fit(X_train, y_train)
    assert est.n_estimators_ < 200
    check_roundtrip(est, X_train, X_test, forest_layouts)


def test_gradient_boosting_unsupported_init() -> None:
    X_train, _, y_train, _ = diabetes()
    est = GradientBoostingRegressor(n_estimators=3, init=LinearRegression()).fit(X_train, y_train)
    with pytest.raises(UnsupportedEstimator, match="init"):
        export_model(est, X_train[:5], name="x", feature_names=[f"x{i}" for i in range(X_train.shape[1])])
    X_train, _, y_train, _ = iris()
    est = GradientBoostingClassifier(n_estimators=3, init=DummyClassifier(strategy="uniform")).fit(
        X_train, y_train
    )
    with pytest.raises(UnsupportedEstimator, match="init"):
        export_model(est, X_train[:5], name="x", feature_names=[f"x{i}" for i in range(X_train.shape[1])])


# -- isolation forest --------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # scikit-learn's own cast
@needs_sklearn((1, 6), "IsolationForest scoring NaN")
def test_isolation_forest_accepts_infinities(forest_layouts: Callable[[str], Iterator[scorer.Model]]) -> None:
    X_train, X_test, _, _ = iris()
    est = IsolationForest(n_estimators=5, random_state=0).fit(X_train)
    X_test = X_test.copy()
    X_test[0, 0], X_test[1, 2], X_test[2, 1], X_test[3, 3] = np.inf, -np.inf, 1e300, np.nan
    for model in forest_layouts(export_text(est, X_train[:20])):
        np.testing.assert_allclose(
            model.decision_function(X_test), est.decision_function(X_test), rtol=0, atol=1e-12
        )
        np.testing.assert_array_equal(model.predict(X_test), est.predict(X_test))


# -- input checks, as scikit-learn's ---------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_inputs_refused_like_sklearn() -> None:
    X_train, X_test, y_train, _ = diabetes()
    gb = GradientBoostingRegressor(n_estimators=3, random_state=0).fit(X_train, y_train)
    rf = RandomForestRegressor(n_estimators=3, random_state=0).fit(X_train, y_train)
    for est, bad in ((gb, np.nan), (gb, np.inf), (rf, np.inf), (rf, -1e39), (gb, 3.5e38)):
        model = scorer.load_model(export_text(est, X_train[:5]))
        X = X_test[:3].copy()
        X[1, 2] = bad
        with pytest.raises(ValueError):
            est.predict(X)
        with pytest.raises(scorer.InvalidInput, match="row 1"):
            model.predict(X)
    # the largest values that still round to a finite float32 are accepted, as by scikit-learn
    model = scorer.load_model(export_text(rf, X_train[:5]))
    X = X_test[:3].copy()
    X[0, 0], X[1, 1] = F.FLOAT32_OVERFLOW * (1 - 1e-16), -3.4e38
    np.testing.assert_array_equal(model.predict(X), rf.predict(X))


def test_float32_rounding_at_thresholds(forest_layouts: Callable[[str], Iterator[scorer.Model]]) -> None:
    """Inputs a hair either side of every threshold, in float64 and float32 terms."""
    X, y = make_classification(n_samples=200, n_features=4, random_state=0)
    est = RandomForestClassifier(n_estimators=3, max_depth=4, random_state=0).fit(X, y)
    thr = np.concatenate([e.tree_.threshold[e.tree_.children_left >= 0] for e in est.estimators_])
    t32 = thr.astype(np.float32)
    near = np.concatenate(
        [
            thr,
            np.nextafter(thr, np.inf),
            np.nextafter(thr, -np.inf),
            t32.astype(np.float64),
            np.nextafter(t32, np.float32(np.inf)).astype(np.float64),
            (t32.astype(np.float64) + np.nextafter(t32, np.float32(np.inf))) / 2,
        ]
    )
    X_test = np.tile(near[:, None], (1, 4))
    for model in forest_layouts(export_text(est, X[:10])):
        np.testing.assert_array_equal(model.predict_proba(X_test), est.predict_proba(X_test))


def test_float32_equivalent_thresholds() -> None:
    rng = np.random.default_rng(0)
    base = rng.standard_normal(20000).astype(np.float32)
    thr = np.concatenate(
        [
            (base[:-1].astype(np.float64) + base[1:]) / 2,
            rng.standard_normal(500) * 1e30,
            [
                0.0,
                -0.0,
                np.inf,
                -np.inf,
                F.FLOAT32_MAX,
                -F.FLOAT32_MAX,
                1e39,
                -1e39,
                1e-46,
                5e-324,
                F.FLOAT32_OVERFLOW,
                -F.FLOAT32_OVERFLOW,
            ],
        ]
    )
    equiv = F.float32_equivalent(thr)
    with np.errstate(over="ignore", invalid="ignore"):
        t32 = thr.astype(np.float32).astype(np.float64)
        mids = (t32 + np.nextafter(thr.astype(np.float32), np.float32(np.inf)).astype(np.float64)) / 2
    with np.errstate(over="ignore", invalid="ignore"):
        for x in (
            thr,
            np.nextafter(thr, np.inf),
            np.nextafter(thr, -np.inf),
            t32,
            mids,
            np.nextafter(mids, np.inf),
            np.nextafter(mids, -np.inf),
            equiv,
            np.nextafter(equiv, np.inf),
        ):
            x = np.where(np.isnan(x), 0.0, x)
            np.testing.assert_array_equal(x <= equiv, x.astype(np.float32) <= thr)


def test_sequential_sum_is_tree_order() -> None:
    rng = np.random.default_rng(0)
    for trees, width in ((2, 1), (9, 1), (100, 1), (100, 2), (130, 7), (64, 500)):
        a = rng.standard_normal((trees, width)) * 10.0 ** rng.integers(-9, 9, (trees, width))
        want = a[0].copy()
        for i in range(1, trees):
            want += a[i]
        np.testing.assert_array_equal(F.sequential_sum(a), want)


# -- documents: size, encodings, corruption ----------------------------------------------------------


@pytest.fixture(scope="module")
def forest_doc() -> dict[str, Any]:
    X_train, _, y_train, _ = iris()
    est = RandomForestClassifier(n_estimators=3, max_depth=4, random_state=0).fit(X_train, y_train)
    return json.loads(export_text(est, X_train[:10], compact=False))


def corrupt(doc: dict[str, Any], tree: int, field: str, index: int | None, value: Any) -> dict[str, Any]:
    bad = copy.deepcopy(doc)
    node = bad["estimator"]["trees"][tree]
    if index is None:
        node[field] = value
    else:
        node[field][index] = value
    return bad


def _first_split(doc: dict[str, Any], tree: int = 0) -> int:
    left = doc["estimator"]["trees"][tree]["children_left"]
    return next(i for i, v in enumerate(left) if v >= 0 and i > 0)


@pytest.mark.parametrize(
    "field, make_value, why",
    [
        ("children_left", lambda n, i: n + 5, "out of range"),
        ("children_left", lambda n, i: -7, "out of range"),
        ("children_right", lambda n, i: 0, "greater than its parent"),  # a cycle back to the root
        ("children_left", lambda n, i: i, "greater than its parent"),  # a self loop
        ("feature", lambda n, i: 4, "out of range"),
        ("feature", lambda n, i: -1, "out of range"),
        ("missing_go_to_left", lambda n, i: 2, "0 or 1"),
    ],
)
def test_corrupted_tree_structure(
    forest_doc: dict[str, Any], field: str, make_value: Callable[[int, int], Any], why: str
) -> None:
    i = _first_split(forest_doc, 1)
    n = len(forest_doc["estimator"]["trees"][1]["children_left"])
    bad = corrupt(forest_doc, 1, field, i, make_value(n, i))
    with pytest.raises(scorer.InvalidModel) as exc:
        scorer.load_model(bad)
    pointer, message = exc.value.problems[0]
    assert pointer == f"/estimator/trees/1/{field}/{i}", exc.value.problems
    assert why in message


def test_corrupted_two_parents_and_orphans(forest_doc: dict[str, Any]) -> None:
    tree = forest_doc["estimator"]["trees"][0]
    left, right = tree["children_left"], tree["children_right"]
    i = _first_split(forest_doc)  # point its left child at its right child: that node has two parents
    bad = corrupt(forest_doc, 0, "children_left", i, right[i])
    with pytest.raises(scorer.InvalidModel) as exc:
        scorer.load_model(bad)
    assert exc.value.problems[0][0].startswith("/estimator/trees/0/children_")
    assert "more than one parent" in exc.value.problems[0][1]
    # a split turned into a half-leaf
    bad = corrupt(forest_doc, 0, "children_right", i, -1)
    with pytest.raises(scorer.InvalidModel) as exc:
        scorer.load_model(bad)
    assert exc.value.problems[0][0] == f"/estimator/trees/0/children_right/{i}"
    # a split turned into a leaf: its children become unreachable
    bad = corrupt(corrupt(forest_doc, 0, "children_left", i, -1), 0, "children_right", i, -1)
    with pytest.raises(scorer.InvalidModel) as exc:
        scorer.load_model(bad)
    assert exc.value.problems[0][0] == f"/estimator/trees/0/children_left/{left[i]}"
    assert "not reachable" in exc.value.problems[0][1]


def test_corrupted_shapes_and_values(forest_doc: dict[str, Any]) -> None:
    tree = forest_doc["estimator"]["trees"][2]
    cases = [
        (corrupt(forest_doc, 2, "value", None, tree["value"][:-1]), "/estimator/trees/2/value"),
        (
            corrupt(forest_doc, 2, "value", None, [[v[0][:2]] for v in tree["value"]]),
            "/estimator/trees/2/value",
        ),
        (corrupt(forest_doc, 2, "threshold", None, tree["threshold"][:-1]), "/estimator/trees/2/threshold"),
        (corrupt(forest_doc, 2, "feature", None, "zero"), "/estimator/trees/2/feature"),
        (corrupt(forest_doc, 2, "children_left", None, []), "/estimator/trees/2/children_left"),
    ]
    nan_thr = copy.deepcopy(forest_doc)
    thr = np.array(tree["threshold"])
    thr[_first_split(forest_doc, 2)] = np.nan
    nan_thr["estimator"]["trees"][2]["threshold"] = scorer.encode_array(thr)
    cases.append((nan_thr, f"/estimator/trees/2/threshold/{_first_split(forest_doc, 2)}"))
    no_trees = copy.deepcopy(forest_doc)
    no_trees["estimator"]["trees"] = []
    cases.append((no_trees, "/estimator/trees"))
    not_a_tree = copy.deepcopy(forest_doc)
    not_a_tree["estimator"]["trees"][1] = [1, 2]
    cases.append((not_a_tree, "/estimator/trees/1"))
    for bad, pointer in cases:
        with pytest.raises(scorer.InvalidModel) as exc:
            scorer.load_model(bad)
        assert exc.value.problems[0][0] == pointer, exc.value.problems


def test_corrupted_boosting_documents() -> None:
    X_train, _, y_train, _ = iris()
    est = GradientBoostingClassifier(n_estimators=3, random_state=0).fit(X_train, y_train)
    doc = json.loads(export_text(est, X_train[:5], compact=False))
    bad = copy.deepcopy(doc)
    bad["estimator"]["init"] = [0.0, 1.0]
    with pytest.raises(scorer.InvalidModel) as exc:
        scorer.load_model(bad)
    assert exc.value.problems[0][0] == "/estimator/init"
    bad = copy.deepcopy(doc)
    bad["estimator"]["trees"] = bad["estimator"]["trees"][:-1]
    with pytest.raises(scorer.InvalidModel) as exc:
        scorer.load_model(bad)
    assert exc.value.problems[0][0] == "/estimator/trees"
    bad = copy.deepcopy(doc)
    bad["estimator"]["loss"] = "hinge"
    with pytest.raises(scorer.InvalidModel) as exc:
        scorer.load_model(bad)
    assert exc.value.problems[0][0] == "/estimator/loss"


def test_deep_degenerate_tree_is_refused_without_recursion() -> None:
    """A hostile chain of 10,000 splits: an InvalidModel, never a RecursionError."""
    n = 2 * F.MAX_TREE_DEPTH + 3
    left = np.full(n, -1)
    right = np.full(n, -1)
    splits = np.arange(0, n - 1, 2)
    left[splits] = splits + 1
    right[splits] = splits + 2
    node = {
        "type": "decision_tree_regressor",
        "n_features_in": 1,
        "tree": {
            "children_left": left.tolist(),
            "children_right": right.tolist(),
            "feature": [0] * n,
            "threshold": [0.5] * n,
            "missing_go_to_left": [1] * n,
            "value": [[1.0]] * n,
        },
    }
    with pytest.raises(scorer.InvalidModel) as exc:
        scorer.load_estimator(node, scorer.LoadContext("/estimator"))
    assert "deeper than" in exc.value.problems[0][1]


def test_compact_documents_are_smaller() -> None:
    X_train, _, y_train, _ = cancer()
    est = RandomForestClassifier(n_estimators=10, random_state=0).fit(X_train, y_train)
    compact = export_text(est, X_train[:5])
    plain = export_text(est, X_train[:5], compact=False)
    zipped = export_text(est, X_train[:5], compress=True)
    assert len(zipped) < len(compact) < len(plain)
    for text in (compact, plain, zipped):
        model = scorer.load_model(text)
        np.testing.assert_array_equal(model.predict_proba(X_train), est.predict_proba(X_train))
