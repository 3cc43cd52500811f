// Transformers (docs/format/preprocessing.md): scalers, normalizer, binarizer, PCA, polynomial features,
// imputer, one-hot and ordinal encoders. Every one has `transform` only.
import { InvalidInput, short } from "../errors.js";
import { decodeArray, register } from "../context.js";
import { Estimator, base, numeric } from "./common.js";

const EPS = 2.220446049250313e-16;
const MAX_OUTPUT_COLUMNS = 1_000_000;

export class Transformer extends Estimator {
  constructor(node, ctx) {
    super(["transform"]);
    base(this, node, ctx);
    this.nFeaturesOut = this.nFeaturesIn;
    if (ctx.has(node, "feature_names")) { // checked first, as the reference does for transformers
      const names = node.feature_names;
      if (!Array.isArray(names) || names.length !== this.nFeaturesIn || !names.every((n) => typeof n === "string")) {
        throw ctx.fail(`must be a list of ${this.nFeaturesIn} strings`, "feature_names");
      }
    }
  }
  vector(node, ctx, key, { optional = false, nonzero = false } = {}) {
    if (optional && !ctx.has(node, key)) return null;
    const a = ctx.array(node, key, { ndim: 1, shape: [this.nFeaturesIn] });
    if (nonzero) {
      const z = a.data.findIndex((v) => v === 0);
      if (z >= 0) throw ctx.fail("must not hold zeros", key, z);
    }
    return a.data;
  }
}

function clip(v, lo, hi) {
  return Number.isNaN(v) ? v : Math.min(Math.max(v, lo), hi);
}

class StandardScaler extends Transformer {
  constructor(node, ctx, [centerKey, scaleKey]) {
    super(node, ctx);
    this.center = this.vector(node, ctx, centerKey, { optional: true });
    this.scale = this.vector(node, ctx, scaleKey, { optional: true, nonzero: true });
  }
  transform(X) {
    return numeric(X, this, { nan: true }).map((x) => Array.from(x, (v, j) => {
      let y = v;
      if (this.center) y -= this.center[j];
      if (this.scale) y /= this.scale[j];
      return y;
    }));
  }
}

class MinMaxScaler extends Transformer {
  constructor(node, ctx) {
    super(node, ctx);
    this.scale = this.vector(node, ctx, "scale");
    this.min = this.vector(node, ctx, "min");
    this.clip = ctx.boolean(node, "clip", false);
    const fr = ctx.get(node, "feature_range", ["array"], [0, 1]);
    if (fr.length !== 2 || !fr.every((v) => typeof v === "number") || !(fr[0] < fr[1])) throw ctx.fail("must be [low, high] with low < high", "feature_range");
    this.range = fr;
  }
  transform(X) {
    return numeric(X, this, { nan: true }).map((x) => Array.from(x, (v, j) => {
      const y = v * this.scale[j] + this.min[j];
      return this.clip ? clip(y, this.range[0], this.range[1]) : y;
    }));
  }
}

class MaxAbsScaler extends Transformer {
  constructor(node, ctx) {
    super(node, ctx);
    this.scale = this.vector(node, ctx, "scale", { nonzero: true });
    this.clip = ctx.boolean(node, "clip", false);
  }
  transform(X) {
    return numeric(X, this, { nan: true }).map((x) => Array.from(x, (v, j) => {
      const y = v / this.scale[j];
      return this.clip ? clip(y, -1, 1) : y;
    }));
  }
}

class Normalizer extends Transformer {
  constructor(node, ctx) {
    super(node, ctx);
    this.norm = ctx.string(node, "norm", undefined, ["l1", "l2", "max"]);
  }
  transform(X) {
    return numeric(X, this).map((x) => {
      let n = 0;
      if (this.norm === "l1") for (const v of x) n += Math.abs(v);
      else if (this.norm === "l2") { for (const v of x) n += v * v; n = Math.sqrt(n); }
      else for (const v of x) n = Math.max(n, Math.abs(v));
      if (n < 10 * EPS) n = 1;
      return Array.from(x, (v) => v / n);
    });
  }
}

class Binarizer extends Transformer {
  constructor(node, ctx) {
    super(node, ctx);
    this.threshold = ctx.number(node, "threshold");
  }
  transform(X) {
    return numeric(X, this).map((x) => Array.from(x, (v) => (v > this.threshold ? 1 : 0)));
  }
}

