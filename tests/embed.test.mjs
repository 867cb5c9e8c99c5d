// Embedding: `npm run build` writes a static site that a plain static server (no COOP/COEP, no
// CSP, no server logic) serves as it is; the documentation page shows both components, two
// explorers that do not share state, and an iframe; `index.html?embed=…` shows one component
// with the query parameters as its attributes. Screenshots in tests/artifacts/embed-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { ARTIFACTS, CHROMIUM_FLAGS } from './browser.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json',
  '.wasm': 'application/wasm', '.png': 'image/png', '.jpg': 'image/jpeg',
};

let out, server, origin, browser, buildLog;

/** The plainest static server: files and content types, nothing else. */
function staticServer(root) {
  return createServer((req, res) => {
    let path = normalize(join(root, decodeURIComponent(new URL(req.url, 'http://x').pathname)));
    if (!path.startsWith(root + sep) && path !== root) path = join(root, 'missing');
    try {
      if (statSync(path).isDirectory()) path = join(path, 'index.html');
      const body = readFileSync(path);
      res.writeHead(200, { 'Content-Type': TYPES[extname(path)] ?? 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
    }
  });
}

before(async () => {
  out = mkdtempSync(join(tmpdir(), 'qplay-dist-'));
  buildLog = execFileSync(process.execPath, ['scripts/build.mjs', '--out', out], { cwd: ROOT, encoding: 'utf8' });
  server = staticServer(out);
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  origin = `http://127.0.0.1:${server.address().port}`;
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_FLAGS });
});
after(async () => {
  await browser?.close();
  await new Promise((ok) => (server ? server.close(ok) : ok()));
  if (out) rmSync(out, { recursive: true, force: true });
});

/** A fresh page on the dist/ server, with its console errors and every request it made. */
async function open(path, { viewport = { width: 1280, height: 900 } } = {}) {
  const context = await browser.newContext({ viewport, colorScheme: 'light' });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  const page = await context.newPage();
  const errors = [];
  const requests = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  context.on('request', (r) => requests.push(r.url()));
  const response = await page.goto(`${origin}/${path}`);
  const foreign = () => requests.filter((u) => !u.startsWith(origin + '/') && !/^(data|blob):/.test(u));
  return { page, errors, requests, foreign, response, close: () => context.close() };
}

const cards = (locator) => locator.evaluate((el) => Object.fromEntries(
  [...el.shadowRoot.querySelectorAll('.cards output')].map((o) => [o.dataset.k, o.dataset.value])));

/** Waits for a detector's first result (as tests/detector.test.mjs does). */
async function detectorResult(page, sel = 'qplay-detector') {
  await page.waitForFunction((s) => { const el = document.querySelector(s); return el?.result && !el.running; }, sel, { timeout: 120_000 });
  return page.locator(sel).evaluate((el) => ({ detections: el.result.detections.map((d) => ({ label: d.label, score: d.score })), model: el.result.model }));
}

