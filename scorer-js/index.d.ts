// Type declarations for @modelsync/scorer (docs/model-format.md specifies the document).

/** A cell: number (NaN / null = missing), string or boolean (categorical features), null = missing. */
export type Cell = number | string | boolean | null | undefined;
/** Rows in feature order, objects keyed by feature name, an object of columns, or one object (one row). */
export type Rows =
  | ArrayLike<Cell>[]
  | Record<string, Cell>[]
  | Record<string, ArrayLike<Cell>>
  | Record<string, Cell>;
export type Label = string | number | boolean;
/** Outputs follow scikit-learn's shapes: (n,), (n, k), or (q, n, k) for multi-output predict_proba. */
export type Output = (Label | Label[] | number[] | number[][])[];
export type MethodName = "predict" | "predict_proba" | "decision_function" | "transform";
/** [JSON pointer (RFC 6901), message]; "" is the whole document. */
export type Problem = [string, string];

export interface Feature {
  name: string;
  type: "numeric" | "categorical";
  categories: (string | number)[] | null;
}

export class Model {
  readonly document: Record<string, unknown>;
  readonly features: Feature[];
  readonly featureNames: string[];
  readonly name: string;
  readonly formatVersion: string;
  readonly sha256: string | null;
  readonly task: string;
  /** The methods this model offers (declared in output.methods and implemented). */
  readonly methods: MethodName[];
  readonly typeName: string;
  readonly classes: Label[] | Label[][] | null;
  supports(method: MethodName): boolean;
  /** Call a method by its document name. */
  call(method: MethodName, X: Rows): Output;
  predict(X: Rows): Output;
  predictProba(X: Rows): number[][] | number[][][];
  decisionFunction(X: Rows): number[] | number[][];
  transform(X: Rows): Cell[][];
  /** The Python scorer's names (same as predictProba / decisionFunction). */
  predict_proba(X: Rows): number[][] | number[][][];
  decision_function(X: Rows): number[] | number[][];
}

export interface LoadOptions {
  /** Recompute the sha256 of the canonical bytes (RFC 8785) and refuse a mismatch. */
  verifySha256?: boolean;
}

/** Load a document (JSON text, UTF-8 bytes or a parsed object) for scoring; throws InvalidModel. */
export function loadModel(source: string | Uint8Array | ArrayBuffer | object, options?: LoadOptions): Model;
/** The full check before publishing: envelope, semantics, limits, sha256, test vectors re-scored. */
export function validateModel(source: string | Uint8Array | ArrayBuffer | object): Model;
/** The estimator type names this scorer implements. */
export function supportedTypes(): string[];
/** Re-score a loaded model's test vectors; the problems found (empty when all match). */
export function checkTestVectors(model: Model): Problem[];
/** Rows in any accepted form -> a matrix in feature order (missing numeric = NaN, missing categorical = null). */
export function toMatrix(X: Rows, features: Feature[]): Cell[][];
export const FORMAT_VERSION: string;
export const METHODS: MethodName[];

/** Strict JSON (no duplicate keys, no NaN literals, depth <= 64, object root). */
export function parseStrict(text: string): Record<string, unknown>;
/** RFC 8785 canonical JSON text. */
export function canonicalJson(value: unknown): string;
/** sha256 (hex) of the canonical bytes of the document without its sha256 member. */
export function contentSha256(doc: object): string;

export class ModelsyncScorerError extends Error {}
/** A document that cannot be loaded; problems lists [pointer, message] pairs. */
export class InvalidModel extends ModelsyncScorerError {
  readonly problems: Problem[];
  constructor(problems: Problem[] | string, pointer?: string);
}
/** A node type (or option) this scorer does not implement; the message lists the supported types. */
export class UnsupportedModel extends InvalidModel {}
/** Rows that cannot be scored; names the row (from 0) and the feature. */
export class InvalidInput extends ModelsyncScorerError {
  readonly row: number | null;
  readonly feature: string | null;
  constructor(message: string, row?: number | null, feature?: string | null);
}
/** The model does not offer this method. */
export class MethodNotSupported extends ModelsyncScorerError {}
