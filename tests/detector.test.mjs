// The detector panel in a real browser: the built-in person detector finds the person in
// person.jpg; the face model loads; bad files give clear messages; nothing leaves the origin.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { open, ARTIFACTS } from './browser.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
let s;
before(async () => { s = await open('index.html'); });
after(async () => s && s.close());

const det = () => s.page.locator('qplay-detector');
async function detections() {
  return det().evaluate((el) => [...el.shadowRoot.querySelectorAll('ol.dets li')].map((li) => ({ label: li.dataset.label, score: Number(li.dataset.score) })));
}
/** Waits for a result newer than `prev` that matches `want` ({score, model}). */
async function waitResult(prev, want = {}) {
  await s.page.waitForFunction(([p, w]) => {
    const el = document.querySelector('qplay-detector');
    const r = el.result;
    return r && !el.running && (p === null || r.id !== p) && Object.entries(w).every(([k, v]) => r[k] === v);
  }, [prev, want], { timeout: 120_000 });
}
const lastId = () => det().evaluate((el) => el.result?.id ?? null);

test('default model finds the person in person.jpg', async () => {
  await waitResult(null);
  const d = await detections();
  assert.ok(d.length >= 1, 'at least one detection');
  assert.equal(d[0].label, 'person');
  assert.ok(d[0].score > 0.98, `score ${d[0].score}`);
  const box = await det().evaluate((el) => el.result.detections[0].bbox);
  // The CLI (and the TF graph) put the person at about [183, 100, 275, 383] in the 640×424 photo.
  for (const [a, b] of box.map((v, i) => [v, [183.2, 100.5, 274.8, 383.1][i]])) assert.ok(Math.abs(a - b) < 1.5, `box ${box}`);
  const timings = await det().evaluate((el) => el.shadowRoot.querySelector('.timings').textContent);
  assert.match(timings, /inference [\d.]+ ms/);
  const summary = await det().evaluate((el) => el.shadowRoot.querySelector('.summary').textContent);
  assert.match(summary, /Every op is supported/);
  assert.match(summary, /Conv/);
  await s.page.locator('#detect').screenshot({ path: `${ARTIFACTS}detector-person.png` });
  assert.deepEqual(s.errors, []);
});

test('another sample photo and the score threshold', async () => {
  const prev = await lastId();
  await det().locator('select[name=sample]').selectOption('astronaut.png');
  await waitResult(prev);
  const d = await detections();
  assert.ok(d.some((x) => x.label === 'person' && x.score > 0.8), JSON.stringify(d));
  const prev2 = await lastId();
  await det().locator('input[name=score]').fill('0.95');
  await waitResult(prev2, { score: 0.95 });
  for (const x of await detections()) assert.ok(x.score >= 0.95);
});

test('face model (BlazeFace) loads and finds a face', async () => {
  const prev = await lastId();
  await det().locator('select[name=builtin]').selectOption('face');
  await waitResult(prev);
  await s.page.waitForFunction(() => document.querySelector('qplay-detector').info?.profile?.decoder?.type === 'blazeface');
  const prev2 = await lastId();
  await det().locator('input[name=score]').fill('0.5');
  await waitResult(prev2, { score: 0.5 });
  const d = await detections();
  assert.ok(d.some((x) => x.label === 'face'), JSON.stringify(d));
  await s.page.locator('#detect').screenshot({ path: `${ARTIFACTS}detector-face.png` });
});

