"""Tables in and out of a model: the one CSV / JSON Lines reader and writer (numpy + standard library).

Every path that reads or writes rows uses it - ``modelsync predict``, the batch function and its Step
Functions chunks, ``modelsync device predict`` and the export sample - so a cell means the same thing
everywhere (docs/model-format.md, "Tabular files")::

    with open("data.csv", "rb") as src:
        counts = tabular.score_table(model, tabular.TableReader(src, "csv"), sys.stdout.buffer, proba=True)

* Input is any binary stream with ``read(n)`` (:mod:`scorer._records`): RFC 4180 CSV with a header line,
  or JSON Lines (strict JSON, one object per line). Records are streamed in chunks of ``chunk_rows``.
* Cells follow one rule, :data:`MISSING_TOKENS` + :data:`NUMBER_PATTERN` (see :func:`number_column` and
  :class:`CategoryRule`).
* Output, the same shape for every model in CSV and JSON Lines: the input columns, then ``prediction``
  (``prediction_<i>`` for several outputs, ``transform_<i>`` for a model without predict), then one
  ``proba_<class>`` column per class when probabilities are written. ``outputs=`` names the methods
  written instead, in that order (:func:`output_columns`): ``predict`` as above, ``predict_proba`` as
  ``proba_<class>``, ``decision_function`` as one ``decision_function`` column (one value per row) or
  ``decision_<class>`` per class (``decision_<i>`` without classes), ``transform`` as ``transform_<i>``.
* Errors: ``on_error=None`` raises :class:`InvalidInput` for the first bad row; a callable receives every
  :class:`BadRow` (line number, reason) in line order while the good rows are scored.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import operator
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ._base import InvalidInput, MethodNotSupported
from ._inputs import CATEGORICAL, Feature, to_matrix
from ._model import Model
from ._records import READ_BYTES, Block, Readable, Record, RecordReader

DEFAULT_CHUNK_ROWS = 10_000
_MAX_BACKOFF = 64  # blocks skipped by the bulk path after repeated refusals (see convert_block)
FORMATS = ("csv", "jsonl")
#: The methods ``outputs=`` may name (each written as :func:`output_columns` says).
OUTPUT_METHODS = ("predict", "predict_proba", "decision_function", "transform")

#: The missing-value rule, compared case-insensitively with the whole cell (no surrounding spaces):
#: these cells are missing in a numeric feature, and in a categorical one unless they are a declared
#: category (``input.features[].categories``), which always stays that category.
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none"})
#: The number rule: a decimal number (optional sign, digits with an optional point, optional exponent)
#: or ``inf`` / ``infinity`` with an optional sign, any case. No spaces, underscores, hex or ``nan``.
NUMBER_PATTERN = r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|(?i:inf(?:inity)?))"
_NUMBER = re.compile(NUMBER_PATTERN)
# Only these characters can make up a decimal number: a column joined by "\n" without any other is
# handed to numpy whole, whose text-to-double grammar on them is exactly NUMBER_PATTERN's (both are
# Python's float() grammar; spaces, underscores and letters, where they differ, are screened out).
_NOT_DECIMAL = re.compile(r"[^0-9.eE+\-\n]")
_ROW_PREFIX = re.compile(r"^row \d+(?: \(line \d+\))?(?:, |: )")

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "FORMATS",
    "MISSING_TOKENS",
    "NUMBER_PATTERN",
    "OUTPUT_METHODS",
    "BadRow",
    "CategoryRule",
    "Counts",
    "Parsed",
    "ReadAhead",
    "Readable",
    "TableReader",
    "TableWriter",
    "Writable",
    "format_value",
    "is_missing",
    "json_value",
    "number_column",
    "output_columns",
    "output_methods",
    "parse_number",
    "parse_outputs",
    "read_columns",
    "score_table",
]


# -- the cell rule ----------------------------------------------------------------------------------

def is_missing(text: str) -> bool:
    """True when a cell's text is one of :data:`MISSING_TOKENS` (any case)."""
    return text.lower() in MISSING_TOKENS


def parse_number(text: str) -> float:
    """A numeric cell: NaN when missing, else the number; ValueError when it is neither."""
    if text.lower() in MISSING_TOKENS:
        return math.nan
    if _NUMBER.fullmatch(text):
        return float(text)
    raise ValueError(f"expected a number, got {text[:60]!r}")


def _text_number(text: str) -> float | str:
    try:
        return parse_number(text)
    except ValueError as exc:
        return str(exc)


def _decimals(cells: Sequence[str]) -> np.ndarray | None:
    """Cells that are all decimal numbers as float64 in one numpy call; None when any is not."""
    joined = "\n".join(cells)
    if joined.count("\n") != len(cells) - 1 or _NOT_DECIMAL.search(joined):
        return None
    try:
        return np.array(cells, dtype=np.float64)
    except ValueError:
        return None  # an empty cell or a malformed number: the cell-by-cell path names it


