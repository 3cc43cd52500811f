// The document envelope (docs/model-format.md): parsing, format version, input schema, the Model with
// scikit-learn's methods, and validation (envelope, consistency, sha256, test vectors re-scored).
import { InvalidInput, InvalidModel, MethodNotSupported, UnsupportedModel, pointerJoin, short } from "./errors.js";
import { contentSha256, decodeUtf8, jsonType, MAX_DOCUMENT_BYTES, parseStrict } from "./json.js";
import { LoadContext, loadEstimator, REGISTRY } from "./context.js";
import "./models/index.js";

export const FORMAT_VERSION = "1.0";
export const METHODS = ["predict", "predict_proba", "decision_function", "transform"];
export const TASKS = ["classification", "regression", "clustering", "outlier_detection", "transform"];
const DEFAULT_TOLERANCE = 1e-9;
const MAX_TOLERANCE = 1e-3;
const MAX_TEST_VECTORS = 10_000;
const MAX_REPORTED_ROWS = 10;
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const VERSION_PATTERN = /^(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})$/;
const SHA256_PATTERN = /^[0-9a-f]{64}$/;
const CREATED_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const METHOD_NAMES = { predict: "predict", predict_proba: "predictProba", decision_function: "decisionFunction", transform: "transform" };

/** The estimator type names this scorer implements. */
export function supportedTypes() {
  return [...REGISTRY.keys()].sort();
}

// ---------------------------------------------------------------- parsing
export function parseDocument(source) {
  if (typeof source === "string") {
    if (source.length > MAX_DOCUMENT_BYTES) throw new InvalidModel(`document is larger than ${MAX_DOCUMENT_BYTES} bytes`, "");
    if (source.charCodeAt(0) === 0xfeff) throw new InvalidModel("not valid JSON: a byte order mark is not allowed", "");
    return parseStrict(source);
  }
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) {
    return parseStrict(decodeUtf8(source instanceof ArrayBuffer ? new Uint8Array(source) : source));
  }
  if (source !== null && typeof source === "object" && !Array.isArray(source)) return source;
  throw new InvalidModel(`document must be a JSON object, got ${jsonType(source)}`, "");
}

export function checkFormatVersion(doc) {
  if (!Object.prototype.hasOwnProperty.call(doc, "format_version")) throw new InvalidModel("required field is missing", "/format_version");
  const fv = doc.format_version;
  if (typeof fv !== "string" || !VERSION_PATTERN.test(fv)) {
    throw new InvalidModel(`must be a string "MAJOR.MINOR" such as "${FORMAT_VERSION}", got ${short(fv)}`, "/format_version");
  }
  const major = Number(fv.split(".")[0]);
  if (major !== 1) {
    throw new InvalidModel(`format_version '${fv}' is not supported: this scorer reads format 1.x (documents of another `
      + `major version need ${major > 1 ? "a newer" : "an older"} scorer)`, "/format_version");
  }
  return fv;
}

function isObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function envelopeProblems(doc, full) {
  const problems = [];
  const need = (parent, key, ptr, kind, required) => {
    if (!Object.prototype.hasOwnProperty.call(parent, key)) {
      if (required) problems.push([pointerJoin(ptr, key), "required field is missing"]);
      return null;
    }
    const v = parent[key];
    const ok = kind === "object" ? isObject(v) : kind === "array" ? Array.isArray(v) : typeof v === kind;
    if (!ok) {
      problems.push([pointerJoin(ptr, key), `must be ${kind === "object" ? "an object" : kind === "array" ? "an array" : `a ${kind}`}, got ${jsonType(v)}`]);
      return null;
    }
    return v;
  };
  const meta = need(doc, "metadata", "", "object", full);
  if (meta) {
    const name = need(meta, "name", "/metadata", "string", full);
    if (name !== null && !NAME_PATTERN.test(name)) {
      problems.push(["/metadata/name", `${short(name)} is not a valid name: 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit`]);
    }
    need(meta, "description", "/metadata", "string", false);
    const created = need(meta, "created", "/metadata", "string", full);
    if (created !== null && !CREATED_PATTERN.test(created)) {
      problems.push(["/metadata/created", `must be an RFC 3339 timestamp such as 2024-05-01T12:00:00Z, got ${short(created)}`]);
    }
    const producer = need(meta, "producer", "/metadata", "object", full);
    if (producer) {
      need(producer, "name", "/metadata/producer", "string", true);
      need(producer, "version", "/metadata/producer", "string", true);
    }
    need(meta, "sklearn_version", "/metadata", "string", false);
  }
  const output = need(doc, "output", "", "object", full);
  if (output) {
    const task = need(output, "task", "/output", "string", true);
    if (task !== null && !TASKS.includes(task)) problems.push(["/output/task", `must be one of ${JSON.stringify(TASKS)}, got ${short(task)}`]);
    const methods = need(output, "methods", "/output", "array", true);
    if (methods) {
      if (!methods.length) problems.push(["/output/methods", "must list at least one method"]);
      methods.forEach((m, i) => {
        if (!METHODS.includes(m)) problems.push([`/output/methods/${i}`, `must be one of ${JSON.stringify(METHODS)}, got ${short(m)}`]);
        else if (methods.indexOf(m) !== i) problems.push([`/output/methods/${i}`, `${m} is listed twice`]);
      });
      if (task === "classification" && !methods.includes("predict")) problems.push(["/output/methods", "a classifier must offer predict"]);
    }
    const classes = need(output, "classes", "/output", "array", task === "classification");
    if (classes) {
      if (task !== null && task !== "classification") problems.push(["/output/classes", `only classification models have classes (task is ${task})`]);
      else if (!classes.length) problems.push(["/output/classes", "must not be empty"]);
    }
  }
  const tv = need(doc, "test_vectors", "", "object", full);
  if (tv) {
    need(tv, "inputs", "/test_vectors", "array", true);
    need(tv, "outputs", "/test_vectors", "object", true);
    const tol = need(tv, "tolerance", "/test_vectors", "number", false);
    if (tol !== null && !(tol >= 0 && tol <= MAX_TOLERANCE)) problems.push(["/test_vectors/tolerance", `must be between 0 and ${MAX_TOLERANCE}, got ${tol}`]);
  }
  const sha = need(doc, "sha256", "", "string", full);
  if (sha !== null && !SHA256_PATTERN.test(sha)) problems.push(["/sha256", "must be 64 lowercase hexadecimal characters"]);
  return problems;
}

function sha256Problems(doc) {
  const sha = doc.sha256;
  if (typeof sha !== "string" || !SHA256_PATTERN.test(sha)) return [];
  let actual;
  try {
    actual = contentSha256(doc);
  } catch (e) {
    if (e instanceof InvalidModel) return e.problems.map(([p, m]) => [p, `cannot compute the canonical form: ${m}`]);
    throw e;
  }
  return actual === sha ? [] : [["/sha256", "does not match the document's content: it was changed after export or damaged in transit"]];
}

