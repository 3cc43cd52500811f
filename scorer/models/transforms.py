"""More transformers: whitelisted numpy functions, column selection, power and quantile transforms and
binning (see docs/format/transforms.md).

Each reproduces scikit-learn's ``transform`` with the same operation order; the quantile transform calls
``np.interp`` forwards and backwards and averages, exactly as scikit-learn does for repeated quantiles.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _numpy_funcs
from .._base import InvalidInput, LoadContext, decode_array, register
from .linear import column_label
from .preprocessing import MAX_OUTPUT_COLUMNS, Transformer, _required, _vector

BOUNDS_THRESHOLD = 1e-7  # scikit-learn's QuantileTransformer: inputs this close to the ends map to 0 / 1


def _optional_number(node: dict[str, Any], ctx: LoadContext, key: str) -> float | None:
    value = ctx.get(node, key, (int, float, type(None)), default=None)
    if value is None:
        return None
    return ctx.number(node, key)


@register("function_transformer")
class FunctionTransformer(Transformer):
    """``func`` (a name of the whitelist in scorer/_numpy_funcs.py, null = identity) applied cell by cell;
    ``clip`` takes ``min`` / ``max`` constants. ``allow_nan``: false when scikit-learn validated the input."""

    func: str | None
    lo: float | None
    hi: float | None
    allow_nan: bool

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> FunctionTransformer:
        self = cls()
        n = self._start(node, ctx)
        self.func = ctx.get(node, "func", (str, type(None)), default=None,
                            choices=[*_numpy_funcs.FUNCS, None])
        self.lo = self.hi = None
        if self.func == "clip":
            self.lo = _optional_number(node, ctx, "min")
            self.hi = _optional_number(node, ctx, "max")
            if self.lo is not None and self.hi is not None and self.lo > self.hi:
                raise ctx.fail("must be <= max", "min")
        self.allow_nan = ctx.boolean(node, "allow_nan", True)
        self.n_features_out = n
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        Xf = self._finite(X, allow_nan=self.allow_nan)
        if self.func is None:
            return np.array(Xf, dtype=np.float64, copy=True)
        return _numpy_funcs.apply(self.func, Xf, self.lo, self.hi)


@register("select_columns")
class SelectColumns(Transformer):
    """The input columns ``columns`` (increasing indices), in order: VarianceThreshold, SelectKBest,
    SelectFromModel and every other scikit-learn feature selector."""

    columns: np.ndarray
    allow_nan: bool

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> SelectColumns:
        self = cls()
        n = self._start(node, ctx)
        cols = ctx.array(node, "columns", "int64", ndim=1)
        if cols.size and (cols.min() < 0 or cols.max() >= n or np.any(np.diff(cols) <= 0)):
            raise ctx.fail(f"must be increasing column indices in [0, {n})", "columns")
        self.columns = cols
        self.allow_nan = ctx.boolean(node, "allow_nan", False)
        self.n_features_out = int(cols.size)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.array(self._finite(X, allow_nan=self.allow_nan)[:, self.columns], dtype=np.float64)


@register("power_transformer")
class PowerTransformer(Transformer):
    """Yeo-Johnson or Box-Cox per column with the fitted ``lambdas`` (scipy's expm1/log1p forms), then
    ``(X - mean) / scale`` when standardized. NaN passes through."""

    method: str
    lambdas: np.ndarray
    mean: np.ndarray | None
    scale: np.ndarray | None

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> PowerTransformer:
        self = cls()
        n = self._start(node, ctx)
        self.method = ctx.string(node, "method", choices=("yeo-johnson", "box-cox"))
        self.lambdas = _required(node, ctx, "lambdas", n)
        self.mean = _vector(node, ctx, "mean", n, required=False)
        self.scale = _vector(node, ctx, "scale", n, required=False, nonzero=True)
        self.n_features_out = n
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        Xf = self._finite(X, allow_nan=True)
        if self.method == "box-cox":
            bad = Xf <= 0
            if bad.any():
                r, c = (int(i) for i in np.argwhere(bad)[0])
                raise InvalidInput(f"row {r}, feature {column_label(self.feature_names, c)}: Box-Cox needs "
                                   "strictly positive values", row=r,
                                   feature=self.feature_names[c] if self.feature_names else str(c))
        out = np.empty_like(Xf)
        with np.errstate(all="ignore"):
            for i, lmbda in enumerate(self.lambdas.tolist()):
                col = Xf[:, i]
                out[:, i] = _box_cox(col, lmbda) if self.method == "box-cox" else _yeo_johnson(col, lmbda)
        if self.mean is not None:
            out -= self.mean
        if self.scale is not None:
            out /= self.scale
        return out


def _box_cox(x: np.ndarray, lmbda: float) -> np.ndarray:
    """scipy.special.boxcox."""
    if abs(lmbda) < 1e-19:
        return np.log(x)
    out: np.ndarray = np.expm1(lmbda * np.log(x)) / lmbda
    return out


def _yeo_johnson(x: np.ndarray, lmbda: float) -> np.ndarray:
    """scipy.stats.yeojohnson with a given lambda (NaN: the negative branch, NaN out)."""
    out = np.zeros_like(x)
    pos = x >= 0
    if abs(lmbda) < np.finfo(np.float64).eps:
        out[pos] = np.log1p(x[pos])
    else:
        out[pos] = np.expm1(lmbda * np.log1p(x[pos])) / lmbda
    if abs(lmbda - 2) > np.finfo(np.float64).eps:
        out[~pos] = -np.expm1((2 - lmbda) * np.log1p(-x[~pos])) / (2 - lmbda)
    else:
        out[~pos] = -np.log1p(-x[~pos])
    return out


def _edges(node: dict[str, Any], ctx: LoadContext, key: str, n: int, min_len: int) -> list[np.ndarray]:
    raw = ctx.get(node, key, list)
    if len(raw) != n:
        raise ctx.fail(f"expected {n} arrays (one per input column), got {len(raw)}", key)
    out = []
    for i in range(n):
        e = decode_array(raw[i], ctx.child(key, i), "float64", ndim=1)
        if e.size < min_len or np.any(np.diff(e) < 0):
            raise ctx.fail(f"must be at least {min_len} non-decreasing numbers", key, i)
        out.append(e)
    return out


@register("kbins_discretizer")
class KBinsDiscretizer(Transformer):
    """Bin index of each value: the number of inner ``bin_edges`` (all but the first and the last) that
    are <= the value; ``encode`` "ordinal" writes it, "onehot" one column per bin (features in order)."""

    edges: list[np.ndarray]
    encode: str
    offsets: np.ndarray

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> KBinsDiscretizer:
        self = cls()
        n = self._start(node, ctx)
        self.edges = [e[1:-1] for e in _edges(node, ctx, "bin_edges", n, 2)]
        self.encode = ctx.string(node, "encode", choices=("ordinal", "onehot"))
        widths = [e.size + 1 for e in self.edges]
        self.offsets = np.concatenate(([0], np.cumsum(widths, dtype=np.int64)))
        if self.offsets[-1] > MAX_OUTPUT_COLUMNS:
            raise ctx.fail(f"more than {MAX_OUTPUT_COLUMNS} output columns", "bin_edges")
        self.n_features_out = n if self.encode == "ordinal" else int(self.offsets[-1])
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        Xf = self._finite(X)
        codes = np.empty(Xf.shape, dtype=np.int64)
        for i, e in enumerate(self.edges):
            codes[:, i] = np.searchsorted(e, Xf[:, i], side="right")
        if self.encode == "ordinal":
            return codes.astype(np.float64)
        assert self.n_features_out is not None
        out = np.zeros((Xf.shape[0], self.n_features_out), dtype=np.float64)
        rows = np.arange(Xf.shape[0])
        for i in range(Xf.shape[1]):
            out[rows, self.offsets[i] + codes[:, i]] = 1.0
        return out


@register("quantile_transformer")
class QuantileTransformer(Transformer):
    """Each column mapped through its fitted ``quantiles`` onto ``references`` (uniform output): the mean
    of ``np.interp`` forwards and backwards; values equal to the first / last quantile give 0 / 1."""

    quantiles: np.ndarray
    references: np.ndarray
    output: str

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> QuantileTransformer:
        self = cls()
        n = self._start(node, ctx)
        self.references = ctx.array(node, "references", "float64", ndim=1)
        k = self.references.size
        if k < 2 or np.any(np.diff(self.references) < 0):
            raise ctx.fail("must be at least 2 non-decreasing numbers", "references")
        self.quantiles = ctx.array(node, "quantiles", "float64", ndim=2, shape=(k, n))
        if np.any(np.diff(self.quantiles, axis=0) < 0):
            raise ctx.fail("each column must be non-decreasing", "quantiles")
        self.output = ctx.string(node, "output_distribution", choices=("uniform",))
        self.n_features_out = n
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        out = np.array(self._finite(X, allow_nan=True), dtype=np.float64, copy=True)
        ref = self.references
        for i in range(out.shape[1]):
            col = out[:, i]
            q = self.quantiles[:, i]
            lower = col == q[0]
            upper = col == q[-1]
            finite = ~np.isnan(col)
            xf = col[finite]
            col[finite] = 0.5 * (np.interp(xf, q, ref) - np.interp(-xf, -q[::-1], -ref[::-1]))
            col[upper] = 1.0
            col[lower] = 0.0
        return out