_JSON_NUMBERS = frozenset({float, int, type(None)})


def number_column(values: Sequence[Any]) -> tuple[np.ndarray, dict[int, str]]:
    """One numeric feature's cells -> float64 (NaN = missing), plus ``{index: reason}`` for bad cells.

    Text follows :func:`parse_number`; JSON numbers are taken as they are, ``null`` is missing; booleans,
    lists and objects are bad. The common case (numbers, maybe missing tokens) is a character scan and one
    numpy call; only a column with a bad cell is read cell by cell.
    """
    n = len(values)
    if n and _JSON_NUMBERS.issuperset(set(map(type, values))):  # JSON Lines: numbers (and null) as floats
        try:  # in one call, as float(v) each (None: NaN); an int too large for a double goes cell by cell
            return np.array(values, dtype=np.float64), {}
        except OverflowError:
            pass
    elif n and all(type(v) is str for v in values):
        numbers = _decimals(values)
        if numbers is not None:
            return numbers, {}
        missing = {u for u in set(values) if u.lower() in MISSING_TOKENS}
        if missing:  # numbers and missing tokens only: still two C-speed passes
            present = [v for v in values if v not in missing]
            numbers = _decimals(present) if present else np.empty(0)
            if numbers is not None:
                out = np.full(n, math.nan)
                out[np.fromiter((v not in missing for v in values), dtype=bool, count=n)] = numbers
                return out, {}
    out = np.empty(n, dtype=np.float64)
    bad: dict[int, str] = {}
    cache: dict[str, float | str] = {}
    for i, v in enumerate(values):
        t = type(v)
        r: float | str
        if t is str:
            cached = cache.get(v)
            r = cached if cached is not None else cache.setdefault(v, _text_number(v))
        elif v is None:
            r = math.nan
        elif t is float or t is int:
            try:
                r = float(v)
            except OverflowError:
                r = f"number {str(v)[:40]} is too large"
        else:
            r = f"expected a number, got {_show(v)}"
        if type(r) is str:
            bad[i] = r
            out[i] = math.nan
        else:
            out[i] = r
    return out, bad


def _json_numbers(objects: list[dict[str, Any]], getter: Callable[[dict[str, Any]], tuple[Any, ...]]
                  ) -> np.ndarray | None:
    """The features of JSON objects as a float64 matrix in one call when every value is a JSON number or
    null (NaN), as :func:`number_column` reads them column by column; None when some value is not
    (then the columns are read one by one, which names the bad cells)."""
    rows = list(map(getter, objects))
    if not _JSON_NUMBERS.issuperset(set(map(type, itertools.chain.from_iterable(rows)))):
        return None
    try:
        return np.array(rows, dtype=np.float64)
    except OverflowError:  # an integer too large for a double: named cell by cell
        return None


class CategoryRule:
    """How a categorical feature reads a value: a declared category stays that category; otherwise
    text that is a missing token is missing (None); with numeric categories, text that is a number
    becomes that number (an int when every category is one); anything else stays text for the
    estimator to judge (unknown categories are its business)."""

    def __init__(self, categories: Sequence[Any] | None) -> None:
        cats = list(categories or [])
        self.declared = frozenset(c for c in cats if isinstance(c, str))
        numbers = [c for c in cats if isinstance(c, (int, float)) and not isinstance(c, bool)]
        self.numeric = bool(cats) and len(numbers) == len(cats)
        self.ints = self.numeric and all(isinstance(c, int) for c in numbers)

    def text(self, text: str) -> Any:
        if text in self.declared:
            return text
        if self.numeric and _NUMBER.fullmatch(text):
            f = float(text)
            return int(f) if self.ints and f.is_integer() else f
        if text.lower() in MISSING_TOKENS:
            return None
        return text

    def column(self, values: Sequence[Any]) -> tuple[np.ndarray, dict[int, str]]:
        """Cells -> an object array of categories (None = missing), plus ``{index: reason}`` for bad ones."""
        n = len(values)
        bad: dict[int, str] = {}
        if all(type(v) is str for v in values):
            mapping = {u: self.text(u) for u in set(values)}
            return np.fromiter(map(mapping.__getitem__, values), dtype=object, count=n), bad
        out = np.empty(n, dtype=object)
        for i, v in enumerate(values):
            t = type(v)
            if t is str:
                out[i] = self.text(v)
            elif v is None or t is int or t is float:
                out[i] = v
            else:
                bad[i] = f"expected a category (string or number), got {_show(v)}"
        return out, bad


def _show(v: Any) -> str:
    text = json.dumps(v, ensure_ascii=False) if isinstance(v, (bool, list, dict)) else repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


