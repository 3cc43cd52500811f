// The modelsync console: the report of modelsync/report/ (build.py + svg.py), live in the browser.
// render() is a line-by-line port of the Python renderer: the same data gives the same markup
// (tests/unit/test_report.py runs both). start() fetches the API answers every few seconds and renders
// them into <main id="report">. No dependencies; works from the local stack's /console/ (same origin).

export const SCHEMA = "modelsync.report/1";
export const DASH = "\u2013";
const WORST = 3;
const PREDICTION = "__prediction__";

// -- svg.py ---------------------------------------------------------------------------------------

export function num(x) {
  if (x === null || x === undefined) return "";
  return String(x);
}

export function fixed(x, d) {
  const scale = [1, 10, 100, 1000, 10000, 100000, 1000000][d];
  const n = Math.floor(Math.abs(x) * scale + 0.5);
  let s = num(n);
  if (d > 0) {
    s = "0".repeat(Math.max(0, d + 1 - s.length)) + s;
    s = s.slice(0, s.length - d) + "." + s.slice(s.length - d);
  }
  return (x < 0 && n !== 0 ? "-" : "") + s;
}

function trim(s) {
  if (s.includes(".")) s = s.replace(/0+$/, "").replace(/\.+$/, "");
  return s;
}

function short(x) {
  if (x === null || x === undefined) return DASH;
  const a = Math.abs(x);
  const d = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
  return trim(fixed(x, d));
}

export function count(n) {
  if (n === null || n === undefined) return DASH;
  let s = typeof n === "string" ? n : String(Math.trunc(n));
  const neg = s.startsWith("-");
  s = neg ? s.slice(1) : s;
  let out = "";
  while (s.length > 3) {
    out = "," + s.slice(s.length - 3) + out;
    s = s.slice(0, s.length - 3);
  }
  return (neg ? "-" : "") + s + out;
}

function pct(x) {
  return x === null || x === undefined ? DASH : fixed(x * 100, 1) + " %";
}

function ms(x) {
  if (x === null || x === undefined) return DASH;
  return fixed(x, x < 10 ? 2 : x < 100 ? 1 : 0) + " ms";
}

export function esc(s) {
  return (s === null || s === undefined ? "" : String(s)).replaceAll("&", "&amp;").replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;").replaceAll('"', "&quot;").replaceAll("'", "&#39;");
}

function fig(key, value) {
  const v = typeof value === "string" ? value : num(value);
  return ` data-figure="${esc(key)}" data-value="${esc(v)}"`;
}

function niceMax(v) {
  if (v === null || v === undefined || v <= 0) return 1.0;
  let p = 1.0;
  while (p * 10 <= v) p = p * 10;
  while (p > v) p = p / 10;
  for (const m of [1, 2, 2.5, 5]) {
    if (m * p >= v) return m * p;
  }
  return 10 * p;
}

function svg(w, h, label, body) {
  return `<svg class="chart" viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(label)}" ` +
    `xmlns="http://www.w3.org/2000/svg"><title>${esc(label)}</title>` + body.join("") + "</svg>";
}

