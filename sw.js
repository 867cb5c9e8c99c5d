// qplay's service worker: the playground works offline after the first visit, and gets threads on
// a static host that cannot send COOP/COEP.
//
// Network first, cache as the fallback: online, every request goes to the server as usual (so a
// rebuilt wasm module or an edited page is never served stale) and same-origin GET responses are
// copied into the cache; offline, the cached copy answers. Installing pre-caches the page, every
// module and the wasm runtimes; the built-in models and the sample photos follow when the page
// asks ('precache-data', once its own model is in: app.js), so that installing is quick and a model
// is not downloaded twice. The page's own modules load before this worker controls it, so the
// fetch handler never sees them on the first visit: the lists must name every file the page and
// its worker load (tests/offline.test.mjs checks them against www/). Requests to other origins are
// not touched (qplay makes none).
//
// Cross-origin isolation (as coi-serviceworker does): every same-origin response it hands the page
// carries COOP `same-origin` and COEP `require-corp` when the host sent none, so the page is
// cross-origin isolated, SharedArrayBuffer exists and the threaded wasm module can run. A page is
// isolated only when its own document came through this worker, so the first visit reloads once
// when this worker takes control (www/threads.js isolate()).
const CACHE = 'qplay-v5';
/** Needed to run at all: installing fails (and is retried on the next visit) if one is missing. */
const PRECACHE = [
  './', 'index.html', 'www/style.css', 'www/app.js', 'www/qplay.js', 'www/hash.js', 'www/options.js', 'www/embed.js',
  'www/engine.js', 'www/worker.js', 'www/saved-run.js', 'www/threads.js', 'www/weights-worker.js', 'www/camera.js', 'www/components/qplay-explorer.js', 'www/components/qplay-detector.js',
  'www/components/qplay-playground.js', 'www/components/report-charts.js', 'www/components/lazy.js',
  'www/components/detector/state.js', 'www/components/detector/template.js', 'www/components/detector/model-source.js',
  'www/components/detector/quantize.js', 'www/components/detector/qat.js', 'www/components/detector/report.js', 'www/components/detector/live.js',
  'www/components/detector/util.js', 'www/components/detector/backend.js', 'www/components/detector/files.js', 'www/components/detector/threads.js', 'www/components/detector/summary.js',
  'www/pkg/qplay_wasm.js', 'www/pkg/qplay_wasm_bg.wasm',
];
/** The threaded wasm module (www/pkg-threads/, scripts/build-wasm.sh): pre-cached with the above when
 * the host ships it; a build without it (QPLAY_WASM_THREADS=0) runs one thread. */
const PRECACHE_THREADS = [
  'www/pkg-threads/qplay_wasm.js', 'www/pkg-threads/qplay_wasm_bg.wasm',
  'www/pkg-threads/snippets/wasm-bindgen-rayon-38edf6e439f6d70d/src/workerHelpers.no-bundler.js',
];
/** The relaxed SIMD twins of both (www/pkg-relaxed/, www/pkg-threads-relaxed/): pre-cached instead of
 * the plain threaded module where this browser compiles relaxed SIMD (the page then loads them:
 * www/threads.js); the plain single-thread module above stays, the fallback of both. */
