// The public API beyond the kit: input forms, errors, array encodings, canonical bytes, limits.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { deflateSync, constants } from "node:zlib";
import { fileURLToPath } from "node:url";
import {
  loadModel, validateModel, canonicalJson, contentSha256, parseStrict,
  InvalidModel, UnsupportedModel, InvalidInput, MethodNotSupported,
} from "../index.js";
import { pyFloat, parseCsv } from "../src/tabular.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

function workedExample() {
  const md = readFileSync(ROOT + "docs/model-format.md", "utf8");
  const m = /<!-- worked-example -->\s*```json\n([\s\S]*?)```/.exec(md);
  return m[1];
}

test("the worked example of docs/model-format.md validates and predicts", () => {
  const model = validateModel(workedExample());
  assert.deepEqual(model.predict([[2, 30], [3, 12]]), [144.5718901453958, 218.7237479806139]);
  assert.equal(model.sha256, "b0c290ed05ea2abea74e808ebf28b3121362557b3fd2ceef29f703d4735d4387");
});

test("canonical bytes and sha256 follow RFC 8785 (the example of the specification)", () => {
  const doc = parseStrict('{"b": [1.0, 0.5, 1e-7, 1e21], "a": "é\\n"}');
  assert.equal(canonicalJson(doc), '{"a":"é\\n","b":[1,0.5,1e-7,1e+21]}');
  assert.equal(contentSha256({ ...doc, sha256: "x" }), "6685159a24ebc9df1ac1e03c895d539653eb6d06a93d48dea667b970bb72f097");
});

test("inputs: rows, objects keyed by name, columns, one object; null and NaN are missing", () => {
  const model = loadModel(workedExample());
  const want = model.predict([[2, 30], [3, 12]]);
  assert.deepEqual(model.predict([{ rooms: 2, age: 30 }, { age: 12, rooms: 3 }]), want);
  assert.deepEqual(model.predict({ rooms: [2, 3], age: [30, 12] }), want);
  assert.deepEqual(model.predict({ rooms: 2, age: 30 }), [want[0]]);
  assert.deepEqual(model.predict([new Float64Array([2, 30])]), [want[0]]);
  // a linear model refuses missing values, naming the row and the feature
  for (const bad of [[[2, 30], [null, 1]], [[2, 30], [NaN, 1]]]) {
    assert.throws(() => model.predict(bad), (e) => e instanceof InvalidInput && e.row === 1 && e.feature === "rooms");
  }
  assert.throws(() => model.predict([[2, "30"]]), (e) => e instanceof InvalidInput && e.row === 0 && e.feature === "age");
  assert.throws(() => model.predict([{ rooms: 2 }]), (e) => e instanceof InvalidInput && e.feature === "age");
  assert.throws(() => model.predict([{ rooms: 2, age: 1, extra: 3 }]), InvalidInput);
  assert.throws(() => model.predict([[1, 2, 3]]), InvalidInput);
  assert.throws(() => model.predictProba([[1, 2]]), MethodNotSupported);
});

test("a tree routes null / NaN by missing_go_to_left and rounds inputs to float32", () => {
  const doc = {
    format_version: "1.0",
    input: { features: [{ name: "x" }] },
    output: { task: "regression", methods: ["predict"] },
    estimator: {
      type: "decision_tree_regressor", n_features_in: 1,
      tree: { children_left: [1, -1, -1], children_right: [2, -1, -1], feature: [0, -2, -2],
        threshold: [Math.fround(0.1), -2, -2], missing_go_to_left: [0, 0, 0], value: [[0], [1], [2]] },
    },
  };
  const model = loadModel(doc);
  // the threshold is float32(0.1) = 0.10000000149011612; a double above it that rounds to it goes left
  const above = Math.fround(0.1) + 2 ** -40;
  assert.ok(above > Math.fround(0.1));
  assert.deepEqual(model.predict([[0.1], [above], [0.10000001], [null], [NaN]]), [1, 1, 2, 2, 2]);
  doc.estimator.tree.missing_go_to_left = [1, 0, 0];
  assert.deepEqual(loadModel(doc).predict([[null]]), [1]);
  assert.throws(() => loadModel(doc).predict([[Infinity]]), InvalidInput);
});

