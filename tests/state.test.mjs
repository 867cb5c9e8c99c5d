// "The page never contradicts itself" (issue #13), from the user's side, on one page load:
// a failed model load keeps the model in use (and says so), a new photo never shows another
// photo's result, the model download shows a byte-accurate bar and Cancel aborts it, Quantize
// shows its stage, bar and Cancel beside the button (disabled meanwhile) and says when it was
// cancelled, "Copy settings" copies a command that runs, the download names come from the
// model's file, "Keep FP32" shows before → after, and at phone widths nothing overflows.
// Screenshots in tests/artifacts/state-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { open, ARTIFACTS } from './browser.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PERSON = [183, 100, 275, 383]; // the person in person.jpg, as the list prints it
let s;
before(async () => {
  s = await open('index.html');
  await s.page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(s.url).origin });
  // Every state the detector shows, recorded as it changes: what the canvas says it shows, the list, the timings line.
  await s.page.evaluate(async () => {
    await customElements.whenDefined('qplay-detector');
    window.shown = [];
    const el = document.querySelector('qplay-detector');
    const snap = () => {
      const r = el.shadowRoot;
      window.shown.push({ caption: r.querySelector('canvas.fp32').getAttribute('aria-label'), list: r.querySelector('ol.dets').textContent, timings: r.querySelector('.timings').textContent });
    };
    new MutationObserver(snap).observe(el.shadowRoot, { subtree: true, childList: true, attributes: true, characterData: true });
  });
});
after(async () => s && s.close());

const det = () => s.page.locator('qplay-detector');
const text = (sel) => det().evaluate((el, q) => el.shadowRoot.querySelector(q)?.textContent ?? null, sel);
/** Waits until the detector shows a result (not a pending line) for `image` by `model` (short names). */
async function shows(image, model, timeout = 180_000) {
  await s.page.waitForFunction(([i, m]) => {
    const el = document.querySelector('qplay-detector');
    const c = el.shadowRoot.querySelector('canvas.fp32').getAttribute('aria-label') ?? '';
    return !el.running && c.startsWith(`${i}: `) && c.includes(` by ${m} (FP32)`);
  }, [image, model], { timeout });
}
const listText = () => text('ol.dets');
const broken = () => ({ name: 'broken.onnx', mimeType: 'application/octet-stream', buffer: readFileSync(join(ROOT, 'www/models/person_ssdlite.onnx')).subarray(0, 100_000) });

test('a failed model load keeps the model in use and says so; the next photo shows its own result', async () => {
  await shows('person.jpg', 'Person detector');
  assert.match(await listText(), new RegExp(`person 9\\d\\.\\d % — \\[${PERSON.join(', ')}\\]`));
  await det().locator('input[name=model]').setInputFiles(broken());
  await s.page.waitForFunction(() => /Could not load broken\.onnx/.test(document.querySelector('qplay-detector').shadowRoot.querySelector('.error').textContent));
  const error = await text('.error');
  assert.match(error, /Could not load broken\.onnx: .+ — still using: Person detector\./);
  assert.equal(await det().locator('select[name=builtin]').inputValue(), 'person', 'the picker is back on the model in use');
  assert.equal(await det().locator('input[name=model]').inputValue(), '', 'the file input no longer names the file that failed');
  const status = await text('.status .stage-text');
  assert.doesNotMatch(status, /cannot run|not loaded/);
  assert.match(status, /Person detector.*ready/);
  // The result shown is still the person detector's on person.jpg, and the summary is its own.
  assert.match(await listText(), /person 9\d\.\d %/);
  assert.match(await text('.summary'), /Every op is supported/);

  await s.page.evaluate(() => { window.shown = []; });
  await det().locator('select[name=sample]').selectOption('horses.jpg');
  await shows('horses.jpg', 'Person detector');
  const shown = await s.page.evaluate(() => window.shown);
  for (const v of shown.filter((x) => x.caption?.startsWith('horses.jpg'))) {
    assert.ok(!v.list.includes(`[${PERSON.join(', ')}]`), `person.jpg's result shown under horses.jpg: ${JSON.stringify(v)}`);
  }
  assert.ok(shown.some((v) => /^Detecting with Person detector on horses\.jpg/.test(v.timings) && v.list === ''), 'a pending line while horses.jpg is detected');
  const r = await det().evaluate((el) => ({ n: el.result.detections.length, items: el.shadowRoot.querySelectorAll('ol.dets li').length, model: el.result.model }));
  assert.equal(r.items, r.n);
  assert.match(r.model, /^Person detector/);
  // The load error stays (it is still true); the status does not contradict it.
  assert.match(await text('.error'), /still using: Person detector/);
  await s.page.locator('#detect').screenshot({ path: `${ARTIFACTS}state-failed-load.png` });
});

