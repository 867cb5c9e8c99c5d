// Threads in the page: which wasm module the detector's worker runs, and with how many threads.
//
// Two builds (scripts/build-wasm.sh): www/pkg/ (one thread, any page) and www/pkg-threads/ (shared
// memory and a rayon pool on Web Workers, wasm-bindgen-rayon). The threaded one runs only where
// SharedArrayBuffer exists, which needs a cross-origin-isolated page (COOP/COEP): scripts/serve.mjs
// sends those headers, and on a static host that cannot, sw.js adds them (isolate() below reloads
// the page once it controls it). The worker (worker.js) calls startWasm() at load: the threaded
// module when it can, min(hardware threads, 8) threads by default (the detector's Threads setting,
// `detector.threads` in the link), else the single-thread one; a pool that does not start falls
// back to one thread, and the reason is said in the backend line and in `qplay-ready`.
//
// Each has a twin built with relaxed SIMD as well (www/pkg-relaxed/, www/pkg-threads-relaxed/): the
// int8 GEMM on four-byte dot products where the engine computes them exactly, the same bits either
// way. A browser without relaxed SIMD cannot compile them, so hasRelaxedSimd() asks first, and a
// twin that fails to load (a build without them: QPLAY_WASM_RELAXED=0) falls back to the plain one.
//
// Page side: workerUrl() (the worker's URL carries the setting and, when the page is not isolated,
// why), isolate() (app.js, before the components start). Worker side: startWasm().

/** The most threads used by default (more rarely pays off for these models; the setting goes higher). */
export const DEFAULT_MAX = 8;
/** The most threads the setting offers. */
export const MAX_THREADS = 64;
/** How long the pool's workers may take to start before the worker gives up on them. */
export const POOL_TIMEOUT_MS = 20_000;
const TRIED = 'qplay-isolation'; // sessionStorage: the service worker's reload was tried in this tab

/** The default: min(hardware threads, 8). */
export function defaultThreads(hardware = globalThis.navigator?.hardwareConcurrency) {
  return Math.max(1, Math.min(Number(hardware) || 1, DEFAULT_MAX));
}

/** Why this page is not cross-origin isolated (null when it is), in the words the backend line uses. */
export function isolationNote() {
  if (globalThis.crossOriginIsolated) return null;
  if (!globalThis.isSecureContext) return 'the page is not served over HTTPS (or from localhost), which cross-origin isolation needs';
  if (typeof window !== 'undefined' && window.top !== window) return 'the page is in a frame, and it or the page around it is not cross-origin isolated (COOP/COEP)';
  let tried = null;
  try { tried = sessionStorage.getItem(TRIED); } catch { /* storage blocked */ }
  if (tried) return `its host sends no COOP/COEP headers, and ${tried}`;
  if (!('serviceWorker' in navigator)) return 'its host sends no COOP/COEP headers, and this browser has no service workers to add them';
  return 'its host sends no COOP/COEP headers';
}

/** The detector worker's URL: `threads` (a number, or null for the default) and, when the page is
 * not isolated, why (the worker cannot tell a frame or a failed service worker from a bare host). */
export function workerUrl(threads) {
  const url = new URL('./worker.js', import.meta.url);
  if (threads) url.searchParams.set('threads', String(threads));
  const why = isolationNote();
  if (why) url.searchParams.set('why', why);
  return url;
}

/**
 * On a host that sends no COOP/COEP (a static host): registers sw.js, which adds them to every
 * response, and reloads the page once it controls it (once per tab: a reload that did not make
 * the page isolated is not repeated, and the reason is shown instead). Resolves to true when the
 * page is reloading (the caller starts nothing then). Top-level pages only: a frame is isolated
 * only when the page around it is.
 */
export async function isolate(swUrl, { wait = 10_000 } = {}) {
  if (globalThis.crossOriginIsolated || !globalThis.isSecureContext || window.top !== window || !('serviceWorker' in navigator)) return false;
  try { if (sessionStorage.getItem(TRIED)) return false; } catch { return false; }
  const note = (why) => { try { sessionStorage.setItem(TRIED, why); } catch { /* storage blocked */ } };
  try {
    const sw = navigator.serviceWorker;
    const controlled = new Promise((r) => sw.addEventListener('controllerchange', r, { once: true }));
    const reg = await sw.register(swUrl);
    if (!reg) { note('the service worker that adds them could not be registered'); return false; }
    // A page already controlled by an older sw.js (without the headers) waits for the new one.
    if (sw.controller) await reg.update().catch(() => {});
    if (!sw.controller || reg.installing || reg.waiting) {
      const ok = await Promise.race([controlled.then(() => true), new Promise((r) => setTimeout(() => r(false), wait))]);
      if (!ok) { note(`the service worker that adds them did not take control within ${wait / 1000} s (the next visit tries again)`); return false; }
    }
    note('a reload under the service worker that adds them did not make the page isolated');
    location.reload();
    return true;
  } catch (e) {
    note(`the service worker that adds them could not be registered (${e?.message ?? e})`);
    return false;
  }
}

