// Trees and tree ensembles (docs/format/trees.md): decision trees, forests, extra trees, gradient
// boosting, HistGradientBoosting (categorical splits) and isolation forests. Bit-exact: float32 inputs
// via Math.fround, NaN routed by missing_go_to_left, sums in tree order.
import { InvalidInput } from "../errors.js";
import { MAX_TREES_PER_ENSEMBLE, MAX_TREE_NODES, decodeLabels, register } from "../context.js";
import { Estimator, argmax, base, classes as loadClasses, expit, numeric, softmax } from "./common.js";

const MAX_TREES = 100_000;
const MAX_DEPTH = 4096;
const MAX_OUTPUTS = 100_000;

/** One tree: parallel arrays, checked (children after parents, one parent each, depth, features). */
function loadTree(node, ctx, p, valueShape, categorical = null, missingRequired = true) {
  if (node === null || typeof node !== "object" || Array.isArray(node)) throw ctx.fail("a tree must be an object");
  const left = ctx.array(node, "children_left", { dtype: "int", ndim: 1 }).data;
  const m = left.length;
  if (m < 1) throw ctx.fail("a tree needs at least one node", "children_left");
  const right = ctx.array(node, "children_right", { dtype: "int", ndim: 1, shape: [m] }).data;
  const feature = ctx.array(node, "feature", { dtype: "int", ndim: 1, shape: [m] }).data;
  const threshold = ctx.array(node, "threshold", { ndim: 1, shape: [m], finite: false }).data;
  const missing = missingRequired || ctx.has(node, "missing_go_to_left")
    ? ctx.array(node, "missing_go_to_left", { dtype: "int", ndim: 1, shape: [m] }).data : new Float64Array(m);
  const value = ctx.array(node, "value", { ndim: valueShape.length + 1, shape: [m, ...valueShape] });
  const parents = new Int32Array(m);
  const depth = new Int32Array(m);
  depth[0] = 1;
  for (let i = 0; i < m; i++) {
    const l = left[i], r = right[i];
    if ((l === -1) !== (r === -1)) throw ctx.fail("a node is a leaf exactly when both children are -1", "children_right", i);
    if (l === -1) continue;
    if (!(l > i && l < m)) throw ctx.fail(`child index ${l} must be greater than its parent's index ${i} (trees are stored parent first) and below ${m}`, "children_left", i);
    if (!(r > i && r < m)) throw ctx.fail(`child index ${r} must be greater than its parent's index ${i} (trees are stored parent first) and below ${m}`, "children_right", i);
    for (const [c, key] of [[l, "children_left"], [r, "children_right"]]) {
      if (parents[c]++ > 0) throw ctx.fail(`node ${c} has more than one parent`, key, i);
      depth[c] = depth[i] + 1;
      if (depth[c] > MAX_DEPTH) throw ctx.fail(`tree deeper than ${MAX_DEPTH}`, key, i);
    }
    if (!(feature[i] >= 0 && feature[i] < p)) throw ctx.fail(`feature index ${feature[i]} is out of range [0, ${p})`, "feature", i);
    if (Number.isNaN(threshold[i])) throw ctx.fail("threshold must not be NaN at a split", "threshold", i);
  }
  for (let i = 0; i < m; i++) if (missing[i] !== 0 && missing[i] !== 1) throw ctx.fail("must be 0 or 1", "missing_go_to_left", i);
  for (let i = 1; i < m; i++) if (parents[i] !== 1) throw ctx.fail(`node ${i} is not the child of any split`, "children_left");
  // typed integer arrays for the walk (every value was checked to fit above)
  const tree = { left: Int32Array.from(left), right: Int32Array.from(right), feature: Int32Array.from(feature, (f) => Math.max(f, 0)),
    threshold, missing: Uint8Array.from(missing), value: value.data, width: valueShape.reduce((a, b) => a * b, 1), split: null, bitsets: null };
  if (ctx.has(node, "category_split")) {
    if (!categorical) throw ctx.fail("only HistGradientBoosting trees have categorical splits", "category_split");
    const split = ctx.array(node, "category_split", { dtype: "int", ndim: 1, shape: [m] }).data;
    const bits = ctx.array(node, "category_bitsets", { dtype: "int", ndim: 2, shape: [null, 32] });
    const b = bits.shape[0];
    for (let i = 0; i < m; i++) {
      const isCat = left[i] !== -1 && categorical.has(feature[i]);
      if (split[i] === -1) {
        if (isCat) throw ctx.fail("a split on a categorical column needs a bitset", "category_split", i);
        continue;
      }
      if (!isCat || !(split[i] >= 0 && split[i] < b)) throw ctx.fail(`must be -1 or a row of category_bitsets for a categorical split`, "category_split", i);
      const ncat = categorical.get(feature[i]).length;
      const row = bits.row(split[i]);
      for (let c = ncat; c < 256; c++) {
        if ((row[c >> 3] >> (c & 7)) & 1) throw ctx.fail(`the bitset of node ${i} holds category index ${c}, the column has ${ncat} categories`, "category_split", i);
      }
    }
    tree.split = split;
    tree.bitsets = bits;
  } else if (categorical) {
    for (let i = 0; i < m; i++) {
      if (left[i] !== -1 && categorical.has(feature[i])) throw ctx.fail("a split on a categorical column needs category_split", "category_split", i);
    }
  }
  return tree;
}

