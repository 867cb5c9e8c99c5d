// Lazy start (www/components/lazy.js): on the documentation page the detector sits far below the
// fold; nothing of it (no worker, no model download) starts until it is scrolled near the
// viewport, its space is reserved meanwhile, and `ready` resolves once it has started and loaded.
// loading="eager" and a browser without IntersectionObserver start at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, ARTIFACTS } from './browser.mjs';

const heavy = (requests) => requests.filter((u) => /\/worker\.js$|\.onnx$/.test(u));

test('a detector far below the fold downloads nothing until it is scrolled near, then loads', async () => {
  const s = await open('docs/embed.html');
  try {
    const { page } = s;
    const det = page.locator('#det');
    await page.evaluate(() => document.getElementById('ex-seed').ready);
    // The page has settled (the first explorer shows its numbers); give an observer time to misfire.
    await page.waitForTimeout(1500);
    const far = await det.evaluate((el) => el.getBoundingClientRect().top - innerHeight);
    assert.ok(far > 1000, `the detector is ${far}px below the fold`);
    assert.deepEqual(heavy(s.requests), [], 'worker or model requested before scrolling');
    assert.equal(await det.evaluate((el) => el.engine), null);
    // The explorer further down has not loaded its numbers either, but holds its space.
    const relu6 = page.locator('#ex-relu6');
    assert.equal(await relu6.evaluate((el) => !!el.started), false);
    const relu6Before = await relu6.evaluate((el) => el.getBoundingClientRect().height);
    const detBefore = await det.evaluate((el) => el.getBoundingClientRect().height);
    assert.ok(detBefore >= 560, `detector ${detBefore}px before it starts`);
    // `ready` is a promise already, and still pending.
    assert.equal(await det.evaluate((el) => Promise.race([el.ready.then(() => 'resolved'), new Promise((r) => setTimeout(() => r('pending'), 200))])), 'pending');

    await det.scrollIntoViewIfNeeded();
    await det.evaluate((el) => el.ready);
    await page.waitForFunction(() => { const el = document.getElementById('det'); return el.result && !el.running; }, null, { timeout: 120_000 });
    const r = await det.evaluate((el) => el.result.detections.map((d) => d.label));
    assert.ok(r.includes('person'), JSON.stringify(r));
    assert.ok(heavy(s.requests).some((u) => u.endsWith('/www/models/person_ssdlite.onnx')), heavy(s.requests).join('\n'));
    assert.ok(heavy(s.requests).some((u) => u.endsWith('/www/worker.js')));
    await det.screenshot({ path: `${ARTIFACTS}lazy-detector-loaded.png` });

    await relu6.scrollIntoViewIfNeeded();
    await relu6.evaluate((el) => el.ready);
    const relu6After = await relu6.evaluate((el) => el.getBoundingClientRect().height);
    // The reserved space is most of the final height (the numbers fill it in).
    assert.ok(relu6Before >= 0.85 * relu6After, `explorer ${relu6Before}px before, ${relu6After}px after`);
    assert.deepEqual(s.errors, []);
  } finally {
    await s.close();
  }
});

test('loading="eager", start() and a browser without IntersectionObserver start at once', async () => {
  const s = await open('docs/embed.html');
  try {
    const { page } = s;
    await page.evaluate(() => document.getElementById('ex-seed').ready);
    const started = await page.evaluate(async () => {
      const add = (attrs) => {
        const el = document.createElement('qplay-explorer');
        for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
        document.body.append(el);
        return el;
      };
      const eager = add({ loading: 'eager' });
      const lazy = add({ id: 'lazy', min: '0', max: '6', bits: '4', signed: 'false', value: '2.5', sample: 'relu' });
      await new Promise((r) => setTimeout(r, 500));
      return { eager: !!eager.started, lazy: !!lazy.started };
    });
    assert.deepEqual(started, { eager: true, lazy: false });
    // What a reader would see before it starts (it is kept from starting while on screen): its space, held.
    const lazy = page.locator('#lazy');
    await lazy.evaluate((el) => { el.stopWatching(); el.scrollIntoView({ block: 'start' }); });
    const hBefore = await lazy.evaluate((el) => el.getBoundingClientRect().height);
    await page.screenshot({ path: `${ARTIFACTS}lazy-explorer-before-start.png` });
    assert.equal(await lazy.evaluate(async (el) => { await el.start(); return !!el.wasm; }), true);
    const hAfter = await lazy.evaluate((el) => el.getBoundingClientRect().height);
    await page.screenshot({ path: `${ARTIFACTS}lazy-explorer-started.png` });
    assert.ok(hBefore >= 0.85 * hAfter, `explorer ${hBefore}px before it starts, ${hAfter}px after`);
    assert.deepEqual(s.errors, []);
  } finally {
    await s.close();
  }

  const t = await open('docs/embed.html');
  try {
    // Reloaded in a browser without IntersectionObserver: the detector far down starts anyway.
    assert.deepEqual(heavy(t.requests), []);
    await t.page.addInitScript(() => { delete window.IntersectionObserver; });
    await t.page.reload();
    await t.page.waitForFunction(() => document.getElementById('det')?.engine != null, null, { timeout: 60_000 });
    await t.page.evaluate(() => document.getElementById('det').ready);
    assert.ok(heavy(t.requests).some((u) => u.endsWith('.onnx')));
  } finally {
    await t.close();
  }
});
