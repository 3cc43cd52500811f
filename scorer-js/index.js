// @modelsync/scorer: score modelsync model documents in JavaScript (Node 20+ and browsers, no dependencies).
// The format is specified in docs/model-format.md; conformance/ holds the shared test kit.
export { loadModel, validateModel, supportedTypes, checkTestVectors, toMatrix, Model, FORMAT_VERSION, METHODS } from "./src/model.js";
export { InvalidModel, UnsupportedModel, InvalidInput, MethodNotSupported, ModelsyncScorerError } from "./src/errors.js";
export { canonicalJson, contentSha256, parseStrict } from "./src/json.js";
