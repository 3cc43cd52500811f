// Linear models (docs/format/linear.md).
import { register } from "../context.js";
import { Estimator, argmax, base, classes as loadClasses, dot, expit, numeric, ovrNormalise, softmax } from "./common.js";

/** coef (1-D or 2-D, p columns) and intercept (one per coef row), as arrays of rows. */
export function loadCoef(node, ctx, p, classifier, nClasses = 0) {
  const coef = ctx.array(node, "coef");
  if (classifier ? coef.ndim !== 2 : coef.ndim !== 1 && coef.ndim !== 2) {
    throw ctx.fail(`expected a ${classifier ? "2-D" : "1-D or 2-D"} array, got ${coef.ndim}-D`, "coef");
  }
  if (coef.shape[coef.ndim - 1] !== p) throw ctx.fail(`coef has ${coef.shape[coef.ndim - 1]} columns but n_features_in is ${p}`, "coef");
  const rows = coef.ndim === 1 ? 1 : coef.shape[0];
  if (classifier) {
    const want = nClasses === 2 ? 1 : nClasses;
    if (rows !== want) throw ctx.fail(`coef needs ${want} row(s) for ${nClasses} classes, got ${rows}`, "coef");
  } else if (rows === 0) throw ctx.fail("coef has no rows", "coef");
  const intercept = ctx.array(node, "intercept", { ndim: 1 });
  if (intercept.shape[0] !== rows) throw ctx.fail(`intercept has ${intercept.shape[0]} values, coef has ${rows} row(s)`, "intercept");
  const W = coef.ndim === 1 ? [coef.data] : coef.rows();
  return { W, b: Array.from(intercept.data), oneD: coef.ndim === 1 };
}

function scores(est, X) {
  return numeric(X, est).map((x) => est.W.map((w, k) => dot(x, w) + est.b[k]));
}

class LinearRegressor extends Estimator {
  constructor(node, ctx) {
    super(["predict"]);
    const p = base(this, node, ctx);
    Object.assign(this, loadCoef(node, ctx, p, false));
  }
  predict(X) {
    const s = scores(this, X);
    return this.oneD ? s.map((r) => r[0]) : s;
  }
}

const PROBA_ALLOWED = {
  logistic_regression: ["multinomial", "ovr"],
  sgd_classifier: [null, "ovr", "modified_huber"],
  linear_classifier: [null, "multinomial", "ovr", "modified_huber"],
  linear_discriminant_analysis: ["multinomial", "ovr"],
};

export class LinearClassifier extends Estimator {
  constructor(node, ctx) {
    super(["predict", "decision_function"]);
    const p = base(this, node, ctx);
    this.classes = loadClasses(node, ctx);
    if (new Set(this.classes).size !== this.classes.length) throw ctx.fail("classes must be distinct", "classes");
    Object.assign(this, loadCoef(node, ctx, p, true, this.classes.length));
    const allowed = PROBA_ALLOWED[node.type] || [null];
    this.probability = ctx.get(node, "probability", ["string"], null);
    if (!allowed.includes(this.probability)) {
      throw ctx.fail(allowed.some(Boolean) ? `${node.type} supports probability ${JSON.stringify(allowed.filter(Boolean))}` : `${node.type} has no predict_proba`, "probability");
    }
    if (this.probability !== null) this.methods.add("predict_proba");
  }
  decisionFunction(X) {
    const s = scores(this, X);
    return this.W.length === 1 ? s.map((r) => r[0]) : s;
  }
  predict(X) {
    return scores(this, X).map((s) => this.classes[s.length === 1 ? (s[0] > 0 ? 1 : 0) : argmax(s)]);
  }
  predictProba(X) {
    return scores(this, X).map((s) => {
      if (this.probability === "modified_huber") {
        const q = s.map((d) => (Math.min(Math.max(d, -1), 1) + 1) / 2);
        return q.length === 1 ? [1 - q[0], q[0]] : ovrNormalise(q);
      }
      if (s.length === 1) {
        const p = expit(s[0]);
        return [1 - p, p];
      }
      return this.probability === "multinomial" ? softmax(s) : ovrNormalise(s.map(expit));
    });
  }
}

register(["linear_regressor", "linear_regression", "ridge", "lasso", "elastic_net", "sgd_regressor", "linear_svr"],
  (node, ctx) => new LinearRegressor(node, ctx));
register(["linear_classifier", "logistic_regression", "ridge_classifier", "sgd_classifier", "linear_svc", "perceptron"],
  (node, ctx) => new LinearClassifier(node, ctx));