test('bad files: random bytes as a model, a text file as an image', async () => {
  const junk = `${ARTIFACTS}junk.onnx`;
  writeFileSync(junk, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24)));
  await det().locator('input[name=model]').setInputFiles(junk);
  await s.page.waitForFunction(() => !document.querySelector('qplay-detector').shadowRoot.querySelector('.error').hidden);
  const msg = await det().locator('.error').textContent();
  assert.match(msg, /junk\.onnx: .*not an ONNX model/);
  // A Git LFS pointer saved in place of the model (a repository cloned without LFS): named so.
  const lfs = `${ARTIFACTS}lfs.tflite`;
  writeFileSync(lfs, 'version https://git-lfs.github.com/spec/v1\noid sha256:4d5e6f\nsize 4013541\n');
  await det().locator('input[name=model]').setInputFiles(lfs);
  await s.page.waitForFunction(() => /lfs\.tflite/.test(document.querySelector('qplay-detector').shadowRoot.querySelector('.error').textContent));
  assert.match(await det().locator('.error').textContent(), /lfs\.tflite: .*Git LFS pointer.*Download the file itself/);
  const txt = `${ARTIFACTS}note.txt`;
  writeFileSync(txt, 'hello');
  await det().locator('input[name=image]').setInputFiles({ name: 'note.png', mimeType: 'image/png', buffer: readFileSync(txt) });
  await s.page.waitForFunction(() => /cannot decode/.test(document.querySelector('qplay-detector').shadowRoot.querySelector('.error').textContent));
  // The page still works: load the person model again.
  const prev = await lastId();
  await det().locator('select[name=builtin]').selectOption('person');
  await det().locator('select[name=sample]').selectOption('person.jpg');
  await waitResult(prev, { model: 'Person detector — SSDLite MobileNetV2, 300×300 (default)' });
  assert.equal((await detections())[0].label, 'person');
  await s.page.locator('#detect').screenshot({ path: `${ARTIFACTS}detector-after-errors.png` });
});

test('quantize in the page: INT8 pane, report, download', async () => {
  const prev = await lastId();
  await det().locator('select[name=method]').selectOption('percentile');
  await det().locator('button[name=quantize]').click();
  await s.page.waitForFunction((p) => {
    const el = document.querySelector('qplay-detector');
    return el.result?.int8 && el.result.id !== p;
  }, prev, { timeout: 300_000 });
  const r = await det().evaluate((el) => ({ int8: el.result.int8.detections, fp32: el.result.detections, rep: el.int8.report, seconds: el.int8.seconds }));
  assert.equal(r.rep.method, 'percentile');
  assert.equal(r.rep.layers.length, 88);
  // ≤ 0.3 plus the per-channel ReLU6 bounds that cross-layer equalization adds (≈ 80 kB).
  assert.ok(r.rep.int8_bytes / r.rep.fp32_bytes <= 0.31, `size ratio ${r.rep.int8_bytes / r.rep.fp32_bytes}`);
  assert.equal(r.int8[0].label, 'person');
  assert.ok(r.int8[0].score > 0.9, JSON.stringify(r.int8));
  const text = await det().evaluate((el) => el.shadowRoot.querySelector('.agreement').textContent + el.shadowRoot.querySelector('.qreport-body').textContent);
  assert.match(text, /1 of 1 FP32 boxes matched/);
  assert.match(text, /Download the INT8 model/);
  const href = await det().locator('a[download$="_int8_qdq.onnx"]').getAttribute('href');
  assert.match(href, /^blob:/);
  await s.page.locator('#detect').screenshot({ path: `${ARTIFACTS}detector-int8.png` });
  console.log(`in-browser quantization of the person detector (7 photos, percentile): ${r.seconds.toFixed(1)} s`);
  // "Keep FP32 and re-run" on the worst layer: one layer fewer is int8, and it is listed as kept.
  const worst = await det().locator('button[data-keep]').first().getAttribute('data-keep');
  const prevQ = await det().evaluate((el) => el.quantizations);
  await det().locator('button[data-keep]').first().click();
  await s.page.waitForFunction((p) => document.querySelector('qplay-detector').quantizations > p, prevQ, { timeout: 300_000 });
  const rep2 = await det().evaluate((el) => el.int8.report);
  assert.equal(rep2.layers.length, 87);
  assert.deepEqual(rep2.kept_fp32, [worst]);
  assert.match(await det().evaluate((el) => el.configCommand()), new RegExp(`--keep-fp32 .*${worst.split('/').pop()}`));
  assert.deepEqual(s.errors, []);
});

