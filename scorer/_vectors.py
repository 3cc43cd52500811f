"""Test vectors: re-score a document's ``test_vectors.inputs`` and compare with its recorded outputs
(labels equal, numbers within the tolerance), reporting each mismatch with a JSON pointer.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ._base import InvalidInput, ModelsyncScorerError, _json_type, _short, pointer_join
from ._envelope import DEFAULT_TOLERANCE, MAX_TOLERANCE, METHODS, Problem
from ._inputs import to_matrix

if TYPE_CHECKING:
    from ._model import Model

MAX_TEST_VECTORS = 10_000
MAX_REPORTED_ROWS = 10  # per method, when test vectors do not match
_NONE = type(None)


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
        ok = np.frompyfunc(same_label, 2, 1)(got.astype(object), w).astype(bool)
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


def same_label(a: Any, b: Any) -> bool:
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


def labels_equal(a: Any, b: Any) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        return (isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
                and all(labels_equal(x, y) for x, y in zip(a, b, strict=True)))
    return same_label(a, b)

