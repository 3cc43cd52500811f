// Linear and quadratic discriminant analysis (docs/format/discriminant_analysis.md).
import { decodeArray, register } from "../context.js";
import { Estimator, argmax, base, classes as loadClasses, numeric } from "./common.js";
import { LinearClassifier } from "./linear.js";

class LinearDiscriminantAnalysis extends LinearClassifier {
  constructor(node, ctx) {
    super(node, ctx);
    const p = this.nFeaturesIn;
    this.methods.add("transform");
    this.xbar = ctx.has(node, "xbar") ? ctx.array(node, "xbar", { ndim: 1, shape: [p] }).data : null;
    this.scalings = ctx.array(node, "scalings", { ndim: 2, shape: [p, null] });
  }
  transform(X) {
    const [p, k] = this.scalings.shape;
    const S = this.scalings.data;
    return numeric(X, this).map((x) => {
      const xc = this.xbar ? Array.from(x, (v, j) => v - this.xbar[j]) : x;
      const out = new Array(k).fill(0);
      for (let c = 0; c < k; c++) for (let j = 0; j < p; j++) out[c] += xc[j] * S[j * k + c];
      return out;
    });
  }
}

class QuadraticDiscriminantAnalysis extends Estimator {
  constructor(node, ctx) {
    super(["predict", "predict_proba", "decision_function"]);
    const p = base(this, node, ctx);
    this.classes = loadClasses(node, ctx);
    const k = this.classes.length;
    this.means = ctx.array(node, "means", { ndim: 2, shape: [k, p] }).rows();
    const priors = ctx.array(node, "priors", { ndim: 1, shape: [k] }).data;
    if (priors.some((v) => v <= 0)) throw ctx.fail("priors must be > 0", "priors");
    this.logPriors = Array.from(priors, Math.log);
    const rots = ctx.get(node, "rotations", ["array"]);
    const scals = ctx.get(node, "scalings", ["array"]);
    if (rots.length !== k || scals.length !== k) throw ctx.fail(`expected ${k} rotations and ${k} scalings (one per class)`, "rotations");
    this.weights = [];
    this.u = [];
    for (let i = 0; i < k; i++) {
      const s = decodeArray(scals[i], ctx.child("scalings", i), { ndim: 1 }).data;
      if (s.some((v) => v <= 0)) throw ctx.fail("scalings must be > 0", "scalings", i);
      const r = decodeArray(rots[i], ctx.child("rotations", i), { ndim: 2, shape: [p, s.length] });
      const f = Array.from(s, (v) => v ** -0.5);
      this.weights.push(r.rows().map((row) => Array.from(row, (v, j) => v * f[j])));
      this.u.push(s.reduce((a, v) => a + Math.log(v), 0));
    }
  }
  scores(X) {
    return numeric(X, this).map((x) => this.means.map((m, i) => {
      const W = this.weights[i];
      const r = W.length ? W[0].length : 0;
      let norm2 = 0;
      for (let c = 0; c < r; c++) {
        let t = 0;
        for (let j = 0; j < x.length; j++) t += (x[j] - m[j]) * W[j][c];
        norm2 += t * t;
      }
      return -0.5 * (norm2 + this.u[i]) + this.logPriors[i];
    }));
  }
  decisionFunction(X) {
    return this.scores(X).map((s) => (s.length === 2 ? s[1] - s[0] : s));
  }
  predict(X) {
    return this.scores(X).map((s) => this.classes[argmax(s)]);
  }
  predictProba(X) {
    return this.scores(X).map((s) => {
      const m = Math.max(...s);
      const ll = s.map((v) => v - m);
      const lse = Math.log(ll.reduce((a, v) => a + Math.exp(v), 0));
      return ll.map((v) => Math.exp(v - lse));
    });
  }
}

register(["linear_discriminant_analysis"], (n, c) => new LinearDiscriminantAnalysis(n, c));
register(["quadratic_discriminant_analysis"], (n, c) => new QuadraticDiscriminantAnalysis(n, c));
