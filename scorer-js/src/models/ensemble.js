// Meta-estimators (docs/format/ensemble.md): voting, stacking and bagging over child estimator nodes.
// Classifier children were fitted on class indices 0..k-1; the meta node maps indices to its `classes`.
import { Estimator, argmax, base, classes as loadClasses, numeric, softmax } from "./common.js";
import { register } from "../context.js";
import { InvalidInput } from "../errors.js";

const FN = { predict: "predict", predict_proba: "predictProba", decision_function: "decisionFunction" };

function members(node, ctx) {
  const list = ctx.get(node, "estimators", ["array"]);
  if (!list.length) throw ctx.fail("at least one estimator is needed", "estimators");
  return list.map((entry, i) => {
    if (entry === null || typeof entry !== "object" || !Object.prototype.hasOwnProperty.call(entry, "estimator")) {
      throw ctx.fail("expected an object with an 'estimator'", "estimators", i);
    }
    return ctx.estimator(entry.estimator, "estimators", i, "estimator");
  });
}

function indexClasses(est, k, ctx, subset, ...parts) {
  const c = est.classes;
  const ok = Array.isArray(c) && c.length > 0 && c.every((v, i) => Number.isInteger(v) && v >= 0 && v < k && (i === 0 || v > c[i - 1]))
    && (subset || c.length === k);
  if (!ok) throw ctx.fail(`the child's classes must be ${subset ? "a subset of " : ""}0..${k - 1}`, ...parts);
}

function weights(node, ctx, n) {
  if (node.weights === null || node.weights === undefined) return null;
  const w = Array.from(ctx.array(node, "weights", { ndim: 1, shape: [n] }).data);
  if (!w.every((v) => v >= 0) || !(w.reduce((a, b) => a + b, 0) > 0)) throw ctx.fail("weights must be >= 0 and not all 0", "weights");
  return w;
}

/** Only the width: the children check (and may accept strings in) the cells they read. */
function check(est, X) {
  X.forEach((x, r) => { if (x.length !== est.nFeaturesIn) throw new InvalidInput(`row ${r} has ${x.length} values, ${est.typeName} expects ${est.nFeaturesIn}`, r); });
}

/** np.average over the first axis of `parts` (m arrays of equal shape, numbers or rows), weights `w`. */
function average(parts, w) {
  const m = parts.length;
  const scl = w === null ? m : w.reduce((a, b) => a + b, 0);
  const one = (get) => {
    let s = 0;
    for (let e = 0; e < m; e++) s += w === null ? get(e) : get(e) * w[e];
    return s / scl;
  };
  return parts[0].map((row, r) => (Array.isArray(row) || ArrayBuffer.isView(row)
    ? Array.from(row, (_, j) => one((e) => parts[e][r][j])) : one((e) => parts[e][r])));
}

class VotingClassifier extends Estimator {
  constructor(node, ctx) {
    const soft = ctx.string(node, "voting", undefined, ["hard", "soft"]) === "soft";
    super(soft ? ["predict", "predict_proba", "transform"] : ["predict", "transform"]);
    this.soft = soft;
    base(this, node, ctx);
    this.classes = loadClasses(node, ctx, 1);
    this.ests = members(node, ctx);
    this.w = weights(node, ctx, this.ests.length);
    this.ests.forEach((e, i) => {
      indexClasses(e, this.classes.length, ctx, false, "estimators", i, "estimator", "classes");
      const need = soft ? "predict_proba" : "predict";
      if (!e.methods.has(need)) throw ctx.fail(`${e.typeName} has no ${need}`, "estimators", i, "estimator", "type");
    });
  }
  probas(X) { check(this, X); return this.ests.map((e) => e.predictProba(X)); }
  votes(X) { check(this, X); const p = this.ests.map((e) => e.predict(X)); return X.map((_, r) => p.map((v) => v[r])); }
  predictProba(X) { return average(this.probas(X), this.w); }
  predict(X) {
    if (this.soft) return this.predictProba(X).map((p) => this.classes[argmax(p)]);
    return this.votes(X).map((v) => {
      const bins = new Array(Math.max(...v) + 1).fill(0);
      v.forEach((c, e) => { bins[c] += this.w === null ? 1 : this.w[e]; });
      return this.classes[argmax(bins)];
    });
  }
  transform(X) {
    if (!this.soft) return this.votes(X);
    const p = this.probas(X);
    return X.map((_, r) => p.flatMap((q) => Array.from(q[r])));
  }
}

