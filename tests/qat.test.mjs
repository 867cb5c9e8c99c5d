// Fine-tune (QAT) in the page (issue #15): after Quantize, quantization-aware training against the
// FP32 model runs in the worker step by step, with a live chart, Pause/Resume and Stop; the INT8
// pane takes the newest weights at each check, the best held-out step is kept and downloadable,
// and bad settings are refused with a message before anything runs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { open, ARTIFACTS } from './browser.mjs';

let s;
before(async () => { s = await open('index.html'); });
after(async () => s && s.close());

const det = () => s.page.locator('qplay-detector');
const text = (sel) => det().evaluate((el, q) => el.shadowRoot.querySelector(q)?.textContent ?? null, sel);
const set = async (name, value) => det().locator(`input[name=${name}]`).fill(String(value));
const ended = () => s.page.waitForFunction(() => {
  const el = document.querySelector('qplay-detector');
  return el.qat && !el.qat.running && el.shadowRoot.querySelector('.qat-result').dataset.outcome;
}, null, { timeout: 600_000 });

/** Switches to the built-in face model and waits for its FP32 run. */
const useFace = async () => {
  await det().locator('select[name=builtin]').selectOption('face');
  await s.page.waitForFunction(() => {
    const el = document.querySelector('qplay-detector');
    return !el.running && (el.shadowRoot.querySelector('canvas.fp32').getAttribute('aria-label') ?? '').includes(' by Face detector (FP32)');
  }, null, { timeout: 180_000 });
};
/** Clicks Quantize and waits for the INT8 model. */
const quantizeNow = async () => {
  await det().locator('button[name=quantize]').click();
  await s.page.waitForFunction(() => document.querySelector('qplay-detector').int8 && !document.querySelector('qplay-detector').quantizing, null, { timeout: 300_000 });
};

