"""Core types shared by every model implementation: errors, the type registry, array decoding.

Every estimator node in a document is turned into an :class:`Estimator` exactly once, at load time:
arrays are decoded and checked here so that scoring is plain vectorised numpy with no re-validation.
A hostile document must end in :class:`InvalidModel` with a pointer to the offending field, never in
RecursionError, MemoryError, KeyError or TypeError: every size is checked before anything is allocated.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import math
import zlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from ._limits import DEFAULT_LIMITS, Limits, RowCost

# Limits a hostile document hits long before it can exhaust memory or the stack.
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
MAX_NESTING_DEPTH = 64
MAX_ARRAY_ELEMENTS = 50_000_000
MAX_ARRAY_NDIM = 8
MAX_TOTAL_ELEMENTS = 100_000_000
MAX_DECODED_BYTES = 512 * 1024 * 1024  # all arrays of one document, after base64 / zlib decoding
MAX_ESTIMATOR_DEPTH = 16  # pipeline / column transformer nesting
MAX_SAFE_INTEGER = 2**53  # JSON numbers are IEEE doubles for every other language

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
_BLOCK_KEYS = frozenset({"encoding", "dtype", "shape", "data"})


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
    """Where we are in the document while loading, plus the running budgets of decoded arrays.

    The budgets (elements and bytes) are shared by every child context of one document, so that many
    medium arrays cannot add up to more than one huge array is allowed to be.
    """

    def __init__(self, pointer: str = "/estimator", budget: list[int] | None = None, depth: int = 0,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self.pointer = pointer
        self.limits = limits  # what the document may cost (scorer._limits), shared by every child
        # [elements left, bytes left]; a one-element list (older callers) gets the byte budget added.
        self._budget = budget if budget is not None else [MAX_TOTAL_ELEMENTS, MAX_DECODED_BYTES]
        if len(self._budget) == 1:
            self._budget.append(MAX_DECODED_BYTES)
        self.depth = depth

    def child(self, *parts: str | int) -> LoadContext:
        return LoadContext(pointer_join(self.pointer, *parts), self._budget, self.depth, self.limits)

    def nested(self, *parts: str | int) -> LoadContext:
        """A child that is itself an estimator node (counts towards the nesting limit)."""
        if self.depth + 1 > MAX_ESTIMATOR_DEPTH:
            raise InvalidModel(f"estimators nested deeper than {MAX_ESTIMATOR_DEPTH}",
                               pointer_join(self.pointer, *parts))
        return LoadContext(pointer_join(self.pointer, *parts), self._budget, self.depth + 1, self.limits)

    def fail(self, message: str, *parts: str | int) -> InvalidModel:
        return InvalidModel(message, pointer_join(self.pointer, *parts))

    # -- field access ---------------------------------------------------------------------------
    def get(self, node: dict[str, Any], key: str, types: type | tuple[type, ...] | None = None,
            default: Any = ..., choices: Sequence[Any] | None = None) -> Any:
        """``node[key]`` checked against ``types`` (a bool is never accepted as a number)."""
        if not isinstance(node, dict):
            raise InvalidModel(f"expected an object, got {_json_type(node)}", self.pointer)
        if key not in node:
            if default is ...:
                raise self.fail("required field is missing", key)
            return default
        value = node[key]
        if types is not None:
            allowed = types if isinstance(types, tuple) else (types,)
            if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
                raise self.fail(f"expected {_type_name(types)}, got {_json_type(value)}", key)
        if choices is not None and not any(_same_choice(value, c) for c in choices):
            raise self.fail(f"must be one of {list(choices)}, got {_short(value)}", key)
        return value

    def string(self, node: dict[str, Any], key: str, default: Any = ...,
               choices: Sequence[str] | None = None) -> str:
        return self.get(node, key, str, default, choices)

    def boolean(self, node: dict[str, Any], key: str, default: Any = ...) -> bool:
        return self.get(node, key, bool, default)

    def number(self, node: dict[str, Any], key: str, default: Any = ..., finite: bool = True) -> float:
        value = self.get(node, key, (int, float), default)
        if value is None:
            return value  # type: ignore[return-value]
        try:
            out = float(value)
        except OverflowError:
            raise self.fail("number too large", key) from None
        if finite and not math.isfinite(out):
            raise self.fail("must be a finite number", key)
        return out

    def integer(self, node: dict[str, Any], key: str, default: Any = ..., minimum: int | None = None,
                maximum: int | None = MAX_SAFE_INTEGER) -> int:
        value = self.get(node, key, int, default)
        if value is None:
            return value  # type: ignore[return-value]
        if minimum is not None and value < minimum:
            raise self.fail(f"must be >= {minimum}", key)
        if maximum is not None and value > maximum:
            raise self.fail(f"must be <= {maximum}", key)
        return value

    def array(self, node: dict[str, Any], key: str, dtype: str = "float64", ndim: int | None = None,
              shape: Sequence[int | None] | None = None, finite: bool = True,
              default: Any = ...) -> np.ndarray:
        """Decode ``node[key]`` (plain JSON list or base64 block) into a read-only array of ``dtype``."""
        if not isinstance(node, dict):
            raise InvalidModel(f"expected an object, got {_json_type(node)}", self.pointer)
        if key not in node:
            if default is ...:
                raise self.fail("required array is missing", key)
            return default
        return decode_array(node[key], self.child(key), dtype=dtype, ndim=ndim, shape=shape, finite=finite)

    def labels(self, node: dict[str, Any], key: str) -> np.ndarray:
        """Class labels: a JSON list of strings, or of numbers (ints stay ints), not mixed."""
        raw = self.get(node, key, list)
        self.check_classes(len(raw), key)
        return decode_labels(raw, self.child(key))

    def check_classes(self, n: int, *parts: str | int) -> None:
        """Refuse more classes than the limits allow, before anything per class is decoded."""
        if n > self.limits.max_classes:
            raise self.fail(f"{n} classes, over the limit of {self.limits.max_classes} (MODEL_MAX_CLASSES)",
                            *parts)

    def take_budget(self, n: int, nbytes: int = 0) -> None:
        """Charge ``n`` elements (and ``nbytes`` decoded bytes) to the document's budget."""
        self._budget[0] -= n
        self._budget[1] -= nbytes
        if self._budget[0] < 0:
            raise InvalidModel(f"document holds more than {MAX_TOTAL_ELEMENTS} array elements", self.pointer)
        if self._budget[1] < 0:
            raise InvalidModel(f"document's arrays decode to more than {MAX_DECODED_BYTES} bytes",
                               self.pointer)