class PCA extends Transformer {
  constructor(node, ctx) {
    super(node, ctx);
    const p = this.nFeaturesIn;
    this.mean = this.vector(node, ctx, "mean");
    const comps = ctx.array(node, "components", { ndim: 2, shape: [null, p] });
    this.components = comps.rows();
    const k = comps.shape[0];
    this.nFeaturesOut = k;
    this.whiten = ctx.boolean(node, "whiten", false);
    if (this.whiten) {
      const ev = ctx.array(node, "explained_variance", { ndim: 1, shape: [k] }).data;
      if (ev.some((v) => v < 0)) throw ctx.fail("must be >= 0", "explained_variance");
      this.s = Array.from(ev, (v) => (Math.sqrt(v) < EPS ? EPS : Math.sqrt(v)));
    }
    this.offset = this.components.map((c) => { let s = 0; for (let j = 0; j < p; j++) s += this.mean[j] * c[j]; return s; });
  }
  transform(X) {
    return numeric(X, this).map((x) => this.components.map((c, i) => {
      let s = 0;
      for (let j = 0; j < x.length; j++) s += x[j] * c[j];
      const y = s - this.offset[i];
      return this.whiten ? y / this.s[i] : y;
    }));
  }
}

function* combinations(p, d, replacement, start = 0) {
  if (d === 0) { yield []; return; }
  for (let i = start; i < p; i++) {
    for (const rest of combinations(p, d - 1, replacement, replacement ? i : i + 1)) yield [i, ...rest];
  }
}

/** Output columns of a polynomial expansion (capped just above the limit: never enumerated). */
function polynomialCount(p, minD, maxD, inter, bias) {
  const choose = (n, k) => {
    let c = 1;
    for (let i = 1; i <= k; i++) { c = (c * (n - k + i)) / i; if (c > 1e15) return Infinity; }
    return Math.round(c);
  };
  let n = bias ? 1 : 0;
  for (let d = Math.max(1, minD); d <= maxD; d++) n += inter ? (d <= p ? choose(p, d) : 0) : choose(p + d - 1, d);
  return n;
}

class PolynomialFeatures extends Transformer {
  constructor(node, ctx) {
    super(node, ctx);
    const p = this.nFeaturesIn;
    const minD = ctx.integer(node, "min_degree", 0, 0);
    const maxD = ctx.integer(node, "max_degree", undefined, 0);
    if (minD > maxD) throw ctx.fail("must be <= max_degree", "min_degree");
    const inter = ctx.boolean(node, "interaction_only", false);
    const bias = ctx.boolean(node, "include_bias", true);
    if (maxD > 64) throw ctx.fail("degree too large", "max_degree");
    const full = polynomialCount(p, 0, maxD, inter, bias);
    if (full > MAX_OUTPUT_COLUMNS) throw ctx.fail(`expansion has ${full} columns, over the limit of ${MAX_OUTPUT_COLUMNS}`, "max_degree");
    if (polynomialCount(p, minD, maxD, inter, bias) === 0) throw ctx.fail("the expansion has no output columns", "max_degree");
    this.terms = [];
    if (bias) this.terms.push([]);
    for (let d = Math.max(1, minD); d <= maxD; d++) {
      if (inter && d > p) break;
      for (const c of combinations(p, d, !inter)) this.terms.push(c);
    }
    const n = ctx.integer(node, "n_output_features", this.terms.length, 0);
    if (n !== this.terms.length) throw ctx.fail(`expected ${this.terms.length} output features, got ${n}`, "n_output_features");
    this.nFeaturesOut = n;
  }
  transform(X) {
    return numeric(X, this).map((x) => this.terms.map((t) => {
      if (!t.length) return 1;
      let v = x[t[t.length - 1]];
      for (let k = t.length - 2; k >= 0; k--) v *= x[t[k]];
      return v;
    }));
  }
}

function isMissing(v) {
  return v === null || v === undefined || (typeof v === "number" && Number.isNaN(v));
}

