"""Export fitted scikit-learn estimators as model documents (JSON, no pickle).

Each supported estimator class has a converter registered in :data:`CONVERTERS`; a converter turns
the fitted estimator into one estimator node of the format (see docs/model-format.md). Anything not
registered, or a parameter a converter does not handle, raises :class:`UnsupportedEstimator` naming
it: never a silent approximation.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import json
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

import scorer
from scorer import content_sha256, encode_array

Converter = Callable[[Any, "ExportContext"], dict[str, Any]]
CONVERTERS: dict[type, Converter] = {}
DEFAULT_TEST_VECTORS = 25

_FAMILIES = ("linear", "preprocessing", "compose", "trees", "hist_gradient_boosting", "kernel", "neighbors",
             "naive_bayes", "neural_network", "cluster", "ensemble", "calibration", "target", "transforms",
             "discriminant_analysis", "xgboost", "lightgbm")
# families registered only when their library imports (optional extras): family -> library
_OPTIONAL = {"xgboost": "xgboost", "lightgbm": "lightgbm"}
# models that are not scikit-learn estimators (native Boosters): class -> ``predict(model, X)`` as the
# library computes it on an array; export_model treats them as regressors, convert skips check_is_fitted
NATIVE_PREDICT: dict[type, Callable[[Any, Any], Any]] = {}


class UnsupportedEstimator(ValueError):
    """An estimator class or parameter value the format cannot represent exactly."""


def converter(*classes: type) -> Callable[[Converter], Converter]:
    """Register ``fn`` as the converter for each scikit-learn class given."""

    def deco(fn: Converter) -> Converter:
        for cls in classes:
            CONVERTERS[cls] = fn
        return fn

    return deco


def native_predict(cls: type) -> Callable[[Callable[[Any, Any], Any]], Callable[[Any, Any], Any]]:
    """Register how export_model computes the test vectors of a native (non-scikit-learn) model."""

    def deco(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        NATIVE_PREDICT[cls] = fn
        return fn

    return deco


class _NativeOutputs:
    """A native model seen by export_model: a regressor-like ``predict`` (the library's own output)."""

    task = "regression"

    def __init__(self, model: Any, fn: Callable[[Any, Any], Any]) -> None:
        self.model, self.fn = model, fn

    def predict(self, X: Any) -> Any:
        return self.fn(self.model, X)


def supported_estimators() -> list[str]:
    _load_families()
    return sorted(f"{_package(c.__module__)}.{c.__name__}" for c in CONVERTERS)


def _package(module: str) -> str:
    """``linear_model`` for sklearn.linear_model._base, ``xgboost`` for xgboost.core."""
    parts = module.split(".")
    return parts[1] if parts[0] == "sklearn" else parts[0]


class ExportContext:
    """Options for one export and the recursion into sub-estimators."""

    def __init__(self, compact: bool = True, compress: bool = False) -> None:
        self.compact = compact
        self.compress = compress

    def array(self, a: Any, compress: bool | None = None) -> Any:
        return encode_array(np.asarray(a), compact=self.compact,
                            compress=self.compress if compress is None else compress)

    def convert(self, est: Any) -> dict[str, Any]:
        return convert(est, self)

    @staticmethod
    def refuse_unless(ok: Any, est: Any, attr: str, values: Any, why: str) -> None:
        """Refuse a fitted ``attr`` whose ``values`` fail ``ok`` (a mask), naming the first bad entry and
        why: a document the scorer would refuse, or one whose scikit-learn outputs are NaN, is never made."""
        bad = np.argwhere(~np.asarray(ok, dtype=bool))
        if bad.size:
            at = tuple(int(i) for i in bad[0])
            value = float(np.asarray(values)[at])
            raise UnsupportedEstimator(f"{type(est).__name__}: fitted {attr}{list(at)} is {value!r}, which "
                                       f"the document format cannot carry ({why})")

    @staticmethod
    def unsupported(est: Any, param: str, value: Any, supported: Sequence[Any]) -> UnsupportedEstimator:
        return UnsupportedEstimator(
            f"{type(est).__name__}({param}={value!r}) is not supported; supported {param}: "
            f"{', '.join(map(repr, supported))}")


def _load_families() -> None:
    for family in _FAMILIES:
        try:
            importlib.import_module(f"{__name__}.{family}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{family}" and exc.name != _OPTIONAL.get(family):
                raise


def convert(est: Any, ctx: ExportContext) -> dict[str, Any]:
    _load_families()
    fn = CONVERTERS.get(type(est))
    if fn is None:
        raise UnsupportedEstimator(f"{type(est).__name__} is not supported; supported estimators: "
                                   f"{', '.join(supported_estimators())}")
    if type(est) not in NATIVE_PREDICT:
        from sklearn.pipeline import Pipeline
        from sklearn.utils.validation import check_is_fitted

        if not isinstance(est, Pipeline):  # its steps are checked one by one (scikit-learn < 1.5 cannot check
            check_is_fitted(est)           # a Pipeline ending in "passthrough")
    return fn(est, ctx)


# -- the document envelope --------------------------------------------------------------------------

def _is_categorical_column(values: np.ndarray) -> bool:
    return any(isinstance(v, str) for v in values.tolist())


def _sample_frame(X: Any, feature_names: Sequence[str] | None) -> tuple[list[str], list[list[Any]], Any]:
    """Column names, rows as Python lists, and the object to hand to scikit-learn for outputs."""
    if hasattr(X, "columns") and hasattr(X, "to_numpy"):
        names = [str(c) for c in X.columns]
        rows = X.to_numpy(dtype=object).tolist()
        return names, rows, X
    arr = np.asarray(X, dtype=object) if not isinstance(X, np.ndarray) else X
    if arr.ndim != 2:
        raise ValueError("X_sample must be 2-D (rows x features)")
    names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(arr.shape[1])]
    if len(names) != arr.shape[1]:
        raise ValueError(f"{len(names)} feature names for {arr.shape[1]} columns")
    return names, arr.tolist(), X


def _jsonable(v: Any) -> Any:
    """A JSON value for one cell: numpy scalars unwrapped, NaN / None / pandas.NA -> null."""
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or type(v).__name__ in ("NAType", "NaTType"):
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, float) and math.isinf(v):
        raise ValueError("infinite values cannot be test vector inputs; choose other sample rows")
    if isinstance(v, (str, bool, int, float)):
        return v
    raise ValueError(f"a sample value of type {type(v).__name__} cannot be a test vector input")


