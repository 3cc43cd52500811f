"""Hostile and broken documents fail fast with InvalidModel and a clear message.

Never RecursionError, MemoryError, IndexError, KeyError or TypeError: the Publish Lambda and the
devices load documents from outside, so every failure must be a (JSON pointer, message) problem.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import time
import zlib
from collections.abc import Iterator
from typing import Any

import _scorer_testkit as kit
import numpy as np
import pytest

import scorer
from scorer import InvalidModel, UnsupportedModel

FAST = 5.0  # seconds; generous for a loaded CI machine, far below what a parse of the payload would take


@pytest.fixture(autouse=True, scope="module")
def _affine() -> Iterator[None]:
    yield from kit.affine_fixture()


@pytest.fixture
def doc() -> dict[str, Any]:
    return kit.make_doc(classes=["no", "yes"])


def refused(source: Any, match: str, *, validate: bool = False) -> InvalidModel:
    """Load (or validate) ``source``; it must fail with InvalidModel matching ``match``, quickly."""
    start = time.perf_counter()
    with pytest.raises(InvalidModel) as info:
        (scorer.validate_model if validate else scorer.load_model)(source)
    elapsed = time.perf_counter() - start
    assert elapsed < FAST, f"took {elapsed:.1f}s"
    assert any(match in f"{p}: {m}" for p, m in info.value.problems), info.value.problems
    return info.value


# -- parsing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,
        '{"a":' * 100_000,
        "[{" * 50_000,
        '{"format_version": "1.0", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ],
)
def test_deep_nesting_is_refused_before_parsing(text: str) -> None:
    refused(text, "nested deeper than 64")
    refused(text.encode(), "nested deeper than 64")


def test_deep_nesting_in_a_python_dict() -> None:
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    refused({"format_version": "1.0", "x": deep}, "nested deeper than 64")


def test_brackets_inside_strings_do_not_count_as_nesting(doc: dict[str, Any]) -> None:
    doc["metadata"]["description"] = "[" * 10_000 + '\\"{' * 1000
    assert scorer.validate_model(json.dumps(kit.resign(doc))).name == "affine"


def test_an_unterminated_string_full_of_escapes_is_scanned_in_linear_time() -> None:
    refused(b'{"a": "' + b'\\"[' * 2_000_000, "not valid JSON")


def test_a_65_mb_document_is_refused_without_parsing(tmp_path: Any) -> None:
    big = b'{"pad": "' + b"x" * (65 * 1024 * 1024) + b'"}'
    refused(big, "over the limit of 67108864")
    path = tmp_path / "big.json"
    path.write_bytes(big)
    refused(path, "over the limit of 67108864")
    refused(str(path), "over the limit of 67108864")


@pytest.mark.parametrize(
    "text, match",
    [
        ('{"format_version": "1.0", "x": NaN}', "NaN is not valid JSON"),
        ('{"format_version": "1.0", "x": [Infinity]}', "Infinity is not valid JSON"),
        ('{"format_version": "1.0", "x": -Infinity}', "-Infinity is not valid JSON"),
        ('{"format_version": "1.0", "x": 1e999}', "too large for a double"),
        ('{"format_version": "1.0", "format_version": "1.0"}', "duplicate key 'format_version'"),
        ('{"format_version": "1.0", "x": {"a": 1, "a": 2}}', "duplicate key 'a'"),
        ('{"format_version": "1.0",}', "not valid JSON"),
        ("{'format_version': '1.0'}", "not valid JSON"),
        ("", "not valid JSON"),
    ],
)
def test_non_strict_json_is_refused(text: str, match: str) -> None:
    refused(text, match)


@pytest.mark.parametrize(
    "text, kind",
    [
        ("[]", "array"),
        ("[1, 2]", "array"),
        ('"model"', "string"),
        ("42", "integer"),
        ("null", "null"),
        ("true", "boolean"),
    ],
)
def test_the_root_must_be_an_object(text: str, kind: str) -> None:
    refused(text, f"document must be a JSON object, got {kind}")
    refused(text.encode(), f"document must be a JSON object, got {kind}")


@pytest.mark.parametrize(
    "raw, match",
    [
        (b'{"a": "\xff"}', "not UTF-8"),
        ('{"a": 1}'.encode("utf-16"), "not UTF-8"),
        (b'\xef\xbb\xbf{"a": 1}', "byte order mark"),
    ],
)
def test_encodings(raw: bytes, match: str) -> None:
    refused(raw, match)


@pytest.mark.parametrize(
    "source, match",
    [
        (12345, "cannot load a model from int"),
        (object(), "cannot load a model from object"),
        ("no/such/model.json", "cannot read model file"),
    ],
)
def test_bad_sources(source: Any, match: str) -> None:
    refused(source, match)


def test_python_dicts_must_hold_json_values(doc: dict[str, Any]) -> None:
    for path, value, match in [
        (("metadata", "description"), float("nan"), "/metadata/description: NaN"),
        (("estimator", "coef"), np.zeros(3), "/estimator/coef: not a JSON value: ndarray"),
        (("metadata", "tags"), {1: "a"}, "keys must be strings"),
        (("test_vectors", "inputs"), [[1.0, float("inf"), 2.0]], "/test_vectors/inputs/0/1: NaN"),
    ]:
        broken = copy.deepcopy(doc)
        broken[path[0]][path[1]] = value
        refused(broken, match)


# -- the envelope -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "version, match",
    [
        ("2.0", "format_version '2.0' is not supported: this scorer reads format 1.x"),
        ("2.0", "newer scorer"),
        ("0.9", "older scorer"),
        ("1", "MAJOR.MINOR"),
        (1.0, "MAJOR.MINOR"),
        (None, "MAJOR.MINOR"),
    ],
)
def test_wrong_format_version(doc: dict[str, Any], version: Any, match: str) -> None:
    doc["format_version"] = version
    refused(doc, match)
    refused(doc, match, validate=True)


def test_missing_format_version(doc: dict[str, Any]) -> None:
    del doc["format_version"]
    error = refused(doc, "/format_version: required field is missing")
    assert len(error.problems) == 1  # nothing else is interpreted without knowing the version


def test_unknown_model_type_lists_the_supported_ones(doc: dict[str, Any]) -> None:
    doc["estimator"]["type"] = "gpt_5"
    error = refused(doc, "unsupported model type 'gpt_5'; supported: ")
    assert isinstance(error, UnsupportedModel)
    message = dict(error.problems)["/estimator/type"]
    for name in scorer.supported_types():
        assert name in message


@pytest.mark.parametrize(
    "estimator, match",
    [
        ([], "/estimator: estimator must be an object, got array"),
        ("linear_regression", "estimator must be an object, got string"),
        ({}, "/estimator/type: estimator needs a string 'type'"),
        ({"type": ["test_affine"]}, "estimator needs a string 'type'"),
        ({"type": "test_affine"}, "/estimator/n_features_in: required field is missing"),
    ],
)
def test_broken_estimator_nodes(doc: dict[str, Any], estimator: Any, match: str) -> None:
    doc["estimator"] = estimator
    refused(doc, match)


@pytest.mark.parametrize("field", ["format_version", "input", "estimator"])
def test_fields_scoring_needs(doc: dict[str, Any], field: str) -> None:
    del doc[field]
    refused(doc, f"/{field}: required field is missing")


@pytest.mark.parametrize("field", ["metadata", "output", "test_vectors", "sha256"])
def test_fields_publishing_needs(doc: dict[str, Any], field: str) -> None:
    del doc[field]
    scorer.load_model(doc)  # scoring does not need it ...
    refused(
        kit.resign(doc) if field != "sha256" else doc, f"/{field}: required field is missing", validate=True
    )  # ... a published document does


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d["input"].pop("features"), "/input/features: required array is missing"),
        (lambda d: d["input"].update(features=[]), "at least one input feature"),
        (lambda d: d["input"].update(features="f0"), "/input/features: must be an array, got string"),
        (
            lambda d: d["input"]["features"].__setitem__(1, 7),
            "/input/features/1: a feature must be an object",
        ),
        (
            lambda d: d["input"]["features"][1].update(name="f0"),
            "/input/features/1/name: duplicate feature name",
        ),
        (
            lambda d: d["input"]["features"][1].update(type="text"),
            "/input/features/1/type: must be 'numeric'",
        ),
        (lambda d: d["input"]["features"].pop(), "the estimator expects 3 features, input declares 2"),
        (lambda d: d["metadata"].update(name=""), "/metadata/name"),
        (lambda d: d.update(metadata=[]), "/metadata: must be an object, got array"),
        (lambda d: d["output"].update(task="ranking"), "/output/task: must be one of"),
        (
            lambda d: d["output"].update(methods=["predict", "predict"]),
            "/output/methods/1: predict is listed twice",
        ),
        (lambda d: d["output"].update(methods=[{}]), "/output/methods/0: must be one of"),
        (lambda d: d["output"].update(classes=["no", "yes", "maybe"]), "/output/classes: does not match"),
        (lambda d: d["output"].pop("classes"), "/output/classes: required field is missing"),
        (lambda d: d["output"].update(task="regression"), "only classification models have classes"),
        (lambda d: d.update(sha256="ABC"), "/sha256: must be 64 lowercase hexadecimal characters"),
        (lambda d: d.update(sha256=None), "/sha256: must be a string, got null"),
        (
            lambda d: d["test_vectors"].update(tolerance=True),
            "/test_vectors/tolerance: must be an integer or a number",
        ),
        (lambda d: d["test_vectors"].update(inputs=[[1, 2, 3]] * 10_001), "at most 10000 rows"),
        (lambda d: d["estimator"].update(coef=[1.0, 2.0]), "/estimator/coef: expected shape 3"),
        (lambda d: d["estimator"].update(n_features_in=-3), "/estimator/n_features_in: must be >= 1"),
        (lambda d: d["estimator"].update(classes=[]), "/estimator/classes: labels must not be empty"),
    ],
)
def test_broken_fields_are_reported_with_their_pointer(doc: dict[str, Any], mutate: Any, match: str) -> None:
    mutate(doc)
    refused(
        kit.resign(doc) if isinstance(doc.get("sha256"), str) and len(doc["sha256"]) == 64 else doc,
        match,
        validate=True,
    )


# -- arrays -----------------------------------------------------------------------------------------


def _set_coef(doc: dict[str, Any], value: Any) -> dict[str, Any]:
    doc["estimator"]["coef"] = value
    return doc


@pytest.mark.parametrize(
    "block, match",
    [
        (
            {"encoding": "base64", "dtype": "float64", "shape": [10**9, 10**9], "data": "AAAA"},
            "declared shape [1000000000, 1000000000] holds 1000000000000000000 elements, over the limit",
        ),
        (
            {
                "encoding": "base64",
                "dtype": "float64",
                "shape": [3],
                "data": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            },
            "data holds 30 base64 characters",
        ),
        (
            {"encoding": "base64", "dtype": "float64", "shape": [3], "data": "A" * 31},  # truncated
            "data holds 31 base64 characters, shape [3] x float64 needs 32",
        ),
        (
            {"encoding": "base64", "dtype": "float64", "shape": [3], "data": "A" * 30 + "=="},  # 22 bytes
            "data holds 22 bytes, shape [3] x float64 needs 24",
        ),
        (
            {"encoding": "base64", "dtype": "float64", "shape": [1], "data": "AAAAAAAAAA=A"},
            "not valid base64",
        ),
        (
            {"encoding": "base64-zlib", "dtype": "float64", "shape": [3], "data": "eJzLSM3JyQcABiwCFQ=="},
            "data holds 5 bytes, shape [3] x float64 needs 24",
        ),
        (
            {"encoding": "base64-zlib", "dtype": "float64", "shape": [3], "data": "bm90IHpsaWI="},
            "not valid base64-zlib",
        ),
        ({"encoding": "base64", "dtype": "float128", "shape": [3], "data": ""}, "dtype must be one of"),
        ({"encoding": "base64", "dtype": "<f8", "shape": [3], "data": ""}, "dtype must be one of"),
        ({"encoding": "base64", "dtype": {"x": 1}, "shape": [3], "data": ""}, "dtype must be one of"),
        ({"encoding": "gzip", "dtype": "float64", "shape": [3], "data": ""}, "encoding must be one of"),
        ({"encoding": "base64", "dtype": "float64", "shape": "3", "data": ""}, "shape must be a list"),
        ({"encoding": "base64", "dtype": "float64", "shape": [1] * 9, "data": ""}, "shape must be a list"),
        ({"encoding": "base64", "dtype": "float64", "shape": [True], "data": ""}, "shape must be a list"),
        ({"encoding": "base64", "dtype": "float64", "shape": [3], "data": 5}, "data must be a base64 string"),
    ],
)
def test_hostile_array_blocks(doc: dict[str, Any], block: dict[str, Any], match: str) -> None:
    refused(_set_coef(doc, block), "/estimator/coef")
    refused(doc, match)


def test_a_zlib_bomb_is_refused_before_it_inflates(doc: dict[str, Any]) -> None:
    n = 40_000_000  # 320 MB of zeros, about 300 KB compressed
    data = base64.b64encode(zlib.compress(bytes(n * 8), 9)).decode()
    bomb = {"encoding": "base64-zlib", "dtype": "float64", "shape": [n], "data": data}
    for key in ("coef", "coef2", "coef3"):  # the budget is per document, not per array
        doc["estimator"][key] = bomb
    doc["estimator"]["n_features_in"] = 3
    start = time.perf_counter()
    with pytest.raises(InvalidModel, match="decode to more than"):
        ctx = scorer.LoadContext()
        for key in ("coef2", "coef3"):
            scorer.decode_array(doc["estimator"][key], ctx.child(key))
    assert time.perf_counter() - start < FAST * 4


def test_estimators_nested_too_deeply(doc: dict[str, Any]) -> None:
    assert "pipeline" in scorer.supported_types()
    node: dict[str, Any] = doc["estimator"]
    for _ in range(17):
        node = {"type": "pipeline", "steps": [{"name": "s", "estimator": node}]}
    doc["estimator"] = node
    refused(doc, "estimators nested deeper than 16")


def test_plain_arrays_of_the_wrong_kind(doc: dict[str, Any]) -> None:
    refused(
        _set_coef(copy.deepcopy(doc), [1.0, "2", 3.0]),
        "/estimator/coef: expected numbers (float64), found a string",
    )
    refused(_set_coef(copy.deepcopy(doc), [1.0, None, 3.0]), "found null")
    refused(_set_coef(copy.deepcopy(doc), [[1.0, 2.0, 3.0]]), "expected a 1-D array")
    refused(_set_coef(copy.deepcopy(doc), {"values": [1, 2, 3]}), "unknown keys in array block")


# -- sha256 and test vectors ------------------------------------------------------------------------


def test_a_tampered_document_fails_its_sha256(doc: dict[str, Any]) -> None:
    doc["estimator"]["intercept"] = 0.75
    error = refused(doc, "/sha256: does not match the document's content", validate=True)
    # the change also makes the test vectors disagree: both are reported
    assert any(p.startswith("/test_vectors/outputs/predict") for p, _ in error.problems)


def test_a_forged_sha256_does_not_hide_wrong_test_vectors(doc: dict[str, Any]) -> None:
    doc["test_vectors"]["outputs"]["predict"][3] = "maybe"
    error = refused(
        kit.resign(doc), "/test_vectors/outputs/predict/3: predict of row 3: expected 'maybe'", validate=True
    )
    assert [p for p, _ in error.problems] == ["/test_vectors/outputs/predict/3"]


def test_many_wrong_rows_are_listed_then_summarised() -> None:
    doc = kit.make_doc(rows=[[float(i), 0.0, 0.0] for i in range(30)])
    doc["test_vectors"]["outputs"]["predict"] = [v + 1.0 for v in doc["test_vectors"]["outputs"]["predict"]]
    error = refused(kit.resign(doc), "30 of 30 rows differ", validate=True)
    assert sum(p.startswith("/test_vectors/outputs/predict/") for p, _ in error.problems) == 10


def test_test_vector_inputs_that_do_not_fit_the_input_schema(doc: dict[str, Any]) -> None:
    doc["test_vectors"]["inputs"][2] = [1.0, "high", 3.0]
    refused(kit.resign(doc), "/test_vectors/inputs/2: row 2, feature 'f1': expected a number", validate=True)


def test_a_lone_surrogate_has_no_canonical_form(doc: dict[str, Any]) -> None:
    text = json.dumps(doc).replace('"description": "test"', '"description": "\\ud800"')
    scorer.load_model(text)
    refused(text, "not valid Unicode", validate=True)


def test_integers_beyond_2_53_have_no_canonical_form(doc: dict[str, Any]) -> None:
    doc["metadata"]["seed"] = 2**60
    refused(doc, "/metadata/seed: cannot compute the canonical form: integer", validate=True)


# -- fuzzing ----------------------------------------------------------------------------------------

_JUNK: list[Any] = [
    None,
    True,
    0,
    -1,
    2**70,
    1.5,
    1e308,
    "",
    "x",
    "passthrough",
    [],
    [1],
    [[1, 2]],
    {},
    {"type": "test_affine"},
    {"encoding": "base64"},
    [None, "a"],
    "1.0",
    [float("nan")],
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node[:3]):
            yield from _paths(v, (*prefix, i))


@pytest.mark.parametrize("seed", range(4))
def test_random_mutations_only_ever_raise_invalid_model(seed: int) -> None:
    rng = random.Random(seed)
    base = kit.make_doc(classes=["no", "yes"], compact=bool(seed % 2), categorical=[1] if seed > 1 else None)
    paths = [p for p in _paths(base) if p]
    for _ in range(150):
        doc = copy.deepcopy(base)
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(paths)
            parent: Any = doc
            try:
                for key in path[:-1]:
                    parent = parent[key]
                if rng.random() < 0.2 and isinstance(parent, dict):
                    parent.pop(path[-1], None)
                else:
                    parent[path[-1]] = copy.deepcopy(rng.choice(_JUNK))
            except (KeyError, IndexError, TypeError):
                continue  # an earlier mutation removed this path
        for source in (doc, _dumps_or_none(doc)):
            if source is None:
                continue
            try:
                model = scorer.validate_model(source)
            except InvalidModel as exc:
                assert exc.problems and all(
                    isinstance(p, str) and isinstance(m, str) and m for p, m in exc.problems
                )
                continue
            model.predict(doc["test_vectors"]["inputs"])  # accepted documents must score


def _dumps_or_none(doc: dict[str, Any]) -> str | None:
    try:
        return json.dumps(doc, allow_nan=False)
    except ValueError:
        return None