function hbars(label, rows, top = null, thresholds = [], valueText = short) {
  const values = rows.filter((r) => r.value !== null && r.value !== undefined).map((r) => r.value);
  const all = [...values, ...thresholds.map((t) => t[1])];
  let hi = niceMax(all.length ? Math.max(...all) : null);
  if (top !== null && top !== undefined) hi = top;
  const x0 = 170, width = 400, row = 24;
  const h = 30 + row * rows.length + 20;
  const body = [];
  for (let i = 0; i < 5; i++) {
    const x = x0 + width * i / 4;
    body.push(`<line class="grid" x1="${fixed(x, 1)}" y1="20" x2="${fixed(x, 1)}" ` +
      `y2="${h - 20}"/><text class="tick" x="${fixed(x, 1)}" y="${h - 6}" ` +
      `text-anchor="middle">${esc(short(hi * i / 4))}</text>`);
  }
  rows.forEach((r, i) => {
    const y = 24 + row * i;
    const v = r.value === undefined ? null : r.value;
    const w = v === null ? 0.0 : width * Math.min(v, hi) / hi;
    body.push(`<g class="bar ${esc(r.cls || "s0")}"${fig(r.key, v)}>` +
      `<text class="label" x="${x0 - 8}" y="${y + 14}" text-anchor="end">${esc(r.label)}</text>` +
      `<rect x="${x0}" y="${y + 3}" width="${fixed(w, 1)}" height="${row - 8}"/>` +
      `<text class="value" x="${fixed(x0 + w + 6, 1)}" y="${y + 14}">${esc(valueText(v))}</text>` +
      "</g>");
  });
  thresholds.forEach(([name, t], j) => {
    const x = x0 + width * Math.min(t, hi) / hi;
    const [tx, anchor] = j === 0 ? [x - 3, "end"] : [x + 3, "start"];
    body.push(`<g class="threshold ${esc(name)}"${fig("threshold/" + name, t)}>` +
      `<line x1="${fixed(x, 1)}" y1="14" x2="${fixed(x, 1)}" y2="${h - 20}"/>` +
      `<text x="${fixed(tx, 1)}" y="12" text-anchor="${anchor}">${esc(name)} ${esc(short(t))}</text>` +
      "</g>");
  });
  return svg(620, h, label, body);
}

function lines(label, series, buckets, first, last, valueText = short) {
  const values = [];
  for (const s of series) for (const p of s.points) if (p.value !== null && p.value !== undefined) values.push(p.value);
  const hi = niceMax(values.length ? Math.max(...values) : null);
  const x0 = 60, y0 = 16, width = 540, height = 150;
  const body = [];
  for (let i = 0; i < 5; i++) {
    const y = y0 + height - height * i / 4;
    body.push(`<line class="grid" x1="${x0}" y1="${fixed(y, 1)}" x2="${x0 + width}" y2="${fixed(y, 1)}"/>` +
      `<text class="tick" x="${x0 - 6}" y="${fixed(y + 4, 1)}" text-anchor="end">` +
      `${esc(valueText(hi * i / 4))}</text>`);
  }
  const axis = y0 + height + 16;
  body.push(`<text class="tick" x="${x0}" y="${axis}">${esc(first)}</text>` +
    `<text class="tick" x="${x0 + width}" y="${axis}" text-anchor="end">${esc(last)}</text>`);
  series.forEach((s, j) => {
    const pts = s.points.filter((p) => p.value !== null && p.value !== undefined);
    const coords = pts.map((p) => [x0 + width * (p.i + 0.5) / buckets,
      y0 + height - height * Math.min(p.value, hi) / hi]);
    body.push(`<g class="series ${esc(s.cls)}">`);
    if (coords.length > 1) {
      body.push('<polyline points="' + coords.map(([x, y]) => `${fixed(x, 1)},${fixed(y, 1)}`).join(" ") + '"/>');
    }
    pts.forEach((p, k) => {
      const [x, y] = coords[k];
      body.push(`<circle cx="${fixed(x, 1)}" cy="${fixed(y, 1)}" r="3.5"${fig(p.key, p.value)}>` +
        `<title>${esc(s.name)}: ${esc(valueText(p.value))}</title></circle>`);
    });
    const ly = axis + 18 + 16 * Math.floor(j / 3);
    const lx = x0 + 180 * (j % 3);
    body.push(`<rect class="swatch" x="${lx}" y="${ly - 9}" width="10" height="10"/>` +
      `<text class="legend" x="${lx + 14}" y="${ly}">${esc(s.name)}</text></g>`);
  });
  const h = axis + 18 + 16 * Math.floor((series.length + 2) / 3);
  return svg(620, h, label, body);
}