test('npm run build: a static site with relative URLs, the size of wasm + JS', () => {
  for (const f of ['index.html', 'docs/embed.html', 'docs/docs.js', 'www/embed.js', 'www/app.js', 'www/worker.js', 'www/style.css',
    'www/components/qplay-explorer.js', 'www/components/qplay-detector.js', 'www/pkg/qplay_wasm.js', 'www/pkg/qplay_wasm_bg.wasm',
    'www/models/person_ssdlite.onnx', 'www/models/person_ssdlite.json', 'www/samples/person.jpg']) {
    assert.ok(existsSync(join(out, f)), `dist/${f}`);
  }
  const m = buildLog.match(/wasm \+ JS gzip: ([\d.]+) MB/);
  assert.ok(m, buildLog);
  assert.ok(Number(m[1]) > 0.1 && Number(m[1]) <= 1.5, `wasm + JS gzip ${m[1]} MB, budget 1.5 MB`);
  assert.match(buildLog, /wasm \(1 file\)\s+raw\s+[\d.]+ KiB\s+gzip\s+[\d.]+ KiB/);
  // An isolated page loads the threaded module instead: within the same budget.
  if (existsSync(join(ROOT, 'www/pkg-threads/qplay_wasm_bg.wasm'))) {
    const iso = buildLog.match(/isolated page \(threaded module instead of www\/pkg\/\): ([\d.]+) MB gzip/);
    assert.ok(iso, buildLog);
    assert.ok(Number(iso[1]) > 0.1 && Number(iso[1]) <= 1.5, `isolated page: wasm + JS gzip ${iso[1]} MB, budget 1.5 MB`);
  }
  // So do the pages that load a relaxed SIMD twin instead.
  for (const [dir, label] of [['pkg-relaxed', 'relaxed SIMD page'], ['pkg-threads-relaxed', 'isolated relaxed SIMD page']]) {
    if (!existsSync(join(ROOT, `www/${dir}/qplay_wasm_bg.wasm`))) continue;
    const m2 = buildLog.match(new RegExp(`\\] {3}${label} \\(www/${dir}/ instead\\): ([\\d.]+) MB gzip`));
    assert.ok(m2, `${label}: ${buildLog}`);
    assert.ok(Number(m2[1]) > 0.1 && Number(m2[1]) <= 1.5, `${label}: wasm + JS gzip ${m2[1]} MB, budget 1.5 MB`);
    assert.ok(existsSync(join(out, `www/${dir}/qplay_wasm_bg.wasm`)), `dist/www/${dir}/ copied`);
  }
  // The wasm module was copied, not rebuilt.
  assert.deepEqual(readFileSync(join(out, 'www/pkg/qplay_wasm_bg.wasm')), readFileSync(join(ROOT, 'www/pkg/qplay_wasm_bg.wasm')));
});

test('dist/index.html on a plain static server: explorer numbers and the default detector', async () => {
  const s = await open('index.html');
  try {
    assert.equal(s.response.headers()['cross-origin-opener-policy'], undefined);
    assert.equal(s.response.headers()['content-security-policy'], undefined);
    assert.equal(await s.page.evaluate(() => crossOriginIsolated), false);
    assert.equal(await s.page.locator('header h1').textContent(), 'qplay');
    await s.page.waitForFunction(() => document.querySelector('qplay-explorer')?.wasm);
    const c = await cards(s.page.locator('qplay-explorer'));
    assert.ok(Math.abs(Number(c.scale) - 4 / 255) < 1e-8, `Δ ${c.scale}`);
    assert.equal(c.zero_point, '0');
    assert.equal(c.q, '83');
    assert.ok(Math.abs(Number(c.dequantized) - 1.30196) < 1e-5);
    const r = await detectorResult(s.page);
    assert.equal(r.detections[0]?.label, 'person');
    assert.ok(r.detections[0].score > 0.98, JSON.stringify(r));
    await s.page.waitForFunction(() => /^v\d/.test(document.getElementById('version').textContent));
    await s.page.screenshot({ path: `${ARTIFACTS}embed-dist-index.png`, fullPage: true });
    assert.deepEqual(s.errors, []);
    assert.deepEqual(s.foreign(), []);
  } finally { await s.close(); }
});

