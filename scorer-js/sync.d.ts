// Type declarations for @modelsync/scorer/sync (the device sync protocol: docs/devices.md).
import type { Model } from "./index.js";

/** Per-model files: "state.json", "last_sync.json", "versions/{version}-{sha256[:12]}.json". Each put is atomic. */
export interface SyncStorage {
  get(model: string, key: string): Promise<Uint8Array | null>;
  put(model: string, key: string, bytes: Uint8Array): Promise<void>;
  delete(model: string, key: string): Promise<void>;
  /** Keys starting with `prefix`, sorted. */
  list(model: string, prefix?: string): Promise<string[]>;
}

export class MemoryStorage implements SyncStorage {
  constructor();
  get(model: string, key: string): Promise<Uint8Array | null>;
  put(model: string, key: string, bytes: Uint8Array): Promise<void>;
  delete(model: string, key: string): Promise<void>;
  list(model: string, prefix?: string): Promise<string[]>;
}

/** Node only: `dir/{model}/...`, the layout of modelsync_device.ModelStore; temp file, fsync, rename. */
export class FileStorage implements SyncStorage {
  constructor(dir: string);
  readonly dir: string;
  get(model: string, key: string): Promise<Uint8Array | null>;
  put(model: string, key: string, bytes: Uint8Array): Promise<void>;
  delete(model: string, key: string): Promise<void>;
  list(model: string, prefix?: string): Promise<string[]>;
}

/** Browsers: IndexedDB database `name` (default "modelsync"), object store "files". */
export class IndexedDBStorage implements SyncStorage {
  constructor(name?: string, indexedDB?: IDBFactory);
  get(model: string, key: string): Promise<Uint8Array | null>;
  put(model: string, key: string, bytes: Uint8Array): Promise<void>;
  delete(model: string, key: string): Promise<void>;
  list(model: string, prefix?: string): Promise<string[]>;
}

export interface Auth {
  readonly mode: "none" | "api-key" | "token";
  headers(): Record<string, string> | Promise<Record<string, string>>;
  /** After a 401: true when new credentials were obtained (the request is retried once). */
  refresh(): Promise<boolean>;
}
export function noAuth(): Auth;
/** `x-api-key` (AuthMode=API_KEY). */
export function apiKeyAuth(key: string): Auth;
/** `Authorization: Bearer` (AuthMode=COGNITO); a function is called again after a 401. */
export function bearerAuth(token: string | (() => string | Promise<string>)): Auth;

export type SyncStatus = "updated" | "unchanged" | "refused" | "offline" | "unauthorized";

export class SyncResult {
  readonly status: SyncStatus;
  readonly model: string;
  /** The version active after the sync (null if none is). */
  readonly version: number | null;
  readonly reason: string | null;
  readonly offeredVersion: number | null;
  readonly revision: number | null;
  readonly sha256: string | null;
  readonly ok: boolean;
  toJSON(): Record<string, unknown>;
}

export interface SyncOptions {
  /** The API's base URL, e.g. "https://abc.execute-api.eu-west-1.amazonaws.com/v1". */
  api: string;
  model: string;
  storage: SyncStorage;
  alias?: string;
  /** Pin this version instead of following the alias. */
  version?: number | null;
  /** Sent as X-Device-Id (canary cohort). */
  deviceId?: string | null;
  /** PEM text, DER SubjectPublicKeyInfo bytes or a CryptoKey: only manifests it signed are accepted. */
  publicKey?: string | Uint8Array | ArrayBuffer | CryptoKey | null;
  auth?: Auth | null;
  fetch?: typeof fetch;
  timeoutMs?: number;
  downloadTimeoutMs?: number;
  /** Bytes per second a download must average after 10 s. */
  minDownloadRate?: number;
  /** Installed versions kept (>= 2). */
  keep?: number;
}

export interface StateEntry {
  version: number;
  sha256: string;
  size: number;
  format_version: string;
  alias: string;
  revision: number | null;
  installed_at: string;
}

export interface SyncState {
  schema: 1;
  model: string;
  active: StateEntry;
  previous: StateEntry | null;
  older: StateEntry[];
  alias: string;
  revision: number | null;
  revisions: Record<string, number>;
  etag: string | null;
  updated_at: string;
}

export class ModelSync {
  constructor(options: SyncOptions);
  readonly model: string;
  readonly storage: SyncStorage;
  /** One round of the protocol; never throws for network or content problems. */
  sync(): Promise<SyncResult>;
  /** A document shipped with the app as the active model (verified first); kept out if one is active, unless force. */
  installBundled(source: string | Uint8Array | ArrayBuffer, options?: { version?: number; force?: boolean }): Promise<SyncResult>;
  /** The active model from storage (offline); the previous one if the active file is damaged. */
  load(): Promise<Model>;
  state(): Promise<SyncState | null>;
  lastSync(): Promise<Record<string, unknown> | null>;
  readonly loadedEntry: StateEntry | null;
}

export function sync(options: SyncOptions): Promise<SyncResult>;
/** Structural problems with a manifest (empty when usable). */
export function checkManifest(manifest: unknown, model: string, alias: string): string[];
export function manifestUrl(api: string, model: string, alias: string, version?: number | null): string;
export function versionFilename(version: number, sha256: string): string;
export function importPublicKey(key: string | Uint8Array | ArrayBuffer | CryptoKey): Promise<CryptoKey>;
/** null when the signature verifies, else the reason. */
export function verifyManifestSignature(manifest: Record<string, unknown>, key: CryptoKey): Promise<string | null>;
/** RFC 8785 bytes of the manifest without signature, url, url_expires_at. */
export function manifestSigningBytes(manifest: Record<string, unknown>): Uint8Array;
/** DER ECDSA signature -> 64-byte r || s. */
export function derToRaw(der: Uint8Array): Uint8Array;