function block(values, dtype, encoding, strategy) {
  const buf = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => buf.writeDoubleLE(v, i * 8));
  let raw = buf;
  if (encoding === "base64-zlib") raw = deflateSync(buf, strategy);
  return { encoding, dtype, shape: [values.length], data: raw.toString("base64") };
}

test("array blocks: base64 and base64-zlib (stored, fixed and dynamic Huffman blocks) decode the same", () => {
  const coef = Array.from({ length: 400 }, (_, i) => ((i * 7919) % 13) / 8 - 0.75);
  const x = Array.from({ length: 400 }, (_, i) => (i % 5) - 2);
  const doc = (c) => ({
    format_version: "1.0",
    input: { features: coef.map((_, i) => ({ name: `f${i}` })) },
    output: { task: "regression", methods: ["predict"] },
    estimator: { type: "linear_regression", n_features_in: coef.length, coef: c, intercept: [0.5] },
  });
  const want = loadModel(doc(coef)).predict([x]);
  const variants = [
    block(coef, "float64", "base64"),
    block(coef, "float64", "base64-zlib", { level: 0 }),
    block(coef, "float64", "base64-zlib", { strategy: constants.Z_FIXED }),
    block(coef, "float64", "base64-zlib", { level: 9 }),
  ];
  for (const v of variants) assert.deepEqual(loadModel(doc(v)).predict([x]), want);
  // a zlib block that inflates to more bytes than declared is refused with the field's pointer
  const bomb = block(coef, "float64", "base64-zlib", { level: 9 });
  bomb.shape = [10];
  assert.throws(() => loadModel(doc(bomb)), (e) => e instanceof InvalidModel && e.problems[0][0] === "/estimator/coef/data");
});

test("documents: strict JSON, depth limit, unknown types are unsupported", () => {
  const deep = "[".repeat(100) + "]".repeat(100);
  assert.throws(() => loadModel(`{"a":${deep}}`), (e) => e instanceof InvalidModel && e.problems[0][0] === "");
  assert.throws(() => loadModel('{"a":1,"a":2}'), /duplicate key/);
  assert.throws(() => loadModel("\ufeff{}"), /byte order mark/);
  const doc = JSON.parse(workedExample());
  doc.estimator.type = "quantum";
  assert.throws(() => loadModel(doc), (e) => e instanceof UnsupportedModel && /supported: .*linear_regression/.test(e.message));
  doc.estimator.type = "linear_regression";
  doc.format_version = "2.0";
  assert.throws(() => loadModel(doc), /format_version '2.0' is not supported: this scorer reads format 1.x/);
});

test("validation collects every problem with its pointer", () => {
  const doc = JSON.parse(workedExample());
  doc.metadata.created = "yesterday";
  doc.test_vectors.outputs.predict[1] += 1;
  assert.throws(() => validateModel(doc), (e) => {
    const ptrs = e.problems.map(([p]) => p);
    assert.deepEqual(ptrs.sort(), ["/metadata/created", "/sha256", "/test_vectors/outputs/predict/1"]);
    return true;
  });
});

test("CSV helpers: Python's float repr, RFC 4180 cells", () => {
  const cases = [[1, "1.0"], [0.1, "0.1"], [1e16, "1e+16"], [1234567890123456, "1234567890123456.0"], [0.0001, "0.0001"],
    [0.00001, "1e-05"], [-1.5e-7, "-1.5e-07"], [1e22, "1e+22"], [123.456, "123.456"], [-0, "-0.0"], [2.5e-5, "2.5e-05"]];
  for (const [v, s] of cases) assert.equal(pyFloat(v), s, `${v}`);
  assert.deepEqual(parseCsv('a,b\r\n"x,1","say ""hi"""\n\n3,\n'), [["a", "b"], ["x,1", 'say "hi"'], ["3", ""]]);
});