test('after a face-model run, a failed load and a new photo: the face model detects on the new photo', async () => {
  await det().locator('select[name=builtin]').selectOption('face');
  await shows('horses.jpg', 'Face detector');
  await det().locator('input[name=model]').setInputFiles(broken());
  await s.page.waitForFunction(() => /still using: Face detector/.test(document.querySelector('qplay-detector').shadowRoot.querySelector('.error').textContent));
  assert.equal(await det().locator('select[name=builtin]').inputValue(), 'face');
  await det().locator('select[name=sample]').selectOption('astronaut.png');
  await shows('astronaut.png', 'Face detector');
  const r = await det().evaluate((el) => ({ labels: el.result.detections.map((d) => d.label), image: el.result.image }));
  assert.equal(r.image, 'astronaut.png');
  assert.ok(r.labels.length >= 1 && r.labels.every((l) => l === 'face'), JSON.stringify(r));
  // A file chosen as the image, then a sample photo: the file input no longer names the file.
  await det().locator('input[name=image]').setInputFiles(join(ROOT, 'www/samples/dog.jpg'));
  await shows('dog.jpg', 'Face detector');
  assert.equal(await det().locator('select[name=sample]').inputValue(), 'custom');
  await det().locator('select[name=sample]').selectOption('person.jpg');
  await shows('person.jpg', 'Face detector');
  assert.equal(await det().locator('input[name=image]').inputValue(), '');
});

test('a model that loads but matches no decoder: its summary is shown with the error, not as the model in use', async () => {
  // An ONNX file qplay reads (a single Relu) but cannot run as a detector: no image input, no decoder.
  const file = join(ROOT, 'tests/conformance/cases/test_relu/model.onnx');
  const before = await text('.summary');
  await det().locator('input[name=model]').setInputFiles(file);
  await s.page.waitForFunction(() => /Could not load model\.onnx/.test(document.querySelector('qplay-detector').shadowRoot.querySelector('.error').textContent));
  const error = await det().evaluate((el) => ({ text: el.shadowRoot.querySelector('.error').textContent, details: el.shadowRoot.querySelector('.error details summary')?.textContent }));
  assert.match(error.text, /still using: Face detector/);
  assert.equal(error.details, 'What qplay read from model.onnx');
  assert.match(error.text, /cannot infer a detection profile/);
  assert.match(error.text, /Relu.*\[3, 4, 5\]|\[3, 4, 5\].*Relu/s, 'the file\'s summary is under the error');
  assert.equal(await text('.summary'), before, 'the model summary is still the face detector\'s');
  assert.doesNotMatch(await text('.summary'), /\[3, 4, 5\]/);
  assert.equal(await det().locator('select[name=builtin]').inputValue(), 'face');
  assert.match(await det().evaluate((el) => el.shadowRoot.querySelector('canvas.fp32').getAttribute('aria-label')), /^person\.jpg: .* by Face detector/);
});

