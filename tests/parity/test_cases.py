"""Runs the parity case table (cases.py) through the harness, and checks the table covers the registry."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from cases import CASES, Case, fit
from harness import SKLEARN, assert_parity

import scorer
from modelsync.export import export_model
from scorer.models import TYPE_FAMILIES

FOREST_FAMILIES = ("trees", "hist_gradient_boosting", "xgboost", "lightgbm")


def registered_types() -> set[str]:
    """Every type the scorer's families register (test doubles registered by unit tests excluded)."""
    return {t for t in scorer.supported_types() if not t.startswith("test_")}


def test_every_registered_type_has_a_parity_case() -> None:
    missing = sorted(registered_types() - {c.type for c in CASES} - {c.retype for c in CASES})
    assert missing == [], f"registered types without a parity case in tests/parity/cases.py: {missing}"


def test_every_case_names_a_registered_type() -> None:
    unknown = sorted({c.id for c in CASES if c.type not in registered_types()
                      or (c.retype is not None and c.retype not in registered_types())})
    assert unknown == [], f"cases whose type no family registers (a family was removed?): {unknown}"
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"


def _document(case: Case, est: Any, sample: Any, compact: bool) -> str:
    names = None if hasattr(sample, "columns") else [f"x{i}" for i in range(np.asarray(sample).shape[1])]
    doc = export_model(est, sample, name="parity", compact=compact, feature_names=names)
    assert doc["estimator"]["type"] == case.type
    if not compact and TYPE_FAMILIES[case.type] == "linear":  # plain lists only
        assert "encoding" not in json.dumps(doc["estimator"])
    if case.retype is not None:
        doc["estimator"]["type"] = case.retype
        doc["sha256"] = scorer.content_sha256(doc)
    return json.dumps(doc)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore:The `probability` parameter was deprecated:FutureWarning")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: Case, datasets: Any, forest_layouts: Any) -> None:
    assert case.type in registered_types(), f"{case.type}: no family registers it"
    if case.sklearn > SKLEARN:
        pytest.skip(f"needs scikit-learn >= {'.'.join(map(str, case.sklearn))}")
    d = datasets(case.data)
    est = fit(case, d.X_train, d.y_train)
    X = d.X_test
    if case.test_rows_from_train:
        X = np.r_[X, d.X_train[: case.test_rows_from_train]]
    forest = TYPE_FAMILIES[case.retype or case.type] in FOREST_FAMILIES
    for compact in (True, False):
        text = _document(case, est, d.X_train[:20], compact)
        scorer.validate_model(text)
        for model in forest_layouts(text) if forest else [scorer.load_model(text)]:
            assert model.type_name == (case.retype or case.type)
            if hasattr(est, "classes_") and model.classes is not None:
                assert model.classes.tolist() == est.classes_.tolist()
            assert_parity(est, X, model, case.tol)
            if case.extra:
                assert_parity(est, X, model.estimator, case.tol, methods=case.extra)
