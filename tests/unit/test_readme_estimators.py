"""The README's supported-estimators table lists exactly what the exporter registers: every registered
class by its own name, and no estimator class the exporter would refuse."""

from __future__ import annotations

import pathlib
import re

from sklearn.utils import all_estimators

from modelsync.export import supported_estimators

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _table() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Supported estimators")
    return text[start : text.index("\n## ", start + 1)]


def _registered() -> set[str]:
    return {name.rsplit(".", 1)[1] for name in supported_estimators()}


def test_every_registered_class_is_named_in_the_table() -> None:
    words = set(re.findall(r"\b[A-Za-z]\w*\b", _table()))
    assert sorted(_registered() - words) == []


def test_every_estimator_class_the_table_names_is_registered() -> None:
    known = {name for name, _ in all_estimators()} | {"XGBClassifier", "XGBRegressor", "LGBMClassifier",
                                                      "LGBMRegressor", "Booster", "Pipeline"}
    named = set(re.findall(r"\b[A-Za-z]\w*\b", _table())) & known
    assert sorted(named - _registered()) == []
