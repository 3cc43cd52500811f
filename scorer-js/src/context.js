// Loading context: where we are in the document (a JSON pointer), typed field access, array decoding
// (plain lists and base64 / base64-zlib blocks) and the document-wide budgets of docs/model-format.md#limits.
import { InvalidModel, UnsupportedModel, pointerJoin, short } from "./errors.js";
import { jsonType } from "./json.js";
import { inflateZlib } from "./inflate.js";

export const MAX_ARRAY_ELEMENTS = 50_000_000;
export const MAX_ARRAY_NDIM = 8;
export const MAX_TOTAL_ELEMENTS = 100_000_000;
export const MAX_DECODED_BYTES = 512 * 1024 * 1024;
export const MAX_ESTIMATOR_DEPTH = 16;
// docs/model-format.md#cost-limits (the Python scorer's defaults, scorer.Limits)
export const MAX_CLASSES = 50_000; // classes of one classifier
export const MAX_TREES_PER_ENSEMBLE = 20_000; // trees of one ensemble
export const MAX_TREE_NODES = 2_000_000; // tree nodes of one ensemble, from the declared lengths
const MAX_SAFE_INTEGER = 2 ** 53;

const DTYPES = {
  float64: { size: 8, kind: "f" }, float32: { size: 4, kind: "f" }, int64: { size: 8, kind: "i" },
  int32: { size: 4, kind: "i" }, int16: { size: 2, kind: "i" }, uint8: { size: 1, kind: "u" }, bool: { size: 1, kind: "b" },
};
export const ARRAY_DTYPES = Object.keys(DTYPES);
const BLOCK_KEYS = ["encoding", "dtype", "shape", "data"];

/** Registry of node types: type name -> loader(node, ctx) returning an estimator object. */
export const REGISTRY = new Map();
export function register(names, loader) {
  for (const n of names) REGISTRY.set(n, loader);
}

/** A decoded array: `data` (Float64Array for float dtypes, Int32Array / Float64Array for integers) and `shape`. */
export class NDArray {
  constructor(data, shape) {
    this.data = data;
    this.shape = shape;
  }
  get size() { return this.data.length; }
  get ndim() { return this.shape.length; }
  /** Row r of a 2-D array (a view). */
  row(r) {
    const w = this.shape[1];
    return this.data.subarray(r * w, (r + 1) * w);
  }
  rows() {
    const out = [];
    for (let r = 0; r < this.shape[0]; r++) out.push(this.row(r));
    return out;
  }
}

export class LoadContext {
  constructor(pointer = "/estimator", budget = null, depth = 0) {
    this.pointer = pointer;
    this.budget = budget || { elements: MAX_TOTAL_ELEMENTS, bytes: MAX_DECODED_BYTES };
    this.depth = depth;
  }
  child(...parts) { return new LoadContext(pointerJoin(this.pointer, ...parts), this.budget, this.depth); }
  nested(...parts) {
    if (this.depth + 1 > MAX_ESTIMATOR_DEPTH) {
      throw new InvalidModel(`estimators nested deeper than ${MAX_ESTIMATOR_DEPTH}`, pointerJoin(this.pointer, ...parts));
    }
    return new LoadContext(pointerJoin(this.pointer, ...parts), this.budget, this.depth + 1);
  }
  fail(message, ...parts) { return new InvalidModel(message, pointerJoin(this.pointer, ...parts)); }

  has(node, key) { return Object.prototype.hasOwnProperty.call(node, key); }

