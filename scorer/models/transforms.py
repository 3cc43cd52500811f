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

# Cephes ndtri (scipy.special.ndtri = scipy.stats.norm.ppf): rational approximations, highest power first.
_S2PI = 2.50662827463100050242e0
_EXP_M2 = 0.13533528323661269189
_P0 = (-5.99633501014107895267e1, 9.80010754185999661536e1, -5.66762857469070293439e1,
       1.39312609387279679503e1, -1.23916583867381258016e0)
_Q0 = (1.95448858338141759834e0, 4.67627912898881538453e0, 8.63602421390890590575e1,
       -2.25462687854119370527e2, 2.00260212380060660359e2, -8.20372256168333339912e1,
       1.59056225126211695515e1, -1.18331621121330003142e0)
_P1 = (4.05544892305962419923e0, 3.15251094599893866154e1, 5.71628192246421288162e1,
       4.40805073893200834700e1, 1.46849561928858024014e1, 2.18663306850790267539e0,
       -1.40256079171354495875e-1, -3.50424626827848203418e-2, -8.57456785154685413611e-4)
_Q1 = (1.57799883256466749731e1, 4.53907635128879210584e1, 4.13172038254672030440e1,
       1.50425385692907503408e1, 2.50464946208309415979e0, -1.42182922854787788574e-1,
       -3.80806407691578277194e-2, -9.33259480895457427372e-4)
_P2 = (3.23774891776946035970e0, 6.91522889068984211695e0, 3.93881025292474443415e0,
       1.33303460815807542389e0, 2.01485389549179081538e-1, 1.23716634817820021358e-2,
       3.01581553508235416007e-4, 2.65806974686737550832e-6, 6.23974539184983293730e-9)
_Q2 = (6.02427039364742014255e0, 3.67983563856160859403e0, 1.37702099489081330271e0,
       2.16236993594496635890e-1, 1.34204006088543189037e-2, 3.28014464682127739104e-4,
       2.89247864745380683936e-6, 6.79019408009981274425e-9)


def _polevl(x: np.ndarray, coef: tuple[float, ...], leading_one: bool = False) -> np.ndarray:
    """Cephes polevl (``leading_one``: p1evl, whose omitted first coefficient is 1)."""
    ans = x + coef[0] if leading_one else np.full_like(x, coef[0])
    for c in coef[1:]:
        ans = ans * x + c
    return ans


def ndtri(y0: np.ndarray) -> np.ndarray:
    """The standard normal quantile function exactly as scipy computes it (Cephes ndtri): -inf at 0,
    inf at 1, NaN outside [0, 1] and for NaN."""
    out = np.full(y0.shape, np.nan)
    with np.errstate(all="ignore"):
        upper = y0 > 1.0 - _EXP_M2
        y = np.where(upper, 1.0 - y0, y0)
        mid = y > _EXP_M2
        ym = y - 0.5
        y2 = ym * ym
        central = (ym + ym * (y2 * _polevl(y2, _P0) / _polevl(y2, _Q0, True))) * _S2PI
        x = np.sqrt(-2.0 * np.log(y))
        x0 = x - np.log(x) / x
        z = 1.0 / x
        x1 = np.where(x < 8.0, z * _polevl(z, _P1) / _polevl(z, _Q1, True),
                      z * _polevl(z, _P2) / _polevl(z, _Q2, True))
        tail = x0 - x1
        tail = np.where(upper, tail, -tail)
    inside = (y0 > 0.0) & (y0 < 1.0)
    out[inside] = np.where(mid, central, tail)[inside]
    out[y0 == 0.0] = -np.inf
    out[y0 == 1.0] = np.inf
    return out


