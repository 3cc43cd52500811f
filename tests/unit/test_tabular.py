"""scorer.tabular, the one table reader/writer: the cell rule, RFC 4180 streaming, the output shape and
the error policy. Every input is generated here; models are the test_affine kit (and tiny sklearn
exports for multi-output and unknown categories)."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from typing import Any

import _scorer_testkit as kit
import numpy as np
import pytest

import scorer
from scorer import InvalidInput, MethodNotSupported, tabular


class Trickle:
    """A stream that hands out at most ``n`` bytes per read(), like a slow S3 body; only read() exists."""

    def __init__(self, data: bytes, n: int = 1) -> None:
        self._data, self._pos, self._n = data, 0, n

    def read(self, n: int) -> bytes:
        out = self._data[self._pos:self._pos + min(n, self._n)]
        self._pos += len(out)
        return out


@pytest.fixture
def affine() -> Iterator[scorer.Model]:
    """f0 numeric, f1 categorical declared ["a", "bb", "NA"].

    prediction = f0 + 0.25 + len(f1), -1 instead of len for a missing category."""
    kit.install()
    try:
        doc = kit.make_doc(coef=(1.0, 0.0), categorical=[1], classes=None)
        doc["input"]["features"][1]["categories"] = ["a", "bb", "NA"]
        yield scorer.load_model(doc)
    finally:
        kit.uninstall()


@pytest.fixture
def labelled() -> Iterator[scorer.Model]:
    """A classifier with string labels (one-hot probabilities), one numeric feature f0."""
    kit.install()
    try:
        yield scorer.load_model(kit.make_doc(coef=(1.0,), intercept=0.0, classes=["cat", "dog", "emu"],
                                             rows=[[1.0]]))
    finally:
        kit.uninstall()


def score(model: scorer.Model, data: bytes, fmt: str = "csv", **kw: Any) -> tuple[str, list[tabular.BadRow]]:
    bad: list[tabular.BadRow] = []
    out = io.BytesIO()
    tabular.score_table(model, tabular.TableReader(io.BytesIO(data), fmt), out, on_error=bad.append, **kw)
    return out.getvalue().decode(), bad


# -- the cell rule ------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["", "NA", "na", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "none"])
def test_missing_tokens_are_nan_in_numeric_features(cell: str) -> None:
    assert tabular.is_missing(cell)
    assert math.isnan(tabular.parse_number(cell))
    values, bad = tabular.number_column(["1.5", cell])
    assert not bad and values[0] == 1.5 and math.isnan(values[1])


@pytest.mark.parametrize("cell, want", [("1", 1.0), ("-2.5", -2.5), ("+.5", 0.5), ("5.", 5.0),
                                        ("1e3", 1000.0), ("1E-2", 0.01), ("inf", math.inf),
                                        ("-Infinity", -math.inf)])
def test_numbers(cell: str, want: float) -> None:
    assert tabular.parse_number(cell) == want
    values, bad = tabular.number_column([cell, "0"])  # the vectorised path agrees with the cell rule
    assert not bad and values[0] == want


@pytest.mark.parametrize("cell", [" 1", "1 ", "1_0", "0x10", "1,5", "1.2.3", "e5", "-", "+-1", "1e", "-nan",
                                  " NA", "nan ", "\u0661", "١", "ｌ"])
def test_strict_numbers_refuse_anything_else(cell: str) -> None:
    with pytest.raises(ValueError, match="expected a number"):
        tabular.parse_number(cell)
    values, bad = tabular.number_column(["1", cell, "NA", "2"])
    assert list(bad) == [1] and "expected a number" in bad[1]
    assert values[0] == 1.0 and math.isnan(values[2]) and values[3] == 2.0


def test_number_column_fast_path_with_missing_tokens_matches_cell_by_cell() -> None:
    cells = ["1.5", "", "NA", "-3e2", "null", "7"] * 50
    values, bad = tabular.number_column(cells)
    assert not bad
    want = [tabular.parse_number(c) for c in cells]
    np.testing.assert_array_equal(values, np.array(want))


def test_json_values_in_numeric_features() -> None:
    values, bad = tabular.number_column([1, 2.5, None, "3", "NA", True, [1], {"a": 1}, "x"])
    assert values[:5].tolist()[:2] == [1.0, 2.5] and math.isnan(values[2]) and values[3] == 3.0
    assert math.isnan(values[4])
    assert sorted(bad) == [5, 6, 7, 8] and bad[5] == "expected a number, got true"


def test_declared_category_stays_that_category() -> None:
    rule = tabular.CategoryRule(["a", "NA", "None"])
    assert [rule.text(c) for c in ["a", "NA", "None", "na", "N/A", "", "zebra"]] == \
        ["a", "NA", "None", None, None, None, "zebra"]
    assert tabular.CategoryRule(None).text("NA") is None
    numeric = tabular.CategoryRule([1, 2, 3])
    assert [numeric.text(c) for c in ["1", "2.0", "2.5", "NA", "x"]] == [1, 2, 2.5, None, "x"]
    values, bad = tabular.CategoryRule(["a"]).column(["a", None, 3, True])
    assert values.tolist()[:3] == ["a", None, 3] and list(bad) == [3]


# -- reading: RFC 4180 over any binary stream -----------------------------------------------------

TRICKY = (
    '\ufeffid,f0,f1\r\n'
    '1,2.5,a\r\n'
    '"two\r\nlines",1,"bb"\r\n'
    '\r\n'
    '3,NA,NA\r\n'
    '"quote ""q"", comma",1e1,a\n'
    '5,N/A,none\n'
    '6,oops,a\n'
    '7,1\n'
    '8,none,"bb"'
).encode()


def test_tricky_csv(affine: scorer.Model) -> None:
    text, bad = score(affine, TRICKY)
    assert text == "\n".join([
        "id,f0,f1,prediction",
        "1,2.5,a,3.75",
        '"two\r\nlines",1,bb,3.25',  # the quoted CRLF is kept inside the cell, re-quoted on output
        "3,NA,NA,",  # NA: missing number (NaN prediction), but the declared category "NA"
        '"quote ""q"", comma",1e1,a,11.25',
        "5,N/A,none,",
        "8,none,bb,",
        "",
    ])
    # physical lines where the records start: the quoted line break counts, the blank line too
    assert [(b.line, b.row, b.reason) for b in bad] == [
        (9, 5, "feature 'f0': expected a number, got 'oops'"),
        (10, 6, "expected 3 fields as in the header, got 2"),
    ]


@pytest.mark.parametrize("n", [1, 2, 3, 7, 1 << 20])
def test_any_read_size_gives_the_same_result(affine: scorer.Model, n: int) -> None:
    want = score(affine, TRICKY)
    bad: list[tabular.BadRow] = []
    out = io.BytesIO()
    tabular.score_table(affine, tabular.TableReader(Trickle(TRICKY, n), read_bytes=5), out,
                        on_error=bad.append, chunk_rows=2)
    assert (out.getvalue().decode(), bad) == want


def test_records_know_their_line_and_byte_offset() -> None:
    data = b'h\n"a\nb"\n\nc\r\n"d"'
    reader = tabular.TableReader(Trickle(data))
    assert reader.header == ["h"]
    starts = [(r.line, r.offset, r.values) for r in reader.records()]
    assert starts == [(2, 2, ["a\nb"]), (5, 9, ["c"]), (6, 12, ["d"])]
    assert data[9:12] == b"c\r\n" and reader.lines == 6 and reader.offset == len(data)
    assert list(tabular.TableReader(io.BytesIO(data)).boundaries()) == [(2, 2), (5, 9), (6, 12)]


def test_a_byte_range_reads_like_the_whole_file(affine: scorer.Model) -> None:
    whole = tabular.TableReader(io.BytesIO(TRICKY))
    records = list(whole.records())
    second = records[1]  # starts with the quoted line break
    part = tabular.TableReader(io.BytesIO(TRICKY[second.offset:]), header=whole.header,
                               first_line=second.line, offset=second.offset, end_line=records[4].line)
    got = [(r.line, r.values) for r in part.records()]
    assert got == [(r.line, r.values) for r in records[1:4]]


def test_bom_only_at_the_start_and_crlf_header() -> None:
    reader = tabular.TableReader(io.BytesIO("\ufeffa,b\r\n1,2\r\n".encode()))
    assert reader.header == ["a", "b"]
    assert [r.values for r in reader.records()] == [["1", "2"]]


def test_bad_utf8_and_broken_quotes_are_bad_rows(affine: scorer.Model) -> None:
    data = b'id,f0,f1\n1,1,a\n2,\xff1,a\n3,"1"x,a\n4,2,a\n'
    text, bad = score(affine, data)
    assert text.splitlines()[1:] == ["1,1,a,2.25", "4,2,a,3.25"]
    assert [b.line for b in bad] == [3, 4]
    assert "not UTF-8" in bad[0].reason and "not valid CSV" in bad[1].reason


def test_an_unclosed_quote_is_one_bad_record_not_the_rest_of_memory(affine: scorer.Model) -> None:
    text, bad = score(affine, b'id,f0,f1\n1,1,a\n2,"1,a\n3,1,a\n')
    assert text.splitlines()[1:] == ["1,1,a,2.25"]
    assert [(b.line, b.reason[:14]) for b in bad] == [(3, "not valid CSV:")]


@pytest.mark.parametrize("data, match", [
    (b"", "the CSV is empty"),
    (b"\n\n", "the CSV is empty"),
    (b"f0,f0\n1,2\n", "names column 'f0' twice"),
    (b"f1\na\n", "missing feature 'f0'"),
    (b'"f0\n', "the CSV header \\(line 1\\) cannot be read"),
])
def test_whole_input_refusals(affine: scorer.Model, data: bytes, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        score(affine, data)


# -- JSON Lines --------------------------------------------------------------------------------------

def test_json_lines(affine: scorer.Model) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    lines = [
        '{"f0": 1.5, "f1": "bb", "id": "x"}',
        "",
        '{"f0": null, "f1": null, "id": "y"}',
        '{"f0": NaN, "f1": "a"}',
        '{"f0": 1, "f0": 2, "f1": "a"}',
        deep,
        '{"id": 7, "f0": 2}',
        "[1, 2]",
        '{"f0": "NA", "f1": "NA", "id": "z"}',
        '{"f0": true, "f1": "a"}',
        "{broken",
    ]
    text, bad = score(affine, ("\n".join(lines) + "\n").encode(), "jsonl")
    assert [json.loads(x) for x in text.splitlines()] == [
        {"f0": 1.5, "f1": "bb", "id": "x", "prediction": 3.75},
        {"f0": None, "f1": None, "id": "y", "prediction": None},
        {"f0": "NA", "f1": "NA", "id": "z", "prediction": None},
    ]
    assert [b.line for b in bad] == [4, 5, 6, 7, 8, 10, 11]
    reasons = [b.reason for b in bad]
    assert reasons[0].startswith("not valid JSON") and "duplicate key" in reasons[1]
    assert reasons[2] == "not valid JSON: nested too deeply"
    assert reasons[3] == "missing feature 'f1'" and reasons[4].startswith("expected a JSON object")
    assert reasons[5] == "feature 'f0': expected a number, got true"


# -- the output shape ------------------------------------------------------------------------------

def test_proba_columns_with_string_labels_csv_and_jsonl(labelled: scorer.Model) -> None:
    want = ["prediction", "proba_cat", "proba_dog", "proba_emu"]
    assert tabular.output_columns(labelled, proba=True) == want
    assert tabular.output_columns(labelled, proba=None) == tabular.output_columns(labelled, proba=True)
    assert tabular.output_columns(labelled) == ["prediction"]
    text, _ = score(labelled, b"id,f0\na,1\nb,2\n", proba=True)
    assert text.splitlines() == ["id,f0,prediction,proba_cat,proba_dog,proba_emu",
                                 "a,1,dog,0.0,1.0,0.0", "b,2,emu,0.0,0.0,1.0"]
    text, _ = score(labelled, b'{"id": "a", "f0": 1}\n', "jsonl", proba=True)
    assert json.loads(text) == {"id": "a", "f0": 1, "prediction": "dog", "proba_cat": 0.0, "proba_dog": 1.0,
                                "proba_emu": 0.0}


def test_proba_refused_for_a_regressor(affine: scorer.Model) -> None:
    with pytest.raises(MethodNotSupported, match="has no predict_proba"):
        score(affine, b"f0,f1\n1,a\n", proba=True)
    assert tabular.output_columns(affine, proba=None) == ["prediction"]


def test_multi_output_regressor_gets_prediction_columns() -> None:
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LinearRegression

    from modelsync.export import export_model

    X = np.arange(20.0).reshape(10, 2)
    est = LinearRegression().fit(X, np.c_[X[:, 0] * 2, X[:, 1] - 1, X.sum(axis=1)])
    model = scorer.load_model(export_model(est, X, name="multi", feature_names=["a", "b"]))
    text, _ = score(model, b"a,b\n1,2\n")
    header, row = text.splitlines()
    assert header == "a,b,prediction_0,prediction_1,prediction_2"
    np.testing.assert_allclose([float(v) for v in row.split(",")[2:]], est.predict([[1.0, 2.0]])[0])
    text, _ = score(model, b'{"a": 1, "b": 2}\n', "jsonl")
    assert list(json.loads(text)) == ["a", "b", "prediction_0", "prediction_1", "prediction_2"]


# -- the error policy ------------------------------------------------------------------------------

def unknown_category_model() -> tuple[scorer.Model, Any]:
    pytest.importorskip("sklearn")
    pd = pytest.importorskip("pandas")
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from modelsync.export import export_model

    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "c": ["red", "blue", "red", "NA"]})
    est = Pipeline([("prep", ColumnTransformer([("oh", OneHotEncoder(handle_unknown="error"), ["c"])],
                                               remainder="passthrough")),
                    ("lr", LinearRegression())]).fit(frame, [1.0, 2.0, 3.0, 4.0])
    return scorer.load_model(export_model(est, frame, name="oh")), est


def test_rows_the_model_refuses_are_bad_rows_and_the_rest_is_scored() -> None:
    model, est = unknown_category_model()
    data = b"x,c\n1,red\n2,green\n3,NA\n4,purple\n5,blue\n"
    text, bad = score(model, data)
    rows = [line.split(",") for line in text.splitlines()[1:]]
    assert [r[:2] for r in rows] == [["1", "red"], ["3", "NA"], ["5", "blue"]]
    import pandas as pd

    want = est.predict(pd.DataFrame({"x": [1.0, 3.0, 5.0], "c": ["red", "NA", "blue"]}))
    np.testing.assert_allclose([float(r[2]) for r in rows], want, atol=1e-9)
    assert [(b.line, b.feature) for b in bad] == [(3, "c"), (5, "c")]
    assert all("unknown category" in b.reason and not b.reason.startswith("row") for b in bad)


def test_raise_names_the_first_bad_row_by_line_whatever_found_it(affine: scorer.Model) -> None:
    # line 4: the model refuses nothing here, so use a conversion error after a structural one
    data = b"id,f0,f1\n1,1,a\n2,1\n3,x,a\n"
    with pytest.raises(InvalidInput) as info:
        tabular.score_table(affine, tabular.TableReader(io.BytesIO(data)), io.BytesIO())
    assert str(info.value) == "row 1 (line 3): expected 3 fields as in the header, got 2"
    assert info.value.row == 1
    model, _ = unknown_category_model()
    data = b"x,c\n1,red\n2,green\nthree,red\n"
    with pytest.raises(InvalidInput, match=r"^row 1 \(line 3\): feature 'c': unknown category") as info:
        tabular.score_table(model, tabular.TableReader(io.BytesIO(data)), io.BytesIO())
    assert (info.value.row, info.value.feature) == (1, "c")


def test_collect_keeps_going_across_chunks_in_line_order(affine: scorer.Model) -> None:
    rows = [f"{i},{'x' if i % 3 == 0 else i},a" for i in range(10)]
    data = ("id,f0,f1\n" + "\n".join(rows) + "\n").encode()
    bad: list[tabular.BadRow] = []
    counts = tabular.score_table(affine, tabular.TableReader(io.BytesIO(data)), io.BytesIO(),
                                 on_error=bad.append, chunk_rows=4)
    assert (counts.rows, counts.scored, counts.errors) == (10, 6, 4)
    assert [(b.row, b.line) for b in bad] == [(0, 2), (3, 5), (6, 8), (9, 11)]
    assert bad[1].as_dict() == {"line": 5, "reason": "feature 'f0': expected a number, got 'x'"}


def test_read_columns_types_the_export_sample() -> None:
    data = b"a,b,c\n1,x,\n2.5,NA,NA\nnull,y,3\n"
    header, columns = tabular.read_columns(io.BytesIO(data))
    assert header == ["a", "b", "c"]
    assert columns[0][:2] == [1.0, 2.5] and math.isnan(columns[0][2])
    assert columns[1][0] == "x" and math.isnan(columns[1][1]) and columns[1][2] == "y"
    assert math.isnan(columns[2][0]) and math.isnan(columns[2][1]) and columns[2][2] == 3.0
    with pytest.raises(InvalidInput, match=r"row 0 \(line 2\): expected 3 fields"):
        tabular.read_columns(io.BytesIO(b"a,b,c\n1,2\n"))
    with pytest.raises(InvalidInput, match="header but no rows"):
        tabular.read_columns(io.BytesIO(b"a\n"))
