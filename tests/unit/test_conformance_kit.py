"""The conformance kit (conformance/): the Python scorer passes every case, and the kit covers every type.

The kit is what a scorer in another language runs (scorer-js does, under ``node --test``); this test keeps
the reference scorer and the checked-in kit in agreement, and fails when a supported type has no case
(regenerate with ``make conformance`` after adding a case to conformance/generate.py).
"""

from __future__ import annotations

import json
import math
import pathlib
from typing import Any

import pytest

import scorer

KIT = pathlib.Path(__file__).resolve().parents[2] / "conformance"
INDEX: dict[str, Any] = json.loads((KIT / "index.json").read_text(encoding="utf-8"))


def _close(got: Any, want: Any, tol: float, where: str) -> float:
    """Compare nested outputs with the kit's rule; return the largest numeric difference seen."""
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: shape differs"
        pairs = enumerate(zip(got, want, strict=True))
        return max((_close(g, w, tol, f"{where}/{i}") for i, (g, w) in pairs), default=0.0)
    if want is None:
        assert isinstance(got, float) and math.isnan(got), f"{where}: expected NaN, got {got!r}"
        return 0.0
    if isinstance(want, (str, bool)) or isinstance(got, (str, bool)):
        assert got == want and type(got) is type(want), f"{where}: expected {want!r}, got {got!r}"
        return 0.0
    diff = abs(float(got) - float(want))
    assert diff <= tol * max(1.0, abs(float(want))), f"{where}: expected {want!r}, got {got!r} (tol {tol})"
    return diff


def _jsonish(values: Any) -> Any:
    """The scorer's numpy outputs as nested Python lists."""
    if isinstance(values, list):  # multi-output predict_proba: one array per output
        return [_jsonish(v) for v in values]
    return values.tolist()


@pytest.mark.parametrize("case", INDEX["cases"], ids=[c["id"] for c in INDEX["cases"]])
def test_python_scorer_passes_case(case: dict[str, Any]) -> None:
    doc = json.loads((KIT / case["file"]).read_text(encoding="utf-8"))
    model = scorer.validate_model(doc)  # sha256, schema and the test vectors at the document's tolerance
    inputs = doc["test_vectors"]["inputs"]
    assert sorted(case["methods"]) == sorted(doc["output"]["methods"])
    for method in case["methods"]:
        got = _jsonish(getattr(model, method)(inputs))
        want = doc["test_vectors"]["outputs"][method]
        _close(got, want, case["tolerance"][method], f"{case['id']}/{method}")


@pytest.mark.parametrize("case", INDEX["invalid"], ids=[c["id"] for c in INDEX["invalid"]])
def test_python_validator_reports_pointer(case: dict[str, Any]) -> None:
    text = (KIT / case["file"]).read_bytes()
    with pytest.raises(scorer.InvalidModel) as err:
        scorer.validate_model(text)
    assert case["pointer"] in [p for p, _ in err.value.problems], err.value.problems


def test_kit_covers_every_supported_type() -> None:
    covered = {t for c in INDEX["cases"] for t in c["types"]}
    missing = sorted(set(scorer.supported_types()) - covered)
    assert not missing, f"no conformance case for {missing}: add one to conformance/generate.py"
    assert INDEX["format_version"] == scorer.FORMAT_VERSION


def test_kit_covers_both_encodings_and_edge_inputs() -> None:
    texts = {c["id"]: (KIT / c["file"]).read_text(encoding="utf-8") for c in INDEX["cases"]}
    assert any('"base64-zlib"' in t for t in texts.values())
    assert any('"encoding":"base64"' in t for t in texts.values())
    assert any('"encoding"' not in t for t in texts.values())  # plain arrays only
    rows = [json.loads(t)["test_vectors"]["inputs"] for t in texts.values()]
    assert any(v is None for rs in rows for r in rs for v in r)  # missing values
    assert any(v == "purple" for rs in rows for r in rs for v in r)  # an unseen category


def test_kit_is_small_and_index_lists_every_file() -> None:
    listed = {c["file"] for c in INDEX["cases"]} | {c["file"] for c in INDEX["invalid"]}
    on_disk = {str(p.relative_to(KIT)) for p in KIT.glob("*/*.json")}
    assert listed == on_disk
    assert sum((KIT / f).stat().st_size for f in listed) < 4_000_000
