"""Transformers: scalers, normalizer, binarizer, imputer, encoders, polynomial features and PCA.

Each reproduces the dense branch of scikit-learn's ``transform`` with the same operation order.
Encoders hold their categories as a lookup table built once at load; scoring maps whole columns
at a time (a loop over input columns, never over rows).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._base import Estimator, InvalidInput, LoadContext, decode_array, register
from .._limits import RowCost
from .linear import check_width, column_label, finite_matrix, load_feature_names

EPS = float(np.finfo(np.float64).eps)
MAX_OUTPUT_COLUMNS = 1_000_000


class Transformer(Estimator):
    """Base for the transformers here: ``n_features_out`` lets composites check widths at load."""

    n_features_out: int | None = None
    feature_names: list[str] | None = None

    def _finite(self, X: np.ndarray, allow_nan: bool = False) -> np.ndarray:
        return finite_matrix(X, self.n_features_in, self.type_name, self.feature_names, allow_nan=allow_nan)

    def _start(self, node: dict[str, Any], ctx: LoadContext) -> int:
        n = ctx.integer(node, "n_features_in", minimum=1)
        self.n_features_in = n
        self.type_name = node["type"]
        self.feature_names = load_feature_names(node, ctx, n)
        return n


def _vector(node: dict[str, Any], ctx: LoadContext, key: str, n: int, required: bool = True,
            nonzero: bool = False) -> np.ndarray | None:
    arr = ctx.array(node, key, "float64", ndim=1, shape=(n,), default=... if required else None)
    if arr is not None and nonzero and np.any(arr == 0):
        raise ctx.fail("must not contain zeros (it is a divisor)", key)
    return arr


def _required(node: dict[str, Any], ctx: LoadContext, key: str, n: int, nonzero: bool = False) -> np.ndarray:
    arr = _vector(node, ctx, key, n, required=True, nonzero=nonzero)
    assert arr is not None
    return arr


# -- scalers ----------------------------------------------------------------------------------------

@register("standard_scaler")
class StandardScaler(Transformer):
    """``(X - mean) / scale``; either step is skipped when its array is absent (with_mean/with_std)."""

    mean: np.ndarray | None
    scale: np.ndarray | None

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> StandardScaler:
        self = cls()
        n = self._start(node, ctx)
        self.mean = _vector(node, ctx, "mean", n, required=False)
        self.scale = _vector(node, ctx, "scale", n, required=False, nonzero=True)
        self.n_features_out = n
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        out = np.array(self._finite(X, allow_nan=True), dtype=np.float64, copy=True)
        if self.mean is not None:
            out -= self.mean
        if self.scale is not None:
            out /= self.scale
        return out


@register("min_max_scaler")
class MinMaxScaler(Transformer):
    """``X * scale + min``, then clipped to ``feature_range`` when ``clip``."""

    scale: np.ndarray
    min: np.ndarray
    clip: bool
    feature_range: tuple[float, float]

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> MinMaxScaler:
        self = cls()
        n = self._start(node, ctx)
        self.scale = _required(node, ctx, "scale", n)
        self.min = _required(node, ctx, "min", n)
        self.clip = ctx.get(node, "clip", bool, default=False)
        fr = ctx.get(node, "feature_range", list, default=[0, 1])
        if (len(fr) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in fr)
                or not all(math.isfinite(v) for v in fr) or not fr[0] < fr[1]):
            raise ctx.fail("must be [min, max] with min < max", "feature_range")
        self.feature_range = (float(fr[0]), float(fr[1]))
        self.n_features_out = n
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        out = np.array(self._finite(X, allow_nan=True), dtype=np.float64, copy=True)
        out *= self.scale
        out += self.min
        if self.clip:
            np.clip(out, self.feature_range[0], self.feature_range[1], out=out)
        return out


@register("max_abs_scaler")
class MaxAbsScaler(Transformer):
    """``X / scale``, then clipped to [-1, 1] when ``clip``."""

    scale: np.ndarray
    clip: bool

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> MaxAbsScaler:
        self = cls()
        n = self._start(node, ctx)
        self.scale = _required(node, ctx, "scale", n, nonzero=True)
        self.clip = ctx.get(node, "clip", bool, default=False)
        self.n_features_out = n
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        out = np.array(self._finite(X, allow_nan=True), dtype=np.float64, copy=True)
        out /= self.scale
        if self.clip:
            np.clip(out, -1.0, 1.0, out=out)
        return out


@register("robust_scaler")
class RobustScaler(Transformer):
    """``(X - center) / scale``; either step skipped when absent (with_centering/with_scaling)."""

    center: np.ndarray | None
    scale: np.ndarray | None

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> RobustScaler:
        self = cls()
        n = self._start(node, ctx)
        self.center = _vector(node, ctx, "center", n, required=False)
        self.scale = _vector(node, ctx, "scale", n, required=False, nonzero=True)
        self.n_features_out = n
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        out = np.array(self._finite(X, allow_nan=True), dtype=np.float64, copy=True)
        if self.center is not None:
            out -= self.center
        if self.scale is not None:
            out /= self.scale
        return out


@register("normalizer")
class Normalizer(Transformer):
    """Each row divided by its l1 / l2 / max norm; norms below 10 * eps count as 1 (as scikit-learn)."""

    norm: str

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> Normalizer:
        self = cls()
        n = self._start(node, ctx)
        self.norm = ctx.get(node, "norm", str, choices=("l1", "l2", "max"))
        self.n_features_out = n
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        out = np.array(self._finite(X), dtype=np.float64, copy=True)
        if self.norm == "l1":
            norms = np.sum(np.abs(out), axis=1)
        elif self.norm == "l2":
            norms = np.sqrt(np.einsum("ij,ij->i", out, out))
        else:
            norms = np.max(np.abs(out), axis=1) if out.shape[1] else np.zeros(out.shape[0])
        norms[norms < 10 * EPS] = 1.0
        out /= norms[:, None]
        return out


@register("binarizer")
class Binarizer(Transformer):
    """1.0 where ``X > threshold``, else 0.0."""

    threshold: float

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> Binarizer:
        self = cls()
        n = self._start(node, ctx)
        self.threshold = ctx.number(node, "threshold")
        self.n_features_out = n
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (self._finite(X) > self.threshold).astype(np.float64)


# -- PCA ----------------------------------------------------------------------------------------------

@register("pca")
class PCA(Transformer):
    """``X @ components.T - mean @ components.T``, divided by sqrt(explained_variance) when whitening."""

    mean: np.ndarray
    components: np.ndarray
    whiten: bool
    scale: np.ndarray | None
    _components_t: np.ndarray
    _offset: np.ndarray

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> PCA:
        self = cls()
        n = self._start(node, ctx)
        self.mean = _required(node, ctx, "mean", n)
        self.components = ctx.array(node, "components", "float64", ndim=2)
        k = self.components.shape[0]
        if self.components.shape[1] != n:
            raise ctx.fail(f"components has {self.components.shape[1]} columns but n_features_in is {n}",
                           "components")
        self.whiten = ctx.get(node, "whiten", bool, default=False)
        self.scale = None
        if self.whiten:
            ev = ctx.array(node, "explained_variance", "float64", ndim=1, shape=(k,))
            if np.any(ev < 0):
                raise ctx.fail("variances must be >= 0", "explained_variance")
            scale = np.sqrt(ev)
            scale[scale < EPS] = EPS
            self.scale = scale
        self._components_t = self.components.T
        self._offset = self.mean.reshape((1, -1)) @ self._components_t
        self.n_features_out = k
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        out: np.ndarray = self._finite(X) @ self._components_t
        out -= self._offset
        if self.scale is not None:
            out /= self.scale
        return out


# -- polynomial features --------------------------------------------------------------------------

def n_polynomial_outputs(n: int, min_degree: int, max_degree: int, interaction_only: bool,
                         include_bias: bool) -> int:
    if interaction_only:
        total = sum(math.comb(n, i) for i in range(max(1, min_degree), min(max_degree, n) + 1))
    else:
        total = math.comb(n + max_degree, max_degree) - 1
        if min_degree > 0:
            d = min_degree - 1
            total -= math.comb(n + d, d) - 1
    return total + (1 if include_bias else 0)


@register("polynomial_features")
class PolynomialFeatures(Transformer):
    """scikit-learn's dense expansion, column for column and product for product."""

    min_degree: int
    max_degree: int
    interaction_only: bool
    include_bias: bool
    _n_full: int

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> PolynomialFeatures:
        self = cls()
        n = self._start(node, ctx)
        self.min_degree = ctx.integer(node, "min_degree", default=0, minimum=0)
        self.max_degree = ctx.integer(node, "max_degree", minimum=0)
        if self.min_degree > self.max_degree:
            raise ctx.fail("must be <= max_degree", "min_degree")
        self.interaction_only = ctx.get(node, "interaction_only", bool, default=False)
        self.include_bias = ctx.get(node, "include_bias", bool, default=True)
        if self.max_degree > 64:
            raise ctx.fail("degree too large", "max_degree")
        n_full = n_polynomial_outputs(n, 0, self.max_degree, self.interaction_only, self.include_bias)
        n_out = n_polynomial_outputs(n, self.min_degree, self.max_degree, self.interaction_only,
                                     self.include_bias)
        if n_full > MAX_OUTPUT_COLUMNS:
            raise ctx.fail(f"expansion has {n_full} columns, over the limit of {MAX_OUTPUT_COLUMNS}",
                           "max_degree")
        if n_out == 0:
            raise ctx.fail("the expansion has no output columns", "max_degree")
        declared = ctx.integer(node, "n_output_features", default=n_out)
        if declared != n_out:
            raise ctx.fail(f"the parameters give {n_out} output features, not {declared}",
                           "n_output_features")
        self._n_full = n_full
        self.n_features_out = n_out
        return self

    def row_cost(self) -> RowCost:
        """The full expansion is built, then the lower degrees cut off (a copy) when min_degree > 1."""
        n, out = self.n_features_in, int(self.n_features_out or 0)
        return RowCost(width=2 * n + self._n_full + out, work=self._n_full + out, out=out)

    def transform(self, X: np.ndarray) -> np.ndarray:
        Xf = self._finite(X)
        n_samples, n_features = Xf.shape
        Xf = np.asfortranarray(Xf)
        XP = np.empty((n_samples, self._n_full), dtype=np.float64)
        if self.include_bias:
            XP[:, 0] = 1
            current = 1
        else:
            current = 0
        if self.max_degree == 0:
            return XP
        XP[:, current:current + n_features] = Xf
        index = list(range(current, current + n_features))
        current += n_features
        index.append(current)
        for _ in range(2, self.max_degree + 1):
            new_index = []
            end = index[-1]
            for f in range(n_features):
                start = index[f]
                new_index.append(current)
                if self.interaction_only:
                    start += index[f + 1] - index[f]
                nxt = current + end - start
                if nxt <= current:
                    break
                np.multiply(XP[:, start:end], Xf[:, f:f + 1], out=XP[:, current:nxt], casting="no")
                current = nxt
            new_index.append(current)
            index = new_index
        if self.min_degree > 1:
            assert self.n_features_out is not None
            n_out = self.n_features_out
            if self.include_bias:
                out = np.empty((n_samples, n_out), dtype=np.float64)
                out[:, 0] = 1
                out[:, 1:] = XP[:, self._n_full - n_out + 1:]
                return out
            return np.array(XP[:, self._n_full - n_out:], copy=True)
        return XP


