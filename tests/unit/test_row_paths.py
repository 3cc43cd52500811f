"""The single-row fast paths (``Estimator.row_path``): the row check, the float32 scalar links, and forests
walked in Python on the values where a walk could go wrong (on a threshold, one ulp either side, at the
float32 rounding midpoints scikit-learn's float32 comparison creates)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingRegressor, RandomForestClassifier

import scorer
from modelsync.export import export_model
from scorer._inputs import plain_row
from scorer._links import round32, sigmoid32, sigmoid32_scalar
from scorer.models import _forest


def test_plain_row_takes_plain_finite_numbers_only() -> None:
    assert plain_row([1.0, 2.5], math.inf) == [1.0, 2.5]
    assert plain_row([1, 2.5], math.inf) == [1.0, 2.5]
    assert all(type(v) is float for v in plain_row([1, 2], math.inf) or [])
    for row in ([math.nan, 1.0], [math.inf], [-math.inf, 0.0], [10**400], [10**400, 1.0], [True, 1.0],
                ["1", 2.0], [None, 1.0], [np.float64(1.0)]):
        assert plain_row(row, math.inf) is None, row
    assert plain_row([3.5e38], 3.4e38) is None
    assert plain_row([-3.3e38], 3.4e38) == [-3.3e38]


def test_float32_scalar_links_match_the_array_ones() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([(rng.standard_normal(20_000) * 10).astype(np.float32),
                        np.array([0, -0.0, 88.7, -88.7, -89, -104, 104, 1e30, -1e30], dtype=np.float32)])
    with np.errstate(over="ignore"):
        want = sigmoid32(x)
    got = np.array([sigmoid32_scalar(float(v)) for v in x], dtype=np.float32)
    np.testing.assert_array_equal(got, want)
    assert round32(1e300) == math.inf and round32(-1e300) == -math.inf
    assert round32(1.0 + 2.0**-30) == 1.0


def _edge_rows(est_trees: list[object], X: np.ndarray) -> list[list[float]]:
    """Rows whose values sit on the split thresholds, one ulp (float64 and float32) either side."""
    thr = np.unique(np.concatenate([t.tree_.threshold[t.tree_.children_left >= 0]  # type: ignore[attr-defined]
                                    for t in est_trees]))
    t32 = thr.astype(np.float32)
    cand = np.concatenate([thr, np.nextafter(thr, np.inf), np.nextafter(thr, -np.inf),
                           t32.astype(np.float64), np.nextafter(t32, np.float32(np.inf)).astype(np.float64),
                           (t32.astype(np.float64) + np.nextafter(t32, np.float32(np.inf))) / 2])
    rng = np.random.default_rng(1)
    rows = X[rng.integers(0, len(X), 300)].copy()
    rows[np.arange(300)[:, None], rng.integers(0, X.shape[1], (300, 3))] = rng.choice(cand, (300, 3))
    return rows.tolist()


@pytest.mark.parametrize("walk", [True, False])
def test_forests_score_list_rows_as_scikit_learn(monkeypatch: pytest.MonkeyPatch, walk: bool) -> None:
    monkeypatch.setattr(_forest, "FORCE_WALK", walk)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 4))
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    for est in (RandomForestClassifier(n_estimators=5, max_depth=6, random_state=0).fit(X, y),
                GradientBoostingClassifier(n_estimators=8, random_state=0).fit(X, y)):
        model = scorer.load_model(export_model(est, X[:100], name="m"))
        assert (model.estimator.forest.walker is not None) is walk  # type: ignore[attr-defined]
        trees = list(np.ravel(est.estimators_))
        for row in _edge_rows(trees, X):
            want = est.predict_proba(np.array([row]))
            np.testing.assert_array_equal(model.predict_proba([row]), want)
            assert model.predict([row]).tolist() == est.predict(np.array([row])).tolist()


def test_hist_gradient_boosting_list_rows_and_their_fallbacks() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 3))
    X[::7, 1] = np.nan
    y = X[:, 0] * 2 + np.nan_to_num(X[:, 1])
    est = HistGradientBoostingRegressor(max_iter=12, random_state=0).fit(X, y)
    model = scorer.load_model(export_model(est, X[:100], name="m"))
    for row in X[:60].tolist():  # rows with NaN take the general path
        np.testing.assert_array_equal(model.predict([row]), est.predict(np.array([row])))
    np.testing.assert_array_equal(model.predict([[1, 2, 3]]), est.predict(np.array([[1.0, 2.0, 3.0]])))


@pytest.mark.parametrize("max_depth", [1, 2, 3, 4, 5, 7, 9, None])
def test_forest_single_rows_walked_in_steps_of_levels(monkeypatch: pytest.MonkeyPatch,
                                                      max_depth: int | None) -> None:
    """The level tables' single-row walk (three levels per step, the short step first; trees that end
    inside a step padded): rows with and without NaN, on and around the thresholds, as scikit-learn."""
    monkeypatch.setattr(_forest, "FORCE_ENGINE", "heap")
    monkeypatch.setattr(_forest, "FORCE_WALK", False)
    rng = np.random.default_rng(3)
    X = rng.standard_normal((600, 5))
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0.3 * X[:, 3]).astype(int) + (X[:, 4] > 1)
    X[rng.random(X.shape) < 0.05] = np.nan
    # trees of different depths in one forest: few samples per tree, some of them shallow
    est = RandomForestClassifier(n_estimators=12, max_depth=max_depth, max_samples=0.3, min_samples_leaf=1,
                                 random_state=0).fit(X, y)
    model = scorer.load_model(export_model(est, X[:100], name="m"))
    forest = model.estimator.forest  # type: ignore[attr-defined]
    assert forest.heap and forest.walker is None
    depths = {t.tree_.max_depth for t in est.estimators_}
    assert max(depths) == len(forest.active)
    rows = X[rng.integers(0, len(X), 120)]
    edge = np.array(_edge_rows(est.estimators_, np.nan_to_num(X)))
    edge = edge[(np.abs(edge) < 3e38).all(axis=1)][:120]  # NaN-routing splits may sit at +inf
    for row in np.concatenate([rows, edge]):
        want = est.predict_proba(row.reshape(1, -1))
        np.testing.assert_array_equal(model.predict_proba(row.reshape(1, -1)), want)  # the 1-row matrix
        np.testing.assert_array_equal(model.predict_proba([row.tolist()]), want)  # NaN: the general path
    if max_depth is None:  # trees of several depths: some end inside a step
        assert len(depths) > 1 and forest._row_extra is not None