def _output_list(values: Any, method: str = "output") -> list[Any]:
    """scikit-learn's outputs as JSON: NaN -> null (e.g. a scaler passing a missing value through)."""
    if hasattr(values, "toarray"):  # scipy sparse (e.g. OneHotEncoder's default output): scorers are dense
        values = values.toarray()
    arr = np.asarray(values)
    if arr.dtype.kind == "f" and np.isinf(arr).any():
        raise ValueError(f"scikit-learn's {method} returned infinite values for the sample; "
                         "choose other sample rows")
    if arr.dtype.kind == "c":
        raise ValueError(f"scikit-learn's {method} returned complex values")
    out: list[Any] = _nested_jsonable(arr.tolist())
    return out


def _nested_jsonable(values: list[Any]) -> list[Any]:
    return [_nested_jsonable(v) if isinstance(v, list) else _jsonable(v) for v in values]


def _task(est: Any) -> str:
    if isinstance(est, _NativeOutputs):
        return est.task
    from sklearn.base import is_classifier, is_outlier_detector, is_regressor

    try:
        from sklearn.base import is_clusterer  # scikit-learn >= 1.6
    except ImportError:  # older releases mark clusterers only by _estimator_type
        def is_clusterer(e: Any) -> bool:
            return getattr(e, "_estimator_type", None) == "clusterer"

    if is_classifier(est):
        return "classification"
    if is_regressor(est):
        return "regression"
    if is_outlier_detector(est):
        return "outlier_detection"
    if is_clusterer(est):
        return "clustering"
    return "transform"


def _methods(est: Any) -> list[str]:
    out = []
    for m in scorer._envelope.METHODS:
        try:
            if hasattr(est, m):
                out.append(m)
        except AttributeError:
            pass
    return out