function columns(label, bins, groups) {
  const values = [];
  for (const g of groups) for (const v of g.values || []) values.push(v);
  const hi = niceMax(values.length ? Math.max(...values) : null);
  const x0 = 50, y0 = 12, width = 550, height = 120;
  const n = Math.max(1, bins.length);
  const slot = width / n;
  const bar = slot * 0.8 / Math.max(1, groups.length);
  const body = [];
  for (let i = 0; i < 5; i++) {
    const y = y0 + height - height * i / 4;
    body.push(`<line class="grid" x1="${x0}" y1="${fixed(y, 1)}" x2="${x0 + width}" y2="${fixed(y, 1)}"/>` +
      `<text class="tick" x="${x0 - 6}" y="${fixed(y + 4, 1)}" text-anchor="end">` +
      `${esc(pct(hi * i / 4))}</text>`);
  }
  bins.forEach((name, i) => {
    body.push(`<text class="tick bin" x="${fixed(x0 + slot * (i + 0.5), 1)}" y="${y0 + height + 14}" ` +
      `text-anchor="middle">${esc(name)}</text>`);
  });
  groups.forEach((g, j) => {
    body.push(`<g class="series ${esc(g.cls)}">`);
    (g.values || []).forEach((v, i) => {
      const bh = height * Math.min(v, hi) / hi;
      const x = x0 + slot * i + slot * 0.1 + bar * j;
      body.push(`<rect x="${fixed(x, 1)}" y="${fixed(y0 + height - bh, 1)}" width="${fixed(bar, 1)}" ` +
        `height="${fixed(bh, 1)}"${fig(g.key + "/" + String(i), v)}>` +
        `<title>${esc(g.name)} ${esc(bins[i])}: ${esc(pct(v))}</title></rect>`);
    });
    const lx = x0 + 140 * j;
    const ly = y0 + height + 34;
    body.push(`<rect class="swatch" x="${lx}" y="${ly - 9}" width="10" height="10"/>` +
      `<text class="legend" x="${lx + 14}" y="${ly}">${esc(g.name)}</text></g>`);
  });
  return svg(620, y0 + height + 44, label, body);
}

function split(label, parts) {
  let x = 0.0;
  const width = 600;
  const body = [];
  for (const p of parts) {
    const w = width * p.share;
    body.push(`<g class="part ${esc(p.cls)}"${fig(p.key, p.share)}>` +
      `<rect x="${fixed(10 + x, 1)}" y="4" width="${fixed(w, 1)}" height="22"/>` +
      `<text x="${fixed(10 + x + w / 2, 1)}" y="19" text-anchor="middle">` +
      `${esc(p.name)} ${esc(pct(p.share))}</text></g>`);
    x = x + w;
  }
  return svg(620, 30, label, body);
}

// -- build.py -------------------------------------------------------------------------------------

const has = (v) => v !== null && v !== undefined;
const str = (v) => (has(v) ? String(v) : "None");

function stamp(s) {
  return s ? String(s).slice(0, 16).replace("T", " ") : DASH;
}

function epoch(s) {
  return Date.parse(s) / 1000;
}

function vname(v) {
  return has(v) ? "v" + num(v) : DASH;
}

function featureLabel(f) {
  return f === PREDICTION ? "predictions" : f;
}

function unavailable(section) {
  if (!has(section)) return "not collected";
  return typeof section === "object" && !Array.isArray(section) ? String(section.unavailable || "") : "not collected";
}

function note(text) {
  return `<p class="note">${esc(text)}</p>`;
}

function tile(label, text, key, value, cls = "") {
  return `<div class="tile ${esc(cls)}"><span class="tlabel">${esc(label)}</span>` +
    `<span class="tvalue"${fig(key, value)}>${esc(text)}</span></div>`;
}

export function render(data) {
  return [header(data), summary(data), versions(data), aliases(data), metrics(data), drift(data),
    devices(data)].join("\n");
}

