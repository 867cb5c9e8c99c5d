// qplay vs onnxruntime-web on one model: same deterministic input, outputs compared, then warm-up
// and timed runs, the two engines interleaved run by run. This module runs in a dedicated worker
// (page.js starts it; wasm threads may block only off the main thread): it posts {type: 'status'},
// then {type: 'done', bench} ({results, agreement, userAgent, threads, ...}) or {type: 'error',
// error, stage}; page.js puts them in `window.__bench` for scripts/bench.mjs and the tests, and in
// a table. Both engines: wasm, fp32, with the same number of threads (?threads=N, default 1:
// qplay's threaded module with a pool of N, onnxruntime-web's ort.env.wasm.numThreads = N).
// Then, unless ?webgpu=0 or there is no adapter, the WebGPU engines (qplay FP32 and INT8,
// onnxruntime-web's webgpu provider FP32), interleaved in their own loop (?giters, ?gwarmup).
import { startWasm } from '/www/threads.js';

const ORT_DIST = '/node_modules/onnxruntime-web/dist/';
let stage = 'reading parameters';
let WasmGpu, WasmModel, WasmQuantizer, inspectModel, version;
let simd = null; // the int8 kernels' instructions: relaxed-simd or simd128

function status(text) {
  stage = text;
  postMessage({ type: 'status', text });
}

