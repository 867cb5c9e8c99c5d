// When INT8 misses detections that FP32 finds, the page says so beside the agreement line and
// offers the fix in one click (issue #12): keep the most sensitive layers FP32 (each layer's
// sensitivity measured) and quantize again, with the agreement before → after on the same photo.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { open, ARTIFACTS } from './browser.mjs';

let s;
before(async () => { s = await open('index.html'); });
after(async () => s && s.close());

const det = () => s.page.locator('qplay-detector');
const text = (sel) => det().evaluate((el, q) => el.shadowRoot.querySelector(q)?.textContent ?? null, sel);
const quantized = async (n) => {
  await s.page.waitForFunction((k) => document.querySelector('qplay-detector').quantizations === k, n, { timeout: 300_000 });
  await s.page.waitForFunction(() => document.querySelector('qplay-detector').result?.int8 && !document.querySelector('qplay-detector').running, null, { timeout: 120_000 });
};

test('INT8 losing a detection is said, and one click keeps the sensitive layers FP32 and says what it changed', async () => {
  await s.page.waitForFunction(() => document.querySelector('qplay-detector')?.result && !document.querySelector('qplay-detector').running, null, { timeout: 180_000 });
  await det().locator('select[name=builtin]').selectOption('face');
  await det().locator('select[name=sample]').selectOption('astronaut.png');
  await s.page.waitForFunction(() => {
    const el = document.querySelector('qplay-detector');
    const c = el.shadowRoot.querySelector('canvas.fp32').getAttribute('aria-label') ?? '';
    return !el.running && c.startsWith('astronaut.png: ') && c.includes(' by Face detector (FP32)');
  }, null, { timeout: 180_000 });
  assert.equal(await det().evaluate((el) => el.shadowRoot.querySelector('.lost').hidden), true, 'no INT8 yet: nothing to say');
  await det().locator('button[name=quantize]').click();
  await quantized(1);
  const fp32 = await det().evaluate((el) => el.result.detections.length);
  assert.ok(fp32 > 0);
  // The built-in models keep every detection with the defaults; this INT8 result is made to lose
  // them all (as the MediaPipe SSD of the issue did) to see what the page says and offers.
  await det().evaluate((el) => { el.result.int8.detections = []; el.render(); });
  assert.equal(await det().evaluate((el) => el.shadowRoot.querySelector('.lost').hidden), false);
  assert.equal(await text('.lost-text'), `INT8 misses ${fp32} of the ${fp32} detections FP32 finds on this photo.`);
  assert.equal(await text('button[name=fix-lost]'), 'Keep the 3 most sensitive layers FP32 and quantize again');
  await det().locator('.lost').screenshot({ path: `${ARTIFACTS}lost-offer.png` });
  await det().locator('button[name=fix-lost]').click();
  await quantized(2);
  assert.equal(await det().evaluate((el) => el.shadowRoot.querySelector('input[name=autoMixed]').value), '3');
  const rep = await det().evaluate((el) => el.int8.report);
  assert.equal(rep.kept_fp32.length, 3, JSON.stringify(rep.kept_fp32));
  assert.ok(rep.layers.some((l) => typeof l.sensitivity_sqnr_db === 'number'), 'sensitivities were measured');
  assert.ok(rep.notes.some((n) => /kept FP32 by --auto-mixed/.test(n)));
  assert.match(await text('.qreport .before-after'), new RegExp(`0 of ${fp32} matched, ${fp32} missed.* → ${fp32} of ${fp32} matched.*keeping the 3 most sensitive layers FP32`));
  assert.equal(await det().evaluate((el) => el.shadowRoot.querySelector('.lost').hidden), true, 'nothing is lost any more');
  assert.match(await text('.qreport .command'), /--auto-mixed 3/);
});

test('the same fix at 16-bit activations: the layers stay quantized, with 16-bit inputs, and the command says so', async () => {
  await det().locator('select[name=mixedTo]').selectOption('16');
  await det().evaluate((el) => { el.result.int8.detections = []; el.render(); });
  assert.equal(await text('button[name=fix-lost]'), 'Keep the 6 most sensitive layers at 16-bit activations and quantize again');
  await det().locator('button[name=fix-lost]').click();
  await quantized(3);
  const rep = await det().evaluate((el) => el.int8.report);
  assert.equal(rep.act16.length, 6, JSON.stringify(rep.act16));
  assert.equal(rep.kept_fp32.length, 0, 'nothing moved to FP32');
  assert.match(await text('.qresult'), /layers int8 \(6 with 16-bit activations\)/);
  assert.match(await text('.qreport'), /16-bit activations \(weights int8\):/);
  assert.match(await text('.qreport .before-after'), /keeping the 6 most sensitive layers at 16-bit activations/);
  assert.match(await text('.qreport .command'), /--auto-mixed 6 --mixed-16bit/);
});

test('no page errors', () => assert.deepEqual(s.errors, []));
