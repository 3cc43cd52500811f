// Strict JSON (RFC 8259: no duplicate keys, no NaN literals, no overflowing numbers, bounded depth),
// RFC 8785 canonical bytes and SHA-256, without any Node-only API.
import { InvalidModel } from "./errors.js";

export const MAX_DOCUMENT_BYTES = 64 * 1024 * 1024;
export const MAX_NESTING_DEPTH = 64;

function fail(msg) {
  throw new InvalidModel(`not valid JSON: ${msg}`, "");
}

/** Parse strict JSON text; the root must be an object. Recursion is bounded by MAX_NESTING_DEPTH. */
export function parseStrict(text) {
  const bigIntegers = [];
  const path = [];
  let i = 0;
  const n = text.length;
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };
  const value = (depth) => {
    ws();
    if (i >= n) fail("unexpected end of text");
    const c = text[i];
    if (c === "{") {
      if (depth >= MAX_NESTING_DEPTH) throw new InvalidModel(`JSON nested deeper than ${MAX_NESTING_DEPTH}`, "");
      i++;
      const obj = {};
      const seen = new Set();
      ws();
      if (text[i] === "}") { i++; return obj; }
      for (;;) {
        ws();
        if (text[i] !== '"') fail(`expected a string key at offset ${i}`);
        const key = string();
        path.push(key);
        if (seen.has(key)) fail(`duplicate key '${key}' in an object`);
        seen.add(key);
        ws();
        if (text[i] !== ":") fail(`expected ':' at offset ${i}`);
        i++;
        const v = value(depth + 1);
        path.pop();
        Object.defineProperty(obj, key, { value: v, enumerable: true, writable: true, configurable: true });
        ws();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === "}") { i++; return obj; }
        fail(`expected ',' or '}' at offset ${i}`);
      }
    }
    if (c === "[") {
      if (depth >= MAX_NESTING_DEPTH) throw new InvalidModel(`JSON nested deeper than ${MAX_NESTING_DEPTH}`, "");
      i++;
      const arr = [];
      ws();
      if (text[i] === "]") { i++; return arr; }
      for (;;) {
        path.push(arr.length);
        arr.push(value(depth + 1));
        path.pop();
        ws();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === "]") { i++; return arr; }
        fail(`expected ',' or ']' at offset ${i}`);
      }
    }
    if (c === '"') return string();
    if (text.startsWith("true", i)) { i += 4; return true; }
    if (text.startsWith("false", i)) { i += 5; return false; }
    if (text.startsWith("null", i)) { i += 4; return null; }
    if (text.startsWith("NaN", i) || text.startsWith("Infinity", i) || text.startsWith("-Infinity", i)) {
      fail("NaN is not valid JSON (strict JSON has no NaN or Infinity)");
    }
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m) fail(`unexpected character at offset ${i}`);
    i += m[0].length;
    const num = Number(m[0]);
    if (!Number.isFinite(num)) fail(`number ${m[0]} overflows a double`);
    if (!m[2] && !m[3] && Math.abs(num) > MAX_SAFE) bigIntegers.push(path.map((p) => "/" + String(p).replaceAll("~", "~0").replaceAll("/", "~1")).join(""));
    return num;
  };
  const string = () => {
    i++; // opening quote
    let out = "";
    let start = i;
    for (;;) {
      if (i >= n) fail("unterminated string");
      const c = text.charCodeAt(i);
      if (c === 0x22) { out += text.slice(start, i); i++; return out; }
      if (c < 0x20) fail(`control character in a string at offset ${i}`);
      if (c === 0x5c) {
        out += text.slice(start, i);
        const e = text[i + 1];
        const simple = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" }[e];
        if (simple !== undefined) { out += simple; i += 2; }
        else if (e === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
          out += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
          i += 6;
        } else fail(`bad escape at offset ${i}`);
        start = i;
      } else i++;
    }
  };
  const root = value(0);
  ws();
  if (i !== n) fail(`extra data at offset ${i}`);
  if (root === null || typeof root !== "object" || Array.isArray(root)) {
    throw new InvalidModel(`document must be a JSON object, got ${jsonType(root)}`, "");
  }
  if (bigIntegers.length) BIG_INTEGERS.set(root, bigIntegers);
  return root;
}