class SimpleImputer extends Transformer {
  constructor(node, ctx) {
    super(node, ctx);
    const n = this.nFeaturesIn;
    this.dtype = ctx.string(node, "dtype", "float64", ["float64", "object"]);
    this.missing = ctx.string(node, "missing_values", undefined, ["nan", "none", "value"]);
    this.missingValue = null;
    if (this.missing === "value") {
      const mv = ctx.get(node, "missing_value", ["number", "string"]);
      if (this.dtype === "float64" && typeof mv === "string") throw ctx.fail("a string missing value needs dtype 'object'", "missing_value");
      this.missingValue = mv;
    }
    const stats = ctx.get(node, "statistics", ["array"]);
    if (stats.length !== n) throw ctx.fail(`expected ${n} statistics (one per input column), got ${stats.length}`, "statistics");
    stats.forEach((s, i) => {
      if (s === null) return;
      if (!(typeof s === "number" || (this.dtype === "object" && typeof s === "string"))) {
        throw ctx.fail(`expected ${this.dtype === "float64" ? "a number" : "a number or string"} or null`, "statistics", i);
      }
    });
    this.keep = stats.map((s, i) => (s === null ? -1 : i)).filter((i) => i >= 0);
    this.stats = stats;
    this.indicator = null;
    if (ctx.has(node, "indicator_features")) {
      const ind = Array.from(ctx.array(node, "indicator_features", { dtype: "int", ndim: 1 }).data);
      if (ind.some((v, k) => v < 0 || v >= n || (k > 0 && v <= ind[k - 1]))) throw ctx.fail(`must be increasing column indices in [0, ${n})`, "indicator_features");
      this.indicator = ind;
    }
    this.nFeaturesOut = this.keep.length + (this.indicator ? this.indicator.length : 0);
  }
  transform(X) {
    const rows = this.dtype === "float64" ? numeric(X, this, { nan: true }).map((r) => Array.from(r)) : X.map((r, i) => {
      if (r.length !== this.nFeaturesIn) throw new InvalidInput(`row ${i} has ${r.length} values, ${this.typeName} expects ${this.nFeaturesIn}`, i);
      return r;
    });
    return rows.map((x, r) => {
      const mask = x.map((v, j) => {
        if (this.missing !== "value") return isMissing(v);
        if (isMissing(v)) {
          throw new InvalidInput(`row ${r}, feature ${this.columnName(j)}: missing value (NaN) but this imputer treats ${short(this.missingValue)} as missing`, r, this.columnName(j));
        }
        return v === this.missingValue;
      });
      const out = this.keep.map((j) => (mask[j] ? this.stats[j] : x[j]));
      if (this.indicator) for (const j of this.indicator) out.push(this.dtype === "object" ? mask[j] : mask[j] ? 1 : 0);
      return out;
    });
  }
}

/** One input column's categories -> index (numbers by value, strings exactly, null = the missing category). */
class CategoryTable {
  constructor(values, ctx) {
    if (!Array.isArray(values)) throw ctx.fail("expected a list of categories");
    if (!values.length) throw ctx.fail("a feature needs at least one category");
    ctx.takeBudget(values.length, 0);
    this.size = values.length;
    this.nullIndex = -1;
    this.map = new Map();
    values.forEach((v, j) => {
      if (v === null) {
        if (this.nullIndex >= 0) throw ctx.fail("more than one null (missing) category", j);
        this.nullIndex = j;
        return;
      }
      if (typeof v !== "string" && typeof v !== "number") throw ctx.fail("a category must be a string, a number or null", j);
      const key = typeof v === "string" ? "s" + v : "n" + v;
      if (this.map.has(key)) throw ctx.fail(`duplicate category ${short(v)}`, j);
      this.map.set(key, j);
    });
  }
  code(v) {
    if (isMissing(v)) return this.nullIndex;
    if (typeof v === "boolean") v = v ? 1 : 0;
    const j = this.map.get(typeof v === "string" ? "s" + v : "n" + v);
    return j === undefined ? -1 : j;
  }
}

class Encoder extends Transformer {
  constructor(node, ctx) {
    super(node, ctx);
    const cats = ctx.get(node, "categories", ["array"]);
    if (cats.length !== this.nFeaturesIn) throw ctx.fail(`expected ${this.nFeaturesIn} category lists (one per input column), got ${cats.length}`, "categories");
    this.tables = cats.map((values, i) => new CategoryTable(values, ctx.child("categories", i)));
  }
  codes(X) {
    return X.map((x, r) => {
      if (x.length !== this.nFeaturesIn) throw new InvalidInput(`row ${r} has ${x.length} values, ${this.typeName} expects ${this.nFeaturesIn}`, r);
      return this.tables.map((t, i) => {
        const v = x[i];
        if (typeof v === "number" && !Number.isNaN(v) && !Number.isFinite(v)) {
          throw new InvalidInput(`row ${r}, feature ${this.columnName(i)}: infinite value`, r, this.columnName(i));
        }
        const c = t.code(v);
        if (c < 0 && this.handleUnknown === "error") {
          throw new InvalidInput(`row ${r}, feature ${this.columnName(i)}: unknown category ${isMissing(v) ? "a missing value" : short(v)}`, r, this.columnName(i));
        }
        return c;
      });
    });
  }
}

