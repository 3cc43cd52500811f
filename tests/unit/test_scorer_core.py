"""The scorer core: arrays, field access, canonical bytes, the input layer, Model, validation."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import pathlib
import zlib
from collections.abc import Iterator
from typing import Any

import _scorer_testkit as kit
import numpy as np
import pytest

import scorer
from scorer import InvalidInput, InvalidModel, LoadContext, MethodNotSupported, decode_array, encode_array
from scorer._inputs import to_matrix
from scorer._json import _es_number, canonical_bytes


@pytest.fixture(autouse=True, scope="module")
def _affine() -> Iterator[None]:
    yield from kit.affine_fixture()


def ctx() -> LoadContext:
    return LoadContext("/estimator/x")


def block(
    arr: np.ndarray, array_dtype: str, array_encoding: str = "base64", **override: Any
) -> dict[str, Any]:
    raw = np.ascontiguousarray(arr).tobytes()
    if array_encoding == "base64-zlib":
        raw = zlib.compress(raw)
    out = {
        "encoding": array_encoding,
        "dtype": array_dtype,
        "shape": list(arr.shape),
        "data": base64.b64encode(raw).decode(),
    }
    out.update(override)
    return out


# -- arrays -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", list(scorer.ARRAY_DTYPES))
@pytest.mark.parametrize("mode", ["plain", "base64", "base64-zlib"])
def test_encode_decode_round_trip_is_exact(dtype: str, mode: str) -> None:
    rng = np.random.RandomState(1)
    if dtype == "bool":
        a = rng.rand(3, 4) > 0.5
    elif dtype.startswith(("int", "uint")):
        info = np.iinfo(np.dtype(dtype))
        a = rng.randint(max(info.min, -1000), min(info.max, 1000), size=(3, 4)).astype(dtype)
    else:
        a = (rng.randn(3, 4) * 1e3).astype(dtype)
    enc = encode_array(a, compact=mode != "plain", compress=mode == "base64-zlib")
    assert isinstance(enc, list) == (mode == "plain")
    if mode != "plain":
        assert enc["encoding"] == mode and enc["dtype"] == dtype and enc["shape"] == [3, 4]
    back = decode_array(json.loads(json.dumps(enc)), ctx(), dtype=dtype, ndim=2)
    assert back.dtype == np.dtype(scorer.ARRAY_DTYPES[dtype]) and back.shape == (3, 4)
    np.testing.assert_array_equal(back, a)
    assert not back.flags.writeable, "decoded arrays are read-only: a model cannot be mutated by scoring"


def test_plain_lists_cannot_hold_nan_or_huge_ints_so_encode_falls_back_to_a_block() -> None:
    assert isinstance(encode_array(np.array([1.0, np.nan]), compact=False), dict)
    assert isinstance(encode_array(np.array([2**60]), compact=False), dict)
    assert encode_array(np.array([1.5, 2.0]), compact=False) == [1.5, 2.0]
    assert encode_array(np.array([1, 2], dtype=np.uint16))["dtype"] == "int64"
    with pytest.raises(TypeError):
        encode_array(np.array(["a"]))


@pytest.mark.parametrize(
    "value, dtype, message",
    [
        ([1.0, "2"], "float64", "found a string"),
        ([1.0, True], "float64", "found a boolean"),
        ([1, 2.5], "int64", "non-integer"),
        ([1, 0], "bool", "expected booleans"),
        ([[1.0, 2.0], [3.0]], "float64", "not a rectangular array"),
        ([[1.0], 2.0], "float64", "mixes lists and values"),
        ([70000], "int16", "out of range"),
        ([[[[[[[[[1.0]]]]]]]]], "float64", "more than 8 dimensions"),
        ([None], "float64", "null"),
        ("abc", "float64", "expected an array"),
    ],
)
def test_plain_list_problems(value: Any, dtype: str, message: str) -> None:
    with pytest.raises(InvalidModel, match=message) as info:
        decode_array(value, ctx(), dtype=dtype)
    assert info.value.problems[0][0] == "/estimator/x"


def test_plain_list_shapes_and_empty_arrays() -> None:
    assert decode_array([[1, 2, 3], [4, 5, 6]], ctx()).shape == (2, 3)
    assert decode_array([[], []], ctx()).shape == (2, 0)
    assert decode_array([], ctx(), ndim=2, shape=(None, 3)).shape == (0, 3)
    with pytest.raises(InvalidModel, match="expected shape 2x\\*"):
        decode_array([1.0, 2.0, 3.0], ctx(), shape=(2, None))
    with pytest.raises(InvalidModel, match="expected a 2-D array"):
        decode_array([1.0], ctx(), ndim=2)


def test_non_finite_values_are_refused_unless_allowed() -> None:
    b = block(np.array([1.0, np.inf]), "float64")
    with pytest.raises(InvalidModel, match="finite"):
        decode_array(b, ctx())
    assert np.isinf(decode_array(b, ctx(), finite=False)[1])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: block(np.zeros(3), "float64", shape=[4]), "base64 characters"),
        (lambda: block(np.zeros(3), "float64", data="AAAA" * 6), "not valid base64|base64 characters"),
        (lambda: block(np.zeros(3), "float64", data="!!!!" * 8), "not valid base64"),
        (lambda: block(np.zeros(3), "float64", dtype="float16"), "dtype must be one of"),
        (lambda: block(np.zeros(3), "float64", dtype=["float64"]), "dtype must be one of"),
        (lambda: block(np.zeros(3), "float64", encoding="hex"), "encoding must be one of"),
        (lambda: block(np.zeros(3), "float64", shape=[-1]), "non-negative integers"),
        (lambda: block(np.zeros(3), "float64", shape=[3.0]), "non-negative integers"),
        (lambda: block(np.zeros(3), "float64", extra=1), "unknown keys"),
        (lambda: {"encoding": "base64", "dtype": "float64", "shape": [1]}, "needs data"),
        (lambda: block(np.zeros(3), "float64", "base64-zlib", shape=[2]), "does not match its shape"),
        (
            lambda: {
                **block(np.zeros(3), "float64", "base64-zlib"),
                "data": base64.b64encode(zlib.compress(np.zeros(3).tobytes()) + b"junk").decode(),
            },
            "does not match its shape",
        ),
        (lambda: block(np.array([0, 2], dtype=np.uint8), "bool"), "bytes 0 and 1"),
    ],
)
def test_block_problems(make: Any, message: str) -> None:
    with pytest.raises(InvalidModel, match=message):
        decode_array(make(), ctx())


def test_block_conversions_only_when_lossless() -> None:
    np.testing.assert_array_equal(
        decode_array(block(np.array([1, 2], dtype=np.int16), "int16"), ctx()), [1.0, 2.0]
    )
    assert decode_array(block(np.array([0.5, 2.0]), "float64"), ctx(), dtype="float32").dtype == np.float32
    with pytest.raises(InvalidModel, match="do not fit float32 exactly"):
        decode_array(block(np.array([0.1]), "float64"), ctx(), dtype="float32")
    with pytest.raises(InvalidModel, match="expected int64 values"):
        decode_array(block(np.array([1.0]), "float64"), ctx(), dtype="int64")
    with pytest.raises(InvalidModel, match="out of range for int16"):
        decode_array(block(np.array([70000]), "int64"), ctx(), dtype="int16")


def test_the_decoding_budget_is_shared_by_a_whole_document(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scorer._base, "MAX_DECODED_BYTES", 100)
    c = LoadContext()
    decode_array([0.0] * 10, c.child("a"))  # 80 bytes
    with pytest.raises(InvalidModel, match="decode to more than 100 bytes") as info:
        decode_array(block(np.zeros(3), "float64"), c.child("b"))
    assert info.value.problems[0][0] == "/estimator/b"


# -- field access -----------------------------------------------------------------------------------


def test_field_access_is_typed_and_points_at_the_field() -> None:
    c = ctx()
    node = {"n": 3, "x": 1.5, "flag": True, "big": 10**400, "s": "a"}
    assert c.integer(node, "n", minimum=1) == 3
    assert c.number(node, "x") == 1.5
    assert c.boolean(node, "flag") is True
    assert c.string(node, "s", choices=("a", "b")) == "a"
    assert c.get(node, "missing", default=None) is None
    for call, message, key in [
        (lambda: c.number(node, "flag"), "expected integer or number, got boolean", "flag"),
        (lambda: c.integer(node, "x"), "expected integer, got number", "x"),
        (lambda: c.number(node, "big"), "too large", "big"),
        (lambda: c.integer(node, "big"), "must be <=", "big"),
        (lambda: c.integer(node, "n", minimum=5), "must be >= 5", "n"),
        (lambda: c.string(node, "s", choices=("b",)), "must be one of", "s"),
        (lambda: c.get(node, "nope"), "required field is missing", "nope"),
        (lambda: c.get([], "x"), "expected an object", None),  # type: ignore[arg-type]
    ]:
        with pytest.raises(InvalidModel, match=message) as info:
            call()
        assert info.value.problems[0][0] == ("/estimator/x" + (f"/{key}" if key else ""))


def test_labels() -> None:
    c = ctx()
    assert c.labels({"c": ["a", "b"]}, "c").dtype == object
    assert c.labels({"c": [0, 1]}, "c").dtype == np.int64
    assert c.labels({"c": [0.5, 1]}, "c").dtype == np.float64
    assert c.labels({"c": [True, False]}, "c").dtype == bool
    for bad in ([], ["a", 1], [[1]], [2**60]):
        with pytest.raises(InvalidModel):
            c.labels({"c": bad}, "c")


def test_pointer_escaping() -> None:
    assert scorer._base.pointer_join("/a", "b/c", "d~e", 3) == "/a/b~1c/d~0e/3"


def test_a_crashing_implementation_becomes_invalid_model_at_its_node() -> None:
    doc = kit.make_doc()
    doc["estimator"]["boom"] = True
    with pytest.raises(InvalidModel, match="malformed test_affine node \\(KeyError") as info:
        scorer.load_model(doc)
    assert info.value.problems[0][0] == "/estimator"


# -- canonical bytes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, text",
    [
        (0.0, "0"),
        (-0.0, "0"),
        (1.0, "1"),
        (-1.5, "-1.5"),
        (123.0, "123"),
        (0.1, "0.1"),
        (1 / 3, "0.3333333333333333"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (1.5e-10, "1.5e-10"),
        (1e16, "10000000000000000"),
        (1.5e16, "15000000000000000"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (2.0**60, "1152921504606847000"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e308".replace("e", "e+")),
        (2**53, "9007199254740992"),
        (-(2**53), "-9007199254740992"),
        (7, "7"),
    ],
)
def test_numbers_are_written_as_ecmascript_writes_doubles(value: float, text: str) -> None:
    assert _es_number(value) == text
    assert canonical_bytes({"v": [value, value]}) == f'{{"v":[{text},{text}]}}'.encode()


def test_canonical_bytes_follow_rfc_8785() -> None:
    doc = {
        "b": [1.0, "x\n\u00e9\u2028"],
        "a": {"\U0001f600": 1, "\ue000": 2},
        "sha256": "ignored",
        "c": None,
        "d": True,
    }
    assert canonical_bytes(doc) == (
        '{"a":{"\U0001f600":1,"\ue000":2},"b":[1,"x\\n\u00e9\u2028"],"c":null,"d":true}'.encode()
    )
    shuffled = json.loads(json.dumps(dict(reversed(list(doc.items())))))
    assert scorer.content_sha256(shuffled) == scorer.content_sha256(doc)
    assert scorer.content_sha256(doc) == hashlib.sha256(canonical_bytes(doc)).hexdigest()


def test_numpy_floats_are_written_as_numbers() -> None:
    assert canonical_bytes({"a": np.float64(1.5), "b": [np.float64(2.0), 1.0]}) == b'{"a":1.5,"b":[2,1]}'


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"v": 2**53 + 1}, "beyond"),
        ({"v": [float("nan")]}, "NaN"),
        ({"v": "\ud800"}, "not valid Unicode"),
        ({"v": {1: 2}}, "keys must be strings"),
        ({"v": object()}, "not a JSON value"),
    ],
)
def test_values_without_a_canonical_form(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidModel, match=message):
        canonical_bytes(doc)


# -- the input layer --------------------------------------------------------------------------------

ROWS: list[list[Any]] = [[1.0, 2.0, 3.0], [4.0, None, 6.0], [0.5, -1.0, 0.0]]
EXPECTED = np.array([1.0 - 4.0 + 1.5 + 0.25, np.nan, 0.5 + 2.0 + 0.25])


def _forms() -> dict[str, Any]:
    pd = pytest.importorskip("pandas")
    names = ["f0", "f1", "f2"]
    records = [dict(zip(names, r, strict=True)) for r in ROWS]
    return {
        "array": np.array(ROWS, dtype=np.float64),
        "object array": np.array(ROWS, dtype=object),
        "list of rows": ROWS,
        "tuples": [tuple(r) for r in ROWS],
        "generator": (r for r in ROWS),
        "records": records,
        "columns": {k: [r[k] for r in records] for k in names},
        "numpy columns": {k: np.array([r[k] for r in records], dtype=float) for k in names},
        "dataframe": pd.DataFrame(records),
        "nullable dataframe": pd.DataFrame(records).astype("Float64"),
    }


@pytest.mark.parametrize(
    "form",
    [
        "array",
        "object array",
        "list of rows",
        "tuples",
        "generator",
        "records",
        "columns",
        "numpy columns",
        "dataframe",
        "nullable dataframe",
    ],
)
def test_every_input_form_gives_the_same_predictions(form: str) -> None:
    model = scorer.load_model(kit.make_doc())
    got = model.predict(_forms()[form])
    np.testing.assert_allclose(got, EXPECTED, rtol=0, atol=1e-12)
    assert np.isnan(got[1])  # missing numeric values are NaN


def test_a_single_record_is_one_row() -> None:
    model = scorer.load_model(kit.make_doc())
    np.testing.assert_allclose(model.predict({"f0": 1.0, "f1": 2.0, "f2": 3.0}), EXPECTED[:1])


def test_categorical_inputs_keep_strings_and_map_missing_to_none() -> None:
    pd = pytest.importorskip("pandas")
    model = scorer.load_model(kit.make_doc(coef=(1.0, 0.0), categorical=[1]))
    features = model.features
    frame = pd.DataFrame({"f0": [1.0, 2.0, 3.0, 4.0], "f1": ["a", None, np.nan, "bb"]})
    X = to_matrix(frame, features)
    assert X.dtype == object and X[:, 1].tolist() == ["a", None, None, "bb"]
    np.testing.assert_allclose(model.predict(frame), [1 + 1 + 0.25, 2 - 1 + 0.25, 3 - 1 + 0.25, 4 + 2 + 0.25])
    cat = frame.astype({"f1": "category"})
    np.testing.assert_allclose(model.predict(cat), model.predict(frame))
    assert to_matrix([[1, "a"]], features)[0].tolist() == [1.0, "a"]


@pytest.mark.parametrize(
    "X, message, row, feature",
    [
        ([[1, 2]], "row 0: expected 3 values", 0, None),
        ([[1, 2, 3], [1, 2, "x"]], "row 1, feature 'f2': expected a number, got 'x'", 1, "f2"),
        ([[1, 2, 3], [1, [2], 3]], "row 1, feature 'f1': expected a number", 1, "f1"),
        ([[1, 2, 3], "abc"], "row 1: expected a list of 3 values", 1, None),
        ([{"f0": 1, "f1": 2, "f2": 3}, {"f0": 1, "f1": 2}], "row 1: missing feature 'f2'", 1, "f2"),
        ([{"f0": 1, "f1": 2, "f2": 3, "zz": 4}], "row 0: unknown feature 'zz'", 0, "zz"),
        ({"f0": [1], "f1": [2]}, "missing feature 'f2'", None, "f2"),
        ({"f0": [1], "f1": [2], "f2": [3], "f3": [4]}, "unknown feature 'f3'", None, "f3"),
        ({"f0": [1, 2], "f1": [2], "f2": [3]}, "columns have different lengths", None, None),
        ({"f0": [1], "f1": 2, "f2": [3]}, "feature 'f1': expected a list of values", None, "f1"),
        (np.zeros(3), "expected a 2-D array", None, None),
        (np.zeros((2, 4)), "expected 3 columns", None, None),
        (np.array([["1", "2", "3"]]), "row 0, feature 'f0': expected a number, got '1'", 0, "f0"),
        ("f0,f1,f2", "expected a 2-D array, a list of rows", None, None),
        ([[1, 2, 3 + 4j]], "row 0, feature 'f2'", 0, "f2"),
    ],
)
def test_input_errors_name_the_row_and_the_feature(
    X: Any, message: str, row: int | None, feature: str | None
) -> None:
    model = scorer.load_model(kit.make_doc())
    with pytest.raises(InvalidInput, match=message.replace("(", "\\(").replace("[", "\\[")) as info:
        model.predict(X)
    assert info.value.row == row
    assert info.value.feature == feature


def test_empty_input_gives_empty_output() -> None:
    model = scorer.load_model(kit.make_doc())
    assert model.predict([]).shape == (0,)
    assert model.predict(np.empty((0, 3))).shape == (0,)


# -- Model ------------------------------------------------------------------------------------------


def test_model_api() -> None:
    model = scorer.load_model(kit.make_doc(classes=["no", "yes"]))
    assert model.feature_names == ["f0", "f1", "f2"]
    assert model.classes.tolist() == ["no", "yes"]  # type: ignore[union-attr]
    assert model.methods == ["predict", "predict_proba"]
    assert model.supports("predict_proba") and not model.supports("transform")
    assert model.task == "classification" and model.name == "affine" and model.type_name == "test_affine"
    assert model.predict_proba(ROWS[:1]).shape == (1, 2)
    with pytest.raises(MethodNotSupported, match="has no transform; it offers predict, predict_proba"):
        model.transform(ROWS)
    assert isinstance(MethodNotSupported("x"), AttributeError)  # as scikit-learn's missing methods


def test_a_method_the_document_does_not_declare_is_not_offered() -> None:
    doc = kit.make_doc(classes=["no", "yes"])
    doc["output"]["methods"] = ["predict"]
    model = scorer.load_model(doc)
    assert model.methods == ["predict"]
    with pytest.raises(MethodNotSupported):
        model.predict_proba(ROWS)


def test_load_model_needs_only_what_scoring_needs_validate_needs_everything() -> None:
    full = kit.make_doc()
    minimal = {k: full[k] for k in ("format_version", "input", "estimator")}
    assert scorer.load_model(minimal).predict(ROWS[:1]).shape == (1,)
    with pytest.raises(InvalidModel) as info:
        scorer.validate_model(minimal)
    pointers = {p for p, _ in info.value.problems}
    assert {"/metadata", "/output", "/test_vectors", "/sha256"} <= pointers


@pytest.mark.parametrize("source", ["dict", "text", "bytes", "path", "str path"])
def test_load_model_sources(source: str, tmp_path: Any) -> None:
    doc = kit.make_doc()
    text = json.dumps(doc)
    path = tmp_path / "m.json"
    path.write_text(text)
    arg = {"dict": doc, "text": text, "bytes": text.encode(), "path": path, "str path": str(path)}[source]
    assert scorer.load_model(arg).name == "affine"
    assert scorer.validate_model(arg).sha256 == doc["sha256"]


def test_verify_sha256_on_load() -> None:
    doc = kit.make_doc()
    doc["metadata"]["description"] = "changed"
    scorer.load_model(doc)
    with pytest.raises(InvalidModel, match="sha256"):
        scorer.load_model(doc, verify_sha256=True)


@pytest.mark.parametrize(
    "version, ok",
    [
        ("1.0", True),
        ("1.7", True),
        ("2.0", False),
        ("0.9", False),
        ("1", False),
        ("1.0.0", False),
        (1.0, False),
        ("v1.0", False),
    ],
)
def test_format_versions(version: Any, ok: bool) -> None:
    doc = kit.resign({**kit.make_doc(), "format_version": version})
    if ok:
        scorer.validate_model(doc)
        return
    with pytest.raises(InvalidModel) as info:
        scorer.validate_model(doc)
    assert info.value.problems[0][0] == "/format_version"


# -- validation -------------------------------------------------------------------------------------


def test_validate_model_collects_every_problem_at_once() -> None:
    doc = kit.make_doc(classes=["no", "yes"])
    doc["metadata"]["name"] = "bad name!"
    doc["metadata"]["created"] = "yesterday"
    del doc["metadata"]["producer"]
    doc["output"]["methods"] = ["predict", "predict_proba", "transform"]
    doc["output"]["classes"] = ["no", "maybe"]
    doc["input"]["features"][0]["categories"] = ["x"]
    doc["test_vectors"]["outputs"]["predict"][2] = "maybe"
    doc["test_vectors"]["outputs"]["decision_function"] = [0.0] * 6
    doc["sha256"] = "0" * 64
    with pytest.raises(InvalidModel) as info:
        scorer.validate_model(doc)
    pointers = [p for p, _ in info.value.problems]
    for expected in [
        "/metadata/name",
        "/metadata/created",
        "/metadata/producer",
        "/output/methods/2",
        "/output/classes",
        "/input/features/0/categories",
    ]:
        assert expected in pointers, (expected, info.value.problems)


def test_validate_reports_test_vector_rows_and_keeps_other_problems() -> None:
    doc = kit.make_doc(classes=["no", "yes"])
    doc["test_vectors"]["outputs"]["predict"][2] = "maybe"
    doc["test_vectors"]["outputs"]["predict_proba"][4] = [0.5, 0.5]
    doc["sha256"] = "0" * 64
    with pytest.raises(InvalidModel) as info:
        scorer.validate_model(doc)
    problems = dict(info.value.problems)
    assert "/sha256" in problems
    assert "expected 'maybe'" in problems["/test_vectors/outputs/predict/2"]
    assert "differs by 0.5" in problems["/test_vectors/outputs/predict_proba/4"]


def test_tolerance_is_relative_for_large_values_and_null_means_nan() -> None:
    doc = kit.make_doc(coef=(1e9,), intercept=0.0, rows=[[1.5], [None]])
    doc["test_vectors"]["outputs"]["predict"] = [1.5e9 * (1 + 5e-10), None]
    scorer.validate_model(kit.resign(doc))
    doc["test_vectors"]["outputs"]["predict"] = [1.5e9 * (1 + 5e-9), None]
    with pytest.raises(InvalidModel, match="predict of row 0"):
        scorer.validate_model(kit.resign(doc))
    doc["test_vectors"]["outputs"]["predict"] = [1.5e9, 0.0]
    with pytest.raises(InvalidModel, match="predict of row 1"):
        scorer.validate_model(kit.resign(doc))


def test_test_vector_structure_problems() -> None:
    base = kit.make_doc()
    cases = [
        (("outputs",), {}, "/test_vectors/outputs"),
        (("outputs", "predict"), "x", "/test_vectors/outputs/predict"),
        (("outputs", "predict"), [1.0], "/test_vectors/outputs/predict"),
        (("outputs", "explain"), [1.0], "/test_vectors/outputs/explain"),
        (("inputs",), [], "/test_vectors/inputs"),
        (("inputs",), [{"f0": 1}], "/test_vectors/inputs/0"),
        (("tolerance",), 0.5, "/test_vectors/tolerance"),
    ]
    for path, value, pointer in cases:
        doc = copy.deepcopy(base)
        target = doc["test_vectors"]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        with pytest.raises(InvalidModel) as info:
            scorer.validate_model(kit.resign(doc))
        assert pointer in [p for p, _ in info.value.problems], (path, info.value.problems)


def test_every_declared_method_needs_test_vectors() -> None:
    doc = kit.make_doc(classes=["no", "yes"])
    del doc["test_vectors"]["outputs"]["predict_proba"]
    with pytest.raises(InvalidModel, match=r"every method in output\.methods needs test vector outputs"):
        scorer.validate_model(kit.resign(doc))


def test_supported_types_and_schema_are_exposed() -> None:
    assert "test_affine" in scorer.supported_types()
    assert scorer.load_schema()["$schema"].endswith("2020-12/schema")


# -- the specification's examples -------------------------------------------------------------------

SPEC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "model-format.md"


def test_the_worked_example_of_the_specification_validates() -> None:
    assert "linear_regression" in scorer.supported_types()
    text = SPEC.read_text(encoding="utf-8")
    block = text.split("<!-- worked-example -->", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    model = scorer.validate_model(block)
    assert model.predict([[2.0, 30.0]]).tolist() == [144.5718901453958]
    canonical = scorer.canonical_bytes(json.loads(block)).decode()
    assert canonical in text, "the canonical bytes shown in the specification are out of date"


def test_the_canonical_bytes_example_of_the_specification() -> None:
    text = SPEC.read_text(encoding="utf-8")
    doc = {"b": [1.0, 0.5, 1e-7, 1e21], "a": "é\n"}
    assert "`" + canonical_bytes(doc).decode().replace("\n", "\\n") + "`" in text
    assert scorer.content_sha256(doc) in text


def test_lazy_family_map_matches_the_registry() -> None:
    """scorer.models.TYPE_FAMILIES routes each type to the module that registers it (lazy imports)."""
    import importlib

    from scorer import models
    from scorer._base import REGISTRY

    models.import_all()
    owners = {name: cls.__module__.rsplit(".", 1)[-1] for name, cls in REGISTRY.items()
              if cls.__module__.startswith("scorer.models.")}
    assert owners == models.TYPE_FAMILIES
    assert importlib.import_module("scorer").supported_types() == sorted(REGISTRY)


def test_a_forest_document_imports_only_the_tree_modules(tmp_path: pathlib.Path) -> None:
    """``import scorer`` loads no family; a forest loads the forest engine, the link functions and trees."""
    import subprocess
    import sys

    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    from modelsync.export import export_model

    X, y = load_iris(return_X_y=True)
    est = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y)
    path = tmp_path / "forest.json"
    path.write_text(json.dumps(export_model(est, X[:5], name="f", feature_names=list("abcd"))))
    code = ("import json, sys, scorer; before = set(sys.modules); scorer.load_model(sys.argv[1]); "
            "print(json.dumps(sorted(m for m in before if m.startswith('scorer.')))); "
            "print(json.dumps(sorted(m for m in set(sys.modules) - before if m.startswith('scorer.'))))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    at_import, at_load = (json.loads(line) for line in out.stdout.splitlines())
    assert not [m for m in at_import if m.startswith("scorer.models.") or m == "scorer._links"]
    assert [m for m in at_load if not m.startswith("scorer.models._forest")] == ["scorer._links",
                                                                                 "scorer.models.trees"]
