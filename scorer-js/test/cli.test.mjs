// bin/modelsync-score.mjs: the CSV columns of `modelsync predict`, exit codes, error messages.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BIN = ROOT + "scorer-js/bin/modelsync-score.mjs";
const dir = mkdtempSync(join(tmpdir(), "modelsync-score-"));

function run(...args) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8" });
}

function kitCsv(caseId, extra = "") {
  const doc = JSON.parse(readFileSync(`${ROOT}conformance/cases/${caseId}.json`, "utf8"));
  const names = doc.input.features.map((f) => f.name);
  const rows = doc.test_vectors.inputs.map((r, i) => [`id${i}`, ...r.map((v) => (v === null ? "" : String(v)))].join(","));
  const path = join(dir, `${caseId}.csv`);
  writeFileSync(path, ["id," + names.join(","), ...rows].join("\n") + "\n" + extra);
  return { doc, path, model: `${ROOT}conformance/cases/${caseId}.json` };
}

test("predict --proba writes the input columns, prediction and proba_<class>", () => {
  const { doc, path, model } = kitCsv("column_transformer_pipeline_logreg");
  const r = run("predict", model, path, "--proba");
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  assert.equal(lines[0], "id,age,income,colour,size,prediction,proba_no,proba_yes");
  assert.equal(lines.length, doc.test_vectors.inputs.length + 1);
  const want = doc.test_vectors.outputs.predict;
  lines.slice(1).forEach((l, i) => assert.equal(l.split(",")[5], want[i]));
});

test("several outputs, integer labels and transforms get their own columns", () => {
  let r = run("predict", kitCsv("k_neighbors_regressor_multioutput_minkowski").model, kitCsv("k_neighbors_regressor_multioutput_minkowski").path);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout.split("\n")[0], /,prediction_0,prediction_1$/);
  const km = kitCsv("k_means");
  r = run("predict", km.model, km.path);
  assert.equal(r.status, 0, r.stderr);
  r.stdout.trimEnd().split("\n").slice(1).forEach((l, i) => assert.equal(l.split(",").at(-1), String(km.doc.test_vectors.outputs.predict[i])));
  const pca = kitCsv("pca");
  r = run("predict", pca.model, pca.path);
  assert.match(r.stdout.split("\n")[0], /,transform_0,transform_1$/);
});

test("errors: exit status 1 and a message naming the problem", () => {
  const { path, model } = kitCsv("linear_regression_plain", "id99,abc,1,2,3,4\n");
  let r = run("predict", model, path);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /row \d+ \(line \d+\): feature 'age': expected a number, got 'abc'/);
  r = run("predict", model, path, "--proba");
  assert.equal(r.status, 1);
  assert.match(r.stderr, /has no predict_proba/);
  const bad = join(dir, "bad.json");
  writeFileSync(bad, readFileSync(model, "utf8").replace('"format_version":"1.0"', '"format_version":"2.0"'));
  r = run("predict", bad, path);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /format_version '2.0' is not supported/);
  assert.equal(run("frobnicate").status, 2);
});

test("a bad row is named by its index and its physical line (blank lines and quoted line breaks counted)", () => {
  const { path, model } = kitCsv("linear_regression_plain");
  const good = readFileSync(path, "utf8").trimEnd().split("\n");
  const text = [good[0], good[1], "", `"id\nwith a break",${good[2].split(",").slice(1).join(",")}`, "idX,1,2,3", good[3]].join("\n") + "\n";
  const bad = join(dir, "lines.csv");
  writeFileSync(bad, text);
  const r = run("predict", model, bad);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /error: row 2 \(line 6\): expected 6 fields as in the header, got 4/);
});

test("JSON Lines in, JSON Lines out: each object with the output keys added, as modelsync predict writes it", () => {
  const caseId = "logistic_regression_binary_strings";
  const doc = JSON.parse(readFileSync(`${ROOT}conformance/cases/${caseId}.json`, "utf8"));
  const names = doc.input.features.map((f) => f.name);
  const lines = doc.test_vectors.inputs.map((row, i) => JSON.stringify({ id: i, note: "é\t", ...Object.fromEntries(names.map((n, k) => [n, row[k]])) }));
  const path = join(dir, "rows.jsonl");
  writeFileSync(path, [lines[0], "", ...lines.slice(1)].join("\n") + "\n");
  const r = run("predict", `${ROOT}conformance/cases/${caseId}.json`, path, "--proba");
  assert.equal(r.status, 0, r.stderr);
  const out = r.stdout.trimEnd().split("\n");
  assert.equal(out.length, lines.length);
  assert.ok(out[0].startsWith('{"id": 0, "note": "é\\t", '), out[0]);
  out.forEach((l, i) => {
    const o = JSON.parse(l);
    assert.deepEqual(Object.keys(o), ["id", "note", ...names, "prediction", ...doc.output.classes.map((c) => `proba_${c}`)]);
    assert.equal(o.prediction, doc.test_vectors.outputs.predict[i]);
  });
  const txt = join(dir, "rows.txt");
  writeFileSync(txt, `${lines[0]}\n\n[1, 2]\n`);
  let bad = run("predict", `${ROOT}conformance/cases/${caseId}.json`, txt, "--format", "jsonl");
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /row 1 \(line 3\): expected a JSON object keyed by column name/);
  writeFileSync(txt, `${lines[0]}\n{"id": 1}\n`);
  bad = run("predict", `${ROOT}conformance/cases/${caseId}.json`, txt, "--format", "jsonl");
  assert.match(bad.stderr, new RegExp(`row 1 \\(line 2\\): missing feature '${names[0]}'`));
  assert.equal(run("predict", `${ROOT}conformance/cases/${caseId}.json`, txt, "--format", "xml").status, 2);
});

test("--help prints the usage with exit status 0, before or after the command", () => {
  for (const args of [["--help"], ["predict", "--help"], ["predict", "-h"]]) {
    const r = run(...args);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^usage: modelsync-score predict MODEL\.json/);
  }
});
