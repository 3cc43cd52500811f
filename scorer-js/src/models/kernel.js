// Kernel machines (docs/format/kernel.md): svc, svr, one_class_svm, with libsvm's arithmetic.
import { Estimator, argmax, base, classes as loadClasses, dot, numeric } from "./common.js";
import { register } from "../context.js";

function powi(b, d) {
  let tmp = b, ret = 1.0;
  for (let t = d; t > 0; t = Math.floor(t / 2)) {
    if (t % 2 === 1) ret *= tmp;
    tmp *= tmp;
  }
  return ret;
}

class Kernel extends Estimator {
  constructor(node, ctx, methods) {
    super(methods);
    const p = base(this, node, ctx);
    this.kernel = ctx.string(node, "kernel", undefined, ["linear", "poly", "rbf", "sigmoid"]);
    this.gamma = ctx.number(node, "gamma");
    this.coef0 = ctx.number(node, "coef0", 0);
    this.degree = ctx.integer(node, "degree", 3, 0, 64);
    const sv = ctx.array(node, "support_vectors", { ndim: 2, shape: [null, p] });
    this.sv = sv.rows();
    this.m = sv.shape[0];
  }
  /** K(x, sv_i) for every support vector. */
  k(x) {
    return this.sv.map((s) => {
      if (this.kernel === "rbf") {
        let d = 0;
        for (let j = 0; j < x.length; j++) { const t = x[j] - s[j]; d += t * t; }
        return Math.exp(-this.gamma * d);
      }
      const d = dot(x, s);
      if (this.kernel === "linear") return d;
      if (this.kernel === "poly") return powi(this.gamma * d + this.coef0, this.degree);
      return Math.tanh(this.gamma * d + this.coef0);
    });
  }
  dualRow(node, ctx, rows) {
    const dc = ctx.array(node, "dual_coef", { ndim: 2, shape: [rows, this.m] });
    return dc.rows();
  }
}

class SVR extends Kernel {
  constructor(node, ctx, oneClass) {
    super(node, ctx, oneClass ? ["predict", "decision_function"] : ["predict"]);
    this.oneClass = oneClass;
    this.dual = this.dualRow(node, ctx, 1)[0];
    this.intercept = ctx.array(node, "intercept", { ndim: 1, shape: [1] }).data[0];
  }
  values(X) {
    return numeric(X, this).map((x) => {
      const K = this.k(x);
      let s = 0;
      for (let i = 0; i < this.m; i++) s += this.dual[i] * K[i];
      return s + this.intercept;
    });
  }
  decisionFunction(X) { return this.values(X); }
  predict(X) { return this.oneClass ? this.values(X).map((d) => (d > 0 ? 1 : -1)) : this.values(X); }
}

