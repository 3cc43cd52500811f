// transformed_target_regressor (docs/format/target.md): the regressor's prediction, then the inverse
// steps in order. The function names are the whitelist of scorer/_numpy_funcs.py.
import { Estimator } from "./common.js";
import { register } from "../context.js";
import { FUNCS } from "../numpy_funcs.js";

export const NUMPY_FUNCTIONS = FUNCS; // clip is not among them: it needs constants
const OPS = {
  add: (a, b) => a + b, subtract: (a, b) => a - b, multiply: (a, b) => a * b, divide: (a, b) => a / b,
};

class TransformedTargetRegressor extends Estimator {
  constructor(node, ctx) {
    super(["predict"]);
    this.regressor = ctx.estimator(ctx.get(node, "regressor", ["object"]), "regressor");
    if (!this.regressor.methods.has("predict")) throw ctx.fail(`${this.regressor.typeName} has no predict`, "regressor", "type");
    this.nFeaturesIn = this.regressor.nFeaturesIn;
    const t = ctx.integer(node, "n_targets", undefined, 1);
    this.oneD = ctx.boolean(node, "one_d");
    if (this.oneD && t !== 1) throw ctx.fail("a 1-D target has one column", "one_d");
    this.steps = ctx.get(node, "inverse", ["array"]).map((step, i) => {
      const s = ctx.child("inverse", i);
      const op = s.string(step, "op", undefined, [...Object.keys(OPS), "function"]);
      if (op === "function") {
        const f = NUMPY_FUNCTIONS[s.string(step, "name", undefined, Object.keys(NUMPY_FUNCTIONS))];
        return (row) => row.map((v) => f(v));
      }
      const value = Array.from(s.array(step, "value", { ndim: 1, shape: [t] }).data);
      return (row) => row.map((v, j) => OPS[op](v, value[j]));
    });
  }
  predict(X) {
    return this.regressor.predict(X).map((p) => {
      let row = typeof p === "number" ? [p] : Array.from(p);
      for (const step of this.steps) row = step(row);
      return this.oneD ? row[0] : row;
    });
  }
}

register(["transformed_target_regressor"], (n, c) => new TransformedTargetRegressor(n, c));