class VotingRegressor extends Estimator {
  constructor(node, ctx) {
    super(["predict", "transform"]);
    base(this, node, ctx);
    this.ests = members(node, ctx);
    this.w = weights(node, ctx, this.ests.length);
  }
  transform(X) { check(this, X); const p = this.ests.map((e) => e.predict(X)); return X.map((_, r) => p.map((v) => v[r])); }
  predict(X) { check(this, X); return average(this.ests.map((e) => e.predict(X)), this.w); }
}

class Stacking extends Estimator {
  constructor(node, ctx, classifier) {
    super(["predict", "transform"]);
    base(this, node, ctx);
    this.classes = classifier ? loadClasses(node, ctx, 1) : null;
    this.ests = members(node, ctx);
    this.how = node.estimators.map((entry, i) => {
      const m = ctx.child("estimators", i).string(entry, "method", undefined, classifier ? Object.keys(FN) : ["predict"]);
      if (!this.ests[i].methods.has(m)) throw ctx.fail(`${this.ests[i].typeName} has no ${m}`, "estimators", i, "method");
      if (classifier) indexClasses(this.ests[i], this.classes.length, ctx, false, "estimators", i, "estimator", "classes");
      return m;
    });
    this.passthrough = ctx.boolean(node, "passthrough");
    if (!ctx.has(node, "final_estimator")) throw ctx.fail("required field is missing", "final_estimator");
    this.final = ctx.estimator(node.final_estimator, "final_estimator");
    if (classifier) {
      indexClasses(this.final, this.classes.length, ctx, false, "final_estimator", "classes");
      for (const m of ["predict_proba", "decision_function"]) if (this.final.methods.has(m)) this.methods.add(m);
    }
  }
  transform(X) {
    const Xf = this.passthrough ? numeric(X, this, { nan: true, inf: true }) : (check(this, X), null);
    const binary = this.classes !== null && this.classes.length === 2;
    const cols = this.ests.map((e, i) => {
      const m = this.how[i];
      return e[FN[m]](X).map((v) => {
        if (typeof v === "number") return [v];
        const row = Array.from(v);
        return m === "predict_proba" && binary ? row.slice(1) : row;
      });
    });
    return X.map((_, r) => [...cols.flatMap((c) => c[r]), ...(this.passthrough ? Array.from(Xf[r]) : [])]);
  }
  predict(X) {
    const p = this.final.predict(this.transform(X));
    return this.classes === null ? p : p.map((c) => this.classes[c]);
  }
  predictProba(X) { return this.final.predictProba(this.transform(X)); }
  decisionFunction(X) { return this.final.decisionFunction(this.transform(X)); }
}

class Bagging extends Estimator {
  constructor(node, ctx, classifier) {
    super(classifier ? ["predict", "predict_proba"] : ["predict"]);
    const p = base(this, node, ctx);
    this.classes = classifier ? loadClasses(node, ctx, 1) : null;
    this.ests = members(node, ctx);
    this.features = node.estimators.map((entry, i) => {
      const f = Array.from(ctx.child("estimators", i).array(entry, "features", { dtype: "int", ndim: 1 }).data);
      if (!f.length || f.some((c) => c < 0 || c >= p)) throw ctx.fail(`feature indices must be in [0, ${p})`, "estimators", i, "features");
      if (this.ests[i].nFeaturesIn && this.ests[i].nFeaturesIn !== f.length) {
        throw ctx.fail(`selects ${f.length} columns, the estimator expects ${this.ests[i].nFeaturesIn}`, "estimators", i, "features");
      }
      if (classifier) indexClasses(this.ests[i], this.classes.length, ctx, true, "estimators", i, "estimator", "classes");
      return f;
    });
    if (classifier && this.ests.every((e) => e.methods.has("decision_function"))) this.methods.add("decision_function");
  }
  parts(X) {
    check(this, X);
    return this.ests.map((e, i) => [e, X.map((x) => this.features[i].map((c) => x[c]))]);
  }
  predictProba(X) {
    const k = this.classes.length;
    const proba = X.map(() => new Array(k).fill(0));
    for (const [e, sub] of this.parts(X)) {
      if (e.methods.has("predict_proba")) {
        e.predictProba(sub).forEach((q, r) => e.classes.forEach((c, j) => { proba[r][c] += q[j]; }));
      } else {
        e.predict(sub).forEach((c, r) => { proba[r][c] += 1; });
      }
    }
    const n = this.ests.length;
    return proba.map((row) => row.map((v) => v / n));
  }
  mean(method, X) {
    let acc = null;
    for (const [e, sub] of this.parts(X)) {
      const out = e[method](sub);
      acc = acc === null ? out.map((v) => (typeof v === "number" ? 0 + v : Array.from(v)))
        : acc.map((a, r) => (typeof a === "number" ? a + out[r] : a.map((v, j) => v + out[r][j])));
    }
    const n = this.ests.length;
    return acc.map((a) => (typeof a === "number" ? a / n : a.map((v) => v / n)));
  }
  predict(X) {
    if (this.classes === null) return this.mean("predict", X);
    return this.predictProba(X).map((p) => this.classes[argmax(p)]);
  }
  decisionFunction(X) { return this.mean("decisionFunction", X); }
}