# -- errors -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BadRow:
    """A row that cannot be scored: its physical line (where the record starts), row index, reason."""

    line: int
    row: int
    reason: str
    feature: str | None = None

    @property
    def message(self) -> str:
        return f"row {self.row} (line {self.line}): {self.reason}"

    def error(self) -> InvalidInput:
        return InvalidInput(self.message, row=self.row, feature=self.feature)

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "reason": self.reason}


OnError = Callable[[BadRow], None] | None
#: Told after every chunk: the counts so far (:class:`Counts`; rows for :func:`read_columns`) and the
#: input bytes read so far (for a rate and an ETA).
Progress = Callable[[Any, int], None] | None
#: Scores converted columns with the named methods: one array per method, in that order.
Predictor = Callable[[dict[str, np.ndarray], Sequence[str]], list[np.ndarray]]


@dataclass
class Counts:
    """Records read (good and bad), rows scored, rows reported as errors."""

    rows: int = 0
    scored: int = 0
    errors: int = 0

    def add(self, other: Counts) -> None:
        self.rows += other.rows
        self.scored += other.scored
        self.errors += other.errors


@dataclass
class Parsed:
    """One chunk read and parsed, ready to score: a :class:`Block` of plain CSV lines with its columns
    parsed in bulk, or records converted by :meth:`_Converter.convert` (the good ones, the bad rows).
    ``offset``: the input bytes read once the chunk was read (for progress); ``size``: the input bytes
    read for it (what a read-ahead weighs memory by)."""

    offset: int
    columns: dict[str, np.ndarray]
    size: int = 0
    block: Block | None = None
    chunk: list[Record] = field(default_factory=list)
    ok: list[Record] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)


#: Takes the iterator of parsed chunks (:class:`Parsed`) and yields the same items in the same order,
#: possibly computed ahead (e.g. by one worker thread with a small bounded queue; never in scorer/). It
#: must re-raise, at the same place in the order, any exception the iterator raised, and stop (and
#: end its worker) when its ``close()`` is called: :func:`score_table` calls it on the way out.
ReadAhead = Callable[[Iterator[Parsed]], Iterator[Parsed]] | None


# -- reading ----------------------------------------------------------------------------------------