test('dist/docs/embed.html: both components, independent explorers, copy buttons, iframe, one origin', async () => {
  const s = await open('docs/embed.html');
  const { page } = s;
  try {
    const seed = page.locator('#ex-seed'), relu6 = page.locator('#ex-relu6');
    await relu6.scrollIntoViewIfNeeded(); // each starts when it comes near the viewport
    await page.waitForFunction(() => [...document.querySelectorAll('qplay-explorer')].every((el) => el.wasm) && document.querySelectorAll('qplay-explorer').length === 2);
    // preset="seed": the worked example with its note.
    assert.equal((await cards(seed)).q, '83');
    assert.equal(await seed.evaluate((el) => el.shadowRoot.querySelector('.seed-note').hidden), false);
    // min=0 max=6 bits=4 signed=false value=2.5: Δ = 6/15 = 0.4, Z = 0, q = round(6.25) = 6, x̂ = 2.4.
    const r0 = await cards(relu6);
    assert.ok(Math.abs(Number(r0.scale) - 0.4) < 1e-7, JSON.stringify(r0));
    assert.deepEqual([r0.zero_point, r0.q], ['0', '6']);
    assert.equal(await relu6.evaluate((el) => el.shadowRoot.querySelector('select[name=sample]').value), 'relu');
    // Changing one leaves the other alone, both ways.
    await seed.locator('input[name=min]').fill('-4');
    const s1 = await cards(seed);
    assert.ok(Math.abs(Number(s1.scale) - 6 / 255) < 1e-7, JSON.stringify(s1));
    assert.deepEqual(await cards(relu6), r0);
    assert.equal(await relu6.locator('input[name=min]').inputValue(), '0');
    await relu6.locator('select[name=bits]').selectOption('8');
    assert.ok(Math.abs(Number((await cards(relu6)).scale) - 6 / 255) < 1e-7);
    assert.deepEqual(await cards(seed), s1);
    assert.equal(await seed.locator('select[name=bits]').inputValue(), '8');
    await seed.locator('button[name=seed]').click();

    // The detector: attributes image and score (it starts when scrolled near).
    await page.locator('#det').scrollIntoViewIfNeeded();
    const r = await detectorResult(page);
    assert.ok(r.detections.some((d) => d.label === 'person'), JSON.stringify(r));
    assert.ok(r.detections.every((d) => d.score >= 0.6), JSON.stringify(r));
    assert.equal(await page.locator('qplay-detector').evaluate((el) => el.shadowRoot.querySelector('select[name=sample]').value), 'astronaut.png');

    // The reference lists exactly the attributes the components read.
    for (const name of ['explorer', 'detector']) {
      const src = readFileSync(join(ROOT, `www/components/qplay-${name}.js`), 'utf8');
      const observed = src.match(/observedAttributes = \[([^\]]*)\]/)[1].match(/'(\w+)'/g).map((q) => q.slice(1, -1));
      const read = [...src.matchAll(/getAttribute\('(\w+)'\)/g)].map((x) => x[1]);
      const want = [...new Set([...observed, ...read])].sort();
      const documented = await page.locator(`table[data-component=qplay-${name}] tbody td:first-child code`).allTextContents();
      assert.deepEqual([...new Set(documented)].sort(), want, `documented attributes of qplay-${name}`);
    }

    // The documented ::part() names are the component's, and the CSS custom properties reach inside.
    for (const name of ['explorer', 'detector']) {
      // The detector's markup is in its parts' modules (www/components/detector/).
      const dir = join(ROOT, 'www/components/detector');
      const src = [readFileSync(join(ROOT, `www/components/qplay-${name}.js`), 'utf8'),
        ...(name === 'detector' ? readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8')) : [])].join('\n');
      const parts = [...new Set([...src.matchAll(/part="(\w+)"/g)].map((x) => x[1]))].sort();
      const documented = (await page.locator(`table[data-parts=qplay-${name}] td:first-child`).allTextContents())
        .flatMap((t) => [...t.matchAll(/::part\((\w+)\)/g)].map((x) => x[1]));
      assert.deepEqual([...new Set(documented)].sort(), parts, `documented parts of qplay-${name}`);
    }
    const cardBg = () => relu6.evaluate((el) => getComputedStyle(el.shadowRoot.querySelector('.card')).backgroundColor);
    const before = await cardBg();
    await relu6.evaluate((el) => el.style.setProperty('--qp-card', 'rgb(255, 248, 230)'));
    assert.equal(await cardBg(), 'rgb(255, 248, 230)');
    await relu6.evaluate((el) => el.style.removeProperty('--qp-card'));
    assert.equal(await cardBg(), before);
    // In a narrow column the explorer stacks its columns (by its own width, not the viewport's).
    const columns = () => relu6.evaluate((el) => getComputedStyle(el.shadowRoot.querySelector('.grid')).gridTemplateColumns.split(' ').length);
    assert.equal(await columns(), 2);
    await relu6.evaluate((el) => { el.style.width = '700px'; });
    assert.equal(await columns(), 1);
    await relu6.evaluate((el) => { el.style.width = ''; });

    // Every snippet has a copy button that copies its text.
    const snippets = await page.locator('pre.snippet').count();
    assert.ok(snippets >= 6);
    assert.equal(await page.locator('.snippet-box > button.copy').count(), snippets);
    const first = page.locator('.snippet-box').first();
    await first.locator('button.copy').click();
    await page.waitForFunction(() => document.querySelector('.snippet-box button.copy').textContent === 'Copied');
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), await first.locator('pre').textContent());
    assert.equal(await first.locator('pre').textContent(), '<script type="module" src="../www/embed.js"></script>');
    // The iframe snippet names the permissions.
    assert.ok((await page.locator('pre.snippet').allTextContents()).some((t) => /<iframe [^>]*allow="camera; cross-origin-isolated"/.test(t)));

    // The live iframe: only the explorer, its parameters, sized to its content by the resize message.
    const frameEl = page.locator('#frame-explorer');
    await frameEl.scrollIntoViewIfNeeded();
    const frame = page.frameLocator('#frame-explorer');
    await frame.locator('qplay-explorer').waitFor();
    await page.waitForFunction(() => document.getElementById('frame-explorer').contentDocument?.querySelector('qplay-explorer')?.wasm);
    assert.equal(await frame.locator('qplay-detector').count(), 0);
    assert.equal(await frame.locator('header').count(), 0);
    assert.equal(await frame.locator('input[name=min]').inputValue(), '-1');
    await page.waitForFunction(() => /^\d+px$/.test(document.getElementById('frame-explorer').style.height));
    const [frameH, contentH] = await frameEl.evaluate((f) => [f.getBoundingClientRect().height, f.contentDocument.documentElement.scrollHeight]);
    assert.ok(Math.abs(frameH - contentH) <= 2, `iframe ${frameH}px, content ${contentH}px`);

    await page.screenshot({ path: `${ARTIFACTS}embed-docs.png`, fullPage: true });
    await page.locator('#detector').screenshot({ path: `${ARTIFACTS}embed-docs-detector.png` });
    await page.locator('#iframe').screenshot({ path: `${ARTIFACTS}embed-docs-iframe.png` });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.locator('#include').screenshot({ path: `${ARTIFACTS}embed-docs-dark-include.png` });
    await page.locator('#several').screenshot({ path: `${ARTIFACTS}embed-docs-dark-explorer.png` });
    assert.deepEqual(s.errors, []);
    assert.deepEqual(s.foreign(), []);
  } finally { await s.close(); }
});

