// Helpers shared by the model families: numeric input checks, links, argmax, node basics.
import { InvalidInput, MethodNotSupported, short } from "../errors.js";

/** Base of every estimator: `methods` (document method names), `nFeaturesIn`, `classes`, names for errors. */
export class Estimator {
  constructor(methods) {
    this.methods = new Set(methods);
    this.nFeaturesIn = 0;
    this.classes = null;
    this.featureNames = null;
    this.typeName = "";
  }
  predict() { throw new MethodNotSupported(`${this.typeName} has no predict`); }
  predictProba() { throw new MethodNotSupported(`${this.typeName} has no predict_proba`); }
  decisionFunction() { throw new MethodNotSupported(`${this.typeName} has no decision_function`); }
  transform() { throw new MethodNotSupported(`${this.typeName} has no transform`); }
  columnName(j) { return this.featureNames ? this.featureNames[j] : `column ${j}`; }
}

/** n_features_in of a node (checked against `p` when the arrays define it). */
export function base(est, node, ctx, p = null) {
  est.nFeaturesIn = p ?? ctx.integer(node, "n_features_in", undefined, 1);
  if (p !== null && ctx.has(node, "n_features_in") && ctx.integer(node, "n_features_in", undefined, 1) !== p) {
    throw ctx.fail(`n_features_in is ${node.n_features_in}, the arrays have ${p} columns`, "n_features_in");
  }
  return est.nFeaturesIn; // feature_names are read by loadEstimator, after every other field
}

/**
 * Cells -> Float64Array rows. Strings are an input error; null is NaN. `nan` / `inf`: whether NaN / ±infinity
 * are accepted (scikit-learn's check_array); otherwise an input error naming the row and the column.
 */
export function numeric(X, est, { nan = false, inf = false, width = est.nFeaturesIn } = {}) {
  const out = new Array(X.length);
  for (let r = 0; r < X.length; r++) {
    const row = X[r];
    if (width && row.length !== width) throw new InvalidInput(`row ${r} has ${row.length} values, ${est.typeName} expects ${width}`, r);
    const f = new Float64Array(row.length);
    for (let j = 0; j < row.length; j++) {
      let v = row[j];
      if (v === null || v === undefined) v = NaN;
      else if (typeof v === "boolean") v = v ? 1 : 0;
      else if (typeof v !== "number") {
        throw new InvalidInput(`row ${r}, ${est.columnName(j)}: expected a number, got ${short(v)}`, r, est.columnName(j));
      }
      if (Number.isNaN(v)) {
        if (!nan) throw new InvalidInput(`row ${r}, ${est.columnName(j)}: missing value (NaN); ${est.typeName} does not accept missing values`, r, est.columnName(j));
      } else if (!Number.isFinite(v) && !inf) {
        throw new InvalidInput(`row ${r}, ${est.columnName(j)}: infinite value; ${est.typeName} does not accept infinity`, r, est.columnName(j));
      }
      f[j] = v;
    }
    out[r] = f;
  }
  return out;
}

export function expit(z) {
  return 1 / (1 + Math.exp(-z));
}

/** softmax with the row maximum subtracted first (scikit-learn's utils.extmath.softmax). */
export function softmax(z) {
  let m = -Infinity;
  for (const v of z) if (v > m) m = v;
  const e = Array.from(z, (v) => Math.exp(v - m));
  let s = 0;
  for (const v of e) s += v;
  return e.map((v) => v / s);
}

/** Index of the first maximum. */
export function argmax(a) {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

/** Dot product of a row with a weight vector, summed left to right. */
export function dot(x, w) {
  let s = 0;
  for (let j = 0; j < x.length; j++) s += x[j] * w[j];
  return s;
}

/** Class labels of a node, checked against output expectations (at least `min`). */
export function classes(node, ctx, min = 2) {
  const c = ctx.labels(node, "classes");
  if (c.length < min) throw ctx.fail(`at least ${min} classes are needed`, "classes");
  return c;
}

/** One-vs-rest normalisation: rows summing to 0 become uniform. */
export function ovrNormalise(q) {
  let s = 0;
  for (const v of q) s += v;
  if (s === 0) return q.map(() => 1 / q.length);
  return q.map((v) => v / s);
}
