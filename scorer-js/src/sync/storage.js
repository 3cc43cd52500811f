// Where the sync client keeps its files: per model, keys "state.json" (the commit point), "last_sync.json" and
// "versions/{version}-{sha256[:12]}.json" (documents, bytes as downloaded) - the layout of
// modelsync_device.ModelStore. A storage only has to make each put atomic (old or new value, never a mix);
// the client writes the document before switching state.json, so a crash at any point leaves a usable model.
//
// MemoryStorage (tests, short-lived processes), FileStorage (Node: temp file, fsync, rename, fsync the
// directory - the same files modelsync_device reads), IndexedDBStorage (browsers). Nothing here is imported
// from Node unless FileStorage is used (node:fs is loaded on first use), so this module runs in browsers.

/** Files in memory; lost with the process. */
export class MemoryStorage {
  constructor() {
    this.files = new Map();
  }

  async get(model, key) {
    const v = this.files.get(`${model}/${key}`);
    return v === undefined ? null : v.slice();
  }

  async put(model, key, bytes) {
    this.files.set(`${model}/${key}`, Uint8Array.from(bytes));
  }

  async delete(model, key) {
    this.files.delete(`${model}/${key}`);
  }

  async list(model, prefix = "") {
    const start = `${model}/${prefix}`;
    return [...this.files.keys()].filter((k) => k.startsWith(start)).map((k) => k.slice(model.length + 1)).sort();
  }
}

const STALE_TEMP_MS = 3600_000;

/**
 * Files under `dir/{model}/` (Node only), laid out as modelsync_device.ModelStore lays them out, written
 * atomically: a temp file `.tmp-*.part` in the same directory, write, fsync, rename onto the target, fsync
 * the directory. Serialising writers is the client's job within one process; like the Python store on
 * Windows, two processes syncing one directory at the same time are not serialised (no flock in Node).
 */
export class FileStorage {
  constructor(dir) {
    if (typeof dir !== "string" || !dir) throw new TypeError("FileStorage needs a directory path");
    this.dir = dir;
  }

  async _node() {
    if (!this._mods) {
      const [fs, path, crypto] = await Promise.all([import("node:fs/promises"), import("node:path"), import("node:crypto")]);
      this._mods = { fs, path, crypto };
    }
    return this._mods;
  }

  async _path(model, key) {
    const { path } = await this._node();
    const parts = key.split("/");
    if (parts.some((p) => !p || p === "." || p === "..")) throw new Error(`bad storage key ${JSON.stringify(key)}`);
    return path.join(this.dir, model, ...parts);
  }

  async get(model, key) {
    const { fs } = await this._node();
    try {
      return new Uint8Array(await fs.readFile(await this._path(model, key)));
    } catch (e) {
      if (e.code === "ENOENT") return null;
      throw e;
    }
  }

  async put(model, key, bytes) {
    const { fs, path, crypto } = await this._node();
    const target = await this._path(model, key);
    const dir = path.dirname(target);
    await fs.mkdir(dir, { recursive: true });
    const tmp = path.join(dir, `.tmp-${crypto.randomBytes(6).toString("hex")}.part`);
    let fh;
    try {
      fh = await fs.open(tmp, "wx", 0o644);
      await fh.writeFile(bytes);
      await fh.sync();
      await fh.close();
      fh = null;
      await fs.rename(tmp, target);
    } catch (e) {
      if (fh) await fh.close().catch(() => {});
      await fs.rm(tmp, { force: true }).catch(() => {});
      throw e;
    }
    await fsyncDir(fs, dir);
  }

  async delete(model, key) {
    const { fs } = await this._node();
    await fs.rm(await this._path(model, key), { force: true });
  }

  async list(model, prefix = "") {
    const { fs, path } = await this._node();
    const sub = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : "";
    const dir = sub ? await this._path(model, sub) : path.join(this.dir, model);
    let names;
    try {
      names = await fs.readdir(dir);
    } catch (e) {
      if (e.code === "ENOENT") return [];
      throw e;
    }
    const now = Date.now();
    const keys = [];
    for (const name of names) {
      if (name.startsWith(".tmp-") && name.endsWith(".part")) { // a crash's leftovers, old enough to be nobody's live write
        const p = path.join(dir, name);
        const st = await fs.stat(p).catch(() => null);
        if (st && now - st.mtimeMs > STALE_TEMP_MS) await fs.rm(p, { force: true }).catch(() => {});
        continue;
      }
      const key = sub ? `${sub}/${name}` : name;
      if (key.startsWith(prefix)) keys.push(key);
    }
    return keys.sort();
  }
}

async function fsyncDir(fs, dir) {
  let fh;
  try {
    fh = await fs.open(dir, "r");
    await fh.sync();
  } catch {
    // some platforms (Windows) cannot fsync a directory: the rename is still atomic
  } finally {
    if (fh) await fh.close().catch(() => {});
  }
}

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/**
 * Files in the browser's IndexedDB (database `name`, default "modelsync", object store "files", keys
 * "{model}/{key}"). Each put is its own transaction, so it is atomic; the data survives reloads and works
 * offline.
 */
export class IndexedDBStorage {
  constructor(name = "modelsync", indexedDB = globalThis.indexedDB) {
    if (!indexedDB) throw new Error("IndexedDB is not available here (use MemoryStorage or FileStorage)");
    this.name = name;
    this.idb = indexedDB;
    this._db = null;
  }

  _open() {
    if (!this._db) {
      const req = this.idb.open(this.name, 1);
      req.onupgradeneeded = () => req.result.createObjectStore("files");
      this._db = request(req);
    }
    return this._db;
  }

  async _tx(mode, fn) {
    const db = await this._open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction("files", mode);
      let result;
      Promise.resolve(fn(tx.objectStore("files"))).then((r) => { result = r; }, reject);
      tx.oncomplete = () => resolve(result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error || new Error("IndexedDB transaction aborted"));
    });
  }

  async get(model, key) {
    const v = await this._tx("readonly", (s) => request(s.get(`${model}/${key}`)));
    return v === undefined ? null : new Uint8Array(v);
  }

  async put(model, key, bytes) {
    await this._tx("readwrite", (s) => { s.put(Uint8Array.from(bytes), `${model}/${key}`); });
  }

  async delete(model, key) {
    await this._tx("readwrite", (s) => { s.delete(`${model}/${key}`); });
  }

  async list(model, prefix = "") {
    const start = `${model}/${prefix}`;
    const keys = await this._tx("readonly", (s) => request(s.getAllKeys(IDBKeyRange.bound(start, start + "\uffff"))));
    return keys.map((k) => k.slice(model.length + 1)).sort();
  }
}