test('after Quantize, fine-tuning runs live, updates the INT8 pane and keeps the best step', async () => {
  await s.page.waitForFunction(() => document.querySelector('qplay-detector')?.result && !document.querySelector('qplay-detector').running, null, { timeout: 180_000 });
  assert.equal(await det().evaluate((el) => el.shadowRoot.querySelector('fieldset.qat').hidden), true, 'nothing to fine-tune before Quantize');
  await det().locator('select[name=builtin]').selectOption('face');
  await det().locator('select[name=sample]').selectOption('astronaut.png');
  await s.page.waitForFunction(() => {
    const el = document.querySelector('qplay-detector');
    return !el.running && (el.shadowRoot.querySelector('canvas.fp32').getAttribute('aria-label') ?? '').includes(' by Face detector (FP32)');
  }, null, { timeout: 180_000 });
  await quantizeNow();
  assert.equal(await det().evaluate((el) => el.shadowRoot.querySelector('fieldset.qat').hidden), false);
  await set('qatSteps', 4); await set('qatBatch', 1); await set('qatEvery', 2);
  assert.match(await text('.qat-command'), /^qplay qat .* --calib www\/samples --steps 4 --batch 1 --eval-every 2 .*-o .*_qat_qdq\.onnx --curve curve\.csv$/);
  // Every layer is matched by default (the CLI's default too); outputs only is one click.
  await det().locator('input[name=qatLayers]').uncheck();
  assert.match(await text('.qat-command'), / --eval-every 2 --feature-weight 0 /);
  await det().locator('input[name=qatLayers]').check();
  assert.doesNotMatch(await text('.qat-command'), /--feature-weight/);
  const steps = [];
  await s.page.exposeFunction('qatStep', (p) => steps.push(p));
  await det().evaluate((el) => el.addEventListener('qplay-qat-step', (e) => window.qatStep(e.detail.point)));
  const seq0 = await det().evaluate((el) => el.int8.seq);
  await det().locator('button[name=qat-start]').click();
  await s.page.waitForFunction(() => document.querySelector('qplay-detector').qat?.curve.length >= 2, null, { timeout: 300_000 });
  // While it runs: the buttons say what can be done, the chart is drawn, Quantize waits.
  assert.equal(await det().evaluate((el) => el.shadowRoot.querySelector('button[name=qat-start]').disabled), true);
  assert.equal(await det().evaluate((el) => el.shadowRoot.querySelector('button[name=quantize]').disabled), true);
  assert.equal(await det().evaluate((el) => el.shadowRoot.querySelector('button[name=qat-pause]').hidden), false);
  assert.equal(await det().evaluate((el) => el.shadowRoot.querySelector('figure.qat-chart').hidden), false);
  await ended();
  assert.equal(await det().evaluate((el) => el.shadowRoot.querySelector('.qat-result').dataset.outcome), 'done', await text('.qat-result'));
  assert.deepEqual(steps.map((p) => p.step), [1, 2, 3, 4]);
  assert.ok(steps.every((p) => Number.isFinite(p.loss) && p.loss >= 0), JSON.stringify(steps));
  assert.deepEqual(steps.map((p) => p.held_out_sqnr_db != null), [false, true, false, true], 'checks at steps 2 and 4');
  const r = await det().evaluate((el) => el.qat.result);
  assert.equal(r.curve.length, 5);
  assert.ok(r.qat_sqnr_db >= r.ptq_sqnr_db, 'the kept step is never worse than the INT8 model it started from');
  assert.ok(r.changes.some((c) => c.kind === 'activation'), 'at 8 bits the activation scales train');
  assert.match(await text('.qat-result'), /^Fine-tuned 4 steps in \d+ s \([\d.]+ s\/step\); (kept step \d: held-out SQNR [\d.]+ → [\d.]+ dB|no step beat)/);
  // The chart: FP32 flat and INT8 dashed agreement (or why not), SQNR and loss panels.
  const svgs = await det().evaluate((el) => el.shadowRoot.querySelectorAll('.qat-svg svg').length);
  assert.ok(svgs >= 2, `${svgs} panels`);
  assert.ok(await det().evaluate((el) => el.shadowRoot.querySelector('.qat-svg path[stroke-dasharray]') !== null));
  // The INT8 pane shows the kept step's model: a new INT8 model, and this frame ran it.
  await s.page.waitForFunction(() => { const el = document.querySelector('qplay-detector'); return !el.running && el.result?.int8Seq === el.int8.seq; }, null, { timeout: 120_000 });
  assert.notEqual(await det().evaluate((el) => el.int8.seq), seq0);
  // The download: the fine-tuned QDQ model.
  const a = det().locator('a.qat-dl');
  assert.equal(await a.isVisible(), true);
  assert.match(await a.getAttribute('download'), /_qat_qdq\.onnx$/);
  const size = await det().evaluate(async (el) => (await (await fetch(el.shadowRoot.querySelector('a.qat-dl').href)).arrayBuffer()).byteLength);
  assert.ok(size > 10_000, `${size} bytes`);
  // What changed: shown when a step was kept (the moved codes and learned scales), else hidden.
  const changed = await det().evaluate((el) => ({ hidden: el.shadowRoot.querySelector('details.qat-changed').hidden, rows: el.shadowRoot.querySelectorAll('table.qat-changes tbody tr').length, layers: el.shadowRoot.querySelectorAll('table.qat-layers tbody tr').length }));
  assert.deepEqual(changed, r.best_step > 0 ? { hidden: false, rows: 10, layers: 10 } : { hidden: true, rows: 0, layers: 0 }, JSON.stringify(r.best_step));
  // Each quantized activation's SQNR against the FP32 model's on the held-out images, before and
  // after (the same numbers when step 0 was kept).
  assert.ok(r.layers.length >= 20, `${r.layers.length} layers`);
  assert.ok(r.layers.every((l) => Number.isFinite(l.ptq_sqnr_db) && Number.isFinite(l.qat_sqnr_db) && l.ptq_sqnr_db > 0), JSON.stringify(r.layers.slice(0, 3)));
  if (r.best_step === 0) assert.ok(r.layers.every((l) => l.qat_sqnr_db === l.ptq_sqnr_db));
  else assert.ok(r.layers.some((l) => l.qat_sqnr_db !== l.ptq_sqnr_db));
  await det().locator('fieldset.qat').screenshot({ path: `${ARTIFACTS}qat-box.png` });
  await det().locator('figure.qat-chart').screenshot({ path: `${ARTIFACTS}qat-chart.png` });
});