class TableReader:
    """A table's header (CSV) and its records in chunks; the one reader of every path.

    ``header`` given: ``src`` holds only data records (a chunk of a larger input read with a byte range
    starting at ``offset``, its first line numbered ``first_line``). ``end_line`` stops before the first
    record starting on that line; ``end_byte`` stops reading there.
    """

    def __init__(self, src: Readable, fmt: str = "csv", *, header: Sequence[str] | None = None,
                 first_line: int = 1, offset: int = 0, end_byte: int | None = None,
                 end_line: int | None = None, read_bytes: int = READ_BYTES) -> None:
        self.fmt = fmt
        self._reader = RecordReader(src, fmt, first_line=first_line, offset=offset, end_byte=end_byte,
                                    read_bytes=read_bytes)
        self.end_line = end_line
        self.header: list[str] | None = None
        if fmt == "csv":
            self.header = list(header) if header is not None else self._reader.header()

    @property
    def lines(self) -> int:
        """The number of the last physical line read so far."""
        return self._reader.lines.line

    @property
    def offset(self) -> int:
        """The byte offset just after what has been read so far."""
        return self._reader.lines.next_offset

    def records(self) -> Iterator[Record]:
        end = self.end_line
        for rec in self._reader:
            if end is not None and rec.line >= end:
                return
            yield rec

    def chunks(self, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[list[Record]]:
        chunk: list[Record] = []
        for rec in self.records():
            chunk.append(rec)
            if len(chunk) >= chunk_rows:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def blocks(self, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[list[Record] | Block]:
        """Like :meth:`chunks`, except that runs of plain CSV lines come as :class:`Block` s of raw
        lines (converted in bulk by :func:`score_table`); the other records come as lists."""
        if self.fmt != "csv":
            yield from self.chunks(chunk_rows)
            return
        reader, end = self._reader, self.end_line
        records = reader.csv_records()
        chunk: list[Record] = []
        while True:
            block = reader.plain_block(chunk_rows, end)
            if block is not None:
                if chunk:
                    yield chunk
                    chunk = []
                yield block
                continue
            rec = next(records, None)
            if rec is None or (end is not None and rec.line >= end):
                break
            chunk.append(rec)
            if len(chunk) >= chunk_rows:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def boundaries(self) -> Iterator[tuple[int, int]]:
        """(line, byte offset) of every record start: where an input may be cut into chunks."""
        end = self.end_line
        for line, offset in self._reader.boundaries():
            if end is not None and line >= end:
                return
            yield line, offset


class _Converter:
    """Records -> typed feature columns for the model, with the bad rows set aside."""

    def __init__(self, features: Sequence[Feature], header: Sequence[str] | None) -> None:
        self.features = list(features)
        self.rules = [CategoryRule(f.categories) if f.kind == CATEGORICAL else None for f in self.features]
        self.header = header
        self.names = frozenset(f.name for f in self.features)
        self.index: list[int] = []
        if header is not None:
            absent = [f.name for f in self.features if f.name not in header]
            if absent:
                raise InvalidInput(f"missing feature {absent[0]!r}: the model needs column(s) "
                                   f"{', '.join(f.name for f in self.features)}", feature=absent[0])
            self.index = [list(header).index(f.name) for f in self.features]
        # blocks of plain lines are parsed at once when every feature is numeric; so are JSON objects
        self.numeric = all(r is None for r in self.rules)
        self.bulk = header is not None and self.numeric
        names = [f.name for f in self.features]
        self._getter = (lambda obj: (obj[names[0]],)) if len(names) == 1 else operator.itemgetter(*names)
        self._skip = 0  # blocks to convert record by record before trying in bulk again
        self._backoff = 1

    def convert_block(self, block: Block) -> dict[str, np.ndarray] | None:
        """A block of plain CSV lines -> the feature columns in one numpy call, or None when a line does
        not have the header's width or a cell is not a number (empty, ``1e``, ``1-2``...): then the
        block is converted record by record, which names the bad rows. A block that fails is retried
        less and less often (an input with, say, a date column never takes this path)."""
        assert self.header is not None
        if self._skip:
            self._skip -= 1
            return None
        lines, width = block.lines, len(self.header)
        n = len(lines)
        values = None
        if set(map(bytes.count, lines, [b","] * n)) == {width - 1}:
            # Plain lines hold only [0-9.eE+-,]: on those characters numpy's text reader (its cells go
            # through Python's own correctly rounded PyOS_string_to_double) accepts exactly
            # NUMBER_PATTERN and refuses the whole block for any other cell (empty, "1e", "1-2"...).
            # loadtxt's C reader costs ~15% less a cell than np.fromstring(sep=",").
            try:
                values = np.loadtxt(io.BytesIO(b"\n".join(lines)), dtype=np.float64, delimiter=",",
                                    comments=None, ndmin=2, encoding="latin-1")
            except ValueError:
                values = None
        if values is None or values.size != n * width:
            self._skip, self._backoff = self._backoff, min(2 * self._backoff, _MAX_BACKOFF)
            return None
        self._backoff = 1
        matrix = values.reshape(n, width)
        return {f.name: matrix[:, k] for f, k in zip(self.features, self.index, strict=True)}

    def convert(self, records: list[Record]) -> tuple[dict[str, np.ndarray], list[Record], list[BadRow]]:
        bad: list[BadRow] = []
        ok: list[Record] = []
        width = len(self.header) if self.header is not None else 0
        for rec in records:
            if rec.problem is not None:
                bad.append(BadRow(rec.line, rec.row, rec.problem))
            elif self.header is not None:
                if len(rec.values) == width:
                    ok.append(rec)
                else:
                    bad.append(BadRow(rec.line, rec.row, f"expected {width} fields as in the header, "
                                                         f"got {len(rec.values)}"))
            else:
                if rec.values.keys() >= self.names:
                    ok.append(rec)
                else:
                    absent = next(f.name for f in self.features if f.name not in rec.values)
                    bad.append(BadRow(rec.line, rec.row, f"missing feature {absent!r}", absent))
        if self.header is None and self.numeric and ok:
            matrix = _json_numbers([rec.values for rec in ok], self._getter)
            if matrix is not None:
                return {f.name: matrix[:, j] for j, f in enumerate(self.features)}, ok, bad
        columns: dict[str, np.ndarray] = {}
        failed: dict[int, BadRow] = {}
        for j, (f, rule) in enumerate(zip(self.features, self.rules, strict=True)):
            if self.header is not None:
                k = self.index[j]
                values = [rec.values[k] for rec in ok]
            else:
                name = f.name
                values = [rec.values[name] for rec in ok]
            arr, errs = number_column(values) if rule is None else rule.column(values)
            for i, reason in errs.items():
                if i not in failed:
                    failed[i] = BadRow(ok[i].line, ok[i].row, f"feature {f.name!r}: {reason}", f.name)
            columns[f.name] = arr
        if failed:
            keep = np.ones(len(ok), dtype=bool)
            keep[list(failed)] = False
            columns = {k: v[keep] for k, v in columns.items()}
            ok = [rec for i, rec in enumerate(ok) if i not in failed]
            bad.extend(failed.values())
        return columns, ok, bad


def read_columns(src: Readable, progress: Progress = None) -> tuple[list[str], list[list[Any]]]:
    """A whole CSV as typed columns (the export sample, before any feature is declared).

    A column is numeric (floats, NaN = missing) when every cell is a number or missing under the one
    rule; otherwise it holds text, with the missing tokens as NaN (no category is declared yet). The
    first bad record raises :class:`InvalidInput`. ``progress(rows, bytes_read)`` is called every
    :data:`DEFAULT_CHUNK_ROWS` records and at the end.
    """
    reader = TableReader(src, "csv")
    header = reader.header or []
    rows: list[list[str]] = []
    for rec in reader.records():
        if progress is not None and rec.row % DEFAULT_CHUNK_ROWS == 0 and rec.row:
            progress(rec.row, reader.offset)
        if rec.problem is not None:
            raise BadRow(rec.line, rec.row, rec.problem).error()
        if len(rec.values) != len(header):
            raise BadRow(rec.line, rec.row, f"expected {len(header)} fields as in the header, "
                                            f"got {len(rec.values)}").error()
        rows.append(rec.values)
    if progress is not None:
        progress(len(rows), reader.offset)
    if not rows:
        raise InvalidInput("the CSV has a header but no rows")
    text = CategoryRule(None)
    columns: list[list[Any]] = []
    for j in range(len(header)):
        cells = [row[j] for row in rows]
        numbers, bad = number_column(cells)
        if not bad:
            columns.append(numbers.tolist())
        else:
            columns.append([math.nan if (v := text.text(c)) is None else v for c in cells])
    return header, columns


# -- writing ----------------------------------------------------------------------------------------

def format_value(v: Any) -> str:
    """One output CSV cell: shortest round-trip repr for floats, empty for NaN, text for labels."""
    if isinstance(v, np.generic):
        v = v.item()
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return str(v)


def json_value(v: Any) -> Any:
    """One output JSON value: numpy scalars as Python ones, NaN and infinities as null."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _proba_wanted(model: Model, proba: bool | None) -> bool:
    """``None``: probabilities when the model has per-class ones; ``True``: required; ``False``: none."""
    has = model.supports("predict_proba")
    classes = model.classes
    # several outputs keep one class list each (an object array of lists: still 1-D), no single proba row
    per_class = (classes is not None and np.ndim(classes) == 1
                 and not any(isinstance(c, (list, tuple, np.ndarray)) for c in classes))
    if proba is None:
        return has and per_class
    if proba and not has:
        raise MethodNotSupported(f"model {model.name!r} has no predict_proba; "
                                 f"it offers {', '.join(model.methods)}")
    if proba and not per_class:
        raise MethodNotSupported(f"model {model.name!r} has no per-class probabilities")
    return bool(proba)


def parse_outputs(value: str | Sequence[str] | None) -> list[str] | None:
    """``outputs`` as a caller gives it (comma-separated text, as ``--outputs``, an S3 key's
    ``outputs=`` folder or ``BATCH_OUTPUTS``, or a list) -> method names in order, duplicates dropped;
    ``None`` when nothing is named (the default columns). Names are checked against the model later
    (:func:`output_methods`)."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    names = list(dict.fromkeys(n.strip() for n in items if n.strip()))
    return names or None


def output_methods(model: Model, outputs: Sequence[str] | None = None,
                   proba: bool | None = False) -> list[str]:
    """The methods a scored table writes, in order. ``outputs`` ``None`` (or empty): ``predict`` (else
    ``transform``) plus ``predict_proba`` as ``proba`` says (:func:`score_table`); otherwise exactly
    those methods, each one the model has (:class:`MethodNotSupported` listing the ones it has)."""
    if not outputs:
        methods = ["predict" if model.supports("predict") else "transform"]
        return methods + (["predict_proba"] if _proba_wanted(model, proba) else [])
    methods = list(dict.fromkeys(outputs))
    for m in methods:
        if m not in OUTPUT_METHODS or not model.supports(m):
            raise MethodNotSupported(f"model {model.name or model.type_name!r} has no {m}; "
                                     f"it offers {', '.join(model.methods) or 'no method'}")
        if m == "predict_proba":
            _proba_wanted(model, True)
    return methods


def _width(model: Model, method: str) -> int | None:
    """Values per row of ``method`` (None: one value, a 1-D output): the shape of the document's
    test-vector outputs for it (validation checks the scorer reproduces them), read without scoring
    anything; without them, the first test-vector row scored."""
    tv = model.document.get("test_vectors")
    outputs = tv.get("outputs") if isinstance(tv, dict) else None
    rows = outputs.get(method) if isinstance(outputs, dict) else None
    if isinstance(rows, list) and rows:
        return len(rows[0]) if isinstance(rows[0], list) else None
    inputs = tv.get("inputs") if isinstance(tv, dict) else None
    if isinstance(inputs, list) and inputs:
        try:  # the estimator itself: a wrapping model (a device's telemetry) does not count this call
            got = np.asarray(getattr(model.estimator, method)(to_matrix(inputs[:1], model.features)))
        except ROW_ERRORS:
            return None
        return int(got.shape[1]) if got.ndim == 2 else None
    return None


def _columns_of(model: Model, method: str) -> list[str]:
    """The output columns of one method (see the module docstring)."""
    width = _width(model, method)
    if method == "predict":
        return ["prediction"] if width is None or width == 1 else [f"prediction_{i}" for i in range(width)]
    if method == "predict_proba":
        assert model.classes is not None
        return [f"proba_{format_value(c)}" for c in np.asarray(model.classes).tolist()]
    if method == "decision_function":
        if width is None:
            return ["decision_function"]
        classes = model.classes
        if (classes is not None and np.ndim(classes) == 1 and len(classes) == width
                and not _pairwise(model.document.get("estimator"))):
            return [f"decision_{format_value(c)}" for c in np.asarray(classes).tolist()]
        return [f"decision_{i}" for i in range(width)]
    return [f"transform_{i}" for i in range(width or 1)]


def _pairwise(node: Any) -> bool:
    """True when an estimator node (or one inside it) gives one-vs-one decision values
    (``decision_function_shape: "ovo"``): their columns are pairs of classes, never named by a class.
    Lists of numbers are skipped unread, so a large document costs little."""
    if isinstance(node, dict):
        if node.get("decision_function_shape") == "ovo":
            return True
        return any(_pairwise(v) for v in node.values() if isinstance(v, (dict, list)))
    if isinstance(node, list) and node and isinstance(node[0], (dict, list)):
        return any(_pairwise(v) for v in node)
    return False


def output_columns(model: Model, proba: bool | None = False,
                   outputs: Sequence[str] | None = None) -> list[str]:
    """The columns a scored table gets after its input columns (see :func:`score_table` for ``proba``
    and ``outputs``)."""
    return [c for m in output_methods(model, outputs, proba) for c in _columns_of(model, m)]


class TableWriter:
    """Scored rows as bytes: the input columns (CSV cells or the JSON object) + ``columns``."""

    def __init__(self, fmt: str, header: Sequence[str] | None, columns: Sequence[str]) -> None:
        self.fmt = fmt
        self.header = list(header or [])
        self.columns = list(columns)

    def header_bytes(self) -> bytes:
        if self.fmt != "csv":
            return b""
        return _csv_bytes([[*self.header, *self.columns]])

    def rows_bytes(self, records: Sequence[Record], *outputs: np.ndarray | None) -> bytes:
        """The rows of ``records`` with ``outputs`` (one array per method, in column order; None
        skipped) as their extra columns."""
        n = len(records)
        if not n:
            return b""
        columns = _output_columns(n, outputs)
        if self.fmt == "csv":
            cells = zip(*map(_format_column, columns), strict=True)
            return _csv_bytes([[*rec.values, *out] for rec, out in zip(records, cells, strict=True)])
        names = self.columns
        values = zip(*map(_json_column, columns), strict=True)
        encode = _encode_json  # json.dumps(..., ensure_ascii=False, allow_nan=False)
        lines = [encode({**rec.values, **dict(zip(names, out, strict=True))})
                 for rec, out in zip(records, values, strict=True)]
        return ("\n".join(lines) + "\n").encode("utf-8")

    def block_bytes(self, block: Block, *outputs: np.ndarray | None) -> bytes:
        """A block of plain CSV lines scored: each line as it was (plain cells need no quotes, so the CSV
        writer would write them back unchanged) + the output cells, as :meth:`rows_bytes` writes them."""
        cells = [_csv_column_bytes(col) for col in _output_columns(len(block), outputs)]
        return b"\n".join(map(b",".join, zip(block.lines, *cells, strict=True))) + b"\n"


_JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)
# The C encoder that _JSON_ENCODER.encode builds on every call, built once (~1.5 µs a row less); without
# the circular-reference bookkeeping, which parsed JSON objects and output values cannot need.
_C_MAKE_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)
_C_ENCODER: Any = None if _C_MAKE_ENCODER is None else _C_MAKE_ENCODER(
    None, _JSON_ENCODER.default, json.encoder.encode_basestring, None, _JSON_ENCODER.key_separator,
    _JSON_ENCODER.item_separator, False, False, False)


