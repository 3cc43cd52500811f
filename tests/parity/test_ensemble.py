"""Meta-estimators beyond the case table: refusals at export, mis-assembled documents, input checks."""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pytest
from cases_ensemble import _ada
from harness import SKLEARN
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import StackingClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.preprocessing import PowerTransformer
from sklearn.tree import DecisionTreeClassifier

import scorer
from modelsync.export import UnsupportedEstimator, export_model
from scorer._numpy_funcs import FUNCS, UNARY, function_name


def _export(est: Any, X: np.ndarray) -> dict[str, Any]:
    return export_model(est, X[:10], name="t", feature_names=[f"x{i}" for i in range(X.shape[1])])


def _reload(doc: dict[str, Any]) -> None:
    doc["sha256"] = scorer.content_sha256(doc)
    scorer.load_model(json.dumps(doc))


def test_refused_at_export_with_a_message(datasets: Any) -> None:
    d = datasets("iris")
    soft = VotingClassifier([("nb", GaussianNB())], voting="soft", flatten_transform=False)
    with pytest.raises(UnsupportedEstimator, match="flatten_transform"):
        _export(soft.fit(d.X_train, d.y_train), d.X_train)
    if SKLEARN >= (1, 9):  # method="temperature" is newer than the oldest supported scikit-learn
        with pytest.raises(UnsupportedEstimator, match="temperature"):
            cal = CalibratedClassifierCV(GaussianNB(), method="temperature")
            _export(cal.fit(d.X_train, d.y_train), d.X_train)
    r = datasets("diabetes")
    sin = TransformedTargetRegressor(Ridge(), func=np.sin, inverse_func=np.arcsin, check_inverse=False)
    with pytest.raises(UnsupportedEstimator, match="log1p"):
        _export(sin.fit(r.X_train, r.y_train), r.X_train)
    power = TransformedTargetRegressor(Ridge(), transformer=PowerTransformer())
    with pytest.raises(UnsupportedEstimator, match="PowerTransformer"):
        _export(power.fit(r.X_train, r.y_train), r.X_train)


def test_children_must_use_class_indices(datasets: Any) -> None:
    d = datasets("iris")
    est = StackingClassifier([("nb", GaussianNB())], final_estimator=LogisticRegression(max_iter=300))
    doc = _export(est.fit(d.X_train, d.y_train), d.X_train)
    bad = copy.deepcopy(doc)
    bad["estimator"]["estimators"][0]["estimator"]["classes"] = [1, 2, 3]
    with pytest.raises(scorer.InvalidModel) as err:
        _reload(bad)
    assert err.value.problems[0][0] == "/estimator/estimators/0/estimator/classes"
    bad = copy.deepcopy(doc)
    bad["estimator"]["estimators"][0]["method"] = "transform"
    with pytest.raises(scorer.InvalidModel, match="must be one of"):
        _reload(bad)


def test_ada_boost_refuses_nan_although_its_trees_accept_it(datasets: Any) -> None:
    d = datasets("iris")
    est = _ada(False, estimator=DecisionTreeClassifier(max_depth=2), n_estimators=3, random_state=0)
    model = scorer.load_model(json.dumps(_export(est.fit(d.X_train, d.y_train), d.X_train)))
    row = d.X_test[:1].copy()
    row[0, 2] = np.nan
    with pytest.raises(ValueError):
        est.predict(row)
    with pytest.raises(scorer.InvalidInput):
        model.predict(row)


def test_the_numpy_function_whitelist_names_numpy_functions() -> None:
    assert sorted(UNARY) == ["abs", "exp", "expm1", "log", "log1p", "sqrt", "square"]
    for name in UNARY:
        func = FUNCS[name]
        assert func is getattr(np, name) and function_name(func) == name
    assert function_name(np.absolute) == "abs" and function_name(np.sin) is None
