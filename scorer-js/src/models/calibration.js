// isotonic_regression and calibrated_classifier (docs/format/calibration.md).
import { InvalidInput } from "../errors.js";
import { Estimator, argmax, classes as loadClasses, expit, numeric } from "./common.js";
import { register } from "../context.js";

class IsotonicRegression extends Estimator {
  constructor(node, ctx) {
    super(["predict", "transform"]);
    this.nFeaturesIn = 1;
    if (ctx.integer(node, "n_features_in", 1) !== 1) throw ctx.fail("isotonic regression has one input column", "n_features_in");
    this.x = Array.from(ctx.array(node, "x", { ndim: 1 }).data);
    if (!this.x.length) throw ctx.fail("needs at least one threshold", "x");
    if (this.x.some((v, i) => i > 0 && !(v > this.x[i - 1]))) throw ctx.fail("thresholds must be strictly increasing", "x");
    this.y = Array.from(ctx.array(node, "y", { ndim: 1, shape: [this.x.length] }).data);
    this.oob = ctx.string(node, "out_of_bounds", undefined, ["nan", "clip", "raise"]);
    this.float32 = ctx.get(node, "float32", ["boolean"], false);
    if (this.float32 && [...this.x, ...this.y].some((v) => Math.fround(v) !== v)) throw ctx.fail("must hold float32 values (float32 is true)", "x");
  }
  /** scikit-learn's _transform of one value: np.interp, NaN (or an error) outside the thresholds. */
  one(t, r) {
    const x = this.x, y = this.y, n = x.length;
    if (this.float32) t = Math.fround(t);
    if (this.oob === "clip") t = Math.min(Math.max(t, x[0]), x[n - 1]);
    if (n === 1) return y[0];
    if (t < x[0] || t > x[n - 1]) {
      if (this.oob === "raise") throw new InvalidInput(`row ${r}: ${t} is outside the range of the isotonic regression`, r);
      return NaN;
    }
    if (this.float32) { // scipy's generic interp1d path, every operation in float32
      const f = Math.fround;
      let h = 0;
      while (h < n && x[h] < t) h++;
      h = Math.min(Math.max(h, 1), n - 1);
      const l = h - 1;
      const s = f(f(y[h] - y[l]) / f(x[h] - x[l]));
      return f(f(s * f(t - x[l])) + y[l]);
    }
    let j = 0;
    while (j + 1 < n && x[j + 1] <= t) j++;
    if (j === n - 1 || x[j] === t) return y[j];
    const slope = (y[j + 1] - y[j]) / (x[j + 1] - x[j]);
    let v = slope * (t - x[j]) + y[j];
    if (Number.isNaN(v)) {
      v = slope * (t - x[j + 1]) + y[j + 1];
      if (Number.isNaN(v) && y[j] === y[j + 1]) v = y[j];
    }
    return v;
  }
  predict(X) { return numeric(X, this).map((row, r) => this.one(row[0], r)); }
  transform(X) { return this.predict(X); }
}

class CalibratedClassifier extends Estimator {
  constructor(node, ctx) {
    super(["predict", "predict_proba"]);
    this.classes = loadClasses(node, ctx, 2);
    const k = this.classes.length;
    this.sigmoid = ctx.string(node, "method", undefined, ["sigmoid", "isotonic"]) === "sigmoid";
    const list = ctx.get(node, "calibrated", ["array"]);
    if (!list.length) throw ctx.fail("at least one calibrated classifier is needed", "calibrated");
    this.folds = list.map((entry, i) => {
      const f = ctx.child("calibrated", i);
      const est = ctx.estimator(f.get(entry, "estimator", ["object"]), "calibrated", i, "estimator");
      const useDecision = est.methods.has("decision_function");
      if (!useDecision && !est.methods.has("predict_proba")) throw f.fail(`${est.typeName} has neither decision_function nor predict_proba`, "estimator");
      const idx = Array.from(f.array(entry, "class_indices", { dtype: "int", ndim: 1 }).data);
      if (!idx.length || idx.some((c) => c < 0 || c >= k) || (k === 2 && idx.length !== 2)) throw f.fail(`class indices must be in [0, ${k})`, "class_indices");
      const cals = f.get(entry, "calibrators", ["array"]);
      if (cals.length !== (k === 2 ? 1 : idx.length)) throw f.fail(`expected ${k === 2 ? 1 : idx.length} calibrators`, "calibrators");
      const calibrators = cals.map((c, j) => {
        if (this.sigmoid) { const cc = f.child("calibrators", j); return { a: cc.number(c, "a"), b: cc.number(c, "b") }; }
        const iso = ctx.estimator(c, "calibrated", i, "calibrators", j);
        if (!(iso instanceof IsotonicRegression)) throw f.fail("expected an isotonic_regression node", "calibrators", j, "type");
        return iso;
      });
      return { est, useDecision, idx, calibrators };
    });
    this.nFeaturesIn = this.folds[0].est.nFeaturesIn;
  }
  foldProba(fold, X) {
    const k = this.classes.length;
    let pred = fold.useDecision ? fold.est.decisionFunction(X) : fold.est.predictProba(X);
    if (!fold.useDecision && k === 2) pred = pred.map((p) => p[1]);
    return pred.map((p, r) => {
      const cols = typeof p === "number" ? [p] : Array.from(p);
      const proba = new Array(k).fill(0);
      fold.calibrators.forEach((cal, j) => {
        const col = k === 2 ? fold.idx[j] + 1 : fold.idx[j];
        const t = cols[j];
        proba[col] = cal instanceof IsotonicRegression ? cal.one(t, r) : expit(-(cal.a * t + cal.b));
      });
      let out = proba;
      if (k === 2) out[0] = 1.0 - out[1];
      else {
        let s = 0;
        for (const v of proba) s += v;
        out = s !== 0 ? proba.map((v) => v / s) : proba.map(() => 1 / k);
      }
      return out.map((v) => (v > 1.0 && v <= 1.0 + 1e-5 ? 1.0 : v));
    });
  }
  predictProba(X) {
    const k = this.classes.length;
    const mean = X.map(() => new Array(k).fill(0));
    for (const fold of this.folds) this.foldProba(fold, X).forEach((p, r) => p.forEach((v, c) => { mean[r][c] += v; }));
    return mean.map((row) => row.map((v) => v / this.folds.length));
  }
  predict(X) { return this.predictProba(X).map((p) => this.classes[argmax(p)]); }
}

register(["isotonic_regression"], (n, c) => new IsotonicRegression(n, c));
register(["calibrated_classifier"], (n, c) => new CalibratedClassifier(n, c));