// ---------------------------------------------------------------- input schema
function featureList(doc) {
  if (!Object.prototype.hasOwnProperty.call(doc, "input")) return [null, [["/input", "required field is missing"]]];
  const inp = doc.input;
  if (!isObject(inp)) return [null, [["/input", `must be an object, got ${jsonType(inp)}`]]];
  const raw = inp.features;
  if (!Array.isArray(raw)) return [null, [["/input/features", raw == null ? "required array is missing" : `must be an array, got ${jsonType(raw)}`]]];
  if (!raw.length) return [null, [["/input/features", "a model needs at least one input feature"]]];
  const problems = [];
  const features = [];
  const seen = new Set();
  let formed = true;
  raw.forEach((f, i) => {
    const ptr = `/input/features/${i}`;
    if (!isObject(f)) { problems.push([ptr, `a feature must be an object, got ${jsonType(f)}`]); formed = false; return; }
    const name = f.name;
    if (typeof name !== "string" || !name) { problems.push([ptr + "/name", "required non-empty string"]); formed = false; return; }
    if (seen.has(name)) { problems.push([ptr + "/name", `duplicate feature name ${short(name)}`]); formed = false; }
    seen.add(name);
    const kind = f.type === undefined ? "numeric" : f.type;
    if (kind !== "numeric" && kind !== "categorical") { problems.push([ptr + "/type", `must be 'numeric' or 'categorical', got ${short(kind)}`]); formed = false; return; }
    let cats = f.categories;
    if (cats != null) {
      if (kind !== "categorical") { problems.push([ptr + "/categories", "only categorical features have categories"]); cats = null; }
      else if (!Array.isArray(cats) || !cats.every((c) => typeof c === "string" || typeof c === "number")) {
        problems.push([ptr + "/categories", "must be an array of strings or numbers"]); cats = null;
      } else if (new Set(cats.map((c) => typeof c + ":" + c)).size !== cats.length) {
        problems.push([ptr + "/categories", "categories must be distinct"]);
      }
    }
    features.push({ name, type: kind, categories: cats ?? null });
  });
  return [formed ? features : null, problems];
}

function isMissing(v) {
  return v === null || v === undefined || (typeof v === "number" && Number.isNaN(v));
}

/** Rows in any accepted form -> matrix (array of row arrays) in feature order. */
export function toMatrix(X, features) {
  const names = features.map((f) => f.name);
  let rows;
  if (Array.isArray(X)) {
    if (X.length && isObject(X[0]) && !ArrayBuffer.isView(X[0])) {
      rows = X.map((rec, r) => {
        if (!isObject(rec)) throw new InvalidInput(`row ${r}: expected an object keyed by feature name`, r);
        checkNames(Object.keys(rec), names, r);
        return names.map((n) => rec[n]);
      });
    } else {
      rows = X.map((row, r) => {
        if (!Array.isArray(row) && !ArrayBuffer.isView(row)) throw new InvalidInput(`row ${r}: expected a list of ${names.length} values in feature order`, r);
        if (row.length !== names.length) throw new InvalidInput(`row ${r} has ${row.length} values, the model expects ${names.length} (${names.join(", ")})`, r);
        return Array.from(row);
      });
    }
  } else if (isObject(X)) {
    checkNames(Object.keys(X), names, null);
    const cols = names.map((n) => X[n]);
    if (cols.every((c) => Array.isArray(c) || ArrayBuffer.isView(c))) {
      const n = cols[0].length;
      cols.forEach((c, j) => { if (c.length !== n) throw new InvalidInput(`column ${short(names[j])} has ${c.length} values, expected ${n}`, null, names[j]); });
      rows = [];
      for (let r = 0; r < n; r++) rows.push(cols.map((c) => c[r]));
    } else if (cols.some((c) => Array.isArray(c))) {
      throw new InvalidInput("an object of columns needs a list for every feature");
    } else rows = [cols];
  } else {
    throw new InvalidInput(`expected rows (lists or objects) or an object of columns, got ${jsonType(X)}`);
  }
  return rows.map((row, r) => row.map((v, j) => {
    const f = features[j];
    if (f.type === "categorical") {
      if (isMissing(v)) return null;
      if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") return v;
      throw new InvalidInput(`row ${r}, feature ${short(f.name)}: cannot use ${jsonType(v)} as a category`, r, f.name);
    }
    if (isMissing(v)) return NaN;
    if (typeof v === "number") return v;
    if (typeof v === "boolean") return v ? 1 : 0;
    throw new InvalidInput(`row ${r}, feature ${short(f.name)}: expected a number, got ${short(v)}`, r, f.name);
  }));
}