def _encode_json(obj: dict[str, Any]) -> str:
    """``_JSON_ENCODER.encode(obj)`` for a JSON object, the same text."""
    if _C_ENCODER is None:
        return _JSON_ENCODER.encode(obj)
    return "".join(_C_ENCODER(obj, 0))


def _output_columns(n: int, outputs: Sequence[np.ndarray | None]) -> list[np.ndarray]:
    """One array per method (None skipped) -> the output columns, in order."""
    blocks = [np.asarray(out).reshape(n, -1) for out in outputs if out is not None]
    return [block[:, j] for block in blocks for j in range(block.shape[1])]


def _json_column(col: np.ndarray) -> list[Any]:
    """:func:`json_value` over a column, with finite floats and integers in one pass."""
    if col.dtype.kind in "iub" or (col.dtype.kind == "f" and np.isfinite(col).all()):
        return col.tolist()
    return [json_value(v) for v in col.tolist()]


def _csv_column(col: np.ndarray) -> list[str]:
    """:func:`_format_column` as CSV cells: numbers need no quotes; other values are quoted as the CSV
    writer quotes them, once per distinct value."""
    cells = _format_column(col)
    if col.dtype.kind in "fiub":
        return cells
    quoted = {u: _csv_bytes([["", u]]).decode("utf-8")[1:-1] for u in set(cells)}
    return [quoted[c] for c in cells]


