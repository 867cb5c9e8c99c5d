// Threads in the page (issue #16): the detector's worker runs the threaded wasm module with a pool
// of N threads when the page is cross-origin isolated, and says so (the backend line, the timings,
// `qplay-ready`); its detections are exactly the one-thread page's. The Threads setting travels in
// the link and a change (or a Cancel) starts the pool again in a new worker. Without COOP/COEP
// (a static host) sw.js adds them after one reload; where nothing helps, or the pool does not
// start, one thread runs and the page says why. Nothing fails. Screenshots in tests/artifacts/threads-*.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open, ARTIFACTS } from './browser.mjs';
import { build } from '../scripts/build.mjs';

// Where the twins were built (scripts/build-wasm.sh) and the browser compiles relaxed SIMD, the
// page loads www/pkg-threads-relaxed/ (or www/pkg-relaxed/) in place of www/pkg-threads/ (www/pkg/).
const BUILT = existsSync(new URL('../www/pkg-relaxed/qplay_wasm_bg.wasm', import.meta.url));
/** '-relaxed' where the page `s` loads the twins, else ''. */
const relaxedSuffix = async (s) => (BUILT && await s.page.evaluate(async () => (await import('/www/threads.js')).hasRelaxedSimd()) ? '-relaxed' : '');

/** Records every `qplay-ready` event's threads (an init script: before the page's own scripts). */
const recordReady = (page) => page.addInitScript(() => {
  window.readyEvents = [];
  document.addEventListener('qplay-ready', (e) => {
    if (e.target.localName === 'qplay-detector') window.readyEvents.push({ threads: e.detail.threads, threadsNote: e.detail.threadsNote });
    if (e.target.localName === 'qplay-detector') window.readySimd = e.detail.simd;
  });
});

/** Waits for the detector's result on `image` (a result newer than `after`), and returns what the page shows. */
async function shown(page, { image = 'person.jpg', after = 0 } = {}) {
  await page.locator('qplay-detector').scrollIntoViewIfNeeded();
  await page.waitForFunction(([i, a]) => {
    const el = document.querySelector('qplay-detector');
    return el?.result && !el.running && el.result.id > a && el.result.image === i && !el.shadowRoot.querySelector('.status').hasAttribute('data-busy');
  }, [image, after], { timeout: 180_000 });
  return page.evaluate(() => {
    const el = document.querySelector('qplay-detector');
    const q = (sel) => el.shadowRoot.querySelector(sel);
    return {
      id: el.result.id, detections: el.result.detections, note: q('.backend-note').textContent, timings: q('.timings').textContent,
      pick: q('select[name=threads]').value, pickDisabled: q('select[name=threads]').disabled, settings: el.settings.threads,
      ready: window.readyEvents ?? [], isolated: crossOriginIsolated,
    };
  });
}

