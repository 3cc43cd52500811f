"""Core types shared by every model implementation: errors, the type registry, array decoding.

Every estimator node in a document is turned into an :class:`Estimator` exactly once, at load time:
arrays are decoded and checked here so that scoring is plain vectorised numpy with no re-validation.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np

# Limits a hostile document hits long before it can exhaust memory or the stack.
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
MAX_NESTING_DEPTH = 64
MAX_ARRAY_ELEMENTS = 50_000_000
MAX_TOTAL_ELEMENTS = 100_000_000
MAX_ESTIMATOR_DEPTH = 16  # pipeline / column transformer nesting

ARRAY_DTYPES: dict[str, str] = {
    "float64": "<f8",
    "float32": "<f4",
    "int64": "<i8",
    "int32": "<i4",
    "int16": "<i2",
    "uint8": "u1",
    "bool": "?",
}
ARRAY_ENCODINGS = ("base64", "base64-zlib")


class ModelsyncScorerError(ValueError):
    """Base of the scorer's errors."""


class InvalidModel(ModelsyncScorerError):
    """A document that cannot be loaded. ``problems`` lists (JSON pointer, message) pairs."""

    def __init__(self, problems: Sequence[tuple[str, str]] | str, pointer: str = "") -> None:
        if isinstance(problems, str):
            problems = [(pointer, problems)]
        self.problems: list[tuple[str, str]] = list(problems)
        shown = "; ".join(f"{p or '/'}: {m}" for p, m in self.problems[:10])
        more = f" (+{len(self.problems) - 10} more)" if len(self.problems) > 10 else ""
        super().__init__(f"invalid model: {shown}{more}")


class UnsupportedModel(InvalidModel):
    """A well-formed document naming a model type or option this scorer does not implement."""


class InvalidInput(ModelsyncScorerError):
    """Input rows that cannot be scored; the message names the row and the feature."""

    def __init__(self, message: str, row: int | None = None, feature: str | None = None) -> None:
        self.row = row
        self.feature = feature
        super().__init__(message)


class MethodNotSupported(ModelsyncScorerError, AttributeError):
    """The model has no such method (e.g. predict_proba on a regressor), as in scikit-learn."""


def pointer_join(base: str, *parts: str | int) -> str:
    """Extend a JSON pointer (RFC 6901), escaping ``~`` and ``/``."""
    out = base
    for part in parts:
        out += "/" + str(part).replace("~", "~0").replace("/", "~1")
    return out


