"""The bulk CSV path of scorer.tabular: runs of plain lines (digits, signs, points, exponents, commas) are
parsed with one numpy call and written at once. It must give bit for bit what the record-by-record path
gives (the strict cell rule, NUMBER_PATTERN + float()), and leave every other case to it: missing
tokens, quoted cells, bad cells and rows keep their row and line numbers. Inputs are generated here."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from typing import Any

import _scorer_testkit as kit
import numpy as np
import pytest

import scorer
from scorer import tabular
from scorer._records import Block, RecordReader


@pytest.fixture
def numeric() -> Iterator[scorer.Model]:
    """Three numeric features f0, f1, f2: prediction = f0 + 2 f1 - f2 + 0.25."""
    kit.install()
    try:
        yield scorer.load_model(kit.make_doc(coef=(1.0, 2.0, -1.0), classes=None, rows=[[1.0, 2.0, 3.0]]))
    finally:
        kit.uninstall()


@pytest.fixture
def labelled() -> Iterator[scorer.Model]:
    """A classifier with labels that need CSV quoting, and one-hot probabilities."""
    kit.install()
    try:
        yield scorer.load_model(kit.make_doc(coef=(1.0, 1.0, 1.0), classes=["a,b", 'say "hi"', "c"],
                                             rows=[[1.0, 2.0, 3.0]]))
    finally:
        kit.uninstall()


def random_cell(rng: random.Random) -> str:
    """A number the strict rule accepts, in every spelling a file may hold."""
    x = rng.choice([rng.gauss(0, 1), rng.uniform(-1e6, 1e6), rng.random() * 10 ** rng.randint(-320, 308),
                    float(rng.randint(-10**6, 10**6)), 0.0, -0.0, 5e-324, 1.7976931348623157e308])
    form = rng.randrange(9)
    if form == 0:
        return repr(x)
    if form == 1:
        return f"{x:.{rng.randint(0, 25)}e}"
    if form == 2:
        return f"{x:.{rng.randint(0, 20)}f}"[:400]
    if form == 3:
        return str(rng.randint(-10**20, 10**20))  # integers beyond 2**53 round like float()
    if form == 4:
        return rng.choice(["+1", ".5", "1.", "-.5e-3", "+0", "-0", "-0.0", "00012", "1E5", "1e+05", "9e999",
                          "-9e999", "1e-999", "2.4703282292062328e-324", "0.1e1", "123456789012345678901234"])
    if form == 5:  # long mantissas: the hard cases of correct rounding
        return "0." + "".join(rng.choice("0123456789") for _ in range(rng.randint(17, 40)))
    if form == 6:
        return repr(rng.gauss(0, 1)).upper()
    if form == 7:
        return f"{rng.randint(0, 99)}.{rng.randint(0, 99)}e{rng.randint(-330, 330)}"
    return repr(np.float32(rng.gauss(0, 100)).item())


def per_cell(cells: list[str]) -> np.ndarray:
    return np.array([tabular.parse_number(c) for c in cells])


def block_of(rows: list[list[str]]) -> Block:
    return Block(2, 0, 0, [",".join(r).encode() for r in rows])


def converter(width: int) -> tabular._Converter:
    from scorer._inputs import Feature

    features = [Feature(f"f{j}", "numeric", None) for j in range(width)]
    return tabular._Converter(features, [f"f{j}" for j in range(width)])


@pytest.mark.parametrize("seed", range(5))
def test_bulk_numbers_are_bit_identical_to_the_cell_rule(seed: int) -> None:
    rng = random.Random(seed)
    rows = [[random_cell(rng) for _ in range(4)] for _ in range(500)]
    columns = converter(4).convert_block(block_of(rows))
    assert columns is not None
    for j in range(4):
        want = per_cell([r[j] for r in rows])
        assert columns[f"f{j}"].view(np.int64).tolist() == want.view(np.int64).tolist()


@pytest.mark.parametrize("cell", ["", "1e", "e5", ".", "-", "+", "+-1", "1.2.3", "1-2", "1e5e5", "1e+",
                                  ".e5", "--1", "1+"])
def test_a_cell_the_rule_refuses_sends_the_block_record_by_record(cell: str) -> None:
    assert tabular._NUMBER.fullmatch(cell) is None
    assert converter(3).convert_block(block_of([["1", "2", "3"], ["4", cell, "6"], ["7", "8", "9"]])) is None


@pytest.mark.parametrize("rows", [[["1", "2", "3"], ["4", "5"]], [["1", "2", "3"], ["4", "5", "6", "7"]],
                                  [["1", "2"], ["3", "4", "5", "6"]]])
def test_a_line_of_another_width_sends_the_block_record_by_record(rows: list[list[str]]) -> None:
    assert converter(3).convert_block(block_of(rows)) is None


def score(model: scorer.Model, data: bytes, read_bytes: int = 1 << 20, fmt: str = "csv", **kw: Any
          ) -> tuple[str, list[tabular.BadRow]]:
    bad: list[tabular.BadRow] = []
    out = io.BytesIO()
    tabular.score_table(model, tabular.TableReader(io.BytesIO(data), fmt, read_bytes=read_bytes), out,
                        on_error=bad.append, proba=None, **kw)
    return out.getvalue().decode(), bad


def table(rng: random.Random, n: int, odd: float) -> bytes:
    """An id column and f0..f2: mostly plain numbers, with a share ``odd`` of rows a plain path must
    not take (missing tokens, quotes, CRLF, bad cells, widths, blank lines)."""
    lines = ["id,f0,f1,f2"]
    odd_rows = ['{i},NA,1,2', '{i},"1",2,3', '"{i}",1,2,3', '{i},1e,2,3', '{i},1-2,3,4', '{i},1,2',
                '{i},1,2,3,4', '', '{i},,2,3', '{i},inf,-Infinity,1', '{i},1,2,3\r', '{i}, 1,2,3',
                '{i},nan,2,3', '"{i}\nx",1,2,3', '{i},1_0,2,3']
    for i in range(n):
        if rng.random() < odd:
            lines.append(rng.choice(odd_rows).format(i=i))
        else:
            lines.append(",".join([str(i), *(random_cell(rng) for _ in range(3))]))
    return ("\n".join(lines) + rng.choice(["\n", ""])).encode()


@pytest.mark.parametrize("seed, odd, chunk_rows, read_bytes", [
    (0, 0.0, 64, 1 << 20), (1, 0.01, 50, 333), (2, 0.05, 7, 97), (3, 0.3, 1000, 1 << 12), (4, 0.01, 1, 50)])
def test_outputs_and_bad_rows_equal_the_record_path(numeric: scorer.Model, labelled: scorer.Model,
                                                    monkeypatch: pytest.MonkeyPatch, seed: int, odd: float,
                                                    chunk_rows: int, read_bytes: int) -> None:
    data = table(random.Random(seed), 600, odd)
    taken: list[bool] = []
    real = tabular._score_block
    monkeypatch.setattr(tabular, "_score_block", lambda *a: taken.append(real(*a)) or taken[-1])
    got = [score(m, data, read_bytes, chunk_rows=chunk_rows) for m in (numeric, labelled)]
    assert any(taken)  # the bulk path did run
    with monkeypatch.context() as m:
        m.setattr(RecordReader, "plain_block", lambda self, *a, **k: None)
        want = [score(model, data, read_bytes, chunk_rows=chunk_rows) for model in (numeric, labelled)]
    assert got == want
    if odd:
        assert got[0][1] and all(b.line >= 2 for b in got[0][1])


def test_bad_rows_inside_plain_runs_keep_their_line_numbers(numeric: scorer.Model) -> None:
    rows = [f"{i},{i},1,2" for i in range(100)]
    rows[10] = "10,1e,1,2"  # plain characters, not a number
    rows[50] = "50,1,2"  # plain characters, a short row
    rows[70] = "70,,1,2"  # empty: missing (NaN), not an error
    text, bad = score(numeric, ("id,f0,f1,f2\n" + "\n".join(rows) + "\n").encode(), chunk_rows=32)
    assert [(b.line, b.row) for b in bad] == [(12, 10), (52, 50)]
    assert "'1e'" in bad[0].reason and "expected 4 fields" in bad[1].reason
    out = text.splitlines()
    assert out[0] == "id,f0,f1,f2,prediction" and len(out) == 99
    assert out[1] == "0,0,1,2,0.25" and out[69] == "70,,1,2,"


def test_a_chunk_range_stops_at_its_end_line(numeric: scorer.Model) -> None:
    data = b"f0,f1,f2\n" + b"".join(f"{i},1,2\n".encode() for i in range(20))
    whole = tabular.TableReader(io.BytesIO(data))
    starts = list(whole.boundaries())
    (line, offset), (end, _) = starts[5], starts[12]
    part = tabular.TableReader(io.BytesIO(data[offset:]), header=["f0", "f1", "f2"], first_line=line,
                               offset=offset, end_line=end)
    out = io.BytesIO()
    counts = tabular.score_table(numeric, part, out, write_header=False, chunk_rows=4)
    assert counts.rows == 7
    assert [r.split(",")[0] for r in out.getvalue().decode().splitlines()] == [str(i) for i in range(5, 12)]


def test_progress_is_told_rows_and_bytes_after_every_chunk(numeric: scorer.Model) -> None:
    data = b"f0,f1,f2\n" + b"".join(f"{i},1,2\n".encode() for i in range(25)) + b"NA,1,2\n"
    seen: list[tuple[int, int]] = []
    tabular.score_table(numeric, tabular.TableReader(io.BytesIO(data)), io.BytesIO(), chunk_rows=10,
                        progress=lambda counts, done: seen.append((counts.rows, done)))
    assert [rows for rows, _ in seen] == [10, 20, 25, 26]
    assert seen[-1][1] == len(data) and [b for _, b in seen] == sorted(b for _, b in seen)


@pytest.mark.parametrize("seed", range(3))
def test_json_numbers_in_one_call_equal_float_of_each(seed: int) -> None:
    rng = random.Random(seed)
    values: list[Any] = [rng.choice([rng.gauss(0, 1), rng.randint(-2**70, 2**70), rng.randint(-10, 10), None,
                                     2**64 - rng.randint(0, 2**12), -0.0, 10**300 * rng.randint(1, 9)])
                         for _ in range(400)]
    got, bad = tabular.number_column(values)
    assert not bad
    want = np.array([np.nan if v is None else float(v) for v in values])
    assert got.view(np.int64).tolist() == want.view(np.int64).tolist()
    got, bad = tabular.number_column([1.5, 10**400, None])  # too large for a double: that cell only
    assert list(bad) == [1] and got[0] == 1.5


def test_jsonl_rows_are_written_as_before(labelled: scorer.Model) -> None:
    rows = [{"id": i, "f0": i / 3, "f1": None if i % 7 == 0 else i, "f2": 1e300, "note": "é"}
            for i in range(50)]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    text, bad = score(labelled, data, fmt="jsonl")
    assert not bad
    columns = {k: [np.nan if r[k] is None else r[k] for r in rows] for k in ("f0", "f1", "f2")}
    proba, labels = labelled.predict_proba(columns).tolist(), labelled.predict(columns).tolist()
    cls = list(labelled.classes)
    want = [json.dumps({**r, "prediction": lab, **{f"proba_{c}": p for c, p in zip(cls, ps, strict=True)}},
                       ensure_ascii=False)
            for r, lab, ps in zip(rows, labels, proba, strict=True)]
    assert text.splitlines() == want


def test_a_plain_block_stops_at_its_byte_budget() -> None:
    from scorer._records import Lines

    data = b"".join(f"{i},{i * 2}\n".encode() for i in range(1000))
    lines = Lines(io.BytesIO(data), read_bytes=64)
    first = lines.plain(10_000, max_bytes=200)
    assert 200 <= sum(len(x) + 1 for x in first) < 200 + 64 + 16
    rest = lines.plain(10_000, max_bytes=1 << 20)
    assert [*first, *rest] == data.split(b"\n")[:-1] and lines.line == 1000 and lines.next_offset == len(data)


def test_chosen_outputs_are_written_alike_in_bulk(labelled: scorer.Model,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    data = table(random.Random(7), 300, 0.02)
    got = score(labelled, data, outputs=["predict_proba", "predict"], chunk_rows=64)
    monkeypatch.setattr(RecordReader, "plain_block", lambda self, *a, **k: None)
    assert got == score(labelled, data, outputs=["predict_proba", "predict"], chunk_rows=64)
    assert got[0].splitlines()[0].endswith('"proba_a,b","proba_say ""hi""",proba_c,prediction')


def test_labels_with_line_breaks_and_non_ascii_are_written_as_the_record_path_writes_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    kit.install()
    try:
        model = scorer.load_model(kit.make_doc(coef=(1.0, 1.0, 1.0), classes=["a\nb", "é, ü", "c\r\n"],
                                               rows=[[1.0, 2.0, 3.0]]))
    finally:
        kit.uninstall()
    rng = random.Random(7)
    data = ("f0,f1,f2\n" + "".join(",".join(repr(rng.gauss(0, 3)) for _ in range(3)) + "\n"
                                   for _ in range(300))).encode()
    taken: list[bool] = []
    real = tabular._score_block
    monkeypatch.setattr(tabular, "_score_block", lambda *a: taken.append(real(*a)) or taken[-1])
    got = score(model, data, chunk_rows=64)
    assert taken and all(taken)  # every block went the bulk way
    with monkeypatch.context() as m:
        m.setattr(RecordReader, "plain_block", lambda self, *a, **k: None)
        want = score(model, data, chunk_rows=64)
    assert got == want and '"a\nb"' in got[0] and "é, ü" in got[0]
