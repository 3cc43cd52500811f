// k-means (docs/format/cluster.md).
import { Estimator, base, dot, numeric } from "./common.js";
import { register } from "../context.js";

class KMeans extends Estimator {
  constructor(node, ctx) {
    super(["predict", "transform"]);
    const p = base(this, node, ctx);
    const c = ctx.array(node, "cluster_centers", { ndim: 2, shape: [null, p] });
    if (c.shape[0] < 1) throw ctx.fail("at least one centre", "cluster_centers");
    this.centers = c.rows();
    this.cc = this.centers.map((v) => dot(v, v));
    this.nFeaturesOut = c.shape[0];
  }
  predict(X) {
    return numeric(X, this).map((x) => {
      let best = 0, bestScore = Infinity;
      this.centers.forEach((c, i) => {
        const s = this.cc[i] + -2 * dot(x, c);
        if (s < bestScore) { bestScore = s; best = i; }
      });
      return best;
    });
  }
  transform(X) {
    return numeric(X, this).map((x) => {
      const xx = dot(x, x);
      return this.centers.map((c, i) => Math.sqrt(Math.max(-2 * dot(x, c) + xx + this.cc[i], 0)));
    });
  }
}

register(["k_means"], (n, c) => new KMeans(n, c));