# -- missing values ------------------------------------------------------------------------------

def _object_missing(X: np.ndarray) -> np.ndarray:
    """None or NaN cells of an object matrix (the input layer writes None for a missing category)."""
    none: np.ndarray = X == None  # noqa: E711  elementwise on an object array
    return none.astype(bool) | _object_nan(X)


def _object_nan(X: np.ndarray) -> np.ndarray:
    """NaN cells of an object array (NaN is the only value not equal to itself)."""
    ne: np.ndarray = X != X
    return ne.astype(bool)


def _first_cell(mask: np.ndarray) -> tuple[int, int]:
    r, c = np.argwhere(mask)[0]
    return int(r), int(c)


@register("simple_imputer")
class SimpleImputer(Transformer):
    """Replace missing cells by the per-column statistic; null statistics drop the column.

    ``missing_values``: ``"nan"`` or ``"none"`` (both mean the input layer's missing value: NaN in a
    numeric column, None in a categorical one) or ``"value"`` with ``missing_value`` (a number or string).
    ``dtype``: ``"float64"`` (numeric data) or ``"object"`` (fitted on strings: output keeps objects).
    """

    dtype: str
    missing: str
    missing_value: Any
    keep: np.ndarray
    values: np.ndarray
    indicator: np.ndarray | None

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> SimpleImputer:
        self = cls()
        n = self._start(node, ctx)
        self.dtype = ctx.get(node, "dtype", str, default="float64", choices=("float64", "object"))
        self.missing = ctx.get(node, "missing_values", str, choices=("nan", "none", "value"))
        self.missing_value = None
        if self.missing == "value":
            mv = ctx.get(node, "missing_value", (int, float, str))
            if isinstance(mv, float) and not math.isfinite(mv):
                raise ctx.fail("must be finite (use missing_values 'nan')", "missing_value")
            if self.dtype == "float64" and isinstance(mv, str):
                raise ctx.fail("a string missing value needs dtype 'object'", "missing_value")
            self.missing_value = mv
        stats = ctx.get(node, "statistics", list)
        if len(stats) != n:
            raise ctx.fail(f"expected {n} statistics (one per input column), got {len(stats)}", "statistics")
        kinds: tuple[type, ...] = (int, float) if self.dtype == "float64" else (int, float, str)
        for i, s in enumerate(stats):
            if s is None:
                continue
            if isinstance(s, bool) or not isinstance(s, kinds):
                raise ctx.fail(f"expected {'a number' if self.dtype == 'float64' else 'a number or string'}"
                               " or null", "statistics", i)
            if isinstance(s, float) and not math.isfinite(s):
                raise ctx.fail("must be finite", "statistics", i)
        self.keep = np.array([i for i, s in enumerate(stats) if s is not None], dtype=np.intp)
        kept = [stats[i] for i in self.keep]
        if self.dtype == "float64":
            self.values = np.array(kept, dtype=np.float64)
        else:
            self.values = np.empty(len(kept), dtype=object)
            self.values[:] = kept
        ind = ctx.array(node, "indicator_features", "int64", ndim=1, default=None)
        if ind is not None and ind.size and (ind.min() < 0 or ind.max() >= n or np.any(np.diff(ind) <= 0)):
            raise ctx.fail(f"must be increasing column indices in [0, {n})", "indicator_features")
        self.indicator = ind
        self.n_features_out = len(self.keep) + (0 if ind is None else len(ind))
        return self

    def _mask(self, X: np.ndarray) -> np.ndarray:
        if X.dtype == object:
            if self.missing == "value":
                nan = _object_nan(X)
                if nan.any():
                    raise self._nan_error(*_first_cell(nan))
                same: np.ndarray = X == self.missing_value  # noqa: SIM300  elementwise
                return same.astype(bool)
            return _object_missing(X)
        if self.missing == "value":
            if np.isnan(X).any():
                raise self._nan_error(*_first_cell(np.isnan(X)))
            hit: np.ndarray = X == self.missing_value  # noqa: SIM300  elementwise
            return hit
        return np.isnan(X)

    def _nan_error(self, r: int, c: int) -> InvalidInput:
        name = self.feature_names[c] if self.feature_names else str(c)
        return InvalidInput(f"row {r}, feature {column_label(self.feature_names, c)}: missing value (NaN) "
                            f"but this imputer treats {self.missing_value!r} as missing", row=r, feature=name)

    def transform(self, X: np.ndarray) -> np.ndarray:
        check_width(X, self.n_features_in, self.type_name)
        if self.dtype == "float64":
            Xc = self._finite(X, allow_nan=True)
        else:
            Xc = X if X.dtype == object else X.astype(object)
        mask = self._mask(Xc)
        kept_mask = mask[:, self.keep]
        out = np.where(kept_mask, self.values[None, :], Xc[:, self.keep])
        if self.dtype == "object":
            out = out.astype(object, copy=False)
        if self.indicator is not None:
            out = np.hstack((out, mask[:, self.indicator]))
        return out


