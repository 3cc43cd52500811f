// The /demo/ page: sync a model with @modelsync/scorer/sync into IndexedDB, then score typed rows offline.
// The registry's signing key is pinned on first use (localStorage): later syncs accept only manifests it
// signed. sw.js keeps this page and the scorer's modules for offline reloads.
import { ModelSync, IndexedDBStorage, apiKeyAuth } from "/scorer-js/sync.js";

const $ = (id) => document.getElementById(id);
const storage = new IndexedDBStorage("modelsync-demo");
const SETTINGS = "modelsync-demo:settings";
let model = null;
let scored = 0;

function settings() {
  return { api: $("api").value.trim().replace(/\/+$/, ""), model: $("model").value.trim(), alias: $("alias").value.trim() || "latest",
    apiKey: $("api-key").value.trim() };
}

function client(s, publicKey = null) {
  return new ModelSync({ api: s.api, model: s.model, alias: s.alias, storage, publicKey, auth: s.apiKey ? apiKeyAuth(s.apiKey) : null });
}

function setState(state, text) {
  document.body.dataset.state = state;
  $("status").textContent = text;
}

/** The registry's public key, fetched once and pinned; null for a deployment that does not sign. */
async function signingKey(s) {
  const slot = `modelsync-demo:key:${s.api}`;
  const pinned = localStorage.getItem(slot);
  if (pinned) return pinned;
  const headers = { Accept: "application/x-pem-file" };
  if (s.apiKey) headers["x-api-key"] = s.apiKey;
  const resp = await fetch(`${s.api}/signing-key`, { headers, cache: "no-store" });
  if (resp.status === 404) return null;
  if (!resp.ok) throw new Error(`GET /signing-key answered HTTP ${resp.status}`);
  const pem = await resp.text();
  localStorage.setItem(slot, pem);
  return pem;
}

function show(m, entry, where) {
  model = m;
  $("features").textContent = m.featureNames.join(", ");
  $("rows").placeholder = m.featureNames.join(",");
  $("score").disabled = false;
  return `${m.name}: version ${entry.version} (sha256 ${entry.sha256.slice(0, 12)}...) ${where}`;
}

async function onSync(event) {
  event.preventDefault();
  const s = settings();
  if (!s.api || !s.model) { setState("error", "API and model are needed."); return; }
  localStorage.setItem(SETTINGS, JSON.stringify({ api: s.api, model: s.model, alias: s.alias }));
  setState("syncing", "Syncing...");
  let key;
  try {
    key = await signingKey(s);
  } catch (e) {
    setState("offline", `offline: cannot fetch the signing key (${e.message}); the stored model stays active`);
    return;
  }
  try {
    const c = client(s, key);
    const r = await c.sync();
    let text = `${r.status}: ${r.reason || "the registry's model is active"}`;
    if (r.version !== null) text = show(await c.load(), c.loadedEntry, "in IndexedDB") + `\n${text}`;
    setState(r.ok ? "synced" : r.status, text);
  } catch (e) {
    setState("error", `error: ${e.message}`);
  }
}

function cell(text, feature, line) {
  const t = text.trim();
  if (t === "") return null;
  if (feature.type === "categorical") {
    const cats = feature.categories || [];
    return cats.length && cats.every((c) => typeof c === "number") && t !== "" && !Number.isNaN(Number(t)) ? Number(t) : t;
  }
  const v = Number(t);
  if (Number.isNaN(v)) throw new Error(`line ${line}, feature '${feature.name}': expected a number, got '${t}'`);
  return v;
}

function fmt(v) {
  return typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toPrecision(6)) : String(v);
}

function onScore(event) {
  event.preventDefault();
  if (!model) return;
  const lines = $("rows").value.split(/\r?\n/).map((l, i) => [l, i + 1]).filter(([l]) => l.trim() !== "");
  try {
    const rows = lines.map(([l, n]) => {
      const cells = l.split(",");
      if (cells.length !== model.features.length) throw new Error(`line ${n}: expected ${model.features.length} values, got ${cells.length}`);
      return model.features.map((f, k) => cell(cells[k], f, n));
    });
    const out = { predictions: model.predict(rows) };
    if (model.supports("predict_proba")) Object.assign(out, { probabilities: model.predictProba(rows), classes: model.classes });
    render(rows, out);
    $("output").textContent = JSON.stringify(out);
    document.body.dataset.scored = String(++scored);
  } catch (e) {
    $("results").textContent = `error: ${e.message}`;
    $("output").textContent = JSON.stringify({ error: e.message });
    document.body.dataset.scored = String(++scored);
  }
}

function render(rows, out) {
  const table = document.createElement("table");
  const head = [...model.featureNames, "prediction", ...(out.classes || []).map((c) => `P(${c})`)];
  table.insertRow().append(...head.map((h) => Object.assign(document.createElement("th"), { textContent: h })));
  rows.forEach((row, i) => {
    const tr = table.insertRow();
    const cells = [...row.map((v) => (v === null ? "" : String(v))), fmt(out.predictions[i]), ...(out.probabilities ? out.probabilities[i].map(fmt) : [])];
    for (const c of cells) tr.insertCell().textContent = c;
  });
  $("results").replaceChildren(table);
}

async function start() {
  const saved = JSON.parse(localStorage.getItem(SETTINGS) || "{}");
  const params = new URLSearchParams(location.search);
  $("api").value = params.get("api") || saved.api || location.origin;
  $("model").value = params.get("model") || saved.model || "";
  $("alias").value = params.get("alias") || saved.alias || "latest";
  $("sync-form").addEventListener("submit", onSync);
  $("score-form").addEventListener("submit", onScore);
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("./sw.js").then(() => navigator.serviceWorker.ready).then(() => {
      $("sw").textContent = "ready";
      $("sw").className = "badge online";
      document.body.dataset.sw = "ready";
    }, (e) => { $("sw").textContent = `unavailable (${e.message})`; });
  }
  setState("empty", "No model yet: sync one.");
  const s = settings();
  if (s.model) {
    try {
      const c = client(s);
      if (await c.state()) setState("loaded", show(await c.load(), c.loadedEntry, "loaded from IndexedDB (no network used)"));
    } catch (e) {
      setState("error", `the stored model cannot be loaded: ${e.message}`);
    }
  }
  document.body.dataset.ready = "1";
}

start();
