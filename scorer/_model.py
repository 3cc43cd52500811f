"""The document envelope: strict parsing, canonical bytes, the input schema, the public Model, validation.

See docs/model-format.md for the specification this module implements.
"""

from __future__ import annotations

import itertools
import math
import operator
import os
import pathlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ._base import (
    MAX_DOCUMENT_BYTES,
    MAX_NESTING_DEPTH,
    Estimator,
    InvalidInput,
    InvalidModel,
    LoadContext,
    MethodNotSupported,
    ModelsyncScorerError,
    UnsupportedModel,
    _json_type,
    _short,
    load_estimator,
    pointer_join,
)
from ._json import (
    check_json_value,
    check_text_depth,
    content_sha256,
    loads_strict,
)

FORMAT_VERSION = "1.0"
SUPPORTED_FORMAT_MAJOR = 1
TASKS = ("classification", "regression", "clustering", "outlier_detection", "transform")
METHODS = ("predict", "predict_proba", "decision_function", "transform")
NUMERIC = "numeric"
CATEGORICAL = "categorical"
DEFAULT_TOLERANCE = 1e-9
MAX_TOLERANCE = 1e-3
MAX_TEST_VECTORS = 10_000
MAX_REPORTED_ROWS = 10  # per method, when test vectors do not match

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
VERSION_PATTERN = re.compile(r"(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
CREATED_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")

Problem = tuple[str, str]
_ARTICLE_NAMES = {str: "a string", dict: "an object", list: "an array", int: "an integer", float: "a number"}


# -- parsing ---------------------------------------------------------------------------------------

def parse_document(source: Any) -> dict[str, Any]:
    """Accept a dict, a path (str or PathLike), bytes or JSON text; strict JSON only.

    Sizes and nesting depth are checked before ``json.loads`` sees the text, so a hostile document
    fails with :class:`InvalidModel` instead of exhausting the stack or memory.
    """
    if isinstance(source, Mapping):
        doc = dict(source)
        check_json_value(doc)
        return doc
    if isinstance(source, os.PathLike) or (isinstance(source, str) and _looks_like_path(source)):
        raw = _read_file(pathlib.Path(source))
    elif isinstance(source, (bytes, bytearray, memoryview)):
        raw = bytes(source)
    elif isinstance(source, str):
        if len(source) > MAX_DOCUMENT_BYTES:
            raise InvalidModel(f"document is over the limit of {MAX_DOCUMENT_BYTES} bytes")
        try:
            raw = source.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidModel(f"document is not valid Unicode: {exc.reason}") from None
    else:
        raise InvalidModel(f"cannot load a model from {type(source).__name__}; "
                           "expected a dict, a path, bytes or JSON text")
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise InvalidModel(f"document is {len(raw)} bytes, over the limit of {MAX_DOCUMENT_BYTES}")
    if raw.startswith(b"\xef\xbb\xbf"):
        raise InvalidModel("document starts with a UTF-8 byte order mark; write plain UTF-8")
    check_text_depth(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidModel(f"document is not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        doc = loads_strict(text)
    except RecursionError:
        raise InvalidModel(f"document nested deeper than {MAX_NESTING_DEPTH}") from None
    except MemoryError:
        raise InvalidModel("document is too large to parse") from None
    except ValueError as exc:
        raise InvalidModel(f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidModel(f"document must be a JSON object, got {_json_type(doc)}")
    return doc


_JSON_SCALAR_START = re.compile(r'\s*(["\-0-9]|true\b|false\b|null\b)')


def _looks_like_path(text: str) -> bool:
    stripped = text.lstrip()
    if not stripped or stripped[:1] in ("{", "[") or len(text) > 4096 or "\n" in text:
        return False
    return not _JSON_SCALAR_START.match(text) or os.path.exists(text)


def _read_file(path: pathlib.Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise InvalidModel(f"document is {size} bytes, over the limit of {MAX_DOCUMENT_BYTES}")
        with path.open("rb") as fh:
            raw = fh.read(MAX_DOCUMENT_BYTES + 1)  # files whose size stat cannot tell (pipes, /proc)
    except OSError as exc:
        raise InvalidModel(f"cannot read model file {str(path)!r}: {exc.strerror or exc}") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise InvalidModel(f"document is over the limit of {MAX_DOCUMENT_BYTES} bytes")
    return raw


# -- envelope ---------------------------------------------------------------------------------------

def check_format_version(doc: Mapping[str, Any]) -> str:
    """The major version must be the one this scorer implements; any minor version is accepted."""
    fv = doc.get("format_version")
    if "format_version" not in doc:
        raise InvalidModel("required field is missing", "/format_version")
    if not isinstance(fv, str) or not VERSION_PATTERN.fullmatch(fv):
        raise InvalidModel(f"must be a string \"MAJOR.MINOR\" such as \"{FORMAT_VERSION}\", got {_short(fv)}",
                           "/format_version")
    major = int(fv.split(".", 1)[0])
    if major != SUPPORTED_FORMAT_MAJOR:
        raise InvalidModel(
            f"format_version {fv!r} is not supported: this scorer reads format {SUPPORTED_FORMAT_MAJOR}.x "
            f"(documents of another major version need "
            f"{'a newer' if major > SUPPORTED_FORMAT_MAJOR else 'an older'} scorer)", "/format_version")
    return fv


def envelope_problems(doc: Mapping[str, Any], full: bool = True) -> list[Problem]:
    """Problems with metadata, output, test_vectors and sha256 (shape of the fields, not their truth).

    ``full``: require every field a publishable document has; otherwise only check what is present
    (what :func:`load_model` needs to build a :class:`Model` safely).
    """
    problems: list[Problem] = []

    def need(parent: Mapping[str, Any], key: str, ptr: str, kind: type | tuple[type, ...],
             required: bool) -> Any:
        if key not in parent:
            if required:
                problems.append((pointer_join(ptr, key), "required field is missing"))
            return None
        value = parent[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            want = " or ".join(_ARTICLE_NAMES.get(k, k.__name__) for k in kinds)
            problems.append((pointer_join(ptr, key), f"must be {want}, got {_json_type(value)}"))
            return None
        return value

    meta = need(doc, "metadata", "", dict, full)
    if meta is not None:
        name = need(meta, "name", "/metadata", str, full)
        if name is not None and not NAME_PATTERN.fullmatch(name):
            problems.append(("/metadata/name", f"{_short(name)} is not a valid name: 1-128 letters, digits, "
                             "'.', '_' or '-', starting with a letter or digit"))
        need(meta, "description", "/metadata", str, False)
        created = need(meta, "created", "/metadata", str, full)
        if created is not None and not CREATED_PATTERN.fullmatch(created):
            problems.append(("/metadata/created", f"must be an RFC 3339 timestamp such as "
                             f"2024-05-01T12:00:00Z, got {_short(created)}"))
        producer = need(meta, "producer", "/metadata", dict, full)
        if producer is not None:
            need(producer, "name", "/metadata/producer", str, True)
            need(producer, "version", "/metadata/producer", str, True)
        need(meta, "sklearn_version", "/metadata", str, False)

    output = need(doc, "output", "", dict, full)
    if output is not None:
        task = need(output, "task", "/output", str, True)
        if task is not None and task not in TASKS:
            problems.append(("/output/task", f"must be one of {list(TASKS)}, got {_short(task)}"))
        methods = need(output, "methods", "/output", list, True)
        if methods is not None:
            if not methods:
                problems.append(("/output/methods", "must list at least one method"))
            for i, m in enumerate(methods):
                if m not in METHODS or not isinstance(m, str):
                    problems.append((f"/output/methods/{i}",
                                     f"must be one of {list(METHODS)}, got {_short(m)}"))
                elif methods.index(m) != i:
                    problems.append((f"/output/methods/{i}", f"{m} is listed twice"))
            if task == "classification" and "predict" not in methods:
                problems.append(("/output/methods", "a classifier must offer predict"))
        classes = need(output, "classes", "/output", list, task == "classification")
        if classes is not None:
            if task is not None and task != "classification":
                problems.append(("/output/classes",
                                 f"only classification models have classes (task is {task})"))
            elif not classes:
                problems.append(("/output/classes", "must not be empty"))

    tv = need(doc, "test_vectors", "", dict, full)
    if tv is not None:
        need(tv, "inputs", "/test_vectors", list, True)
        need(tv, "outputs", "/test_vectors", dict, True)
        tol = need(tv, "tolerance", "/test_vectors", (int, float), False)
        if tol is not None and not 0 <= tol <= MAX_TOLERANCE:
            problems.append(("/test_vectors/tolerance",
                             f"must be between 0 and {MAX_TOLERANCE:g}, got {tol!r}"))

    sha = need(doc, "sha256", "", str, full)
    if sha is not None and not SHA256_PATTERN.fullmatch(sha):
        problems.append(("/sha256", "must be 64 lowercase hexadecimal characters"))
    return problems


def sha256_problems(doc: Mapping[str, Any]) -> list[Problem]:
    """Whether ``sha256`` matches the canonical bytes (empty list when it does)."""
    sha = doc.get("sha256")
    if not isinstance(sha, str) or not SHA256_PATTERN.fullmatch(sha):
        return []  # reported by envelope_problems
    try:
        actual = content_sha256(doc)
    except InvalidModel as exc:
        return [(p, f"cannot compute the canonical form: {m}") for p, m in exc.problems]
    if actual != sha:
        return [("/sha256", "does not match the document's content: it was changed after export "
                 "or damaged in transit")]
    return []


# -- input schema -----------------------------------------------------------------------------------

class Feature:
    """One input column: ``name``, ``kind`` ("numeric" or "categorical") and known ``categories``."""

    __slots__ = ("categories", "kind", "name")

    def __init__(self, name: str, kind: str, categories: list[Any] | None) -> None:
        self.name, self.kind, self.categories = name, kind, categories

    @property
    def categorical(self) -> bool:
        return self.kind == CATEGORICAL

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.kind}
        if self.categories is not None:
            out["categories"] = list(self.categories)
        return out

    def __repr__(self) -> str:
        return f"Feature({self.name!r}, {self.kind!r})"


def _load_features(doc: Mapping[str, Any]) -> list[Feature]:
    """The ``input.features`` list; raises :class:`InvalidModel` listing every problem found."""
    features, problems = _feature_list(doc)
    if problems or features is None:
        raise InvalidModel(problems)
    return features


def _feature_list(doc: Mapping[str, Any]) -> tuple[list[Feature] | None, list[Problem]]:
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
_F8 = np.dtype(np.float64)


def _plain_number_rows(rows: list[Any], features: Sequence[Feature]) -> np.ndarray | None:
    """Fast path for the common request: numeric features, rows that are lists of plain ints / floats.

    Same result as the column-by-column path (which handles everything else and every error), in a
    single numpy call: a one-row request must not pay several numpy calls per feature.
    """
    for f in features:  # a plain loop: several times faster than any() over a generator
        if f.kind == CATEGORICAL:
            return None
    return _number_rows(rows, len(features))


def _number_rows(rows: list[Any], n: int) -> np.ndarray | None:
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
        a = np.array(rows, dtype=_F8)
    except (TypeError, ValueError, OverflowError):  # a row that is no sequence, ragged rows, a huge int
        return None
    return a if a.ndim == 2 and a.shape[1] == n else None


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


# -- the public model -------------------------------------------------------------------------------

class Model:
    """A loaded model: the scikit-learn-like methods over the document's input schema.

    ``predict``/``predict_proba``/``decision_function``/``transform`` accept every input form
    :func:`to_matrix` accepts. A method the document does not offer raises :class:`MethodNotSupported`.
    """

    def __init__(self, doc: dict[str, Any], estimator: Estimator, features: list[Feature]) -> None:
        self.document = doc
        self.estimator = estimator
        self._features = features
        self._numeric = all(f.kind != CATEGORICAL for f in features)
        # float64 arrays go to the estimator uncopied when it promises never to write into its input
        self._pass_arrays = self._numeric and bool(getattr(estimator, "reads_input_only", False))
        meta = doc.get("metadata")
        self.metadata: dict[str, Any] = meta if isinstance(meta, dict) else {}
        name = self.metadata.get("name")
        self.name: str = name if isinstance(name, str) else ""
        fv = doc.get("format_version")
        self.format_version: str = fv if isinstance(fv, str) else ""
        sha = doc.get("sha256")
        self.sha256: str | None = sha if isinstance(sha, str) else None
        output = doc.get("output")
        output = output if isinstance(output, dict) else {}
        task = output.get("task")
        self.task: str = task if isinstance(task, str) else ""
        declared = output.get("methods")
        supported = [m for m in METHODS if estimator.supports(m)]
        if isinstance(declared, list):
            self._methods = [m for m in METHODS if m in declared and m in supported]
        else:
            self._methods = supported

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self._features]

    @property
    def features(self) -> list[Feature]:
        return list(self._features)

    @property
    def n_features(self) -> int:
        return len(self._features)

    @property
    def type_name(self) -> str:
        return self.estimator.type_name

    @property
    def classes(self) -> np.ndarray | None:
        return self.estimator.classes

    @property
    def methods(self) -> list[str]:
        """The methods this model offers: declared in ``output.methods`` and implemented."""
        return list(self._methods)

    def supports(self, method: str) -> bool:
        return method in self._methods

    has = supports  # older name, kept for callers

    def _call(self, method: str, X: Any) -> np.ndarray:
        if method not in self._methods:
            offers = ", ".join(self._methods) or "no method"
            raise MethodNotSupported(f"model {self.name or self.type_name!r} has no {method}; "
                                     f"it offers {offers}")
        fn = getattr(self.estimator, method)
        # Fast paths, same matrix as to_matrix: numeric list rows, or a float64 C-ordered array passed
        # through uncopied to an estimator that only reads it.
        if type(X) is list:
            if self._numeric and X and type(X[0]) is list:
                M = _number_rows(X, len(self._features))
                if M is not None:
                    return fn(M)
        elif (self._pass_arrays and type(X) is np.ndarray and X.dtype == _F8 and X.ndim == 2
              and X.shape[1] == len(self._features) and X.flags.c_contiguous):
            return fn(X)
        return fn(to_matrix(X, self._features))

    def predict(self, X: Any) -> np.ndarray:
        return self._call("predict", X)

    def predict_proba(self, X: Any) -> np.ndarray:
        return self._call("predict_proba", X)

    def decision_function(self, X: Any) -> np.ndarray:
        return self._call("decision_function", X)

    def transform(self, X: Any) -> np.ndarray:
        return self._call("transform", X)

    def _x(self, X: Any) -> np.ndarray:
        return to_matrix(X, self._features)

    def __repr__(self) -> str:
        return f"<scorer.Model {self.name!r} {self.estimator.type_name} features={len(self._features)}>"


def _build(doc: dict[str, Any], full: bool) -> tuple[Model | None, list[Problem], bool]:
    """Load what can be loaded; return the model (None if it cannot be built), problems, unsupported?"""
    problems = envelope_problems(doc, full=full)
    unsupported = False
    features, feature_problems = _feature_list(doc)
    problems.extend(feature_problems)
    estimator: Estimator | None = None
    if "estimator" not in doc:
        problems.append(("/estimator", "required field is missing"))
    else:
        try:
            estimator = load_estimator(doc["estimator"], LoadContext("/estimator"))
        except InvalidModel as exc:
            unsupported = isinstance(exc, UnsupportedModel)
            problems.extend(exc.problems)
    if features is None or estimator is None:
        return None, problems, unsupported
    problems.extend(_consistency_problems(doc, features, estimator))
    return Model(doc, estimator, features), problems, unsupported


def _consistency_problems(doc: Mapping[str, Any], features: list[Feature], est: Estimator) -> list[Problem]:
    """The envelope must describe the estimator it carries."""
    problems: list[Problem] = []
    if est.n_features_in and est.n_features_in != len(features):
        problems.append(("/input/features", f"the estimator expects {est.n_features_in} features, "
                         f"input declares {len(features)}"))
    output = doc.get("output")
    if not isinstance(output, dict):
        return problems
    methods = output.get("methods")
    if isinstance(methods, list):
        for i, m in enumerate(methods):
            if isinstance(m, str) and m in METHODS and not est.supports(m):
                problems.append((f"/output/methods/{i}", f"{est.type_name} has no {m}"))
    classes = output.get("classes")
    if isinstance(classes, list) and classes:
        if est.classes is None:
            problems.append(("/output/classes", f"{est.type_name} has no classes"))
        elif not _labels_equal(np.asarray(est.classes, dtype=object).tolist(), classes):
            problems.append(("/output/classes", f"does not match the estimator's classes "
                             f"{_short(np.asarray(est.classes, dtype=object).tolist(), 120)}"))
    elif output.get("task") == "classification" and est.classes is None:
        problems.append(("/estimator",
                         f"{est.type_name} is not a classifier but output.task is classification"))
    return problems


def _labels_equal(a: Any, b: Any) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        return (isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
                and all(_labels_equal(x, y) for x, y in zip(a, b, strict=True)))
    return _same_label(a, b)


def load_model(source: Any, *, verify_sha256: bool = False) -> Model:
    """Load a model document (dict, path, bytes or JSON text) for scoring. Raises :class:`InvalidModel`.

    Checks everything scoring depends on (format version, input schema, estimator, the shape of the
    envelope fields that are present) but neither re-scores the test vectors nor, unless
    ``verify_sha256``, recomputes the sha256: that is :func:`validate_model`'s job, done once when a
    model is published.
    """
    doc = parse_document(source)
    check_format_version(doc)
    model, problems, unsupported = _build(doc, full=False)
    if verify_sha256:
        problems.extend(sha256_problems(doc) if "sha256" in doc
                        else [("/sha256", "required field is missing")])
    if problems or model is None:
        raise (UnsupportedModel if unsupported else InvalidModel)(problems)
    return model


def validate_model(source: Any) -> Model:
    """Fully check a document: structure, semantics, limits, sha256 and the test vectors re-scored.

    Returns the loaded model; raises :class:`InvalidModel` whose ``problems`` lists every
    (JSON pointer, message) pair found. A document that cannot even be parsed, or whose major
    format version is unknown, stops at that first problem.
    """
    doc = parse_document(source)
    check_format_version(doc)
    model, problems, unsupported = _build(doc, full=True)
    problems.extend(sha256_problems(doc))
    if model is not None:
        problems.extend(check_test_vectors(model))
    if problems or model is None:
        raise (UnsupportedModel if unsupported else InvalidModel)(problems)
    return model


# -- test vectors -----------------------------------------------------------------------------------

def check_test_vectors(model: Model) -> list[Problem]:
    """Re-score the document's test vectors; return the problems found (empty when all match)."""
    doc = model.document
    tv = doc.get("test_vectors")
    if not isinstance(tv, dict):
        return [("/test_vectors", "required object is missing: a model must prove what it predicts")]
    inputs, outputs = tv.get("inputs"), tv.get("outputs")
    if not isinstance(inputs, list) or not inputs:
        return [("/test_vectors/inputs", "must be a non-empty array of rows")]
    if len(inputs) > MAX_TEST_VECTORS:
        return [("/test_vectors/inputs", f"at most {MAX_TEST_VECTORS} rows")]
    if not isinstance(outputs, dict) or not outputs:
        return [("/test_vectors/outputs", "must be an object with at least one method's outputs")]
    tol = tv.get("tolerance", DEFAULT_TOLERANCE)
    if not isinstance(tol, (int, float)) or isinstance(tol, bool) or not 0 <= tol <= MAX_TOLERANCE:
        return [("/test_vectors/tolerance", f"must be a number between 0 and {MAX_TOLERANCE:g}")]
    problems: list[Problem] = []
    for r, row in enumerate(inputs):
        if not isinstance(row, list):
            problems.append((f"/test_vectors/inputs/{r}",
                             "a row must be an array of values in feature order"))
    if problems:
        return problems
    try:
        X = to_matrix(inputs, model.features)
    except InvalidInput as exc:
        ptr = "/test_vectors/inputs" + (f"/{exc.row}" if exc.row is not None else "")
        return [(ptr, str(exc))]
    declared = doc.get("output", {}).get("methods") if isinstance(doc.get("output"), dict) else None
    if isinstance(declared, list):
        for m in declared:
            if isinstance(m, str) and m in METHODS and m not in outputs:
                problems.append((f"/test_vectors/outputs/{m}",
                                 "missing: every method in output.methods needs test vector outputs"))
    for method, want in outputs.items():
        ptr = pointer_join("/test_vectors/outputs", method)
        if method not in METHODS:
            problems.append((ptr, f"unknown method {_short(method)}; expected one of {list(METHODS)}"))
            continue
        if isinstance(declared, list) and method not in declared:
            problems.append((ptr, f"{method} is not listed in output.methods"))
            continue
        if not isinstance(want, list):
            problems.append((ptr, f"must be an array, got {_json_type(want)}"))
            continue
        if not model.estimator.supports(method):
            problems.append((ptr, f"{model.type_name} has no {method}"))
            continue
        try:
            got = np.asarray(getattr(model.estimator, method)(X))
        except (ModelsyncScorerError, ArithmeticError, ValueError) as exc:
            problems.append((ptr, f"{method} failed on the test vectors: {exc}"))
            continue
        except Exception as exc:  # noqa: BLE001 - a bug in an implementation must become a problem, not a 500
            problems.append((ptr, f"{method} crashed on the test vectors: {type(exc).__name__}: {exc}"))
            continue
        problems.extend(_compare(method, got, want, float(tol), ptr))
    return problems


def _compare(name: str, got: np.ndarray, want: list[Any], tol: float, ptr: str) -> list[Problem]:
    """Labels must be equal; numbers within ``tol * max(1, |expected|)``; null stands for NaN."""
    try:
        w = np.array(want, dtype=object)
    except ValueError:
        return [(ptr, f"{name}: expected outputs are not a rectangular array")]
    if w.shape != got.shape:
        return [(ptr, f"{name}: expected shape {w.shape}, scorer gave {got.shape}")]
    if not w.size:
        return []
    wtypes = set(map(type, w.ravel().tolist()))
    numeric = got.dtype.kind in "iuf" and wtypes <= {int, float, _NONE}
    if numeric:
        wf = w.astype(np.float64)  # None -> NaN
        gf = got.astype(np.float64)
        with np.errstate(invalid="ignore"):
            diff = np.abs(gf - wf)
            ok = (diff <= tol * np.maximum(1.0, np.abs(wf))) | (np.isnan(gf) & np.isnan(wf))
    else:
        ok = np.frompyfunc(_same_label, 2, 1)(got.astype(object), w).astype(bool)
    if ok.all():
        return []
    bad_rows = np.flatnonzero(~ok.reshape(ok.shape[0], -1).all(axis=1)) if ok.ndim else np.array([0])
    problems: list[Problem] = []
    for r in bad_rows[:MAX_REPORTED_ROWS].tolist():
        if numeric:
            d = diff[r] if diff.ndim else diff
            worst = float(np.nanmax(np.where(np.isnan(d), np.inf, d))) if np.size(d) else 0.0
            msg = (f"{name} of row {r}: expected {_short(_py(w[r]), 80)}, "
                   f"scorer gave {_short(_py(got[r]), 80)} (differs by {worst:.3g}, tolerance {tol:g})")
        else:
            msg = (f"{name} of row {r}: expected {_short(_py(w[r]), 80)}, "
                   f"scorer gave {_short(_py(got[r]), 80)}")
        problems.append((f"{ptr}/{r}", msg))
    if len(bad_rows) > MAX_REPORTED_ROWS:
        problems.append((ptr, f"{name}: {len(bad_rows)} of {got.shape[0]} rows differ "
                         f"(first {MAX_REPORTED_ROWS} listed)"))
    return problems


def _py(value: Any) -> Any:
    """A numpy value (array or scalar) as plain Python, for messages."""
    return value.tolist() if isinstance(value, (np.ndarray, np.generic)) else value


def _same_label(a: Any, b: Any) -> bool:
    if isinstance(a, np.generic):
        a = a.item()
    if isinstance(b, np.generic):
        b = b.item()
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if a is None or b is None:
        return (a is None or (isinstance(a, float) and math.isnan(a))) and \
               (b is None or (isinstance(b, float) and math.isnan(b)))
    return bool(a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)))