test('quality report charts: SQNR bars worst first, layer histograms, per-channel table, export', async () => {
  const rep = await det().evaluate((el) => el.int8.report);
  const bars = await det().evaluate((el) => [...el.shadowRoot.querySelectorAll('.scroll.sqnr g.bar')].map((g) => g.dataset.node));
  assert.equal(bars.length, rep.layers.length, 'one bar per quantized layer');
  const db = Object.fromEntries(rep.layers.map((l) => [l.node, l.output_sqnr_db]));
  for (let i = 1; i < bars.length; i++) assert.ok(db[bars[i - 1]] <= db[bars[i]], `sorted ascending at ${i}: ${db[bars[i - 1]]} > ${db[bars[i]]}`);
  // The worst layer is selected at first; clicking the third bar selects that one.
  const pick = bars[2];
  await det().locator(`.scroll.sqnr g.bar[data-node="${pick}"]`).click();
  const shown = await det().evaluate((el) => ({
    header: el.shadowRoot.querySelector('.layer-h').textContent,
    pressed: el.shadowRoot.querySelector('g.bar[aria-pressed=true]')?.dataset.node,
    weightBins: el.shadowRoot.querySelectorAll('.svg.weights svg rect[fill="currentColor"]').length,
    actLines: el.shadowRoot.querySelectorAll('.svg.activations svg line.clip').length,
    actText: el.shadowRoot.querySelector('.svg.activations svg').textContent,
    rows: el.shadowRoot.querySelectorAll('.scroll.channels tbody tr').length,
  }));
  const layer = rep.layers.find((l) => l.node === pick);
  assert.ok(shown.header.includes(pick), shown.header);
  assert.equal(shown.pressed, pick);
  assert.ok(shown.weightBins > 5, `weight histogram bars: ${shown.weightBins}`);
  assert.equal(shown.actLines, 2 * layer.activation.methods.length, 'two clip lines per method');
  assert.match(shown.actText, /Percentile 99\.99 \(used\).*clipped/);
  assert.match(shown.actText, /Entropy/);
  assert.equal(shown.rows, layer.channel_scales.length);
  // Keyboard: Enter on a focused bar selects it.
  await det().locator(`.scroll.sqnr g.bar[data-node="${bars[0]}"]`).focus();
  await s.page.keyboard.press('Enter');
  assert.equal(await det().evaluate((el) => el.view.selected), bars[0]);
  // log-y redraws the histograms.
  await det().locator('input[name=logy]').check();
  assert.match(await det().evaluate((el) => el.shadowRoot.querySelector('.svg.activations svg').textContent), /count \(log\)/);
  // Size and latency bars.
  const pairs = await det().evaluate((el) => [...el.shadowRoot.querySelectorAll('.pairs svg')].map((x) => x.textContent));
  assert.match(pairs[0], /FP32.*MB.*INT8.*MB/);
  assert.match(pairs[1], /FP32.*ms.*INT8.*ms/);
  // SVG and PNG export.
  const [svgDl] = await Promise.all([s.page.waitForEvent('download'), det().locator('figure[data-chart=sqnr] button[data-export=svg]').click()]);
  assert.match(svgDl.suggestedFilename(), /_sqnr_output\.svg$/);
  const svgText = readFileSync(await svgDl.path(), 'utf8');
  const parsed = await s.page.evaluate((t) => {
    const d = new DOMParser().parseFromString(t, 'image/svg+xml');
    return { root: d.documentElement.nodeName, error: d.querySelector('parsererror')?.textContent ?? null, bars: d.querySelectorAll('g.bar').length };
  }, svgText);
  assert.deepEqual(parsed, { root: 'svg', error: null, bars: rep.layers.length });
  const [pngDl] = await Promise.all([s.page.waitForEvent('download'), det().locator('figure[data-chart=activations] button[data-export=png]').click()]);
  const png = readFileSync(await pngDl.path());
  assert.equal(png.subarray(1, 4).toString(), 'PNG');
  assert.ok(png.length > 2000, `PNG of ${png.length} bytes`);
  writeFileSync(`${ARTIFACTS}report-activations.png`, png);
  writeFileSync(`${ARTIFACTS}report-sqnr.svg`, svgText);
  await det().locator('.qreport').screenshot({ path: `${ARTIFACTS}detector-report.png` });
  assert.deepEqual(s.errors, []);
});