function header(data) {
  const name = String(data.name || "");
  return `<header><h1>modelsync report: <span${fig("name", name)}>${esc(name)}</span></h1>` +
    `<p class="meta">Generated ${esc(stamp(data.generated_at))} UTC from ` +
    `${esc(data.source || DASH)} · window since ${esc(stamp(data.since))} UTC · drift of ` +
    `<b${fig("version", data.version)}>${esc(vname(data.version))}</b></p></header>`;
}

function summary(data) {
  const model = data.model || {};
  const vs = model.versions || [];
  const latest = ((model.aliases || {}).latest || {}).version;
  const tiles = [tile("Versions", count(vs.length), "summary/versions", vs.length),
    tile("latest", vname(latest), "summary/latest", has(latest) ? latest : null)];
  const m = data.metrics || {};
  if (!unavailable(m)) {
    let requests = 0;
    for (const v of m.versions || []) requests = requests + Math.trunc(v.requests || 0);
    tiles.push(tile("Requests", count(requests), "summary/requests", requests));
  }
  const d = data.drift || {};
  if (!unavailable(d)) {
    tiles.push(tile("Drift " + vname(d.version), str(d.status), "summary/drift", str(d.status),
      "status-" + str(d.status)));
  }
  const t = data.telemetry || {};
  if (!unavailable(t)) {
    tiles.push(tile("Devices", count(t.devices || 0), "summary/devices", t.devices || 0));
  }
  return '<section class="tiles">' + tiles.join("") + "</section>";
}

function outcome(v, latest) {
  if (v.status === "pending") return "pending approval";
  if (v.schema_change_count) {
    return `published; latest held at ${vname(v.compared_with)} ` +
      `(${num(v.schema_change_count)} input-schema changes)`;
  }
  return latest === v.version ? "published; latest" : "published";
}

function versions(data) {
  const model = data.model || {};
  const latest = ((model.aliases || {}).latest || {}).version;
  const rows = [];
  const sorted = [...(model.versions || [])].sort((a, b) => (a.version || 0) - (b.version || 0));
  for (const v of sorted) {
    const k = "versions/" + num(v.version) + "/";
    const methods = v.methods || [];
    rows.push(
      `<tr><td${fig(k + "version", v.version)}>${esc(vname(v.version))}</td>` +
      `<td${fig(k + "status", String(v.status || ""))}>${esc(v.status || DASH)}</td>` +
      `<td>${esc(outcome(v, latest))}</td>` +
      `<td>${esc(stamp(v.created_at))}</td>` +
      `<td>${esc(v.model_type || DASH)}</td><td>${esc(v.task || DASH)}</td>` +
      `<td class="n"${fig(k + "feature_count", v.feature_count)}>${esc(count(v.feature_count))}</td>` +
      `<td class="n"${fig(k + "class_count", v.class_count)}>${esc(count(v.class_count))}</td>` +
      `<td>${esc(methods.length ? methods.join(", ") : DASH)}</td>` +
      `<td class="n"${fig(k + "schema_change_count", v.schema_change_count || 0)}>` +
      `${esc(count(v.schema_change_count || 0))}</td>` +
      `<td class="hash">${esc(String(v.sha256 || "").slice(0, 12))}</td></tr>`);
  }
  const head = "<tr><th>Version</th><th>Status</th><th>Publication</th><th>Created (UTC)</th><th>Type</th>" +
    "<th>Task</th><th>Features</th><th>Classes</th><th>Methods</th><th>Schema changes</th>" +
    "<th>sha256</th></tr>";
  const body = rows.length ? `<table class="data">${head}${rows.join("")}</table>` : note("No version yet.");
  return '<section id="versions"><h2>Versions</h2><p class="hint">Every version passed validation at ' +
    "publish (document checks and its test vectors re-scored); the counts are what it declares." +
    `</p>${body}</section>`;
}