test('isolated: N threads, said in the backend line, the timings and qplay-ready; the detections equal one thread\'s exactly', async () => {
  const s = await open('index.html?embed=detector&threads=2', { before: recordReady });
  try {
    const two = await shown(s.page);
    assert.equal(two.isolated, true);
    assert.match(two.note, /^In use: CPU — wasm (relaxed SIMD|SIMD128), 2 threads, in a Web Worker\./, two.note);
    assert.match(two.timings, /\(wasm, CPU, 2 threads\)$/, two.timings);
    assert.deepEqual(two.ready.at(-1), { threads: 2, threadsNote: null });
    assert.equal(two.pick, '2');
    const RELAXED = await relaxedSuffix(s);
    assert.ok(s.requests.some((u) => u.endsWith(`/www/pkg-threads${RELAXED}/qplay_wasm_bg.wasm`)), 'the threaded module was loaded');
    // The int8 kernels' instructions: relaxed SIMD where its module loaded and this engine's
    // four-byte dot product is exact; the backend line says which.
    const simd = await s.page.evaluate(() => window.readySimd);
    assert.match(simd, RELAXED ? /^(relaxed-simd|simd128)$/ : /^simd128$/);
    assert.equal(two.note.includes('wasm relaxed SIMD,'), simd === 'relaxed-simd', two.note);
    await s.page.screenshot({ path: `${ARTIFACTS}threads-isolated.png` });
    await s.page.locator('qplay-detector select[name=sample]').selectOption('camera.png');
    const twoCamera = await shown(s.page, { image: 'camera.png', after: two.id });

    await s.page.goto(`${s.url}index.html?embed=detector&threads=1`);
    const one = await shown(s.page);
    assert.match(one.note, /^In use: CPU — wasm (relaxed SIMD|SIMD128), 1 thread \(the Threads setting is 1\), in a Web Worker\./, one.note);
    assert.match(one.timings, /\(wasm, CPU, 1 thread\)$/);
    assert.deepEqual(one.ready.at(-1), { threads: 1, threadsNote: 'the Threads setting is 1' });
    await s.page.locator('qplay-detector select[name=sample]').selectOption('camera.png');
    const oneCamera = await shown(s.page, { image: 'camera.png', after: one.id });

    assert.ok(two.detections.length > 0 && twoCamera.detections.length > 0);
    assert.deepEqual(two.detections, one.detections, 'person.jpg: 2 threads vs 1');
    assert.deepEqual(twoCamera.detections, oneCamera.detections, 'camera.png: 2 threads vs 1');
    assert.deepEqual(s.errors, []);
  } finally {
    await s.close();
  }
});

test('isolated: the page downloads one wasm module, the threaded one, for the explorer and the detector alike', async () => {
  const s = await open('index.html', { before: recordReady });
  try {
    const r = await shown(s.page);
    await s.page.waitForFunction(() => document.querySelector('qplay-explorer')?.wasm);
    const hw = await s.page.evaluate(() => navigator.hardwareConcurrency);
    const wasm = s.requests.filter((u) => u.endsWith('.wasm')).map((u) => new URL(u).pathname);
    const RELAXED = await relaxedSuffix(s);
    if (hw > 1) {
      assert.equal(r.ready.at(-1).threads, Math.min(hw, 8));
      assert.deepEqual([...new Set(wasm)], [`/www/pkg-threads${RELAXED}/qplay_wasm_bg.wasm`], 'the single-thread module is not downloaded beside it');
    } else {
      assert.deepEqual([...new Set(wasm)], [`/www/pkg${RELAXED}/qplay_wasm_bg.wasm`]);
    }
    // The explorer's numbers come from that module, on the main thread.
    assert.match(await s.page.locator('#version').textContent(), /^v\d/);
    assert.deepEqual(s.errors, []);
  } finally {
    await s.close();
  }
});

test('the Threads setting: from the link, into the link; a change, and a Cancel, start the pool again in a new worker', async () => {
  const s = await open('index.html#detector.threads=1', { before: recordReady });
  try {
    const det = s.page.locator('qplay-detector');
    const one = await shown(s.page);
    assert.equal(one.pick, '1');
    assert.equal(one.settings, 1);
    assert.match(one.note, /1 thread \(the Threads setting is 1\)/);
    await det.locator('select[name=threads]').selectOption('2');
    // A result newer than the one-thread one (the old result stays on screen while the new worker loads).
    const two = await shown(s.page, { after: one.id });
    assert.match(two.note, /wasm (relaxed SIMD|SIMD128), 2 threads, in a Web Worker/, two.note);
    assert.match(s.page.url(), /detector\.threads=2/);
    assert.deepEqual(two.ready.at(-1), { threads: 2, threadsNote: null });
    // Cancel replaces the worker: the new one starts its pool again.
    const before = two.ready.length;
    await det.evaluate((el) => el.cancel());
    await s.page.waitForFunction((n) => window.readyEvents.length > n, before, { timeout: 120_000 });
    const again = await shown(s.page, { after: two.id });
    assert.match(again.note, /wasm (relaxed SIMD|SIMD128), 2 threads, in a Web Worker/, again.note);
    assert.deepEqual(again.ready.at(-1), { threads: 2, threadsNote: null });
    // Back to the default: left out of the link.
    await det.locator('select[name=threads]').selectOption('');
    await s.page.waitForFunction(() => !/detector\.threads/.test(location.hash));
    assert.deepEqual(s.errors, []);
  } finally {
    await s.close();
  }
});

