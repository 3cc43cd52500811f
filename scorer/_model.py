"""The document envelope: parsing, the input schema, the public Model object and validation."""

from __future__ import annotations

import hashlib
import json
import math
import pathlib
from collections.abc import Mapping, Sequence
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
    decode_labels,
    load_estimator,
)

FORMAT_VERSION = "1.0"
SUPPORTED_FORMAT_MAJOR = 1
TASKS = ("classification", "regression", "clustering", "outlier_detection", "transform")
METHODS = ("predict", "predict_proba", "decision_function", "transform")
NUMERIC = "numeric"
CATEGORICAL = "categorical"
DEFAULT_TOLERANCE = 1e-9


# -- parsing ----------------------------------------------------------------------------------------

def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def parse_document(source: Any) -> dict[str, Any]:
    """Accept a dict, a path (str or Path), bytes or JSON text; strict JSON only."""
    if isinstance(source, Mapping):
        doc = dict(source)
        _check_depth(doc)
        return doc
    if isinstance(source, pathlib.Path) or (isinstance(source, str) and not source.lstrip().startswith("{")):
        path = pathlib.Path(source)
        try:
            size = path.stat().st_size
            if size > MAX_DOCUMENT_BYTES:
                raise InvalidModel(f"document is {size} bytes, over the limit of {MAX_DOCUMENT_BYTES}")
            source = path.read_bytes()
        except OSError as exc:
            raise InvalidModel(f"cannot read model file {str(path)!r}: {exc.strerror}") from None
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw = bytes(source)
        if len(raw) > MAX_DOCUMENT_BYTES:
            raise InvalidModel(f"document is {len(raw)} bytes, over the limit of {MAX_DOCUMENT_BYTES}")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidModel(f"document is not UTF-8: {exc.reason} at byte {exc.start}") from None
    elif isinstance(source, str):
        text = source
        if len(text) > MAX_DOCUMENT_BYTES:
            raise InvalidModel(f"document is over the limit of {MAX_DOCUMENT_BYTES} bytes")
    else:
        raise InvalidModel(f"cannot load a model from {type(source).__name__}")
    _check_text_depth(text)
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except RecursionError:
        raise InvalidModel(f"document nested deeper than {MAX_NESTING_DEPTH}") from None
    except ValueError as exc:
        raise InvalidModel(f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidModel("document must be a JSON object")
    return doc


def _check_text_depth(text: str) -> None:
    """Reject deep nesting before json.loads can recurse (cheap scan that ignores string contents)."""
    depth = 0
    in_string = escape = False
    for ch in text:
        if in_string:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_NESTING_DEPTH:
                raise InvalidModel(f"document nested deeper than {MAX_NESTING_DEPTH}")
        elif ch in "]}":
            depth -= 1


def _check_depth(obj: Any) -> None:
    stack = [(obj, 1)]
    while stack:
        cur, d = stack.pop()
        if d > MAX_NESTING_DEPTH:
            raise InvalidModel(f"document nested deeper than {MAX_NESTING_DEPTH}")
        if isinstance(cur, dict):
            stack.extend((v, d + 1) for v in cur.values())
        elif isinstance(cur, list):
            stack.extend((v, d + 1) for v in cur if isinstance(v, (dict, list)))


def canonical_bytes(doc: Mapping[str, Any]) -> bytes:
    """The bytes the document's sha256 covers: the document without ``sha256``, keys sorted, compact."""
    body = {k: v for k, v in doc.items() if k != "sha256"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def content_sha256(doc: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(doc)).hexdigest()


# -- input schema -----------------------------------------------------------------------------------

class Feature:
    __slots__ = ("categories", "kind", "name")

    def __init__(self, name: str, kind: str, categories: list[Any] | None) -> None:
        self.name, self.kind, self.categories = name, kind, categories


def _load_features(doc: dict[str, Any]) -> list[Feature]:
    ctx = LoadContext("/input")
    inp = ctx.get(doc, "input", dict) if "input" in doc else None
    if inp is None:
        raise InvalidModel("required field is missing", "/input")
    raw = ctx.get(inp, "features", list)
    if not raw:
        raise InvalidModel("a model needs at least one input feature", "/input/features")
    features: list[Feature] = []
    seen: set[str] = set()
    for i, f in enumerate(raw):
        fctx = ctx.child("features", i)
        if not isinstance(f, dict):
            raise fctx.fail("feature must be an object")
        name = fctx.get(f, "name", str)
        if name in seen:
            raise fctx.fail(f"duplicate feature name {name!r}", "name")
        seen.add(name)
        kind = fctx.get(f, "type", str, default=NUMERIC, choices=(NUMERIC, CATEGORICAL))
        cats = fctx.get(f, "categories", list, default=None)
        features.append(Feature(name, kind, cats))
    return features


def to_matrix(X: Any, features: Sequence[Feature]) -> np.ndarray:
    """Convert any accepted input to a 2-D array in feature order.

    Float64 when every feature is numeric; otherwise an object array holding floats (NaN for missing)
    in numeric columns and the raw values (``None`` for missing) in categorical ones.
    """
    names = [f.name for f in features]
    n = len(names)
    categorical = [f.kind == CATEGORICAL for f in features]
    any_cat = any(categorical)
    if isinstance(X, Mapping):
        X = _columns_to_rows(X, names)
    elif isinstance(X, np.ndarray) and X.dtype.kind in "iufb":
        if X.ndim != 2:
            raise InvalidInput(f"expected a 2-D array of shape (rows, {n}), got {X.ndim}-D")
        if X.shape[1] != n:
            raise InvalidInput(f"expected {n} features ({', '.join(names)}), got {X.shape[1]} columns")
        out = X.astype(np.float64)
        return out.astype(object) if any_cat else out
    elif hasattr(X, "to_numpy") and hasattr(X, "columns"):  # a DataFrame, without importing pandas
        X = [dict(zip(map(str, X.columns), row, strict=True)) for row in X.to_numpy(dtype=object).tolist()]
    if isinstance(X, np.ndarray):
        if X.ndim != 2:
            raise InvalidInput(f"expected a 2-D array of shape (rows, {n}), got {X.ndim}-D")
        X = X.tolist()
    if not isinstance(X, Sequence) or isinstance(X, (str, bytes)):
        raise InvalidInput("expected a 2-D array, a list of rows, a list of objects or a dict of columns")
    rows: list[list[Any]] = []
    for r, row in enumerate(X):
        if isinstance(row, Mapping):
            missing = [k for k in names if k not in row]
            if missing:
                raise InvalidInput(f"row {r}: missing feature {missing[0]!r}", row=r, feature=missing[0])
            if len(row) != n:
                extra = next(k for k in row if k not in set(names))
                raise InvalidInput(f"row {r}: unknown feature {extra!r}", row=r, feature=str(extra))
            values = [row[k] for k in names]
        elif isinstance(row, (Sequence, np.ndarray)) and not isinstance(row, (str, bytes)):
            values = list(row)
            if len(values) != n:
                raise InvalidInput(f"row {r}: expected {n} values ({', '.join(names)}), got {len(values)}", row=r)
        else:
            raise InvalidInput(f"row {r}: expected a list of values or an object keyed by feature name", row=r)
        for c, v in enumerate(values):
            values[c] = _cell(v, r, features[c], categorical[c])
        rows.append(values)
    if not rows:
        return np.empty((0, n), dtype=object if any_cat else np.float64)
    if any_cat:
        out = np.empty((len(rows), n), dtype=object)
        out[:] = rows
        return out
    return np.array(rows, dtype=np.float64)


def _cell(v: Any, r: int, feature: Feature, categorical: bool) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if categorical:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return None
        if isinstance(v, (str, int, float)) and not isinstance(v, bool):
            return v
        if isinstance(v, bool):
            return v
        raise InvalidInput(f"row {r}, feature {feature.name!r}: expected a category, got {type(v).__name__}",
                           row=r, feature=feature.name)
    if v is None:
        return math.nan
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    raise InvalidInput(f"row {r}, feature {feature.name!r}: expected a number, got {v!r}", row=r,
                       feature=feature.name)


def _columns_to_rows(cols: Mapping[str, Any], names: list[str]) -> list[list[Any]]:
    missing = [k for k in names if k not in cols]
    if missing:
        raise InvalidInput(f"missing feature {missing[0]!r}", feature=missing[0])
    extra = [k for k in cols if k not in set(names)]
    if extra:
        raise InvalidInput(f"unknown feature {extra[0]!r}", feature=str(extra[0]))
    columns = [list(np.asarray(cols[k], dtype=object).ravel()) if not isinstance(cols[k], list) else cols[k]
               for k in names]
    lengths = {len(c) for c in columns}
    if len(lengths) > 1:
        raise InvalidInput("columns have different lengths")
    return [list(r) for r in zip(*columns, strict=True)]


# -- the public model -------------------------------------------------------------------------------

class Model:
    """A loaded model: the scikit-learn-like methods over the document's input schema."""

    def __init__(self, doc: dict[str, Any], estimator: Estimator, features: list[Feature]) -> None:
        self.document = doc
        self.estimator = estimator
        self._features = features
        meta = doc.get("metadata") or {}
        self.name: str = meta.get("name", "")
        self.format_version: str = doc.get("format_version", "")
        self.sha256: str | None = doc.get("sha256")
        self.task: str = (doc.get("output") or {}).get("task", "")

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self._features]

    @property
    def features(self) -> list[Feature]:
        return list(self._features)

    @property
    def classes(self) -> np.ndarray | None:
        return self.estimator.classes

    @property
    def methods(self) -> list[str]:
        return [m for m in METHODS if self.estimator.supports(m)]

    def _x(self, X: Any) -> np.ndarray:
        return to_matrix(X, self._features)

    def predict(self, X: Any) -> np.ndarray:
        return self.estimator.predict(self._x(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.estimator.predict_proba(self._x(X))

    def decision_function(self, X: Any) -> np.ndarray:
        return self.estimator.decision_function(self._x(X))

    def transform(self, X: Any) -> np.ndarray:
        return self.estimator.transform(self._x(X))

    def has(self, method: str) -> bool:
        return method in METHODS and self.estimator.supports(method)

    def __repr__(self) -> str:
        return f"<scorer.Model {self.name!r} {self.estimator.type_name} features={len(self._features)}>"


def check_format_version(doc: dict[str, Any]) -> str:
    fv = doc.get("format_version")
    if not isinstance(fv, str):
        raise InvalidModel("required string field is missing", "/format_version")
    major = fv.split(".", 1)[0]
    if not major.isdigit() or int(major) != SUPPORTED_FORMAT_MAJOR:
        raise InvalidModel(
            f"format_version {fv!r} is not supported by this scorer (understands {SUPPORTED_FORMAT_MAJOR}.x)",
            "/format_version",
        )
    return fv


def load_model(source: Any) -> Model:
    """Load a model document (dict, path, bytes or JSON text). Raises :class:`InvalidModel`."""
    doc = parse_document(source)
    check_format_version(doc)
    features = _load_features(doc)
    if "estimator" not in doc:
        raise InvalidModel("required field is missing", "/estimator")
    estimator = load_estimator(doc["estimator"], LoadContext("/estimator"))
    if estimator.n_features_in and estimator.n_features_in != len(features):
        raise InvalidModel(
            f"estimator expects {estimator.n_features_in} features, input declares {len(features)}",
            "/input/features")
    return Model(doc, estimator, features)


def _compare(name: str, got: np.ndarray, want: Any, tol: float, exact_labels: bool,
             ptr: str) -> list[tuple[str, str]]:
    if exact_labels:
        w = np.asarray(decode_labels(want, LoadContext(ptr)) if want else np.empty(0), dtype=object)
        g = np.asarray(got, dtype=object)
        if g.shape != w.shape:
            return [(ptr, f"{name}: expected shape {w.shape}, scorer gave {g.shape}")]
        bad = [i for i in range(len(w)) if not _same_label(g[i], w[i])]
        if bad:
            i = bad[0]
            return [(f"{ptr}/{i}", f"{name} of row {i}: expected {w[i]!r}, scorer gave {g[i]!r}"
                     f" ({len(bad)} rows differ)")]
        return []
    try:
        w = np.array(want, dtype=np.float64)
    except (TypeError, ValueError):
        return [(ptr, f"{name}: expected values are not numeric")]
    g = np.asarray(got, dtype=np.float64)
    if g.shape != w.shape:
        return [(ptr, f"{name}: expected shape {w.shape}, scorer gave {g.shape}")]
    diff = np.abs(g - w)
    bad = ~((diff <= tol) | (np.isnan(g) & np.isnan(w)))
    if bad.any():
        i = int(np.argwhere(bad)[0][0])
        return [(f"{ptr}/{i}", f"{name} of row {i} differs by {float(np.nanmax(np.where(bad, diff, 0))):.3g}"
                 f" (tolerance {tol:g}; {int(bad.any(axis=tuple(range(1, bad.ndim))).sum())} rows differ)")]
    return []


def _same_label(a: Any, b: Any) -> bool:
    if isinstance(a, np.generic):
        a = a.item()
    if isinstance(b, np.generic):
        b = b.item()
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return bool(a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)))


def check_test_vectors(model: Model) -> list[tuple[str, str]]:
    """Re-score the document's test vectors; return the problems found (empty when all match)."""
    doc = model.document
    tv = doc.get("test_vectors")
    if not isinstance(tv, dict):
        return [("/test_vectors", "required object is missing: a model must prove what it predicts")]
    problems: list[tuple[str, str]] = []
    inputs = tv.get("inputs")
    outputs = tv.get("outputs")
    if not isinstance(inputs, list) or not inputs:
        return [("/test_vectors/inputs", "must be a non-empty list of rows")]
    if not isinstance(outputs, dict) or not outputs:
        return [("/test_vectors/outputs", "must be an object with at least one method's outputs")]
    tol = tv.get("tolerance", DEFAULT_TOLERANCE)
    if not isinstance(tol, (int, float)) or isinstance(tol, bool) or not 0 <= tol <= 1e-3:
        return [("/test_vectors/tolerance", "must be a number between 0 and 1e-3")]
    try:
        X = model._x(inputs)
    except InvalidInput as exc:
        return [("/test_vectors/inputs", str(exc))]
    for method, want in outputs.items():
        ptr = f"/test_vectors/outputs/{method}"
        if method not in METHODS:
            problems.append((ptr, f"unknown method {method!r}; expected one of {list(METHODS)}"))
            continue
        if not isinstance(want, list):
            problems.append((ptr, "must be a list"))
            continue
        try:
            got = getattr(model.estimator, method)(X)
        except MethodNotSupported:
            problems.append((ptr, f"the model has no {method}"))
            continue
        except (InvalidInput, ValueError, FloatingPointError) as exc:
            problems.append((ptr, f"{method} failed: {exc}"))
            continue
        labels = method == "predict" and model.task in ("classification",) and np.asarray(got).ndim == 1
        problems.extend(_compare(method, got, want, float(tol), labels, ptr))
    return problems