/** A module whose one function uses relaxed SIMD (i32x4.relaxed_dot_i8x16_i7x16_add_s on three zero vectors). */
const RELAXED_PROBE = (() => {
  const zero = [0xfd, 0x0c, ...new Array(16).fill(0)]; // v128.const 0
  const body = [0x00, ...zero, ...zero, ...zero, 0xfd, 0x93, 0x02, 0x1a, 0x0b]; // relaxed dot, drop, end
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0, 10, body.length + 2, 1, body.length, ...body]);
})();

/** Whether this browser compiles relaxed SIMD (and so can load the -relaxed modules). */
export function hasRelaxedSimd() {
  try { return WebAssembly.validate(RELAXED_PROBE); } catch { return false; }
}

/** Imports and initialises a module's bindings: www/pkg/ or www/pkg-threads/ (`threaded`), their
 * relaxed SIMD twin first where the browser has relaxed SIMD. Resolves to {mod, exports}. */
async function importModule(threaded, relaxed = true) {
  const dir = threaded ? './pkg-threads' : './pkg';
  if (relaxed && hasRelaxedSimd()) {
    try {
      const mod = await import(`${dir}-relaxed/qplay_wasm.js`);
      return { mod, exports: await mod.default() };
    } catch { /* not built, or it failed: the plain one */ }
  }
  const mod = await import(`${dir}/qplay_wasm.js`);
  return { mod, exports: await mod.default() };
}

/** Whether this context can run the threaded module: shared memory, which needs a cross-origin-isolated page. */
export const canShare = () => Boolean(globalThis.crossOriginIsolated) && typeof SharedArrayBuffer === 'function';

/**
 * The wasm bindings for code that never starts a pool (the page's main thread: the explorer, the
 * version; the weights worker). Where the detector's worker will load the threaded module (an
 * isolated page on a device with more than one hardware thread) this loads it too, so that the
 * page downloads one module, not both; it then runs one thread (rayon's fallback pool of the
 * calling thread; nothing on the main thread blocks). Elsewhere, or when it fails to load, the
 * single-thread module. Resolves to the initialised bindings.
 */
export async function loadBindings() {
  if (canShare() && defaultThreads() > 1) {
    try {
      return (await importModule(true)).mod;
    } catch { /* the single-thread module below; the detector's worker says why */ }
  }
  return (await importModule(false)).mod;
}

/** A promise that rejects with `message` after `ms`. */
const timeout = (ms, message) => new Promise((_, no) => setTimeout(() => no(new Error(message)), ms));

/**
 * Worker side: loads the wasm module to use and starts its pool. `params` is the worker URL's
 * search params (workerUrl; `relaxed=0` keeps to the plain modules). Resolves to {mod (the bindings), memory (wasm memory), threads
 * (how many run), note (why one, or null)}; never rejects for want of threads. `mod.simdName()` says
 * whether the int8 kernels run on relaxed SIMD.
 */
export async function startWasm(params) {
  const asked = Number(params.get('threads')) || null;
  // `relaxed=0`: the plain modules even where the browser has relaxed SIMD (the bench compares them).
  const relaxed = params.get('relaxed') !== '0';
  const n = Math.min(asked ?? defaultThreads(), MAX_THREADS);
  let note = null;
  if (n <= 1) note = asked ? 'the Threads setting is 1' : 'this device reports one hardware thread';
  else if (!globalThis.crossOriginIsolated) note = `the page is not cross-origin isolated: ${params.get('why') || 'no COOP/COEP headers'}`;
  else if (!canShare()) note = 'this browser has no SharedArrayBuffer';
  else {
    try {
      const { mod, exports } = await importModule(true, relaxed);
      await Promise.race([mod.initThreadPool(n), timeout(POOL_TIMEOUT_MS, `its ${n} workers did not start within ${POOL_TIMEOUT_MS / 1000} s`)]);
      return { mod, memory: exports.memory ?? mod.memory, threads: mod.threadCount(), note: null };
    } catch (e) {
      note = `the thread pool did not start (${e?.message ?? e})`;
    }
  }
  const { mod, exports } = await importModule(false, relaxed);
  return { mod, memory: exports.memory, threads: 1, note };
}