function aliases(data) {
  const table = (data.model || {}).aliases || {};
  const out = [];
  for (const name of Object.keys(table).sort()) {
    const a = table[name];
    const k = "aliases/" + name + "/";
    const canary = a.canary || null;
    const weight = canary ? canary.weight : null;
    const parts = [{ name: vname(a.version), share: canary ? 1 - weight : 1, cls: "base", key: k + "base_share" }];
    if (canary) {
      parts.push({ name: vname(canary.version) + " canary", share: weight, cls: "canary", key: k + "canary_weight" });
    }
    const history = (a.history || []).map((h) => vname(h));
    out.push(
      `<div class="alias"><h3>${esc(name)}</h3><p>` +
      `version <b${fig(k + "version", a.version)}>${esc(vname(a.version))}</b> · ` +
      `canary <b${fig(k + "canary_version", canary ? canary.version : null)}>` +
      `${esc(canary ? vname(canary.version) : "none")}</b> · ` +
      `revision <b${fig(k + "revision", a.revision)}>${esc(num(a.revision))}</b> · ` +
      `${esc(a.action || DASH)} ${esc(stamp(a.updated_at))} UTC</p>` +
      split(`${name}: base and canary weights`, parts) +
      `<p class="history">history: <span${fig(k + "history", (a.history || []).map((h) => num(h)).join(","))}>` +
      `${esc(history.length ? history.join(" → ") : "none")}</span></p></div>`);
  }
  const body = out.length ? out.join("") : note("No alias.");
  return `<section id="aliases"><h2>Aliases</h2>${body}</section>`;
}

function metrics(data) {
  const m = data.metrics || {};
  const why = unavailable(m);
  if (why) return `<section id="metrics"><h2>Serving per version</h2>${note("Metrics unavailable: " + why)}</section>`;
  const views = m.versions || [];
  if (!views.length) {
    return `<section id="metrics"><h2>Serving per version</h2>` +
      `${note("No scoring request in the window.")}</section>`;
  }
  const rows = [];
  const bars = [];
  views.forEach((v, i) => {
    const k = "metrics/" + num(v.version) + "/" + str(v.side) + "/";
    const lat = v.total_latency_ms || {};
    const cells = ["mean", "p50", "p90", "p99", "max"].map(
      (s) => `<td class="n"${fig(k + "total_latency_ms/" + s, lat[s])}>${esc(ms(lat[s]))}</td>`).join("");
    rows.push(`<tr><td>${esc(vname(v.version))}</td><td>${esc(v.side)}</td>` +
      `<td class="n"${fig(k + "requests", v.requests)}>${esc(count(v.requests))}</td>` +
      `<td class="n"${fig(k + "rows", v.rows)}>${esc(count(v.rows))}</td>` +
      `<td class="n"${fig(k + "errors", v.errors)}>${esc(count(v.errors))}</td>` +
      `<td class="n"${fig(k + "error_rate", v.error_rate)}>${esc(pct(v.error_rate))}</td>` +
      `${cells}</tr>`);
    bars.push({ label: vname(v.version) + " " + str(v.side), value: v.requests, key: k + "requests",
      cls: "s" + String(i % 6) });
  });
  const head = "<tr><th>Version</th><th>Side</th><th>Requests</th><th>Rows</th><th>Errors</th><th>Error rate</th>" +
    "<th>Latency mean</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>";
  const since = String(m.since), until = String(m.until || m.since), width = m.bucket_seconds || 3600;
  const n = Math.max(1, Math.ceil((epoch(until) - epoch(since)) / width));
  const index = (b) => Math.floor((epoch(b.start) - epoch(since)) / width);

  function series(pick, what) {
    return views.map((v, i) => {
      const k = "metrics/" + num(v.version) + "/" + str(v.side) + "/series/";
      return { name: vname(v.version) + " " + str(v.side), cls: "s" + String(i % 6),
        points: (v.series || []).map((b) => ({ i: index(b), value: pick(b), key: k + b.start + "/" + what })) };
    });
  }

  const first = stamp(since), last = stamp(until);
  const charts = [
    "<figure>" + hbars("Requests per version and side", bars, null, [], count) +
    "<figcaption>Requests per version and rollout side</figcaption></figure>",
    "<figure>" + lines("Requests over time", series((b) => b.requests, "requests"), n, first, last, count) +
    `<figcaption>Requests per ${esc(num(width))} s bucket</figcaption></figure>`,
    "<figure>" + lines("Error rate over time", series((b) => b.error_rate, "error_rate"), n, first, last, pct) +
    "<figcaption>Error rate per bucket</figcaption></figure>"];
  views.forEach((v) => {
    const k = "metrics/" + num(v.version) + "/" + str(v.side) + "/series/";
    const label = vname(v.version) + " " + str(v.side);
    const per = ["p50", "p90", "p99"].map((p, j) => ({ name: p, cls: "s" + String(j), points:
      (v.series || []).map((b) => ({ i: index(b), value: (b.total_latency_ms || {})[p],
        key: k + b.start + "/total_latency_ms/" + p })) }));
    charts.push("<figure>" + lines("Latency of " + label, per, n, first, last, ms) +
      `<figcaption>Total latency percentiles of ${esc(label)} per bucket</figcaption></figure>`);
  });
  return `<section id="metrics"><h2>Serving per version</h2>${ERROR_HINT}<table class="data">${head}${rows.join("")}</table>` +
    `<div class="charts">${charts.join("")}</div></section>`;
}