test('Pause holds the steps, Resume goes on, Stop keeps the best step so far', async () => {
  await set('qatSteps', 40); await set('qatEvery', 1);
  await det().locator('button[name=qat-start]').click();
  await s.page.waitForFunction(() => document.querySelector('qplay-detector').qat?.curve.length >= 2, null, { timeout: 300_000 });
  await det().locator('button[name=qat-pause]').click();
  assert.equal(await text('button[name=qat-pause]'), 'Resume');
  await s.page.waitForFunction(() => /^paused after step/.test(document.querySelector('qplay-detector').shadowRoot.querySelector('.qat-stage').textContent), null, { timeout: 60_000 });
  const n = await det().evaluate((el) => el.qat.curve.length);
  await s.page.waitForTimeout(3000);
  assert.equal(await det().evaluate((el) => el.qat.curve.length), n, 'no step while paused');
  await det().locator('button[name=qat-pause]').click();
  await s.page.waitForFunction((k) => document.querySelector('qplay-detector').qat.curve.length > k, n, { timeout: 300_000 });
  await det().locator('button[name=qat-stop]').click();
  await ended();
  assert.equal(await det().evaluate((el) => el.shadowRoot.querySelector('.qat-result').dataset.outcome), 'done');
  assert.match(await text('.qat-result'), /^Stopped after \d+ of 40 steps/);
  assert.equal(await det().evaluate((el) => el.shadowRoot.querySelector('button[name=qat-start]').disabled), false);
  assert.equal(await det().evaluate((el) => el.shadowRoot.querySelector('button[name=quantize]').disabled), false);
});

test('memory does not grow across 300 steps (wasm memory after step 300 = after step 60)', async () => {
  await set('qatSteps', 300); await set('qatEvery', 50); await set('qatBatch', 1);
  const mem = new Map();
  await s.page.exposeFunction('qatMemory', (step, bytes) => mem.set(step, bytes));
  await det().evaluate((el) => el.addEventListener('qplay-qat-step', (e) => window.qatMemory(e.detail.point.step, e.detail.memory)));
  await det().locator('button[name=qat-start]').click();
  await ended();
  assert.equal(await det().evaluate((el) => el.shadowRoot.querySelector('.qat-result').dataset.outcome), 'done', await text('.qat-result'));
  assert.equal(mem.size, 300);
  console.log(`wasm memory: step 1 ${mem.get(1)}, step 60 ${mem.get(60)}, step 300 ${mem.get(300)} bytes`);
  assert.equal(mem.get(300), mem.get(60), `wasm memory grew from ${mem.get(60)} at step 60 to ${mem.get(300)} at step 300`);
});

test('bad settings are refused with what to change, and nothing starts', async () => {
  await set('qatLr', 'fast'); await set('qatSteps', 0);
  await det().locator('button[name=qat-start]').click();
  assert.equal(await text('.qat-result'), 'Steps must be a whole number from 1 to 1000; Learning rate must be a number from 1e-7 to 0.01 (e.g. 1e-4).');
  assert.equal(await det().evaluate((el) => el.qat.running), false);
  assert.equal(await det().evaluate((el) => el.shadowRoot.querySelector('.qat-progress').hidden), true);
  await set('qatLr', '1e-4'); await set('qatSteps', 30);
});

test('a learning rate far too large: the INT8 model stays as it was, and the result says what to try', async () => {
  await set('qatLr', '1e-2'); await set('qatSteps', 2); await set('qatBatch', 1); await set('qatEvery', 1);
  await det().locator('button[name=qat-start]').click();
  await ended();
  const r = await det().evaluate((el) => el.qat.result);
  assert.equal(r.best_step, 0);
  assert.match(await text('.qat-result'), /no step beat the INT8 model from Quantize .* The held-out SQNR fell as it trained: try a smaller learning rate \(e\.g\. 3e-3\) or untick “match every layer”, or more images with the objects\.$/);
  await set('qatLr', '1e-4'); await set('qatSteps', 30); await set('qatEvery', 2);
});

