// Signed manifests (docs/devices.md, "Signed manifests"): the signed bytes (RFC 8785 without signature, url,
// url_expires_at - modelsync_protocol.manifest_signing_bytes) and ECDSA P-256 / SHA-256 verification with
// WebCrypto. KMS returns DER signatures; WebCrypto verifies the raw r || s form, so DER is converted here,
// strictly (minimal lengths and integers, r and s in 1..n-1): anything malformed is refused, never repaired.
import { bigIntegerPointers, canonicalJson } from "../json.js";

export const MANIFEST_UNSIGNED_FIELDS = ["signature", "url", "url_expires_at"];
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n; // P-256 group order
const ALGORITHM = { name: "ECDSA", namedCurve: "P-256" };

export class SignatureFormatError extends Error {}

function subtle() {
  const s = globalThis.crypto && globalThis.crypto.subtle;
  if (!s) throw new Error("WebCrypto (crypto.subtle) is not available: browsers offer it on https:// and localhost pages only");
  return s;
}

/** Strict base64 -> bytes (no whitespace, correct padding); null when invalid. */
export function base64Bytes(text) {
  if (typeof text !== "string" || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
  const bin = atob(text);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/**
 * The bytes a manifest signature covers: its RFC 8785 form without the unsigned fields, UTF-8. Throws
 * SignatureFormatError for what JCS cannot represent (integers beyond 2^53, lone surrogates), as Python's
 * canonical_json raises.
 */
export function manifestSigningBytes(manifest) {
  const signed = {};
  for (const k of Object.keys(manifest)) if (!MANIFEST_UNSIGNED_FIELDS.includes(k)) signed[k] = manifest[k];
  const big = bigIntegerPointers(manifest).filter((p) => !MANIFEST_UNSIGNED_FIELDS.some((f) => p === `/${f}` || p.startsWith(`/${f}/`)));
  if (big.length) throw new SignatureFormatError(`integer beyond 2**53 at ${big[0]} (not exact as a JSON double)`);
  if (!wellFormed(signed)) throw new SignatureFormatError("a string that is not valid Unicode (lone surrogate)");
  try {
    return new TextEncoder().encode(canonicalJson(signed));
  } catch (e) {
    throw new SignatureFormatError(e.message);
  }
}

/** Whether every string (and key) is valid Unicode: JSON.stringify would escape a lone surrogate, where
 * JCS (and Python's canonical_json) has no form for it. */
function wellFormed(v) {
  if (typeof v === "string") {
    if (typeof v.isWellFormed === "function") return v.isWellFormed();
    return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(v);
  }
  if (Array.isArray(v)) return v.every(wellFormed);
  if (v !== null && typeof v === "object") return Object.keys(v).every((k) => wellFormed(k) && wellFormed(v[k]));
  return true;
}

// ---------------------------------------------------------------- DER
function derElement(data, pos) {
  if (pos + 2 > data.length) throw new SignatureFormatError("truncated DER");
  const tag = data[pos];
  const first = data[pos + 1];
  pos += 2;
  let length = first;
  if (first >= 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 4 || pos + n > data.length) throw new SignatureFormatError("bad DER length");
    length = 0;
    for (let k = 0; k < n; k++) length = length * 256 + data[pos + k];
    if (length < 0x80 || data[pos] === 0) throw new SignatureFormatError("DER length not minimally encoded");
    pos += n;
  }
  const end = pos + length;
  if (end > data.length) throw new SignatureFormatError("truncated DER");
  return [tag, data.subarray(pos, end), end];
}

function derInteger(tag, content) {
  if (tag !== 0x02) throw new SignatureFormatError("expected a DER INTEGER");
  if (!content.length) throw new SignatureFormatError("empty DER INTEGER");
  if (content[0] & 0x80) throw new SignatureFormatError("negative DER INTEGER");
  if (content.length > 1 && content[0] === 0 && !(content[1] & 0x80)) throw new SignatureFormatError("DER INTEGER not minimally encoded");
  let v = 0n;
  for (const b of content) v = (v << 8n) | BigInt(b);
  return v;
}

function to32(v) {
  const out = new Uint8Array(32);
  for (let k = 31; k >= 0; k--) { out[k] = Number(v & 0xffn); v >>= 8n; }
  return out;
}

/** A DER ECDSA signature (SEQUENCE {r, s}) -> the 64-byte r || s WebCrypto verifies. */
export function derToRaw(sig) {
  const [tag, body, end] = derElement(sig, 0);
  if (tag !== 0x30 || end !== sig.length) throw new SignatureFormatError("signature is not a single DER SEQUENCE");
  const [tr, cr, next] = derElement(body, 0);
  const [ts, cs, last] = derElement(body, next);
  if (last !== body.length) throw new SignatureFormatError("signature SEQUENCE must hold exactly r and s");
  const r = derInteger(tr, cr), s = derInteger(ts, cs);
  if (r < 1n || r >= N || s < 1n || s >= N) throw new SignatureFormatError("r and s must be in 1..n-1");
  const raw = new Uint8Array(64);
  raw.set(to32(r), 0);
  raw.set(to32(s), 32);
  return raw;
}

// ---------------------------------------------------------------- keys
function pemBody(pem) {
  const m = /-----BEGIN PUBLIC KEY-----([\s\S]*?)-----END PUBLIC KEY-----/.exec(pem);
  if (!m) throw new Error("cannot read the public key: expected a PEM 'PUBLIC KEY' block (SubjectPublicKeyInfo)");
  const der = base64Bytes(m[1].replace(/\s+/g, ""));
  if (!der) throw new Error("cannot read the public key: the PEM body is not base64");
  return der;
}

/**
 * An ECDSA P-256 public key for WebCrypto from PEM text, DER SubjectPublicKeyInfo bytes, or a CryptoKey.
 * Throws Error (a configuration error) when it is unreadable or not P-256; WebCrypto checks the point.
 */
export async function importPublicKey(key) {
  if (globalThis.CryptoKey && key instanceof globalThis.CryptoKey) {
    if (key.algorithm.name !== "ECDSA" || key.algorithm.namedCurve !== "P-256") throw new Error("the manifest public key must be an ECDSA P-256 key");
    return key;
  }
  let der;
  if (typeof key === "string") der = pemBody(key);
  else if (key instanceof Uint8Array || key instanceof ArrayBuffer) {
    const bytes = key instanceof ArrayBuffer ? new Uint8Array(key) : key;
    const text = new TextDecoder("latin1").decode(bytes.subarray(0, 64));
    der = text.includes("-----BEGIN") ? pemBody(new TextDecoder().decode(bytes)) : bytes;
  } else throw new Error("the public key must be PEM text, DER bytes or a CryptoKey");
  try {
    return await subtle().importKey("spki", der, ALGORITHM, false, ["verify"]);
  } catch (e) {
    throw new Error(`cannot read the public key (an ECDSA P-256 SubjectPublicKeyInfo is needed): ${e.message}`);
  }
}

/** null when the manifest's `signature` verifies with `key` (a CryptoKey); otherwise why not (the reason text
 * of modelsync_device.signature.verify_manifest_signature). DER and the raw 64-byte form are accepted. */
export async function verifyManifestSignature(manifest, key) {
  const b64 = manifest.signature;
  if (b64 === undefined || b64 === null || b64 === "") return "manifest is unsigned, but this device only accepts signed manifests";
  if (typeof b64 !== "string") return "manifest signature must be a base64 string";
  const sig = base64Bytes(b64);
  if (!sig) return "manifest signature is not valid base64";
  let message;
  try {
    message = manifestSigningBytes(manifest);
  } catch (e) {
    return `manifest cannot be put in canonical form: ${e.message}`;
  }
  let raw;
  try {
    raw = sig.length === 64 ? sig : derToRaw(sig);
  } catch (e) {
    if (e instanceof SignatureFormatError) return `manifest signature is malformed: ${e.message}`;
    throw e;
  }
  const ok = await subtle().verify({ name: "ECDSA", hash: "SHA-256" }, key, raw, message);
  return ok ? null : "manifest signature does not verify with this device's public key";
}
