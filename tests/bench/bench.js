// qplay vs onnxruntime-web on one model: same deterministic input, outputs compared, then warm-up
// and timed runs, the two engines interleaved run by run. Results go to `window.__bench`
// ({results, agreement, userAgent, ...} or {error, stage}) for scripts/bench.mjs and the tests,
// and to a table for a human. Both engines: wasm, fp32, one thread, on the page's main thread.
import init, { WasmModel, inspectModel, version } from '/www/pkg/qplay_wasm.js';

const ORT_DIST = '/node_modules/onnxruntime-web/dist/';
const $ = (id) => document.getElementById(id);
let stage = 'reading parameters';

function status(text) {
  stage = text;
  window.__benchStatus = text;
  $('status').textContent = text;
}

function fail(message) {
  const error = String(message);
  window.__bench = { error, stage, userAgent: navigator.userAgent };
  const el = $('status');
  el.textContent = `error while ${stage}: ${error}`;
  el.className = 'error';
}

function intParam(q, name, dflt, min) {
  const raw = q.get(name);
  if (raw === null || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer ≥ ${min}, got "${raw}"`);
  return n;
}

/**
 * The input shape to plan and run: `shape=` as given; else the model's input shape with `size=WxH`
 * put in its spatial dims (NCHW when dim 1 looks like channels, NHWC when the last dim does) and a
 * dynamic batch set to 1; else the static shape. Dynamic dims without `size` are an error.
 */
export function resolveShape(input, { shape, size }) {
  const dims = input.shape; // numbers, null for dynamic
  const show = `[${dims.map((d) => d ?? '?').join(', ')}]`;
  if (shape) {
    const s = shape.split(/[,x×]/).map(Number);
    if (s.some((d) => !Number.isInteger(d) || d < 1)) throw new Error(`shape must be positive integers like 1,3,224,224, got "${shape}"`);
    if (s.length !== dims.length) throw new Error(`shape ${s.join('×')} has rank ${s.length}; input "${input.name}" ${show} has rank ${dims.length}`);
    return s;
  }
  const out = dims.slice();
  if (size) {
    const m = /^(\d+)[x×](\d+)$/.exec(size);
    if (!m) throw new Error(`size must be WxH, like 320x240, got "${size}"`);
    const [w, h] = [Number(m[1]), Number(m[2])];
    if (w < 1 || h < 1) throw new Error(`size must be positive, got "${size}"`);
    if (dims.length !== 4) throw new Error(`size=WxH needs a rank-4 image input; "${input.name}" is ${show}: pass shape=… instead`);
    const isC = (d) => d === 1 || d === 3 || d === 4;
    const nhwc = !isC(dims[1]) && isC(dims[3]);
    const [hi, wi] = nhwc ? [1, 2] : [2, 3];
    out[hi] = h;
    out[wi] = w;
    if (out[0] === null) out[0] = 1;
  }
  const dynamic = out.map((d, i) => (d === null ? i : -1)).filter((i) => i >= 0);
  if (dynamic.length) {
    const hint = dims.length === 4 ? 'pass --size WxH (or --shape)' : 'pass --shape';
    throw new Error(`input "${input.name}" ${show} has dynamic dims (${dynamic.map((i) => `#${i}`).join(', ')}): ${hint}`);
  }
  return out;
}

/** Deterministic uniform data in [-1, 1) (mulberry32), the range both built-in models expect. */
function makeInput(n, seed) {
  let a = seed >>> 0;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    x[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return x;
}

function compare(ours, ref) {
  let maxAbs = 0, sumAbs = 0, lo = Infinity, hi = -Infinity, argmax = -1, nonFinite = 0;
  for (let i = 0; i < ref.length; i++) {
    const r = ref[i], q = ours[i];
    if (!Number.isFinite(r) || !Number.isFinite(q)) { if (!(Object.is(r, q))) nonFinite++; continue; }
    if (r < lo) lo = r;
    if (r > hi) hi = r;
    const d = Math.abs(q - r);
    sumAbs += d;
    if (d > maxAbs) { maxAbs = d; argmax = i; }
  }
  const range = hi - lo;
  return {
    elements: ref.length, max_abs_diff: maxAbs, mean_abs_diff: sumAbs / Math.max(1, ref.length),
    output_min: lo, output_max: hi, output_range: range,
    max_abs_diff_over_range: range > 0 ? maxAbs / range : (maxAbs === 0 ? 0 : Infinity),
    worst_index: argmax, mismatched_non_finite: nonFinite,
  };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round3 = (x) => Math.round(x * 1000) / 1000;
const tick = () => new Promise((r) => setTimeout(r, 0));

async function main() {
  const q = new URLSearchParams(location.search);
  const modelParam = q.get('model');
  if (!modelParam) throw new Error('no model: add ?model=www/models/blazeface_short.onnx (a URL relative to the served root)');
  const iters = intParam(q, 'iters', 10, 1);
  const warmup = intParam(q, 'warmup', 3, 0);
  const seed = intParam(q, 'seed', 1, 0);
  const modelUrl = new URL(modelParam, `${location.origin}/`).href;

  status('fetching the model');
  const resp = await fetch(modelUrl);
  if (!resp.ok) throw new Error(`cannot fetch ${modelUrl}: HTTP ${resp.status} ${resp.statusText}`.trim());
  const bytes = new Uint8Array(await resp.arrayBuffer());

  status('loading qplay (wasm)');
  await init();
  status('reading the model\'s input');
  const summary = inspectModel(bytes);
  if (summary.inputs.length !== 1) throw new Error(`qplay's WasmModel takes one input; this model has ${summary.inputs.length}`);
  const input = summary.inputs[0];
  if (input.dtype !== 'float32') throw new Error(`input "${input.name}" is ${input.dtype}; the bench feeds float32`);
  const shape = resolveShape(input, { shape: q.get('shape'), size: q.get('size') });
  const n = shape.reduce((a, b) => a * b, 1);

  status('planning the model in qplay');
  let qmodel;
  try {
    qmodel = new WasmModel(bytes, shape);
  } catch (e) {
    const unsupported = summary.unsupported.map(([op]) => op);
    throw new Error(`qplay cannot run this model: ${e.message}${unsupported.length ? ` (unsupported ops: ${unsupported.join(', ')})` : ''}`);
  }

  status('loading onnxruntime-web (wasm)');
  const ort = await import(`${ORT_DIST}ort.wasm.min.mjs`);
  ort.env.wasm.wasmPaths = new URL(ORT_DIST, location.origin).href;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = 'error';
  const session = await ort.InferenceSession.create(bytes.slice(), { executionProviders: ['wasm'] });
  const inName = session.inputNames[0];
  const outName = session.outputNames[0];

  const x = makeInput(n, seed);
  const feeds = { [inName]: new ort.Tensor('float32', x, shape) };
  const runQplay = () => qmodel.run(x);
  const runOrt = async () => (await session.run(feeds))[outName];

  status('checking that the outputs agree');
  const ours = runQplay();
  const refT = await runOrt();
  const ref = refT.data;
  if (ours.length !== ref.length) {
    throw new Error(`first outputs differ in size: qplay ${ours.length} values, onnxruntime-web ${ref.length} (${outName} [${refT.dims.join(', ')}])`);
  }
  const agreement = { output: outName, output_shape: [...refT.dims], reference: 'onnxruntime-web', seed, input_range: [-1, 1], ...compare(ours, ref) };

  const engines = [
    { engine: 'qplay', run: runQplay, warm: [], runs: [] },
    { engine: 'onnxruntime-web', run: runOrt, warm: [], runs: [] },
  ];
  const once = async (e, into) => {
    const t0 = performance.now();
    await e.run();
    into.push(performance.now() - t0);
  };
  for (let i = 0; i < warmup; i++) {
    status(`warm-up ${i + 1}/${warmup} (excluded from the results)`);
    for (const e of engines) { await once(e, e.warm); await tick(); }
  }
  for (let i = 0; i < iters; i++) {
    status(`timed run ${i + 1}/${iters}`);
    for (const e of engines) { await once(e, e.runs); await tick(); }
  }

  const results = engines.map((e) => ({
    engine: e.engine, backend: 'wasm', precision: 'fp32', threads: 1,
    median_ms: round3(median(e.runs)), min_ms: round3(Math.min(...e.runs)),
    runs: e.runs.map(round3), warmup_runs_excluded: e.warm.map(round3),
  }));
  const bench = {
    results, agreement, userAgent: navigator.userAgent,
    model: modelParam, input: input.name, shape, iters, warmup,
    order: 'interleaved per run: qplay, onnxruntime-web, qplay, onnxruntime-web, …',
    versions: { qplay: version(), 'onnxruntime-web': ort.env.versions?.web ?? null },
    ratio_median_qplay_over_ort: round3(results[0].median_ms / results[1].median_ms),
    // Run i of each engine ran back to back, so their ratio cancels slow drifts in machine load.
    ratio_paired_median_qplay_over_ort: round3(median(engines[0].runs.map((t, i) => t / engines[1].runs[i]))),
    date: new Date().toISOString(),
  };
  qmodel.free();
  await session.release();
  render(bench);
  status('done');
  window.__bench = bench;
}

function render(b) {
  const meta = {
    model: b.model, input: `${b.input} [${b.shape.join('×')}]`,
    runs: `${b.iters} timed per engine, ${b.warmup} warm-up excluded; ${b.order}`,
    agreement: `max |Δ| ${b.agreement.max_abs_diff.toExponential(2)} over output range ${b.agreement.output_range.toPrecision(4)} `
      + `(${b.agreement.max_abs_diff_over_range.toExponential(2)} of range), ${b.agreement.output} [${b.agreement.output_shape.join('×')}]`,
    versions: `qplay ${b.versions.qplay}, onnxruntime-web ${b.versions['onnxruntime-web']}`,
    browser: b.userAgent,
  };
  $('meta').replaceChildren(...Object.entries(meta).flatMap(([k, v]) => {
    const dt = document.createElement('dt'); dt.textContent = k;
    const dd = document.createElement('dd'); dd.textContent = v;
    return [dt, dd];
  }));
  $('results').querySelector('tbody').replaceChildren(...b.results.map((r) => {
    const tr = document.createElement('tr');
    for (const [v, num] of [[r.engine], [r.backend], [r.precision], [r.median_ms.toFixed(2), 1], [r.min_ms.toFixed(2), 1], [r.runs.length, 1]]) {
      const td = document.createElement('td');
      td.textContent = v;
      if (num) td.className = 'num';
      tr.append(td);
    }
    return tr;
  }));
  $('results').hidden = false;
  $('ratio').textContent = `qplay / onnxruntime-web (median): ${b.ratio_median_qplay_over_ort.toFixed(2)}×; `
    + `median of per-run ratios: ${b.ratio_paired_median_qplay_over_ort.toFixed(2)}×`;
}

main().catch((e) => { console.warn(e); fail(e?.message ?? e); });