def declared_shape(value: Any) -> list[int]:
    """The dimensions an array field declares (a block's shape; a list's length), read without decoding
    anything, so that sizes are checked against the limits before the data is inflated. Unknown: []."""
    if isinstance(value, list):
        return [len(value)]
    if isinstance(value, dict):
        shape = value.get("shape")
        if isinstance(shape, list) and all(type(s) is int for s in shape):
            return list(shape)
    return []


def _same_choice(value: Any, choice: Any) -> bool:
    """Equal and of the same JSON kind (1 and 1.0 are the same number; true is not 1)."""
    if isinstance(value, bool) or isinstance(choice, bool):
        return isinstance(value, bool) and isinstance(choice, bool) and value == choice
    if isinstance(value, (int, float)) and isinstance(choice, (int, float)):
        return bool(value == choice)
    return type(value) is type(choice) and bool(value == choice)


def _type_name(types: type | tuple[type, ...]) -> str:
    ts = types if isinstance(types, tuple) else (types,)
    names = {int: "integer", float: "number", str: "string", list: "array", dict: "object", bool: "boolean"}
    return " or ".join(names.get(t, t.__name__) for t in ts)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def decode_labels(raw: list[Any], ctx: LoadContext) -> np.ndarray:
    """Class labels as an array: object (strings), bool, int64 or float64; never mixed kinds."""
    if not isinstance(raw, list):
        raise InvalidModel(f"labels must be a list, got {_json_type(raw)}", ctx.pointer)
    if not raw:
        raise InvalidModel("labels must not be empty", ctx.pointer)
    types = set(map(type, raw))
    if types == {str}:
        return _readonly(np.array(raw, dtype=object))
    if types == {bool}:
        return _readonly(np.array(raw, dtype=bool))
    if types == {int}:
        if max(map(abs, raw)) > MAX_SAFE_INTEGER:
            raise InvalidModel("integer labels must be within ±2**53", ctx.pointer)
        return _readonly(np.array(raw, dtype=np.int64))
    if types <= {int, float}:
        try:
            arr = np.array(raw, dtype=np.float64)
        except OverflowError:
            raise InvalidModel("labels must be finite numbers", ctx.pointer) from None
        if not np.all(np.isfinite(arr)):
            raise InvalidModel("labels must be finite", ctx.pointer)
        return _readonly(arr)
    raise InvalidModel("labels must be all strings, all booleans or all numbers", ctx.pointer)


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def decode_array(value: Any, ctx: LoadContext, dtype: str = "float64", ndim: int | None = None,
                 shape: Sequence[int | None] | None = None, finite: bool = True) -> np.ndarray:
    """Decode one array field into a C-contiguous, read-only array of ``dtype``.

    Plain lists must be rectangular and hold JSON numbers of the right kind (integers for integer
    dtypes, booleans for ``bool``); base64 blocks are little-endian and may be converted to ``dtype``
    only without loss (int16 -> int64, float32 -> float64, float64 -> float32 when exact, ...).
    """
    if dtype not in ARRAY_DTYPES:
        raise ValueError(f"decode_array: unknown dtype {dtype!r}")  # a bug in the caller, not the document
    target = np.dtype(ARRAY_DTYPES[dtype])
    if isinstance(value, dict):
        out = _convert_block(_decode_block(value, ctx), target, dtype, ctx)
    elif isinstance(value, list):
        out = _decode_list(value, ctx, target, dtype)
    else:
        raise ctx.fail(f"expected an array (JSON list or base64 block), got {_json_type(value)}")
    if ndim is not None and out.ndim != ndim:
        if not (out.size == 0 and isinstance(value, list)):
            raise ctx.fail(f"expected a {ndim}-D array, got {out.ndim}-D")
        dims = [0 if shape is None or i >= len(shape) or shape[i] is None else int(shape[i])  # type: ignore[arg-type]
                for i in range(ndim)]
        out = np.zeros(dims if math.prod(dims) == 0 else [0] * ndim, dtype=target)
    if shape is not None and (len(shape) != out.ndim or any(
            s is not None and s != o for s, o in zip(shape, out.shape, strict=False))):
            want_s = "x".join("*" if s is None else str(s) for s in shape)
            raise ctx.fail(f"expected shape {want_s}, got {'x'.join(map(str, out.shape)) or 'a scalar'}")
    if finite and out.dtype.kind == "f" and not np.all(np.isfinite(out)):
        raise ctx.fail("must hold only finite numbers")
    return _readonly(np.ascontiguousarray(out))


