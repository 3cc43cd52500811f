// Naive Bayes (docs/format/naive_bayes.md): gaussian, multinomial, complement, bernoulli.
import { Estimator, argmax, base, classes as loadClasses, dot, numeric } from "./common.js";
import { register } from "../context.js";

/** scikit-learn's _logsumexp, step for step. */
function logsumexp(a) {
  let aMax = -Infinity;
  for (const v of a) if (v > aMax) aMax = v;
  let m = 0;
  for (const v of a) if (v === aMax) m++;
  const shift = Number.isFinite(aMax) ? aMax : 0;
  let s = 0;
  for (const v of a) s += v === aMax ? 0 : Math.exp(v - shift);
  s = s === 0 ? s : s / m;
  return Math.log1p(s) + Math.log(m) + aMax;
}

class NaiveBayes extends Estimator {
  constructor(node, ctx) {
    super(["predict", "predict_proba"]);
    this.p = base(this, node, ctx);
    this.classes = loadClasses(node, ctx, 1);
  }
  predict(X) { return this.jll(X).map((j) => this.classes[argmax(j)]); }
  predictProba(X) {
    return this.jll(X).map((j) => {
      const l = logsumexp(j);
      return j.map((v) => Math.exp(v - l));
    });
  }
}

class GaussianNB extends NaiveBayes {
  constructor(node, ctx) {
    super(node, ctx);
    const k = this.classes.length, p = this.p;
    this.theta = ctx.array(node, "theta", { ndim: 2, shape: [k, p] }).rows();
    const v = ctx.array(node, "var", { ndim: 2, shape: [k, p] });
    v.data.forEach((x, i) => { if (!(x > 0)) throw ctx.fail("must be > 0", "var", Math.floor(i / p), i % p); });
    this.var = v.rows();
    const prior = ctx.array(node, "class_prior", { ndim: 1, shape: [k] }).data;
    prior.forEach((x, i) => { if (!(x >= 0)) throw ctx.fail("must be >= 0", "class_prior", i); });
    this.logPrior = Array.from(prior, Math.log);
    this.logNorm = this.var.map((row) => { let s = 0; for (const x of row) s += Math.log(2.0 * Math.PI * x); return -0.5 * s; });
  }
  jll(X) {
    return numeric(X, this).map((x) => this.theta.map((th, c) => {
      let s = 0;
      for (let j = 0; j < x.length; j++) s += ((x[j] - th[j]) ** 2) / this.var[c][j];
      return this.logPrior[c] + (this.logNorm[c] - 0.5 * s);
    }));
  }
}

class DiscreteNB extends NaiveBayes {
  constructor(node, ctx, kind) {
    super(node, ctx);
    const k = this.classes.length, p = this.p;
    this.kind = kind;
    const flp = ctx.array(node, "feature_log_prob", { ndim: 2, shape: [k, p] });
    this.flp = flp.rows();
    this.prior = ctx.array(node, "class_log_prior", { ndim: 1, shape: [k], finite: false }).data;
    this.prior.forEach((v, i) => { if (Number.isNaN(v) || v === Infinity) throw ctx.fail("must be finite or -inf", "class_log_prior", i); });
    if (kind === "bernoulli") {
      if (!ctx.has(node, "binarize")) throw ctx.fail("required field is missing (a number, or null for no binarization)", "binarize");
      this.binarize = node.binarize === null ? null : ctx.number(node, "binarize");
      flp.data.forEach((v, i) => { if (!(v < 0)) throw ctx.fail("log probabilities must be < 0", "feature_log_prob", Math.floor(i / p), i % p); });
      const neg = this.flp.map((row) => Array.from(row, (v) => Math.log(1 - Math.exp(v))));
      this.delta = this.flp.map((row, c) => Array.from(row, (v, j) => v - neg[c][j]));
      this.bias = neg.map((row, c) => { let s = 0; for (const v of row) s += v; return this.prior[c] + s; });
    }
  }
  jll(X) {
    return numeric(X, this).map((x0) => {
      if (this.kind === "bernoulli") {
        const x = this.binarize === null ? x0 : Array.from(x0, (v) => (v > this.binarize ? 1 : 0));
        return this.delta.map((d, c) => dot(x, d) + this.bias[c]);
      }
      const addPrior = this.kind === "multinomial" || this.classes.length === 1;
      return this.flp.map((w, c) => (addPrior ? dot(x0, w) + this.prior[c] : dot(x0, w)));
    });
  }
}

register(["gaussian_nb"], (n, c) => new GaussianNB(n, c));
register(["multinomial_nb"], (n, c) => new DiscreteNB(n, c, "multinomial"));
register(["complement_nb"], (n, c) => new DiscreteNB(n, c, "complement"));
register(["bernoulli_nb"], (n, c) => new DiscreteNB(n, c, "bernoulli"));