  get(node, key, kinds = null, def = undefined, choices = null) {
    if (node === null || typeof node !== "object" || Array.isArray(node)) {
      throw new InvalidModel(`expected an object, got ${jsonType(node)}`, this.pointer);
    }
    if (!this.has(node, key)) {
      if (def === undefined) throw this.fail("required field is missing", key);
      return def;
    }
    const v = node[key];
    if (kinds !== null) {
      const ok = kinds.some((k) => (k === "integer" ? Number.isInteger(v) : k === "array" ? Array.isArray(v)
        : k === "object" ? v !== null && typeof v === "object" && !Array.isArray(v) : typeof v === k));
      if (!ok) throw this.fail(`expected ${kinds.join(" or ")}, got ${jsonType(v)}`, key);
    }
    if (choices !== null && !choices.some((c) => c === v)) {
      throw this.fail(`must be one of ${JSON.stringify(choices)}, got ${short(v)}`, key);
    }
    return v;
  }
  string(node, key, def = undefined, choices = null) { return this.get(node, key, ["string"], def, choices); }
  boolean(node, key, def = undefined) { return this.get(node, key, ["boolean"], def); }
  number(node, key, def = undefined, finite = true) {
    const v = this.get(node, key, ["number"], def);
    if (v === null || v === def) return v;
    if (finite && !Number.isFinite(v)) throw this.fail("must be a finite number", key);
    return v;
  }
  integer(node, key, def = undefined, minimum = null, maximum = MAX_SAFE_INTEGER) {
    const v = this.get(node, key, ["integer"], def);
    if (v === null || v === def) return v;
    if (minimum !== null && v < minimum) throw this.fail(`must be >= ${minimum}`, key);
    if (maximum !== null && v > maximum) throw this.fail(`must be <= ${maximum}`, key);
    return v;
  }
  labels(node, key) {
    const raw = this.get(node, key, ["array"]);
    this.checkClasses(raw.length, key);
    return decodeLabels(raw, this.child(key));
  }
  /** Refuse more classes than the limit, before anything per class is decoded. */
  checkClasses(n, ...parts) {
    if (n > MAX_CLASSES) throw this.fail(`${n} classes, over the limit of ${MAX_CLASSES}`, ...parts);
  }
  takeBudget(n, nbytes) {
    this.budget.elements -= n;
    this.budget.bytes -= nbytes;
    if (this.budget.elements < 0) throw new InvalidModel(`document holds more than ${MAX_TOTAL_ELEMENTS} array elements`, this.pointer);
    if (this.budget.bytes < 0) throw new InvalidModel(`document's arrays decode to more than ${MAX_DECODED_BYTES} bytes`, this.pointer);
  }

  /**
   * Decode node[key] into an NDArray of `dtype` ("float64" | "int" | "bool"); `shape` entries may be null
   * (any). Float arrays must be finite unless `finite` is false.
   */
  array(node, key, { dtype = "float64", ndim = null, shape = null, finite = true } = {}, def = undefined) {
    if (node === null || typeof node !== "object" || Array.isArray(node)) {
      throw new InvalidModel(`expected an object, got ${jsonType(node)}`, this.pointer);
    }
    if (!this.has(node, key)) {
      if (def === undefined) throw this.fail("required array is missing", key);
      return def;
    }
    return decodeArray(node[key], this.child(key), { dtype, ndim, shape, finite });
  }

  /** Load a child estimator node (counts towards the nesting limit). */
  estimator(value, ...parts) {
    const ctx = this.nested(...parts);
    return loadEstimator(value, ctx);
  }
}

export function loadEstimator(node, ctx) {
  if (node === null || typeof node !== "object" || Array.isArray(node)) {
    throw new InvalidModel(`an estimator must be an object, got ${jsonType(node)}`, ctx.pointer);
  }
  const type = node.type;
  if (typeof type !== "string") throw ctx.fail("required string field is missing", "type");
  const loader = REGISTRY.get(type);
  if (!loader) {
    throw new UnsupportedModel(`unsupported model type ${short(type)}; supported: ${[...REGISTRY.keys()].sort().join(", ")}`,
      pointerJoin(ctx.pointer, "type"));
  }
  const est = loader(node, ctx);
  est.typeName = type;
  if (est.nFeaturesIn && Object.prototype.hasOwnProperty.call(node, "feature_names")) {
    const names = node.feature_names;
    if (!Array.isArray(names) || names.length !== est.nFeaturesIn || !names.every((n) => typeof n === "string")) {
      throw ctx.fail(`must be a list of ${est.nFeaturesIn} strings`, "feature_names");
    }
    est.featureNames = names.slice();
  }
  return est;
}