# -- categorical encoders -------------------------------------------------------------------------

class CategoryTable:
    """One input column's fitted categories (strings, numbers, null = the missing value) -> index."""

    def __init__(self, values: list[Any], ctx: LoadContext) -> None:
        self.values = values
        self.null_index = -1
        self.table: dict[Any, int] = {}
        num_values: list[float] = []
        num_index: list[int] = []
        if not values:
            raise ctx.fail("a feature needs at least one category")
        for j, v in enumerate(values):
            if v is None:
                if self.null_index >= 0:
                    raise ctx.fail("more than one null (missing) category", j)
                self.null_index = j
                continue
            if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                raise ctx.fail("a category must be a string, a number or null", j)
            key: Any = v
            if not isinstance(v, str):
                key = float(v)
                if not math.isfinite(key):
                    raise ctx.fail("a numeric category must be finite (null is the missing category)", j)
                num_values.append(key)
                num_index.append(j)
            if key in self.table:
                raise ctx.fail(f"duplicate category {v!r}", j)
            self.table[key] = j
        if self.null_index >= 0:
            self.table[None] = self.null_index
        order = np.argsort(np.array(num_values, dtype=np.float64), kind="stable")
        self.sorted_numbers = np.array(num_values, dtype=np.float64)[order]
        self.sorted_index = np.array(num_index, dtype=np.int64)[order]
        self._lookup = np.frompyfunc(self.table.get, 2, 1)

    def __len__(self) -> int:
        return len(self.values)

    def codes(self, col: np.ndarray) -> np.ndarray:
        """Index of each cell's category, -1 for values not seen at fit."""
        if col.dtype == object:
            out = np.asarray(self._lookup(col, -1), dtype=np.int64) if col.size else np.empty(0, np.int64)
            out[_object_nan(col)] = self.null_index
            return out
        col = col.astype(np.float64, copy=False)
        out = np.full(col.shape[0], -1, dtype=np.int64)
        if self.sorted_numbers.size:
            pos = np.minimum(np.searchsorted(self.sorted_numbers, col), self.sorted_numbers.size - 1)
            hit = self.sorted_numbers[pos] == col
            out[hit] = self.sorted_index[pos[hit]]
        out[np.isnan(col)] = self.null_index
        return out


