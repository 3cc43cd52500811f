"""Request bodies -> model inputs, model outputs -> response bodies (Open Inference Protocol and plain JSON).

V2 inputs come in one of two forms:

* one tensor of shape ``[rows, n_features]`` (FP32, FP64, INT32 or INT64), columns in the model's feature
  order (numeric features only);
* one tensor per feature, named after it, shape ``[rows]`` (or ``[rows, 1]``): numeric datatypes for
  numeric features, BYTES (strings) for categorical ones (a numeric datatype is accepted there too).

``data`` may be flat (row-major) or nested to match ``shape``. JSON ``null`` is a missing value (NaN)
in FP tensors and in BYTES tensors. FP32 data is rounded to float32 first, as the datatype says.
Every error names the tensor (``input tensor 'x' (inputs[1])``) or the row and feature.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

import scorer

from .errors import InvalidModelInput, MethodUnavailable, PayloadTooLarge

NUMERIC_DATATYPES: dict[str, Any] = {"FP32": np.float32, "FP64": np.float64, "INT32": np.int32,
                                     "INT64": np.int64}
BYTES = "BYTES"
PREDICT = "predict"
PREDICT_PROBA = "predict_proba"
DECISION_FUNCTION = "decision_function"
TRANSFORM = "transform"
METHODS = (PREDICT, PREDICT_PROBA, DECISION_FUNCTION, TRANSFORM)  # every method a document can offer
PLAIN_KEYS = {PREDICT: "predictions", PREDICT_PROBA: "probabilities"}  # plain-route keys (others: the name)


def _label(t: Mapping[str, Any], index: int) -> str:
    name = t.get("name")
    return f"input tensor {name!r} (inputs[{index}])" if isinstance(name, str) else f"inputs[{index}]"


def _flatten(data: Any, shape: Sequence[int], what: str) -> list[Any]:
    """Row-major values of ``data`` (flat, or nested exactly as ``shape``)."""
    n = math.prod(shape)
    if not isinstance(data, list):
        raise InvalidModelInput(f"{what}: data must be a list")
    if len(data) == n and not any(isinstance(v, list) for v in data):
        return data
    if len(shape) <= 1:
        raise InvalidModelInput(f"{what}: data has {len(data)} elements, shape {list(shape)} needs {n}")
    out: list[Any] = []

    def walk(node: Any, depth: int, path: str) -> None:
        if depth == len(shape):
            if isinstance(node, list):
                raise InvalidModelInput(f"{what}: data{path} is nested deeper than shape {list(shape)}")
            out.append(node)
            return
        if not isinstance(node, list) or len(node) != shape[depth]:
            got = f"{len(node)} elements" if isinstance(node, list) else "a scalar"
            raise InvalidModelInput(f"{what}: data{path} has {got}, shape {list(shape)} needs "
                                    f"{shape[depth]} there")
        for i, child in enumerate(node):
            walk(child, depth + 1, f"{path}[{i}]")

    walk(data, 0, "")
    return out


def _numeric(values: list[Any], datatype: str, what: str) -> np.ndarray:
    allowed: tuple[type, ...] = (int, float, type(None)) if datatype.startswith("FP") else (int,)
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, allowed):
            kind = "a number or null" if datatype.startswith("FP") else "an integer"
            raise InvalidModelInput(f"{what}: element {i} is {v!r}, {datatype} needs {kind}")
    dtype = NUMERIC_DATATYPES[datatype]
    try:
        arr = np.array(values, dtype=np.float64 if datatype.startswith("FP") else np.int64)
        if dtype is np.float32:
            arr = arr.astype(np.float32)
        elif dtype is np.int32:
            info = np.iinfo(np.int32)
            if arr.size and (arr.min() < info.min or arr.max() > info.max):
                raise InvalidModelInput(f"{what}: values out of range for INT32")
    except OverflowError:
        raise InvalidModelInput(f"{what}: values out of range for {datatype}") from None
    return arr.astype(np.float64)


def _strings(values: list[Any], what: str) -> list[Any]:
    for i, v in enumerate(values):
        if v is not None and not isinstance(v, str):
            raise InvalidModelInput(f"{what}: element {i} is {v!r}, BYTES needs a string or null")
    return values


def _check_tensor(t: Any, index: int) -> tuple[str, list[int], str, Any]:
    if not isinstance(t, Mapping):
        raise InvalidModelInput(f"inputs[{index}] must be an object with name, shape, datatype and data")
    what = _label(t, index)
    name, shape, datatype, data = t.get("name"), t.get("shape"), t.get("datatype"), t.get("data")
    if not isinstance(name, str) or not name:
        raise InvalidModelInput(f"{what}: name must be a non-empty string")
    if not isinstance(shape, list) or not shape or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise InvalidModelInput(f"{what}: shape must be a list of non-negative integers")
    if datatype not in NUMERIC_DATATYPES and datatype != BYTES:
        raise InvalidModelInput(f"{what}: datatype {datatype!r} is not supported; use one of "
                                f"{', '.join([*NUMERIC_DATATYPES, BYTES])}")
    return name, shape, datatype, data


def decode_v2_inputs(inputs: Any, features: Sequence[Any], max_rows: int) -> tuple[Any, int]:
    """(X for the model, row count) from a V2 ``inputs`` list. ``features`` have ``.name`` and ``.kind``."""
    if not isinstance(inputs, list) or not inputs:
        raise InvalidModelInput("inputs must be a non-empty list of tensors")
    names = [f.name for f in features]
    if len(inputs) == 1:
        name, shape, datatype, data = _check_tensor(inputs[0], 0)
        if len(shape) == 2 and not (name in names and shape[1] == 1):
            return _matrix(inputs[0], shape, datatype, data, features, max_rows)
    return _per_feature(inputs, features, max_rows)


def _rows_limit(rows: int, max_rows: int) -> None:
    if rows > max_rows:
        raise PayloadTooLarge(f"{rows} rows in one request, over the limit of {max_rows}")


def _matrix(t: Mapping[str, Any], shape: list[int], datatype: str, data: Any, features: Sequence[Any],
            max_rows: int) -> tuple[np.ndarray, int]:
    what = _label(t, 0)
    n = len(features)
    if shape[1] != n:
        raise InvalidModelInput(f"{what}: shape {shape} has {shape[1]} columns, the model has {n} features "
                                f"({', '.join(f.name for f in features)})")
    _rows_limit(shape[0], max_rows)
    if datatype == BYTES:
        raise InvalidModelInput(f"{what}: a [rows, features] tensor must be FP32, FP64, INT32 or INT64; send "
                                "one tensor per feature to pass categorical (BYTES) values")
    cat = [f.name for f in features if f.kind == "categorical"]
    if cat:
        raise InvalidModelInput(f"{what}: the model has categorical features ({', '.join(cat)}); send one "
                                "tensor per feature (BYTES for categorical ones)")
    values = _numeric(_flatten(data, shape, what), datatype, what)
    return values.reshape(shape), shape[0]


def _per_feature(inputs: list[Any], features: Sequence[Any], max_rows: int) -> tuple[dict[str, Any], int]:
    by_name = {f.name: f for f in features}
    columns: dict[str, Any] = {}
    rows: int | None = None
    for i, t in enumerate(inputs):
        name, shape, datatype, data = _check_tensor(t, i)
        what = _label(t, i)
        if name not in by_name:
            raise InvalidModelInput(f"{what}: the model has no feature {name!r} (features: "
                                    f"{', '.join(by_name)}); or send one [rows, {len(features)}] tensor")
        if name in columns:
            raise InvalidModelInput(f"{what}: feature {name!r} given twice")
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            raise InvalidModelInput(f"{what}: a per-feature tensor has shape [rows] or [rows, 1], "
                                    f"got {shape}")
        if rows is None:
            rows = shape[0]
            _rows_limit(rows, max_rows)
        elif shape[0] != rows:
            raise InvalidModelInput(f"{what}: {shape[0]} rows, but the first tensor has {rows}")
        flat = _flatten(data, shape, what)
        feature = by_name[name]
        if datatype == BYTES:
            if feature.kind != "categorical":
                raise InvalidModelInput(f"{what}: feature {name!r} is numeric; "
                                        "use FP64, FP32, INT64 or INT32")
            columns[name] = _strings(flat, what)
        else:
            arr = _numeric(flat, datatype, what)
            # integer categories stay integers (a category 1 is not 1.0 to an encoder of strings/ints)
            columns[name] = ([int(v) for v in arr.tolist()] if feature.kind == "categorical"
                             and datatype.startswith("INT") else arr.tolist())
    missing = [f.name for f in features if f.name not in columns]
    if missing:
        raise InvalidModelInput(f"missing input tensor for feature {missing[0]!r}"
                                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return columns, int(rows or 0)


def _jsonable(values: np.ndarray) -> list[Any]:
    out = values.tolist()
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        out = _nan_to_none(out)
    return out


def _nan_to_none(v: Any) -> Any:
    if isinstance(v, list):
        return [_nan_to_none(x) for x in v]
    return None if isinstance(v, float) and not math.isfinite(v) else v


def default_outputs(model: scorer.Model) -> list[str]:
    """What a request that names no output gets: ``predict`` (+ ``predict_proba`` when the model has it),
    as before; a model without predict (a transformer, an anomaly score) gets its first method."""
    wanted = [m for m in (PREDICT, PREDICT_PROBA) if model.has(m)]
    return wanted or list(model.methods[:1])


def requested_outputs(model: scorer.Model, requested: Sequence[Any] | None) -> list[str]:
    """The requested methods in the order asked (default: :func:`default_outputs`); a method the model
    lacks is a :class:`MethodUnavailable` (400) naming the ones it has."""
    if requested is None:
        return default_outputs(model)
    if not requested:
        raise InvalidModelInput(f"outputs must name at least one of {', '.join(METHODS)}")
    missing = [r for r in requested if not (isinstance(r, str) and model.has(r))]
    if missing:
        raise MethodUnavailable(f"output {missing[0]!r} is not available; this model gives "
                                f"{', '.join(model.methods) or 'no output'}")
    return list(dict.fromkeys(requested))


def run(model: scorer.Model, X: Any, method: str) -> np.ndarray:
    """One method of the model; scorer errors -> InvalidModelInput (400) / MethodUnavailable (400)."""
    try:
        return np.asarray(getattr(model, method)(X))
    except scorer.MethodNotSupported as exc:
        raise MethodUnavailable(f"{exc}") from None
    except scorer.InvalidInput as exc:
        raise InvalidModelInput(str(exc)) from None


def _tensor(method: str, values: np.ndarray) -> dict[str, Any]:
    from .publish import datatype_of

    if method == PREDICT:
        dt = datatype_of(values)
        data = _jsonable(values) if dt != "BYTES" else [str(v) for v in values.tolist()]
        return {"name": method, "datatype": dt, "shape": list(values.shape), "data": data}
    values = values.astype(np.float64)
    return {"name": method, "datatype": "FP64", "shape": list(values.shape),
            "data": _jsonable(values.ravel())}


def v2_outputs(model: scorer.Model, X: Any, rows: int, requested: Sequence[Any] | None,
               predict_datatype: str | None = None) -> list[dict[str, Any]]:
    """The ``outputs`` of a V2 response, one tensor per requested method (default :func:`default_outputs`)."""
    wanted = requested_outputs(model, requested)
    if rows == 0:
        return empty_outputs(model, wanted, predict_datatype)
    return [_tensor(method, run(model, X, method)) for method in wanted]


def output_width(model: scorer.Model, method: str) -> int | None:
    """Columns of one row of ``method`` (None: one value per row), read from the document's test vectors
    (``predict_proba``: the number of classes)."""
    if method == PREDICT_PROBA and model.classes is not None and np.ndim(model.classes) == 1:
        return len(model.classes)
    tv = model.document.get("test_vectors")
    outputs = tv.get("outputs") if isinstance(tv, Mapping) else None
    first = outputs.get(method) if isinstance(outputs, Mapping) else None
    if isinstance(first, list) and first and isinstance(first[0], list):
        return len(first[0])
    return None


def output_datatype(model: scorer.Model, method: str, predict_datatype: str | None = None) -> str:
    """FP64 for every method but ``predict``, whose datatype is the registry's (else the labels')."""
    if method != PREDICT:
        return "FP64"
    if predict_datatype is not None:
        return predict_datatype
    classes = model.classes
    return "FP64" if classes is None or np.ndim(classes) != 1 else _label_datatype(classes)


def output_metadata(model: scorer.Model, predict_datatype: str | None = None) -> list[dict[str, Any]]:
    """Every method of the model as a V2 metadata output (name, datatype, shape; -1 for the rows)."""
    out = []
    for method in model.methods:
        width = output_width(model, method)
        out.append({"name": method, "datatype": output_datatype(model, method, predict_datatype),
                    "shape": [-1] if width is None else [-1, width]})
    return out


def empty_outputs(model: scorer.Model, wanted: Sequence[str], predict_datatype: str | None = None
                  ) -> list[dict[str, Any]]:
    """The outputs for zero rows, shaped as scored rows would be, without calling the scorer (some of its
    estimators cannot take an empty matrix). The datatype of ``predict`` is the registry's (the one
    published with the version)."""
    outputs: list[dict[str, Any]] = []
    for method in wanted:
        width = output_width(model, method)
        if method == PREDICT_PROBA and width is None:
            width = 0
        outputs.append({"name": method, "datatype": output_datatype(model, method, predict_datatype),
                        "shape": [0] if width is None else [0, width], "data": []})
    return outputs


def _label_datatype(classes: np.ndarray) -> str:
    from .publish import datatype_of

    return datatype_of(np.asarray(classes))


def plain_predict(model: scorer.Model, instances: Any, max_rows: int,
                  requested: Sequence[Any] | None = None) -> dict[str, Any]:
    """``{"instances": [...]}`` -> ``predictions`` (+ ``probabilities`` keyed by class for classifiers).

    With ``requested`` (the body's ``outputs``), exactly those methods: ``predict`` as ``predictions``,
    ``predict_proba`` as ``probabilities``, the others under their own name (``decision_function``,
    ``transform``)."""
    if not isinstance(instances, list):
        raise InvalidModelInput("instances must be a list of rows (lists or objects keyed by feature name)")
    _rows_limit(len(instances), max_rows)
    wanted = requested_outputs(model, requested)
    out: dict[str, Any] = {}
    for method in wanted:
        key = PLAIN_KEYS.get(method, method)
        if not instances:
            out[key] = []
            continue
        values = run(model, instances, method)
        if method == PREDICT:
            out[key] = (_jsonable(values) if values.dtype != object
                        else [v.item() if isinstance(v, np.generic) else v for v in values.tolist()])
        elif method == PREDICT_PROBA and model.classes is not None:
            labels = [str(c) for c in model.classes.tolist()]
            out[key] = [dict(zip(labels, row, strict=True)) for row in _jsonable(values)]
        else:
            out[key] = _jsonable(values.astype(np.float64))
    return out
