"""Parity of HistGradientBoostingClassifier / Regressor with scikit-learn.

Labels, raw predictions (decision_function, regression with the identity link) and probabilities exactly;
log-link predictions within 1e-12. Numeric, NaN, integer-coded categorical and string categorical (pandas
``category`` columns, ``categorical_features="from_dtype"``) inputs, unknown categories at predict time,
every layout of the forest engine (scorer/models/_forest), batches across chunk boundaries and single rows.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from harness import assert_parity, needs_sklearn
from sklearn.datasets import load_diabetes, load_iris, load_wine, make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

import scorer
from modelsync.export import UnsupportedEstimator, export_model


def split(X: Any, y: np.ndarray, n_test: int = 40, seed: int = 0) -> tuple[Any, ...]:
    order = np.random.RandomState(seed).permutation(len(y))
    te, tr = order[:n_test], order[n_test:]
    if hasattr(X, "iloc"):
        return X.iloc[tr].reset_index(drop=True), X.iloc[te].reset_index(drop=True), y[tr], y[te]
    return X[tr], X[te], y[tr], y[te]


def export_text(est: Any, X_sample: Any, compact: bool = True) -> str:
    names = None if hasattr(X_sample, "columns") else [f"x{i}" for i in range(X_sample.shape[1])]
    return json.dumps(export_model(est, X_sample, name="hgb", compact=compact, feature_names=names))


def rows_of(X: Any) -> Any:
    """What a JSON client sends: a list of rows with None for missing values."""
    values = X.to_numpy(dtype=object) if hasattr(X, "to_numpy") else np.asarray(X, dtype=object)
    return [[None if isinstance(v, float) and v != v else v for v in row] for row in values.tolist()]


def check_forms(est: Any, X_test: Any, model: scorer.Model) -> None:
    """What a JSON client sends (rows with None) and single rows score exactly as the batch."""
    rows = rows_of(X_test)
    for m in model.methods:
        batch = getattr(model, m)(X_test)
        np.testing.assert_array_equal(getattr(model, m)(rows), batch, err_msg=m)
        singles = [getattr(model, m)([row]) for row in rows[:8]]
        rest = getattr(model, m)(rows[8:])
        np.testing.assert_array_equal(np.concatenate([*singles, rest]), batch, err_msg=m)


def check(est: Any, X_train: Any, X_test: Any, forest_layouts: Callable[[str], Iterator[scorer.Model]],
          tol: float = 1e-12) -> None:
    """Labels, raw predictions and probabilities exactly; the log link's predictions within ``tol``."""
    log_link = getattr(est, "loss", "") in ("poisson", "gamma")
    sample = X_train.iloc[:25] if hasattr(X_train, "iloc") else X_train[:25]
    for compact in (True, False):
        text = export_text(est, sample, compact)
        scorer.validate_model(text)
        for model in forest_layouts(text):
            assert_parity(est, X_test, model, {"predict": tol} if log_link else 0.0)
            check_forms(est, X_test, model)


def with_nans(X: np.ndarray, frac: float, seed: int) -> np.ndarray:
    X = np.array(X, dtype=np.float64)
    X[np.random.RandomState(seed).rand(*X.shape) < frac] = np.nan
    return X


# -- numeric inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["binary", "multiclass", "nan", "nan-shallow", "deep", "class_weight"])
def test_classifier(case: str, forest_layouts: Callable[[str], Iterator[scorer.Model]]) -> None:
    if case == "multiclass":
        X, y = load_wine(return_X_y=True)
    else:
        X, y = make_classification(n_samples=400, n_features=8, n_informative=5, random_state=1)
    if case.startswith("nan"):
        X = with_nans(X, 0.15, 0)
    X_train, X_test, y_train, _ = split(X, y)
    params: dict[str, Any] = {"max_iter": 15, "random_state": 0, "early_stopping": False}
    if case == "deep":  # more than 64 leaves: the traversal layouts
        params.update(max_leaf_nodes=90, min_samples_leaf=2, max_iter=4)
    if case == "class_weight":
        params.update(class_weight="balanced")
    if case == "nan-shallow":  # depth <= 3: the single-row byte lookup tables, with missing values
        params.update(max_depth=3)
    est = HistGradientBoostingClassifier(**params).fit(X_train, y_train)
    check(est, X_train, X_test, forest_layouts)


