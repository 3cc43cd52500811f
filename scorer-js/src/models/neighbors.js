// k-nearest neighbours (docs/format/neighbors.md): scikit-learn's search replayed for every row (its heap,
// brute-force order or the exported kd-tree / ball-tree layout), so that tied neighbours are kept as it keeps
// them. Cosine ties: training-row order (scikit-learn goes through numpy's argpartition there).
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
    this.algorithm = ctx.string(node, "algorithm", "brute", ["brute", "kd_tree", "ball_tree"]);
    this.P = { euclidean: 2, manhattan: 1, chebyshev: Infinity }[this.metric] ?? this.p;
    if (this.algorithm !== "brute") {
      if (this.metric === "cosine" || this.P < 1) throw ctx.fail(`${this.algorithm} needs a true metric`, "algorithm");
      this.loadTree(ctx.get(node, "tree", ["object"]), ctx.child("tree"), N, p);
    } else if (this.metric === "euclidean") {
      this.fitSq = this.fit.map((f) => { let s = 0; for (const v of f) s += v * v; return s; });
    }
  }
  loadTree(t, ctx, N, p) {
    const idx = ctx.array(t, "idx_array", { dtype: "int", ndim: 1, shape: [N] }).data;
    const seen = new Uint8Array(N);
    for (const v of idx) {
      if (v < 0 || v >= N || seen[v]) throw ctx.fail(`must be a permutation of 0..${N - 1}`, "idx_array");
      seen[v] = 1;
    }
    const start = ctx.array(t, "node_start", { dtype: "int", ndim: 1 }).data;
    const M = start.length;
    if (M === 0) throw ctx.fail("needs at least one node", "node_start");
    const end = ctx.array(t, "node_end", { dtype: "int", ndim: 1, shape: [M] }).data;
    const leaf = ctx.array(t, "node_is_leaf", { dtype: "bool", ndim: 1, shape: [M] }).data;
    for (let i = 0; i < M; i++) {
      if (start[i] < 0 || start[i] > end[i] || end[i] > N) throw ctx.fail(`node ${i}: row range is not within 0..${N}`, "node_end", i);
    }
    for (let i = M - 1; i >= 0; i--) {
      if (!leaf[i]) {
        if (2 * i + 2 >= M) throw ctx.fail(`node ${i} is not a leaf but has no children`, "node_is_leaf", i);
        break;
      }
    }
    const kd = this.algorithm === "kd_tree";
    const bounds = ctx.array(t, "node_bounds", { ndim: 3, shape: [kd ? 2 : 1, M, p] }).data;
    this.tree = {
      idx: Array.from(idx), start: Array.from(start), end: Array.from(end), leaf: Array.from(leaf, Boolean),
      lower: Array.from({ length: M }, (_, i) => Array.from(bounds.subarray(i * p, (i + 1) * p))),
      upper: kd ? Array.from({ length: M }, (_, i) => Array.from(bounds.subarray((M + i) * p, (M + i + 1) * p))) : null,
      radius: kd ? null : Array.from(ctx.array(t, "node_radius", { ndim: 1, shape: [M] }).data),
    };
  }
  // reduced distance as scikit-learn's search computes it, feature by feature in order
  rdist(x, f) {
    let s = 0;
    switch (this.metric) {
      case "euclidean": for (let j = 0; j < x.length; j++) { const t = x[j] - f[j]; s += t * t; } return s;
      case "manhattan": for (let j = 0; j < x.length; j++) s += Math.abs(x[j] - f[j]); return s;
      case "chebyshev": for (let j = 0; j < x.length; j++) s = Math.max(s, Math.abs(x[j] - f[j])); return s;
      default: for (let j = 0; j < x.length; j++) s += Math.pow(Math.abs(x[j] - f[j]), this.P); return s;
    }
  }
  toDist(r) {
    if (this.metric === "euclidean") return Math.sqrt(Math.max(r, 0));
    if (this.metric === "minkowski") return Math.pow(Math.max(r, 0), 1 / this.P);
    return r;
  }
  brute(x) {
    const k = this.k;
    let xn = 0;
    if (this.metric === "euclidean") for (const v of x) xn += v * v;
    const tv = new Array(k).fill(DBL_MAX), ti = new Array(k).fill(-1);
    this.fit.forEach((f, i) => {
      let r;
      if (this.metric === "euclidean") {
        let dot = 0;
        for (let j = 0; j < x.length; j++) dot += x[j] * f[j];
        r = Math.max((xn + (-2 * dot)) + this.fitSq[i], 0);
      } else r = this.rdist(x, f);
      heapPush(tv, ti, r, i);
    });
    const hv = new Array(k).fill(DBL_MAX), hi = new Array(k).fill(0);
    for (let s = 0; s < k; s++) heapPush(hv, hi, tv[s], ti[s]);
    simultaneousSort(hv, hi);
    return { idx: hi, dd: hv.map((r) => this.toDist(r)) };
  }
  treeQuery(x) {
    const hv = new Array(this.k).fill(Infinity), hi = new Array(this.k).fill(0);
    this.visit(0, x, hv, hi, this.minRdist(0, x));
    simultaneousSort(hv, hi);
    return { idx: hi, dd: hv.map((r) => (this.metric === "euclidean" ? Math.sqrt(r) : this.metric === "minkowski" ? r ** (1 / this.P) : r)) };
  }
  visit(i, x, hv, hi, bound) {
    const t = this.tree;
    if (bound > hv[0]) return;
    if (t.leaf[i]) {
      for (let s = t.start[i]; s < t.end[i]; s++) heapPush(hv, hi, this.rdist(x, this.fit[t.idx[s]]), t.idx[s]);
      return;
    }
    const c1 = 2 * i + 1, c2 = c1 + 1;
    const b1 = this.minRdist(c1, x), b2 = this.minRdist(c2, x);
    if (b1 <= b2) { this.visit(c1, x, hv, hi, b1); this.visit(c2, x, hv, hi, b2); }
    else { this.visit(c2, x, hv, hi, b2); this.visit(c1, x, hv, hi, b1); }
  }
  minRdist(i, x) {
    const t = this.tree, P = this.P;
    if (this.algorithm === "kd_tree") {
      const lo = t.lower[i], up = t.upper[i];
      let r = 0;
      for (let j = 0; j < x.length; j++) {
        const a = lo[j] - x[j], b = x[j] - up[j];
        const g = (a + Math.abs(a)) + (b + Math.abs(b));
        r = P === Infinity ? Math.max(r, 0.5 * g) : r + Math.pow(0.5 * g, P);
      }
      return r;
    }
    const c = t.lower[i], m = this.metric;
    let s = 0;
    for (let j = 0; j < x.length; j++) {
      const d = x[j] - c[j];
      if (m === "euclidean") s += d * d;
      else if (m === "manhattan") s += Math.abs(d);
      else if (m === "chebyshev") s = Math.max(s, Math.abs(d));
      else s += Math.pow(Math.abs(d), P);
    }
    const dist = m === "euclidean" ? Math.sqrt(s) : m === "minkowski" ? Math.pow(s, 1 / P) : s;
    const md = Math.max(0, dist - t.radius[i]);
    return m === "euclidean" ? md * md : m === "minkowski" ? Math.pow(md, P) : md;
  }
  dist(x, f, i, xu) { // cosine
    const fu = this.fitUnit[i];
    let s = 0;
    for (let j = 0; j < x.length; j++) s += xu[j] * fu[j];
    return Math.min(Math.max(1 - s, 0), 2);
  }
  neighbours(x) {
    let idx, dd;
    if (this.metric === "cosine") {
      const xu = unit(x);
      const d = this.fit.map((f, i) => this.dist(x, f, i, xu));
      idx = d.map((_, i) => i).sort((a, b) => d[a] - d[b] || a - b).slice(0, this.k);
      dd = idx.map((i) => d[i]);
    } else ({ idx, dd } = this.algorithm === "brute" ? this.brute(x) : this.treeQuery(x));
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

const DBL_MAX = 1.7976931348623157e308;

// sklearn/utils/_heap.pyx heap_push: a fixed-size max-heap; a value enters only when < the root
function heapPush(v, ix, val, id) {
  const size = v.length;
  if (val >= v[0]) return;
  let cur = 0;
  for (;;) {
    const l = 2 * cur + 1, r = l + 1;
    let sw;
    if (l >= size) break;
    if (r >= size) { if (v[l] > val) sw = l; else break; }
    else if (v[l] >= v[r]) { if (val < v[l]) sw = l; else break; }
    else if (val < v[r]) sw = r;
    else break;
    v[cur] = v[sw]; ix[cur] = ix[sw]; cur = sw;
  }
  v[cur] = val; ix[cur] = id;
}

// sklearn/utils/_sorting.pyx simultaneous_sort (2-way introsort, insertion sort below 16, not stable)
function simultaneousSort(v, ix) {
  if (v.length) introsort(v, ix, 0, v.length, 2 * Math.floor(Math.log2(v.length)));
}
function swap(v, ix, i, j) {
  [v[i], v[j]] = [v[j], v[i]];
  [ix[i], ix[j]] = [ix[j], ix[i]];
}
function introsort(v, ix, lo, n, maxd) {
  while (n > 15) {
    if (maxd <= 0) { heapsort(v, ix, lo, n); return; }
    maxd -= 1;
    const mid = lo + Math.floor(n / 2), last = lo + n - 1;
    if (v[lo] > v[last]) swap(v, ix, lo, last);
    if (v[last] > v[mid]) { swap(v, ix, last, mid); if (v[lo] > v[last]) swap(v, ix, lo, last); }
    const pivot = v[last];
    let i = lo + 1, j = lo + n - 2;
    for (;;) {
      while (i <= j && v[i] < pivot) i++;
      while (i <= j && v[j] > pivot) j--;
      if (i >= j) break;
      swap(v, ix, i, j); i++; j--;
    }
    swap(v, ix, i, last);
    const p = i - lo;
    introsort(v, ix, lo, p, maxd);
    lo += p + 1; n -= p + 1;
  }
  for (let i = lo + 1; i < lo + n; i++) {
    const tv = v[i], ti = ix[i];
    let j = i;
    while (j > lo && v[j - 1] > tv) { v[j] = v[j - 1]; ix[j] = ix[j - 1]; j--; }
    v[j] = tv; ix[j] = ti;
  }
}
function heapsort(v, ix, lo, n) {
  const sift = (start, end) => {
    let root = start;
    for (;;) {
      const child = root * 2 + 1;
      let m = root;
      if (child < end && v[lo + m] < v[lo + child]) m = child;
      if (child + 1 < end && v[lo + m] < v[lo + child + 1]) m = child + 1;
      if (m === root) break;
      swap(v, ix, lo + root, lo + m); root = m;
    }
  };
  for (let s = Math.floor((n - 2) / 2); ; s--) { sift(s, n); if (s === 0) break; }
  for (let e = n - 1; e > 0; e--) { swap(v, ix, lo, lo + e); sift(0, e); }
}

function unit(x) {
  let s = 0;
  for (const v of x) s += v * v;
  const n = Math.sqrt(s);
  return n === 0 ? Array.from(x) : Array.from(x, (v) => v / n);
}

register(["k_neighbors_classifier"], (n, c) => new KNeighbors(n, c, true));
register(["k_neighbors_regressor"], (n, c) => new KNeighbors(n, c, false));
