// One round of the device sync protocol (docs/devices.md, "The sync protocol, step by step"), as
// modelsync_device.client.sync runs it: the manifest (If-None-Match), signature, shape, format version,
// revision rules, the kept file or a size-capped download, exact size, both sha256 checks, full validation
// with the test vectors re-scored (validateModel), then write and switch. Any failure keeps the current model.
// Refusal reasons are the Python client's texts, so logs read the same on every device.
import { InvalidModel } from "../errors.js";
import { contentSha256, MAX_DOCUMENT_BYTES, parseStrict } from "../json.js";
import { loadModel, NAME_PATTERN, parseDocument, validateModel } from "../model.js";
import { coveredBy, noAuth } from "./auth.js";
import { importPublicKey, verifyManifestSignature } from "./signature.js";

export const SUPPORTED_FORMAT_MAJOR = 1;
export const MAX_MANIFEST_BYTES = 256 * 1024;
export const DEFAULT_KEEP = 2;
const SHA256_PATTERN = /^[0-9a-f]{64}$/;
const STATE_SCHEMA = 1;
const RATE_GRACE_MS = 10_000;

class Refused extends Error {}
class Offline extends Error {}
class Unauthorized extends Error {}

const isInt = (v) => typeof v === "number" && Number.isInteger(v);

/** Python's now_iso: UTC, seconds, "Z". */
export function nowIso() {
  return new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
}

export function versionFilename(version, sha256) {
  return `${Math.trunc(version)}-${sha256.slice(0, 12)}.json`;
}

const entryKey = (entry) => `versions/${versionFilename(entry.version, entry.sha256)}`;
const encodeJson = (obj) => new TextEncoder().encode(JSON.stringify(obj, null, 1) + "\n");

/** The outcome of a sync; `version` is the version active afterwards (null if none is). */
export class SyncResult {
  constructor(status, model, version, reason = null, offeredVersion = null, revision = null, sha256 = null) {
    Object.assign(this, { status, model, version, reason, offeredVersion, revision, sha256 });
  }

  /** "updated" or "unchanged". */
  get ok() {
    return this.status === "updated" || this.status === "unchanged";
  }

  /** The shape modelsync_device writes to last_sync.json (snake_case). */
  toJSON() {
    return { status: this.status, model: this.model, version: this.version, reason: this.reason,
      offered_version: this.offeredVersion, revision: this.revision, sha256: this.sha256 };
  }
}

/** Structural problems with a manifest (empty when usable): modelsync_device.client.check_manifest. */
export function checkManifest(manifest, model, alias) {
  if (manifest === null || typeof manifest !== "object" || Array.isArray(manifest)) return ["manifest is not a JSON object"];
  const p = [];
  if (manifest.name !== model) p.push(`manifest is for model ${JSON.stringify(manifest.name ?? null)}, not ${JSON.stringify(model)}`);
  if (!isInt(manifest.version) || manifest.version < 1) p.push("manifest 'version' must be a positive integer");
  if (typeof manifest.sha256 !== "string" || !SHA256_PATTERN.test(manifest.sha256)) p.push("manifest 'sha256' must be 64 lowercase hex digits");
  if (!isInt(manifest.size) || !(manifest.size > 0 && manifest.size <= MAX_DOCUMENT_BYTES)) p.push(`manifest 'size' must be an integer between 1 and ${MAX_DOCUMENT_BYTES}`);
  if (typeof manifest.format_version !== "string") p.push("manifest 'format_version' must be a string");
  if (typeof manifest.url !== "string" || !manifest.url) p.push("manifest 'url' must be a non-empty string");
  if (!isInt(manifest.revision) || manifest.revision < 0) p.push("manifest 'revision' must be a non-negative integer");
  if (manifest.alias !== undefined && manifest.alias !== null && manifest.alias !== alias) p.push(`manifest is for alias ${JSON.stringify(manifest.alias)}, not ${JSON.stringify(alias)}`);
  return p;
}

export function formatMajorProblem(fv) {
  const major = fv.split(".", 1)[0];
  if (/^[0-9]+$/.test(major) && Number(major) === SUPPORTED_FORMAT_MAJOR) return null;
  return `format_version '${fv}' is not supported: this device's scorer understands ${SUPPORTED_FORMAT_MAJOR}.x; `
    + "update the scorer to install this model";
}

