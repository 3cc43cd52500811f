// k-nearest neighbours (docs/format/neighbors.md): brute force, ties in training-row order.
import { Estimator, base, classes as loadClasses, numeric } from "./common.js";
import { register } from "../context.js";

class KNeighbors extends Estimator {
  constructor(node, ctx, classifier) {
    super(classifier ? ["predict", "predict_proba"] : ["predict"]);
    const p = base(this, node, ctx);
    this.classifier = classifier;
    this.weights = ctx.string(node, "weights", undefined, ["uniform", "distance"]);
    this.metric = ctx.string(node, "metric", undefined, ["euclidean", "manhattan", "chebyshev", "minkowski", "cosine"]);
    if (this.metric === "minkowski") {
      this.p = ctx.number(node, "p");
      if (!(this.p > 0)) throw ctx.fail("must be > 0", "p");
    }
    const fit = ctx.array(node, "fit_X", { ndim: 2, shape: [null, p] });
    this.fit = fit.rows();
    const N = fit.shape[0];
    if (N < 1) throw ctx.fail("needs at least one training row", "fit_X");
    this.k = ctx.integer(node, "n_neighbors", undefined, 1, N);
    if (classifier) {
      this.classes = loadClasses(node, ctx, 1);
      const y = ctx.array(node, "y", { dtype: "int", ndim: 1, shape: [N] }).data;
      y.forEach((v, i) => { if (v < 0 || v >= this.classes.length) throw ctx.fail("not a class index", "y", i); });
      this.y = y;
    } else {
      const y = ctx.array(node, "y");
      if (y.shape[0] !== N || y.ndim > 2) throw ctx.fail(`expected ${N} rows`, "y");
      this.yRows = y.ndim === 1 ? Array.from(y.data, (v) => [v]) : y.rows();
      this.yOneD = y.ndim === 1;
    }
    if (this.metric === "cosine") this.fitUnit = this.fit.map(unit);
  }
  dist(x, f, i, xu) {
    switch (this.metric) {
      case "euclidean": { let s = 0; for (let j = 0; j < x.length; j++) { const d = x[j] - f[j]; s += d * d; } return Math.sqrt(s); }
      case "manhattan": { let s = 0; for (let j = 0; j < x.length; j++) s += Math.abs(x[j] - f[j]); return s; }
      case "chebyshev": { let s = 0; for (let j = 0; j < x.length; j++) s = Math.max(s, Math.abs(x[j] - f[j])); return s; }
      case "minkowski": { let s = 0; for (let j = 0; j < x.length; j++) s += Math.abs(x[j] - f[j]) ** this.p; return s ** (1 / this.p); }
      default: {
        const fu = this.fitUnit[i];
        let s = 0;
        for (let j = 0; j < x.length; j++) s += xu[j] * fu[j];
        return Math.min(Math.max(1 - s, 0), 2);
      }
    }
  }
  neighbours(x) {
    const xu = this.metric === "cosine" ? unit(x) : null;
    const d = this.fit.map((f, i) => this.dist(x, f, i, xu));
    const idx = d.map((_, i) => i).sort((a, b) => d[a] - d[b] || a - b).slice(0, this.k);
    const dd = idx.map((i) => d[i]);
    let w;
    if (this.weights === "uniform") w = dd.map(() => 1);
    else if (dd.some((v) => v === 0)) w = dd.map((v) => (v === 0 ? 1 : 0));
    else w = dd.map((v) => 1 / v);
    return { idx, w };
  }
  scores(x) {
    const { idx, w } = this.neighbours(x);
    const s = new Array(this.classes.length).fill(0);
    idx.forEach((i, t) => { s[this.y[i]] += w[t]; });
    return s;
  }
  predictProba(X) {
    return numeric(X, this).map((x) => {
      const s = this.scores(x);
      const tot = s.reduce((a, b) => a + b, 0);
      return s.map((v) => v / tot);
    });
  }
  predict(X) {
    return numeric(X, this).map((x) => {
      if (!this.classifier) {
        const { idx, w } = this.neighbours(x);
        const t = this.yRows[0].length;
        const out = [];
        for (let c = 0; c < t; c++) {
          if (this.weights === "uniform") {
            let s = 0;
            for (const i of idx) s += this.yRows[i][c];
            out.push(s / idx.length);
          } else {
            let s = 0, ws = 0;
            idx.forEach((i, k) => { s += this.yRows[i][c] * w[k]; ws += w[k]; });
            out.push(s / ws);
          }
        }
        return this.yOneD ? out[0] : out;
      }
      const s = this.scores(x);
      let best = 0;
      for (let c = 1; c < s.length; c++) if (s[c] > s[best]) best = c;
      return this.classes[best];
    });
  }
}

function unit(x) {
  let s = 0;
  for (const v of x) s += v * v;
  const n = Math.sqrt(s);
  return n === 0 ? Array.from(x) : Array.from(x, (v) => v / n);
}

register(["k_neighbors_classifier"], (n, c) => new KNeighbors(n, c, true));
register(["k_neighbors_regressor"], (n, c) => new KNeighbors(n, c, false));
