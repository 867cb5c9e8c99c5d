// Offline after the first visit: the service worker (sw.js) pre-caches the page, every module,
// the wasm runtime, the models and the photos; with the server shut down, a reload still shows
// the explorer's numbers and the person detector still finds the person — from the repository
// and from `npm run build`'s output served from a sub-folder. Online, it is network first, so a
// rebuilt module is never served stale.
//
// The network is cut by closing the server (and its keep-alive connections), not by the browser's
// offline emulation: nothing but the service worker's cache can answer then.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { open, ARTIFACTS } from './browser.mjs';
import { build } from '../scripts/build.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** sw.js's constants, read by running it with a stub `self`. */
const SW = vm.runInNewContext(`${readFileSync(join(ROOT, 'sw.js'), 'utf8')}\n;({ CACHE, PRECACHE, PRECACHE_THREADS, PRECACHE_RELAXED, PRECACHE_DATA, hasRelaxedSimd })`, { self: { addEventListener() {} } });

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? walk(join(dir, d.name)) : [join(dir, d.name)]));
}

test('sw.js pre-caches every module, stylesheet, page, wasm file, model and photo the playground ships', () => {
  // The page's own modules load before the service worker controls it, so a module missing
  // from PRECACHE is never cached and the page does not start offline.
  const shipped = ['index.html', ...walk(join(ROOT, 'www')).map((f) => relative(ROOT, f).split('\\').join('/'))
    .filter((f) => /\.(m?js|css|wasm|html)$/.test(f) || /^www\/models\/.*\.(onnx|json)$/.test(f) || /^www\/samples\/.*\.(png|jpe?g)$/.test(f))];
  // The threaded and relaxed SIMD modules are listed whether or not this checkout built them
  // (QPLAY_WASM_THREADS=0, QPLAY_WASM_RELAXED=0).
  const optional = [...SW.PRECACHE_THREADS, ...SW.PRECACHE_RELAXED];
  const listed = [...SW.PRECACHE, ...optional, ...SW.PRECACHE_DATA].filter((p) => p !== './');
  const unbuilt = optional.filter((p) => !shipped.includes(p));
  assert.deepEqual([...listed].sort(), [...shipped, ...unbuilt].sort(), 'sw.js PRECACHE/PRECACHE_THREADS/PRECACHE_RELAXED/PRECACHE_DATA vs the files under www/');
  // The service worker's relaxed SIMD probe answers (never throws), here in Node's engine.
  assert.equal(typeof SW.hasRelaxedSimd(), 'boolean');
});

async function personFound(page) {
  await page.locator('qplay-detector').scrollIntoViewIfNeeded();
  await page.waitForFunction(() => {
    const el = document.querySelector('qplay-detector');
    return el?.result && !el.running && el.result.detections?.length > 0;
  }, null, { timeout: 120_000 });
  return page.locator('qplay-detector').evaluate((el) => el.result.detections[0]);
}

/** Same-origin URLs, without query or fragment (the service worker's cache keys). */
const plain = (u) => { const x = new URL(u); x.search = ''; x.hash = ''; return x.href; };

async function offlineAfterFirstVisit(s, base, shot) {
  const first = await personFound(s.page);
  assert.equal(first.label, 'person');
  // The service worker is active and controls the page, and its cache holds every pre-cached
  // file and everything the first visit loaded (the page, its worker's module and the wasm).
  const scope = await s.page.evaluate(async () => (await navigator.serviceWorker.ready).scope);
  assert.equal(scope, base);
  await s.page.waitForFunction(() => navigator.serviceWorker.controller != null, null, { timeout: 60_000 });
  const origin = new URL(base).origin;
  // The optional modules this browser gets: the relaxed SIMD twins where it compiles relaxed SIMD.
  const relaxed = await s.page.evaluate(async (u) => (await import(u)).hasRelaxedSimd(), new URL('www/threads.js', base).href);
  const want = [...new Set([
    ...[...SW.PRECACHE, ...(relaxed ? SW.PRECACHE_RELAXED : SW.PRECACHE_THREADS).filter((p) => existsSync(join(ROOT, p))), ...SW.PRECACHE_DATA].map((p) => new URL(p, base).href),
    ...s.requests.filter((u) => u.startsWith(origin + '/') && !u.endsWith('/sw.js')).map(plain),
  ])];
  let missing;
  for (const end = Date.now() + 60_000; Date.now() < end; await new Promise((r) => setTimeout(r, 250))) {
    missing = await s.page.evaluate(async ([urls, name]) => {
      const have = new Set((await (await caches.open(name)).keys()).map((r) => r.url));
      return urls.filter((u) => !have.has(u));
    }, [want, SW.CACHE]);
    if (!missing.length) break;
  }
  assert.deepEqual(missing, [], 'not in the service worker cache 60 s after the first visit');

  // Cut the network: the server stops, its keep-alive connections too.
  await new Promise((r) => { s.server.close(r); s.server.closeAllConnections(); });
  await assert.rejects(fetch(base), 'the server still answers');
  const before = s.errors.length;
  await s.page.reload();
  const again = await personFound(s.page);
  assert.equal(again.label, 'person');
  assert.ok(again.score > 0.98, `score ${again.score}`);
  const text = await s.page.locator('qplay-explorer').evaluate((el) => el.shadowRoot.textContent);
  assert.match(text, /Δ/);
  await s.page.waitForFunction(() => /^v\d/.test(document.getElementById('version').textContent));
  await s.page.screenshot({ path: `${ARTIFACTS}${shot}` });
  // Nothing failed to load while offline (the service worker's own update check may fail: it is a warning).
  assert.deepEqual(s.errors.slice(before).filter((e) => !/sw\.js|offline cache unavailable/.test(e)), []);
  for (const u of s.requests) assert.ok(u.startsWith(origin + '/') || /^(data|blob):/.test(u), `request to another origin: ${u}`);
}

test('app.js seeds the service worker\'s cache by its name', () => {
  assert.equal(/export const SW_CACHE = '([^']+)'/.exec(readFileSync(join(ROOT, 'www/app.js'), 'utf8'))?.[1], SW.CACHE);
});

test('the playground works offline after the first visit', async () => {
  const s = await open('index.html');
  // Every response the server sends (the page's, its worker's and the service worker's).
  const served = [];
  s.server.on('request', (req, res) => res.on('finish', () => served.push(`${res.statusCode} ${new URL(req.url, s.url).pathname}`)));
  try {
    await offlineAfterFirstVisit(s, s.url, 'offline-reload.png');
    // The first visit downloaded the default model once: the pre-cache revalidated it (304).
    const model = served.filter((r) => r.endsWith('/www/models/person_ssdlite.onnx'));
    assert.deepEqual(model.filter((r) => r.startsWith('200')), ['200 /www/models/person_ssdlite.onnx'], served.join('\n'));
  } finally {
    await s.close();
  }
});

test('npm run build output, served from a sub-folder, works offline after the first visit', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'qplay-offline-'));
  try {
    build({ out: join(tmp, 'site'), quiet: true });
    const s = await open('site/index.html', { root: tmp });
    try {
      await offlineAfterFirstVisit(s, `${s.url}site/`, 'offline-reload-dist.png');
    } finally {
      await s.close();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