/** The leaf a row (already converted: float32-rounded or category indices) reaches. */
function leaf(t, x) {
  let node = 0;
  const { left, right, feature, threshold, missing, split } = t;
  while (left[node] !== -1) {
    const v = x[feature[node]];
    let goLeft;
    if (Number.isNaN(v)) goLeft = missing[node] === 1;
    else if (split !== null && split[node] !== -1) {
      const row = t.bitsets.row(split[node]);
      goLeft = ((row[v >> 3] >> (v & 7)) & 1) === 1;
    } else goLeft = v <= threshold[node];
    node = goLeft ? left[node] : right[node];
  }
  return node;
}

export function loadTrees(node, ctx, p, valueShape, categorical = null, missingRequired = true) {
  const list = ctx.get(node, "trees", ["array"]);
  if (!list.length) throw ctx.fail("at least one tree is needed", "trees");
  if (list.length > MAX_TREES) throw ctx.fail(`more than ${MAX_TREES} trees`, "trees");
  if (list.length > MAX_TREES_PER_ENSEMBLE) throw ctx.fail(`${list.length} trees, over the limit of ${MAX_TREES_PER_ENSEMBLE}`, "trees");
  // the node limit from the lengths the trees declare, before any tree is decoded
  let nodes = 0;
  for (const t of list) {
    const cl = t && typeof t === "object" ? t.children_left : null;
    nodes += Array.isArray(cl) ? cl.length : cl && Array.isArray(cl.shape) && Number.isInteger(cl.shape[0]) ? cl.shape[0] : 0;
  }
  if (nodes > MAX_TREE_NODES) throw ctx.fail(`the trees hold ${nodes} nodes, over the limit of ${MAX_TREE_NODES}`, "trees");
  return list.map((t, i) => loadTree(t, ctx.child("trees", i), p, valueShape, categorical, missingRequired));
}

/** Inputs as scikit-learn's check_array(dtype=float32): NaN routed or refused, infinities refused. */
function float32Rows(X, est, { nan, inf }) {
  const rows = numeric(X, est, { nan, inf: true });
  rows.forEach((x, r) => {
    for (let j = 0; j < x.length; j++) {
      const f = Math.fround(x[j]);
      if (!inf && (f === Infinity || f === -Infinity)) {
        throw new InvalidInput(`row ${r}, ${est.columnName(j)}: ${x[j]} is ${Number.isFinite(x[j]) ? "too large for float32" : "infinite"}; ${est.typeName} does not accept it`, r, est.columnName(j));
      }
      x[j] = f;
    }
  });
  return rows;
}

// ---------------------------------------------------------------- decision trees and forests
class TreeClassifier extends Estimator {
  constructor(node, ctx, forest) {
    super(["predict", "predict_proba"]);
    const p = base(this, node, ctx);
    this.q = ctx.integer(node, "n_outputs", 1, 1, MAX_OUTPUTS);
    this.allowNan = ctx.boolean(node, "allow_nan", true);
    const cls = ctx.get(node, "classes", ["array"]);
    if (this.q === 1) this.classes = loadClasses(node, ctx, 1);
    else {
      if (cls.length !== this.q || !cls.every(Array.isArray)) throw ctx.fail(`expected ${this.q} class lists`, "classes");
      this.classes = cls.map((c, k) => {
        ctx.checkClasses(c.length, "classes", k);
        return decodeLabels(c, ctx.child("classes", k));
      });
    }
    this.perOutput = this.q === 1 ? [this.classes] : this.classes;
    this.c = Math.max(...this.perOutput.map((c) => c.length));
    this.trees = forest ? loadTrees(node, ctx, p, [this.q, this.c]) : [loadTree(ctx.get(node, "tree", ["object"]), ctx.child("tree"), p, [this.q, this.c])];
  }
  proba(X) {
    const T = this.trees.length;
    return float32Rows(X, this, { nan: this.allowNan, inf: false }).map((x) => {
      const acc = new Float64Array(this.q * this.c);
      for (const t of this.trees) {
        const off = leaf(t, x) * t.width;
        for (let k = 0; k < acc.length; k++) acc[k] += t.value[off + k];
      }
      return this.perOutput.map((cl, k) => Array.from(acc.subarray(k * this.c, k * this.c + cl.length), (v) => (T === 1 ? v : v / T)));
    });
  }
  predictProba(X) {
    const P = this.proba(X);
    if (this.q === 1) return P.map((p) => p[0]);
    return this.perOutput.map((_, k) => P.map((p) => p[k]));
  }
  predict(X) {
    return this.proba(X).map((p) => {
      const labels = p.map((pk, k) => this.perOutput[k][argmax(pk)]);
      return this.q === 1 ? labels[0] : labels;
    });
  }
}

