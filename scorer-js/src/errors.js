// Error types, mirroring the Python scorer's (docs/model-format.md, "Loading, validating and errors").

export class ModelsyncScorerError extends Error {}

/** A document that cannot be loaded; `problems` lists [JSON pointer, message] pairs. */
export class InvalidModel extends ModelsyncScorerError {
  constructor(problems, pointer = "") {
    const list = typeof problems === "string" ? [[pointer, problems]] : [...problems];
    const shown = list.slice(0, 10).map(([p, m]) => `${p || "/"}: ${m}`).join("; ");
    const more = list.length > 10 ? ` (+${list.length - 10} more)` : "";
    super(`invalid model: ${shown}${more}`);
    this.name = "InvalidModel";
    this.problems = list;
  }
}

/** A well-formed document naming a model type this scorer does not implement. */
export class UnsupportedModel extends InvalidModel {
  constructor(problems, pointer = "") {
    super(problems, pointer);
    this.name = "UnsupportedModel";
  }
}

/** Input rows that cannot be scored; names the row (from 0) and the feature. */
export class InvalidInput extends ModelsyncScorerError {
  constructor(message, row = null, feature = null) {
    super(message);
    this.name = "InvalidInput";
    this.row = row;
    this.feature = feature;
  }
}

/** The model does not offer this method. */
export class MethodNotSupported extends ModelsyncScorerError {
  constructor(message) {
    super(message);
    this.name = "MethodNotSupported";
  }
}

export function pointerJoin(base, ...parts) {
  let out = base;
  for (const p of parts) out += "/" + String(p).replaceAll("~", "~0").replaceAll("/", "~1");
  return out;
}

export function short(v, limit = 60) {
  let s;
  try {
    s = typeof v === "string" ? `'${v}'` : JSON.stringify(v);
  } catch {
    s = String(v);
  }
  if (s === undefined) s = String(v);
  return s.length > limit ? s.slice(0, limit - 3) + "..." : s;
}
