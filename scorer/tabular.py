"""Tables in and out of a model: CSV and JSON Lines, streamed in chunks (numpy + standard library only).

Shared by ``modelsync predict``, the batch Lambda and the device client, so that a CSV scores the same
everywhere:

    with open("data.csv", newline="") as src:
        n = tabular.score_csv(model, src, sys.stdout, proba=True)

Reading rules (docs/model-format.md, "Tabular files"):

* CSV: the first line is a header naming the columns; every model feature must be one of them. Other
  columns (ids, targets) are carried through to the output untouched.
* Numeric features: cells are parsed as numbers; an empty cell, ``NA``, ``N/A``, ``NaN``, ``null`` or
  ``None`` (any case) is a missing value (NaN). Anything else that is not a number is an error naming
  the row and the feature.
* Categorical features: the cell text is the category; only an empty cell is missing.
* JSON Lines: one object per line keyed by column name, values already typed (``null`` = missing).

Output: the input columns, then ``prediction`` (``prediction_<i>`` for several outputs; a model without
predict writes ``transform_<i>``), then one ``proba_<class>`` column per class when asked for
probabilities. Rows are numbered from 0 in error messages, header excluded.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any

import numpy as np

from ._base import InvalidInput, MethodNotSupported
from ._model import CATEGORICAL, Feature, Model

DEFAULT_CHUNK_ROWS = 10_000
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none"})
MAX_FIELD_BYTES = 1 << 20  # one CSV cell

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "MISSING_TOKENS",
    "convert_columns",
    "format_value",
    "output_header",
    "read_csv",
    "read_jsonl",
    "score_csv",
    "score_jsonl",
    "score_records",
    "score_rows",
]


# -- reading ----------------------------------------------------------------------------------------

def read_csv(stream: IO[str],
             chunk_rows: int = DEFAULT_CHUNK_ROWS) -> tuple[list[str], Iterator[list[list[str]]]]:
    """The header and an iterator of row chunks (lists of cell strings). Blank lines are skipped.

    ``stream`` is a text stream opened with ``newline=""``. A row with a different number of cells
    than the header is an :class:`InvalidInput` naming the row and its line.
    """
    csv.field_size_limit(MAX_FIELD_BYTES)
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput("the CSV is empty: expected a header line naming the columns") from None
    except csv.Error as exc:
        raise InvalidInput(f"the CSV header cannot be read: {exc}") from None
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0][1:]
    header = [h.strip() for h in header]
    if not any(header):
        raise InvalidInput("the CSV header is empty: expected column names")
    seen: set[str] = set()
    for h in header:
        if h in seen:
            raise InvalidInput(f"the CSV header names column {h!r} twice", feature=h)
        seen.add(h)
    return header, _csv_chunks(reader, len(header), chunk_rows)


def _csv_chunks(reader: Any, width: int, chunk_rows: int) -> Iterator[list[list[str]]]:
    chunk: list[list[str]] = []
    r = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InvalidInput(f"row {r} (line {reader.line_num}): {exc}", row=r) from None
        if not row:
            continue
        if len(row) != width:
            raise InvalidInput(f"row {r} (line {reader.line_num}): expected {width} cells as in the header, "
                               f"got {len(row)}", row=r)
        chunk.append(row)
        r += 1
        if len(chunk) >= chunk_rows:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def read_jsonl(stream: IO[str], chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[list[dict[str, Any]]]:
    """Chunks of JSON objects, one per non-blank line (strict JSON: no NaN literals)."""
    chunk: list[dict[str, Any]] = []
    r = 0
    for line_no, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line, parse_constant=_no_constant)
        except ValueError as exc:
            raise InvalidInput(f"row {r} (line {line_no}): not valid JSON: {exc}", row=r) from None
        if not isinstance(obj, dict):
            raise InvalidInput(f"row {r} (line {line_no}): expected a JSON object keyed by column name",
                               row=r)
        chunk.append(obj)
        r += 1
        if len(chunk) >= chunk_rows:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON; write null for a missing value")


# -- converting -------------------------------------------------------------------------------------

def convert_columns(header: Sequence[str], rows: Sequence[Sequence[str]], features: Sequence[Feature],
                    first_row: int = 0) -> dict[str, np.ndarray]:
    """CSV cells -> one column per model feature, typed for the model's input schema.

    Numeric features become float64 (NaN for missing); categorical ones object arrays of strings
    (``None`` for missing). ``first_row`` numbers the rows of this chunk in error messages.
    """
    index = {h: i for i, h in enumerate(header)}
    missing = [f.name for f in features if f.name not in index]
    if missing:
        raise InvalidInput(f"missing feature {missing[0]!r}: the model needs column(s) "
                           f"{', '.join(f.name for f in features)}", feature=missing[0])
    out: dict[str, np.ndarray] = {}
    for f in features:
        j = index[f.name]
        cells = [row[j] for row in rows]
        out[f.name] = _categories(cells) if f.kind == CATEGORICAL else _numbers(cells, f.name, first_row)
    return out


def _numbers(cells: list[str], name: str, first_row: int) -> np.ndarray:
    try:
        return np.array(cells, dtype=np.float64)  # the fast path: every cell is a number
    except ValueError:
        pass
    cleaned = ["nan" if c.strip().lower() in MISSING_TOKENS else c for c in cells]
    try:
        return np.array(cleaned, dtype=np.float64)
    except ValueError:
        for r, c in enumerate(cleaned):
            try:
                float(c)
            except ValueError:
                raise InvalidInput(f"row {first_row + r}, feature {name!r}: expected a number, "
                                   f"got {c[:60]!r}", row=first_row + r, feature=name) from None
        raise


def _categories(cells: list[str]) -> np.ndarray:
    out = np.fromiter(cells, dtype=object, count=len(cells))
    out[out == ""] = None
    return out


# -- scoring ----------------------------------------------------------------------------------------

def output_header(model: Model, proba: bool = False, n_outputs: int | None = None) -> list[str]:
    """The columns a scored table gets after its input columns."""
    if model.supports("predict"):
        cols = (["prediction"] if not n_outputs or n_outputs == 1
                else [f"prediction_{i}" for i in range(n_outputs)])
    else:
        cols = [f"transform_{i}" for i in range(n_outputs or 0)]
    if proba:
        classes = model.classes
        if classes is None or np.ndim(classes) != 1:
            raise MethodNotSupported(f"model {model.name!r} has no per-class probabilities")
        cols += [f"proba_{format_value(c)}" for c in np.asarray(classes).tolist()]
    return cols


def score_rows(model: Model, columns: dict[str, Any], proba: bool = False,
               first_row: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions (or the transform, for a model without predict) and, if asked, probabilities."""
    if proba and not model.supports("predict_proba"):
        raise MethodNotSupported(f"model {model.name!r} has no predict_proba; "
                                 f"it offers {', '.join(model.methods)}")
    try:
        main = model.predict(columns) if model.supports("predict") else model.transform(columns)
        probabilities = model.predict_proba(columns) if proba else None
    except InvalidInput as exc:
        raise _shift(exc, first_row) from None
    return np.asarray(main), probabilities