def test_string_labels_and_nan_only_in_test(forest_layouts: Callable[[str], Iterator[scorer.Model]]) -> None:
    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    X_train, X_test, y_train, _ = split(X, labels)
    est = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(X_train, y_train)
    check(est, X_train, with_nans(X_test, 0.3, 4), forest_layouts)


@pytest.mark.parametrize("loss", ["squared_error", "absolute_error", "quantile", "poisson", "gamma"])
def test_regressor(loss: str, forest_layouts: Callable[[str], Iterator[scorer.Model]]) -> None:
    X, y = load_diabetes(return_X_y=True)
    X = with_nans(X, 0.05, 1)
    if loss in ("poisson", "gamma"):
        y = y / 50.0 + 0.5
    X_train, X_test, y_train, _ = split(X, y)
    est = HistGradientBoostingRegressor(
        loss=loss, quantile=0.8 if loss == "quantile" else None, max_iter=15, random_state=0
    ).fit(X_train, y_train)
    check(est, X_train, X_test, forest_layouts)


def test_early_stopping(forest_layouts: Callable[[str], Iterator[scorer.Model]]) -> None:
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, _ = split(X, y)
    est = HistGradientBoostingRegressor(
        max_iter=500, early_stopping=True, n_iter_no_change=3, random_state=0
    ).fit(X_train, y_train)
    assert est.n_iter_ < 500
    check(est, X_train, X_test, forest_layouts)


# -- categorical inputs ------------------------------------------------------------------------------


def integer_categories() -> tuple[Any, ...]:
    rng = np.random.RandomState(0)
    X, y = load_diabetes(return_X_y=True)
    X = np.c_[X[:, :4], rng.randint(0, 6, len(X)), rng.randint(0, 15, len(X))].astype(float)
    X[rng.rand(len(X)) < 0.08, 4] = np.nan
    y = y + 40 * (X[:, 5] % 3) - 25 * (X[:, 4] == 2)
    return split(X, y)


def test_integer_coded_categories(forest_layouts: Callable[[str], Iterator[scorer.Model]]) -> None:
    X_train, X_test, y_train, _ = integer_categories()
    est = HistGradientBoostingRegressor(categorical_features=[4, 5], max_iter=20, random_state=0)
    est.fit(X_train, y_train)
    X_test = X_test.copy()
    X_test[:3, 5] = [99.0, -1.0, 2.5]  # unknown categories: missing, as scikit-learn's encoder makes them
    check(est, X_train, X_test, forest_layouts)


def string_frame(n_test: int = 40) -> tuple[Any, ...]:
    rng = np.random.RandomState(3)
    X, y = load_diabetes(return_X_y=True)
    frame = pd.DataFrame(
        {
            "age": X[:, 0],
            "colour": pd.Categorical(rng.choice(["red", "green", "blue", "grey", "amber"], len(X))),
            "bmi": X[:, 2],
            "size": pd.Categorical(rng.choice(["S", "M", "L"], len(X))),
        }
    )
    frame.loc[rng.rand(len(X)) < 0.1, "colour"] = np.nan
    frame.loc[rng.rand(len(X)) < 0.05, "bmi"] = np.nan
    y = y + 50 * (frame["colour"] == "red").to_numpy() - 30 * (frame["size"] == "L").to_numpy()
    return split(frame, y, n_test)


STRINGS = needs_sklearn((1, 9), "HistGradientBoosting fitted on string columns")


@STRINGS
def test_string_categories_regressor(forest_layouts: Callable[[str], Iterator[scorer.Model]]) -> None:
    X_train, X_test, y_train, _ = string_frame()
    est = HistGradientBoostingRegressor(max_iter=20, random_state=0).fit(X_train, y_train)
    assert est.is_categorical_ is not None and est.is_categorical_.sum() == 2
    check(est, X_train, X_test, forest_layouts)
    doc = json.loads(export_text(est, X_train.iloc[:25]))
    cats = {c["column"]: c["categories"] for c in doc["estimator"]["categorical_features"]}
    assert cats == {1: ["amber", "blue", "green", "grey", "red"], 3: ["L", "M", "S"]}