const ERROR_HINT = '<p class="hint">Error rate: failed requests out of requests; a batch input counts its refused ' +
  "rows out of the rows it read.</p>";

function binLabels(d) {
  if (d.kind === "categorical") return (d.bins || []).map((b) => String(b));
  return (d.bins || []).map(([lo, hi]) => (!has(lo) && !has(hi) ? "all" : has(hi) ? "≤ " + short(hi) : "> " + short(lo)));
}

function psiText(v) {
  return has(v) ? fixed(v, 3) : DASH;
}

function drift(data) {
  const d = data.drift || {};
  const why = unavailable(d);
  const title = "<h2>Drift of " + esc(vname(!why ? d.version : data.version)) + "</h2>";
  if (why) return `<section id="drift">${title}${note("Drift unavailable: " + why)}</section>`;
  if (!d.baseline) {
    return `<section id="drift">${title}${note("This version carries no baseline (metadata.baseline).")}</section>`;
  }
  const th = d.thresholds || {};
  const feats = d.features || [];
  const intro = `<p>Status <b class="status status-${esc(d.status)}"${fig("drift/status", str(d.status))}>` +
    `${esc(d.status)}</b> over <b${fig("drift/rows", d.rows)}>${esc(count(d.rows))}</b>` +
    ` rows in <b${fig("drift/batches", d.batches)}>${esc(count(d.batches))}</b> batches ` +
    "(Score and devices). Population stability index per feature: warn from " +
    `<b${fig("drift/thresholds/warn", th.warn)}>${esc(num(th.warn))}</b>, alert from ` +
    `<b${fig("drift/thresholds/alert", th.alert)}>${esc(num(th.alert))}</b>.</p>`;
  const bars = feats.map((e) => ({ label: featureLabel(e.feature), value: has(e.psi) ? e.psi : null,
    key: "drift/" + e.feature + "/psi", cls: "status-" + str(e.status) }));
  const chart = "<figure>" + hbars("PSI per feature", bars, null, [["warn", th.warn || 0.1],
    ["alert", th.alert || 0.25]], psiText) +
    "<figcaption>PSI per feature (dashed: warn and alert thresholds)</figcaption></figure>";
  const rows = feats.map((e) =>
    `<tr><td>${esc(featureLabel(e.feature))}</td>` +
    `<td class="n"${fig("drift/" + e.feature + "/psi", e.psi)}>${esc(psiText(e.psi))}</td>` +
    `<td class="n"${fig("drift/" + e.feature + "/outside_range", e.outside_range)}>` +
    `${esc(pct(e.outside_range))}</td>` +
    `<td class="n"${fig("drift/" + e.feature + "/rows", e.rows)}>${esc(count(e.rows))}</td>` +
    `<td class="status-${esc(e.status)}"${fig("drift/" + e.feature + "/status", str(e.status))}>` +
    `${esc(e.status)}</td></tr>`).join("");
  const table = '<table class="data"><tr><th>Feature</th><th>PSI</th><th>Outside range</th><th>Rows</th>' +
    `<th>Status</th></tr>${rows}</table>`;
  const ranked = feats.filter((e) => has(e.psi)).sort((a, b) => b.psi - a.psi).slice(0, WORST);
  const dists = new Map((d.distributions || []).map((x) => [x.feature, x]));
  const figs = [];
  for (const e of ranked) {
    const x = dists.get(e.feature);
    if (!x) continue;
    const k = "drift/" + e.feature + "/distribution/";
    const label = featureLabel(e.feature);
    figs.push("<figure>" + columns("Distribution of " + label, binLabels(x), [
      { name: "baseline", cls: "base", values: x.baseline, key: k + "baseline" },
      { name: "observed", cls: "obs", values: x.observed, key: k + "observed" }]) +
      `<figcaption>${esc(label)}: share of rows per bin, baseline vs observed (PSI ` +
      `${esc(psiText(e.psi))})</figcaption></figure>`);
  }
  const dist = figs.length ? `<h3>Worst features: baseline vs observed</h3><div class="charts">${figs.join("")}</div>` : "";
  return `<section id="drift">${title}${intro}<div class="charts">${chart}</div>${table}${dist}</section>`;
}

