// Settings in the URL fragment (www/hash.js): changes rewrite the hash without adding history
// entries, a fresh page with the hash shows the same numbers, a bad hash is ignored with a note,
// "Copy link" copies the URL, and `hide` (attribute, or ?embed=…&hide=…) hides controls.
// Screenshots in tests/artifacts/hash-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { serve } from '../scripts/serve.mjs';
import { ARTIFACTS, CHROMIUM_FLAGS } from './browser.mjs';

let server, origin, browser;
before(async () => {
  ({ server, url: origin } = await serve({ port: 0, quiet: true }));
  origin = origin.replace(/\/$/, '');
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_FLAGS });
});
after(async () => {
  await browser?.close();
  await new Promise((ok) => (server ? server.close(ok) : ok()));
});

/** A fresh context and page, with its console errors; `clipboard` grants the clipboard permissions. */
async function open(path, { clipboard = true, viewport = { width: 1280, height: 900 } } = {}) {
  const context = await browser.newContext({ viewport, colorScheme: 'light' });
  if (clipboard) await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  await page.goto(`${origin}/${path}`);
  return { page, errors, close: () => context.close() };
}

const explorerReady = (page) => page.waitForFunction(() => document.querySelector('qplay-explorer')?.wasm);
const cards = (page) => page.locator('qplay-explorer').evaluate((el) => Object.fromEntries(
  [...el.shadowRoot.querySelectorAll('.cards output')].map((o) => [o.dataset.k, o.dataset.value])));
const hashParams = (page) => page.evaluate(() => [...new URLSearchParams(location.hash.slice(1))]);