/** The manifest route: following `alias`, or pinned to `version` (?version=N). */
export function manifestUrl(api, model, alias, version = null) {
  const q = version !== null && version !== undefined ? `version=${version}` : `alias=${encodeURIComponent(alias)}`;
  return `${api.replace(/\/+$/, "")}/models/${encodeURIComponent(model)}/manifest?${q}`;
}

async function bodyText(resp) {
  try {
    return (await resp.text()).trim().slice(0, 300);
  } catch {
    return "";
  }
}

async function httpErrorText(resp) {
  const body = await bodyText(resp);
  return `HTTP ${resp.status}` + (body ? `: ${body}` : "");
}

/** Read at most limit + 1 bytes (one more than allowed is enough to know it is too big). */
async function readCapped(resp, limit, { deadline = Infinity, minRate = 0, started = Date.now() } = {}) {
  if (!resp.body) return new Uint8Array(0);
  const reader = resp.body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.length;
    if (total > limit) { reader.cancel().catch(() => {}); break; }
    const elapsed = Date.now() - started;
    if (elapsed > deadline) { reader.cancel().catch(() => {}); throw new Offline(`download abandoned after ${Math.round(elapsed / 1000)} s: ${total} of ${limit} bytes`); }
    if (elapsed > RATE_GRACE_MS && total < (minRate * elapsed) / 1000) {
      reader.cancel().catch(() => {});
      throw new Offline(`download abandoned: ${Math.round((total * 1000) / elapsed)} bytes/s, under the minimum of ${minRate} bytes/s`);
    }
  }
  const out = new Uint8Array(Math.min(total, limit + 1));
  let pos = 0;
  for (const c of chunks) {
    const take = Math.min(c.length, out.length - pos);
    out.set(c.subarray(0, take), pos);
    pos += take;
  }
  return out;
}

function parseManifest(raw) {
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(raw);
  } catch {
    throw new Refused("manifest is not valid JSON: not UTF-8");
  }
  try {
    return parseStrict(text);
  } catch (e) {
    if (/must be a JSON object/.test(e.message)) throw new Refused("manifest is not a JSON object");
    throw new Refused(`manifest is not valid JSON: ${e.message.replace(/^invalid model: \/: /, "")}`);
  }
}

/** Exact size, both sha256 checks, format version, then full validation with the test vectors re-scored. */
function verifyDocument(raw, manifest) {
  if (raw.length !== manifest.size) throw new Refused(`size mismatch: got ${raw.length} bytes, manifest says ${manifest.size}`);
  let doc;
  try {
    doc = parseDocument(raw);
  } catch (e) {
    if (e instanceof InvalidModel) throw new Refused(`downloaded document is unreadable: ${e.message}`);
    throw e;
  }
  const want = manifest.sha256;
  if (doc.sha256 !== want) throw new Refused(`sha256 mismatch: the document says ${String(doc.sha256).slice(0, 16)}..., the manifest says ${want.slice(0, 16)}...`);
  let got;
  try {
    got = contentSha256(doc);
  } catch (e) {
    throw new Refused(`the document's content cannot be hashed: ${e.message}`);
  }
  if (got !== want) throw new Refused(`sha256 mismatch: the document's content hashes to ${got.slice(0, 16)}..., the manifest says ${want.slice(0, 16)}...`);
  if (doc.format_version !== manifest.format_version) {
    throw new Refused(`document format_version '${doc.format_version}' differs from the manifest's '${manifest.format_version}'`);
  }
  try {
    validateModel(doc);
  } catch (e) { // any crash while checking a model means: do not install it
    throw new Refused(`validation failed: ${e instanceof InvalidModel ? e.message : `${e.name}: ${e.message}`}`);
  }
  return doc;
}

const LOCKS = new WeakMap(); // storage -> model -> the tail of its queue (one sync at a time per model)

async function withLock(storage, model, fn) {
  let perStorage = LOCKS.get(storage);
  if (!perStorage) LOCKS.set(storage, (perStorage = new Map()));
  const before = perStorage.get(model) || Promise.resolve();
  let release;
  const mine = new Promise((r) => { release = r; });
  const tail = before.then(() => mine);
  perStorage.set(model, tail);
  await before;
  try {
    return await fn();
  } finally {
    release();
    if (perStorage.get(model) === tail) perStorage.delete(model);
  }
}