def _cell_error(est: Transformer, r: int, c: int, message: str) -> InvalidInput:
    """An input error naming row ``r`` and column ``c``."""
    return InvalidInput(f"row {r}, feature {column_label(est.feature_names, c)}: {message}", row=r,
                        feature=est.feature_names[c] if est.feature_names else str(c))


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
                raise _cell_error(self, r, c, "Box-Cox needs strictly positive values")
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
    """Each column mapped through its fitted ``quantiles`` onto ``references``: the mean of ``np.interp``
    forwards and backwards; values at the first / last quantile give 0 / 1 ("normal": within 1e-7 of them,
    then scipy's normal quantile function, clipped as scikit-learn clips it)."""

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
        self.output = ctx.string(node, "output_distribution", choices=("uniform", "normal"))
        self.n_features_out = n
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        out = np.array(self._finite(X, allow_nan=True), dtype=np.float64, copy=True)
        ref = self.references
        for i in range(out.shape[1]):
            col = out[:, i]
            q = self.quantiles[:, i]
            if self.output == "normal":
                lower, upper = col - BOUNDS_THRESHOLD < q[0], col + BOUNDS_THRESHOLD > q[-1]
            else:
                lower, upper = col == q[0], col == q[-1]
            finite = ~np.isnan(col)
            xf = col[finite]
            col[finite] = 0.5 * (np.interp(xf, q, ref) - np.interp(-xf, -q[::-1], -ref[::-1]))
            col[upper] = 1.0
            col[lower] = 0.0
            if self.output == "normal":
                out[:, i] = np.clip(ndtri(col), *_NORMAL_CLIP)
        return out



_EPS = float(np.spacing(1))
_NORMAL_CLIP = (float(ndtri(np.array([BOUNDS_THRESHOLD - _EPS]))[0]),
                float(ndtri(np.array([1 - (BOUNDS_THRESHOLD - _EPS)]))[0]))


# -- B-splines ----------------------------------------------------------------------------------

def bspline_basis(t: np.ndarray, k: int, x: np.ndarray, extrapolate: bool, nu: int = 0) -> np.ndarray:
    """scipy's BSpline with an identity coefficient matrix: the ``len(t) - k - 1`` basis functions (or
    their ``nu``-th derivative) at each ``x``; NaN rows where ``x`` is NaN or outside ``[t[k], t[n]]``
    without ``extrapolate`` (scipy's find_interval and _deBoor_D, same arithmetic)."""
    n = t.size - k - 1
    out = np.full((x.size, n), np.nan)
    ok = ~np.isnan(x)
    if not extrapolate:
        ok &= (x >= t[k]) & (x <= t[n])
    xs = x[ok]
    ell = np.clip(np.searchsorted(t, xs, side="right") - 1, k, n - 1)
    h = np.zeros((xs.size, k + 1))
    h[:, 0] = 1.0
    for j in range(1, k + 1):
        hh = h[:, :j].copy()
        h[:, 0] = 0.0
        deriv = j > k - nu
        for m in range(1, j + 1):
            xb, xa = t[ell + m], t[ell + m - j]
            same = xb == xa
            with np.errstate(all="ignore"):
                if deriv:
                    w = np.where(same, 0.0, j * hh[:, m - 1] / (xb - xa))
                    h[:, m - 1] -= w
                else:
                    w = np.where(same, 0.0, hh[:, m - 1] / (xb - xa))
                    h[:, m - 1] += w * (xb - xs)
                    w = w * (xs - xa)
            h[:, m] = w
    if nu > k:  # a derivative of higher order than the degree is zero
        h[:] = 0.0
    rows = np.flatnonzero(ok)
    vals = np.zeros((xs.size, n))
    for a in range(k + 1):
        vals[np.arange(xs.size), ell + a - k] += h[:, a]
    out[rows] = vals
    return out


