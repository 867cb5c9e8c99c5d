// qplay's service worker: the playground works offline after the first visit.
//
// Network first, cache as the fallback: online, every request goes to the server as usual (so a
// rebuilt wasm module or an edited page is never served stale) and same-origin GET responses are
// copied into the cache; offline, the cached copy answers. Installing pre-caches the page, its
// modules, the wasm runtime and the default model, so even parts not yet used work offline.
// Nothing goes to any other origin: requests to other origins are not touched.
const CACHE = 'qplay-v1';
const PRECACHE = [
  './', 'index.html', 'www/style.css', 'www/app.js', 'www/qplay.js', 'www/hash.js', 'www/embed.js',
  'www/engine.js', 'www/worker.js', 'www/components/qplay-explorer.js', 'www/components/qplay-detector.js',
  'www/components/report-charts.js', 'www/pkg/qplay_wasm.js', 'www/pkg/qplay_wasm_bg.wasm',
  'www/models/person_ssdlite.onnx', 'www/models/person_ssdlite.json', 'www/samples/person.jpg',
];

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // One file failing (say, a model not shipped) must not stop the others.
    await Promise.all(PRECACHE.map((p) => cache.add(new URL(p, self.registration.scope)).catch(() => {})));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const k of await caches.keys()) if (k !== CACHE) await caches.delete(k);
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET' || new URL(req.url).origin !== self.location.origin) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const res = await fetch(req);
      if (res.ok && res.type === 'basic') await cache.put(req, res.clone());
      return res;
    } catch (e) {
      const hit = await cache.match(req, { ignoreSearch: true });
      if (hit) return hit;
      throw e;
    }
  })());
});