class LoadContext:
    """Where we are in the document while loading, plus the running budget of decoded elements."""

    def __init__(self, pointer: str = "/estimator", budget: list[int] | None = None, depth: int = 0) -> None:
        self.pointer = pointer
        self._budget = budget if budget is not None else [MAX_TOTAL_ELEMENTS]
        self.depth = depth

    def child(self, *parts: str | int) -> LoadContext:
        return LoadContext(pointer_join(self.pointer, *parts), self._budget, self.depth)

    def nested(self, *parts: str | int) -> LoadContext:
        """A child that is itself an estimator node (counts towards the nesting limit)."""
        if self.depth + 1 > MAX_ESTIMATOR_DEPTH:
            raise InvalidModel(f"estimators nested deeper than {MAX_ESTIMATOR_DEPTH}", pointer_join(self.pointer, *parts))
        return LoadContext(pointer_join(self.pointer, *parts), self._budget, self.depth + 1)

    def fail(self, message: str, *parts: str | int) -> InvalidModel:
        return InvalidModel(message, pointer_join(self.pointer, *parts))

    # -- field access ---------------------------------------------------------------------------
    def get(self, node: dict[str, Any], key: str, types: type | tuple[type, ...] | None = None,
            default: Any = ..., choices: Sequence[Any] | None = None) -> Any:
        if key not in node:
            if default is ...:
                raise self.fail("required field is missing", key)
            return default
        value = node[key]
        if types is not None and (not isinstance(value, types) or isinstance(value, bool) and bool not in (
                types if isinstance(types, tuple) else (types,))):
            raise self.fail(f"expected {_type_name(types)}, got {type(value).__name__}", key)
        if choices is not None and value not in choices:
            raise self.fail(f"must be one of {list(choices)}, got {value!r}", key)
        return value

    def number(self, node: dict[str, Any], key: str, default: Any = ..., finite: bool = True) -> float:
        value = self.get(node, key, (int, float), default)
        if value is None:
            return value  # type: ignore[no-any-return]
        if finite and not np.isfinite(value):
            raise self.fail("must be a finite number", key)
        return float(value)

    def integer(self, node: dict[str, Any], key: str, default: Any = ..., minimum: int | None = None) -> int:
        value = self.get(node, key, int, default)
        if minimum is not None and value is not None and value < minimum:
            raise self.fail(f"must be >= {minimum}", key)
        return value  # type: ignore[no-any-return]

    def array(self, node: dict[str, Any], key: str, dtype: str = "float64", ndim: int | None = None,
              shape: Sequence[int | None] | None = None, finite: bool = True, default: Any = ...) -> np.ndarray:
        """Decode ``node[key]`` (plain JSON list or base64 block) into a C-contiguous array of ``dtype``."""
        if key not in node:
            if default is ...:
                raise self.fail("required array is missing", key)
            return default  # type: ignore[no-any-return]
        return decode_array(node[key], self.child(key), dtype=dtype, ndim=ndim, shape=shape, finite=finite)

    def labels(self, node: dict[str, Any], key: str) -> np.ndarray:
        """Class labels: a JSON list of strings, or of numbers (ints stay ints), not mixed."""
        raw = self.get(node, key, list)
        return decode_labels(raw, self.child(key))

    def take_budget(self, n: int) -> None:
        self._budget[0] -= n
        if self._budget[0] < 0:
            raise InvalidModel(f"document holds more than {MAX_TOTAL_ELEMENTS} array elements", self.pointer)


def _type_name(types: type | tuple[type, ...]) -> str:
    ts = types if isinstance(types, tuple) else (types,)
    names = {int: "integer", float: "number", str: "string", list: "array", dict: "object", bool: "boolean"}
    return " or ".join(names.get(t, t.__name__) for t in ts)