test('dist/docs/embed.html at 420 px (a phone, a narrow column): nothing runs off the side', async () => {
  const s = await open('docs/embed.html', { viewport: { width: 420, height: 900 } });
  try {
    const { page } = s;
    await page.locator('qplay-explorer').first().scrollIntoViewIfNeeded();
    await page.waitForFunction(() => document.querySelector('qplay-explorer')?.shadowRoot.querySelectorAll('.methods button[data-lo]').length === 5);
    // The reference tables (long names in their first column) and the explorer's methods table
    // once widened the page to 466 and 746 px.
    const wide = await page.evaluate(() => [...document.querySelectorAll('table.ref')].filter((t) => t.getBoundingClientRect().right > 420).length);
    assert.equal(wide, 0, 'reference tables wider than the viewport');
    assert.equal(await page.evaluate(() => document.documentElement.scrollWidth), 420);
    await page.screenshot({ path: `${ARTIFACTS}embed-docs-420px.png`, fullPage: true });
    assert.deepEqual(s.errors, []);
    assert.deepEqual(s.foreign(), []);
  } finally { await s.close(); }
});

test('iframe mode: ?embed=explorer shows only the explorer, with the query as attributes', async () => {
  const s = await open('index.html?embed=explorer&min=-2&max=2&bits=8', { viewport: { width: 900, height: 700 } });
  const { page } = s;
  try {
    await page.waitForFunction(() => document.querySelector('qplay-explorer')?.wasm);
    assert.equal(await page.locator('qplay-explorer').count(), 1);
    assert.equal(await page.locator('qplay-detector').count(), 0);
    assert.equal(await page.locator('header, footer, h2').count(), 0);
    assert.equal(await page.evaluate(() => getComputedStyle(document.body).margin), '0px');
    const ex = page.locator('qplay-explorer');
    assert.deepEqual(await ex.evaluate((el) => ['min', 'max', 'bits'].map((k) => el.getAttribute(k))), ['-2', '2', '8']);
    assert.equal(await ex.locator('input[name=min]').inputValue(), '-2');
    assert.equal(await ex.locator('input[name=max]').inputValue(), '2');
    assert.equal(await ex.locator('select[name=bits]').inputValue(), '8');
    assert.ok(Math.abs(Number((await cards(ex)).scale) - 4 / 255) < 1e-8);
    // Sized to content: the document is the explorer plus the 8px padding, no reserved space.
    const [docH, elH] = await page.evaluate(() => [document.documentElement.scrollHeight, document.querySelector('qplay-explorer').getBoundingClientRect().height]);
    assert.ok(docH - elH <= 20, `document ${docH}px, explorer ${elH}px`);
    await page.screenshot({ path: `${ARTIFACTS}embed-iframe-explorer.png`, fullPage: true });
    // The dropped detector never started: no worker, no model download.
    assert.deepEqual(s.requests.filter((u) => /worker\.js|\.onnx/.test(u)), []);

    // Values other than the defaults, to see that each parameter lands.
    await page.goto(`${origin}/index.html?embed=explorer&min=0&max=6&bits=4&signed=false&value=2.5&decimals=2&sample=uniform`);
    await page.waitForFunction(() => document.querySelector('qplay-explorer')?.wasm);
    const c = await cards(ex);
    assert.ok(Math.abs(Number(c.scale) - 0.4) < 1e-7, JSON.stringify(c));
    assert.deepEqual([c.zero_point, c.q], ['0', '6']);
    assert.equal(await ex.locator('input[name=signed]').isChecked(), false);
    assert.equal(await ex.locator('select[name=decimals]').inputValue(), '2');
    assert.equal(await ex.locator('select[name=sample]').inputValue(), 'uniform');

    await page.goto(`${origin}/index.html?embed=nonsense`);
    assert.match(await page.locator('.embed-error').textContent(), /embed=explorer or embed=detector/);
    assert.deepEqual(s.errors, []);
    assert.deepEqual(s.foreign(), []);
  } finally { await s.close(); }
});

test('iframe mode: ?embed=detector&model=face runs the built-in face model on the image given', async () => {
  const s = await open('index.html?embed=detector&model=face&image=www/samples/astronaut.png&score=0.5', { viewport: { width: 1000, height: 800 } });
  const { page } = s;
  try {
    const r = await detectorResult(page);
    assert.equal(await page.locator('qplay-explorer').count(), 0);
    assert.equal(await page.locator('header').count(), 0);
    assert.equal(await page.locator('qplay-detector').evaluate((el) => el.info.profile.decoder.type), 'blazeface');
    assert.ok(r.detections.some((d) => d.label === 'face'), JSON.stringify(r));
    assert.equal(await page.locator('qplay-detector').evaluate((el) => el.shadowRoot.querySelector('select[name=builtin]').value), 'face');
    assert.deepEqual(s.requests.filter((u) => /person_ssdlite\.onnx/.test(u)), []);
    await page.screenshot({ path: `${ARTIFACTS}embed-iframe-detector.png`, fullPage: true });
    assert.deepEqual(s.errors, []);
    assert.deepEqual(s.foreign(), []);
  } finally { await s.close(); }
});