function checkNames(given, names, row) {
  const where = row === null ? "" : `row ${row}: `;
  const missing = names.filter((n) => !given.includes(n));
  if (missing.length) throw new InvalidInput(`${where}missing feature(s) ${missing.slice(0, 8).join(", ")}`, row, missing[0]);
  const extra = given.filter((n) => !names.includes(n));
  if (extra.length) throw new InvalidInput(`${where}unknown feature(s) ${extra.slice(0, 8).join(", ")}; the model expects ${names.join(", ")}`, row, extra[0]);
}

// ---------------------------------------------------------------- Model
export class Model {
  constructor(doc, estimator, features) {
    this.document = doc;
    this.estimator = estimator;
    this.features = features;
    this.metadata = isObject(doc.metadata) ? doc.metadata : {};
    this.name = typeof this.metadata.name === "string" ? this.metadata.name : "";
    this.formatVersion = typeof doc.format_version === "string" ? doc.format_version : "";
    this.sha256 = typeof doc.sha256 === "string" ? doc.sha256 : null;
    const output = isObject(doc.output) ? doc.output : {};
    this.task = typeof output.task === "string" ? output.task : "";
    const supported = METHODS.filter((m) => estimator.methods.has(m));
    this.methods = Array.isArray(output.methods) ? METHODS.filter((m) => output.methods.includes(m) && supported.includes(m)) : supported;
  }
  get featureNames() { return this.features.map((f) => f.name); }
  get typeName() { return this.estimator.typeName; }
  get classes() { return this.estimator.classes ?? null; }
  supports(method) { return this.methods.includes(method); }
  /** Call a method by its document name (predict, predict_proba, decision_function, transform). */
  call(method, X) {
    if (!this.methods.includes(method)) {
      throw new MethodNotSupported(`model '${this.name || this.typeName}' has no ${method}; it offers ${this.methods.join(", ") || "no method"}`);
    }
    return this.estimator[METHOD_NAMES[method]](toMatrix(X, this.features));
  }
  predict(X) { return this.call("predict", X); }
  predictProba(X) { return this.call("predict_proba", X); }
  decisionFunction(X) { return this.call("decision_function", X); }
  transform(X) { return this.call("transform", X); }
  /** The Python scorer's names, for code ported from it. */
  predict_proba(X) { return this.predictProba(X); }
  decision_function(X) { return this.decisionFunction(X); }
}

function labelsEqual(a, b) {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => labelsEqual(x, b[i]));
  }
  return sameLabel(a, b);
}

function sameLabel(a, b) {
  if (typeof a === "string" || typeof b === "string") return a === b;
  if (typeof a === "boolean" || typeof b === "boolean") return a === b;
  if (isMissing(a) || isMissing(b)) return isMissing(a) && isMissing(b);
  return a === b;
}

function consistencyProblems(doc, features, est) {
  const problems = [];
  if (est.nFeaturesIn && est.nFeaturesIn !== features.length) {
    problems.push(["/input/features", `the estimator expects ${est.nFeaturesIn} features, input declares ${features.length}`]);
  }
  const output = doc.output;
  if (!isObject(output)) return problems;
  if (Array.isArray(output.methods)) {
    output.methods.forEach((m, i) => {
      if (METHODS.includes(m) && !est.methods.has(m)) problems.push([`/output/methods/${i}`, `${est.typeName} has no ${m}`]);
    });
  }
  const classes = output.classes;
  if (Array.isArray(classes) && classes.length) {
    if (est.classes == null) problems.push(["/output/classes", `${est.typeName} has no classes`]);
    else if (!labelsEqual(est.classes, classes)) problems.push(["/output/classes", `does not match the estimator's classes ${short(est.classes, 120)}`]);
  } else if (output.task === "classification" && est.classes == null) {
    problems.push(["/estimator", `${est.typeName} is not a classifier but output.task is classification`]);
  }
  return problems;
}

