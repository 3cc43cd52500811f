// CSV in, CSV out, as `modelsync predict` (scorer/tabular.py) reads and writes it: the input columns
// carried through, then `prediction` (or prediction_<i> / transform_<i>), then proba_<class> columns.
// Numbers are written as Python's repr writes floats, so both tools produce the same bytes.
// No Node-only API: the command line (bin/modelsync-score.mjs) does the file handling.
import { InvalidInput, MethodNotSupported } from "./errors.js";
import { parseStrict } from "./json.js";

// The cell rules of scorer/tabular.py (docs/model-format.md, "Tabular files"): MISSING_TOKENS (exact, any
// case, no surrounding spaces) and NUMBER_PATTERN (a decimal number or inf/infinity; no spaces,
// underscores, hex or "nan").
const MISSING_TOKENS = new Set(["", "na", "n/a", "nan", "null", "none"]);
const NUMBER = /^[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)$/;

function numberOf(cell) {
  const i = cell.search(/[iI]/);
  if (i >= 0) return cell[0] === "-" ? -Infinity : Infinity;
  return Number(cell);
}

/** A categorical cell: a declared category stays that category; otherwise a missing token is missing
 * (null); with numeric categories a number is that number; anything else stays text. */
function categoryOf(cell, feature) {
  const cats = feature.categories || [];
  if (cats.some((c) => c === cell)) return cell;
  if (cats.length && cats.every((c) => typeof c === "number") && NUMBER.test(cell)) return numberOf(cell);
  if (MISSING_TOKENS.has(cell.toLowerCase())) return null;
  return cell;
}

/** RFC 4180 CSV text -> rows of cell strings (quotes, doubled quotes, CRLF / LF; blank lines skipped).
 * `lines`, when given, receives each row's physical line number (where the row starts, from 1). */
export function parseCsv(text, lines = null) {
  const rows = [];
  let row = [], cell = "", i = 0, quoted = false, any = false, line = 1, start = 1;
  const n = text.length;
  const endRow = () => {
    row.push(cell);
    if (row.length > 1 || row[0] !== "" || any) {
      rows.push(row);
      if (lines) lines.push(start);
    }
    row = []; cell = ""; any = false;
  };
  while (i < n) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') { cell += '"'; i += 2; continue; }
        quoted = false; i++; continue;
      }
      if (c === "\n" || (c === "\r" && text[i + 1] !== "\n")) line++;
      cell += c; i++; continue;
    }
    if (c === '"') { quoted = true; any = true; i++; continue; }
    if (c === ",") { row.push(cell); cell = ""; i++; continue; }
    if (c === "\r" || c === "\n") {
      endRow();
      i += c === "\r" && text[i + 1] === "\n" ? 2 : 1;
      start = ++line;
      continue;
    }
    cell += c; i++;
  }
  if (quoted) throw new InvalidInput(`the CSV ends inside a quoted cell (opened on line ${start} or later)`);
  if (cell !== "" || row.length || any) endRow();
  return rows;
}

/** Python's repr of a short value in an error message (scorer.tabular._show). */
function show(v) {
  const text = typeof v === "string" ? `'${v}'` : v === null ? "None" : typeof v === "object" || typeof v === "boolean" ? JSON.stringify(v) : String(v);
  return text.length <= 60 ? text : text.slice(0, 57) + "...";
}