function devices(data) {
  const t = data.telemetry || {};
  const why = unavailable(t);
  if (why) return `<section id="devices"><h2>Devices</h2>${note("Telemetry unavailable: " + why)}</section>`;
  const vs = t.versions || [];
  if (!vs.length) return `<section id="devices"><h2>Devices</h2>${note("No device telemetry in the window.")}</section>`;
  const bars = vs.map((v, i) => ({ label: vname(v.version), value: v.devices,
    key: "telemetry/" + num(v.version) + "/devices", cls: "s" + String(i % 6) }));
  const rows = vs.map((v) => {
    const k = "telemetry/" + num(v.version) + "/";
    return `<tr><td>${esc(vname(v.version))}</td>` +
      `<td class="n"${fig(k + "devices", v.devices)}>${esc(count(v.devices))}</td>` +
      `<td class="n"${fig(k + "batches", v.batches)}>${esc(count(v.batches))}</td>` +
      `<td class="n"${fig(k + "rows", v.rows)}>${esc(count(v.rows))}</td>` +
      `<td class="n"${fig(k + "errors", v.errors)}>${esc(count(v.errors))}</td>` +
      `<td class="n"${fig(k + "error_rate", v.error_rate)}>${esc(pct(v.error_rate))}</td>` +
      `<td${fig(k + "window_end", String(v.window_end || ""))}>${esc(stamp(v.window_end))}</td>` +
      "</tr>";
  });
  const head = "<tr><th>Version</th><th>Devices</th><th>Batches</th><th>Rows</th><th>Errors</th><th>Error rate</th>" +
    "<th>Last seen (UTC)</th></tr>";
  return `<section id="devices"><h2>Devices</h2><p><b${fig("telemetry/devices", t.devices)}>` +
    `${esc(count(t.devices))}</b> devices reported in the window.</p><div class="charts"><figure>` +
    hbars("Devices per version", bars, null, [], count) +
    `<figcaption>Devices per version</figcaption></figure></div><table class="data">${head}${rows.join("")}` +
    "</table>" + lastSeen(t) + "</section>";
}

function lastSeen(t) {
  const rows = (t.last_seen || []).map((d) => {
    const k = "telemetry/device/" + String(d.device_id) + "/";
    return `<tr><td>${esc(d.device_id)}</td>` +
      `<td${fig(k + "version", d.version)}>${esc(vname(d.version))}</td>` +
      `<td${fig(k + "last_seen", String(d.last_seen || ""))}>${esc(stamp(d.last_seen))}</td></tr>`;
  });
  if (!rows.length) return "";
  return '<h3>Devices, most recently seen first</h3><table class="data"><tr><th>Device</th><th>Version</th>' +
    `<th>Last seen (UTC)</th></tr>${rows.join("")}</table>`;
}

