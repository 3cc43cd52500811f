// Composites (docs/format/compose.md): pipeline and column_transformer.
import { InvalidInput } from "../errors.js";
import { Estimator } from "./common.js";
import { register } from "../context.js";

const METHOD_FNS = { predict: "predict", predict_proba: "predictProba", decision_function: "decisionFunction", transform: "transform" };

function child(value, ctx, ...parts) {
  if (value === "passthrough") return null;
  return ctx.estimator(value, ...parts);
}

function name(entry, ctx, seen, ...parts) {
  if (entry === null || typeof entry !== "object" || Array.isArray(entry)) throw ctx.fail("expected an object", ...parts);
  const n = entry.name;
  if (typeof n !== "string" || !n) throw ctx.fail("required non-empty string", ...parts, "name");
  if (seen.has(n)) throw ctx.fail(`duplicate name '${n}'`, ...parts, "name");
  seen.add(n);
  return n;
}

class Pipeline extends Estimator {
  constructor(node, ctx) {
    super([]);
    const steps = ctx.get(node, "steps", ["array"]);
    if (!steps.length) throw ctx.fail("a pipeline needs at least one step", "steps");
    const seen = new Set();
    let width = null;
    this.steps = steps.map((entry, i) => {
      name(entry, ctx, seen, "steps", i);
      if (!Object.prototype.hasOwnProperty.call(entry, "estimator")) throw ctx.fail("required field is missing", "steps", i, "estimator");
      const est = child(entry.estimator, ctx, "steps", i, "estimator");
      if (est !== null) {
        if (i < steps.length - 1 && !est.methods.has("transform")) throw ctx.fail(`${est.typeName} has no transform: only the last step may be a final estimator`, "steps", i, "estimator", "type");
        if (width !== null && est.nFeaturesIn && est.nFeaturesIn !== width) {
          throw ctx.fail(`the previous steps produce ${width} columns, this step expects ${est.nFeaturesIn}`, "steps", i, "estimator", "n_features_in");
        }
        width = Number.isInteger(est.nFeaturesOut) ? est.nFeaturesOut : null;
      }
      return est;
    });
    const first = this.steps.find((s) => s !== null);
    this.nFeaturesIn = first ? first.nFeaturesIn : 0;
    this.nFeaturesOut = width;
    const last = this.steps[this.steps.length - 1];
    this.last = last;
    this.methods = last === null ? new Set(["transform"]) : new Set(last.methods);
    this.classes = last ? last.classes : null;
  }
  head(X) {
    let Y = X;
    for (const s of this.steps.slice(0, -1)) if (s !== null) Y = s.transform(Y);
    return Y;
  }
  final(method, X) {
    if (this.last === null) return this.head(X);
    return this.last[METHOD_FNS[method]](this.head(X));
  }
  predict(X) { return this.final("predict", X); }
  predictProba(X) { return this.final("predict_proba", X); }
  decisionFunction(X) { return this.final("decision_function", X); }
  transform(X) { return this.final("transform", X); }
}

class ColumnTransformer extends Estimator {
  constructor(node, ctx) {
    super(["transform"]);
    const n = ctx.integer(node, "n_features_in", undefined, 1);
    this.nFeaturesIn = n;
    const list = ctx.get(node, "transformers", ["array"]);
    const seen = new Set();
    let out = 0;
    this.parts = list.map((entry, i) => {
      name(entry, ctx, seen, "transformers", i);
      const colsCtx = ctx.child("transformers", i);
      const cols = Array.from(colsCtx.array(entry, "columns", { dtype: "int", ndim: 1 }).data);
      if (!cols.length) throw ctx.fail("must select at least one column", "transformers", i, "columns");
      if (cols.some((c) => c < 0 || c >= n)) throw ctx.fail(`column indices must be in [0, ${n})`, "transformers", i, "columns");
      if (!Object.prototype.hasOwnProperty.call(entry, "estimator")) throw ctx.fail("required field is missing", "transformers", i, "estimator");
      const est = child(entry.estimator, ctx, "transformers", i, "estimator");
      if (est !== null) {
        if (!est.methods.has("transform")) throw ctx.fail(`${est.typeName} has no transform`, "transformers", i, "estimator", "type");
        if (est.nFeaturesIn && est.nFeaturesIn !== cols.length) {
          throw ctx.fail(`selects ${cols.length} columns, the transformer expects ${est.nFeaturesIn}`, "transformers", i, "columns");
        }
      }
      const weight = colsCtx.number(entry, "weight", null);
      const w = est === null ? cols.length : est.nFeaturesOut;
      out = out === null || !Number.isInteger(w) ? null : out + w;
      return { cols, est, weight };
    });
    this.nFeaturesOut = out;
  }
  transform(X) {
    const blocks = this.parts.map(({ cols, est, weight }) => {
      const sub = X.map((x, r) => {
        if (x.length !== this.nFeaturesIn) throw new InvalidInput(`row ${r} has ${x.length} values, column_transformer expects ${this.nFeaturesIn}`, r);
        return cols.map((c) => x[c]);
      });
      let Y = est === null ? sub : est.transform(sub);
      if (weight !== null) Y = Y.map((y) => Array.from(y, (v) => (typeof v === "number" ? v * weight : v)));
      return Y;
    });
    return X.map((_, r) => blocks.flatMap((b) => Array.from(b[r])));
  }
}

register(["pipeline"], (n, c) => new Pipeline(n, c));
register(["column_transformer"], (n, c) => new ColumnTransformer(n, c));