/** numpy's sum of a 1-D float64 array: the first element plus the pairwise sum of the rest. */
function npSum(a) {
  const pairwise = (lo, n) => {
    if (n < 8) { let r = 0; for (let i = 0; i < n; i++) r += a[lo + i]; return r; }
    if (n <= 128) {
      const r = a.slice(lo, lo + 8);
      let i = 8;
      for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] += a[lo + i + j];
      let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
      for (; i < n; i++) res += a[lo + i];
      return res;
    }
    let n2 = Math.floor(n / 2);
    n2 -= n2 % 8;
    return pairwise(lo, n2) + pairwise(lo + n2, n - n2);
  };
  return a.length ? a[0] + pairwise(1, a.length - 1) : 0;
}

class AdaBoost extends Estimator {
  constructor(node, ctx, classifier) {
    super(classifier ? ["predict", "predict_proba", "decision_function"] : ["predict"]);
    base(this, node, ctx);
    this.classes = classifier ? loadClasses(node, ctx, 2) : null;
    this.ests = members(node, ctx);
    this.w = Array.from(ctx.array(node, "estimator_weights", { ndim: 1 }).data);
    if (this.w.length < this.ests.length) throw ctx.fail(`expected at least ${this.ests.length} weights`, "estimator_weights");
    this.wSum = npSum(this.w);
    if (classifier && !(this.wSum > 0)) throw ctx.fail("weights must not sum to 0", "estimator_weights");
    this.ests.forEach((e, i) => {
      if (classifier && JSON.stringify(e.classes) !== JSON.stringify(this.classes)) throw ctx.fail("a child's classes must be the ensemble's", "estimators", i, "estimator", "classes");
    });
  }
  check(X) {
    if (X.every((x) => x.every((v) => typeof v !== "string"))) numeric(X, this);
    else check(this, X);
  }
  decisionFunction(X) {
    this.check(X);
    const k = this.classes.length;
    const acc = X.map(() => new Array(k).fill(0));
    this.ests.forEach((e, i) => {
      const w = this.w[i], other = (-1 / (k - 1)) * w;
      e.predict(X).forEach((p, r) => { for (let c = 0; c < k; c++) acc[r][c] += p === this.classes[c] ? w : other; });
    });
    return acc.map((row) => {
      const d = row.map((v) => v / this.wSum);
      return k === 2 ? -d[0] + d[1] : d;
    });
  }
  predictProba(X) {
    const k = this.classes.length;
    return this.decisionFunction(X).map((d) => softmax(k === 2 ? [-d / 2, d / 2] : d.map((v) => v / (k - 1))));
  }
  predict(X) {
    if (this.classes !== null) {
      return this.decisionFunction(X).map((d) => this.classes[typeof d === "number" ? (d > 0 ? 1 : 0) : argmax(d)]);
    }
    this.check(X);
    const preds = this.ests.map((e) => e.predict(X));
    return X.map((_, r) => {
      const p = preds.map((v) => v[r]);
      const order = p.map((_, i) => i).sort((a, b) => p[a] - p[b] || a - b);
      const cdf = [];
      let s = 0;
      for (const i of order) { s += this.w[i]; cdf.push(s); }
      const half = 0.5 * cdf[cdf.length - 1];
      return p[order[cdf.findIndex((v) => v >= half)]];
    });
  }
}

register(["ada_boost_classifier"], (n, c) => new AdaBoost(n, c, true));
register(["ada_boost_regressor"], (n, c) => new AdaBoost(n, c, false));
register(["voting_classifier"], (n, c) => new VotingClassifier(n, c));
register(["voting_regressor"], (n, c) => new VotingRegressor(n, c));
register(["stacking_classifier"], (n, c) => new Stacking(n, c, true));
register(["stacking_regressor"], (n, c) => new Stacking(n, c, false));
register(["bagging_classifier"], (n, c) => new Bagging(n, c, true));
register(["bagging_regressor"], (n, c) => new Bagging(n, c, false));