_LIST_LEAF_TYPES: dict[str, frozenset[type]] = {
    "f": frozenset({int, float}),
    "i": frozenset({int}),
    "u": frozenset({int}),
    "b": frozenset({bool}),
}


def _decode_list(value: list[Any], ctx: LoadContext, target: np.dtype[Any], dtype: str) -> np.ndarray:
    """A rectangular nested JSON list -> array; checked level by level at C speed (no per-element Python)."""
    shape: list[int] = [len(value)]
    level: list[Any] = value
    leaf_types: set[type] = set()
    while level:
        types = set(map(type, level))
        if list not in types:
            leaf_types = types
            break
        if types != {list}:
            raise ctx.fail("not a rectangular array: a level mixes lists and values")
        lengths = set(map(len, level))
        if len(lengths) != 1:
            raise ctx.fail(f"not a rectangular array: rows of lengths {sorted(lengths)[:5]} "
                           f"at depth {len(shape)}")
        shape.append(lengths.pop())
        if len(shape) > MAX_ARRAY_NDIM:
            raise ctx.fail(f"array has more than {MAX_ARRAY_NDIM} dimensions")
        if math.prod(shape) > MAX_ARRAY_ELEMENTS:
            raise ctx.fail(f"array longer than {MAX_ARRAY_ELEMENTS} elements")
        level = list(itertools.chain.from_iterable(level))
    allowed = _LIST_LEAF_TYPES[target.kind]
    if not leaf_types <= allowed:
        bad = sorted(_TYPE_WORDS.get(t, t.__name__) for t in leaf_types - allowed)
        want = {"f": "numbers", "i": "integers", "u": "integers", "b": "booleans"}[target.kind]
        raise ctx.fail(f"expected {want} ({dtype}), found {', '.join(bad)}")
    n = len(level)
    ctx.take_budget(n, n * target.itemsize)
    try:
        flat = np.array(level, dtype=target)
    except OverflowError:
        raise ctx.fail(f"a value is out of range for {dtype}") from None
    # np.array(.., int16) may wrap out-of-range Python ints silently (older numpy): compare back.
    if target.kind in "iu" and flat.size and (int(flat.min()) != min(level) or int(flat.max()) != max(level)):
        raise ctx.fail(f"a value is out of range for {dtype}")
    return flat.reshape(shape)