def _shift(exc: InvalidInput, first_row: int) -> InvalidInput:
    """Renumber an error raised on a chunk so that it names the row in the whole file."""
    if exc.row is None or not first_row:
        return exc
    row = exc.row + first_row
    message = re.sub(r"\brow \d+", f"row {row}", str(exc), count=1)
    return InvalidInput(message, row=row, feature=exc.feature)


def _out_cells(main: np.ndarray, probabilities: np.ndarray | None) -> list[list[Any]]:
    rows: list[list[Any]] = main.reshape(len(main), -1).tolist()
    if probabilities is None:
        return rows
    extra = np.asarray(probabilities).reshape(len(main), -1).tolist()
    return [a + b for a, b in zip(rows, extra, strict=True)]


def format_value(v: Any) -> str:
    """One output cell: shortest round-trip repr for floats, empty for NaN, text for labels."""
    if isinstance(v, np.generic):
        v = v.item()
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return str(v)


def score_csv(model: Model, src: IO[str], dst: IO[str], proba: bool = False,
              chunk_rows: int = DEFAULT_CHUNK_ROWS) -> int:
    """Score a CSV stream into a CSV stream (input columns + outputs); returns the number of rows."""
    header, chunks = read_csv(src, chunk_rows)
    writer = csv.writer(dst, lineterminator="\n")
    done = 0
    wrote_header = False
    for chunk in chunks:
        columns = convert_columns(header, chunk, model.features, first_row=done)
        main, probabilities = score_rows(model, columns, proba, first_row=done)
        if not wrote_header:
            writer.writerow(header + output_header(model, proba, _width(main)))
            wrote_header = True
        extra = _out_cells(main, probabilities)
        writer.writerows(row + [format_value(v) for v in out] for row, out in zip(chunk, extra, strict=True))
        done += len(chunk)
    if not wrote_header:
        writer.writerow(header + output_header(model, proba))
    return done


def score_records(model: Model, records: Sequence[dict[str, Any]], proba: bool = False,
                  first_row: int = 0) -> list[dict[str, Any]]:
    """Score objects keyed by column name; return them with the output columns added.

    Keys that are not model features are carried through; values are used as given (``null`` = missing).
    """
    names = model.feature_names
    for r, rec in enumerate(records):
        absent = [k for k in names if k not in rec]
        if absent:
            raise InvalidInput(f"row {first_row + r}: missing feature {absent[0]!r}", row=first_row + r,
                               feature=absent[0])
    columns = {k: [rec[k] for rec in records] for k in names}
    main, probabilities = score_rows(model, columns, proba, first_row)
    cols = output_header(model, proba, _width(main))
    extra = _out_cells(main, probabilities)
    return [{**rec, **dict(zip(cols, map(_json_cell, out), strict=True))}
            for rec, out in zip(records, extra, strict=True)]


def score_jsonl(model: Model, src: IO[str], dst: IO[str], proba: bool = False,
                chunk_rows: int = DEFAULT_CHUNK_ROWS) -> int:
    """Score a JSON Lines stream into a JSON Lines stream; returns the number of rows."""
    done = 0
    for chunk in read_jsonl(src, chunk_rows):
        for rec in score_records(model, chunk, proba, first_row=done):
            dst.write(json.dumps(rec, ensure_ascii=False, allow_nan=False) + "\n")
        done += len(chunk)
    return done


def _json_cell(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _width(main: np.ndarray) -> int:
    return 1 if main.ndim == 1 else int(main.shape[1])


def iter_rows(chunks: Iterable[list[list[str]]]) -> Iterator[list[str]]:
    """Flatten chunks back into rows (for callers that want them one by one)."""
    for chunk in chunks:
        yield from chunk
