// The explorer in a real browser: set controls, read Δ, Z, q, x̂ from the page, compare with the
// CLI's numbers for the same request; bad input shows a message; screenshots for a human look.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { open, ARTIFACTS } from './browser.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const QPLAY = `${ROOT}target/debug/qplay`;

function cli(args) {
  return JSON.parse(execFileSync(QPLAY, ['explain', ...args, '--json'], { encoding: 'utf8' }));
}

let s;
before(async () => {
  if (!existsSync(QPLAY)) execFileSync('cargo', ['build', '-q', '-p', 'qplay-cli'], { cwd: ROOT, stdio: 'inherit' });
  s = await open('index.html');
  await s.page.waitForFunction(() => document.querySelector('qplay-explorer')?.wasm);
});
after(async () => s && s.close());

/** Sets the explorer's controls by typing/clicking like a user. */
async function setControls(page, c) {
  const root = page.locator('qplay-explorer');
  for (const k of ['min', 'max', 'value']) if (k in c) await root.locator(`input[name=${k}]`).fill(String(c[k]));
  if ('bits' in c) await root.locator('select[name=bits]').selectOption(String(c.bits));
  for (const k of ['signed', 'symmetric', 'restricted']) if (k in c) await root.locator(`input[name=${k}]`).setChecked(c[k]);
}

async function readCards(page) {
  return page.locator('qplay-explorer').evaluate((el) => Object.fromEntries(
    [...el.shadowRoot.querySelectorAll('.cards output')].map((o) => [o.dataset.k, o.dataset.value])));
}

const CASES = [
  { c: { min: -2, max: 2, bits: 8, signed: true, symmetric: false, value: 1.3 }, args: ['--min', '-2', '--max', '2', '--bits', '8', '--signed', '--value', '1.3'] },
  { c: { min: -0.7, max: 3.1, bits: 8, signed: false, symmetric: false, value: 2.2 }, args: ['--min', '-0.7', '--max', '3.1', '--bits', '8', '--unsigned', '--value', '2.2'] },
  { c: { min: -1, max: 5, bits: 4, signed: true, symmetric: true, value: -4 }, args: ['--min', '-1', '--max', '5', '--bits', '4', '--signed', '--symmetric', '--value', '-4'] },
  { c: { min: 0.5, max: 9, bits: 16, signed: false, symmetric: false, value: 12 }, args: ['--min', '0.5', '--max', '9', '--bits', '16', '--unsigned', '--value', '12'] },
];

test('page numbers equal the CLI numbers', async () => {
  for (const { c, args } of CASES) {
    await setControls(s.page, c);
    const got = await readCards(s.page);
    const want = cli(args);
    for (const k of ['scale', 'zero_point', 'q', 'dequantized', 'error']) {
      assert.equal(Number(got[k]), want[k], `${k} for ${JSON.stringify(c)}: page ${got[k]} vs CLI ${want[k]}`);
    }
  }
  // The last case clamps (x = 12 > max 9): the number line says so.
  const text = await s.page.locator('qplay-explorer').evaluate((el) => el.shadowRoot.querySelector('.numberline').textContent);
  assert.match(text, /clamped/);
});

test('seed example: exact and by-hand columns', async () => {
  await s.page.locator('qplay-explorer').locator('button[name=seed]').click();
  const got = await readCards(s.page);
  assert.equal(got.zero_point, '0');
  assert.equal(got.q, '83');
  assert.ok(Math.abs(Number(got.dequantized) - 1.30196) < 1e-5);
  const { textbook, note } = await s.page.locator('qplay-explorer').evaluate((el) => ({
    textbook: el.shadowRoot.querySelector('.steps.textbook').textContent,
    note: el.shadowRoot.querySelector('.seed-note').textContent,
  }));
  assert.match(textbook, /Δ = 0\.0157/);
  assert.match(textbook, /= -1 \(with the rounded Δ\)/);
  assert.match(textbook, /= 82\./);
  assert.match(note, /sign slip/);
  await s.page.screenshot({ path: `${ARTIFACTS}explorer-seed.png`, fullPage: true });
});

test('bad input: clear messages, no exceptions', async () => {
  const root = s.page.locator('qplay-explorer');
  const alertText = () => root.locator('.error').textContent();
  await setControls(s.page, { min: 2, max: -2, bits: 8, value: 1 });
  assert.match(await alertText(), /inverted.*swap/);
  assert.equal((await readCards(s.page)).q, '');
  await setControls(s.page, { min: 'abc', max: 2 });
  assert.match(await alertText(), /not a number/);
  await setControls(s.page, { min: 'Infinity', max: 2 });
  assert.match(await alertText(), /not finite/);
  await setControls(s.page, { min: 1, max: 1 });
  assert.match(await alertText(), /min equals max/);
  await setControls(s.page, { min: -1, max: 1, value: 'NaN' });
  assert.match(await alertText(), /not a finite number/);
  await setControls(s.page, { min: -1, max: 1, value: '' });
  assert.match(await alertText(), /empty/);
  await s.page.screenshot({ path: `${ARTIFACTS}explorer-error.png` });
  await setControls(s.page, { min: -1, max: 1, value: 0.25 });
  assert.equal(await root.locator('.error').isHidden(), true);
  assert.deepEqual(s.errors, []);
});

