"""The input schema (``input.features``) and input conversion: any accepted input form -> the 2-D matrix
in feature order that estimators score (numbers as float64, categories as given, missing as NaN / None).
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ._base import InvalidInput, _json_type, _short
from ._envelope import Problem

NUMERIC = "numeric"
CATEGORICAL = "categorical"


class Feature:
    """One input column: ``name``, ``kind`` ("numeric" or "categorical") and known ``categories``."""

    __slots__ = ("categories", "kind", "name")

    def __init__(self, name: str, kind: str, categories: list[Any] | None) -> None:
        self.name, self.kind, self.categories = name, kind, categories

    @property
    def categorical(self) -> bool:
        return self.kind == CATEGORICAL


    def __repr__(self) -> str:
        return f"Feature({self.name!r}, {self.kind!r})"



def feature_list(doc: Mapping[str, Any]) -> tuple[list[Feature] | None, list[Problem]]:
    """The features (None when they cannot be formed) and every problem with them."""
    inp = doc.get("input")
    if "input" not in doc:
        return None, [("/input", "required field is missing")]
    if not isinstance(inp, dict):
        return None, [("/input", f"must be an object, got {_json_type(inp)}")]
    raw = inp.get("features")
    if not isinstance(raw, list):
        return None, [("/input/features", "required array is missing" if raw is None else
                       f"must be an array, got {_json_type(raw)}")]
    if not raw:
        return None, [("/input/features", "a model needs at least one input feature")]
    problems: list[Problem] = []
    features: list[Feature] = []
    seen: set[str] = set()
    formed = True
    for i, f in enumerate(raw):
        ptr = f"/input/features/{i}"
        if not isinstance(f, dict):
            problems.append((ptr, f"a feature must be an object, got {_json_type(f)}"))
            formed = False
            continue
        name = f.get("name")
        if not isinstance(name, str) or not name:
            problems.append((ptr + "/name", "required non-empty string"))
            formed = False
            continue
        if name in seen:
            problems.append((ptr + "/name", f"duplicate feature name {_short(name)}"))
            formed = False
        seen.add(name)
        kind = f.get("type", NUMERIC)
        if kind not in (NUMERIC, CATEGORICAL) or not isinstance(kind, str):
            problems.append((ptr + "/type", f"must be {NUMERIC!r} or {CATEGORICAL!r}, got {_short(kind)}"))
            formed = False
            continue
        cats = f.get("categories")
        if cats is not None:
            if kind != CATEGORICAL:
                problems.append((ptr + "/categories", "only categorical features have categories"))
                cats = None
            elif not isinstance(cats, list) or not all(
                    isinstance(c, (str, int, float)) and not isinstance(c, bool) for c in cats):
                problems.append((ptr + "/categories", "must be an array of strings or numbers"))
                cats = None
            elif len({(type(c) is str, c) for c in cats}) != len(cats):
                problems.append((ptr + "/categories", "categories must be distinct"))
        features.append(Feature(name, kind, cats))
    return (features if formed else None), problems


_NUMBER_TYPES = (int, float, np.integer, np.floating)  # bool and np.bool_ are ints for scikit-learn too
_NONE = type(None)


def _is_na(t: type) -> bool:
    """pandas.NA / NaT, recognised by name so the scorer never imports pandas."""
    return t.__name__ in ("NAType", "NaTType")


def to_matrix(X: Any, features: Sequence[Feature]) -> np.ndarray:
    """Convert any accepted input to a 2-D array in feature order (vectorised, column by column).

    Accepted: a 2-D numpy array; a list of rows (lists/tuples in feature order); a list of objects
    keyed by feature name; a dict of columns (or of single values: one row); a DataFrame (anything
    with ``columns`` and ``to_numpy``, pandas is never imported).

    Returns float64 when every feature is numeric; otherwise an object array holding floats (NaN for
    missing) in numeric columns and the raw values (``None`` for missing) in categorical ones.
    """
    if type(X) is list and X and type(X[0]) is list:
        fast = _plain_number_rows(X, features)
        if fast is not None:
            return fast
    names = [f.name for f in features]
    n = len(names)
    any_cat = any(f.kind == CATEGORICAL for f in features)
    columns: list[np.ndarray]
    if isinstance(X, np.ndarray):
        if X.ndim != 2:
            raise InvalidInput(f"expected a 2-D array of shape (rows, {n}), got a {X.ndim}-D array")
        if X.shape[1] != n:
            raise InvalidInput(f"expected {n} columns ({_names(names)}), got {X.shape[1]}")
        if X.dtype.kind in "iufb" and not any_cat:
            return X.astype(np.float64, order="C")
        columns, m = [X[:, j] for j in range(n)], X.shape[0]
    elif hasattr(X, "columns") and hasattr(X, "to_numpy") and hasattr(X, "__getitem__"):
        columns, m = _frame_columns(X, names)
    elif isinstance(X, Mapping):
        columns, m = _dict_columns(X, names)
    elif isinstance(X, (str, bytes, bytearray)) or not isinstance(X, Iterable):
        raise InvalidInput("expected a 2-D array, a list of rows, a list of objects keyed by feature name "
                           f"or a dict of columns, got {type(X).__name__}")
    else:
        rows = X if isinstance(X, list) else list(X)
        if rows and isinstance(rows[0], Mapping):
            columns, m = _record_columns(rows, names)
        else:
            columns, m = _row_columns(rows, names)
    if not any_cat:
        out = np.empty((m, n), dtype=np.float64)
        for j, f in enumerate(features):
            out[:, j] = _numeric_column(columns[j], f)
        return out
    obj = np.empty((m, n), dtype=object)
    for j, f in enumerate(features):
        obj[:, j] = (_categorical_column(columns[j], f) if f.kind == CATEGORICAL
                     else _numeric_column(columns[j], f))
    return obj


_PLAIN_NUMBERS = frozenset({float, int})
_plain_superset = _PLAIN_NUMBERS.issuperset
_chain = itertools.chain.from_iterable
F8 = np.dtype(np.float64)


def _plain_number_rows(rows: list[Any], features: Sequence[Feature]) -> np.ndarray | None:
    """Fast path for the common request: numeric features, rows that are lists of plain ints / floats.

    Same result as the column-by-column path (which handles everything else and every error), in a
    single numpy call: a one-row request must not pay several numpy calls per feature.
    """
    for f in features:  # a plain loop: several times faster than any() over a generator
        if f.kind == CATEGORICAL:
            return None
    return number_rows(rows, len(features))


def number_rows(rows: list[Any], n: int) -> np.ndarray | None:
    """:func:`_plain_number_rows` once the features are known to be numeric: one type scan (C-level),
    one ``np.array``, then the shape; ``None`` (the slow path, which names any problem) otherwise."""
    if len(rows) == 1:
        cells = rows[0]
    elif all(type(r) is list for r in rows):  # anything else (a tuple, a range...) takes the slow path
        cells = _chain(rows)
    else:
        return None
    try:
        if not _plain_superset(map(type, cells)):
            return None
        a = np.array(rows, dtype=F8)
    except (TypeError, ValueError, OverflowError):  # a row that is no sequence, ragged rows, a huge int
        return None
    return a if a.ndim == 2 and a.shape[1] == n else None


def plain_row(row: list[Any], bound: float) -> list[float] | None:
    """One row for the single-row fast paths (``Estimator.row_path``): its values as Python floats when
    every one is a plain int or float of magnitude below ``bound`` (NaN and infinities never are), else
    None: the general path then scores it, and names any problem. Two C-level scans, no numpy.

    The magnitudes are checked through their sum: a sum of non-negative floats is never below its
    largest term (rounding is monotone), it is NaN or infinite when a term is, and a row whose sum
    reaches ``bound`` without any one value doing so merely takes the general path."""
    if _ALL_FLOATS.issuperset(map(type, row)):  # the common row: floats only
        if bound == math.inf:  # finite iff the plain sum is (NaN and infinities make it so, or it overflows)
            return row if math.isfinite(sum(row)) else None
        return row if sum(map(abs, row)) < bound else None
    if not _plain_superset(map(type, row)):
        return None
    try:
        return [float(v) for v in row] if sum(map(abs, row)) < bound else None
    except OverflowError:  # an int beyond float64
        return None


_ALL_FLOATS = frozenset({float})


def _names(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _object_column(values: Sequence[Any]) -> np.ndarray:
    """A 1-D object array holding exactly these values (nested lists stay single cells)."""
    return np.fromiter(values, dtype=object, count=len(values))


def _check_names(given: Sequence[Any], names: list[str], row: int | None = None) -> None:
    where = f"row {row}: " if row is not None else ""
    wanted = set(names)
    missing = [k for k in names if k not in set(given)]
    if missing:
        raise InvalidInput(f"{where}missing feature {missing[0]!r} (the model needs {_names(names)})",
                           row=row, feature=missing[0])
    extra = [k for k in given if k not in wanted]
    if extra:
        raise InvalidInput(f"{where}unknown feature {extra[0]!r} (the model needs {_names(names)})",
                           row=row, feature=str(extra[0]))
    raise InvalidInput(f"{where}duplicate feature names")


def _row_columns(rows: list[Any], names: list[str]) -> tuple[list[np.ndarray], int]:
    n = len(names)
    for r, row in enumerate(rows):
        if not isinstance(row, (list, tuple, np.ndarray)):
            raise InvalidInput(f"row {r}: expected a list of {n} values or an object keyed by feature name, "
                               f"got {_json_type(row)}", row=r)
        if len(row) != n:
            raise InvalidInput(f"row {r}: expected {n} values ({_names(names)}), got {len(row)}", row=r)
    if not rows:
        return [np.empty(0, dtype=object)] * n, 0
    return [_object_column(col) for col in zip(*rows, strict=True)], len(rows)


def _record_columns(rows: list[Any], names: list[str]) -> tuple[list[np.ndarray], int]:
    wanted = set(names)
    for r, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise InvalidInput(f"row {r}: expected an object keyed by feature name, got {_json_type(row)}",
                               row=r)
        if row.keys() != wanted:
            _check_names(list(row.keys()), names, r)
    return [_object_column(list(map(operator.itemgetter(k), rows))) for k in names], len(rows)


def _dict_columns(cols: Mapping[Any, Any], names: list[str]) -> tuple[list[np.ndarray], int]:
    if cols.keys() != set(names):
        _check_names(list(cols.keys()), names)
    values = [cols[k] for k in names]
    if not any(isinstance(v, (list, tuple, np.ndarray)) or hasattr(v, "to_numpy") for v in values):
        return [_object_column([v]) for v in values], 1  # one record given as {feature: value}
    columns: list[np.ndarray] = []
    for k, v in zip(names, values, strict=True):
        if hasattr(v, "to_numpy") and not isinstance(v, np.ndarray):
            v = v.to_numpy()
        if isinstance(v, np.ndarray):
            if v.ndim != 1:
                raise InvalidInput(f"feature {k!r}: expected a 1-D column, got a {v.ndim}-D array", feature=k)
            columns.append(v)
        elif isinstance(v, (list, tuple)):
            columns.append(_object_column(v))
        else:
            raise InvalidInput(f"feature {k!r}: expected a list of values (one per row), got {_json_type(v)}",
                               feature=k)
    lengths = {len(c) for c in columns}
    if len(lengths) > 1:
        sizes = ", ".join(f"{k}={len(c)}" for k, c in zip(names, columns, strict=True))
        raise InvalidInput(f"columns have different lengths ({_short(sizes, 200)})")
    return columns, lengths.pop()


def _frame_columns(df: Any, names: list[str]) -> tuple[list[np.ndarray], int]:
    labels = list(df.columns)
    by_name = {str(c): c for c in labels}
    if len(by_name) != len(labels) or set(by_name) != set(names):
        _check_names([str(c) for c in labels], names)
    columns = []
    for k in names:
        col = df[by_name[k]]
        arr = col.to_numpy() if hasattr(col, "to_numpy") else np.asarray(col)
        if not isinstance(arr, np.ndarray) or arr.ndim != 1:
            raise InvalidInput(f"feature {k!r}: expected one column", feature=k)
        columns.append(arr)
    return columns, len(df)


def _numeric_column(col: np.ndarray, feature: Feature) -> np.ndarray:
    """Float64 values; None / NaN / pandas.NA are missing (NaN). Strings are refused, never parsed."""
    kind = col.dtype.kind
    if kind in "iufb":
        return col.astype(np.float64)
    if kind != "O":
        if not col.size:
            return np.empty(0, dtype=np.float64)
        return _bad_number(0, feature, col[0])
    values = col.tolist()
    types = set(map(type, values))
    bad = {t for t in types if not (t is _NONE or issubclass(t, _NUMBER_TYPES) or _is_na(t))}
    if bad:
        r = next(i for i, v in enumerate(values) if type(v) in bad)
        return _bad_number(r, feature, values[r])
    if any(_is_na(t) for t in types):
        values = [None if _is_na(type(v)) else v for v in values]
    try:
        return np.array(values, dtype=np.float64)
    except (OverflowError, TypeError, ValueError):
        for r, v in enumerate(values):
            try:
                float(v if v is not None else "nan")
            except (OverflowError, TypeError, ValueError):
                return _bad_number(r, feature, v)
        raise


def _bad_number(r: int, feature: Feature, v: Any) -> np.ndarray:
    if isinstance(v, np.generic):
        v = v.item()
    hint = " (convert text to numbers first, e.g. with scorer.tabular)" if isinstance(v, str) else ""
    raise InvalidInput(f"row {r}, feature {feature.name!r}: expected a number, got {_short(v)}{hint}",
                       row=r, feature=feature.name)


def _categorical_column(col: np.ndarray, feature: Feature) -> np.ndarray:
    """Object values as given (strings or numbers); None / NaN / pandas.NA become None (missing)."""
    kind = col.dtype.kind
    if kind == "U":
        return col.astype(object)
    if kind in "iub":
        return col.astype(object)
    if kind == "f":
        out = col.astype(object)
        out[np.isnan(col)] = None
        return out
    if kind != "O":
        if not col.size:
            return np.empty(0, dtype=object)
        raise InvalidInput(f"row 0, feature {feature.name!r}: expected a category (string or number), got "
                           f"{_short(col[0].item())}", row=0, feature=feature.name)
    values = col.tolist()
    types = set(map(type, values))
    bad = {t for t in types
           if not (t is _NONE or issubclass(t, str) or issubclass(t, _NUMBER_TYPES) or _is_na(t))}
    if bad:
        r = next(i for i, v in enumerate(values) if type(v) in bad)
        raise InvalidInput(f"row {r}, feature {feature.name!r}: expected a category (string or number), got "
                           f"{_short(values[r])}", row=r, feature=feature.name)
    out = _object_column(values)
    if any(_is_na(t) for t in types):
        out[np.fromiter((_is_na(type(v)) for v in values), dtype=bool, count=len(values))] = None
    if any(issubclass(t, (float, np.floating)) for t in types):
        out[out != out] = None  # NaN is the only value unequal to itself
    return out