_TYPE_WORDS = {str: "a string", bool: "a boolean", float: "a non-integer number", type(None): "null",
               dict: "an object", int: "an integer"}


def _decode_block(block: dict[str, Any], ctx: LoadContext) -> np.ndarray:
    extra = set(block) - _BLOCK_KEYS
    if extra:
        raise ctx.fail(f"unknown keys in array block: {sorted(extra)}")
    missing = sorted(_BLOCK_KEYS - set(block))
    if missing:
        raise ctx.fail(f"array block needs {', '.join(missing)}", missing[0])
    encoding, dtype, shape, data = block["encoding"], block["dtype"], block["shape"], block["data"]
    if not isinstance(encoding, str) or encoding not in ARRAY_ENCODINGS:
        raise ctx.fail(f"encoding must be one of {list(ARRAY_ENCODINGS)}, got {_short(encoding)}", "encoding")
    if not isinstance(dtype, str) or dtype not in ARRAY_DTYPES:
        raise ctx.fail(f"dtype must be one of {list(ARRAY_DTYPES)}, got {_short(dtype)}", "dtype")
    if (not isinstance(shape, list) or len(shape) > MAX_ARRAY_NDIM
            or not all(type(s) is int and s >= 0 for s in shape)):
        raise ctx.fail(f"shape must be a list of at most {MAX_ARRAY_NDIM} non-negative integers", "shape")
    n = math.prod(shape)
    if n > MAX_ARRAY_ELEMENTS:
        raise ctx.fail(f"declared shape {shape} holds {n} elements, over the limit of {MAX_ARRAY_ELEMENTS}",
                       "shape")
    if not isinstance(data, str):
        raise ctx.fail(f"data must be a base64 string, got {_json_type(data)}", "data")
    np_dtype = np.dtype(ARRAY_DTYPES[dtype])
    nbytes = n * np_dtype.itemsize
    if encoding == "base64" and len(data) != 4 * ((nbytes + 2) // 3):
        raise ctx.fail(f"data holds {len(data)} base64 characters, shape {shape} x {dtype} needs "
                       f"{4 * ((nbytes + 2) // 3)}", "data")
    ctx.take_budget(n, nbytes)  # before decoding: a zlib bomb is refused before it inflates
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
        if encoding == "base64-zlib":
            d = zlib.decompressobj()
            raw = d.decompress(raw, nbytes + 1)
            if d.unconsumed_tail or not d.eof or d.unused_data:
                raise ctx.fail("compressed data does not match its shape", "data")
    except (binascii.Error, UnicodeEncodeError, ValueError, zlib.error) as exc:
        if isinstance(exc, InvalidModel):
            raise
        raise ctx.fail(f"data is not valid {encoding}: {exc}", "data") from None
    if len(raw) != nbytes:
        raise ctx.fail(f"data holds {len(raw)} bytes, shape {shape} x {dtype} needs {nbytes}", "data")
    arr = np.frombuffer(raw, dtype=np_dtype)
    if np_dtype.kind == "b" and arr.size and np.frombuffer(raw, dtype=np.uint8).max() > 1:
        raise ctx.fail("bool data must hold only bytes 0 and 1", "data")
    return arr.reshape(shape)


def _convert_block(arr: np.ndarray, target: np.dtype[Any], dtype: str, ctx: LoadContext) -> np.ndarray:
    """Convert a decoded block to the dtype the estimator wants, only when no value changes."""
    if arr.dtype == target:
        return arr
    src, dst = arr.dtype.kind, target.kind
    if dst == "f":
        if src == "f" and target.itemsize < arr.dtype.itemsize:
            out = arr.astype(target)
            with np.errstate(invalid="ignore"):
                same = np.array_equal(out.astype(arr.dtype), arr, equal_nan=True)
            if not same:
                raise ctx.fail(f"{arr.dtype.name} values do not fit {dtype} exactly")
            return out
        return arr.astype(target)
    if dst in "iu":
        if src == "f":
            raise ctx.fail(f"expected {dtype} values, got {arr.dtype.name}")
        if arr.size and src in "iu":
            info = np.iinfo(target)
            if int(arr.min()) < info.min or int(arr.max()) > info.max:
                raise ctx.fail(f"values out of range for {dtype}")
        return arr.astype(target)
    # target bool
    if src in "iu" and (not arr.size or (int(arr.min()) >= 0 and int(arr.max()) <= 1)):
        return arr.astype(bool)
    raise ctx.fail(f"expected {dtype} values, got {arr.dtype.name}")


def encode_array(arr: Any, compact: bool = True, compress: bool = False) -> Any:
    """Inverse of :func:`decode_array`: a base64 block (compact) or a plain list. Both round-trip exactly.

    Plain lists cannot carry NaN or infinities (strict JSON) nor integers beyond ±2**53 (other
    languages read JSON numbers as doubles), so such arrays are always written as blocks.
    """
    a = np.asarray(arr)
    kind = a.dtype.kind
    if kind == "b":
        dtype = "bool"
    elif kind == "f":
        dtype = "float32" if a.dtype.itemsize == 4 else "float64"
        if a.dtype.itemsize > 8:
            raise TypeError(f"cannot encode {a.dtype} exactly")
    elif kind in "iu":
        dtype = next((k for k, v in ARRAY_DTYPES.items() if np.dtype(v).kind in "iu"
                      and np.dtype(v).kind == kind and np.dtype(v).itemsize == a.dtype.itemsize), "int64")
        if kind == "u" and a.dtype.itemsize >= 8 and a.size and int(a.max()) > np.iinfo(np.int64).max:
            raise TypeError("cannot encode uint64 values above 2**63 - 1")
    else:
        raise TypeError(f"cannot encode arrays of dtype {a.dtype}")
    a = np.ascontiguousarray(a, dtype=np.dtype(ARRAY_DTYPES[dtype]))
    plain_ok = True
    if a.dtype.kind == "f":
        plain_ok = bool(np.all(np.isfinite(a)))
    elif a.dtype.kind in "iu" and a.size:
        plain_ok = int(a.max()) <= MAX_SAFE_INTEGER and int(a.min()) >= -MAX_SAFE_INTEGER
    if not compact and plain_ok:
        return a.tolist()
    raw = a.tobytes()
    encoding = "base64"
    if compress:
        raw, encoding = zlib.compress(raw, 9), "base64-zlib"
    return {"encoding": encoding, "dtype": dtype, "shape": list(a.shape),
            "data": base64.b64encode(raw).decode("ascii")}


# -- estimators -------------------------------------------------------------------------------------

class Estimator:
    """One node of the estimator graph. Subclasses set ``type_name`` and implement ``from_doc``.

    Methods receive ``X`` already converted by the input layer: a 2-D float64 array, or a 2-D object
    array when the model has categorical string inputs (use :func:`as_float` where numbers are needed).
    A method a subclass does not implement raises :class:`MethodNotSupported`, as scikit-learn would
    raise AttributeError. After loading, ``type_name`` is the node's own ``type`` (one class may serve
    several type names).
    """

    type_name: str = ""
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

    def row_path(self, method: str) -> RowPath | None:
        """A faster ``method`` for one row given as a list of Python numbers in feature order, built once
        (the model keeps it): the same result as ``method(np.array([row]))``, or None when that row is
        for the general path (NaN, a value out of range, a non-number: the general path names the
        problem). None (the default): no such path, every row takes the general one."""
        return None

    def supports(self, method: str) -> bool:
        """Whether ``method`` is implemented (overridden) by this estimator."""
        return getattr(type(self), method, None) is not getattr(Estimator, method, None)

    def row_cost(self) -> RowCost:
        """The cost of one row (scorer._limits.RowCost), from the document alone.

        This default is deliberately pessimistic, from the widths every estimator declares: the input,
        and four values per output or class (decision values, probabilities, temporaries, the result),
        with one multiply-add per input per output. A family whose scoring holds more (hidden layers,
        support vectors, training rows, trees) must override it with its real figures.
        """
        n_classes = 0 if self.classes is None else int(np.asarray(self.classes).shape[0])
        declared = getattr(self, "n_features_out", None)
        out = max(declared if isinstance(declared, int) else 0, n_classes, 1)
        n = max(int(self.n_features_in), 1)
        own = RowCost(width=2 * n + 4 * out, work=n * out + 4 * out, out=out)
        kids = [c.row_cost() for c in self.children()]
        if not kids:
            return own
        # a composite without its own figures: its children scored one after the other, every child's
        # output kept until they are combined, besides the widest child at work
        return RowCost(width=own.width + max(k.width for k in kids) + sum(k.out for k in kids),
                       work=own.work + sum(k.work for k in kids), out=out)

    def children(self) -> list[Estimator]:
        """The estimators this one holds (members of ensembles, calibrated or wrapped models), found in
        its attributes, lists and tuples: what the default :meth:`row_cost` adds up."""
        found: list[Estimator] = []
        todo: list[Any] = list(vars(self).values())
        while todo:
            v = todo.pop()
            if isinstance(v, Estimator):
                found.append(v)
            elif isinstance(v, (list, tuple)):
                todo.extend(v)
        return found


RowPath = Callable[[list[Any]], Any]  # Estimator.row_path: one row (a list) -> the result, or None

REGISTRY: dict[str, type[Estimator]] = {}
E = TypeVar("E", bound=type[Estimator])

# What a from_doc that indexes a malformed node may raise; turned into InvalidModel at the node.
_LOAD_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError,
                ZeroDivisionError, FloatingPointError, AssertionError)