test('model download: a bar with the total and the percentage; Cancel aborts it and the model in use stays', async () => {
  const cdp = await s.page.context().newCDPSession(s.page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  await cdp.send('Network.setBypassServiceWorker', { bypass: true });
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: 1_500_000, uploadThroughput: -1 });
  const failed = [];
  s.page.on('requestfailed', (r) => failed.push(`${r.url()} ${r.failure()?.errorText}`));
  try {
    await det().locator('select[name=builtin]').selectOption('person');
    await s.page.waitForFunction(() => {
      const bar = document.querySelector('qplay-detector').shadowRoot.querySelector('progress.dl-bar');
      return !bar.hidden && bar.value > 0;
    }, null, { timeout: 30_000 });
    const p = await det().evaluate((el) => {
      const bar = el.shadowRoot.querySelector('progress.dl-bar');
      return { max: bar.max, value: bar.value, text: el.shadowRoot.querySelector('.status .stage-text').textContent };
    });
    assert.equal(p.max, statSync(join(ROOT, 'www/models/person_ssdlite.onnx')).size, 'the bar counts the bytes of the file');
    assert.match(p.text, /^downloading Person detector.*: \d+\.\d of 12\.2 MB \(\d+ %\)$/);
    await s.page.locator('#detect').screenshot({ path: `${ARTIFACTS}state-download.png` });
    await det().locator('button[name=cancel]').click();
    await s.page.waitForFunction(() => /download cancelled — still using: Face detector/.test(document.querySelector('qplay-detector').shadowRoot.querySelector('.status').textContent));
    assert.equal(await det().locator('select[name=builtin]').inputValue(), 'face');
    assert.equal(await det().locator('progress.dl-bar').isVisible(), false);
    await s.page.waitForTimeout(1500);
    assert.ok(failed.some((f) => /person_ssdlite\.onnx/.test(f)), `the fetch was aborted: ${failed.join(', ')}`);
    assert.match(await text('.status .stage-text'), /download cancelled — still using: Face detector/, 'the download did not go on');
    assert.equal(await det().evaluate((el) => el.modelName), 'Face detector — BlazeFace short range, 128×128');
  } finally {
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  }
  // Without throttling it loads, and the status says how many bytes came from where.
  await det().locator('select[name=builtin]').selectOption('person');
  await shows('person.jpg', 'Person detector');
  assert.match(await text('.status .stage-text'), /Person detector.*: ready \(12\.17 MB (downloaded|from the browser cache), loaded in \d+ ms\)/);
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: false });
  await cdp.send('Network.setBypassServiceWorker', { bypass: false });
  await cdp.detach();
});

