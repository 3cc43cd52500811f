// More transformers (docs/format/transforms.md): whitelisted numpy functions, column selection, power and
// quantile transforms, binning. Every one has `transform` only.
import { InvalidInput } from "../errors.js";
import { decodeArray, register } from "../context.js";
import { numeric } from "./common.js";
import { Transformer } from "./preprocessing.js";
import { FUNCS } from "../numpy_funcs.js";

const EPS = 2.220446049250313e-16;
const MAX_OUTPUT_COLUMNS = 1_000_000;


function optionalNumber(node, ctx, key) {
  return !ctx.has(node, key) || node[key] === null ? null : ctx.number(node, key);
}

class FunctionTransformer extends Transformer {
  constructor(node, ctx) {
    super(node, ctx);
    this.func = !ctx.has(node, "func") || node.func === null ? null
      : ctx.string(node, "func", undefined, [...Object.keys(FUNCS), "clip"]);
    this.lo = -Infinity;
    this.hi = Infinity;
    if (this.func === "clip") {
      const lo = optionalNumber(node, ctx, "min");
      const hi = optionalNumber(node, ctx, "max");
      if (lo !== null && hi !== null && lo > hi) throw ctx.fail("must be <= max", "min");
      if (lo !== null) this.lo = lo;
      if (hi !== null) this.hi = hi;
    }
    this.allowNan = ctx.boolean(node, "allow_nan", true);
  }
  transform(X) {
    const { func, lo, hi } = this;
    const f = func === null ? (v) => v
      : func === "clip" ? (v) => (Number.isNaN(v) ? v : Math.min(Math.max(v, lo), hi)) : FUNCS[func];
    return numeric(X, this, { nan: this.allowNan }).map((x) => Array.from(x, f));
  }
}

class SelectColumns extends Transformer {
  constructor(node, ctx) {
    super(node, ctx);
    const n = this.nFeaturesIn;
    this.columns = Array.from(ctx.array(node, "columns", { dtype: "int", ndim: 1 }).data, Number);
    if (this.columns.some((c, i) => c < 0 || c >= n || (i > 0 && c <= this.columns[i - 1]))) {
      throw ctx.fail(`must be increasing column indices in [0, ${n})`, "columns");
    }
    this.allowNan = ctx.boolean(node, "allow_nan", false);
    this.nFeaturesOut = this.columns.length;
  }
  transform(X) {
    return numeric(X, this, { nan: this.allowNan }).map((x) => this.columns.map((c) => x[c]));
  }
}

/** scipy.special.boxcox */
function boxCox(x, l) {
  return Math.abs(l) < 1e-19 ? Math.log(x) : Math.expm1(l * Math.log(x)) / l;
}

/** scipy.stats.yeojohnson with a given lambda (NaN takes the negative branch: NaN out). */
function yeoJohnson(x, l) {
  if (x >= 0) return Math.abs(l) < EPS ? Math.log1p(x) : Math.expm1(l * Math.log1p(x)) / l;
  return Math.abs(l - 2) > EPS ? -Math.expm1((2 - l) * Math.log1p(-x)) / (2 - l) : -Math.log1p(-x);
}

class PowerTransformer extends Transformer {
  constructor(node, ctx) {
    super(node, ctx);
    this.method = ctx.string(node, "method", undefined, ["yeo-johnson", "box-cox"]);
    this.lambdas = this.vector(node, ctx, "lambdas");
    this.mean = this.vector(node, ctx, "mean", { optional: true });
    this.scale = this.vector(node, ctx, "scale", { optional: true, nonzero: true });
  }
  transform(X) {
    const box = this.method === "box-cox";
    const rows = numeric(X, this, { nan: true });
    if (box) {
      rows.forEach((x, r) => x.forEach((v, j) => {
        if (v <= 0) throw new InvalidInput(`row ${r}, ${this.columnName(j)}: Box-Cox needs strictly positive values`, r, this.columnName(j));
      }));
    }
    return rows.map((x) => Array.from(x, (v, j) => {
      let y = box ? boxCox(v, this.lambdas[j]) : yeoJohnson(v, this.lambdas[j]);
      if (this.mean) y -= this.mean[j];
      if (this.scale) y /= this.scale[j];
      return y;
    }));
  }
}