class SVC extends Kernel {
  constructor(node, ctx) {
    super(node, ctx, ["predict", "decision_function"]);
    this.classes = loadClasses(node, ctx, 2);
    const k = this.classes.length;
    const ns = Array.from(ctx.array(node, "n_support", { dtype: "int", ndim: 1, shape: [k] }).data);
    ns.forEach((v, i) => { if (v < 0) throw ctx.fail("must be >= 0", "n_support", i); });
    if (ns.reduce((a, b) => a + b, 0) !== this.m) throw ctx.fail(`must sum to the ${this.m} support vectors`, "n_support");
    this.start = [0];
    for (const v of ns) this.start.push(this.start[this.start.length - 1] + v);
    this.dual = this.dualRow(node, ctx, k - 1);
    const npairs = (k * (k - 1)) / 2;
    this.intercept = ctx.array(node, "intercept", { ndim: 1, shape: [npairs] }).data;
    this.shape = ctx.string(node, "decision_function_shape", "ovr", ["ovr", "ovo"]);
    this.breakTies = ctx.boolean(node, "break_ties", false);
    if (this.breakTies && this.shape === "ovo" && k > 2) throw ctx.fail("break_ties needs decision_function_shape 'ovr'", "break_ties");
    const hasA = ctx.has(node, "prob_a"), hasB = ctx.has(node, "prob_b");
    if (hasA !== hasB) throw ctx.fail("prob_a and prob_b go together", hasA ? "prob_b" : "prob_a");
    if (hasA) {
      this.probA = ctx.array(node, "prob_a", { ndim: 1, shape: [npairs] }).data;
      this.probB = ctx.array(node, "prob_b", { ndim: 1, shape: [npairs] }).data;
      this.methods.add("predict_proba");
    }
    this.pairs = [];
    for (let i = 0; i < k; i++) for (let j = i + 1; j < k; j++) this.pairs.push([i, j]);
  }
  /** libsvm's pairwise decision values. */
  dec(X) {
    const k = this.classes.length;
    return numeric(X, this).map((x) => {
      const K = this.k(x);
      if (k === 2) {
        let s = 0;
        for (let i = 0; i < this.m; i++) s += this.dual[0][i] * K[i];
        return [-(s + this.intercept[0])];
      }
      return this.pairs.map(([i, j], q) => {
        let s = 0;
        for (let t = this.start[i]; t < this.start[i + 1]; t++) s += this.dual[j - 1][t] * K[t];
        for (let t = this.start[j]; t < this.start[j + 1]; t++) s += this.dual[i][t] * K[t];
        return s + this.intercept[q];
      });
    });
  }
  ovr(d) {
    const k = this.classes.length;
    const votes = new Array(k).fill(0), sums = new Array(k).fill(0);
    this.pairs.forEach(([i, j], q) => {
      sums[i] -= -d[q];
      sums[j] += -d[q];
      if (d[q] >= 0) votes[i] += 1; else votes[j] += 1;
    });
    return votes.map((v, c) => v + sums[c] / (3 * (Math.abs(sums[c]) + 1)));
  }
  decisionFunction(X) {
    const k = this.classes.length;
    return this.dec(X).map((d) => (k === 2 ? -d[0] : this.shape === "ovo" ? d : this.ovr(d)));
  }
  predict(X) {
    const k = this.classes.length;
    return this.dec(X).map((d) => {
      if (this.breakTies && k > 2) return this.classes[argmax(this.ovr(d))];
      const votes = new Array(k).fill(0);
      this.pairs.forEach(([i, j], q) => { if (d[q] > 0) votes[i]++; else votes[j]++; });
      return this.classes[argmax(votes)];
    });
  }
  predictProba(X) {
    const k = this.classes.length;
    return this.dec(X).map((d) => {
      const r = Array.from({ length: k }, () => new Array(k).fill(0));
      this.pairs.forEach(([i, j], q) => {
        const f = d[q] * this.probA[q] + this.probB[q];
        const s = f >= 0 ? Math.exp(-f) / (1 + Math.exp(-f)) : 1 / (1 + Math.exp(f));
        r[i][j] = Math.min(Math.max(s, 1e-7), 1 - 1e-7);
        r[j][i] = 1 - r[i][j];
      });
      return multiclassProbability(k, r);
    });
  }
}

/** libsvm's multiclass_probability (Wu, Lin & Weng, method 2), loop for loop. */
function multiclassProbability(k, r) {
  const maxIter = Math.max(100, k), eps = 0.005 / k;
  const Q = Array.from({ length: k }, () => new Array(k).fill(0));
  for (let t = 0; t < k; t++) {
    Q[t][t] = 0;
    for (let j = 0; j < t; j++) { Q[t][t] += r[j][t] * r[j][t]; Q[t][j] = Q[j][t]; }
    for (let j = t + 1; j < k; j++) { Q[t][t] += r[j][t] * r[j][t]; Q[t][j] = -r[j][t] * r[t][j]; }
  }
  const p = new Array(k).fill(1 / k);
  const Qp = new Array(k).fill(0);
  for (let iter = 0; iter < maxIter; iter++) {
    let pQp = 0;
    for (let t = 0; t < k; t++) {
      Qp[t] = 0;
      for (let j = 0; j < k; j++) Qp[t] += Q[t][j] * p[j];
      pQp += p[t] * Qp[t];
    }
    let maxErr = 0;
    for (let t = 0; t < k; t++) maxErr = Math.max(maxErr, Math.abs(Qp[t] - pQp));
    if (maxErr < eps) break;
    for (let t = 0; t < k; t++) {
      const diff = (-Qp[t] + pQp) / Q[t][t];
      p[t] += diff;
      pQp = (pQp + diff * (diff * Q[t][t] + 2 * Qp[t])) / (1 + diff) / (1 + diff);
      for (let j = 0; j < k; j++) {
        Qp[j] = (Qp[j] + diff * Q[t][j]) / (1 + diff);
        p[j] /= 1 + diff;
      }
    }
  }
  return p;
}

register(["svc"], (n, c) => new SVC(n, c));
register(["svr"], (n, c) => new SVR(n, c, false));
register(["one_class_svm"], (n, c) => new SVR(n, c, true));