function build(doc, full) {
  const problems = envelopeProblems(doc, full);
  let unsupported = false;
  const [features, featureProblems] = featureList(doc);
  problems.push(...featureProblems);
  let estimator = null;
  if (!Object.prototype.hasOwnProperty.call(doc, "estimator")) problems.push(["/estimator", "required field is missing"]);
  else {
    try {
      estimator = loadEstimator(doc.estimator, new LoadContext("/estimator"));
    } catch (e) {
      if (!(e instanceof InvalidModel)) throw e;
      unsupported = e instanceof UnsupportedModel;
      problems.push(...e.problems);
    }
  }
  if (!features || !estimator) return [null, problems, unsupported];
  problems.push(...consistencyProblems(doc, features, estimator));
  return [new Model(doc, estimator, features), problems, unsupported];
}

function raise(problems, unsupported) {
  if (problems.length) throw unsupported ? new UnsupportedModel(problems) : new InvalidModel(problems);
}

/**
 * Load a model document (JSON text, UTF-8 bytes or a parsed object) for scoring: parsing rules, limits,
 * format version, input schema and every estimator node. Does not re-score the test vectors.
 */
export function loadModel(source, { verifySha256 = false } = {}) {
  const doc = parseDocument(source);
  checkFormatVersion(doc);
  const [model, problems, unsupported] = build(doc, false);
  if (verifySha256) problems.push(...(doc.sha256 !== undefined ? sha256Problems(doc) : [["/sha256", "required field is missing"]]));
  raise(problems, unsupported);
  return model;
}

/** Fully check a document (envelope, semantics, limits, sha256, test vectors re-scored); returns the Model. */
export function validateModel(source) {
  const doc = parseDocument(source);
  checkFormatVersion(doc);
  const [model, problems, unsupported] = build(doc, true);
  problems.push(...sha256Problems(doc));
  if (model) problems.push(...checkTestVectors(model));
  raise(problems, unsupported);
  return model;
}

// ---------------------------------------------------------------- test vectors
export function checkTestVectors(model) {
  const tv = model.document.test_vectors;
  if (!isObject(tv)) return [["/test_vectors", "required object is missing: a model must prove what it predicts"]];
  const { inputs, outputs } = tv;
  if (!Array.isArray(inputs) || !inputs.length) return [["/test_vectors/inputs", "must be a non-empty array of rows"]];
  if (inputs.length > MAX_TEST_VECTORS) return [["/test_vectors/inputs", `at most ${MAX_TEST_VECTORS} rows`]];
  if (!isObject(outputs) || !Object.keys(outputs).length) return [["/test_vectors/outputs", "must be an object with at least one method's outputs"]];
  const tol = tv.tolerance === undefined ? DEFAULT_TOLERANCE : tv.tolerance;
  if (typeof tol !== "number" || !(tol >= 0 && tol <= MAX_TOLERANCE)) return [["/test_vectors/tolerance", `must be a number between 0 and ${MAX_TOLERANCE}`]];
  const problems = [];
  inputs.forEach((row, r) => { if (!Array.isArray(row)) problems.push([`/test_vectors/inputs/${r}`, "a row must be an array of values in feature order"]); });
  if (problems.length) return problems;
  let X;
  try {
    X = toMatrix(inputs, model.features);
  } catch (e) {
    if (!(e instanceof InvalidInput)) throw e;
    return [["/test_vectors/inputs" + (e.row !== null ? `/${e.row}` : ""), e.message]];
  }
  const declared = isObject(model.document.output) ? model.document.output.methods : null;
  if (Array.isArray(declared)) {
    for (const m of declared) {
      if (METHODS.includes(m) && !(m in outputs)) problems.push([`/test_vectors/outputs/${m}`, "missing: every method in output.methods needs test vector outputs"]);
    }
  }
  for (const [method, want] of Object.entries(outputs)) {
    const ptr = pointerJoin("/test_vectors/outputs", method);
    if (!METHODS.includes(method)) { problems.push([ptr, `unknown method ${short(method)}; expected one of ${JSON.stringify(METHODS)}`]); continue; }
    if (Array.isArray(declared) && !declared.includes(method)) { problems.push([ptr, `${method} is not listed in output.methods`]); continue; }
    if (!model.methods.includes(method)) continue; // reported by the consistency checks
    let got;
    try {
      got = model.estimator[METHOD_NAMES[method]](X);
    } catch (e) {
      if (!(e instanceof InvalidInput)) throw e;
      problems.push([ptr, `${method} failed on the test vector inputs: ${e.message}`]);
      continue;
    }
    problems.push(...compareOutputs(method, got, want, tol, ptr));
  }
  return problems;
}

