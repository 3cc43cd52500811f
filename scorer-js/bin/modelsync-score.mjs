#!/usr/bin/env node
// modelsync-score predict MODEL.json DATA.csv|DATA.jsonl [--proba] [--format csv|jsonl] [-o OUT]
// Scores a CSV or JSON Lines file with a model document using the JavaScript scorer and writes what
// `modelsync predict` writes (input columns, prediction..., proba_<class>...; JSON Lines: each input object
// with those keys added), so any exported model can be checked against the Python scorer from a shell.
// A bad row stops it with the message `modelsync predict` gives: "row 3 (line 5): ...".
import { readFileSync, writeFileSync } from "node:fs";
import { loadModel, InvalidModel, InvalidInput, MethodNotSupported } from "../index.js";
import { scoreCsv, scoreJsonl } from "../src/tabular.js";

const USAGE = "usage: modelsync-score predict MODEL.json DATA.csv|DATA.jsonl [--proba] [--format csv|jsonl] [-o OUT]\n";

function main(argv) {
  const args = argv.slice(2);
  if (args.includes("-h") || args.includes("--help")) { process.stdout.write(USAGE); return 0; }
  if (args[0] !== "predict") { process.stderr.write(USAGE); return 2; }
  const positional = [];
  let proba = false, out = null, format = null;
  for (let i = 1; i < args.length; i++) {
    if (args[i] === "--proba") proba = true;
    else if (args[i] === "--format") {
      format = args[++i];
      if (format !== "csv" && format !== "jsonl") { process.stderr.write(`modelsync-score: --format must be csv or jsonl\n${USAGE}`); return 2; }
    }
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
    const fmt = format || (/\.(jsonl|ndjson)$/i.test(dataPath) ? "jsonl" : "csv");
    result = (fmt === "jsonl" ? scoreJsonl : scoreCsv)(model, text, { proba });
  } catch (e) {
    if (e instanceof InvalidInput || e instanceof MethodNotSupported) { process.stderr.write(`modelsync-score: error: ${e.message}\n`); return 1; }
    throw e;
  }
  if (out && out !== "-") writeFileSync(out, result);
  else process.stdout.write(result);
  return 0;
}

process.exitCode = main(process.argv);
