// CSV in, CSV out, as `modelsync predict` (scorer/tabular.py) reads and writes it: the input columns
// carried through, then `prediction` (or prediction_<i> / transform_<i>), then proba_<class> columns.
// Numbers are written as Python's repr writes floats, so both tools produce the same bytes.
// No Node-only API: the command line (bin/modelsync-score.mjs) does the file handling.
import { InvalidInput, MethodNotSupported } from "./errors.js";

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

/** RFC 4180 CSV text -> rows of cell strings (quotes, doubled quotes, CRLF / LF; blank lines skipped). */
export function parseCsv(text) {
  const rows = [];
  let row = [], cell = "", i = 0, quoted = false, any = false;
  const n = text.length;
  const endRow = () => {
    row.push(cell);
    if (row.length > 1 || row[0] !== "" || any) rows.push(row);
    row = []; cell = ""; any = false;
  };
  while (i < n) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') { cell += '"'; i += 2; continue; }
        quoted = false; i++; continue;
      }
      cell += c; i++; continue;
    }
    if (c === '"') { quoted = true; any = true; i++; continue; }
    if (c === ",") { row.push(cell); cell = ""; i++; continue; }
    if (c === "\r" || c === "\n") {
      endRow();
      i += c === "\r" && text[i + 1] === "\n" ? 2 : 1;
      continue;
    }
    cell += c; i++;
  }
  if (quoted) throw new InvalidInput("the CSV ends inside a quoted cell");
  if (cell !== "" || row.length || any) endRow();
  return rows;
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

function parseNumber(cell, r, name) {
  if (MISSING_TOKENS.has(cell.toLowerCase())) return NaN;
  if (NUMBER.test(cell)) return numberOf(cell);
  throw new InvalidInput(`row ${r}, feature '${name}': expected a number, got '${cell.slice(0, 60)}'`, r, name);
}

/**
 * Score CSV text with a loaded model; returns the output CSV text (LF line ends, as `modelsync predict`).
 * `proba`: add one proba_<class> column per class.
 */
export function scoreCsv(model, text, { proba = false } = {}) {
  const rows = parseCsv(text);
  if (!rows.length) throw new InvalidInput("the CSV is empty: expected a header line naming the columns");
  const header = rows[0].map((h, k) => (k === 0 && h.startsWith("\ufeff") ? h.slice(1) : h).trim());
  if (!header.some(Boolean)) throw new InvalidInput("the CSV header is empty: expected column names");
  const seen = new Set();
  for (const h of header) {
    if (seen.has(h)) throw new InvalidInput(`the CSV header names column '${h}' twice`, null, h);
    seen.add(h);
  }
  const data = rows.slice(1);
  data.forEach((row, r) => {
    if (row.length !== header.length) throw new InvalidInput(`row ${r}: expected ${header.length} cells as in the header, got ${row.length}`, r);
  });
  const index = new Map(header.map((h, k) => [h, k]));
  const missing = model.features.find((f) => !index.has(f.name));
  if (missing) throw new InvalidInput(`missing feature '${missing.name}': the model needs column(s) ${model.featureNames.join(", ")}`, null, missing.name);
  if (proba && !model.supports("predict_proba")) throw new MethodNotSupported(`model '${model.name}' has no predict_proba; it offers ${model.methods.join(", ")}`);
  const matrix = data.map((row, r) => model.features.map((f) => {
    const cell = row[index.get(f.name)];
    if (f.type === "categorical") return categoryOf(cell, f);
    return parseNumber(cell, r, f.name);
  }));
  const hasPredict = model.supports("predict");
  const main = data.length ? (hasPredict ? model.predict(matrix) : model.transform(matrix)) : [];
  const probabilities = proba && data.length ? model.predictProba(matrix) : null;
  const width = main.length && Array.isArray(main[0]) ? main[0].length : 1;
  let cols = hasPredict ? (width === 1 ? ["prediction"] : Array.from({ length: width }, (_, i) => `prediction_${i}`))
    : Array.from({ length: main.length ? width : 0 }, (_, i) => `transform_${i}`);
  const integer = integerOutputs(model);
  if (proba) {
    const classes = model.classes;
    if (classes === null || classes.some(Array.isArray)) throw new MethodNotSupported(`model '${model.name}' has no per-class probabilities`);
    cols = cols.concat(classes.map((c) => `proba_${formatValue(c, integer)}`));
  }
  const lines = [header.concat(cols).map(csvCell).join(",")];
  data.forEach((row, r) => {
    const outs = [].concat(main[r]).map((v) => formatValue(v, hasPredict && integer));
    if (probabilities) outs.push(...probabilities[r].map((v) => formatValue(v)));
    lines.push(row.concat(outs).map(csvCell).join(","));
  });
  return lines.join("\n") + "\n";
}