function fail(message) {
  postMessage({ type: 'error', error: String(message), stage, userAgent: navigator.userAgent });
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
const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

async function main(q) {
  const modelParam = q.get('model');
  if (!modelParam) throw new Error('no model: add ?model=www/models/blazeface_short.onnx (a URL relative to the served root)');
  const iters = intParam(q, 'iters', 10, 1);
  const warmup = intParam(q, 'warmup', 3, 0);
  const seed = intParam(q, 'seed', 1, 0);
  const threads = intParam(q, 'threads', 1, 1);
  // ?gap=MS: an idle pause after each run (as between a camera's frames), so that one engine's
  // threads, still spinning after its run, do not share the cores with the next engine's run.
  const gap = intParam(q, 'gap', 0, 0);
  // ?block=N: each engine runs N timed runs in a row per turn, after one untimed run (the one
  // that shares the cores with the previous engine's lingering threads), turns alternating
  // until every engine has its iters: each engine as a page runs it alone, back to back,
  // with slow drifts in the machine's load still shared by turns.
  const block = intParam(q, 'block', 1, 1);
  const modelUrl = new URL(modelParam, `${location.origin}/`).href;

  status('fetching the model');
  const resp = await fetch(modelUrl);
  if (!resp.ok) throw new Error(`cannot fetch ${modelUrl}: HTTP ${resp.status} ${resp.statusText}`.trim());
  const bytes = new Uint8Array(await resp.arrayBuffer());

  status(`loading qplay (wasm, ${threads} thread${threads > 1 ? 's' : ''})`);
  const w = await startWasm(new URLSearchParams({ threads, relaxed: q.get('relaxed') ?? '1' }));
  if (w.threads !== threads) throw new Error(`qplay runs ${w.threads} thread(s), not ${threads}: ${w.note}`);
  ({ WasmGpu, WasmModel, WasmQuantizer, inspectModel, version } = w.mod);
  simd = w.mod.simdName();
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

  // INT8: a QDQ model given with ?int8=URL, or quantized here from the sample photos
  // (?calib=a.jpg,b.jpg under www/samples/, with the model's profile when ?profile=URL).
  let int8 = null;
  let int8Source = null;
  let quantizeSeconds = null; // calibration and quantization, timed here
  if (q.get('int8')) {
    status('fetching the INT8 model');
    const r = await fetch(new URL(q.get('int8'), `${location.origin}/`).href);
    if (!r.ok) throw new Error(`cannot fetch the INT8 model ${q.get('int8')}: HTTP ${r.status}`);
    int8 = new Uint8Array(await r.arrayBuffer());
    int8Source = q.get('int8');
  } else if (q.get('calib')) {
    let profile;
    if (q.get('profile')) {
      const r = await fetch(new URL(q.get('profile'), `${location.origin}/`).href);
      if (!r.ok) throw new Error(`cannot fetch the profile ${q.get('profile')}: HTTP ${r.status}`);
      profile = await r.text();
    }
    const quantizer = new WasmQuantizer(bytes, profile);
    const names = q.get('calib').split(',').filter(Boolean);
    for (const [i, name] of names.entries()) {
      status(`calibration image ${i + 1}/${names.length}`);
      const r = await fetch(new URL(`/www/samples/${name}`, location.origin).href);
      const bmp = await createImageBitmap(await r.blob());
      const c = new OffscreenCanvas(bmp.width, bmp.height);
      const ctx = c.getContext('2d');
      ctx.drawImage(bmp, 0, 0);
      quantizer.addImage(bmp.width, bmp.height, ctx.getImageData(0, 0, bmp.width, bmp.height).data);
    }
    status('quantizing (defaults)');
    const t0 = performance.now();
    quantizer.run({ method: 'mse', originalBytes: bytes.byteLength });
    quantizeSeconds = round3((performance.now() - t0) / 1000);
    int8Source = `quantized in this page from ${names.length} sample photos with the defaults in ${quantizeSeconds.toFixed(1)} s (${threads} thread${threads > 1 ? 's' : ''})`;
    int8 = quantizer.onnxBytes();
    quantizer.free();
  }
  let qint8 = null;
  if (int8) {
    status('planning the INT8 model in qplay');
    qint8 = new WasmModel(int8, shape);
  }

  status('loading onnxruntime-web (wasm)');
  const ort = await import(`${ORT_DIST}ort.wasm.min.mjs`);
  ort.env.wasm.wasmPaths = new URL(ORT_DIST, location.origin).href;
  ort.env.wasm.numThreads = threads;
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
    { engine: 'qplay', precision: 'fp32', run: runQplay, warm: [], runs: [] },
    { engine: 'onnxruntime-web', precision: 'fp32', run: runOrt, warm: [], runs: [] },
  ];
  let int8Agreement = null;
  if (qint8) {
    const runInt8 = () => qint8.run(x);
    // How far INT8 is from FP32 on this input (the same first output).
    const o8 = runInt8();
    let num = 0, den = 0;
    for (let i = 0; i < o8.length; i++) { num += ours[i] * ours[i]; den += (o8[i] - ours[i]) ** 2; }
    int8Agreement = { output: outName, sqnr_db_vs_fp32: round3(10 * Math.log10(num / Math.max(den, 1e-30))), source: int8Source };
    engines.push({ engine: 'qplay', precision: 'int8', run: runInt8, warm: [], runs: [] });
  }
  const once = async (e, into) => {
    const t0 = performance.now();
    await e.run();
    into.push(performance.now() - t0);
  };
  for (let i = 0; i < warmup; i++) {
    status(`warm-up ${i + 1}/${warmup} (excluded from the results)`);
    for (const e of engines) { await once(e, e.warm); await tick(gap); }
  }
  if (block === 1) {
    for (let i = 0; i < iters; i++) {
      status(`timed run ${i + 1}/${iters}`);
      for (const e of engines) { await once(e, e.runs); await tick(gap); }
    }
  } else {
    for (let i = 0; i < iters; i += block) {
      status(`timed runs ${i + 1}–${Math.min(i + block, iters)}/${iters}, ${block} in a row per engine`);
      for (const e of engines) {
        await once(e, e.settle ??= []);
        await tick(gap);
        for (let j = i; j < Math.min(i + block, iters); j++) { await once(e, e.runs); await tick(gap); }
      }
    }
  }

  const results = engines.map((e) => ({
    engine: e.engine, backend: 'wasm', precision: e.precision, threads,
    median_ms: round3(median(e.runs)), min_ms: round3(Math.min(...e.runs)),
    runs: e.runs.map(round3), warmup_runs_excluded: e.warm.map(round3),
    ...(e.settle ? { block_first_runs_excluded: e.settle.map(round3) } : {}),
  }));
  const bench = {
    results, agreement, int8: int8Agreement, userAgent: navigator.userAgent, threads, simd, gap_ms: gap, block, quantize_seconds: quantizeSeconds,
    hardware_concurrency: navigator.hardwareConcurrency, model: modelParam, input: input.name, shape, iters, warmup,
    order: `interleaved per run: ${engines.map((e) => `${e.engine} ${e.precision}`).join(', ')}, …`,
    versions: { qplay: version(), 'onnxruntime-web': ort.env.versions?.web ?? null },
    ratio_median_qplay_over_ort: round3(results[0].median_ms / results[1].median_ms),
    ratio_min_qplay_over_ort: round3(results[0].min_ms / results[1].min_ms),
    // Run i of each engine ran back to back, so their ratio cancels slow drifts in machine load.
    ratio_paired_median_qplay_over_ort: round3(median(engines[0].runs.map((t, i) => t / engines[1].runs[i]))),
    ...(qint8 ? {
      ratio_median_int8_over_ort_fp32: round3(engines[2].runs.length && median(engines[2].runs) / results[1].median_ms),
      ratio_median_int8_over_qplay_fp32: round3(median(engines[2].runs) / results[0].median_ms),
      ratio_min_int8_over_ort_fp32: round3(results[2].min_ms / results[1].min_ms),
      ratio_min_int8_over_qplay_fp32: round3(results[2].min_ms / results[0].min_ms),
      ratio_paired_median_int8_over_ort_fp32: round3(median(engines[2].runs.map((t, i) => t / engines[1].runs[i]))),
    } : {}),
    date: new Date().toISOString(),
  };
  if (q.get('webgpu') !== '0') {
    const g = await benchWebGpu({ q, bytes, shape, x, qmodel, qint8, cpuOut: ours });
    bench.webgpu = g.info;
    if (g.results.length) {
      results.push(...g.results);
      const by = (eng, prec) => g.results.find((r) => r.engine === eng && r.precision === prec);
      const ortG = by('onnxruntime-web', 'fp32');
      const [qf, qi] = [by('qplay', 'fp32'), by('qplay', 'int8')];
      if (ortG && qi) bench.ratio_median_webgpu_int8_over_ort_webgpu_fp32 = round3(qi.median_ms / ortG.median_ms);
      if (ortG && qf) bench.ratio_median_webgpu_fp32_over_ort_webgpu_fp32 = round3(qf.median_ms / ortG.median_ms);
      if (qf && qi) bench.ratio_median_webgpu_int8_over_webgpu_fp32 = round3(qi.median_ms / qf.median_ms);
    }
  }
  // One profiled run of each qplay model: time per op type, for finding where INT8 spends it.
  const byOp = (m) => {
    const t = {};
    for (const s of m.profile(x)) t[s.op] = round3((t[s.op] ?? 0) + s.ms);
    return t;
  };
  bench.profile_ms_by_op = { qplay_fp32: byOp(qmodel), ...(qint8 ? { qplay_int8: byOp(qint8) } : {}) };
  // Every step's minimum over five profiled runs, for grouping by layer (the --json file).
  const steps = (m) => {
    const runs = Array.from({ length: 5 }, () => m.profile(x));
    return runs[0].map((s, i) => ({ ...s, ms: round3(Math.min(...runs.map((r) => r[i].ms))) }));
  };
  bench.profile_steps = { qplay_fp32: steps(qmodel), ...(qint8 ? { qplay_int8: steps(qint8) } : {}) };
  const slowest = (m) => m.profile(x).sort((a, b) => b.ms - a.ms).slice(0, 8).map((s) => ({ ...s, ms: round3(s.ms) }));
  bench.profile_slowest_steps = { qplay_fp32: slowest(qmodel), ...(qint8 ? { qplay_int8: slowest(qint8) } : {}) };
  qmodel.free();
  qint8?.free();
  await session.release();
  status('done');
  postMessage({ type: 'done', bench });
}

