// The sync client (@modelsync/scorer/sync) against an in-process fake registry (node:http on loopback),
// manifests signed with keys generated here: every refusal keeps the last good model.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { generateKeyPairSync, sign } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { contentSha256 } from "../index.js";
import {
  ModelSync, MemoryStorage, FileStorage, apiKeyAuth, bearerAuth, manifestSigningBytes, derToRaw, importPublicKey,
} from "../sync.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MODEL = "fake-model";
const kit = (name) => JSON.parse(readFileSync(`${ROOT}conformance/cases/${name}.json`, "utf8"));
const bytes = (doc) => new TextEncoder().encode(JSON.stringify(doc));

const KEY = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
const OTHER = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
const PEM = KEY.publicKey.export({ type: "spki", format: "pem" });

const V1 = bytes(kit("linear_regression_plain"));
const V2 = bytes(kit("lasso"));
const BROKEN = (() => { // valid sha256, but a test vector that the model does not reproduce
  const doc = kit("ridge");
  doc.test_vectors.outputs.predict[0] += 1;
  doc.sha256 = contentSha256(doc);
  return bytes(doc);
})();

/** What the fake registry serves next, and what it saw. */
const registry = {
  manifest: null, // object; signed on the way out unless `signature` is set
  signWith: KEY.privateKey,
  encoding: "der",
  docs: new Map(), // path -> bytes
  docOverride: null, // (res, bytes) => true when it answered itself
  requests: [],
  auth: null, // (headers) => status or 0
};
let server;
let api;

function manifestFor(version, raw, revision, extra = {}) {
  const doc = JSON.parse(new TextDecoder().decode(raw));
  registry.docs.set(`/storage/${version}.json`, raw);
  return { name: MODEL, version, alias: "latest", revision, sha256: doc.sha256, size: raw.length,
    format_version: doc.format_version, url: `/storage/${version}.json`, url_expires_at: "2030-01-01T00:00:00Z",
    key_id: "test-key", signature_algorithm: "ECDSA_SHA_256", ...extra };
}

function signed(manifest) {
  if ("signature" in manifest || !registry.signWith) return manifest;
  const sig = sign("sha256", manifestSigningBytes(manifest), { key: registry.signWith, dsaEncoding: registry.encoding });
  return { ...manifest, signature: sig.toString("base64") };
}