@register("spline_transformer")
class SplineTransformer(Transformer):
    """scikit-learn's dense SplineTransformer: per column the B-spline basis of ``knots[j]`` (degree
    ``degree``), extrapolated as ``extrapolation`` says; ``include_bias`` false drops each column's last
    basis; ``handle_missing`` "zeros" writes zeros for NaN ("error": NaN is an input error)."""

    knots: list[np.ndarray]
    degree: int
    extrapolation: str
    include_bias: bool
    handle_missing: str
    n_splines: int
    _bounds: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]

    @classmethod
    def from_doc(cls, node: dict[str, Any], ctx: LoadContext) -> SplineTransformer:
        self = cls()
        n = self._start(node, ctx)
        self.degree = ctx.integer(node, "degree", minimum=0, maximum=32)
        self.knots = _edges(node, ctx, "knots", n, 2 * self.degree + 2)
        sizes = {e.size for e in self.knots}
        if len(sizes) != 1:
            raise ctx.fail("every column needs the same number of knots", "knots")
        self.extrapolation = ctx.string(node, "extrapolation",
                                        choices=("error", "constant", "linear", "continue", "periodic"))
        self.include_bias = ctx.boolean(node, "include_bias", True)
        self.handle_missing = ctx.string(node, "handle_missing", default="error", choices=("error", "zeros"))
        n_basis = sizes.pop() - self.degree - 1
        self.n_splines = n_basis - (self.degree if self.extrapolation == "periodic" else 0)
        if self.n_splines < 1 or (self.extrapolation == "periodic" and self.n_splines < self.degree):
            raise ctx.fail("too few knots for the degree", "knots")
        if n * self.n_splines > MAX_OUTPUT_COLUMNS:
            raise ctx.fail(f"more than {MAX_OUTPUT_COLUMNS} output columns", "knots")
        k = self.degree
        self._bounds = []
        for t in self.knots:
            ends = np.array([t[k], t[-k - 1]])
            values, slopes = bspline_basis(t, k, ends, False), bspline_basis(t, k, ends, False, 1)
            self._bounds.append((values[0], values[1], slopes[0], slopes[1]))
        self.n_features_out = n * (self.n_splines - (0 if self.include_bias else 1))
        return self

    def _column(self, j: int, x: np.ndarray) -> np.ndarray:
        t, k, ns = self.knots[j], self.degree, self.n_splines
        mode = self.extrapolation
        if mode in ("continue", "error", "periodic"):
            if mode == "periodic":
                nn = t.size - k - 1
                period = t[nn] - t[k]
                x = t[k] + np.remainder(x - t[k], period) if period > 0 else np.zeros_like(x)
            basis = bspline_basis(t, k, x, mode != "error")
            if mode == "periodic":
                basis[:, :k] += basis[:, ns:]
                basis = basis[:, :ns]
            basis[np.isnan(x)] = 0.0
            if mode == "error" and np.isnan(basis).any():
                r = int(np.argwhere(np.isnan(basis))[0][0])
                raise _cell_error(self, r, j, "beyond the limits of the knots (extrapolation 'error')")
            return basis
        out = np.zeros((x.size, ns))
        xmin, xmax = t[k], t[-k - 1]
        f_min, f_max, fp_min, fp_max = self._bounds[j]
        inside = (xmin <= x) & (x <= xmax)
        out[inside] = bspline_basis(t, k, x[inside], False)
        below, above = x < xmin, x > xmax
        if mode == "constant":
            if k:
                out[np.ix_(below, np.arange(k))] = f_min[:k]
                out[np.ix_(above, np.arange(ns - k, ns))] = f_max[-k:]
            return out
        for i in range(k + 1 if k <= 1 else k):
            out[below, i] = f_min[i] + (x[below] - xmin) * fp_min[i]
            m = ns - 1 - i
            out[above, m] = f_max[m] + (x[above] - xmax) * fp_max[m]
        return out

    def transform(self, X: np.ndarray) -> np.ndarray:
        Xf = self._finite(X, allow_nan=self.handle_missing == "zeros")
        with np.errstate(all="ignore"):
            out = np.hstack([self._column(j, Xf[:, j]) for j in range(Xf.shape[1])])
        if not self.include_bias:
            keep = [c for c in range(out.shape[1]) if (c + 1) % self.n_splines != 0]
            out = out[:, keep]
        return out