def export_model(estimator: Any, X_sample: Any, name: str, *, description: str = "",
                 feature_names: Sequence[str] | None = None, n_test_vectors: int = DEFAULT_TEST_VECTORS,
                 compact: bool = True, compress: bool = False, baseline: Any = None) -> dict[str, Any]:
    """Export a fitted estimator with test vectors computed by scikit-learn on ``X_sample``.

    ``X_sample`` is a few representative rows (a DataFrame, or an array with ``feature_names``);
    its first ``n_test_vectors`` rows become the test vectors every scorer must reproduce.
    ``baseline`` (same columns; default ``X_sample``, with a warning under
    :data:`modelsync_protocol.drift.SMALL_BASELINE_ROWS` rows; ``False``: none) becomes
    ``metadata.baseline``, the training distribution drift is measured against.
    """
    import sklearn

    if not isinstance(name, str) or not scorer._envelope.NAME_PATTERN.fullmatch(name):
        raise ValueError(f"name {name!r} is not valid: 1-128 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit (it becomes part of storage keys and URLs)")
    ctx = ExportContext(compact=compact, compress=compress)
    node = convert(estimator, ctx)
    native = NATIVE_PREDICT.get(type(estimator))
    outputs_of = _NativeOutputs(estimator, native) if native is not None else estimator
    names, rows, X_sk = _sample_frame(X_sample, feature_names)
    if not rows:
        raise ValueError("X_sample needs at least one row: its first rows become the test vectors")
    fitted_names = getattr(estimator, "feature_names_in_", None)
    if fitted_names is not None and list(map(str, fitted_names)) != names:
        raise ValueError("X_sample's columns differ from the feature names the estimator was fitted on")
    columns = np.array(rows, dtype=object).T if rows else np.empty((len(names), 0), dtype=object)
    features: list[dict[str, Any]] = []
    for i, fname in enumerate(names):
        if rows and _is_categorical_column(columns[i]):
            cats = sorted({str(v) for v in columns[i].tolist() if v is not None and not _is_nan(v)})
            features.append({"name": fname, "type": "categorical", "categories": cats})
        else:
            features.append({"name": fname, "type": "numeric"})
    k = max(1, min(n_test_vectors, len(rows)))
    X_tv = X_sk.iloc[:k] if hasattr(X_sk, "iloc") else np.asarray(X_sk)[:k]
    task = _task(outputs_of)
    methods = _methods(outputs_of)
    outputs: dict[str, Any] = {}
    # One OpenMP thread: scikit-learn's brute-force neighbour search keeps tied neighbours per thread
    # (docs/format/neighbors.md, *Ties*); the format specifies the one-thread answer.
    with threadpool_limits(limits=1, user_api="openmp"):
        for m in methods:
            outputs[m] = _output_list(getattr(outputs_of, m)(X_tv), m)
    classes = getattr(estimator, "classes_", None)
    output: dict[str, Any] = {"task": task, "methods": methods}
    if classes is not None and task == "classification":
        output["classes"] = (_nested_jsonable(np.asarray(classes).tolist()) if np.ndim(classes) == 1
                             else [_nested_jsonable(np.asarray(cl).tolist()) for cl in classes])
    doc: dict[str, Any] = {
        "format_version": scorer.FORMAT_VERSION,
        "metadata": {
            "name": name,
            "description": description,
            "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "producer": {"name": "modelsync", "version": _version()},
            "sklearn_version": sklearn.__version__,
            "estimator_class": f"{type(estimator).__module__}.{type(estimator).__name__}",
        },
        "input": {"features": features},
        "output": output,
        "estimator": node,
        "test_vectors": {
            "inputs": [[_jsonable(v) for v in row] for row in rows[:k]],
            "outputs": outputs,
            "tolerance": scorer._envelope.DEFAULT_TOLERANCE,
        },
    }
    if baseline is not False:
        doc["metadata"]["baseline"] = _baseline(outputs_of, X_sample if baseline is None else baseline,
                                                names, features, feature_names, task,
                                                "predict" in methods)
    doc["sha256"] = content_sha256(doc)
    return checked_document(doc)


MAX_BASELINE_FEATURES = 1024  # wider models keep a baseline of their first features only


def _baseline(estimator: Any, data: Any, names: list[str], features: list[dict[str, Any]],
              feature_names: Sequence[str] | None, task: str, predicts: bool) -> dict[str, Any]:
    """``metadata.baseline`` from ``data`` (modelsync_protocol.drift): bins per feature + predictions."""
    from modelsync_protocol import drift

    b_names, b_rows, b_sk = _sample_frame(data, feature_names if feature_names is not None else names)
    if b_names != names:
        raise ValueError(f"the baseline's columns {b_names[:5]}... differ from X_sample's {names[:5]}...")
    if len(b_rows) < drift.SMALL_BASELINE_ROWS:
        warnings.warn(f"the drift baseline has {len(b_rows)} rows (fewer than {drift.SMALL_BASELINE_ROWS}): "
                      "its bins are coarse; pass baseline= (--baseline DATA.csv) with the training data",
                      stacklevel=3)
    columns = np.array(b_rows, dtype=object).T if b_rows else np.empty((len(names), 0), dtype=object)
    kept = features[:MAX_BASELINE_FEATURES]
    kinds = {f["name"]: ("categorical" if f["type"] == "categorical" else "numeric") for f in kept}
    cols = {f["name"]: columns[i] for i, f in enumerate(kept)}
    preds = np.asarray(estimator.predict(b_sk)) if predicts and b_rows else None
    if preds is not None and preds.ndim != 1:
        preds = None  # multi-output: no single prediction distribution
    kind = "categorical" if task == "classification" else "numeric"
    out = drift.make_baseline(cols, kinds, preds, kind)
    out["rows"] = len(b_rows)
    if len(features) > MAX_BASELINE_FEATURES:
        out["features_truncated"] = True
    return out


def checked_document(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` once ``scorer.validate_model`` accepts it (test vectors re-scored) and its compact JSON fits
    the scorer's size limit; else :class:`scorer.InvalidModel` (a ValueError) with the figure and the fix.

    The service and ``modelsync validate`` refuse such a document: export never hands one out."""
    scorer.validate_model(doc)
    size = len(json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode())
    if size > scorer.MAX_DOCUMENT_BYTES:
        raise scorer.InvalidModel(too_large(size, "even with compact JSON"))
    return doc


def too_large(size: int, how: str) -> str:
    """The message of a document over the scorer's limit: the figure and what to change."""
    return (f"the document would be {size:,} bytes {how}, over the scorer's limit of "
            f"{scorer.MAX_DOCUMENT_BYTES:,} bytes (`modelsync validate` and the service refuse it); export "
            "with compact arrays (the default: no --plain-arrays) and --compress, or fit a smaller model "
            "(fewer or shallower trees, fewer features or classes)")


def _is_nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _version() -> str:
    from modelsync import __version__

    return __version__