const PRECACHE_RELAXED = [
  'www/pkg-relaxed/qplay_wasm.js', 'www/pkg-relaxed/qplay_wasm_bg.wasm',
  'www/pkg-threads-relaxed/qplay_wasm.js', 'www/pkg-threads-relaxed/qplay_wasm_bg.wasm',
  'www/pkg-threads-relaxed/snippets/wasm-bindgen-rayon-38edf6e439f6d70d/src/workerHelpers.no-bundler.js',
];
/** Whether this browser compiles relaxed SIMD: www/threads.js hasRelaxedSimd(), the same module. */
function hasRelaxedSimd() {
  const zero = [0xfd, 0x0c, ...new Array(16).fill(0)];
  const body = [0x00, ...zero, ...zero, ...zero, 0xfd, 0x93, 0x02, 0x1a, 0x0b];
  try {
    return WebAssembly.validate(new Uint8Array([0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0, 10, body.length + 2, 1, body.length, ...body]));
  } catch { return false; }
}
/** The detector's built-in models and photos: cached when the host ships them, skipped if not. */
const PRECACHE_DATA = [ // (and the profile reference page the editor links to)
  'www/profile.html', 'www/models/person_ssdlite.onnx', 'www/models/person_ssdlite.json',
  'www/models/blazeface_short.onnx', 'www/models/blazeface_short.json',
  'www/samples/person.jpg', 'www/samples/astronaut.png', 'www/samples/camera.png', 'www/samples/coffee.png',
  'www/samples/dog.jpg', 'www/samples/horses.jpg', 'www/samples/kite.jpg',
];

/** The cache key: the URL without its query, so `index.html?embed=detector` reuses `index.html`. */
const key = (url) => { const u = new URL(url); u.search = ''; u.hash = ''; return u.href; };

/** Fetches one URL past the HTTP cache (a static host's max-age must not pre-cache an old copy);
 * with `skipCached`, a URL the cache already holds (the page put the model it downloaded on the
 * first visit there: app.js) is left as it is. */
async function precache(cache, path, skipCached = false) {
  const url = new URL(path, self.registration.scope).href;
  if (skipCached && await cache.match(key(url))) return;
  const res = await fetch(url, { cache: 'no-cache' });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  await cache.put(key(url), res);
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await Promise.all([
      ...PRECACHE.map((p) => precache(cache, p)),
      ...(hasRelaxedSimd() ? PRECACHE_RELAXED : PRECACHE_THREADS).map((p) => precache(cache, p).catch(() => {})),
    ]);
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    // Older versions of this cache only: other caches of this origin are not ours.
    for (const k of await caches.keys()) if (k.startsWith('qplay-') && k !== CACHE) await caches.delete(k);
    await self.clients.claim();
  })());
});

// The page asks for the models and photos once its own model is in (so that it is not downloaded twice).
self.addEventListener('message', (event) => {
  if (event.data?.type !== 'precache-data') return;
  event.waitUntil(caches.open(CACHE).then((cache) => Promise.all(PRECACHE_DATA.map((p) => precache(cache, p, true).catch(() => {})))));
});

/** The response with COOP/COEP added where the host sent none (see the top of this file). Only
 * plain same-origin responses: a redirect or an error passes as it is. */
function isolated(res) {
  if (res.type !== 'basic' || res.status < 200) return res;
  const headers = new Headers(res.headers);
  if (headers.has('Cross-Origin-Embedder-Policy') && headers.has('Cross-Origin-Opener-Policy')) return res;
  if (!headers.has('Cross-Origin-Embedder-Policy')) headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
  if (!headers.has('Cross-Origin-Opener-Policy')) headers.set('Cross-Origin-Opener-Policy', 'same-origin');
  try { return new Response(res.body, { status: res.status, statusText: res.statusText, headers }); } catch { return res; }
}

self.addEventListener('fetch', (event) => {
  const req = event.request;
  // Range requests (media) and other origins go to the network untouched.
  if (req.method !== 'GET' || req.headers.has('range') || new URL(req.url).origin !== self.location.origin) return;
  event.respondWith((async () => {
    try {
      const res = await fetch(req);
      if (res.status === 200 && res.type === 'basic') {
        // The copy is written while the page reads the response (a model's download progress is not held back).
        const copy = res.clone();
        event.waitUntil(caches.open(CACHE).then((c) => c.put(key(req.url), copy)).catch(() => {}));
      }
      return isolated(res);
    } catch (e) {
      const hit = await caches.match(key(req.url), { cacheName: CACHE });
      if (hit) return isolated(hit);
      throw e;
    }
  })());
});