def decode_labels(raw: list[Any], ctx: LoadContext) -> np.ndarray:
    if not raw:
        raise InvalidModel("labels must not be empty", ctx.pointer)
    if all(isinstance(v, str) for v in raw):
        return np.array(raw, dtype=object)
    if all(isinstance(v, bool) for v in raw):
        return np.array(raw, dtype=bool)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in raw):
        return np.array(raw, dtype=np.int64)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw):
        arr = np.array(raw, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise InvalidModel("labels must be finite", ctx.pointer)
        return arr
    raise InvalidModel("labels must be all strings, all booleans or all numbers", ctx.pointer)


def decode_array(value: Any, ctx: LoadContext, dtype: str = "float64", ndim: int | None = None,
                 shape: Sequence[int | None] | None = None, finite: bool = True) -> np.ndarray:
    """Decode one array field. Plain lists must be rectangular; base64 blocks are little-endian."""
    target = np.dtype(ARRAY_DTYPES[dtype])
    if isinstance(value, dict):
        arr = _decode_block(value, ctx)
        if arr.dtype.kind == "f" and target.kind in "iub":
            raise ctx.fail(f"expected {dtype} values, got {arr.dtype.name}")
        if arr.dtype.kind in "iu" and target.kind in "iu" and arr.size:
            info = np.iinfo(target)
            if arr.min() < info.min or arr.max() > info.max:
                raise ctx.fail(f"values out of range for {dtype}")
        out = arr.astype(target, copy=False)
    elif isinstance(value, list):
        _check_nesting(value, ctx, ndim)
        try:
            out = np.array(value, dtype=target if target.kind != "b" else bool)
        except (ValueError, TypeError, OverflowError) as exc:
            raise ctx.fail(f"not a rectangular array of {dtype}: {exc}") from None
        if out.dtype == object:
            raise ctx.fail("not a rectangular array")
        if target.kind in "iub":
            # np.array(.., int) silently truncates floats: require exact integers in the JSON.
            if any(isinstance(v, float) for v in _flat(value)):
                raise ctx.fail(f"expected integers ({dtype})")
        if any(isinstance(v, str) for v in _flat(value)):
            raise ctx.fail(f"expected numbers ({dtype}), found a string")
    else:
        raise ctx.fail("expected an array (JSON list or base64 block)")
    if ndim is not None and out.ndim != ndim:
        if not (out.size == 0 and isinstance(value, list) and ndim > 1):
            raise ctx.fail(f"expected a {ndim}-D array, got {out.ndim}-D")
        out = out.reshape((0,) * ndim)
    if shape is not None:
        if len(shape) != out.ndim or any(s is not None and s != o for s, o in zip(shape, out.shape, strict=False)):
            want = "x".join("*" if s is None else str(s) for s in shape)
            raise ctx.fail(f"expected shape {want}, got {'x'.join(map(str, out.shape))}")
    if finite and out.dtype.kind == "f" and not np.all(np.isfinite(out)):
        raise ctx.fail("must hold only finite numbers")
    ctx.take_budget(out.size)
    return np.ascontiguousarray(out)


def _flat(value: Any) -> Any:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(v)
        else:
            yield v


def _check_nesting(value: list[Any], ctx: LoadContext, ndim: int | None) -> None:
    depth, cur = 0, value
    while isinstance(cur, list):
        depth += 1
        if depth > 8:
            raise ctx.fail("array nested too deeply")
        cur = cur[0] if cur else None
    count = 0
    for _ in _flat(value):
        count += 1
        if count > MAX_ARRAY_ELEMENTS:
            raise ctx.fail(f"array longer than {MAX_ARRAY_ELEMENTS} elements")


def _decode_block(block: dict[str, Any], ctx: LoadContext) -> np.ndarray:
    extra = set(block) - {"encoding", "dtype", "shape", "data"}
    if extra:
        raise ctx.fail(f"unknown keys in array block: {sorted(extra)}")
    encoding = block.get("encoding")
    if encoding not in ARRAY_ENCODINGS:
        raise ctx.fail(f"encoding must be one of {list(ARRAY_ENCODINGS)}", "encoding")
    dtype = block.get("dtype")
    if dtype not in ARRAY_DTYPES:
        raise ctx.fail(f"dtype must be one of {list(ARRAY_DTYPES)}", "dtype")
    shape = block.get("shape")
    if (not isinstance(shape, list) or len(shape) > 8
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)):
        raise ctx.fail("shape must be a list of non-negative integers", "shape")
    n = 1
    for s in shape:
        n *= s
    if n > MAX_ARRAY_ELEMENTS:
        raise ctx.fail(f"array longer than {MAX_ARRAY_ELEMENTS} elements", "shape")
    data = block.get("data")
    if not isinstance(data, str):
        raise ctx.fail("data must be a base64 string", "data")
    np_dtype = np.dtype(ARRAY_DTYPES[dtype])
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
        if encoding == "base64-zlib":
            d = zlib.decompressobj()
            raw = d.decompress(raw, n * np_dtype.itemsize + 1)
            if d.unconsumed_tail or not d.eof:
                raise ctx.fail("compressed data does not match its shape", "data")
    except (binascii.Error, UnicodeEncodeError, zlib.error) as exc:
        raise ctx.fail(f"data is not valid {encoding}: {exc}", "data") from None
    if len(raw) != n * np_dtype.itemsize:
        raise ctx.fail(f"data holds {len(raw)} bytes, shape {shape} x {dtype} needs {n * np_dtype.itemsize}", "data")
    return np.frombuffer(raw, dtype=np_dtype).reshape(shape)


