#!/usr/bin/env node
// Read JSON Lines of model documents on stdin; write one JSON line per document: null when validateModel
// accepts it, else the problems' JSON pointers. Used by tests/unit/test_conformance_kit.py to compare
// this validator with the Python reference on mutated documents.
import { readFileSync } from "node:fs";
import { validateModel, InvalidModel } from "../index.js";

const out = [];
for (const line of readFileSync(0, "utf8").split("\n")) {
  if (!line.trim()) continue;
  try {
    validateModel(line);
    out.push("null");
  } catch (e) {
    out.push(JSON.stringify(e instanceof InvalidModel ? e.problems.map(([p]) => p) : [`CRASH ${e.name}: ${e.message}`]));
  }
}
process.stdout.write(out.join("\n") + "\n");