/**
 * The WebGPU engines: qplay's GPU executor (FP32, and INT8 when there is an INT8 model) and
 * onnxruntime-web's webgpu provider (FP32, its own bundle), each checked against its CPU output
 * first, then warm-up and timed runs interleaved. Returns {info, results}; info.skipped says why
 * when nothing ran.
 */
async function benchWebGpu({ q, bytes, shape, x, qmodel, qint8, cpuOut }) {
  const iters = intParam(q, 'giters', 3, 1);
  const warmup = intParam(q, 'gwarmup', 1, 0);
  if (!('gpu' in navigator)) return { info: { skipped: 'no WebGPU in this browser (navigator.gpu)' }, results: [] };
  status('opening WebGPU');
  let gpu;
  try { gpu = await WasmGpu.create(); } catch (e) { return { info: { skipped: e.message }, results: [] }; }
  const a = await navigator.gpu.requestAdapter();
  const info = {
    adapter: [a?.info?.vendor, a?.info?.architecture, a?.info?.device, a?.info?.description].filter(Boolean).join(' ') || 'unnamed',
    fallback_adapter: Boolean(a?.isFallbackAdapter || a?.info?.isFallbackAdapter),
    dot4I8Packed: gpu.packedDot(), iters, warmup,
  };
  status('placing qplay FP32 on WebGPU');
  info.qplay_fp32_placement = await qmodel.useGpu(gpu);
  const engines = [];
  const gF = await qmodel.runGpu(x);
  info.qplay_fp32_vs_cpu = compare(gF, cpuOut);
  engines.push({ engine: 'qplay', precision: 'fp32', run: () => qmodel.runGpu(x), warm: [], runs: [] });
  if (qint8) {
    status('placing qplay INT8 on WebGPU');
    info.qplay_int8_placement = await qint8.useGpu(gpu);
    const g8 = await qint8.runGpu(x);
    const c8 = qint8.run(x);
    info.qplay_int8_vs_cpu_values_differing = g8.reduce((n, v, i) => n + (Object.is(v, c8[i]) ? 0 : 1), 0);
    engines.push({ engine: 'qplay', precision: 'int8', run: () => qint8.runGpu(x), warm: [], runs: [] });
  }
  status('loading onnxruntime-web (webgpu)');
  let session = null;
  try {
    const ortg = await import(`${ORT_DIST}ort.webgpu.min.mjs`);
    ortg.env.wasm.wasmPaths = new URL(ORT_DIST, location.origin).href;
    ortg.env.wasm.numThreads = 1;
    ortg.env.wasm.proxy = false;
    ortg.env.logLevel = 'error';
    session = await ortg.InferenceSession.create(bytes.slice(), { executionProviders: ['webgpu'] });
    const feeds = { [session.inputNames[0]]: new ortg.Tensor('float32', x, shape) };
    const out = session.outputNames[0];
    const o = (await session.run(feeds))[out];
    info.ort_webgpu_vs_qplay_cpu = compare(o.data, cpuOut);
    engines.push({ engine: 'onnxruntime-web', precision: 'fp32', run: async () => (await session.run(feeds))[out].data, warm: [], runs: [] });
  } catch (e) {
    info.ort_webgpu_error = String(e?.message ?? e);
  }
  const once = async (e, into) => {
    const t0 = performance.now();
    await e.run();
    into.push(performance.now() - t0);
  };
  for (let i = 0; i < warmup; i++) {
    for (const e of engines) { status(`WebGPU warm-up ${i + 1}/${warmup}: ${e.engine} ${e.precision}`); await once(e, e.warm); await tick(); }
  }
  for (let i = 0; i < iters; i++) {
    for (const e of engines) { status(`WebGPU timed run ${i + 1}/${iters}: ${e.engine} ${e.precision}`); await once(e, e.runs); await tick(); }
  }
  await session?.release();
  gpu.free();
  const results = engines.map((e) => ({
    engine: e.engine, backend: 'webgpu', precision: e.precision,
    median_ms: round3(median(e.runs)), min_ms: round3(Math.min(...e.runs)),
    runs: e.runs.map(round3), warmup_runs_excluded: e.warm.map(round3),
  }));
  return { info, results };
}

onmessage = (ev) => { main(new URLSearchParams(ev.data.search)).catch((e) => { console.warn(e); fail(e?.message ?? e); }); };
