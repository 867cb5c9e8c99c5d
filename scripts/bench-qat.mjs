// `node scripts/bench-qat.mjs [--model person|face] [--steps N] [--batch B] [--every K] [--wbits 8|4] [--threads T]`:
// fine-tuning (QAT) in the page, timed: headless Chromium opens the playground, quantizes the
// built-in model with the sample photos, runs N steps at batch B in the Fine-tune box and prints
// seconds per step, the held-out SQNR and agreement of PTQ and of the kept step, and the worker's
// wasm memory. `--threads T`: the detector's Threads setting (default: the page's, min(cores, 8));
// the images of a batch train on the threads at once. Needs the wasm build (npm run build:wasm). Not part of `npm test` (minutes).
import { parseArgs } from 'node:util';
import { open } from '../tests/browser.mjs';

const { values: a } = parseArgs({ options: {
  model: { type: 'string', default: 'person' }, steps: { type: 'string', default: '100' },
  batch: { type: 'string', default: '4' }, every: { type: 'string', default: '10' }, wbits: { type: 'string', default: '8' },
  threads: { type: 'string' },
} });
const s = await open(a.threads ? `index.html#detector.threads=${a.threads}` : 'index.html');
const det = () => s.page.locator('qplay-detector');
const idle = () => s.page.waitForFunction(() => { const el = document.querySelector('qplay-detector'); return el?.result && !el.running; }, null, { timeout: 300_000 });
await idle();
const threads = await s.page.evaluate(() => document.querySelector('qplay-detector').threadsInUse?.count ?? 1);
if (a.model !== 'person') { await det().locator('select[name=builtin]').selectOption(a.model); await s.page.waitForTimeout(500); await idle(); }
await det().locator('select[name=weightBits]').selectOption(a.wbits);
let t = performance.now();
await det().locator('button[name=quantize]').click();
await s.page.waitForFunction(() => { const el = document.querySelector('qplay-detector'); return el.int8 && !el.quantizing; }, null, { timeout: 900_000 });
const quantizeS = (performance.now() - t) / 1000;
for (const [n, v] of [['qatSteps', a.steps], ['qatBatch', a.batch], ['qatEvery', a.every]]) await det().locator(`input[name=${n}]`).fill(v);
const memory = [];
await s.page.exposeFunction('benchMemory', (m) => memory.push(m));
await det().evaluate((el) => el.addEventListener('qplay-qat-step', (e) => window.benchMemory(e.detail.memory)));
t = performance.now();
await det().locator('button[name=qat-start]').click();
await s.page.waitForFunction(() => { const el = document.querySelector('qplay-detector'); return el.qat && !el.qat.running && el.shadowRoot.querySelector('.qat-result').dataset.outcome; }, null, { timeout: 7_200_000 });
const qatS = (performance.now() - t) / 1000;
const r = await det().evaluate((el) => el.qat.result);
const at = (k) => r.curve.find((p) => p.step === k);
console.log(JSON.stringify({
  model: a.model, threads, weight_bits: Number(a.wbits), steps: Number(a.steps), batch: Number(a.batch), quantize_s: quantizeS, qat_s: qatS,
  seconds_per_step: r.seconds_per_step, best_step: r.best_step, ptq_sqnr_db: r.ptq_sqnr_db, qat_sqnr_db: r.qat_sqnr_db,
  ptq_agreement: at(0)?.agreement ?? null, qat_agreement: at(r.best_step)?.agreement ?? null,
  wasm_memory_first_last: [memory[0], memory.at(-1)], page_errors: s.errors,
}, null, 1));
console.log(await det().evaluate((el) => el.shadowRoot.querySelector('.qat-result').textContent));
await s.close();
