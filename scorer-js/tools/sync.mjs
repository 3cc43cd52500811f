#!/usr/bin/env node
// node scorer-js/tools/sync.mjs --api URL --model NAME --dir DIR [--alias A | --version N] [--public-key PEM_FILE]
//                              [--api-key KEY | --token TOKEN] [--device-id ID] [--rows ROWS.json]
// One sync round with the JavaScript client into DIR (FileStorage: modelsync_device's layout), then, with
// --rows (a JSON array of rows), scores them offline with the active model. Prints one JSON object:
// {"sync": <outcome>, "version", "sha256", "predictions", "probabilities", "classes"}. Exit 0 when the sync
// left a model active ("updated"/"unchanged"), 3 offline, 4 unauthorized, 1 refused (modelsync device's codes).
import { readFileSync } from "node:fs";
import { ModelSync, FileStorage, apiKeyAuth, bearerAuth } from "../sync.js";

const EXIT = { updated: 0, unchanged: 0, refused: 1, offline: 3, unauthorized: 4 };

async function main(argv) {
  const opt = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--") || argv[i + 1] === undefined) throw new Error(`bad arguments near ${argv[i]}`);
    opt[argv[i].slice(2)] = argv[i + 1];
  }
  const auth = opt["api-key"] ? apiKeyAuth(opt["api-key"]) : opt.token ? bearerAuth(opt.token) : null;
  const client = new ModelSync({
    api: opt.api, model: opt.model, storage: new FileStorage(opt.dir), alias: opt.alias || "latest",
    version: opt.version ? Number(opt.version) : null, deviceId: opt["device-id"] || null,
    publicKey: opt["public-key"] ? readFileSync(opt["public-key"], "utf8") : null, auth,
  });
  const result = await client.sync();
  const out = { sync: result.toJSON() };
  if (opt.rows && result.version !== null) {
    const rows = JSON.parse(readFileSync(opt.rows, "utf8"));
    const model = await client.load();
    Object.assign(out, { version: client.loadedEntry.version, sha256: model.sha256, predictions: model.predict(rows) });
    if (model.supports("predict_proba")) Object.assign(out, { probabilities: model.predictProba(rows), classes: model.classes });
  }
  process.stdout.write(JSON.stringify(out) + "\n");
  return EXIT[result.status];
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e) => {
  process.stderr.write(`sync.mjs: error: ${e.message}\n`);
  process.exitCode = 2;
});