before(async () => {
  server = createServer((req, res) => {
    registry.requests.push({ url: req.url, headers: req.headers });
    const path = req.url.split("?")[0];
    if (path.startsWith("/v1/")) {
      const denied = registry.auth ? registry.auth(req.headers) : 0;
      if (denied) { res.writeHead(denied, { "Content-Type": "application/json" }); res.end('{"message":"Unauthorized"}'); return; }
    }
    if (path === `/v1/models/${MODEL}/manifest`) {
      const body = JSON.stringify(signed(registry.manifest));
      const etag = `"${registry.manifest.sha256}-${registry.manifest.revision}"`;
      if (req.headers["if-none-match"] === etag) { res.writeHead(304, { ETag: etag }); res.end(); return; }
      res.writeHead(200, { "Content-Type": "application/json", ETag: etag });
      res.end(body);
      return;
    }
    const raw = registry.docs.get(path);
    if (raw) {
      if (registry.docOverride && registry.docOverride(res, raw)) return;
      res.writeHead(200, { "Content-Type": "application/json", "Content-Length": raw.length });
      res.end(raw);
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  api = `http://127.0.0.1:${server.address().port}/v1`;
});

after(() => { server.closeAllConnections(); server.close(); });

function reset() {
  Object.assign(registry, { signWith: KEY.privateKey, encoding: "der", docOverride: null, requests: [], auth: null });
}

function client(storage, options = {}) {
  return new ModelSync({ api, model: MODEL, storage, publicKey: PEM, ...options });
}

const docRequests = () => registry.requests.filter((r) => r.url.startsWith("/storage/")).length;
const scoresLike = async (c, raw) => {
  const doc = JSON.parse(new TextDecoder().decode(raw));
  const model = await c.load();
  assert.equal(model.sha256, doc.sha256);
  const got = model.predict(doc.test_vectors.inputs);
  doc.test_vectors.outputs.predict.forEach((want, i) => assert.ok(Math.abs(got[i] - want) <= 1e-9 * Math.max(1, Math.abs(want)), `row ${i}`));
};

async function installedV1(storage = new MemoryStorage()) {
  reset();
  registry.manifest = manifestFor(1, V1, 1);
  const c = client(storage);
  const r = await c.sync();
  assert.equal(r.status, "updated", r.reason);
  return c;
}

test("a valid signed update installs, then a 304 keeps it without downloading", async () => {
  const c = await installedV1();
  assert.equal((await c.state()).active.version, 1);
  await scoresLike(c, V1);
  const r = await c.sync();
  assert.deepEqual([r.status, r.version, r.ok], ["unchanged", 1, true]);
  const last = registry.requests.at(-1);
  assert.equal(last.headers["if-none-match"], `"${registry.manifest.sha256}-1"`);
  assert.equal(docRequests(), 1);
  assert.equal((await c.lastSync()).status, "unchanged");
});

test("a raw r||s signature verifies too; WebCrypto's form of a DER signature is its r||s", async () => {
  reset();
  registry.encoding = "ieee-p1363";
  registry.manifest = manifestFor(1, V1, 1);
  const r = await client(new MemoryStorage()).sync();
  assert.equal(r.status, "updated", r.reason);
  const message = manifestSigningBytes(registry.manifest);
  const der = sign("sha256", message, { key: KEY.privateKey, dsaEncoding: "der" });
  const key = await importPublicKey(PEM);
  assert.ok(await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, derToRaw(der), message));
});

test("the signed bytes are RFC 8785 without signature, url and url_expires_at", () => {
  const m = { url: "x", size: 10, name: "a", signature: "s", url_expires_at: "t", b: [1.5, 1e21, "é"], a: null };
  assert.equal(new TextDecoder().decode(manifestSigningBytes(m)), '{"a":null,"b":[1.5,1e+21,"é"],"name":"a","size":10}');
  // the bytes modelsync_protocol.manifest_signing_bytes gives (Python) for the same manifest: keys in UTF-16
  // order, U+2028 raw, control characters escaped, numbers as ECMAScript writes them
  const tricky = { url: "u", "\ufb01": 1, "\u{1F600}": 2, "a\u2028": "line\u2028sep\u0007", n: [0.1, 1e-7, -0, 123456789012345680000, 5e-324],
    signature: "x", url_expires_at: "t", canary: { weight: 0.1, version: 2 } };
  assert.equal(Buffer.from(manifestSigningBytes(tricky)).toString("hex"), Buffer.from(
    '{"a\u2028":"line\u2028sep\\u0007","canary":{"version":2,"weight":0.1},"n":[0.1,1e-7,0,123456789012345680000,5e-324],"\u{1F600}":2,"\ufb01":1}').toString("hex"));
  assert.throws(() => manifestSigningBytes({ name: "\ud800" }), /lone surrogate/);
});

test("bad or missing signatures are refused and the model is kept", async () => {
  const c = await installedV1();
  registry.manifest = manifestFor(2, V2, 2);
  registry.signWith = OTHER.privateKey;
  let r = await c.sync();
  assert.equal(r.status, "refused");
  assert.match(r.reason, /manifest signature does not verify/);
  registry.signWith = null;
  r = await c.sync();
  assert.match(r.reason, /manifest is unsigned, but this device only accepts signed/);
  registry.manifest = { ...manifestFor(2, V2, 2), signature: "MEUCIQ" };
  r = await c.sync();
  assert.match(r.reason, /not valid base64|malformed/);
  registry.manifest = { ...manifestFor(2, V2, 2), signature: Buffer.from([0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01]).toString("base64") };
  r = await c.sync();
  assert.match(r.reason, /manifest signature is malformed: r and s must be in 1..n-1/);
  assert.equal(r.version, 1);
  await scoresLike(c, V1);
  assert.equal(docRequests(), 1); // nothing downloaded for an unverified manifest
});

test("size: a wrong manifest size, a longer body and a lying Content-Length are refused", async () => {
  const c = await installedV1();
  registry.manifest = { ...manifestFor(2, V2, 2), size: V2.length + 1 };
  let r = await c.sync();
  assert.equal(r.status, "refused");
  assert.match(r.reason, /size mismatch/);
  registry.manifest = { ...manifestFor(2, V2, 2), size: V2.length - 1 };
  r = await c.sync();
  assert.match(r.reason, /larger than the manifest's size/);
  registry.manifest = manifestFor(2, V2, 2);
  registry.docOverride = (res, raw) => { // chunked: no Content-Length, one byte too many
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(Buffer.concat([Buffer.from(raw), Buffer.from(" ")]));
    return true;
  };
  r = await c.sync();
  assert.match(r.reason, /larger than the manifest's size/);
  assert.equal(r.version, 1);
  await scoresLike(c, V1);
});

test("a connection closed early is a truncated download; a stalled one is abandoned at its deadline", async () => {
  const c = await installedV1();
  registry.manifest = manifestFor(2, V2, 2);
  registry.docOverride = (res, raw) => {
    res.writeHead(200, { "Content-Type": "application/json", "Content-Length": raw.length });
    res.write(Buffer.from(raw.subarray(0, 100)));
    setTimeout(() => res.destroy(), 20);
    return true;
  };
  let r = await c.sync();
  assert.deepEqual([r.status, r.version], ["refused", 1]);
  assert.match(r.reason, /truncated download/);
  registry.docOverride = (res, raw) => { // headers, a few bytes, then nothing
    res.writeHead(200, { "Content-Type": "application/json", "Content-Length": raw.length });
    res.write(Buffer.from(raw.subarray(0, 10)));
    setTimeout(() => res.destroy(), 5000).unref();
    return true;
  };
  r = await client(c.storage, { downloadTimeoutMs: 200 }).sync();
  assert.deepEqual([r.status, r.version], ["offline", 1]);
  assert.match(r.reason, /download abandoned/);
  await scoresLike(c, V1);
});

test("sha256: the document's own field and its content hash must both match", async () => {
  const c = await installedV1();
  const doc = JSON.parse(new TextDecoder().decode(V2));
  registry.manifest = { ...manifestFor(2, V2, 2), sha256: "ab".repeat(32) };
  let r = await c.sync();
  assert.match(r.reason, /sha256 mismatch: the document says/);
  const tampered = bytes({ ...doc, metadata: { ...doc.metadata, description: "changed after export" } });
  registry.manifest = manifestFor(2, tampered, 2);
  r = await c.sync();
  assert.match(r.reason, /sha256 mismatch: the document's content hashes to/);
  const big = new TextEncoder().encode(new TextDecoder().decode(V2).replace('"metadata":{', '"metadata":{"n":12345678901234567890,'));
  registry.manifest = manifestFor(2, big, 2);
  r = await c.sync();
  assert.deepEqual([r.status, r.version], ["refused", 1]);
  assert.match(r.reason, /cannot be hashed.*2\^53/);
});

test("a revision going backwards is refused; a rollback (higher revision) reuses the kept file", async () => {
  const c = await installedV1();
  registry.manifest = manifestFor(2, V2, 5);
  assert.equal((await c.sync()).status, "updated");
  registry.manifest = manifestFor(1, V1, 4);
  let r = await c.sync();
  assert.equal(r.status, "refused");
  assert.match(r.reason, /replayed or out-of-order manifest: revision 4 of alias 'latest' is older than the installed revision 5/);
  assert.equal(r.version, 2);
  const downloads = docRequests();
  registry.manifest = manifestFor(1, V1, 6);
  r = await c.sync();
  assert.deepEqual([r.status, r.version], ["updated", 1]);
  assert.equal(docRequests(), downloads); // rollback to the previous version: no download
  await scoresLike(c, V1);
  assert.deepEqual((await c.state()).revisions, { latest: 6 });
});

test("test vectors that fail are refused: the last good model stays active", async () => {
  const c = await installedV1();
  registry.manifest = manifestFor(2, BROKEN, 2);
  const r = await c.sync();
  assert.deepEqual([r.status, r.version, r.offeredVersion], ["refused", 1, 2]);
  assert.match(r.reason, /^validation failed: invalid model: \/test_vectors/);
  await scoresLike(c, V1);
  assert.equal((await c.lastSync()).status, "refused");
});

test("unknown format majors, wrong model names and non-http URLs are refused before any download", async () => {
  const c = await installedV1();
  registry.manifest = { ...manifestFor(2, V2, 2), format_version: "2.0" };
  let r = await c.sync();
  assert.match(r.reason, /this device's scorer understands 1.x/);
  registry.manifest = { ...manifestFor(2, V2, 2), name: "other" };
  r = await c.sync();
  assert.match(r.reason, /^invalid manifest: manifest is for model "other"/);
  registry.manifest = { ...manifestFor(2, V2, 2), url: "file:///etc/passwd" };
  r = await c.sync();
  assert.match(r.reason, /manifest 'url' must be an http\(s\) URL/);
  assert.equal(docRequests(), 1);
});

test("a pinned version and an unreachable registry", async () => {
  const c = await installedV1();
  registry.manifest = manifestFor(2, V2, 2, { alias: null }); // what the registry says for ?version=N
  const pinned = client(c.storage, { version: 2 });
  const r = await pinned.sync();
  assert.deepEqual([r.status, r.version], ["updated", 2]);
  assert.match(registry.requests.find((q) => q.url.includes("manifest?version=2")).url, /version=2/);
  const off = await new ModelSync({ api: "http://127.0.0.1:9/v1", model: MODEL, storage: c.storage }).sync();
  assert.deepEqual([off.status, off.version], ["offline", 2]);
  assert.match(off.reason, /cannot reach the registry/);
});

test("storage round trips: memory and files (atomic, the layout modelsync_device reads)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "modelsync-sync-"));
  for (const storage of [new MemoryStorage(), new FileStorage(dir)]) {
    await storage.put("m", "versions/1-abc.json", new Uint8Array([1, 2, 3]));
    await storage.put("m", "state.json", new TextEncoder().encode("{}"));
    assert.deepEqual([...(await storage.get("m", "versions/1-abc.json"))], [1, 2, 3]);
    assert.deepEqual(await storage.list("m", "versions/"), ["versions/1-abc.json"]);
    await storage.delete("m", "versions/1-abc.json");
    assert.equal(await storage.get("m", "versions/1-abc.json"), null);
    assert.deepEqual(await storage.list("nothing", "versions/"), []);
  }
  const files = new FileStorage(join(dir, "store"));
  const c = await installedV1(files);
  registry.manifest = manifestFor(2, V2, 2);
  assert.equal((await c.sync()).status, "updated");
  registry.manifest = manifestFor(3, V1 === V2 ? V1 : bytes(kit("ridge")), 3);
  assert.equal((await c.sync()).status, "updated");
  const mdir = join(dir, "store", MODEL);
  const state = JSON.parse(readFileSync(join(mdir, "state.json"), "utf8"));
  assert.deepEqual([state.schema, state.active.version, state.previous.version, state.older], [1, 3, 2, []]);
  assert.deepEqual(readdirSync(join(mdir, "versions")).sort(), [`2-${state.previous.sha256.slice(0, 12)}.json`, `3-${state.active.sha256.slice(0, 12)}.json`]);
  assert.ok(!readdirSync(mdir).some((n) => n.endsWith(".part")));
  assert.ok(existsSync(join(mdir, "last_sync.json")));
  const reopened = client(new FileStorage(join(dir, "store")));
  assert.equal((await reopened.load()).sha256, state.active.sha256);
});

test("auth: the API key goes to the API only; a bearer token is refreshed once after a 401", async () => {
  reset();
  registry.manifest = manifestFor(1, V1, 1);
  registry.auth = (h) => (h["x-api-key"] === "k-123" ? 0 : 403);
  let r = await client(new MemoryStorage()).sync();
  assert.equal(r.status, "unauthorized");
  assert.match(r.reason, /authentication failed: the registry answered HTTP 403/);
  r = await client(new MemoryStorage(), { auth: apiKeyAuth("k-123") }).sync();
  assert.equal(r.status, "updated", r.reason);
  const doc = registry.requests.find((q) => q.url.startsWith("/storage/"));
  assert.equal(doc.headers["x-api-key"], undefined);

  reset();
  registry.auth = (h) => (h.authorization === "Bearer fresh" ? 0 : 401);
  const tokens = ["expired", "fresh"];
  r = await client(new MemoryStorage(), { auth: bearerAuth(async () => tokens.shift()) }).sync();
  assert.equal(r.status, "updated", r.reason);
  assert.deepEqual(registry.requests.filter((q) => q.url.includes("manifest")).map((q) => q.headers.authorization), ["Bearer expired", "Bearer fresh"]);
  assert.equal(registry.requests.find((q) => q.url.startsWith("/storage/")).headers.authorization, undefined);
  r = await client(new MemoryStorage(), { auth: bearerAuth("Bearer stale") }).sync();
  assert.equal(r.status, "unauthorized");
});

test("a bundled document is the starting point until a sync replaces it", async () => {
  reset();
  const c = client(new MemoryStorage());
  const r = await c.installBundled(new TextDecoder().decode(V1));
  assert.deepEqual([r.status, r.version], ["updated", 0]);
  await scoresLike(c, V1);
  assert.equal((await c.installBundled(V2)).status, "unchanged"); // an app update does not undo what is active
  await assert.rejects(c.installBundled(BROKEN, { force: true }), /validation failed/);
  registry.manifest = manifestFor(2, V2, 1);
  assert.deepEqual([(await c.sync()).status, (await c.state()).previous.version], ["updated", 0]);
  await scoresLike(c, V2);
});

test("configuration errors throw: bad model names, unreadable keys", async () => {
  assert.throws(() => new ModelSync({ api, model: "../x", storage: new MemoryStorage() }), /invalid model name/);
  await assert.rejects(client(new MemoryStorage(), { publicKey: "not a key" }).sync(), /cannot read the public key/);
  await assert.rejects(new ModelSync({ api, model: MODEL, storage: new MemoryStorage() }).load(), /run a sync first/);
});