/** Inner edges of each feature (all but the first and the last of its bin edges). */
class KBinsDiscretizer extends Transformer {
  constructor(node, ctx) {
    super(node, ctx);
    const n = this.nFeaturesIn;
    const raw = ctx.get(node, "bin_edges", ["array"]);
    if (raw.length !== n) throw ctx.fail(`expected ${n} arrays (one per input column), got ${raw.length}`, "bin_edges");
    this.edges = raw.map((r, i) => {
      const e = decodeArray(r, ctx.child("bin_edges", i), { ndim: 1 }).data;
      if (e.length < 2 || e.some((v, k) => k > 0 && v < e[k - 1])) throw ctx.fail("must be at least 2 non-decreasing numbers", "bin_edges", i);
      return e.slice(1, e.length - 1);
    });
    this.encode = ctx.string(node, "encode", undefined, ["ordinal", "onehot"]);
    this.offsets = [0];
    for (const e of this.edges) this.offsets.push(this.offsets[this.offsets.length - 1] + e.length + 1);
    if (this.offsets[n] > MAX_OUTPUT_COLUMNS) throw ctx.fail(`more than ${MAX_OUTPUT_COLUMNS} output columns`, "bin_edges");
    this.nFeaturesOut = this.encode === "ordinal" ? n : this.offsets[n];
  }
  transform(X) {
    return numeric(X, this).map((x) => {
      const codes = Array.from(x, (v, j) => upperBound(this.edges[j], v));
      if (this.encode === "ordinal") return codes;
      const out = new Array(this.nFeaturesOut).fill(0);
      codes.forEach((c, j) => { out[this.offsets[j] + c] = 1; });
      return out;
    });
  }
}

/** Number of elements of the sorted `a` that are <= v (numpy's searchsorted side="right"). */
function upperBound(a, v) {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] <= v) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/** numpy's interp for a finite x and increasing xp (same branches, same arithmetic). */
function interp(x, xp, fp) {
  const n = xp.length;
  if (x < xp[0]) return fp[0];
  if (x > xp[n - 1]) return fp[n - 1];
  const j = upperBound(xp, x) - 1;
  if (j === n - 1 || xp[j] === x) return fp[j];
  const slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
  let y = slope * (x - xp[j]) + fp[j];
  if (Number.isNaN(y)) {
    y = slope * (x - xp[j + 1]) + fp[j + 1];
    if (Number.isNaN(y) && fp[j] === fp[j + 1]) y = fp[j];
  }
  return y;
}

// Cephes ndtri (scipy.special.ndtri = scipy.stats.norm.ppf), coefficients highest power first.
const S2PI = 2.50662827463100050242e0;
const EXP_M2 = 0.13533528323661269189;
const P0 = [-5.99633501014107895267e1, 9.80010754185999661536e1, -5.66762857469070293439e1, 1.39312609387279679503e1, -1.23916583867381258016e0];
const Q0 = [1.95448858338141759834e0, 4.67627912898881538453e0, 8.63602421390890590575e1, -2.25462687854119370527e2, 2.00260212380060660359e2, -8.20372256168333339912e1, 1.59056225126211695515e1, -1.18331621121330003142e0];
const P1 = [4.05544892305962419923e0, 3.15251094599893866154e1, 5.71628192246421288162e1, 4.40805073893200834700e1, 1.46849561928858024014e1, 2.18663306850790267539e0, -1.40256079171354495875e-1, -3.50424626827848203418e-2, -8.57456785154685413611e-4];
const Q1 = [1.57799883256466749731e1, 4.53907635128879210584e1, 4.13172038254672030440e1, 1.50425385692907503408e1, 2.50464946208309415979e0, -1.42182922854787788574e-1, -3.80806407691578277194e-2, -9.33259480895457427372e-4];
const P2 = [3.23774891776946035970e0, 6.91522889068984211695e0, 3.93881025292474443415e0, 1.33303460815807542389e0, 2.01485389549179081538e-1, 1.23716634817820021358e-2, 3.01581553508235416007e-4, 2.65806974686737550832e-6, 6.23974539184983293730e-9];
const Q2 = [6.02427039364742014255e0, 3.67983563856160859403e0, 1.37702099489081330271e0, 2.16236993594496635890e-1, 1.34204006088543189037e-2, 3.28014464682127739104e-4, 2.89247864745380683936e-6, 6.79019408009981274425e-9];

/** Cephes polevl; `leadingOne`: p1evl (its omitted first coefficient is 1). */
function polevl(x, coef, leadingOne = false) {
  let ans = leadingOne ? x + coef[0] : coef[0];
  for (let i = 1; i < coef.length; i++) ans = ans * x + coef[i];
  return ans;
}