test('a model URL that does not exist says so', async () => {
  await s.page.evaluate(() => {
    const el = document.createElement('qplay-detector');
    el.id = 'missing';
    el.setAttribute('model', 'www/models/nope.onnx');
    document.body.append(el);
    el.scrollIntoView(); // it starts when it comes near the viewport
  });
  await s.page.waitForFunction(() => /HTTP 404/.test(document.getElementById('missing').shadowRoot.querySelector('.error').textContent));
  await s.page.evaluate(() => document.getElementById('missing').remove());
});

test('automatic mixed precision in the page (face model): the K most sensitive layers stay FP32, progress per layer', async () => {
  const prev = await lastId();
  await det().locator('select[name=builtin]').selectOption('face');
  await waitResult(prev, { model: 'Face detector — BlazeFace short range, 128×128' });
  const stages = [];
  await s.page.exposeFunction('onStage', (t) => stages.push(t));
  await s.page.evaluate(() => document.addEventListener('qplay-progress', (e) => window.onStage(e.detail.stage)));
  await det().locator('input[name=autoMixed]').fill('2');
  const prevQ = await det().evaluate((el) => el.quantizations ?? 0);
  await det().locator('button[name=quantize]').click();
  await s.page.waitForFunction((p) => (document.querySelector('qplay-detector').quantizations ?? 0) > p, prevQ, { timeout: 300_000 });
  const rep = await det().evaluate((el) => el.int8.report);
  assert.equal(rep.kept_fp32.length, 2, JSON.stringify(rep.kept_fp32));
  assert.equal(rep.notes.filter((n) => /kept FP32 by --auto-mixed/.test(n)).length, 2);
  assert.ok(rep.layers.every((l) => typeof l.sensitivity_sqnr_db === 'number'), 'every int8 layer has its sensitivity');
  const layers = rep.layers.length + 2;
  assert.ok(stages.some((t) => new RegExp(`sensitivity: layer ${layers} of ${layers}`).test(t)), stages.join('\n'));
  assert.ok(stages.some((t) => /calibration: input 7 of 7/.test(t)) && stages.some((t) => /report: FP32 and INT8 runs on input 7 of 7/.test(t)));
  assert.match(await det().evaluate((el) => el.configCommand()), /--auto-mixed 2/);
  await det().locator('input[name=autoMixed]').fill('0');
  // (The 404 of the missing-model test above is the only console error allowed.)
  assert.deepEqual(s.errors.filter((e) => !/status of 404/.test(e)), []);
});

