// The /demo/ page's service worker: on install it stores the page and every module it imports (followed
// from demo.mjs through the scorer's relative imports), then serves them from that cache, so the page reloads
// with no network; each answer refreshes its entry in the background (a changed file shows on the next
// load). API requests (the manifest, the document, /signing-key) are never cached here: the sync client
// decides what is current, and the model itself lives in IndexedDB.
const CACHE = "modelsync-demo-v1";
const ENTRIES = ["./", "./demo.mjs", "/scorer-js/sync.js", "/scorer-js/index.js"];
const SHELL = ["/demo/", "/scorer-js/"];
const IMPORT = /(?:^|[;\s])(?:import|export)\s[^;"'`]*?from\s*["']([^"']+)["']|(?:^|[;\s])import\s*["']([^"']+)["']/g;

async function precache() {
  const cache = await caches.open(CACHE);
  const queue = ENTRIES.map((u) => new URL(u, self.location.href).href);
  const seen = new Set();
  while (queue.length) {
    const url = queue.shift();
    if (seen.has(url)) continue;
    seen.add(url);
    const resp = await fetch(url, { cache: "no-cache" });
    if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status}`);
    await cache.put(url, resp.clone());
    if (/\.m?js$/.test(new URL(url).pathname)) {
      for (const m of (await resp.text()).matchAll(IMPORT)) {
        const spec = m[1] || m[2];
        if (spec.startsWith(".") || spec.startsWith("/")) queue.push(new URL(spec, url).href);
      }
    }
  }
}

self.addEventListener("install", (event) => {
  event.waitUntil(precache().then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith("modelsync-demo-") && k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== self.location.origin || !SHELL.some((p) => url.pathname.startsWith(p))) return;
  const key = url.origin + url.pathname; // the page with any ?model=... is the same page
  // stale-while-revalidate: answer from the cache (offline too), refresh it in the background for next time
  const refresh = caches.open(CACHE).then((cache) => fetch(req).then(async (resp) => {
    if (resp.ok) await cache.put(key, resp.clone());
    return resp;
  }));
  event.respondWith(caches.open(CACHE).then((cache) => cache.match(key)).then((hit) => hit || refresh));
  event.waitUntil(refresh.then(() => undefined, () => undefined));
});