test('4-bit weights: Quantize stores them as int4 (a smaller file), says so, and fine-tuning starts at 1e-3 and on the outputs only (the defaults of the CLI at 4 bits)', async () => {
  const before = await det().evaluate((el) => el.int8.report.int8_bytes);
  await det().locator('select[name=weightBits]').selectOption('4');
  assert.match(await det().evaluate((el) => el.configCommand()), / --weight-bits 4 /);
  await det().locator('button[name=quantize]').click();
  await s.page.waitForFunction(() => { const el = document.querySelector('qplay-detector'); return el.int8?.report.weight_bits === 4 && !el.quantizing; }, null, { timeout: 300_000 });
  const rep = await det().evaluate((el) => el.int8.report);
  assert.equal(rep.weight_storage, 'int4');
  // Below 8 bits the weights are rounded by GPTQ by default (the CLI's default too: no flag).
  assert.equal(rep.weight_rounding, 'gptq');
  assert.match(await text('.qreport-body'), /per-channel weights rounded by GPTQ/);
  assert.doesNotMatch(await det().evaluate((el) => el.configCommand()), /gptq/);
  await det().locator('select[name=rounding]').selectOption('nearest');
  assert.match(await det().evaluate((el) => el.configCommand()), / --weight-bits 4 --no-gptq /);
  await det().locator('select[name=weightBits]').selectOption('8');
  await det().locator('select[name=rounding]').selectOption('gptq');
  assert.match(await det().evaluate((el) => el.configCommand()), / --gptq /);
  await det().locator('select[name=rounding]').selectOption('auto');
  await det().locator('select[name=weightBits]').selectOption('4');
  // The CLI's default learning rates, as the page writes them: 3e-5 after GPTQ at 8 bits.
  const lrs = await s.page.evaluate(async () => {
    const { qatDefaultLr } = await import(new URL('www/components/detector/qat.js', location.origin));
    return [[4, 'gptq'], [4, 'nearest'], [8, 'nearest'], [8, 'gptq']].map(([b, r]) => qatDefaultLr(b, r));
  });
  assert.deepEqual(lrs, ['1e-3', '1e-3', '1e-4', '3e-5']);
  // When every step fell: a smaller rate is the advice, but not after GPTQ's 4-bit rounding, where it fell too.
  const hints = await s.page.evaluate(async () => {
    const { fellHint } = await import(new URL('www/components/detector/qat.js', location.origin));
    return [fellHint(1e-3, false, 4, 'gptq'), fellHint(1e-3, false, 4, 'nearest'), fellHint(1e-2, true, 8, 'gptq'), fellHint(1e-2, false, 4, 'gptq')];
  });
  assert.match(hints[0], /^The held-out SQNR fell as it trained: GPTQ's 4-bit rounding leaves fine-tuning little to find .* the model from Quantize is the one to use/);
  assert.match(hints[1], /try a smaller learning rate \(e\.g\. 3e-4\)/);
  assert.match(hints[2], /try a smaller learning rate \(e\.g\. 3e-3\) or untick “match every layer”/);
  // Above the default rate a smaller one is still the advice.
  assert.match(hints[3], /try a smaller learning rate \(e\.g\. 3e-3\), or more images/);
  assert.doesNotMatch(await det().evaluate((el) => el.configCommand()), /gptq/);
  assert.ok(rep.int8_bytes < before, `int4 file ${rep.int8_bytes} bytes vs int8 ${before}`);
  assert.match(await text('.qresult'), /layers with 4-bit weights \(stored int4\)/);
  assert.match(await text('.qreport-body'), /with 4-bit weights \(stored int4\)/);
  assert.equal(await det().evaluate((el) => el.shadowRoot.querySelector('input[name=qatLr]').value), '1e-3');
  // The CLI's default at 4 bits is 1e-3 too: the command leaves it out.
  assert.match(await text('.qat-command'), /^qplay qat \S+ --calib \S+ --weight-bits 4 /);
  assert.doesNotMatch(await text('.qat-command'), /--lr/);
  // Outputs only at 4 bits (the feature term cost detections there); ticking it says so.
  assert.equal(await det().evaluate((el) => el.shadowRoot.querySelector('input[name=qatLayers]').checked), false);
  assert.doesNotMatch(await text('.qat-command'), /--feature-weight/);
  await det().locator('input[name=qatLayers]').check();
  assert.match(await text('.qat-command'), / --feature-weight 1 /);
  await det().locator('input[name=qatLayers]').uncheck();
  // The INT8 pane runs the 4-bit model (its own result for this photo).
  await s.page.waitForFunction(() => { const el = document.querySelector('qplay-detector'); return !el.running && el.result?.int8Seq === el.int8.seq; }, null, { timeout: 120_000 });
  await set('qatSteps', 2); await set('qatEvery', 1);
  await det().locator('button[name=qat-start]').click();
  await ended();
  assert.equal(await det().evaluate((el) => el.shadowRoot.querySelector('.qat-result').dataset.outcome), 'done', await text('.qat-result'));
  // Below 8 bits the activation scales keep their values from Quantize (the CLI's default too).
  const end4 = await det().evaluate((el) => ({ best: el.qat.result.best_step, kinds: [...new Set(el.qat.result.changes.map((c) => c.kind))] }));
  assert.deepEqual(end4.kinds, ['weight'], JSON.stringify(end4));
  if (end4.best > 0) assert.match(await text('.qat-changed-body'), /the activation scales kept their values from Quantize/);
  const kept = await s.page.evaluate(async () => {
    const { changesHtml } = await import(new URL('www/components/detector/qat.js', location.origin));
    const d = document.createElement('div');
    d.innerHTML = changesHtml([{ tensor: 'conv_w', kind: 'weight', scale_change_pct: 0.5, codes_changed_pct: 2, max_code_move: 1 }]);
    return d.textContent.replace(/\s+/g, ' ');
  });
  assert.match(kept, /1 weight tensors: 2\.0 % of their codes moved on average .* the activation scales kept their values from Quantize\./);
  const size = await det().evaluate(async (el) => (await (await fetch(el.shadowRoot.querySelector('a.qat-dl').href)).arrayBuffer()).byteLength);
  assert.ok(size < before, `the fine-tuned 4-bit file (${size} bytes) stays int4`);
  await det().locator('select[name=weightBits]').selectOption('8');
});

test('a 4-bit Quantize cancelled while GPTQ rounds its layers: the run stops there and the INT8 model in use stays', async () => {
  const seq = await det().evaluate((el) => el.int8.seq);
  await det().locator('select[name=weightBits]').selectOption('4');
  await s.page.evaluate(() => {
    const el = document.querySelector('qplay-detector');
    window.gseen = [];
    window.glistener = (e) => {
      window.gseen.push(e.detail.stage);
      if (!window.gcancel && /error-compensating rounding: layer 3 of \d+/.test(e.detail.stage)) {
        window.gcancel = true;
        setTimeout(() => el.shadowRoot.querySelector('button[name=qcancel]').click(), 0);
      }
    };
    document.addEventListener('qplay-progress', window.glistener);
  });
  await det().locator('button[name=quantize]').click();
  await s.page.waitForFunction(() => /Quantization cancelled/.test(document.querySelector('qplay-detector').shadowRoot.querySelector('.qresult').textContent), null, { timeout: 120_000 });
  const seen = await s.page.evaluate(() => { document.removeEventListener('qplay-progress', window.glistener); return window.gseen; });
  assert.ok(seen.some((x) => /error-compensating rounding: layer 1 of \d+/.test(x)), seen.join('\n'));
  // Nothing after the rounding was reached: no rewrite, no export.
  const at = seen.findIndex((x) => /rounding: layer 3 of/.test(x));
  assert.ok(!seen.slice(at).some((x) => /rewriting|exporting/.test(x)), seen.join('\n'));
  assert.equal(await det().evaluate((el) => el.int8.seq), seq, 'the INT8 model from before stays');
  await det().locator('select[name=weightBits]').selectOption('8');
});

test('a new model ends the box: nothing to fine-tune until it is quantized', async () => {
  await det().locator('select[name=builtin]').selectOption('person');
  await s.page.waitForFunction(() => { const el = document.querySelector('qplay-detector'); return !el.int8 && el.shadowRoot.querySelector('fieldset.qat').hidden; }, null, { timeout: 180_000 });
  assert.equal(await det().evaluate((el) => el.shadowRoot.querySelector('figure.qat-chart').hidden), true);
});

test('layers kept at 16-bit activations fine-tune too (their com.microsoft Q/DQ train like the 8-bit ones)', async () => {
  await useFace();
  await det().locator('select[name=weightBits]').selectOption('8');
  await det().locator('input[name=autoMixed]').fill('3');
  await det().locator('select[name=mixedTo]').selectOption('16');
  await quantizeNow();
  assert.match(await text('.qresult'), /\(3 with 16-bit activations\)/);
  await set('qatSteps', 4); await set('qatEvery', 2); await set('qatLr', '1e-4');
  await det().locator('button[name=qat-start]').click();
  await ended();
  assert.equal(await det().evaluate((el) => el.shadowRoot.querySelector('.qat-result').dataset.outcome), 'done', await text('.qat-result'));
  assert.match(await text('.qat-result'), /^Fine-tuned 4 steps/);
  // The CLI twin quantizes the start the same way.
  assert.match(await text('.qat-command'), / --auto-mixed 3 --mixed-16bit /);
  await det().locator('input[name=autoMixed]').fill('0');
  await det().locator('select[name=mixedTo]').selectOption('fp32');
});

// The run's best step as the browser keeps it (IndexedDB, www/saved-run.js), or null.
const savedRun = () => s.page.evaluate(async () => {
  const r = await (await import('./www/saved-run.js')).loadRun();
  return r && { step: r.step, steps: r.steps, size: r.bytes.byteLength, model: r.model };
});

test('a run cut off by a closed page keeps its best step: the next page offers it; a run that ends removes it', async () => {
  await useFace();
  await det().locator('select[name=weightBits]').selectOption('8');
  const startUntilSaved = async () => {
    await set('qatSteps', 300); await set('qatEvery', 1); await set('qatLr', '1e-4');
    await det().locator('button[name=qat-start]').click();
    const t0 = Date.now();
    let r = null;
    while (!(r = await savedRun()) && Date.now() - t0 < 240_000) await s.page.waitForTimeout(500);
    return r;
  };
  await quantizeNow();
  // A run that ends (here: Stop) leaves nothing behind: its result is on the page.
  const first = await startUntilSaved();
  assert.ok(first && first.step >= 1 && first.steps === 300 && first.size > 10_000, JSON.stringify(first));
  await det().locator('button[name=qat-stop]').click();
  await ended();
  assert.equal(await savedRun(), null, 'a run that ended keeps no copy');
  // The same run again, and the page closes (reloads) mid-run: the next page offers its best step.
  await quantizeNow();
  const cut = await startUntilSaved();
  assert.ok(cut && cut.step >= 1, JSON.stringify(cut));
  await s.page.reload();
  await s.page.waitForFunction(() => document.querySelector('qplay-detector')?.shadowRoot?.querySelector('p.qat-saved')?.hidden === false, null, { timeout: 120_000 });
  const notice = await text('p.qat-saved');
  assert.match(notice, /^A fine-tuning run of \S+ was cut off \(its page closed\) before step 300; its best step, \d+ \(held-out SQNR [\d.]+ → [\d.]+ dB, \+[\d.]+ dB\), was kept in this browser/);
  const a = det().locator('a.qat-saved-dl');
  assert.match(await a.getAttribute('download'), /_qat_step\d+_qdq\.onnx$/);
  const size = await det().evaluate(async (el) => (await (await fetch(el.shadowRoot.querySelector('a.qat-saved-dl').href)).arrayBuffer()).byteLength);
  assert.ok(size > 10_000 && size === (await savedRun()).size, `${size} bytes`);
  await det().locator('p.qat-saved').screenshot({ path: `${ARTIFACTS}qat-saved.png` });
  await det().locator('button[name=qat-discard]').click();
  assert.equal(await det().evaluate((el) => el.shadowRoot.querySelector('p.qat-saved').hidden), true);
  await s.page.waitForFunction(async () => !(await (await import('./www/saved-run.js')).loadRun()), null, { timeout: 10_000 });
});

test('an upload with its NMS inside (Ultralytics nms=True) fine-tunes on its raw heads, and the result says so', async () => {
  await det().locator('input[name=model]').setInputFiles('tests/fixtures/ultralytics/yolo11_nms.onnx');
  await s.page.waitForFunction(() => {
    const el = document.querySelector('qplay-detector');
    return !el.running && el.modelName === 'yolo11_nms.onnx' && el.result;
  }, null, { timeout: 180_000 });
  await quantizeNow();
  await set('qatSteps', 2); await set('qatBatch', 1); await set('qatEvery', 1);
  await det().locator('button[name=qat-start]').click();
  await ended();
  assert.equal(await det().evaluate((el) => el.shadowRoot.querySelector('.qat-result').dataset.outcome), 'done', await text('.qat-result'));
  assert.match(await text('.qat-result'), /compared the raw tensors \S.* in place of output0, which the model's own post-processing selects from them/);
  const r = await det().evaluate((el) => el.qat.result);
  assert.deepEqual(r.targets.replaced, ['output0']);
  assert.ok(r.curve.slice(1).every((p) => Number.isFinite(p.loss)), JSON.stringify(r.curve));
  await det().locator('fieldset.qat').screenshot({ path: `${ARTIFACTS}qat-nms-upload.png` });
});

test('no page errors', () => assert.deepEqual(s.errors, []));