/** The largest |got - want| over nested outputs, or a string describing the first mismatch in kind/shape. */
export function outputDifference(got, want, tol) {
  if (Array.isArray(want) || Array.isArray(got)) {
    if (!Array.isArray(want) || !Array.isArray(got) && !ArrayBuffer.isView(got)) return { bad: true, diff: Infinity, shape: true };
    if (got.length !== want.length) return { bad: true, diff: Infinity, shape: true };
    let diff = 0, bad = false, shape = false;
    for (let i = 0; i < want.length; i++) {
      const d = outputDifference(got[i], want[i], tol);
      diff = Math.max(diff, d.diff); bad ||= d.bad; shape ||= d.shape;
    }
    return { bad, diff, shape };
  }
  if (typeof want === "number" && typeof got === "number") {
    const d = Math.abs(got - want);
    if (Number.isNaN(got) || Number.isNaN(want)) return { bad: true, diff: Infinity };
    return { bad: !(d <= tol * Math.max(1, Math.abs(want))), diff: d };
  }
  if (want === null) return { bad: !(typeof got === "number" && Number.isNaN(got)), diff: 0 };
  return { bad: !sameLabel(got, want), diff: 0 };
}

/** The shape of a rectangular nested array (null when ragged). */
function shapeOf(a) {
  if (!Array.isArray(a) && !ArrayBuffer.isView(a)) return [];
  if (!a.length) return [0];
  const inner = a.map(shapeOf);
  const first = inner[0];
  if (inner.some((s) => s === null || s.join("x") !== first.join("x"))) return null;
  return [a.length, ...first];
}

function compareOutputs(name, got, want, tol, ptr) {
  if (!Array.isArray(want)) return [[ptr, `${name}: expected outputs must be an array`]];
  if (!Array.isArray(got) || got.length !== want.length) {
    return [[ptr, `${name}: expected ${want.length} rows, scorer gave ${Array.isArray(got) ? got.length : jsonType(got)}`]];
  }
  const gs = shapeOf(got), ws = shapeOf(want);
  if (gs === null || ws === null || gs.join("x") !== ws.join("x")) {
    return [[ptr, `${name}: expected shape (${ws ? ws.join(", ") : "not rectangular"}), scorer gave (${gs ? gs.join(", ") : "?"})`]];
  }
  const problems = [];
  let bad = 0;
  for (let r = 0; r < want.length; r++) {
    const d = outputDifference(got[r], want[r], tol);
    if (!d.bad) continue;
    bad++;
    if (bad <= MAX_REPORTED_ROWS) {
      const extra = d.shape ? " (shapes differ)" : Number.isFinite(d.diff) && d.diff > 0 ? ` (differs by ${d.diff.toPrecision(3)}, tolerance ${tol})` : "";
      problems.push([`${ptr}/${r}`, `${name} of row ${r}: expected ${short(want[r], 80)}, scorer gave ${short(got[r], 80)}${extra}`]);
    }
  }
  if (bad > MAX_REPORTED_ROWS) problems.push([ptr, `${name}: ${bad} of ${want.length} rows differ (first ${MAX_REPORTED_ROWS} listed)`]);
  return problems;
}
