// XGBoost and LightGBM (docs/format/xgboost.md, docs/format/lightgbm.md): one walk per tree and row.
// XGBoost: float32 inputs, `x < threshold` goes left, leaf values added to the base margin in float32
// (Math.fround after every addition), objective transforms in float32. LightGBM: float64 `x <= threshold`,
// per-split missing_type (0 None, 1 Zero, 2 NaN), categorical bitsets, sums and transforms in double.
import { register } from "../context.js";
import { Estimator, argmax, base, classes as loadClasses, numeric } from "./common.js";
import { loadTrees } from "./trees.js";

const f32 = Math.fround;
const ZERO_THRESHOLD = f32(1e-35);

function leafXgb(t, x) {
  let node = 0;
  while (t.left[node] !== -1) {
    const v = x[t.feature[node]];
    const goLeft = Number.isNaN(v) ? t.missing[node] === 1 : v < t.threshold[node];
    node = goLeft ? t.left[node] : t.right[node];
  }
  return node;
}

class XGBoost extends Estimator {
  constructor(node, ctx, classifier) {
    super(classifier ? ["predict", "predict_proba"] : ["predict"]);
    const p = base(this, node, ctx);
    this.objective = ctx.string(node, "objective");
    this.K = ctx.integer(node, "n_outputs", undefined, 1);
    if (classifier) this.classes = loadClasses(node, ctx);
    this.base = ctx.array(node, "base_margin", { ndim: 1, shape: [this.K] }).data;
    this.trees = loadTrees(node, ctx, p, []);
    if (this.trees.length % this.K) throw ctx.fail(`the number of trees must be a multiple of ${this.K}`, "trees");
  }
  margin(X) {
    const K = this.K;
    return numeric(X, this, { nan: true, inf: true }).map((row) => {
      const x = row.map(f32);
      const m = Array.from(this.base, f32);
      this.trees.forEach((t, i) => { m[i % K] = f32(m[i % K] + t.value[leafXgb(t, x)]); });
      return m;
    });
  }
  transformed(X) {
    const exp32 = (v) => f32(Math.exp(v));
    return this.margin(X).map((m) => {
      switch (this.objective) {
        case "binary:logistic": case "reg:logistic": return f32(1 / f32(exp32(-m[0]) + 1));
        case "count:poisson": case "reg:gamma": case "reg:tweedie": return exp32(m[0]);
        case "multi:softprob": {
          let w = m[0];
          for (const v of m) w = Math.max(v, w);
          const e = m.map((v) => exp32(f32(v - w)));
          let s = 0;
          for (const v of e) s += v;
          return e.map((v) => f32(v / f32(s)));
        }
        case "multi:softmax": return argmax(m);
        default: return m[0];
      }
    });
  }
  predict(X) {
    // a classifier under multi:softmax: the Booster's labels, the first largest margin
    if (this.classes && this.objective === "multi:softmax") return this.margin(X).map((m) => this.classes[argmax(m)]);
    const out = this.transformed(X);
    if (!this.classes) return out;
    return out.map((p) => this.classes[Array.isArray(p) ? argmax(p) : (p > 0.5 ? 1 : 0)]);
  }
  predictProba(X) {
    if (this.objective === "multi:softmax") { // XGBClassifier: scipy's softmax of the margins, in float32
      return this.margin(X).map((m) => {
        let w = m[0];
        for (const v of m) w = Math.max(v, w);
        const e = m.map((v) => f32(Math.exp(f32(v - w))));
        let s = 0;
        for (const v of e) s = f32(s + v);
        return e.map((v) => f32(v / s));
      });
    }
    return this.transformed(X).map((p) => (Array.isArray(p) ? p : [f32(1 - p), p]));
  }
}

function leafLgb(t, x) {
  let node = 0;
  while (t.left[node] !== -1) {
    let v = x[t.feature[node]];
    let goLeft;
    if (t.split !== null && t.split[node] !== -1) {
      const c = Math.trunc(v);
      if (Number.isNaN(v) || c < 0 || c > 255) goLeft = false;
      else goLeft = ((t.bitsets.row(t.split[node])[c >> 3] >> (c & 7)) & 1) === 1;
    } else {
      const mt = t.missingType[node];
      if (Number.isNaN(v) && mt !== 2) v = 0;
      if ((mt === 1 && v >= -ZERO_THRESHOLD && v <= ZERO_THRESHOLD) || (mt === 2 && Number.isNaN(v))) goLeft = t.missing[node] === 1;
      else goLeft = v <= t.threshold[node];
    }
    node = goLeft ? t.left[node] : t.right[node];
  }
  return node;
}

class LightGBM extends Estimator {
  constructor(node, ctx, classifier) {
    super(classifier ? ["predict", "predict_proba", "decision_function"] : ["predict"]);
    const p = base(this, node, ctx);
    this.objective = ctx.string(node, "objective");
    this.K = ctx.integer(node, "n_outputs", undefined, 1);
    this.sigmoid = this.objective === "binary" ? ctx.number(node, "sigmoid") : 1;
    if (classifier) this.classes = loadClasses(node, ctx);
    const cats = new Map((ctx.get(node, "categorical_features", ["array"], [])).map((c) => [c, { length: 256 }]));
    this.trees = loadTrees(node, ctx, p, [], cats.size ? cats : null);
    ctx.get(node, "trees", ["array"]).forEach((tn, i) => {
      this.trees[i].missingType = ctx.child("trees", i).array(tn, "missing_type", { dtype: "int", ndim: 1, shape: [this.trees[i].left.length] }).data;
    });
    if (this.trees.length % this.K) throw ctx.fail(`the number of trees must be a multiple of ${this.K}`, "trees");
  }
  raw(X) {
    const K = this.K;
    return numeric(X, this, { nan: true, inf: true }).map((x) => {
      const r = new Array(K).fill(0);
      this.trees.forEach((t, i) => { r[i % K] += t.value[leafLgb(t, x)]; });
      return r;
    });
  }
  transformed(X) {
    return this.raw(X).map((r) => {
      switch (this.objective) {
        case "binary": case "cross_entropy": return 1 / (1 + Math.exp(-this.sigmoid * r[0]));
        case "poisson": case "gamma": case "tweedie": return Math.exp(r[0]);
        case "multiclass": {
          let w = r[0];
          for (const v of r) w = Math.max(v, w);
          const e = r.map((v) => Math.exp(v - w));
          let s = 0;
          for (const v of e) s += v;
          return e.map((v) => v / s);
        }
        default: return r[0];
      }
    });
  }
  predict(X) {
    if (!this.classes) return this.transformed(X);
    return this.predictProba(X).map((p) => this.classes[argmax(p)]);
  }
  predictProba(X) { return this.transformed(X).map((p) => (Array.isArray(p) ? p : [1 - p, p])); }
  decisionFunction(X) { return this.raw(X).map((r) => (this.K === 1 ? r[0] : r)); }
}

register(["xgboost_classifier"], (n, c) => new XGBoost(n, c, true));
register(["xgboost_booster"], (n, c) => new XGBoost(n, c, false));
register(["lightgbm_classifier"], (n, c) => new LightGBM(n, c, true));
register(["lightgbm_booster"], (n, c) => new LightGBM(n, c, false));