def encode_array(arr: Any, compact: bool = True, compress: bool = False) -> Any:
    """Inverse of :func:`decode_array`: a base64 block (compact) or a plain list. Both round-trip exactly.

    Plain lists cannot carry NaN or infinities (strict JSON), so such arrays are always written as blocks.
    """
    a = np.asarray(arr)
    if a.dtype == np.bool_:
        dtype = "bool"
    else:
        names = {np.dtype(v).newbyteorder("=") if np.dtype(v).byteorder != "|" else np.dtype(v): k
                 for k, v in ARRAY_DTYPES.items()}
        dtype = names.get(a.dtype.newbyteorder("=") if a.dtype.byteorder not in "|=" else a.dtype)  # type: ignore[arg-type]
        if dtype is None:
            if a.dtype.kind in "iu":
                dtype = "int64"
            elif a.dtype.kind == "f":
                dtype = "float64"
            else:
                raise TypeError(f"cannot encode arrays of dtype {a.dtype}")
    a = np.ascontiguousarray(a, dtype=np.dtype(ARRAY_DTYPES[dtype]))
    nonfinite = a.dtype.kind == "f" and not np.all(np.isfinite(a))
    if not compact and not nonfinite:
        return a.tolist()
    raw = a.tobytes()
    encoding = "base64"
    if compress:
        raw, encoding = zlib.compress(raw, 9), "base64-zlib"
    return {"encoding": encoding, "dtype": dtype, "shape": list(a.shape), "data": base64.b64encode(raw).decode("ascii")}


# -- estimators -------------------------------------------------------------------------------------

class Estimator:
    """One node of the estimator graph. Subclasses set ``type_name`` and implement ``from_doc``.

    Methods receive ``X`` already converted by the input layer: a 2-D float64 array, or a 2-D object
    array when the model has categorical string inputs (use :func:`as_float` where numbers are needed).
    A method a subclass does not implement raises :class:`MethodNotSupported`, as scikit-learn would
    raise AttributeError.
    """

    type_name: ClassVar[str] = ""
    n_features_in: int = 0
    classes: np.ndarray | None = None

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> Estimator:
        raise NotImplementedError

    def predict(self, X: np.ndarray) -> np.ndarray:
        raise MethodNotSupported(f"{self.type_name} has no predict")

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        raise MethodNotSupported(f"{self.type_name} has no predict_proba")

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        raise MethodNotSupported(f"{self.type_name} has no decision_function")

    def transform(self, X: np.ndarray) -> np.ndarray:
        raise MethodNotSupported(f"{self.type_name} has no transform")

    def supports(self, method: str) -> bool:
        """Whether ``method`` is implemented (overridden) by this estimator."""
        return getattr(type(self), method, None) is not getattr(Estimator, method, None)


REGISTRY: dict[str, type[Estimator]] = {}
E = TypeVar("E", bound=type[Estimator])


def register(*type_names: str) -> Callable[[E], E]:
    """Class decorator: map document ``type`` names to an implementation."""

    def deco(cls: E) -> E:
        for name in type_names:
            if name in REGISTRY:
                raise RuntimeError(f"model type {name!r} registered twice")
            REGISTRY[name] = cls
        if not cls.type_name:
            cls.type_name = type_names[0]
        return cls

    return deco


def load_estimator(node: Any, ctx: LoadContext) -> Estimator:
    """Build the implementation for one estimator node (recursing through composites)."""
    if not isinstance(node, dict):
        raise InvalidModel("estimator must be an object", ctx.pointer)
    type_name = node.get("type")
    if not isinstance(type_name, str):
        raise InvalidModel("estimator needs a string 'type'", pointer_join(ctx.pointer, "type"))
    impl = REGISTRY.get(type_name)
    if impl is None:
        raise UnsupportedModel(
            f"unsupported model type {type_name!r}; supported: {', '.join(sorted(REGISTRY))}",
            pointer_join(ctx.pointer, "type"),
        )
    est = impl.from_doc(node, ctx)
    if not est.type_name:
        est.type_name = type_name
    return est


def as_float(X: np.ndarray, where: str = "input") -> np.ndarray:
    """Numbers for estimators that need them; a string in an object array is an InvalidInput."""
    if X.dtype == np.float64:
        return X
    if X.dtype.kind in "iufb":
        return X.astype(np.float64)
    try:
        return X.astype(np.float64)
    except (TypeError, ValueError):
        for (r, c), v in np.ndenumerate(X):
            if isinstance(v, str):
                try:
                    float(v)
                except ValueError:
                    raise InvalidInput(f"row {r}, column {c} of {where}: expected a number, got {v!r}",
                                       row=r) from None
        raise InvalidInput(f"{where}: expected numbers") from None
