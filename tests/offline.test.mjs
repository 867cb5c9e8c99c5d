// Offline after the first visit: the service worker (sw.js) pre-caches the page, the wasm
// runtime and the default model; with the network cut, a reload still shows the explorer's
// numbers and the person detector still finds the person. Online, it is network first, so a
// rebuilt module is never served stale.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { open, ARTIFACTS } from './browser.mjs';

let s;
before(async () => { s = await open('index.html'); });
after(async () => s && s.close());

async function personFound() {
  await s.page.waitForFunction(() => {
    const el = document.querySelector('qplay-detector');
    return el?.result && !el.running && el.result.detections?.length > 0;
  }, null, { timeout: 120_000 });
  return s.page.locator('qplay-detector').evaluate((el) => el.result.detections[0]);
}

test('the playground works offline after the first visit', async () => {
  const first = await personFound();
  assert.equal(first.label, 'person');
  // The service worker is installed, its pre-cache filled, and it controls the page.
  await s.page.waitForFunction(() => navigator.serviceWorker?.controller != null, null, { timeout: 60_000 });
  await s.page.waitForFunction(async () => {
    const c = await caches.open('qplay-v1');
    const keys = (await c.keys()).map((r) => new URL(r.url).pathname);
    return ['/www/pkg/qplay_wasm_bg.wasm', '/www/models/person_ssdlite.onnx', '/index.html'].every((p) => keys.includes(p));
  }, null, { timeout: 60_000, polling: 500 });

  await s.page.context().setOffline(true);
  try {
    await s.page.reload();
    const again = await personFound();
    assert.equal(again.label, 'person');
    assert.ok(again.score > 0.98, `score ${again.score}`);
    const text = await s.page.locator('qplay-explorer').evaluate((el) => el.shadowRoot.textContent);
    assert.match(text, /Δ/);
    await s.page.screenshot({ path: `${ARTIFACTS}offline-reload.png` });
    // Nothing failed to load while offline.
    assert.deepEqual(s.errors.filter((e) => !/offline cache unavailable/.test(e)), []);
  } finally {
    await s.page.context().setOffline(false);
  }
  for (const u of s.requests) assert.ok(u.startsWith(s.url), `request to another origin: ${u}`);
});