class TreeRegressor extends Estimator {
  constructor(node, ctx, forest) {
    super(["predict"]);
    const p = base(this, node, ctx);
    this.q = ctx.integer(node, "n_outputs", 1, 1, MAX_OUTPUTS);
    this.allowNan = ctx.boolean(node, "allow_nan", true);
    this.trees = forest ? loadTrees(node, ctx, p, [this.q]) : [loadTree(ctx.get(node, "tree", ["object"]), ctx.child("tree"), p, [this.q])];
  }
  predict(X) {
    const T = this.trees.length;
    return float32Rows(X, this, { nan: this.allowNan, inf: false }).map((x) => {
      const acc = new Float64Array(this.q);
      for (const t of this.trees) {
        const off = leaf(t, x) * this.q;
        for (let k = 0; k < this.q; k++) acc[k] += t.value[off + k];
      }
      const out = Array.from(acc, (v) => (T === 1 ? v : v / T));
      return this.q === 1 ? out[0] : out;
    });
  }
}

// ---------------------------------------------------------------- gradient boosting
/** Shared by GradientBoosting* and HistGradientBoosting*: raw scores -> methods. */
class Boosting extends Estimator {
  constructor(node, ctx, classifier) {
    super(classifier ? ["predict", "predict_proba", "decision_function"] : ["predict"]);
    this.p = base(this, node, ctx);
    this.classifier = classifier;
    if (classifier) this.classes = loadClasses(node, ctx, 2);
  }
  decisionFunction(X) { return this.raw(X).map((r) => (this.K === 1 ? r[0] : r)); }
  predict(X) {
    if (!this.classifier) return this.raw(X).map((r) => this.link(r[0]));
    return this.raw(X).map((r) => this.classes[this.K === 1 ? (this.positive(r[0]) ? 1 : 0) : argmax(r)]);
  }
  predictProba(X) {
    return this.raw(X).map((r) => {
      if (this.K > 1) return softmax(r);
      const p = expit(this.loss === "exponential" ? 2 * r[0] : r[0]);
      return [1 - p, p];
    });
  }
}

class GradientBoosting extends Boosting {
  constructor(node, ctx, classifier) {
    super(node, ctx, classifier);
    const p = this.p;
    this.loss = ctx.string(node, "loss", undefined, classifier ? ["log_loss", "exponential"] : ["squared_error", "absolute_error", "huber", "quantile"]);
    if (this.loss === "exponential" && this.classes.length !== 2) throw ctx.fail("exponential loss needs two classes", "loss");
    this.K = classifier && this.classes.length > 2 ? this.classes.length : 1;
    this.lr = ctx.number(node, "learning_rate");
    this.init = Array.from(ctx.array(node, "init", { ndim: 1, shape: [this.K] }).data);
    this.trees = loadTrees(node, ctx, p, [], null, false); // no NaN reaches them: no missing flags needed
    if (this.trees.length % this.K) throw ctx.fail(`the number of trees must be a multiple of ${this.K}`, "trees");
  }
  raw(X) {
    const K = this.K, S = this.trees.length / K;
    return float32Rows(X, this, { nan: false, inf: false }).map((x) => {
      const raw = this.init.slice();
      for (let s = 0; s < S; s++) {
        for (let k = 0; k < K; k++) {
          const t = this.trees[s * K + k];
          raw[k] = raw[k] + this.lr * t.value[leaf(t, x)];
        }
      }
      return raw;
    });
  }
  link(raw) { return raw; }
  positive(raw) { return raw >= 0; } // note >=: scikit-learn's GradientBoostingClassifier
}