def register(*type_names: str) -> Callable[[E], E]:
    """Class decorator: map document ``type`` names to an implementation."""

    def deco(cls: E) -> E:
        for name in type_names:
            if name in REGISTRY and REGISTRY[name] is not cls:
                raise RuntimeError(f"model type {name!r} registered twice")
            REGISTRY[name] = cls
        if not cls.type_name:
            cls.type_name = type_names[0]
        return cls

    return deco


def _import_implementation(type_name: str) -> type[Estimator] | None:
    """Families register on import, lazily: import the one for ``type_name`` (all, if none claims it)."""
    from . import models

    if not models.import_family_of(type_name):
        models.import_all()  # so the error below lists every supported type
    return REGISTRY.get(type_name)


def load_estimator(node: Any, ctx: LoadContext) -> Estimator:
    """Build the implementation for one estimator node (recursing through composites).

    Whatever goes wrong inside an implementation's ``from_doc`` ends as :class:`InvalidModel` pointing
    at this node: a hostile document never surfaces as KeyError, TypeError, MemoryError, ...
    """
    if not isinstance(node, dict):
        raise InvalidModel(f"estimator must be an object, got {_json_type(node)}", ctx.pointer)
    type_name = node.get("type")
    if not isinstance(type_name, str):
        raise InvalidModel("estimator needs a string 'type'", pointer_join(ctx.pointer, "type"))
    impl = REGISTRY.get(type_name)
    if impl is None:
        impl = _import_implementation(type_name)
    if impl is None:
        raise UnsupportedModel(
            f"unsupported model type {type_name[:80]!r}; supported: {', '.join(sorted(REGISTRY))}",
            pointer_join(ctx.pointer, "type"),
        )
    try:
        est = impl.from_doc(node, ctx)
    except ModelsyncScorerError:
        raise
    except _LOAD_ERRORS as exc:
        raise InvalidModel(f"malformed {type_name} node ({type(exc).__name__}: {_short(str(exc), 200)})",
                           ctx.pointer) from exc
    except MemoryError:
        raise InvalidModel(f"{type_name} node is too large to load", ctx.pointer) from None
    except RecursionError:
        raise InvalidModel(f"{type_name} node is nested too deeply", ctx.pointer) from None
    if not isinstance(est, Estimator):
        raise TypeError(f"{impl.__name__}.from_doc returned {type(est).__name__}, not an Estimator")
    if type(est) is impl:
        est.type_name = type_name
    problem = ctx.limits.row_problem(est.row_cost())
    if problem is not None:
        raise InvalidModel(f"{type_name}: {problem}", ctx.pointer)
    return est


