// @modelsync/scorer/sync: the device sync protocol (docs/devices.md) in JavaScript, for Node 20+ and browsers,
// no dependencies: signed manifests checked with WebCrypto, documents verified and their test vectors
// re-scored before activation, the last good model kept, pluggable storage, API-key and bearer auth.
export { ModelSync, sync, SyncResult, checkManifest, manifestUrl, versionFilename } from "./src/sync/client.js";
export { MemoryStorage, FileStorage, IndexedDBStorage } from "./src/sync/storage.js";
export { apiKeyAuth, bearerAuth, noAuth } from "./src/sync/auth.js";
export { importPublicKey, verifyManifestSignature, manifestSigningBytes, derToRaw } from "./src/sync/signature.js";