def _load_tables(node: dict[str, Any], ctx: LoadContext, n: int) -> list[CategoryTable]:
    cats = ctx.get(node, "categories", list)
    if len(cats) != n:
        raise ctx.fail(f"expected {n} category lists (one per input column), got {len(cats)}", "categories")
    tables = []
    for i, values in enumerate(cats):
        if not isinstance(values, list):
            raise ctx.fail("expected a list of categories", "categories", i)
        ctx.take_budget(len(values))
        tables.append(CategoryTable(values, ctx.child("categories", i)))
    return tables


class _Encoder(Transformer):
    tables: list[CategoryTable]
    handle_unknown: str

    def _column(self, X: np.ndarray, i: int) -> np.ndarray:
        col = X[:, i]
        inf: np.ndarray = np.isinf(col) if col.dtype != object else ((col == np.inf) | (col == -np.inf))
        if inf.any():
            r = int(np.flatnonzero(inf)[0])
            raise InvalidInput(f"row {r}, feature {column_label(self.feature_names, i)}: infinite value",
                               row=r, feature=self._name(i))
        return col

    def _name(self, i: int) -> str:
        return self.feature_names[i] if self.feature_names else str(i)

    def _unknown_error(self, X: np.ndarray, i: int, unknown: np.ndarray) -> InvalidInput:
        r = int(np.flatnonzero(unknown)[0])
        v = X[r, i]
        shown = "a missing value" if v is None or (isinstance(v, float) and math.isnan(v)) else repr(
            v.item() if isinstance(v, np.generic) else v)
        return InvalidInput(
            f"row {r}, feature {column_label(self.feature_names, i)}: unknown category {shown} "
            f"({int(unknown.sum())} row(s) with unknown categories in this feature)", row=r,
            feature=self._name(i))

    def _codes(self, X: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        check_width(X, self.n_features_in, self.type_name)
        out = []
        for i, table in enumerate(self.tables):
            codes = table.codes(self._column(X, i))
            unknown = codes < 0
            if self.handle_unknown == "error" and unknown.any():
                raise self._unknown_error(X, i, unknown)
            out.append((codes, unknown))
        return out


@register("one_hot_encoder")
class OneHotEncoder(_Encoder):
    """Dense one-hot output. ``columns[i][j]``: output column (within feature i's block) of category j,
    -1 = all zeros (dropped); ``unknown_columns[i]``: the same for values not seen at fit."""

    columns: list[np.ndarray]
    unknown_columns: list[int]
    offsets: np.ndarray

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> OneHotEncoder:
        self = cls()
        n = self._start(node, ctx)
        self.tables = _load_tables(node, ctx, n)
        self.handle_unknown = ctx.get(node, "handle_unknown", str,
                                      choices=("error", "ignore", "infrequent_if_exist", "warn"))
        widths = ctx.get(node, "n_columns", list)
        if len(widths) != n or not all(type(w) is int and w >= 0 for w in widths):
            raise ctx.fail(f"expected {n} non-negative integers", "n_columns")
        if sum(widths) > MAX_OUTPUT_COLUMNS:
            raise ctx.fail(f"more than {MAX_OUTPUT_COLUMNS} output columns", "n_columns")
        raw_cols = ctx.get(node, "columns", list)
        if len(raw_cols) != n:
            raise ctx.fail(f"expected {n} lists (one per input column)", "columns")
        self.columns = []
        for i, (table, w) in enumerate(zip(self.tables, widths, strict=True)):
            cols = decode_array(raw_cols[i], ctx.child("columns", i), "int64", ndim=1, shape=(len(table),))
            if cols.size and (cols.min() < -1 or cols.max() >= w):
                raise ctx.fail(f"column indices must be in [-1, {w})", "columns", i)
            self.columns.append(cols)
        unknown = ctx.get(node, "unknown_columns", list, default=[-1] * n)
        if len(unknown) != n:
            raise ctx.fail(f"expected {n} integers", "unknown_columns")
        for i, (u, w) in enumerate(zip(unknown, widths, strict=True)):
            if isinstance(u, bool) or not isinstance(u, int) or not -1 <= u < w:
                raise ctx.fail(f"must be an integer in [-1, {w})", "unknown_columns", i)
        self.unknown_columns = [int(u) for u in unknown]
        self.offsets = np.concatenate(([0], np.cumsum(widths, dtype=np.int64)))
        self.n_features_out = int(self.offsets[-1])
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        codes = self._codes(X)
        assert self.n_features_out is not None
        out = np.zeros((X.shape[0], self.n_features_out), dtype=np.float64)
        for i, (c, unknown) in enumerate(codes):
            cols: np.ndarray = np.where(unknown, self.unknown_columns[i], self.columns[i][np.maximum(c, 0)])
            rows = np.flatnonzero(cols >= 0)
            out[rows, self.offsets[i] + cols[rows]] = 1.0
        return out


@register("ordinal_encoder")
class OrdinalEncoder(_Encoder):
    """``codes[i][j]``: the output value of category j of feature i (NaN allowed, e.g. for missing);
    values not seen at fit raise (``handle_unknown`` "error") or become ``unknown_value`` (null = NaN)."""

    codes: list[np.ndarray]
    unknown_value: float

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> OrdinalEncoder:
        self = cls()
        n = self._start(node, ctx)
        self.tables = _load_tables(node, ctx, n)
        self.handle_unknown = ctx.get(node, "handle_unknown", str, choices=("error", "use_encoded_value"))
        raw = ctx.get(node, "codes", list)
        if len(raw) != n:
            raise ctx.fail(f"expected {n} arrays (one per input column)", "codes")
        self.codes = [decode_array(raw[i], ctx.child("codes", i), "float64", ndim=1, shape=(len(t),),
                                   finite=False)
                      for i, t in enumerate(self.tables)]
        for i, c in enumerate(self.codes):
            if np.isinf(c).any():
                raise ctx.fail("codes must be finite numbers or NaN", "codes", i)
        self.unknown_value = math.nan
        if self.handle_unknown == "use_encoded_value":
            uv = ctx.get(node, "unknown_value", (int, float, type(None)))
            self.unknown_value = math.nan if uv is None else float(uv)
            if math.isinf(self.unknown_value):
                raise ctx.fail("must be finite or null (NaN)", "unknown_value")
        self.n_features_out = n
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        codes = self._codes(X)
        out = np.empty((X.shape[0], self.n_features_in), dtype=np.float64)
        for i, (c, unknown) in enumerate(codes):
            values = self.codes[i][np.maximum(c, 0)] if len(self.codes[i]) else np.zeros(len(c))
            values[unknown] = self.unknown_value
            out[:, i] = values
        return out


def output_width(est: Estimator) -> int | None:
    """Output columns of a transformer when known (other families may not declare it)."""
    w = getattr(est, "n_features_out", None)
    return w if isinstance(w, int) else None