test('changes rewrite the hash (no history entries); a fresh page with it shows the same settings and numbers', async () => {
  const a = await open('index.html');
  let url, want;
  try {
    const { page } = a;
    await explorerReady(page);
    const ex = page.locator('qplay-explorer');
    const det = page.locator('qplay-detector');
    const historyLength = await page.evaluate(() => history.length);
    await ex.locator('input[name=min]').fill('-0.7');
    await ex.locator('input[name=max]').fill('3.1');
    await ex.locator('select[name=bits]').selectOption('4');
    await ex.locator('input[name=signed]').setChecked(false);
    await ex.locator('input[name=value]').fill('2.2');
    await ex.locator('select[name=decimals]').selectOption('2');
    await ex.locator('select[name=sample]').selectOption('outliers');
    await det.locator('input[name=score]').evaluate((el) => { el.value = '0.65'; el.dispatchEvent(new Event('input', { bubbles: true })); });
    await det.locator('select[name=method]').selectOption('minmax');
    await det.locator('input[name=perChannel]').setChecked(false);
    await det.locator('select[name=rounding]').selectOption('gptq');
    const p = Object.fromEntries(await hashParams(page));
    assert.deepEqual(p, {
      'explorer.min': '-0.7', 'explorer.max': '3.1', 'explorer.value': '2.2', 'explorer.bits': '4', 'explorer.signed': 'false',
      'explorer.symmetric': 'false', 'explorer.restricted': 'false', 'explorer.decimals': '2', 'explorer.sample': 'outliers',
      'detector.model': 'person', 'detector.image': 'person.jpg', 'detector.score': '0.65', 'detector.method': 'minmax',
      'detector.perchannel': 'false', 'detector.rounding': 'gptq',
    });
    assert.equal(await page.evaluate(() => history.length), historyLength, 'replaceState: no new history entries');
    assert.match(page.url(), /\/index\.html#explorer\.min=-0\.7&explorer\.max=3\.1&/);
    // An unparsable value is not written: the hash keeps the last good one.
    await ex.locator('input[name=max]').fill('3.x');
    assert.equal(Object.fromEntries(await hashParams(page))['explorer.max'], undefined);
    await ex.locator('input[name=max]').fill('3.1');
    want = await cards(page);
    // Δ = 3.8 / 15 for uint4 over [−0.7, 3.1].
    assert.ok(Math.abs(Number(want.scale) - 3.8 / 15) < 1e-7, JSON.stringify(want));
    url = page.url();
    assert.deepEqual(a.errors, []);
  } finally { await a.close(); }

  // A layer kept FP32 and a layer's own weight bits travel too (they apply at the next Quantize, which the link does not run).
  const b = await open(url.slice(origin.length + 1) + '&detector.keep=Conv_0&detector.lbits=Conv_1=8&detector.mixed=3&detector.mixedto=w8&detector.model=face&detector.image=dog.jpg');
  try {
    const { page } = b;
    await explorerReady(page);
    const ex = page.locator('qplay-explorer');
    const det = page.locator('qplay-detector');
    assert.deepEqual(await cards(page), want);
    assert.equal(await ex.locator('input[name=min]').inputValue(), '-0.7');
    assert.equal(await ex.locator('input[name=max]').inputValue(), '3.1');
    assert.equal(await ex.locator('input[name=value]').inputValue(), '2.2');
    assert.equal(await ex.locator('select[name=bits]').inputValue(), '4');
    assert.equal(await ex.locator('input[name=signed]').isChecked(), false);
    assert.equal(await ex.locator('select[name=decimals]').inputValue(), '2');
    assert.equal(await ex.locator('select[name=sample]').inputValue(), 'outliers');
    assert.equal(await det.locator('input[name=score]').inputValue(), '0.65');
    assert.equal(await det.locator('select[name=method]').inputValue(), 'minmax');
    assert.equal(await det.locator('input[name=perChannel]').isChecked(), false);
    assert.equal(await det.locator('select[name=rounding]').inputValue(), 'gptq');
    assert.equal(await det.locator('select[name=builtin]').inputValue(), 'face');
    assert.match(await det.locator('.keep-note').textContent(), /Layers kept FP32 when quantizing: Conv_0/);
    assert.match(await det.locator('.keep-note').textContent(), /Layers with their own weight bits: Conv_1 \(8-bit\)/);
    // The face model and dog.jpg, not the person detector first.
    await page.waitForFunction(() => { const d = document.querySelector('qplay-detector'); return d.result && !d.running; }, null, { timeout: 120_000 });
    assert.equal(await det.evaluate((el) => el.info.profile.decoder.type), 'blazeface');
    assert.equal(await det.locator('select[name=sample]').inputValue(), 'dog.jpg');
    assert.deepEqual(await det.evaluate((el) => el.settings.keepFp32), ['Conv_0']);
    assert.deepEqual(await det.evaluate((el) => el.settings.layerBits), { Conv_1: 8 });
    assert.deepEqual(await det.evaluate((el) => [el.settings.autoMixed, el.settings.mixedTo]), [3, 'w8']);
    assert.equal(await det.locator('input[name=autoMixed]').inputValue(), '3');
    await det.locator('input[name=autoMixed]').fill('5');
    await det.locator('input[name=autoMixed]').dispatchEvent('change');
    const after = Object.fromEntries(await hashParams(page));
    assert.deepEqual([after['detector.mixed'], after['detector.mixedto'], after['detector.lbits']], ['5', 'w8', 'Conv_1=8']);
    assert.equal(await page.locator('#hash-note').isVisible(), false);
    assert.deepEqual(b.errors, []);
  } finally { await b.close(); }
});

test('log-y (explorer and report), the INT8 overlay and the backend travel in the link', async () => {
  const a = await open('index.html');
  let url;
  try {
    const { page } = a;
    await explorerReady(page);
    await page.locator('qplay-explorer').locator('input[name=logy]').check();
    await page.locator('qplay-detector').locator('input[name=overlay]').check();
    const p = Object.fromEntries(await hashParams(page));
    assert.equal(p['explorer.logy'], 'true');
    assert.equal(p['detector.overlay'], 'true');
    // The backend and the report's log-y are written the same way (choosing WebGPU here would compile its kernels).
    const h = await page.evaluate(async () => (await import('./www/hash.js')).serializeHash(null, { model: 'person', backend: 'webgpu', overlay: true, logY: true }));
    assert.equal(h, 'detector.model=person&detector.backend=webgpu&detector.overlay=true&detector.logy=true');
    url = page.url();
    assert.deepEqual(a.errors, []);
  } finally { await a.close(); }

  const b = await open(`${url.slice(origin.length + 1)}&detector.logy=true`);
  try {
    const { page } = b;
    await explorerReady(page);
    assert.equal(await page.locator('qplay-explorer').locator('input[name=logy]').isChecked(), true);
    const det = page.locator('qplay-detector');
    assert.equal(await det.locator('input[name=overlay]').isChecked(), true);
    assert.deepEqual(await det.evaluate((el) => [el.settings.overlay, el.settings.logY]), [true, true]);
    assert.equal(await page.locator('#hash-note').isVisible(), false);
    assert.deepEqual(b.errors, []);
  } finally { await b.close(); }
});

test('a hash with bad values: the page loads with the defaults and a note, no errors', async () => {
  const s = await open('index.html#explorer.min=abc&explorer.max=Infinity&explorer.bits=99&explorer.signed=maybe&explorer.sample=%3Cscript%3E'
    + '&detector.score=7&detector.model=uploaded&detector.image=../../etc/passwd&detector.method=best&bogus=1&%E0%A4%A=x');
  try {
    const { page } = s;
    await explorerReady(page);
    const ex = page.locator('qplay-explorer');
    const note = page.locator('#hash-note');
    assert.equal(await note.isVisible(), true);
    const text = await note.textContent();
    for (const part of ['explorer.min=abc', 'explorer.max=Infinity', 'explorer.bits=99: expected 2 to 8 or 16', 'explorer.signed=maybe',
      'explorer.sample=<script>', 'detector.score=7', 'detector.image=../../etc/passwd', 'detector.method=best', 'bogus: not a setting',
      'detector.model=uploaded: the link was made with a model file of yours']) assert.ok(text.includes(part), `note mentions ${part}: ${text}`);
    assert.equal(await ex.locator('input[name=min]').inputValue(), '-2');
    assert.equal(await ex.locator('input[name=max]').inputValue(), '2');
    assert.equal(await ex.locator('select[name=bits]').inputValue(), '8');
    assert.equal(await ex.locator('input[name=signed]').isChecked(), true);
    assert.equal(await ex.locator('select[name=sample]').inputValue(), 'gaussian');
    const c = await cards(page);
    assert.ok(Math.abs(Number(c.scale) - 4 / 255) < 1e-8, JSON.stringify(c));
    assert.equal(c.q, '83');
    const det = page.locator('qplay-detector');
    assert.equal(await det.locator('input[name=score]').inputValue(), '0.5');
    assert.equal(await det.locator('select[name=builtin]').inputValue(), 'person');
    assert.equal(await det.locator('select[name=method]').inputValue(), 'auto');
    await page.locator('header').screenshot({ path: `${ARTIFACTS}hash-header.png` });
    await page.screenshot({ path: `${ARTIFACTS}hash-bad-note.png` });
    await note.locator('button').click();
    assert.equal(await note.isVisible(), false);
    // The page still works and writes a clean hash on the next change.
    await ex.locator('input[name=value]').fill('0.5');
    const p = Object.fromEntries(await hashParams(page));
    assert.equal(p['explorer.value'], '0.5');
    assert.equal(p['explorer.min'], '-2');
    assert.equal(p.bogus, undefined);
    assert.deepEqual(s.errors, []);
  } finally { await s.close(); }
});

test('Copy link copies the URL with its hash (clipboard API), and shows it selected without one', async () => {
  const s = await open('index.html');
  try {
    const { page } = s;
    await explorerReady(page);
    await page.locator('qplay-explorer').locator('input[name=min]').fill('-1.5');
    const button = page.locator('header #copy-link');
    assert.equal(await button.textContent(), 'Copy link');
    await button.click();
    await page.waitForFunction(() => document.getElementById('copy-link').textContent === 'Copied');
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(copied, page.url());
    assert.match(copied, /#explorer\.min=-1\.5&/);
    await page.locator('header').screenshot({ path: `${ARTIFACTS}hash-header-copied.png` });
    await page.waitForFunction(() => document.getElementById('copy-link').textContent === 'Copy link', null, { timeout: 5000 });
    assert.deepEqual(s.errors, []);
  } finally { await s.close(); }

  // Without the clipboard API: the link appears in a text field, selected, and execCommand copies it if it can.
  const f = await open('index.html#explorer.bits=4');
  try {
    const { page } = f;
    await explorerReady(page);
    await page.evaluate(() => Object.defineProperty(navigator, 'clipboard', { value: undefined }));
    await page.locator('#copy-link').click();
    const box = page.locator('#copy-link-text');
    assert.equal(await box.isVisible(), true);
    assert.equal(await box.inputValue(), page.url());
    assert.deepEqual(await box.evaluate((el) => [el.selectionStart, el.selectionEnd, document.activeElement === el]), [0, page.url().length, true]);
    assert.match(await page.locator('#copy-link').textContent(), /^(Copied|Press Ctrl\+C)$/);
    await page.locator('header').screenshot({ path: `${ARTIFACTS}hash-header-fallback.png` });
    assert.deepEqual(f.errors, []);
  } finally { await f.close(); }
});

test('hide: ?embed=explorer&hide=sample,restricted, and the attribute on either element', async () => {
  const s = await open('index.html?embed=explorer&hide=sample,restricted', { viewport: { width: 900, height: 700 } });
  try {
    const { page } = s;
    await explorerReady(page);
    const ex = page.locator('qplay-explorer');
    assert.equal(await ex.getAttribute('hide'), 'sample,restricted');
    assert.equal(await ex.locator('select[name=sample]').isVisible(), false);
    assert.equal(await ex.locator('input[name=restricted]').isVisible(), false);
    for (const n of ['min', 'max', 'value', 'signed', 'logy']) assert.equal(await ex.locator(`[name=${n}]`).isVisible(), true, n);
    assert.equal(await page.evaluate(() => location.hash), '', 'no hash in embed mode');
    await page.screenshot({ path: `${ARTIFACTS}hash-embed-hide.png`, fullPage: true });
    // Changing the attribute later shows and hides again; `tensor` drops the whole tensor section.
    await ex.evaluate((el) => el.setAttribute('hide', 'tensor seed'));
    assert.equal(await ex.locator('select[name=sample]').isVisible(), false);
    assert.equal(await ex.locator('svg.hist').isVisible(), false);
    assert.equal(await ex.locator('button[name=seed]').isVisible(), false);
    assert.equal(await ex.locator('input[name=restricted]').isVisible(), true);
    await ex.evaluate((el) => el.removeAttribute('hide'));
    assert.equal(await ex.locator('select[name=sample]').isVisible(), true);

    // Every documented name hides something, in both components; the hash module's lists are the detector's.
    const check = await page.evaluate(async () => {
      const d = await import('./www/components/qplay-detector.js');
      const e = await import('./www/components/qplay-explorer.js');
      const h = await import('./www/hash.js');
      const det = document.createElement('qplay-detector');
      const counts = (el, map) => Object.fromEntries(Object.entries(map).map(([k, sel]) => [k, el.shadowRoot.querySelectorAll(sel).length]));
      return {
        detector: counts(det, d.HIDEABLE), explorer: counts(document.querySelector('qplay-explorer'), e.HIDEABLE),
        lists: [[d.SAMPLES, h.DETECTOR_IMAGES], [d.BUILTIN_MODELS, h.DETECTOR_MODELS], [d.METHODS, h.DETECTOR_METHODS]],
        explorerSamples: [[...document.querySelector('qplay-explorer').shadowRoot.querySelectorAll('select[name=sample] option')].map((o) => o.value), h.EXPLORER_SAMPLES],
      };
    });
    for (const [k, n] of Object.entries({ ...check.explorer, ...check.detector })) assert.ok(n >= 1, `hide name ${k} matches ${n} elements`);
    for (const [a, b] of [...check.lists, check.explorerSamples]) assert.deepEqual(a, b);
    assert.deepEqual(s.errors, []);
  } finally { await s.close(); }

  const d = await open('index.html?embed=detector&model=face&hide=quantize,upload,profile', { viewport: { width: 1000, height: 800 } });
  try {
    const { page } = d;
    const det = page.locator('qplay-detector');
    await page.waitForFunction(() => { const el = document.querySelector('qplay-detector'); return el?.result && !el.running; }, null, { timeout: 120_000 });
    assert.equal(await det.locator('fieldset.quant').isVisible(), false);
    assert.equal(await det.locator('input[name=model]').isVisible(), false);
    assert.equal(await det.locator('input[name=profile]').isVisible(), false);
    assert.equal(await det.locator('details.profile-edit').isVisible(), false);
    assert.equal(await det.locator('select[name=builtin]').isVisible(), true);
    assert.equal(await det.locator('input[name=score]').isVisible(), true);
    await page.screenshot({ path: `${ARTIFACTS}hash-embed-detector-hide.png`, fullPage: true });
    assert.deepEqual(d.errors, []);
  } finally { await d.close(); }
});