def as_float(X: np.ndarray, where: str = "input") -> np.ndarray:
    """Numbers for estimators that need them. ``None`` becomes NaN; a non-numeric string is InvalidInput.

    Numeric strings ("1.5") are accepted as scikit-learn's ``check_array`` accepts them.
    """
    if X.dtype == np.float64:
        return X
    if X.dtype.kind in "iufb":
        return X.astype(np.float64)
    try:
        return X.astype(np.float64)  # None -> NaN, "1.5" -> 1.5
    except (TypeError, ValueError, OverflowError):
        pass
    flat = X.reshape(X.shape[0], -1) if X.ndim else X.reshape(1, 1)
    for (r, c), v in np.ndenumerate(flat):  # error path only: find the first culprit
        try:
            float(v if v is not None else "nan")
        except (TypeError, ValueError, OverflowError):
            raise InvalidInput(f"row {r}, column {c} of {where}: expected a number, got {_short(v)}",
                               row=r) from None
    raise InvalidInput(f"{where}: expected numbers")


def finite_matrix(X: np.ndarray, n_features: int, type_name: str) -> np.ndarray:
    """Numbers, the right width, no NaN or infinity (scikit-learn raises ValueError on those)."""
    if X.ndim != 2 or X.shape[1] != n_features:
        raise InvalidInput(f"{type_name}: expected a matrix with {n_features} columns, got shape {X.shape}")
    Xf = as_float(X, type_name)
    if not np.isfinite(Xf).all():
        r, c = (int(i) for i in np.argwhere(~np.isfinite(Xf))[0])
        raise InvalidInput(f"row {r}, column {c}: {type_name} cannot handle NaN or infinite values", row=r)
    return Xf