test('no COOP/COEP and no service worker: one thread, and the page says why', async () => {
  const s = await open('index.html', { isolate: false, context: { serviceWorkers: 'block' }, before: recordReady });
  try {
    const v = await shown(s.page);
    assert.equal(v.isolated, false);
    const why = 'the page is not cross-origin isolated: its host sends no COOP/COEP headers, and the service worker that adds them could not be registered';
    assert.match(v.note, /^In use: CPU — wasm (relaxed SIMD|SIMD128), 1 thread \(/, v.note);
    assert.ok(v.note.includes(`, 1 thread (${why}), in a Web Worker.`), v.note);
    assert.deepEqual(v.ready.at(-1), { threads: 1, threadsNote: why });
    assert.equal(v.pickDisabled, true, 'the Threads picker is disabled: there is one thread whatever it says');
    assert.ok(!s.requests.some((u) => u.includes('/pkg-threads')), 'the threaded module is not loaded');
    await s.page.screenshot({ path: `${ARTIFACTS}threads-not-isolated.png` });
    // Embedded (no service worker is tried there), in a new tab: the host's reason.
    const tab = await s.browser.newPage();
    tab.on('pageerror', (x) => s.errors.push(`pageerror: ${x.message}`));
    await tab.goto(`${s.url}index.html?embed=detector`);
    const e = await shown(tab);
    assert.match(e.note, /1 thread \(the page is not cross-origin isolated: its host sends no COOP\/COEP headers\)/, e.note);
    assert.deepEqual(s.errors, []);
  } finally {
    await s.close();
  }
});

test('a thread pool that does not start: one thread, with the reason', async () => {
  const s = await open('index.html?embed=detector&threads=2', {
    before: async (page) => { await recordReady(page); await page.context().route('**/www/pkg-threads*/**', (r) => r.abort()); },
  });
  try {
    const v = await shown(s.page);
    assert.equal(v.isolated, true);
    assert.match(v.note, /1 thread \(the thread pool did not start \([^)]+\)\), in a Web Worker/, v.note);
    assert.match(v.ready.at(-1).threadsNote, /^the thread pool did not start/);
    assert.ok(v.detections.length > 0);
    // The blocked module's failed loads are the only errors.
    assert.deepEqual(s.errors.filter((x) => !/pkg-threads|Failed to fetch dynamically imported module|net::ERR_FAILED/.test(x)), []);
  } finally {
    await s.close();
  }
});

test('npm run build\'s site on a host without COOP/COEP: sw.js adds them, one reload, and the page runs its threads', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'qplay-threads-'));
  try {
    build({ out: join(tmp, 'site'), quiet: true });
    const loads = [];
    const s = await open('site/index.html', {
      root: tmp, isolate: false,
      before: async (page) => { await recordReady(page); page.on('framenavigated', (f) => { if (f === page.mainFrame()) loads.push(f.url()); }); },
    });
    try {
      const v = await shown(s.page);
      assert.equal(v.isolated, true, 'the page is cross-origin isolated under the service worker');
      const hw = await s.page.evaluate(() => navigator.hardwareConcurrency);
      const want = Math.min(hw, 8);
      assert.deepEqual(v.ready.at(-1).threads, want, JSON.stringify(v.ready));
      if (want > 1) assert.match(v.note, new RegExp(`wasm (relaxed SIMD|SIMD128), ${want} threads, in a Web Worker`), v.note);
      assert.equal(loads.length, 2, `one reload: ${loads.join(', ')}`);
      await s.page.screenshot({ path: `${ARTIFACTS}threads-static-host.png` });
      assert.deepEqual(s.errors, []);
    } finally {
      await s.close();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