test('weight bits per layer (face model, 4-bit): "8-bit weights" on the worst layer re-runs with that layer at 8 bits; Clear; the most sensitive at 8 bits', async () => {
  // The face model is loaded by the test above.
  await det().locator('select[name=weightBits]').selectOption('4');
  let prevQ = await det().evaluate((el) => el.quantizations ?? 0);
  await det().locator('button[name=quantize]').click();
  await s.page.waitForFunction((p) => (document.querySelector('qplay-detector').quantizations ?? 0) > p, prevQ, { timeout: 300_000 });
  const table = det().locator('.qreport table.layers');
  assert.match(await table.locator('thead').textContent(), /weight SQNR dB \(bits\)/);
  const node = await table.locator('button[data-bits="8"]').first().getAttribute('data-node');
  const before = await det().evaluate((el) => el.int8.report.output_sqnr_db);
  prevQ = await det().evaluate((el) => el.quantizations);
  await table.locator('button[data-bits="8"]').first().click();
  await s.page.waitForFunction((p) => document.querySelector('qplay-detector').quantizations > p, prevQ, { timeout: 300_000 });
  const rep = await det().evaluate((el) => el.int8.report);
  assert.equal(rep.weight_bits, 4);
  assert.deepEqual(rep.layers.filter((l) => l.weight_bits !== 4).map((l) => [l.node, l.weight_bits]), [[node, 8]]);
  assert.ok(rep.notes.some((n) => n.includes(`\`${node}\` 8`)), rep.notes.join('\n'));
  const body = await det().locator('.qreport-body').textContent();
  assert.match(body, /1 at their own width: 1 at 8 bits/);
  assert.match(body, new RegExp(`before → after keeping ${node} at 8-bit weights`));
  for (const k of Object.keys(before)) assert.ok(typeof rep.output_sqnr_db[k] === 'number', k);
  // The layer at 8 bits has no "8-bit weights" button any more; the others below 8 keep theirs.
  assert.equal(await table.locator(`button[data-bits][data-node="${node}"]`).count(), 0);
  assert.match(await det().locator('.keep-note').textContent(), new RegExp(`Layers with their own weight bits: ${node} \\(8-bit\\)`));
  assert.match(await det().evaluate((el) => el.configCommand()), new RegExp(`--weight-bits 4 .*--layer-bits ${node}=8`));
  assert.deepEqual(await det().evaluate((el) => el.settings.layerBits), { [node]: 8 });
  await det().locator('.qreport').screenshot({ path: `${ARTIFACTS}detector-layer-bits.png` });
  await det().locator('fieldset:has(.keep-note)').screenshot({ path: `${ARTIFACTS}detector-layer-bits-note.png` });
  // Clear: every layer alike at the next Quantize.
  await det().locator('button[name=clear-mixed]').click();
  assert.equal(await det().locator('.keep-note').isVisible(), false);
  assert.deepEqual(await det().evaluate((el) => el.settings.layerBits), {});
  assert.doesNotMatch(await det().evaluate((el) => el.configCommand()), /--layer-bits/);
  // Automatic mixed precision to 8-bit weights: the 2 most sensitive layers, measured.
  await det().locator('input[name=autoMixed]').fill('2');
  await det().locator('select[name=mixedTo]').selectOption('w8');
  prevQ = await det().evaluate((el) => el.quantizations);
  await det().locator('button[name=quantize]').click();
  await s.page.waitForFunction((p) => document.querySelector('qplay-detector').quantizations > p, prevQ, { timeout: 300_000 });
  const auto = await det().evaluate((el) => el.int8.report);
  assert.equal(auto.layers.filter((l) => l.weight_bits === 8).length, 2);
  assert.equal(auto.kept_fp32.length, 0);
  assert.equal(auto.notes.filter((n) => /8-bit weights by --auto-mixed/.test(n)).length, 2, auto.notes.join('\n'));
  assert.match(await det().evaluate((el) => el.configCommand()), /--weight-bits 4 .*--auto-mixed 2 --mixed-8bit-weights/);
  // A plain Quantize after a re-run shows no stale before → after.
  assert.doesNotMatch(await det().locator('.qreport-body').textContent(), /before → after/);
  // With the sensitivity measured the table lists the most sensitive first: the two moved to 8 bits.
  assert.match(await table.locator('thead').textContent(), /most sensitive first.*sensitivity dB/s);
  const rows = table.locator('tbody tr');
  assert.deepEqual(await Promise.all([0, 1, 2].map((i) => rows.nth(i).locator('button[data-bits]').count())), [0, 0, 1]);
  await det().locator('.qreport').screenshot({ path: `${ARTIFACTS}detector-auto-8bit-weights.png` });
  await det().locator('input[name=autoMixed]').fill('0');
  await det().locator('select[name=mixedTo]').selectOption('fp32');
  await det().locator('select[name=weightBits]').selectOption('8');
  assert.deepEqual(s.errors.filter((e) => !/status of 404/.test(e)), []);
});

test('no request leaves the origin', async () => {
  const origin = new URL(s.url).origin;
  const foreign = s.requests.filter((u) => !u.startsWith(origin) && !/^(data|blob):/.test(u));
  assert.deepEqual(foreign, []);
});
