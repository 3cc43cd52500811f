// The shared conformance kit (conformance/index.json): every case scored with every method and compared
// with scikit-learn's outputs at the case's tolerance; every invalid document refused with its pointer.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { loadModel, validateModel, supportedTypes, InvalidModel, InvalidInput } from "../index.js";
import { outputDifference } from "../src/model.js";

const KIT = fileURLToPath(new URL("../../conformance/", import.meta.url));
const index = JSON.parse(readFileSync(KIT + "index.json", "utf8"));
const METHOD = { predict: "predict", predict_proba: "predictProba", decision_function: "decisionFunction", transform: "transform" };
const maxDiff = {};

for (const c of index.cases) {
  test(`case ${c.id}`, () => {
    const text = readFileSync(KIT + c.file, "utf8");
    const model = validateModel(text); // envelope, sha256 and the test vectors at the document's tolerance
    const doc = model.document;
    assert.deepEqual([...model.methods].sort(), [...c.methods].sort());
    for (const m of c.methods) {
      const got = model[METHOD[m]](doc.test_vectors.inputs);
      const want = doc.test_vectors.outputs[m];
      const d = outputDifference(got, want, c.tolerance[m]);
      const key = `${c.id}.${m}`;
      maxDiff[key] = d.diff;
      assert.ok(!d.bad, `${key}: max difference ${d.diff} over tolerance ${c.tolerance[m]}${d.shape ? " (shape differs)" : ""}\n got ${JSON.stringify(got).slice(0, 400)}\nwant ${JSON.stringify(want).slice(0, 400)}`);
    }
    // rows every method must refuse as an input error
    for (const bad of c.input_errors || []) {
      for (const m of c.methods) {
        assert.throws(() => model[METHOD[m]]([bad.row]), (e) => e instanceof InvalidInput && e.row === 0,
          `${c.id}.${m} must refuse ${JSON.stringify(bad.row)}`);
      }
    }
    // loadModel (no re-scoring) gives the same model
    assert.deepEqual(loadModel(JSON.parse(text)).methods, model.methods);
  });
}

for (const c of index.invalid) {
  test(`invalid ${c.id}`, () => {
    const text = readFileSync(KIT + c.file, "utf8");
    assert.throws(() => validateModel(text), (e) => {
      assert.ok(e instanceof InvalidModel, `expected InvalidModel, got ${e}`);
      const pointers = e.problems.map(([p]) => p);
      assert.ok(pointers.includes(c.pointer), `expected pointer '${c.pointer}', got ${JSON.stringify(e.problems)}`);
      return true;
    });
  });
}

test("every type the kit covers is supported", () => {
  const covered = new Set(index.cases.flatMap((c) => c.types));
  assert.deepEqual([...covered].sort(), supportedTypes().filter((t) => covered.has(t)));
  assert.deepEqual(supportedTypes().filter((t) => !covered.has(t)), []);
});

// KIT_REPORT=1 node --test scorer-js/test/: print the largest differences from scikit-learn's outputs.
after(() => {
  if (!process.env.KIT_REPORT) return;
  const worst = Object.entries(maxDiff).filter(([, d]) => d > 0).sort((a, b) => b[1] - a[1]).slice(0, 20);
  console.log(JSON.stringify(Object.fromEntries(worst), null, 1));
});