export function decodeLabels(raw, ctx) {
  if (!Array.isArray(raw)) throw new InvalidModel(`labels must be a list, got ${jsonType(raw)}`, ctx.pointer);
  if (!raw.length) throw new InvalidModel("labels must not be empty", ctx.pointer);
  const types = new Set(raw.map((v) => typeof v));
  if (types.size === 1 && (types.has("string") || types.has("boolean") || types.has("number"))) {
    if (types.has("number") && !raw.every((v) => Number.isFinite(v) && Math.abs(v) <= MAX_SAFE_INTEGER)) {
      throw new InvalidModel("labels must be finite numbers", ctx.pointer);
    }
    return raw.slice();
  }
  throw new InvalidModel("labels must be all strings, all booleans or all numbers", ctx.pointer);
}

// ---------------------------------------------------------------- arrays
function base64Bytes(text) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw new Error("not base64");
  if (typeof atob === "function") {
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  throw new Error("no base64 decoder in this runtime");
}

export function decodeArray(value, ctx, { dtype = "float64", ndim = null, shape = null, finite = true } = {}) {
  let out;
  if (Array.isArray(value)) out = decodeList(value, ctx, dtype);
  else if (value !== null && typeof value === "object") out = convertBlock(decodeBlock(value, ctx), ctx, dtype);
  else throw ctx.fail(`expected an array (JSON list or base64 block), got ${jsonType(value)}`);
  if (ndim !== null && out.ndim !== ndim) {
    if (!(out.size === 0 && Array.isArray(value))) throw ctx.fail(`expected a ${ndim}-D array, got ${out.ndim}-D`);
    const dims = [];
    for (let i = 0; i < ndim; i++) dims.push(shape && shape[i] != null ? shape[i] : 0);
    out = new NDArray(out.data, dims.reduce((a, b) => a * b, 1) === 0 ? dims : new Array(ndim).fill(0));
  }
  if (shape !== null && (shape.length !== out.ndim || shape.some((s, i) => s !== null && s !== out.shape[i]))) {
    throw ctx.fail(`expected shape ${shape.map((s) => (s === null ? "*" : s)).join("x")}, got ${out.shape.join("x") || "a scalar"}`);
  }
  if (finite && dtype === "float64") {
    for (let i = 0; i < out.data.length; i++) if (!Number.isFinite(out.data[i])) throw ctx.fail("must hold only finite numbers");
  }
  return out;
}

function decodeList(value, ctx, dtype) {
  const shape = [value.length];
  let level = value;
  while (level.length) {
    const lists = level.filter((v) => Array.isArray(v)).length;
    if (!lists) break;
    if (lists !== level.length) throw ctx.fail("not a rectangular array: a level mixes lists and values");
    const len = level[0].length;
    if (!level.every((v) => v.length === len)) throw ctx.fail(`not a rectangular array at depth ${shape.length}`);
    shape.push(len);
    if (shape.length > MAX_ARRAY_NDIM) throw ctx.fail(`array has more than ${MAX_ARRAY_NDIM} dimensions`);
    if (shape.reduce((a, b) => a * b, 1) > MAX_ARRAY_ELEMENTS) throw ctx.fail(`array longer than ${MAX_ARRAY_ELEMENTS} elements`);
    level = level.flat();
  }
  const n = level.length;
  ctx.takeBudget(n, n * 8);
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = level[i];
    if (dtype === "bool") {
      if (typeof v !== "boolean") throw ctx.fail(`expected booleans (bool), found ${jsonType(v)}`);
      data[i] = v ? 1 : 0;
    } else if (dtype === "int") {
      if (!Number.isInteger(v)) throw ctx.fail(`expected integers (int), found ${jsonType(v)}`);
      data[i] = v;
    } else {
      if (typeof v !== "number") throw ctx.fail(`expected numbers (float64), found ${jsonType(v)}`);
      data[i] = v;
    }
  }
  return new NDArray(data, shape);
}