test("the scorer core imports no Node-only module (it runs unchanged in browsers)", async () => {
  const { readdirSync } = await import("node:fs");
  const files = ["index.js", ...readdirSync(ROOT + "scorer-js/src").filter((f) => f.endsWith(".js")).map((f) => `src/${f}`),
    ...readdirSync(ROOT + "scorer-js/src/models").map((f) => `src/models/${f}`)];
  assert.ok(files.length > 10);
  for (const f of files) {
    const text = readFileSync(ROOT + "scorer-js/" + f, "utf8");
    assert.doesNotMatch(text, /from\s+["']node:|require\(|\bprocess\.|\bBuffer\b/, f);
  }
});

test("CSV cells follow scorer/tabular.py's rules: strict numbers, missing tokens, declared categories", async () => {
  const { scoreCsv } = await import("../src/tabular.js");
  const doc = JSON.parse(readFileSync(new URL("../../conformance/cases/decision_tree_regressor_float32_thresholds.json", import.meta.url), "utf8"));
  const model = loadModel(doc);
  const names = doc.input.features.map((f) => f.name);
  const row = (first) => names.map((_, k) => (k === 0 ? first : "0.5")).join(",");
  const csv = (first) => `${names.join(",")}\n${row(first)}\n`;
  for (const ok of ["1", "1.", ".5", "-2.5e-3", "NA", "n/a", ""]) assert.ok(scoreCsv(model, csv(ok)).split("\n").length === 3, ok);
  // inf is a number by the rule; this tree refuses it (as scikit-learn does), not the reader
  assert.throws(() => scoreCsv(model, csv("-Infinity")), (e) => !/expected a number/.test(e.message));
  for (const bad of ["1_0", " 1", "1 ", "0x10", "nan ", "abc"]) {
    assert.throws(() => scoreCsv(model, csv(bad)), /expected a number/, bad);
  }
});

test("the Python scorer's method names work too (predict_proba, decision_function)", () => {
  const doc = JSON.parse(readFileSync(ROOT + "conformance/cases/logistic_regression_multinomial.json", "utf8"));
  const model = loadModel(doc);
  const X = doc.test_vectors.inputs;
  assert.deepEqual(model.predict_proba(X), model.predictProba(X));
  assert.deepEqual(model.decision_function(X), model.decisionFunction(X));
  assert.deepEqual(model.predict_proba(X), model.call("predict_proba", X));
});

test("cost limits of docs/model-format.md: trees per ensemble, tree nodes, classes (as the Python scorer)", () => {
  const kit = (id) => JSON.parse(readFileSync(`${ROOT}conformance/cases/${id}.json`, "utf8"));
  const refused = (doc, pointer, message) => assert.throws(() => loadModel(doc),
    (e) => e instanceof InvalidModel && e.problems.some(([p, m]) => p === pointer && message.test(m)));
  let doc = kit("extra_trees_regressor");
  doc.estimator.trees = Array(20_001).fill(doc.estimator.trees[0]);
  refused(doc, "/estimator/trees", /20001 trees, over the limit of 20000/);
  doc = kit("extra_trees_regressor");
  doc.estimator.trees = [{ ...doc.estimator.trees[0],
    children_left: { encoding: "base64", dtype: "int64", shape: [2_000_001], data: "" } }];
  refused(doc, "/estimator/trees", /2000001 nodes, over the limit of 2000000/);
  doc = kit("logistic_regression_multinomial");
  doc.estimator.classes = Array.from({ length: 50_001 }, (_, i) => `c${i}`);
  refused(doc, "/estimator/classes", /50001 classes, over the limit of 50000/);
});