/** The standard normal quantile function as scipy computes it: -inf at 0, inf at 1, NaN outside. */
export function ndtri(y0) {
  if (Number.isNaN(y0) || y0 < 0 || y0 > 1) return NaN;
  if (y0 === 0) return -Infinity;
  if (y0 === 1) return Infinity;
  const upper = y0 > 1 - EXP_M2;
  let y = upper ? 1 - y0 : y0;
  if (y > EXP_M2) {
    y -= 0.5;
    const y2 = y * y;
    return (y + y * ((y2 * polevl(y2, P0)) / polevl(y2, Q0, true))) * S2PI;
  }
  const x = Math.sqrt(-2 * Math.log(y));
  const x0 = x - Math.log(x) / x;
  const z = 1 / x;
  const x1 = x < 8 ? (z * polevl(z, P1)) / polevl(z, Q1, true) : (z * polevl(z, P2)) / polevl(z, Q2, true);
  return upper ? x0 - x1 : -(x0 - x1);
}

const BOUNDS_THRESHOLD = 1e-7;
const NORMAL_CLIP = [ndtri(BOUNDS_THRESHOLD - EPS), ndtri(1 - (BOUNDS_THRESHOLD - EPS))];

class QuantileTransformer extends Transformer {
  constructor(node, ctx) {
    super(node, ctx);
    const n = this.nFeaturesIn;
    this.references = ctx.array(node, "references", { ndim: 1 }).data;
    const k = this.references.length;
    if (k < 2 || this.references.some((v, i) => i > 0 && v < this.references[i - 1])) throw ctx.fail("must be at least 2 non-decreasing numbers", "references");
    const q = ctx.array(node, "quantiles", { ndim: 2, shape: [k, n] }).rows();
    this.quantiles = Array.from({ length: n }, (_, j) => Float64Array.from(q, (row) => row[j]));
    if (this.quantiles.some((c) => c.some((v, i) => i > 0 && v < c[i - 1]))) throw ctx.fail("each column must be non-decreasing", "quantiles");
    this.output = ctx.string(node, "output_distribution", undefined, ["uniform", "normal"]);
    const rev = (a) => Float64Array.from(a, (_, i) => -a[a.length - 1 - i]);
    this.negQuantiles = this.quantiles.map(rev);
    this.negReferences = rev(this.references);
  }
  transform(X) {
    return numeric(X, this, { nan: true }).map((x) => Array.from(x, (v, j) => {
      const q = this.quantiles[j];
      if (Number.isNaN(v)) return v;
      const normal = this.output === "normal";
      let y;
      if (normal ? v - BOUNDS_THRESHOLD < q[0] : v === q[0]) y = 0;
      else if (normal ? v + BOUNDS_THRESHOLD > q[q.length - 1] : v === q[q.length - 1]) y = 1;
      else y = 0.5 * (interp(v, q, this.references) - interp(-v, this.negQuantiles[j], this.negReferences));
      return normal ? Math.min(Math.max(ndtri(y), NORMAL_CLIP[0]), NORMAL_CLIP[1]) : y;
    }));
  }
}

/**
 * scipy's BSpline with an identity coefficient matrix at one x: the len(t) - k - 1 basis functions (or
 * their nu-th derivative); NaN everywhere when x is NaN or outside [t[k], t[n]] without extrapolation.
 */
export function bsplineBasis(t, k, x, extrapolate, nu = 0) {
  const n = t.length - k - 1;
  const out = new Array(n).fill(0);
  if (Number.isNaN(x) || (!extrapolate && (x < t[k] || x > t[n]))) return out.fill(NaN);
  const ell = Math.min(Math.max(upperBound(t, x) - 1, k), n - 1);
  const h = new Array(k + 1).fill(0);
  h[0] = 1;
  for (let j = 1; j <= k; j++) {
    const hh = h.slice(0, j);
    h[0] = 0;
    const deriv = j > k - nu;
    for (let m = 1; m <= j; m++) {
      const xb = t[ell + m];
      const xa = t[ell + m - j];
      let w = 0;
      if (xb !== xa) {
        if (deriv) { w = (j * hh[m - 1]) / (xb - xa); h[m - 1] -= w; }
        else { w = hh[m - 1] / (xb - xa); h[m - 1] += w * (xb - x); w *= x - xa; }
      }
      h[m] = w;
    }
  }
  if (nu > k) h.fill(0);
  for (let a = 0; a <= k; a++) out[ell + a - k] += h[a];
  return out;
}

/** numpy's remainder (floored; the sign of the divisor). */
function remainder(a, b) {
  let m = a % b;
  if (m !== 0) { if ((b < 0) !== (m < 0)) m += b; } else m = b < 0 ? -0 : 0;
  return m;
}