class HistGradientBoosting extends Boosting {
  constructor(node, ctx, classifier) {
    super(node, ctx, classifier);
    const p = this.p;
    this.loss = ctx.string(node, "loss", undefined, classifier ? ["log_loss"] : ["squared_error", "absolute_error", "quantile", "poisson", "gamma"]);
    this.K = classifier && this.classes.length > 2 ? this.classes.length : 1;
    this.baseline = Array.from(ctx.array(node, "baseline", { ndim: 1, shape: [this.K] }).data);
    this.categorical = new Map();
    const cats = ctx.get(node, "categorical_features", ["array"], []);
    cats.forEach((entry, i) => {
      const c = ctx.child("categorical_features", i);
      const col = c.integer(entry, "column", undefined, 0, p - 1);
      if (this.categorical.has(col)) throw c.fail("column listed twice", "column");
      const values = c.get(entry, "categories", ["array"]);
      if (!values.length || values.length > 255) throw c.fail("1 to 255 categories", "categories");
      const allStr = values.every((v) => typeof v === "string"), allNum = values.every((v) => typeof v === "number");
      if (!allStr && !allNum) throw c.fail("categories must be all strings or all numbers", "categories");
      if (new Set(values).size !== values.length) throw c.fail("categories must be distinct", "categories");
      const index = new Map(values.map((v, k) => [v, k]));
      this.categorical.set(col, values);
      this.categorical.get(col).index = index;
      this.categorical.get(col).strings = allStr;
    });
    this.trees = loadTrees(node, ctx, p, [], this.categorical);
    if (this.trees.length % this.K) throw ctx.fail(`the number of trees must be a multiple of ${this.K}`, "trees");
  }
  rows(X) {
    return X.map((row, r) => {
      if (row.length !== this.nFeaturesIn) throw new InvalidInput(`row ${r} has ${row.length} values, ${this.typeName} expects ${this.nFeaturesIn}`, r);
      const x = new Float64Array(row.length);
      for (let j = 0; j < row.length; j++) {
        const v = row[j];
        const cats = this.categorical.get(j);
        if (cats) {
          const k = (typeof v === "string") === cats.strings ? cats.index.get(v) : undefined;
          x[j] = k === undefined ? NaN : k;
        } else if (v === null || v === undefined) x[j] = NaN;
        else if (typeof v === "boolean") x[j] = v ? 1 : 0;
        else if (typeof v === "number") x[j] = v;
        else throw new InvalidInput(`row ${r}, ${this.columnName(j)}: expected a number, got '${v}'`, r, this.columnName(j));
      }
      return x;
    });
  }
  raw(X) {
    const K = this.K, I = this.trees.length / K;
    return this.rows(X).map((x) => {
      const raw = this.baseline.map((b) => 0 + b);
      for (let i = 0; i < I; i++) {
        for (let k = 0; k < K; k++) {
          const t = this.trees[i * K + k];
          raw[k] = raw[k] + t.value[leaf(t, x)];
        }
      }
      return raw;
    });
  }
  link(raw) { return this.loss === "poisson" || this.loss === "gamma" ? Math.exp(raw) : raw; }
  positive(raw) { return raw > 0; } // note >, unlike GradientBoosting
}

// ---------------------------------------------------------------- isolation forest
function averagePathLength(n) {
  if (n <= 1) return 0;
  if (n === 2) return 1;
  return 2 * (Math.log(n - 1) + 0.5772156649015329) - 2 * (n - 1) / n;
}

class IsolationForest extends Estimator {
  constructor(node, ctx) {
    super(["predict", "decision_function"]);
    const p = base(this, node, ctx);
    this.maxSamples = ctx.integer(node, "max_samples", undefined, 1);
    this.offset = ctx.number(node, "offset");
    this.trees = loadTrees(node, ctx, p, []);
    this.denom = this.trees.length * averagePathLength(this.maxSamples);
  }
  scoreSamples(X) {
    return float32Rows(X, this, { nan: true, inf: true }).map((x) => {
      let depths = 0;
      for (const t of this.trees) depths += t.value[leaf(t, x)];
      return this.denom !== 0 ? -(2 ** -(depths / this.denom)) : -0.5;
    });
  }
  decisionFunction(X) { return this.scoreSamples(X).map((s) => s - this.offset); }
  predict(X) { return this.decisionFunction(X).map((d) => (d < 0 ? -1 : 1)); }
}

register(["decision_tree_classifier"], (n, c) => new TreeClassifier(n, c, false));
register(["random_forest_classifier", "extra_trees_classifier"], (n, c) => new TreeClassifier(n, c, true));
register(["decision_tree_regressor"], (n, c) => new TreeRegressor(n, c, false));
register(["random_forest_regressor", "extra_trees_regressor"], (n, c) => new TreeRegressor(n, c, true));
register(["gradient_boosting_classifier"], (n, c) => new GradientBoosting(n, c, true));
register(["gradient_boosting_regressor"], (n, c) => new GradientBoosting(n, c, false));
register(["hist_gradient_boosting_classifier"], (n, c) => new HistGradientBoosting(n, c, true));
register(["hist_gradient_boosting_regressor"], (n, c) => new HistGradientBoosting(n, c, false));
register(["isolation_forest"], (n, c) => new IsolationForest(n, c));