function decodeBlock(block, ctx) {
  const extra = Object.keys(block).filter((k) => !BLOCK_KEYS.includes(k));
  if (extra.length) throw ctx.fail(`unknown keys in array block: ${JSON.stringify(extra.sort())}`);
  const missing = BLOCK_KEYS.filter((k) => !(k in block)).sort();
  if (missing.length) throw ctx.fail(`array block needs ${missing.join(", ")}`, missing[0]);
  const { encoding, dtype, shape, data } = block;
  if (encoding !== "base64" && encoding !== "base64-zlib") {
    throw ctx.fail(`encoding must be one of ["base64", "base64-zlib"], got ${short(encoding)}`, "encoding");
  }
  if (typeof dtype !== "string" || !Object.prototype.hasOwnProperty.call(DTYPES, dtype)) {
    throw ctx.fail(`dtype must be one of ${JSON.stringify(ARRAY_DTYPES)}, got ${short(dtype)}`, "dtype");
  }
  if (!Array.isArray(shape) || shape.length > MAX_ARRAY_NDIM || !shape.every((s) => Number.isInteger(s) && s >= 0)) {
    throw ctx.fail(`shape must be a list of at most ${MAX_ARRAY_NDIM} non-negative integers`, "shape");
  }
  const n = shape.reduce((a, b) => a * b, 1);
  if (n > MAX_ARRAY_ELEMENTS) throw ctx.fail(`declared shape holds ${n} elements, over the limit of ${MAX_ARRAY_ELEMENTS}`, "shape");
  if (typeof data !== "string") throw ctx.fail(`data must be a base64 string, got ${jsonType(data)}`, "data");
  const { size, kind } = DTYPES[dtype];
  const nbytes = n * size;
  const want = 4 * Math.floor((nbytes + 2) / 3);
  if (encoding === "base64" && data.length !== want) {
    throw ctx.fail(`data holds ${data.length} base64 characters, shape [${shape}] x ${dtype} needs ${want}`, "data");
  }
  ctx.takeBudget(n, nbytes); // before decoding: a zlib bomb is refused before it inflates
  let raw;
  try {
    raw = base64Bytes(data);
    if (encoding === "base64-zlib") raw = inflateZlib(raw, nbytes);
  } catch (e) {
    throw ctx.fail(`data is not valid ${encoding}: ${e.message}`, "data");
  }
  if (raw.length !== nbytes) throw ctx.fail(`data holds ${raw.length} bytes, shape [${shape}] x ${dtype} needs ${nbytes}`, "data");
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    switch (dtype) {
      case "float64": out[i] = dv.getFloat64(8 * i, true); break;
      case "float32": out[i] = dv.getFloat32(4 * i, true); break;
      case "int64": {
        const v = dv.getBigInt64(8 * i, true);
        if (v > 2n ** 53n || v < -(2n ** 53n)) throw ctx.fail("int64 values beyond 2^53 are not supported", "data");
        out[i] = Number(v);
        break;
      }
      case "int32": out[i] = dv.getInt32(4 * i, true); break;
      case "int16": out[i] = dv.getInt16(2 * i, true); break;
      case "uint8": out[i] = raw[i]; break;
      default:
        if (raw[i] > 1) throw ctx.fail("bool data must hold only bytes 0 and 1", "data");
        out[i] = raw[i];
    }
  }
  const arr = new NDArray(out, shape.slice());
  arr.kind = kind;
  arr.dtype = dtype;
  return arr;
}

function convertBlock(arr, ctx, dtype) {
  if (dtype === "float64") return arr; // every dtype converts to float64 exactly (int64 checked above)
  if (dtype === "int") {
    if (arr.kind === "f") throw ctx.fail(`expected int values, got ${arr.dtype}`);
    return arr;
  }
  // bool
  if (arr.kind === "f") throw ctx.fail(`expected bool values, got ${arr.dtype}`);
  for (const v of arr.data) if (v !== 0 && v !== 1) throw ctx.fail(`expected bool values, got ${arr.dtype}`);
  return arr;
}