@STRINGS
def test_string_categories_classifier_unknown_values(
    forest_layouts: Callable[[str], Iterator[scorer.Model]],
) -> None:
    X_train, X_test, y_train, _ = string_frame()
    labels = np.where(y_train > np.median(y_train), "high", "low")
    est = HistGradientBoostingClassifier(max_iter=15, random_state=0).fit(X_train, labels)
    check(est, X_train, X_test, forest_layouts)
    # values the model never saw: scikit-learn treats them as missing
    model = scorer.load_model(export_text(est, X_train.iloc[:25]))
    rows = rows_of(X_test.iloc[:6])
    rows[0][1], rows[1][3], rows[2][1], rows[3][1] = "purple", "XL", None, 7
    frame = X_test.iloc[:6].copy()
    frame["colour"] = frame["colour"].cat.add_categories(["purple"])
    frame["size"] = frame["size"].cat.add_categories(["XL"])
    frame.loc[0, "colour"], frame.loc[1, "size"], frame.loc[2, "colour"], frame.loc[3, "colour"] = (
        "purple",
        "XL",
        np.nan,
        np.nan,
    )
    np.testing.assert_array_equal(model.decision_function(rows), est.decision_function(frame))


@STRINGS
def test_many_leaves_with_categories(forest_layouts: Callable[[str], Iterator[scorer.Model]]) -> None:
    """Categorical splits in the traversal layouts (trees of more than 64 leaves)."""
    X_train, X_test, y_train, _ = string_frame()
    est = HistGradientBoostingRegressor(
        max_iter=3, max_leaf_nodes=80, min_samples_leaf=1, random_state=0
    ).fit(X_train, y_train)
    assert max(p[0].get_n_leaf_nodes() for p in est._predictors) > 64
    check(est, X_train, X_test, forest_layouts)


# -- documents -----------------------------------------------------------------------------------


def test_unsupported_loss_object() -> None:
    from sklearn._loss.loss import HalfBinomialLoss

    X, y = make_classification(n_samples=100, random_state=0)
    est = HistGradientBoostingClassifier(loss=HalfBinomialLoss(), max_iter=3).fit(X, y)
    with pytest.raises(UnsupportedEstimator, match="loss"):
        export_text(est, X[:5])


@pytest.fixture(scope="module")
def categorical_doc() -> dict[str, Any]:
    X_train, _, y_train, _ = string_frame()
    est = HistGradientBoostingRegressor(max_iter=5, random_state=0).fit(X_train, y_train)
    return json.loads(export_text(est, X_train.iloc[:10], compact=False))


def _categorical_split(doc: dict[str, Any]) -> tuple[int, int]:
    for t, tree in enumerate(doc["estimator"]["trees"]):
        split = tree.get("category_split")
        if split and any(v >= 0 for v in split):
            return t, next(i for i, v in enumerate(split) if v >= 0)
    raise AssertionError("no categorical split")


@STRINGS
def test_corrupted_categorical_documents(categorical_doc: dict[str, Any]) -> None:
    t, node = _categorical_split(categorical_doc)
    cases = []
    bad = copy.deepcopy(categorical_doc)
    bad["estimator"]["trees"][t]["category_split"][node] = 99
    cases.append((bad, f"/estimator/trees/{t}/category_split/{node}"))
    bad = copy.deepcopy(categorical_doc)
    k = bad["estimator"]["trees"][t]["category_split"][node]
    bad["estimator"]["trees"][t]["category_bitsets"][k][31] = 128  # category code 255 goes left
    cases.append((bad, f"/estimator/trees/{t}/category_split/{node}"))
    bad = copy.deepcopy(categorical_doc)
    bad["estimator"]["trees"][t]["feature"][node] = 0  # a numeric feature with a categorical split
    cases.append((bad, f"/estimator/trees/{t}/category_split/{node}"))
    bad = copy.deepcopy(categorical_doc)
    bad["estimator"]["categorical_features"][1]["column"] = 1
    cases.append((bad, "/estimator/categorical_features/1/column"))
    bad = copy.deepcopy(categorical_doc)
    bad["estimator"]["categorical_features"][0]["categories"] = ["a", 1]
    cases.append((bad, "/estimator/categorical_features/0/categories"))
    bad = copy.deepcopy(categorical_doc)
    bad["estimator"]["baseline"] = [0.0, 0.0]
    cases.append((bad, "/estimator/baseline"))
    for bad, pointer in cases:
        with pytest.raises(scorer.InvalidModel) as exc:
            scorer.load_model(bad)
        assert exc.value.problems[0][0] == pointer, exc.value.problems