class OneHotEncoder extends Encoder {
  constructor(node, ctx) {
    super(node, ctx);
    const n = this.nFeaturesIn;
    this.handleUnknown = ctx.string(node, "handle_unknown", undefined, ["error", "ignore", "infrequent_if_exist", "warn"]);
    const widths = ctx.get(node, "n_columns", ["array"]);
    if (widths.length !== n || !widths.every((w) => Number.isInteger(w) && w >= 0)) throw ctx.fail(`expected ${n} non-negative integers`, "n_columns");
    if (widths.reduce((x, y) => x + y, 0) > MAX_OUTPUT_COLUMNS) throw ctx.fail(`more than ${MAX_OUTPUT_COLUMNS} output columns`, "n_columns");
    const raw = ctx.get(node, "columns", ["array"]);
    if (raw.length !== n) throw ctx.fail(`expected ${n} lists (one per input column)`, "columns");
    this.columns = this.tables.map((t, i) => {
      const c = Array.from(decodeArray(raw[i], ctx.child("columns", i), { dtype: "int", ndim: 1, shape: [t.size] }).data);
      if (c.some((v) => v < -1 || v >= widths[i])) throw ctx.fail(`column indices must be in [-1, ${widths[i]})`, "columns", i);
      return c;
    });
    const unknown = ctx.get(node, "unknown_columns", ["array"], new Array(n).fill(-1));
    if (unknown.length !== n) throw ctx.fail(`expected ${n} integers`, "unknown_columns");
    unknown.forEach((u, i) => { if (!Number.isInteger(u) || u < -1 || u >= widths[i]) throw ctx.fail(`must be an integer in [-1, ${widths[i]})`, "unknown_columns", i); });
    this.unknown = unknown;
    this.offsets = [0];
    for (const w of widths) this.offsets.push(this.offsets[this.offsets.length - 1] + w);
    this.nFeaturesOut = this.offsets[n];
  }
  transform(X) {
    return this.codes(X).map((codes) => {
      const out = new Array(this.nFeaturesOut).fill(0);
      codes.forEach((c, i) => {
        const col = c < 0 ? this.unknown[i] : this.columns[i][c];
        if (col >= 0) out[this.offsets[i] + col] = 1;
      });
      return out;
    });
  }
}

class OrdinalEncoder extends Encoder {
  constructor(node, ctx) {
    super(node, ctx);
    const n = this.nFeaturesIn;
    this.handleUnknown = ctx.string(node, "handle_unknown", undefined, ["error", "use_encoded_value"]);
    const raw = ctx.get(node, "codes", ["array"]);
    if (raw.length !== n) throw ctx.fail(`expected ${n} arrays (one per input column)`, "codes");
    this.values = this.tables.map((t, i) => {
      const c = decodeArray(raw[i], ctx.child("codes", i), { ndim: 1, shape: [t.size], finite: false }).data;
      if (c.some((v) => v === Infinity || v === -Infinity)) throw ctx.fail("codes must be finite numbers or NaN", "codes", i);
      return c;
    });
    this.unknownValue = NaN;
    if (this.handleUnknown === "use_encoded_value") {
      const uv = ctx.get(node, "unknown_value");
      if (uv !== null && !Number.isFinite(uv)) throw ctx.fail("must be a finite number or null (NaN)", "unknown_value");
      this.unknownValue = uv === null ? NaN : uv;
    }
  }
  transform(X) {
    return this.codes(X).map((codes) => codes.map((c, i) => (c < 0 ? this.unknownValue : this.values[i][c])));
  }
}

register(["standard_scaler"], (n, c) => new StandardScaler(n, c, ["mean", "scale"]));
register(["robust_scaler"], (n, c) => new StandardScaler(n, c, ["center", "scale"]));
register(["min_max_scaler"], (n, c) => new MinMaxScaler(n, c));
register(["max_abs_scaler"], (n, c) => new MaxAbsScaler(n, c));
register(["normalizer"], (n, c) => new Normalizer(n, c));
register(["binarizer"], (n, c) => new Binarizer(n, c));
register(["pca"], (n, c) => new PCA(n, c));
register(["polynomial_features"], (n, c) => new PolynomialFeatures(n, c));
register(["simple_imputer"], (n, c) => new SimpleImputer(n, c));
register(["one_hot_encoder"], (n, c) => new OneHotEncoder(n, c));
register(["ordinal_encoder"], (n, c) => new OrdinalEncoder(n, c));