export function jsonType(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  if (typeof v === "boolean") return "boolean";
  if (typeof v === "string") return "string";
  return typeof v === "object" ? "object" : typeof v;
}

/** UTF-8 bytes -> text, refusing a byte order mark and invalid UTF-8. */
export function decodeUtf8(bytes) {
  if (bytes.length > MAX_DOCUMENT_BYTES) {
    throw new InvalidModel(`document is larger than ${MAX_DOCUMENT_BYTES} bytes`, "");
  }
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    throw new InvalidModel("not valid JSON: a byte order mark is not allowed", "");
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new InvalidModel("not valid JSON: the document is not UTF-8", "");
  }
}

// ---------------------------------------------------------------- RFC 8785 canonical form
const MAX_SAFE = 2 ** 53;
// Pointers of integer literals (no fraction, no exponent) beyond 2^53 in documents parseStrict read:
// JavaScript numbers cannot tell 1e21 from 1000000000000000000000, the text can.
const BIG_INTEGERS = new WeakMap();

/** JSON pointers of the integer literals beyond 2^53 in a document parseStrict read (they have no canonical
 * form: a JavaScript number cannot hold them exactly). */
export function bigIntegerPointers(root) {
  return [...(BIG_INTEGERS.get(root) || [])];
}

/** The canonical JSON text (RFC 8785) of a value; refuses non-finite numbers and integers beyond 2^53. */
export function canonicalJson(value, pointer = "") {
  if (value === null) return "null";
  if (value === true) return "true";
  if (value === false) return "false";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new InvalidModel("non-finite numbers have no JSON form", pointer);
    return Object.is(value, -0) ? "0" : String(value);
  }
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return "[" + value.map((v, k) => canonicalJson(v, `${pointer}/${k}`)).join(",") + "]";
  if (typeof value === "object") {
    const keys = Object.keys(value).sort();
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonicalJson(value[k], `${pointer}/${k}`)).join(",") + "}";
  }
  throw new InvalidModel(`a ${typeof value} has no JSON form`, pointer);
}

/** sha256 (hex) of the canonical bytes of the document without its `sha256` member. */
export function contentSha256(doc) {
  const big = (BIG_INTEGERS.get(doc) || []).filter((p) => !p.startsWith("/sha256"));
  if (big.length) throw new InvalidModel("integers beyond 2^53 have no canonical form", big[0]);
  const rest = {};
  for (const k of Object.keys(doc)) if (k !== "sha256") rest[k] = doc[k];
  return sha256Hex(new TextEncoder().encode(canonicalJson(rest)));
}

// ---------------------------------------------------------------- SHA-256 (FIPS 180-4), synchronous
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

export function sha256Hex(bytes) {
  const len = bytes.length;
  const total = ((len + 9 + 63) >> 6) << 6;
  const buf = new Uint8Array(total);
  buf.set(bytes);
  buf[len] = 0x80;
  const dv = new DataView(buf.buffer);
  dv.setUint32(total - 8, Math.floor(len / 0x20000000), false);
  dv.setUint32(total - 4, (len << 3) >>> 0, false);
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const w = new Uint32Array(64);
  for (let off = 0; off < total; off += 64) {
    for (let t = 0; t < 16; t++) w[t] = dv.getUint32(off + 4 * t, false);
    for (let t = 16; t < 64; t++) {
      const a = w[t - 15], b = w[t - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[t] = (w[t - 16] + s0 + w[t - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let t = 0; t < 64; t++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + K[t] + w[t]) >>> 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) >>> 0;
      hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
  return Array.from(h, (x) => x.toString(16).padStart(8, "0")).join("");
}