test('tensor panel: every calibration method, "Use" copies its range', async () => {
  const root = s.page.locator('qplay-explorer');
  await setControls(s.page, { bits: 8, signed: true, symmetric: false });
  await root.locator('select[name=sample]').selectOption('outliers');
  const rows = await root.locator('.methods tbody tr').evaluateAll((trs) => trs.map((t) => t.dataset.method));
  assert.deepEqual(rows, ['minmax', 'ema', 'percentile', 'entropy', 'mse']);
  const minmaxLo = Number(await root.locator('tr[data-method=minmax] button').getAttribute('data-lo'));
  const btn = root.locator('tr[data-method=entropy] button');
  await btn.click();
  const min = Number(await root.locator('input[name=min]').inputValue());
  assert.equal(min, Number(await btn.getAttribute('data-lo')));
  assert.ok(min < 0 && min > minmaxLo, `entropy clips the outliers: min ${min}, MinMax ${minmaxLo}`);
  assert.equal((await readCards(s.page)).scale !== '', true);
  await root.locator('input[name=logy]').check();
  await s.page.screenshot({ path: `${ARTIFACTS}explorer-tensor.png`, fullPage: true });
  assert.deepEqual(s.errors, []);
});

test('real weights from the person detector', async () => {
  const root = s.page.locator('qplay-explorer');
  await root.locator('select[name=sample]').selectOption('w:depthwise');
  await s.page.waitForFunction(() => document.querySelector('qplay-explorer').shadowRoot.querySelectorAll('.methods tbody tr[data-method]').length === 5, null, { timeout: 60_000 });
  const n = await root.evaluate((el) => el.sample.length);
  assert.equal(n, 384 * 9);
  // Parsed off the main thread: the weights came from the explorer's worker.
  assert.ok(await root.evaluate((el) => el.weightWorker instanceof Worker));
  await s.page.screenshot({ path: `${ARTIFACTS}explorer-weights.png`, fullPage: true });
  assert.deepEqual(s.errors, []);
});

test('attributes set the initial state; requests stay on this origin', async () => {
  await s.page.evaluate(() => {
    const el = document.createElement('qplay-explorer');
    el.id = 'x2';
    for (const [k, v] of Object.entries({ min: '0', max: '6', bits: '4', signed: 'false', value: '2.5' })) el.setAttribute(k, v);
    document.body.append(el);
    el.scrollIntoView(); // it starts when it comes near the viewport
  });
  await s.page.waitForFunction(() => document.getElementById('x2').wasm);
  const v = await s.page.locator('#x2').evaluate((el) => Object.fromEntries([...el.shadowRoot.querySelectorAll('.cards output')].map((o) => [o.dataset.k, o.dataset.value])));
  const want = cli(['--min', '0', '--max', '6', '--bits', '4', '--unsigned', '--value', '2.5']);
  assert.equal(Number(v.q), want.q);
  assert.equal(Number(v.scale), want.scale);
  const origin = new URL(s.url).origin;
  assert.deepEqual(s.requests.filter((u) => !u.startsWith(origin) && !/^(data|blob):/.test(u)), []);
});

test('narrow (420 px and 320 px, an iframe or a docs column): every control inside the viewport and usable', async () => {
  for (const width of [420, 320]) {
    const n = await open('index.html?embed=explorer', { viewport: { width, height: 900 } });
    try {
      await n.page.waitForFunction(() => document.querySelector('qplay-explorer')?.wasm);
      await n.page.waitForFunction(() => document.querySelector('qplay-explorer').shadowRoot.querySelectorAll('.methods button[data-lo]').length === 5);
      const boxes = await n.page.locator('qplay-explorer').evaluate((el) => {
        const vw = document.documentElement.clientWidth;
        const out = [...el.shadowRoot.querySelectorAll('input, select, button')].filter((c) => c.checkVisibility()).map((c) => {
          const r = c.getBoundingClientRect();
          return { what: `${c.tagName.toLowerCase()} ${c.name || c.dataset.lo || c.textContent.trim()}`, left: r.left, right: r.right, width: r.width };
        });
        return { vw, scrollWidth: document.documentElement.scrollWidth, out };
      });
      assert.equal(boxes.vw, width);
      assert.ok(boxes.scrollWidth <= width, `${width} px: the page scrolls sideways (${boxes.scrollWidth} px wide)`);
      assert.ok(boxes.out.length >= 14, `${width} px: ${boxes.out.length} controls`);
      for (const b of boxes.out) {
        assert.ok(b.width > 0 && b.left >= 0 && b.right <= width, `${width} px: ${b.what} spans ${b.left}..${b.right}, outside the viewport`);
      }
      // The tensor menu (the select that was cut off) and a "Use" button work by hand (Playwright
      // clicks only an element that is visible and not covered where it clicks).
      const root = n.page.locator('qplay-explorer');
      const menu = await root.locator('select[name=sample]').boundingBox();
      assert.ok(menu.x >= 0 && menu.x + menu.width <= width, `${width} px: the tensor menu at ${menu.x}..${menu.x + menu.width}`);
      await root.locator('select[name=sample]').selectOption('uniform');
      const use = root.locator('tr[data-method=percentile] button');
      await use.click();
      assert.equal(Number(await root.locator('input[name=min]').inputValue()), Number(await use.getAttribute('data-lo')));
      await n.page.screenshot({ path: `${ARTIFACTS}explorer-${width}px.png`, fullPage: true });
      assert.deepEqual(n.errors, []);
    } finally {
      await n.close();
    }
  }
});