// -- live: the API's answers, as build.collect gathers them ------------------------------------------

export function sinceIso(text, now = Date.now()) {
  const units = { s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400 };
  const m = /^\s*(\d+)\s*([smhdw])\s*$/.exec(text || "24h");
  const t = m ? now - Number(m[1]) * units[m[2]] * 1000 : Date.parse(text);
  return new Date(Number.isNaN(t) ? now - 86400000 : t).toISOString().replace(/\.\d{3}Z$/, "Z");
}

async function getJson(api, path, query, fetchImpl) {
  const qs = query ? "?" + new URLSearchParams(query).toString() : "";
  const resp = await fetchImpl(api + path + qs, { headers: { Accept: "application/json" } });
  const text = await resp.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (!resp.ok) {
    const err = body && typeof body === "object" ? body.error || body.message || body : body;
    const message = err && typeof err === "object" ? err.message || JSON.stringify(err) : String(err);
    throw new Error(`GET ${path}: HTTP ${resp.status}: ${message}`);
  }
  return body;
}

export async function collect(api, name, since, version = null, source = "", fetchImpl = fetch) {
  const base = "/models/" + encodeURIComponent(name);
  const model = await getJson(api, base, null, fetchImpl);
  if (!has(version)) {
    const latest = (model.aliases || {}).latest;
    const all = (model.versions || []).map((v) => v.version);
    version = latest && has(latest.version) ? latest.version : all.length ? Math.max(...all) : null;
  }
  const section = async (path, query) => {
    try { return await getJson(api, base + path, query, fetchImpl); } catch (e) { return { unavailable: e.message }; }
  };
  const driftQuery = { since, ...(version ? { version: String(version) } : {}) };
  const [metricsAnswer, driftAnswer, telemetryAnswer] = await Promise.all([
    section("/metrics", { since }), section("/drift", driftQuery), section("/telemetry", { since })]);
  return { schema: SCHEMA, name, source, generated_at: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"), since,
    version, model, metrics: metricsAnswer, drift: driftAnswer, telemetry: telemetryAnswer };
}

// start(): the page's loop. `fetchImpl` is how the page reads the API: a deployed stack's page passes one
// that adds its auth header, e.g. (url, init) => fetch(url, {...init, headers: {...init.headers,
// Authorization: idToken}}) (docs/deploy.md, "Seeing a model at a glance").
export function start(doc = document, loc = location, fetchImpl = (url, init) => fetch(url, init)) {
  const params = new URLSearchParams(loc.search);
  const api = (params.get("api") || "").replace(/\/$/, "");
  const every = Math.max(1, Number(params.get("every") || 5));
  const main = doc.getElementById("report");
  const live = doc.getElementById("live");
  let busy = false;
  async function tick() {
    if (busy) return;
    busy = true;
    try {
      let name = params.get("model");
      if (!name) {
        const list = await getJson(api, "/models", null, fetchImpl);
        name = ((list.models || [])[0] || {}).name;
        if (!name) throw new Error("no model in the registry yet");
      }
      const version = params.get("version") ? Number(params.get("version")) : null;
      const data = await collect(api, name, sinceIso(params.get("since") || "24h"), version,
        "the live API at " + (api || loc.origin), fetchImpl);
      main.innerHTML = render(data);
      main.dataset.generatedAt = data.generated_at;
      main.dataset.since = data.since;
      live.textContent = `live: refreshed ${data.generated_at} (every ${every} s)`;
    } catch (e) {
      live.textContent = `live: ${e.message} (retrying every ${every} s)`;
    } finally {
      busy = false;
    }
  }
  tick();
  return setInterval(tick, every * 1000);
}