test('Quantize: stage, bar and Cancel beside the button, the button disabled meanwhile; Cancel says it was cancelled', async () => {
  const q = det().locator('button[name=quantize]');
  const before = await det().evaluate((el) => el.quantizations ?? 0);
  // Every stage as it is shown, with the bar, the button and Cancel at that moment (recorded from
  // the qplay-progress event, which the page sends right after showing the stage: a run of a
  // second or two has stages too short to poll for). Cancel is clicked as soon as the wasm
  // quantizer reports its recipe search, past the photos' decoding, however fast the run.
  await s.page.evaluate(() => {
    const el = document.querySelector('qplay-detector');
    const r = el.shadowRoot;
    window.qseen = [];
    window.qcancelled = false;
    window.qlistener = (e) => {
      const bar = r.querySelector('progress.qbar');
      window.qseen.push({
        stage: e.detail.stage, value: bar.hasAttribute('value') ? bar.value : null, max: bar.max,
        disabled: r.querySelector('button[name=quantize]').disabled, shown: !r.querySelector('.qprogress').hidden,
        cancel: r.querySelector('button[name=qcancel]').checkVisibility(),
      });
      if (!window.qcancelled && /quantizing \(.*choosing the recipe/.test(e.detail.stage)) {
        window.qcancelled = true;
        window.quantWorker = el.engine.worker;
        window.statusBefore = r.querySelector('.status .stage-text').textContent;
        setTimeout(() => r.querySelector('button[name=qcancel]').click(), 0);
      }
    };
    document.addEventListener('qplay-progress', window.qlistener);
  });
  await q.click();
  // A second click does nothing (no restart).
  await q.click({ force: true }).catch(() => {});
  await det().locator('fieldset.quant').screenshot({ path: `${ARTIFACTS}state-quantizing.png` }).catch(() => {});
  await s.page.waitForFunction(() => /Quantization cancelled/.test(document.querySelector('qplay-detector').shadowRoot.querySelector('.qresult').textContent), null, { timeout: 60_000 });
  const seen = await s.page.evaluate(() => { document.removeEventListener('qplay-progress', window.qlistener); return window.qseen; });
  const stagesSeen = seen.map((x) => x.stage).join('\n');
  // While the worker calibrates: the bar shows how far it is, the button is disabled, the stage and Cancel are shown.
  const calib = seen.find((x) => /calibration image/.test(x.stage));
  assert.ok(calib, stagesSeen);
  assert.ok(calib.value > 0 && calib.max === 1, JSON.stringify(calib));
  assert.deepEqual([calib.disabled, calib.shown, calib.cancel], [true, true, true], JSON.stringify(calib));
  assert.ok(seen.some((x) => /quantizing \(.*choosing the recipe/.test(x.stage) && x.disabled && x.cancel), stagesSeen);
  const statusBefore = await s.page.evaluate(() => window.statusBefore);
  assert.match(await text('.qresult'), /Quantization cancelled after [\d.]+ s; no new INT8 model was made, the Person detector \(FP32\) stays in use\./);
  assert.equal(await q.isDisabled(), false);
  assert.equal(await det().locator('.qprogress').isVisible(), false);
  // The page is cross-origin isolated: the worker stopped the run at its next stage through the
  // shared flag and kept its model, so nothing is loaded again and it detects at once.
  assert.equal(await det().evaluate((el) => el.engine.worker === window.quantWorker), true, 'the worker was not replaced');
  assert.equal(await text('.status .stage-text'), statusBefore);
  await det().locator('select[name=sample]').selectOption('astronaut.png');
  await shows('astronaut.png', 'Person detector');
  await det().locator('select[name=sample]').selectOption('person.jpg');
  await shows('person.jpg', 'Person detector');
  // The bar counts a nested stage within the outer one (the recipe search's candidates).
  const fractions = await s.page.evaluate(async () => {
    const { stageFraction } = await import(new URL('www/components/detector/quantize.js', location.origin));
    return ['calibration image 3 of 7', 'quantizing (auto): choosing the recipe: minmax (2 of 4): calibration: input 3 of 6', 'rewriting'].map(stageFraction);
  });
  assert.deepEqual(fractions, [3 / 7, (1 + 3 / 6) / 4, null]);
  assert.equal(await det().evaluate((el) => el.quantizations ?? 0), before, 'nothing was quantized');
  await det().locator('fieldset.quant').screenshot({ path: `${ARTIFACTS}state-quantize-cancelled.png` });

  // The face model, quantized to the end (on a photo with a face).
  await det().locator('select[name=builtin]').selectOption('face');
  await shows('person.jpg', 'Face detector');
  await det().locator('select[name=sample]').selectOption('astronaut.png');
  await shows('astronaut.png', 'Face detector');
  const stages = [];
  await s.page.exposeFunction('onQStage', (t) => stages.push(t));
  await s.page.evaluate(() => document.addEventListener('qplay-progress', (e) => window.onQStage(e.detail.stage)));
  await q.click();
  await s.page.waitForFunction(() => /Quantized in/.test(document.querySelector('qplay-detector').shadowRoot.querySelector('.qresult').textContent), null, { timeout: 300_000 });
  await s.page.waitForFunction(() => document.querySelector('qplay-detector').result?.int8 && !document.querySelector('qplay-detector').running, null, { timeout: 120_000 });
  assert.equal(await q.isDisabled(), false);
  assert.ok(stages.some((t) => /calibration image 7 of 7/.test(t)), stages.join('\n'));
  assert.equal(await det().evaluate((el) => el.quantizations), before + 1);
});

test('Copy settings as a qplay command: a model path that exists, the sample folder, only valid non-default options', async () => {
  const allowed = new Set(readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n').find((l) => l.includes('`qplay quantize MODEL')).match(/--[a-z0-9-]+/g));
  await det().locator('select[name=method]').selectOption('minmax');
  await det().locator('input[name=perChannel]').setChecked(false);
  await det().locator('button[name=copy-config]').click();
  await s.page.waitForFunction(() => document.querySelector('qplay-detector').shadowRoot.querySelector('.copied').textContent === 'Copied:');
  const cmd = await s.page.evaluate(() => navigator.clipboard.readText());
  assert.equal(await text('.qreport .command'), cmd, 'the command is shown under the button');
  const words = cmd.split(' ');
  assert.deepEqual(words.slice(0, 2), ['qplay', 'quantize']);
  assert.equal(words[2], 'www/models/blazeface_short.onnx');
  assert.ok(existsSync(join(ROOT, words[2])), `${words[2]} exists`);
  const opts = words.slice(3);
  for (let i = 0; i < opts.length; i++) {
    const o = opts[i];
    if (o === '-o') { assert.equal(opts[i + 1], 'blazeface_short_int8_qdq.onnx'); i++; continue; }
    assert.ok(allowed.has(o), `${o} is one of the CLI's options (${[...allowed].join(' ')})`);
    if (['--calib', '--method', '--keep-fp32', '--auto-mixed'].includes(o)) i++;
  }
  assert.equal(opts[opts.indexOf('--calib') + 1], 'www/samples');
  assert.ok(statSync(join(ROOT, 'www/samples')).isDirectory());
  assert.equal(opts[opts.indexOf('--method') + 1], 'minmax');
  assert.ok(opts.includes('--per-tensor'));
  await det().locator('select[name=method]').selectOption('auto');
  await det().locator('input[name=perChannel]').setChecked(true);
  assert.equal(await text('.qreport .command'), 'qplay quantize www/models/blazeface_short.onnx --calib www/samples -o blazeface_short_int8_qdq.onnx', 'defaults are left out');

  // Download names from the model's file; the report says where and how it ran.
  assert.equal(await det().locator('a.dl').first().getAttribute('download'), 'blazeface_short_int8_qdq.onnx');
  const [dl] = await Promise.all([s.page.waitForEvent('download'), det().locator('a.report-dl').click()]);
  assert.equal(dl.suggestedFilename(), 'blazeface_short_int8_report.json');
  const rep = JSON.parse(readFileSync(await dl.path(), 'utf8'));
  assert.equal(rep.environment.backend, 'cpu');
  // The threads the backend line says run (the test server is cross-origin isolated: min(hardware threads, 8)).
  assert.equal(rep.environment.threads, await det().evaluate(() => Math.min(navigator.hardwareConcurrency, 8)));
  assert.equal(rep.environment.adapter, null);
  assert.match(rep.environment.qplay_version, /^\d+\.\d+\.\d+/);
  assert.match(rep.environment.user_agent, /Chrome/);
  assert.equal(rep.model.file, 'www/models/blazeface_short.onnx');
  assert.ok(rep.latency_ms.fp32.inference > 0 && rep.latency_ms.int8.inference > 0, JSON.stringify(rep.latency_ms));
  assert.equal(rep.latency_ms.image, 'astronaut.png');
  assert.ok(Array.isArray(rep.layers) && rep.layers.length > 0);
});

test('Keep this layer FP32 and re-run: the report shows output SQNR and agreement before → after', async () => {
  const before = await det().evaluate((el) => ({ n: el.quantizations, sqnr: el.int8.report.output_sqnr_db }));
  await det().locator('button[data-keep]').first().click();
  await s.page.waitForFunction((n) => document.querySelector('qplay-detector').quantizations > n, before.n, { timeout: 300_000 });
  await s.page.waitForFunction(() => !document.querySelector('qplay-detector').shadowRoot.querySelector('.before-after').hidden, null, { timeout: 120_000 });
  const after = await det().evaluate((el) => el.int8.report.output_sqnr_db);
  const line = await text('.sqnr-line');
  for (const [k, v] of Object.entries(after)) assert.ok(line.includes(`${k} ${before.sqnr[k].toFixed(1)} → ${v.toFixed(1)} dB`), `${k}: ${line}`);
  assert.match(line, /before → after keeping .+ FP32/);
  assert.match(await text('.before-after'), /^Agreement on astronaut\.png: 1 of 1 matched, mean IoU [\d.]+, 0 missed, 0 extra → \d of 1 matched/);
  await det().locator('.qreport').screenshot({ path: `${ARTIFACTS}state-keep-before-after.png` });
});

test('phone widths (320–420 px), after quantizing with the report open: nothing overflows sideways', async () => {
  for (const width of [420, 390, 360, 320]) {
    await s.page.setViewportSize({ width, height: 800 });
    await s.page.waitForTimeout(300);
    const m = await s.page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: innerWidth, det: document.querySelector('qplay-detector').getBoundingClientRect().width }));
    assert.ok(m.scroll <= m.inner, `at ${width} px: scrollWidth ${m.scroll} > innerWidth ${m.inner}`);
    if (width === 360) await s.page.locator('#detect').screenshot({ path: `${ARTIFACTS}state-phone-360.png` });
  }
  await s.page.setViewportSize({ width: 1280, height: 900 });
  assert.deepEqual(s.errors, []);
});

test('no request leaves the origin', () => {
  const origin = new URL(s.url).origin;
  assert.deepEqual(s.requests.filter((u) => !u.startsWith(origin) && !/^(data|blob):/.test(u)), []);
});