class SplineTransformer extends Transformer {
  constructor(node, ctx) {
    super(node, ctx);
    const n = this.nFeaturesIn;
    this.degree = ctx.integer(node, "degree", undefined, 0, 32);
    const k = this.degree;
    const raw = ctx.get(node, "knots", ["array"]);
    if (raw.length !== n) throw ctx.fail(`expected ${n} arrays (one per input column), got ${raw.length}`, "knots");
    this.knots = raw.map((r, i) => {
      const e = decodeArray(r, ctx.child("knots", i), { ndim: 1 }).data;
      if (e.length < 2 * k + 2 || e.some((v, q) => q > 0 && v < e[q - 1])) throw ctx.fail(`must be at least ${2 * k + 2} non-decreasing numbers`, "knots", i);
      return e;
    });
    if (new Set(this.knots.map((e) => e.length)).size !== 1) throw ctx.fail("every column needs the same number of knots", "knots");
    this.extrapolation = ctx.string(node, "extrapolation", undefined, ["error", "constant", "linear", "continue", "periodic"]);
    this.includeBias = ctx.boolean(node, "include_bias", true);
    this.handleMissing = ctx.string(node, "handle_missing", "error", ["error", "zeros"]);
    const nBasis = this.knots[0].length - k - 1;
    this.nSplines = nBasis - (this.extrapolation === "periodic" ? k : 0);
    if (this.nSplines < 1 || (this.extrapolation === "periodic" && this.nSplines < k)) throw ctx.fail("too few knots for the degree", "knots");
    if (n * this.nSplines > MAX_OUTPUT_COLUMNS) throw ctx.fail(`more than ${MAX_OUTPUT_COLUMNS} output columns`, "knots");
    this.bounds = this.knots.map((t) => {
      const lo = t[k];
      const hi = t[t.length - k - 1];
      return [bsplineBasis(t, k, lo, false), bsplineBasis(t, k, hi, false), bsplineBasis(t, k, lo, false, 1), bsplineBasis(t, k, hi, false, 1)];
    });
    this.nFeaturesOut = n * (this.nSplines - (this.includeBias ? 0 : 1));
  }
  column(j, x, r) {
    const t = this.knots[j];
    const k = this.degree;
    const ns = this.nSplines;
    const mode = this.extrapolation;
    if (mode === "continue" || mode === "error" || mode === "periodic") {
      if (Number.isNaN(x)) return new Array(ns).fill(0);
      let v = x;
      if (mode === "periodic") {
        const nn = t.length - k - 1;
        const period = t[nn] - t[k];
        v = period > 0 ? t[k] + remainder(x - t[k], period) : 0;
      }
      let b = bsplineBasis(t, k, v, mode !== "error");
      if (mode === "periodic") {
        for (let i = 0; i < k; i++) b[i] += b[ns + i];
        b = b.slice(0, ns);
      }
      if (mode === "error" && b.some(Number.isNaN)) {
        throw new InvalidInput(`row ${r}, ${this.columnName(j)}: beyond the limits of the knots (extrapolation 'error')`, r, this.columnName(j));
      }
      return b;
    }
    const xmin = t[k];
    const xmax = t[t.length - k - 1];
    const [fMin, fMax, fpMin, fpMax] = this.bounds[j];
    if (xmin <= x && x <= xmax) return bsplineBasis(t, k, x, false);
    const out = new Array(ns).fill(0);
    if (mode === "constant") {
      if (x < xmin) for (let i = 0; i < k; i++) out[i] = fMin[i];
      else if (x > xmax) for (let i = ns - k; i < ns; i++) out[i] = fMax[i];
      return out;
    }
    const d = k <= 1 ? k + 1 : k;
    for (let i = 0; i < d; i++) {
      if (x < xmin) out[i] = fMin[i] + (x - xmin) * fpMin[i];
      const m = ns - 1 - i;
      if (x > xmax) out[m] = fMax[m] + (x - xmax) * fpMax[m];
    }
    return out;
  }
  transform(X) {
    return numeric(X, this, { nan: this.handleMissing === "zeros" }).map((x, r) => {
      const row = [];
      x.forEach((v, j) => {
        const b = this.column(j, v, r);
        row.push(...(this.includeBias ? b : b.slice(0, this.nSplines - 1)));
      });
      return row;
    });
  }
}

register(["function_transformer"], (n, c) => new FunctionTransformer(n, c));
register(["select_columns"], (n, c) => new SelectColumns(n, c));
register(["power_transformer"], (n, c) => new PowerTransformer(n, c));
register(["kbins_discretizer"], (n, c) => new KBinsDiscretizer(n, c));
register(["quantile_transformer"], (n, c) => new QuantileTransformer(n, c));
register(["spline_transformer"], (n, c) => new SplineTransformer(n, c));