/**
 * A model kept current from the registry: `await client.sync()` runs one round of the protocol, `await
 * client.load()` gives the active model (offline, from storage). Options: `api` (base URL, e.g.
 * "https://api.example.com/v1"), `model`, `storage` (MemoryStorage, FileStorage, IndexedDBStorage), `alias`
 * ("latest"), `version` (pin a version instead), `deviceId` (X-Device-Id: the canary cohort), `publicKey`
 * (PEM text, DER bytes or a CryptoKey: then only signed manifests are accepted), `auth` (apiKeyAuth,
 * bearerAuth), `fetch`, `timeoutMs` (each request), `downloadTimeoutMs` and `minDownloadRate` (bytes/s,
 * after 10 s) for the document, `keep` (installed versions kept, >= 2, so a rollback needs no download).
 */
export class ModelSync {
  constructor({ api, model, storage, alias = "latest", version = null, deviceId = null, publicKey = null, auth = null,
    fetch = null, timeoutMs = 30_000, downloadTimeoutMs = 300_000, minDownloadRate = 1024, keep = DEFAULT_KEEP } = {}) {
    if (typeof model !== "string" || !NAME_PATTERN.test(model)) throw new Error(`invalid model name ${JSON.stringify(model)}: 1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit`);
    if (typeof api !== "string" || !/^https?:\/\//.test(api)) throw new Error("api must be an http(s) URL");
    if (!storage) throw new Error("a storage is needed (MemoryStorage, FileStorage or IndexedDBStorage)");
    if (version !== null && (!isInt(version) || version < 1)) throw new Error("version must be a positive integer");
    if (!isInt(keep) || keep < 2) throw new Error("keep must be at least 2 (the active and the previous version)");
    // browsers' fetch must be called on the global object ("Illegal invocation" otherwise)
    const f = fetch || (typeof globalThis.fetch === "function" ? globalThis.fetch.bind(globalThis) : null);
    if (typeof f !== "function") throw new Error("no fetch available: pass options.fetch");
    Object.assign(this, { api, model, storage, alias, version, deviceId, auth: auth || noAuth(), timeoutMs, downloadTimeoutMs, minDownloadRate, keep });
    this._fetch = f;
    this._publicKey = publicKey;
    this._key = null;
    this._loaded = null; // {sha256, model, entry}
  }

  /** The committed state (state.json), or null before the first install. */
  async state() {
    const raw = await this.storage.get(this.model, "state.json");
    if (!raw) return null;
    try {
      const state = JSON.parse(new TextDecoder().decode(raw));
      return state && typeof state === "object" && state.active && typeof state.active === "object" ? state : null;
    } catch {
      return null; // unreadable: as if never installed; the next sync reinstalls
    }
  }

  /** The outcome of the last sync (last_sync.json), or null. */
  async lastSync() {
    const raw = await this.storage.get(this.model, "last_sync.json");
    try {
      return raw ? JSON.parse(new TextDecoder().decode(raw)) : null;
    } catch {
      return null;
    }
  }

  /** One round of the protocol. Never throws for network or content problems (the outcome says); throws for
   * configuration errors (an unreadable public key) and when the storage itself fails to be read. */
  async sync() {
    if (this._publicKey !== null && this._key === null) this._key = await importPublicKey(this._publicKey);
    const result = await withLock(this.storage, this.model, async () => {
      const state = await this.state();
      const activeVersion = state ? state.active.version : null;
      const offered = {};
      try {
        return await this._syncLocked(state, offered);
      } catch (e) {
        if (e instanceof Offline) return new SyncResult("offline", this.model, activeVersion, e.message);
        if (e instanceof Unauthorized) return new SyncResult("unauthorized", this.model, activeVersion, e.message);
        if (e instanceof Refused) return new SyncResult("refused", this.model, activeVersion, e.message, offered.version ?? null, offered.revision ?? null, offered.sha256 ?? null);
        throw e;
      }
    });
    try { // best effort, as record_sync
      await this.storage.put(this.model, "last_sync.json", encodeJson({ ...result.toJSON(), at: nowIso() }));
    } catch {
      // a full disk must not turn a kept-current-model outcome into an exception
    }
    return result;
  }

  async _open(url, headers, signal) {
    const covered = this.auth.mode !== "none" && coveredBy(this.api, url);
    const send = async () => {
      let h = headers;
      if (covered) {
        try {
          h = { ...headers, ...(await this.auth.headers()) };
        } catch (e) {
          throw new Unauthorized(`authentication failed: ${e.message}`);
        }
      }
      try {
        return await this._fetch(url, { headers: h, signal, cache: "no-store", redirect: "follow" });
      } catch (e) {
        throw new Offline(`${e.name === "AbortError" || e.name === "TimeoutError" ? "timed out" : e.cause?.message || e.message}`);
      }
    };
    let resp = await send();
    if (covered && resp.status === 401) {
      let fresh = false;
      try {
        fresh = await this.auth.refresh();
      } catch (e) {
        throw new Unauthorized(`authentication failed: ${e.message}`);
      }
      if (fresh) {
        await bodyText(resp);
        resp = await send();
      }
    }
    return resp;
  }

  async _fetchManifest(url, headers) {
    let resp;
    try {
      resp = await this._open(url, headers, AbortSignal.timeout(this.timeoutMs));
    } catch (e) {
      if (e instanceof Offline) throw new Offline(`cannot reach the registry: ${e.message}`);
      throw e;
    }
    if (resp.status === 304) {
      if (!headers["If-None-Match"]) throw new Offline("registry answered 304 to a request without If-None-Match");
      return [null, null];
    }
    if (resp.status === 401 || resp.status === 403) throw new Unauthorized(`authentication failed: the registry answered ${await httpErrorText(resp)}`);
    if (resp.status < 200 || resp.status >= 300) throw new Offline(`registry answered ${await httpErrorText(resp)}`);
    let raw;
    try {
      raw = await readCapped(resp, MAX_MANIFEST_BYTES);
    } catch (e) {
      throw new Offline(`cannot reach the registry: ${e.message}`);
    }
    if (raw.length > MAX_MANIFEST_BYTES) throw new Refused(`manifest larger than ${MAX_MANIFEST_BYTES} bytes`);
    return [raw, resp.headers.get("ETag")];
  }

  async _download(url, size) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.downloadTimeoutMs);
    const started = Date.now();
    try {
      let resp;
      try {
        resp = await this._open(url, { Accept: "application/json" }, controller.signal);
      } catch (e) {
        if (e instanceof Offline) throw new Offline(`document download failed: ${e.message}`);
        throw e;
      }
      if (resp.status < 200 || resp.status >= 300) throw new Offline(`document download failed: ${await httpErrorText(resp)}`);
      const length = resp.headers.get("Content-Length");
      if (length !== null && /^[0-9]+$/.test(length) && Number(length) > size) {
        resp.body?.cancel().catch(() => {});
        throw new Refused(`document is ${length} bytes, larger than the manifest's size ${size}`);
      }
      let raw;
      try {
        raw = await readCapped(resp, size, { deadline: this.downloadTimeoutMs, minRate: this.minDownloadRate, started });
      } catch (e) {
        if (e instanceof Offline) throw e;
        if (controller.signal.aborted) throw new Offline(`download abandoned after ${Math.round((Date.now() - started) / 1000)} s (deadline ${this.downloadTimeoutMs / 1000} s)`);
        throw new Refused(`truncated download: the connection failed after part of the ${size} bytes (${e.cause?.message || e.message})`);
      }
      if (length !== null && /^[0-9]+$/.test(length) && raw.length < Number(length)) throw new Refused(`truncated download: got ${raw.length} of ${length} bytes`);
      if (raw.length > size) throw new Refused(`document is larger than the manifest's size ${size}; download aborted`);
      if (raw.length < size) throw new Refused(`size mismatch (truncated download?): got ${raw.length} bytes, manifest says ${size}`);
      return raw;
    } finally {
      clearTimeout(timer);
    }
  }

  async _intact(entry) {
    if (!entry) return false;
    const raw = await this.storage.get(this.model, entryKey(entry));
    return raw !== null && raw.length === entry.size;
  }

  async _syncLocked(state, offered) {
    const model = this.model;
    const active = state ? state.active : null;
    const activeVersion = active ? active.version : null;
    const pinned = this.version;
    const alias = pinned !== null ? `@${pinned}` : this.alias; // a pinned version is followed like an alias of its own
    const headers = { Accept: "application/json" };
    if (this.deviceId) headers["X-Device-Id"] = this.deviceId;
    // only ask for a 304 if the installed file is really there: otherwise a damaged store could never heal
    if (state && state.alias === alias && state.etag && (await this._intact(active))) headers["If-None-Match"] = state.etag;
    const url = manifestUrl(this.api, model, this.alias, pinned);
    const [raw, etag] = await this._fetchManifest(url, headers);
    if (raw === null) return new SyncResult("unchanged", model, activeVersion, null, activeVersion, state ? state.revision ?? null : null, active ? active.sha256 : null);
    const manifest = parseManifest(raw);

    // 1. authenticity first: nothing in an unverified manifest is trusted when a key is configured
    if (this._key !== null) {
      const problem = await verifyManifestSignature(manifest, this._key);
      if (problem) throw new Refused(problem);
    }
    // 2. shape
    const problems = checkManifest(manifest, model, alias);
    if (pinned !== null && manifest.version !== pinned) problems.push(`manifest is for version ${JSON.stringify(manifest.version ?? null)}, not the pinned ${pinned}`);
    if (problems.length) throw new Refused("invalid manifest: " + problems.join("; "));
    const { version, sha256: sha, revision } = manifest;
    Object.assign(offered, { version, sha256: sha, revision });
    // 3. a format this scorer cannot read
    const fvProblem = formatMajorProblem(manifest.format_version);
    if (fvProblem) throw new Refused(fvProblem);
    // 4. replay / out-of-order: revisions only grow per alias (a rollback is an alias move: it grows too)
    const known = ((state && state.revisions) || {})[alias];
    if (isInt(known) && revision < known) {
      throw new Refused(`replayed or out-of-order manifest: revision ${revision} of alias '${alias}' is older than the installed revision ${known}`);
    }
    // 5. already active (and its file intact): just remember the new revision / etag
    if (active && active.version === version && active.sha256 === sha && (await this._intact(active))) {
      if (state.revision !== revision || state.etag !== etag || state.alias !== alias) {
        const revisions = { ...(state.revisions || {}) };
        revisions[alias] = Math.max(revision, revisions[alias] ?? revision);
        try {
          await this.storage.put(model, "state.json", encodeJson({ ...state, alias, revision, revisions, etag, updated_at: nowIso() }));
        } catch {
          // the model is current; only the bookkeeping was not saved (the next sync downloads nothing either)
        }
      }
      return new SyncResult("unchanged", model, version, null, version, revision, sha);
    }
    // 6. the bytes: a kept file (e.g. rollback to the previous version) or the document URL
    let rawDoc = null;
    let doc = null;
    const kept = await this.storage.get(model, entryKey({ version, sha256: sha }));
    if (kept !== null) {
      try {
        doc = verifyDocument(kept, manifest);
      } catch (e) {
        if (!(e instanceof Refused)) throw e;
        doc = null; // unusable kept file: download again
      }
    }
    if (doc === null) {
      let docUrl;
      try {
        docUrl = new URL(manifest.url, url);
      } catch {
        throw new Refused("manifest 'url' must be an http(s) URL");
      }
      if (docUrl.protocol !== "http:" && docUrl.protocol !== "https:") throw new Refused("manifest 'url' must be an http(s) URL");
      rawDoc = await this._download(docUrl.href, manifest.size);
      doc = verifyDocument(rawDoc, manifest);
    }
    // 7. write, then switch: state.json is the commit point
    try {
      await this._install(rawDoc, doc, manifest, alias, etag, state);
    } catch (e) {
      throw new Refused(`install failed, keeping version ${activeVersion}: ${e.message}`);
    }
    return new SyncResult("updated", model, version, null, version, revision, sha);
  }

  async _install(raw, doc, manifest, alias, etag, state) {
    const entry = {
      version: manifest.version, sha256: manifest.sha256, size: manifest.size, format_version: String(doc.format_version),
      alias, revision: manifest.revision ?? null, installed_at: nowIso(),
    };
    if (raw !== null) await this.storage.put(this.model, entryKey(entry), raw);
    let history = state ? [state.active, ...(state.previous ? [state.previous] : []), ...(state.older || [])] : [];
    history = history.filter((h) => !(h.version === entry.version && h.sha256 === entry.sha256));
    const kept = history.slice(0, this.keep - 1);
    const revisions = { ...((state && state.revisions) || {}) };
    if (isInt(manifest.revision)) revisions[alias] = manifest.revision;
    const next = {
      schema: STATE_SCHEMA, model: this.model, active: entry, previous: kept[0] || null, older: kept.slice(1), alias,
      revision: manifest.revision ?? null, revisions, etag: etag ?? null, updated_at: entry.installed_at,
    };
    await this.storage.put(this.model, "state.json", encodeJson(next));
    try { // the switch is done: failing to tidy up must not turn it into a failure
      const keep = new Set([next.active, next.previous, ...next.older].filter(Boolean).map(entryKey));
      for (const key of await this.storage.list(this.model, "versions/")) if (!keep.has(key)) await this.storage.delete(this.model, key);
    } catch {
      // pruning failed: a stray file, removed at the next install
    }
    return next;
  }

  /**
   * Make a document shipped with the app the active model, so an app never online scores from its first
   * second (modelsync_device.install_bundled): sha256 of its content and full validation with its test
   * vectors first. `version` is its registry version when known (default 0: bundled). A store that already
   * has an active model keeps it unless `force` (an app update must not undo newer syncs); any later sync
   * replaces it as usual. Throws Error when the document is unusable.
   */
  async installBundled(source, { version = 0, force = false } = {}) {
    if (!isInt(version) || version < 0) throw new Error("version must be a non-negative integer");
    const raw = typeof source === "string" ? new TextEncoder().encode(source) : source instanceof ArrayBuffer ? new Uint8Array(source) : source;
    if (!(raw instanceof Uint8Array)) throw new Error("the bundled document must be JSON text or bytes");
    if (raw.length > MAX_DOCUMENT_BYTES) throw new Error(`the document is larger than ${MAX_DOCUMENT_BYTES} bytes`);
    let doc, sha;
    try {
      doc = parseDocument(raw);
      sha = contentSha256(doc);
    } catch (e) {
      throw new Error(`the bundled document is unreadable: ${e.message}`);
    }
    if (doc.sha256 !== undefined && doc.sha256 !== sha) throw new Error(`sha256 mismatch: the document says ${String(doc.sha256).slice(0, 16)}..., its content hashes to ${sha.slice(0, 16)}...`);
    const problem = typeof doc.format_version === "string" ? formatMajorProblem(doc.format_version) : "the document has no format_version";
    if (problem) throw new Error(problem);
    try {
      validateModel(doc);
    } catch (e) {
      throw new Error(`validation failed: ${e.message}`);
    }
    const result = await withLock(this.storage, this.model, async () => {
      const state = await this.state();
      if (state && !force) {
        return new SyncResult("unchanged", this.model, state.active.version, "a model is already active", version, state.revision ?? null, state.active.sha256);
      }
      await this._install(raw, doc, { version, sha256: sha, size: raw.length, revision: null }, "bundled", null, state);
      return new SyncResult("updated", this.model, version, null, version, null, sha);
    });
    if (result.status === "updated") {
      await this.storage.put(this.model, "last_sync.json", encodeJson({ ...result.toJSON(), source: "bundled", at: nowIso() })).catch(() => {});
    }
    return result;
  }

  /**
   * The active model (a scorer Model), from storage only - the previous version if the active file is
   * damaged. Throws Error when nothing is installed or nothing loadable is left.
   */
  async load() {
    const state = await this.state();
    if (!state) throw new Error(`no model '${this.model}' installed yet: run a sync first`);
    const errors = [];
    for (const which of ["active", "previous"]) {
      const entry = state[which];
      if (!entry || typeof entry !== "object") continue;
      if (this._loaded && this._loaded.sha256 === entry.sha256 && this._loaded.entry.version === entry.version) return this._loaded.model;
      try {
        const raw = await this.storage.get(this.model, entryKey(entry));
        if (raw === null) throw new Error("its file is missing");
        const doc = parseDocument(raw);
        if (doc.sha256 !== entry.sha256 || contentSha256(doc) !== entry.sha256) throw new Error(`kept file of version ${entry.version} no longer matches its sha256`);
        const m = loadModel(doc);
        this._loaded = { sha256: entry.sha256, model: m, entry: { ...entry } };
        return m;
      } catch (e) {
        errors.push(`${which} version ${entry.version}: ${e.message}`);
      }
    }
    throw new Error(`no loadable version of '${this.model}': ${errors.join("; ")}`);
  }

  /** The state entry (version, sha256, ...) of the model load() returned last. */
  get loadedEntry() {
    return this._loaded ? { ...this._loaded.entry } : null;
  }
}

/** One sync round with a throwaway client: `await sync({api, model, storage, ...})`. */
export async function sync(options) {
  return new ModelSync(options).sync();
}