def _csv_column_bytes(col: np.ndarray) -> list[bytes]:
    """:func:`_csv_column` as UTF-8 bytes (the plain lines of a block stay bytes: no decoding, no copy);
    number cells hold no line break, so a column is encoded in one call and split."""
    cells = _csv_column(col)
    if col.dtype.kind in "fiub":
        return "\n".join(cells).encode("ascii").split(b"\n")
    return [c.encode("utf-8") for c in cells]


def _format_column(col: np.ndarray) -> list[str]:
    """:func:`format_value` over a column, with the common float and integer cases in one pass."""
    kind = col.dtype.kind
    if kind == "f":
        return ["" if v != v else repr(v) for v in col.tolist()]  # v != v: NaN
    if kind in "iub":
        return list(map(str, col.tolist()))
    return [format_value(v) for v in col.tolist()]


def _csv_bytes(rows: Sequence[Sequence[Any]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode("utf-8")


# -- scoring ----------------------------------------------------------------------------------------

class Writable(Protocol):
    def write(self, data: bytes, /) -> Any: ...


def model_predictor(model: Model) -> Predictor:
    """The default way a chunk is scored: each method asked (:func:`output_methods`) called on the model."""

    def run(columns: dict[str, np.ndarray], methods: Sequence[str]) -> list[np.ndarray]:
        return [np.asarray(getattr(model, m)(columns)) for m in methods]

    return run


# What scoring a block may raise because of some of its rows: InvalidInput names the (first) row; anything
# else a model raises on odd values is isolated the same way, so one bad row never stops the others.
ROW_ERRORS: tuple[type[BaseException], ...] = (InvalidInput, ValueError, ArithmeticError, IndexError,
                                               TypeError, RecursionError)


def _take(columns: dict[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[index] for k, v in columns.items()}


def _refusal(exc: BaseException) -> tuple[str, str | None]:
    """The reason and feature a bad row records for a refusal."""
    if isinstance(exc, InvalidInput):
        return _ROW_PREFIX.sub("", str(exc), count=1), exc.feature
    return f"scoring failed: {type(exc).__name__}: {str(exc)[:200]}", None


def _refused_rows(predict: Predictor, columns: dict[str, np.ndarray], n: int, methods: Sequence[str],
                  first: BaseException) -> list[tuple[int, BaseException]]:
    """The rows (positions in ``columns``, which failed with ``first``) the model refuses, by bisection.

    The row a refusal names is pinned and the rows after it are halved; a refusal naming no row halves
    its part. Each model call clears a part or pins a refused row: about refused x log2(block) calls on
    shrinking parts, never a re-score of the whole block per refused row. The rows before a named one
    are taken as good; the caller's final call on the rows left checks that.
    """
    found: list[tuple[int, BaseException]] = []
    failing: list[tuple[np.ndarray, BaseException]] = [(np.arange(n), first)]
    while failing:
        index, exc = failing.pop()
        named = exc.row if isinstance(exc, InvalidInput) else None
        if len(index) == 1:
            found.append((int(index[0]), exc))
            continue
        if named is not None and 0 <= named < len(index):
            found.append((int(index[named]), exc))
            index = index[named + 1:]
        half = len(index) // 2
        for part in (index[:half], index[half:]):
            if len(part):
                try:
                    predict(_take(columns, part), methods)
                except ROW_ERRORS as err:
                    failing.append((part, err))
    return found


def _score_kept(predict: Predictor, columns: dict[str, np.ndarray], ok: list[Record], methods: Sequence[str]
                ) -> tuple[list[np.ndarray] | None, list[Record], list[BadRow]]:
    """Score the converted rows; the rows the model refuses are found (:func:`_refused_rows`), set aside
    as bad rows, and the rest scored in one call."""
    bad: list[BadRow] = []
    keep = np.arange(len(ok))
    while len(keep):
        part = columns if len(keep) == len(ok) else _take(columns, keep)
        try:
            outputs = predict(part, methods)
            return outputs, [ok[i] for i in keep], bad
        except ROW_ERRORS as exc:
            refused = _refused_rows(predict, part, len(keep), methods, exc)
            if not refused:  # the block fails though each part scores: a failure of the block itself
                refused = [(i, exc) for i in range(len(keep))]
        drop = np.zeros(len(keep), dtype=bool)
        for pos, err in refused:
            drop[pos] = True
            rec = ok[keep[pos]]
            reason, feature = _refusal(err)
            bad.append(BadRow(rec.line, rec.row, reason, feature))
        keep = keep[~drop]
    return None, [], bad


def score_table(model: Model, reader: TableReader, dst: Writable, *, proba: bool | None = False,
                outputs: Sequence[str] | None = None, on_error: OnError = None,
                chunk_rows: int = DEFAULT_CHUNK_ROWS, write_header: bool = True,
                predict: Predictor | None = None, progress: Progress = None,
                read_ahead: ReadAhead = None) -> Counts:
    """Score every record of ``reader`` into ``dst`` (bytes) in the one output shape; return the counts.

    ``proba``: ``True`` adds ``proba_<class>`` columns (MethodNotSupported without per-class
    probabilities), ``None`` adds them when the model has them (batch, devices), ``False`` never.
    ``outputs``: the methods to write instead (``predict``, ``predict_proba``, ``decision_function``,
    ``transform``; ``proba`` is then ignored); one the model lacks raises MethodNotSupported listing the
    ones it has, before anything is read or written.
    ``on_error``: ``None`` raises InvalidInput naming the first bad row (row, line, reason); a callable
    gets every bad row in line order and scoring goes on. ``predict`` replaces the model call (the
    device records telemetry around it). ``progress`` is called after every chunk with the counts so
    far and the input bytes read so far (a plain callback: progress bars are the caller's business).
    ``read_ahead`` (:data:`ReadAhead`) may compute the read-and-parse stage ahead of the scoring (the
    batch function runs it in a worker thread); the outputs, errors and progress calls are the same.

    Runs of plain CSV lines (digits, signs, points, exponents, commas) whose cells are all numbers are
    parsed and written in bulk; any other chunk, or a plain one the bulk path refuses, is read record
    by record: the outputs and errors are the same either way.
    """
    methods = output_methods(model, outputs, proba)
    converter = _Converter(model.features, reader.header)
    writer = TableWriter(reader.fmt, reader.header, [c for m in methods for c in _columns_of(model, m)])
    run = predict or model_predictor(model)
    counts = Counts()
    if write_header:
        dst.write(writer.header_bytes())
    parsed = _parsed(reader, converter, chunk_rows)
    items = read_ahead(parsed) if read_ahead is not None else parsed
    try:
        for item in items:
            if item.block is not None:
                if _score_block(run, writer, item.block, item.columns, methods, dst):
                    counts.rows += len(item.block)
                    counts.scored += len(item.block)
                    if progress is not None:
                        progress(counts, item.offset)
                    continue
                chunk = item.block.records()  # the model refuses some row: record by record
                columns, ok, bad = converter.convert(chunk)
            else:
                chunk, columns, ok, bad = item.chunk, item.columns, item.ok, item.bad
            scored, ok, refused = _score_kept(run, columns, ok, methods)
            bad.extend(refused)
            if bad:
                bad.sort(key=lambda b: b.line)
                if on_error is None:
                    raise bad[0].error()
            counts.rows += len(chunk)
            if ok and scored is not None:
                dst.write(writer.rows_bytes(ok, *scored))
                counts.scored += len(ok)
            for b in bad:
                on_error(b)  # type: ignore[misc]  # None raised above
            counts.errors += len(bad)
            if progress is not None:
                progress(counts, item.offset)
    finally:
        close = getattr(items, "close", None)
        if close is not None:  # a read-ahead stops (and its worker ends) before the caller goes on
            close()
    return counts


def _parsed(reader: TableReader, converter: _Converter, chunk_rows: int) -> Iterator[Parsed]:
    """The read-and-parse stage of :func:`score_table`: reading, splitting records, converting cells. It
    touches only the reader and the converter, never the model or the output, so it may run ahead."""
    last = reader.offset
    for item in reader.blocks(chunk_rows):
        offset = reader.offset
        size, last = offset - last, offset
        if isinstance(item, Block):
            block_columns = converter.convert_block(item) if converter.bulk else None
            if block_columns is not None:
                yield Parsed(offset, block_columns, size, block=item)
                continue
            item = item.records()
        columns, ok, bad = converter.convert(item)
        yield Parsed(offset, columns, size, chunk=item, ok=ok, bad=bad)


def _score_block(run: Predictor, writer: TableWriter, block: Block, columns: dict[str, np.ndarray],
                 methods: Sequence[str], dst: Writable) -> bool:
    """Score a block of plain lines parsed in bulk; False (nothing written) when the model refuses
    some row: the block then goes record by record (the record path isolates it)."""
    try:
        scored = run(columns, methods)
    except ROW_ERRORS:
        return False
    dst.write(writer.block_bytes(block, *scored))
    return True
