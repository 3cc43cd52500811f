// Multi-layer perceptrons (docs/format/neural_network.md).
import { Estimator, argmax, base, classes as loadClasses, numeric, softmax } from "./common.js";
import { decodeArray, register } from "../context.js";

const ACT = {
  identity: (z) => z,
  logistic: (z) => 1 / (1 + Math.exp(-z)),
  tanh: Math.tanh,
  relu: (z) => Math.max(z, 0),
  exp: Math.exp,
};

class MLP extends Estimator {
  constructor(node, ctx, classifier) {
    super(classifier ? ["predict", "predict_proba"] : ["predict"]);
    const p = base(this, node, ctx);
    this.classifier = classifier;
    this.activation = ctx.string(node, "activation", undefined, ["identity", "logistic", "tanh", "relu"]);
    this.out = ctx.string(node, "out_activation", undefined, classifier ? ["softmax", "logistic"] : ["identity", "exp"]);
    const coefs = ctx.get(node, "coefs", ["array"]);
    const intercepts = ctx.get(node, "intercepts", ["array"]);
    if (!coefs.length) throw ctx.fail("at least one layer", "coefs");
    if (intercepts.length !== coefs.length) throw ctx.fail(`expected ${coefs.length} arrays`, "intercepts");
    let width = p;
    this.layers = coefs.map((c, l) => {
      const W = decodeArray(c, ctx.child("coefs", l), { ndim: 2, shape: [width, null] });
      if (W.shape[1] < 1) throw ctx.fail("a layer needs at least one unit", "coefs", l);
      const b = decodeArray(intercepts[l], ctx.child("intercepts", l), { ndim: 1, shape: [W.shape[1]] });
      width = W.shape[1];
      return { W: W.rows(), b: b.data, n: width };
    });
    this.width = width;
    if (classifier) {
      this.output = ctx.string(node, "output", undefined, ["binary", "multiclass", "multilabel"]);
      this.classes = loadClasses(node, ctx, 1);
      const k = this.classes.length;
      const last = `${coefs.length - 1}`;
      const want = { binary: ["logistic", 1, k === 2], multiclass: ["softmax", k, k >= 3], multilabel: ["logistic", k, k >= 1] }[this.output];
      if (this.out !== want[0]) throw ctx.fail(`${this.output} output needs out_activation '${want[0]}'`, "out_activation");
      if (!want[2]) throw ctx.fail(`wrong number of classes for ${this.output} output`, "classes");
      if (width !== want[1]) throw ctx.fail(`the last layer needs ${want[1]} units`, "coefs", last);
    }
  }
  forward(X) {
    return numeric(X, this).map((x) => {
      let a = Array.from(x);
      this.layers.forEach(({ W, b, n }, l) => {
        const z = new Array(n).fill(0);
        for (let i = 0; i < a.length; i++) {
          const wi = W[i], ai = a[i];
          for (let j = 0; j < n; j++) z[j] += ai * wi[j];
        }
        for (let j = 0; j < n; j++) z[j] += b[j];
        const last = l === this.layers.length - 1;
        if (last && this.out === "softmax") a = softmax(z);
        else a = z.map(ACT[last ? this.out : this.activation]);
      });
      return a;
    });
  }
  predict(X) {
    return this.forward(X).map((o) => {
      if (!this.classifier) return o.length === 1 ? o[0] : o;
      if (this.output === "binary") return this.classes[o[0] > 0.5 ? 1 : 0];
      if (this.output === "multiclass") return this.classes[argmax(o)];
      return o.map((v) => (v > 0.5 ? 1 : 0));
    });
  }
  predictProba(X) {
    return this.forward(X).map((o) => (this.output === "binary" ? [1 - o[0], o[0]] : o));
  }
}

register(["mlp_classifier"], (n, c) => new MLP(n, c, true));
register(["mlp_regressor"], (n, c) => new MLP(n, c, false));