function csvCell(s) {
  return /[",\r\n]/.test(s) ? '"' + s.replaceAll('"', '""') + '"' : s;
}

/** Python's repr of a float: shortest round-trip digits, exponent below 1e-4 and from 1e16 on. */
export function pyFloat(v) {
  if (Number.isNaN(v)) return "nan";
  if (v === Infinity) return "inf";
  if (v === -Infinity) return "-inf";
  if (v === 0) return Object.is(v, -0) ? "-0.0" : "0.0";
  const [mant, exp] = Math.abs(v).toExponential().split("e");
  const digits = mant.replace(".", "");
  const e = Number(exp);
  const decpt = e + 1;
  const sign = v < 0 ? "-" : "";
  if (decpt > 16 || decpt < -3) {
    const m = digits.length > 1 ? digits[0] + "." + digits.slice(1) : digits;
    return `${sign}${m}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
  }
  if (decpt <= 0) return `${sign}0.${"0".repeat(-decpt)}${digits}`;
  if (decpt >= digits.length) return `${sign}${digits}${"0".repeat(decpt - digits.length)}.0`;
  return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
}

/** Whether a model's labels are integers (Python writes them without ".0"). */
function integerOutputs(model) {
  if (model.task === "clustering" || model.task === "outlier_detection") return true;
  const c = model.classes;
  if (c === null) return false;
  const flat = c.flat();
  return flat.every((v) => typeof v === "number" && Number.isInteger(v));
}

/** One output cell, as scorer.tabular.format_value writes it (NaN = empty cell). */
export function formatValue(v, integer = false) {
  if (v === null || v === undefined) return "";
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "number") {
    if (Number.isNaN(v)) return "";
    return integer && Number.isInteger(v) ? String(v) : pyFloat(v);
  }
  return String(v);
}

/** A bad row, named as `modelsync predict` names it: its index among the data rows (from 0) and the physical
 * line where it starts. */
function badRow(r, line, reason, feature = null) {
  return new InvalidInput(`row ${r} (line ${line}): ${reason}`, r, feature);
}

function parseNumber(cell, r, line, name) {
  if (MISSING_TOKENS.has(cell.toLowerCase())) return NaN;
  if (NUMBER.test(cell)) return numberOf(cell);
  throw badRow(r, line, `feature '${name}': expected a number, got ${show(cell.slice(0, 60))}`, name);
}

/** A JSON Lines value for a numeric feature: numbers as they are, null missing, text by the cell rules. */
function jsonNumber(v, r, line, name) {
  if (typeof v === "number") return v;
  if (v === null) return NaN;
  if (typeof v === "string") return parseNumber(v, r, line, name);
  throw badRow(r, line, `feature '${name}': expected a number, got ${show(v)}`, name);
}

function jsonCategory(v, r, line, feature) {
  if (typeof v === "string") return categoryOf(v, feature);
  if (v === null || typeof v === "number") return v;
  throw badRow(r, line, `feature '${feature.name}': expected a category (string or number), got ${show(v)}`, feature.name);
}

/** The output column names and a formatter for each output row (shared by CSV and JSON Lines). */
function outputPlan(model, proba, n) {
  if (proba && !model.supports("predict_proba")) throw new MethodNotSupported(`model '${model.name}' has no predict_proba; it offers ${model.methods.join(", ")}`);
  const hasPredict = model.supports("predict");
  const outputs = model.document.test_vectors && model.document.test_vectors.outputs;
  const sample = outputs && outputs[hasPredict ? "predict" : "transform"];
  const width = Array.isArray(sample) && sample.length && Array.isArray(sample[0]) ? sample[0].length : 1;
  let cols = hasPredict ? (width === 1 ? ["prediction"] : Array.from({ length: width }, (_, i) => `prediction_${i}`))
    : Array.from({ length: width }, (_, i) => `transform_${i}`);
  const integer = integerOutputs(model);
  if (proba) {
    const classes = model.classes;
    if (classes === null || classes.some(Array.isArray)) throw new MethodNotSupported(`model '${model.name}' has no per-class probabilities`);
    cols = cols.concat(classes.map((c) => `proba_${formatValue(c, integer)}`));
  }
  return { cols, hasPredict, integer, n };
}

function score(model, plan, matrix, proba) {
  const main = matrix.length ? (plan.hasPredict ? model.predict(matrix) : model.transform(matrix)) : [];
  const probabilities = proba && matrix.length ? model.predictProba(matrix) : null;
  return matrix.map((_, r) => {
    const outs = [].concat(main[r]).map((v) => [v, plan.hasPredict && plan.integer]);
    if (probabilities) outs.push(...probabilities[r].map((v) => [v, false]));
    return outs;
  });
}

/**
 * Score CSV text with a loaded model; returns the output CSV text (LF line ends, as `modelsync predict`).
 * `proba`: add one proba_<class> column per class. The first bad row (in line order) throws InvalidInput
 * naming it as `modelsync predict` does: "row 3 (line 5): feature 'age': expected a number, got 'abc'".
 */
export function scoreCsv(model, text, { proba = false } = {}) {
  const lines = [];
  const rows = parseCsv(text, lines);
  if (!rows.length) throw new InvalidInput("the CSV is empty: expected a header line naming the columns");
  const header = rows[0].map((h, k) => (k === 0 && h.startsWith("\ufeff") ? h.slice(1) : h).trim());
  if (!header.some(Boolean)) throw new InvalidInput("the CSV header is empty: expected column names");
  const seen = new Set();
  for (const h of header) {
    if (seen.has(h)) throw new InvalidInput(`the CSV header names column '${h}' twice`, null, h);
    seen.add(h);
  }
  const data = rows.slice(1);
  const index = new Map(header.map((h, k) => [h, k]));
  const missing = model.features.find((f) => !index.has(f.name));
  if (missing) throw new InvalidInput(`missing feature '${missing.name}': the model needs column(s) ${model.featureNames.join(", ")}`, null, missing.name);
  const plan = outputPlan(model, proba, data.length);
  const matrix = data.map((row, r) => {
    const line = lines[r + 1];
    if (row.length !== header.length) throw badRow(r, line, `expected ${header.length} fields as in the header, got ${row.length}`);
    return model.features.map((f) => {
      const cell = row[index.get(f.name)];
      return f.type === "categorical" ? categoryOf(cell, f) : parseNumber(cell, r, line, f.name);
    });
  });
  const scored = score(model, plan, matrix, proba);
  const out = [header.concat(plan.cols).map(csvCell).join(",")];
  data.forEach((row, r) => out.push(row.concat(scored[r].map(([v, integer]) => formatValue(v, integer))).map(csvCell).join(",")));
  return out.join("\n") + "\n";
}

// ---------------------------------------------------------------- JSON Lines
/** A JSON value as Python's json.dumps(ensure_ascii=False) writes it. */
function pyJsonString(s) {
  return '"' + s.replace(/[\u0000-\u001f"\\]/g, (c) => ({ '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f" })[c]
    || `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`) + '"';
}

/**
 * One JSON Lines record re-written as Python writes it back (json.dumps: ", " and ": " separators,
 * integers as written, other numbers as repr(float)): [key, value text] pairs of the top-level object,
 * read from the text because a JavaScript number cannot tell 1.0 from 1. The text is valid (parseStrict
 * read it first).
 */
function pyJsonPairs(text) {
  let i = 0;
  const ws = () => { while (i < text.length && " \t\r\n".includes(text[i])) i++; };
  const value = () => {
    ws();
    const c = text[i];
    if (c === "{" || c === "[") {
      const close = c === "{" ? "}" : "]";
      i++;
      const parts = [];
      ws();
      if (text[i] === close) { i++; return c + close; }
      for (;;) {
        if (c === "{") {
          const k = value();
          ws(); i++; // ':'
          parts.push(`${k}: ${value()}`);
        } else parts.push(value());
        ws();
        if (text[i++] === close) return c + parts.join(", ") + close;
      }
    }
    if (c === '"') {
      const start = i++;
      while (text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
      i++;
      return pyJsonString(JSON.parse(text.slice(start, i)));
    }
    const m = /^(?:true|false|null|-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?)/.exec(text.slice(i, i + 400));
    i += m[0].length;
    if (m[0] === "true" || m[0] === "false" || m[0] === "null") return m[0];
    return m[1] === undefined && m[2] === undefined ? BigInt(m[0]).toString() : pyFloat(Number(m[0]));
  };
  const pairs = [];
  ws();
  i++; // '{'
  ws();
  if (text[i] === "}") return pairs;
  for (;;) {
    ws();
    const k = value();
    ws(); i++; // ':'
    pairs.push([JSON.parse(k), value()]);
    ws();
    if (text[i++] === "}") return pairs;
  }
}

function jsonOut(v, integer) {
  if (v === null || v === undefined) return "null";
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number") {
    if (!Number.isFinite(v)) return "null";
    return integer && Number.isInteger(v) ? String(v) : pyFloat(v);
  }
  return pyJsonString(String(v));
}

/**
 * Score JSON Lines text (one object keyed by column name per line; blank lines skipped) as `modelsync
 * predict --format jsonl` does: each input object with the output columns added (NaN as null).
 */
export function scoreJsonl(model, text, { proba = false } = {}) {
  const plan = outputPlan(model, proba, 0);
  const records = [];
  const physical = text.split(/\r\n|\n|\r/);
  physical.forEach((raw, k) => {
    const line = k + 1;
    const t = k === 0 && raw.startsWith("\ufeff") ? raw.slice(1) : raw;
    if (!t.trim()) return;
    const r = records.length;
    let obj;
    try {
      obj = parseStrict(t);
    } catch (e) {
      if (/must be a JSON object/.test(e.message)) throw badRow(r, line, "expected a JSON object keyed by column name");
      throw badRow(r, line, `not valid JSON: ${e.message.replace(/^invalid model: \/: /, "").replace(/^not valid JSON: /, "")}`);
    }
    const absent = model.features.find((f) => !Object.prototype.hasOwnProperty.call(obj, f.name));
    if (absent) throw badRow(r, line, `missing feature '${absent.name}'`, absent.name);
    records.push({ text: t, row: model.features.map((f) => (f.type === "categorical" ? jsonCategory(obj[f.name], r, line, f) : jsonNumber(obj[f.name], r, line, f.name))) });
  });
  const scored = score(model, plan, records.map((rec) => rec.row), proba);
  return records.map((rec, r) => {
    const pairs = pyJsonPairs(rec.text);
    plan.cols.forEach((c, j) => {
      const [v, integer] = scored[r][j];
      const at = pairs.findIndex(([k]) => k === c); // {**record, **outputs}: an input column of that name is replaced in place
      const entry = [c, jsonOut(v, integer)];
      if (at >= 0) pairs[at] = entry; else pairs.push(entry);
    });
    return "{" + pairs.map(([k, v]) => `${pyJsonString(k)}: ${v}`).join(", ") + "}\n";
  }).join("");
}
