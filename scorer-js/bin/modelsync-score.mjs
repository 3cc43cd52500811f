#!/usr/bin/env node
// modelsync-score predict MODEL.json DATA.csv [--proba] [-o OUT.csv]
// Scores a CSV with a model document using the JavaScript scorer and writes the same CSV columns as
// `modelsync predict` (input columns, prediction..., proba_<class>...), so any exported model can be
// checked against the Python scorer from a shell.
import { readFileSync, writeFileSync } from "node:fs";
import { loadModel, InvalidModel, InvalidInput, MethodNotSupported } from "../index.js";
import { scoreCsv } from "../src/tabular.js";

const USAGE = "usage: modelsync-score predict MODEL.json DATA.csv [--proba] [-o OUT.csv]\n";

function main(argv) {
  const args = argv.slice(2);
  if (args[0] === "-h" || args[0] === "--help") { process.stdout.write(USAGE); return 0; }
  if (args[0] !== "predict") { process.stderr.write(USAGE); return 2; }
  const positional = [];
  let proba = false, out = null;
  for (let i = 1; i < args.length; i++) {
    if (args[i] === "--proba") proba = true;
    else if (args[i] === "-o" || args[i] === "--output") out = args[++i];
    else if (args[i].startsWith("-") && args[i] !== "-") { process.stderr.write(`modelsync-score: unknown option ${args[i]}\n${USAGE}`); return 2; }
    else positional.push(args[i]);
  }
  if (positional.length !== 2) { process.stderr.write(USAGE); return 2; }
  const [modelPath, dataPath] = positional;
  let model;
  try {
    model = loadModel(readFileSync(modelPath), { verifySha256: true });
  } catch (e) {
    if (e instanceof InvalidModel) { process.stderr.write(`modelsync-score: error: ${modelPath}: ${e.message}\n`); return 1; }
    if (e.code) { process.stderr.write(`modelsync-score: error: ${modelPath}: ${e.message}\n`); return 1; }
    throw e;
  }
  let text;
  try {
    const bytes = readFileSync(dataPath === "-" ? 0 : dataPath);
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (e) {
    process.stderr.write(`modelsync-score: error: ${dataPath}: ${e.code ? e.message : "not UTF-8 text"}\n`);
    return 1;
  }
  let result;
  try {
    result = scoreCsv(model, text, { proba });
  } catch (e) {
    if (e instanceof InvalidInput || e instanceof MethodNotSupported) { process.stderr.write(`modelsync-score: error: ${e.message}\n`); return 1; }
    throw e;
  }
  if (out && out !== "-") writeFileSync(out, result);
  else process.stdout.write(result);
  return 0;
}

process.exitCode = main(process.argv);
