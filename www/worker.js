// The Web Worker that owns the wasm detector: loading, planning and inference run here so the
// page never freezes. Messages in: {id, type: 'load'|'detect'|'thresholds'|'quantize'|'backend'|
// 'qat-start'|'qat-pause'|'qat-resume'|'qat-stop'|'stop-flag'}; out: {id, ok, ...} plus {type: 'progress',
// stage} while loading, and {type: 'event', kind: 'qat-…'} while fine-tuning. Requests run one at a
// time, in order (a GPU run awaits the device between its steps; nothing else may touch the models
// then); fine-tuning runs one step per turn of that queue, so frames interleave with its steps.
// The wasm module is the threaded one, with a pool of N threads, when the page is cross-origin
// isolated (threads.js; N from the URL's `threads`); every backend report says how many run.
import { startWasm } from './threads.js';
import { saveRun, clearRun } from './saved-run.js';

// The wasm module (threaded or not: threads.js) and its pool start at load; requests wait for it.
let WasmComparison, WasmDetector, WasmGpu, WasmQat, WasmQuantizer, inspectModel, convertToOnnx, externalDataFiles, inlineExternalData, version;
let threads = { count: 1, note: null }; // how many threads run, and why one when one
const ready = startThreads();
let detector = null;
let int8 = null; // the quantized model, when the user has made one
// Which INT8 model `int8` is (bumped each time it changes: a quantization, a fine-tuning update);
// frames say which one they ran, so the page never labels one model's boxes with another's.
let int8Version = Math.floor(Math.random() * 1e9);
let int8Bytes = null; // its ONNX bytes (the PTQ model fine-tuning starts from)
let calibImages = null; // the last quantization's calibration images [{name, width, height, rgba}]
// Fine-tuning: {t: WasmQat, state: 'running' | 'paused' | 'ended', started, profile}.
let qat = null;
let model = null; // { bytes, profile } of the FP32 model, for quantization
let probed = false; // whether the pixel-scaling probe has run for the model in use
// The backend: 'cpu', or 'webgpu' once a device opened and the models' plans are on it.
let backend = 'cpu';
let gpu = null; // WasmGpu
let gpuName = '';
let gpuNote = null; // why the last WebGPU request fell back to the CPU, or how the device was recovered
// The models that have run a frame on this GPU device: a model's first frame on a device includes
// compiling its kernels (the browser finishes building the pipelines when they are first used), so
// its timings are a warm-up.
let warmed = new WeakSet();

/** Opens a (new) WebGPU device. */
async function openGpu() {
  try { gpu?.free(); } catch { /* already freed */ }
  gpu = null;
  warmed = new WeakSet(); // a new device compiles every kernel again
  gpu = await WasmGpu.create();
  // wgpu's WebGPU backend leaves the adapter's name empty: ask the browser (GPUAdapterInfo).
  try {
    const a = await navigator.gpu.requestAdapter();
    const i = a?.info ?? {};
    gpuName = [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' ') || 'an unnamed adapter';
    if (a?.isFallbackAdapter || i.isFallbackAdapter) gpuName += ' (fallback adapter)';
  } catch { gpuName = 'an unnamed adapter'; }
}

/** Puts the loaded models on the GPU; returns their placement summaries. */
async function placeOnGpu() {
  const fp32 = detector ? await detector.useGpu(gpu) : null;
  const q = int8 ? await int8.useGpu(gpu) : null;
  return { fp32, int8: q };
}

function toCpu(why) {
  backend = 'cpu';
  gpuNote = why;
  detector?.useCpu();
  int8?.useCpu();
}

/** Switches to `want` ('cpu' | 'webgpu'); on any WebGPU failure stays on the CPU and says why. */
async function setBackend(want) {
  if (want !== 'webgpu') { toCpu(null); return backendInfo(); }
  try {
    if (!gpu || gpu.lost()) await openGpu();
    const placed = await placeOnGpu();
    backend = 'webgpu';
    gpuNote = null;
    return backendInfo(placed);
  } catch (e) {
    toCpu(`WebGPU failed: ${e?.message ?? e}`);
    return backendInfo();
  }
}

/** Loads the wasm module and starts its pool (threads.js); resolves to {memory}. */
async function startThreads() {
  const w = await startWasm(new URL(self.location.href).searchParams);
  ({ WasmComparison, WasmDetector, WasmGpu, WasmQat, WasmQuantizer, inspectModel, convertToOnnx, externalDataFiles, inlineExternalData, version } = w.mod);
  threads = { count: w.threads, note: w.note, simd: w.mod.simdName?.() ?? null };
  return { memory: w.memory };
}

function backendInfo(placed) {
  return {
    backend, note: gpuNote, threads: threads.count, threadsNote: threads.note, simd: threads.simd,
    adapter: backend === 'webgpu' ? gpuName : null,
    packedDot: backend === 'webgpu' ? gpu.packedDot() : null,
    placement: placed ?? null,
  };
}

/** A model just made (loaded or quantized) follows the backend in use. */
async function follow(d) {
  if (backend !== 'webgpu' || !d) return null;
  try { return await d.useGpu(gpu); } catch (e) { toCpu(`WebGPU failed: ${e?.message ?? e}`); return null; }
}

function progress(id, stage) { postMessage({ id, type: 'progress', stage }); }

// The page's stop flag (engine.js stopWork): it holds the id of the request to stop. Long work
// reads it between its stages and stops there with the code `cancelled`, keeping the models.
let stopFlag = null;
function stopAsked(id) { return stopFlag !== null && Atomics.load(stopFlag, 0) === id; }
function throwIfStopped(id) {
  if (stopAsked(id)) throw Object.assign(new Error('cancelled'), { code: 'cancelled' });
}

const handlers = {
  async 'stop-flag'({ flag }) {
    stopFlag = new Int32Array(flag);
    return { ok: true };
  },
  async load({ id, bytes, profile }) {
    progress(id, 'parsing the model file');
    const summary = inspectModel(new Uint8Array(bytes));
    progress(id, 'planning (shape inference, constant folding)');
    let next;
    try {
      next = new WasmDetector(new Uint8Array(bytes), profile ?? undefined);
    } catch (e) {
      // The model in use stays loaded (the page keeps showing it); the summary says what this one is.
      return { ok: false, error: e.message, code: e.code, summary };
    }
    // Only a model that loaded replaces the one in use.
    detector?.free();
    int8?.free();
    endQat();
    detector = next;
    int8 = null;
    int8Bytes = null;
    int8Version++;
    probed = false;
    model = { bytes, profile };
    if (backend === 'webgpu') progress(id, 'preparing the WebGPU kernels');
    const placement = await follow(detector);
    return { ok: true, ...detector.info(), version: version(), backend: backendInfo(placement ? { fp32: placement } : null) };
  },
  // The files an ONNX model keeps its weights in (PyTorch's `model.onnx.data`), put inside it from
  // the files given with it (matched by location, else by file name): {needed, missing, bytes},
  // `bytes` the self-contained model when something was put inside.
  async 'external-data'({ bytes, files }) {
    const needed = externalDataFiles(new Uint8Array(bytes));
    const base = (p) => p.split(/[\\/]/).pop();
    const pick = (loc) => files.find((f) => f.name === loc) ?? files.find((f) => f.name === base(loc));
    const missing = needed.filter((loc) => !pick(loc));
    if (!needed.length || missing.length) return { ok: true, needed, missing };
    const out = inlineExternalData(new Uint8Array(bytes), needed, needed.map((loc) => new Uint8Array(pick(loc).bytes)));
    return { ok: true, needed, missing, bytes: out.buffer };
  },
  // The model in use written as ONNX (a TFLite file's "Download as ONNX"), checked by running it back.
  // `form: 'integer'`: a full-integer TFLite model in ONNX's integer form (TFLite's arithmetic exactly).
  async 'to-onnx'({ id, form }) {
    if (!model) throw new Error('no model is loaded');
    progress(id, 'writing the model as ONNX and running it back');
    const r = convertToOnnx(new Uint8Array(model.bytes), form === 'integer');
    return { ok: true, bytes: r.onnx.buffer, check: r.check };
  },
  async detect({ width, height, rgba }) {
    if (!detector) throw new Error('no model is loaded');
    const px = new Uint8Array(rgba);
    // An inferred profile's pixel scaling is a guess: the first photo settles it (said in `assumed`).
    let probe = null;
    if (!probed) {
      probed = true;
      const note = detector.probePixelScaling(width, height, px);
      if (note) probe = { note, info: detector.info() };
    }
    let recovered = null;
    let r;
    try {
      r = await runBoth(width, height, px);
    } catch (e) {
      if (backend !== 'webgpu') throw e;
      // A lost device (driver reset, GPU process crash): open a new one, re-place the models, go on.
      await new Promise((r) => setTimeout(r, 0)); // let the device-lost callback run
      const lost = gpu?.lost();
      if (!lost && e?.code !== 'gpu-lost') throw e;
      const why = lost ?? e.message;
      const info = await setBackend('webgpu');
      recovered = info.backend === 'webgpu'
        ? `The GPU device was lost (${why}); a new one was created and detection went on`
        : `The GPU device was lost (${why}) and could not be re-created; back on the CPU: ${info.note}`;
      gpuNote = recovered;
      r = await runBoth(width, height, px);
    }
    // wasm linear memory only grows; the soak test watches it (with the JS heaps) for leaks.
    const gpuBuffers = backend === 'webgpu' ? Array.from(gpu.buffersCreated()) : null;
    return { ok: true, ...r, int8Version, recovered, probe, backend: backendInfo(), memory: (await ready).memory.buffer.byteLength, gpuBuffers };
  },
  /** Detections under another profile of the loaded model (an "also fits" reading), without switching to it. */
  async preview({ profile, width, height, rgba }) {
    if (!detector) throw new Error('no model is loaded');
    return { ok: true, detections: detector.preview(profile, width, height, new Uint8Array(rgba)) };
  },
  async backend({ backend: want }) {
    return { ok: true, ...(await setBackend(want)) };
  },
  /** Destroys the GPU device, as a driver reset would (the recovery test). */
  async 'lose-device'() {
    gpu?.destroyDevice();
    return { ok: true };
  },
  async thresholds({ score, iou }) {
    detector?.setThresholds(score, iou);
    int8?.setThresholds(score, iou);
    return { ok: true };
  },
  async quantize({ id, images, method, perChannel, keepFp32, layerBits, autoMixed, mixedTo, weightBits, rounding, score, iou }) {
    if (!model) throw new Error('load a model first');
    endQat();
    const t0 = performance.now();
    const q = new WasmQuantizer(new Uint8Array(model.bytes), model.profile ?? undefined);
    try {
      images.forEach((im, i) => {
        throwIfStopped(id);
        progress(id, `calibration image ${i + 1} of ${images.length} (${im.name})`);
        q.addImage(im.width, im.height, new Uint8Array(im.rgba));
      });
      const bits = weightBits ?? 8;
      // 'gptq' / 'nearest', or undefined: the default for the width (GPTQ below 8 bits).
      const gptq = rounding === 'gptq' ? true : rounding === 'nearest' ? false : undefined;
      const how = `${method}, ${perChannel ? 'per-channel' : 'per-tensor'} ${bits}-bit weights`;
      // Throwing from the progress callback stops the run there (code `cancelled`).
      const report = q.run({
        method, perChannel, originalBytes: model.bytes.byteLength, keepFp32: keepFp32 ?? [], autoMixed: autoMixed ?? 0,
        mixedTo: mixedTo ?? 'fp32', weightBits: bits, gptq, layerBits: layerBits ?? [],
      }, (stage) => {
        throwIfStopped(id);
        progress(id, `quantizing (${how}): ${stage}`);
      });
      throwIfStopped(id);
      const bytes = q.onnxBytes();
      progress(id, 'loading the INT8 model');
      replaceInt8(new WasmDetector(bytes, profileJson()), score, iou);
      int8Bytes = bytes;
      calibImages = images;
      const seconds = (performance.now() - t0) / 1000;
      if (backend === 'webgpu') progress(id, 'preparing the WebGPU kernels for the INT8 model');
      const placement = await follow(int8);
      return { ok: true, report, seconds, bytes: bytes.buffer, int8Version, backend: backendInfo(placement ? { int8: placement } : null) };
    } finally {
      q.free();
    }
  },
  /** The user's own INT8 model (an ONNX QDQ file, a quantized .tflite) as the INT8 model, read
   * with the FP32 model's profile and compared with it on `images`: detection agreement
   * (mAP@0.5, FP32 as ground truth) and output SQNR. A model that fails to load or to run on
   * them leaves the INT8 model in use as it was. */
  async 'load-int8'({ id, bytes, images, score, iou }) {
    if (!detector) throw Object.assign(new Error('load a model first'), { code: 'no-model' });
    progress(id, 'planning your INT8 model');
    let next;
    try {
      next = new WasmDetector(new Uint8Array(bytes), profileJson());
    } catch (e) {
      throw Object.assign(new Error(`${e.message} (it is read with the FP32 model's profile: both need the same input and outputs)`), { code: e.code });
    }
    const cmp = new WasmComparison();
    try {
      images.forEach((im, i) => {
        throwIfStopped(id);
        progress(id, `comparing with FP32: image ${i + 1} of ${images.length} (${im.name})`);
        cmp.add(detector, next, im.width, im.height, new Uint8Array(im.rgba));
      });
      throwIfStopped(id);
      const comparison = cmp.summary();
      endQat();
      replaceInt8(next, score, iou);
      next = null;
      // Fine-tuning starts from a model qplay quantized (its QDQ graph and calibration set).
      int8Bytes = null;
      calibImages = null;
      if (backend === 'webgpu') progress(id, 'preparing the WebGPU kernels for the INT8 model');
      const placement = await follow(int8);
      return { ok: true, comparison, int8Version, backend: backendInfo(placement ? { int8: placement } : null) };
    } finally {
      cmp.free();
      next?.free();
    }
  },
  /** Starts fine-tuning the INT8 model against the FP32 one on the last calibration images;
   * resolves to the curve's step 0 (the PTQ model). Steps then run between other requests, each
   * reported as a 'qat-step' event; 'qat-update' when the INT8 model takes the newest weights
   * (every held-out check), 'qat-end' when it stops (done, stopped or failed) with the kept step. */
  async 'qat-start'({ id, steps, lr, batch, evalEvery, featureWeight, score, iou, modelName, weightBits }) {
    if (!int8Bytes || !calibImages) throw Object.assign(new Error('quantize the model first: fine-tuning starts from the INT8 model'), { code: 'no-model' });
    endQat();
    const t = new WasmQat(new Uint8Array(model.bytes), int8Bytes, profileJson());
    try {
      calibImages.forEach((im, i) => {
        progress(id, `preparing image ${i + 1} of ${calibImages.length} (${im.name})`);
        t.addImage(im.width, im.height, new Uint8Array(im.rgba));
      });
      progress(id, 'running the FP32 model on the held-out images and checking the INT8 model (step 0)');
      const started = t.start({ steps, lr, batch, evalEvery, featureWeight });
      // `kept`: the best step saved in the browser so far (a closed tab loses nothing: saved-run.js).
      qat = { t, state: 'running', score, iou, id, steps, modelName, weightBits, kept: 0, ptqSqnr: started.point?.held_out_sqnr_db };
      pump();
      return { ok: true, ...started };
    } catch (e) {
      t.free();
      throw e;
    }
  },
  async 'qat-pause'() {
    if (qat?.state === 'running') qat.state = 'paused';
    return { ok: true, state: qat?.state ?? null, step: qat?.step ?? 0 };
  },
  async 'qat-resume'() {
    if (qat?.state === 'paused') { qat.state = 'running'; pump(); }
    return { ok: true, state: qat?.state ?? null };
  },
  /** Stops fine-tuning now (between steps): the INT8 model becomes the kept step's. */
  async 'qat-stop'() {
    if (!qat || qat.state === 'ended') return { ok: true, how: null };
    return { ok: true, how: (await finishQat('stopped')).how };
  },
};

function profileJson() {
  return detector.info().profile ? JSON.stringify(detector.info().profile) : undefined;
}

/** A new INT8 model in use (the old one freed). */
function replaceInt8(d, score, iou) {
  int8?.free();
  int8 = d;
  int8.setThresholds(score, iou);
  int8Version++;
}

/** Queues the next fine-tuning step behind the requests that came in meanwhile. */
function pump() {
  setTimeout(() => { queue = queue.then(qatTick); }, 0);
}

function event(kind, data) { postMessage({ type: 'event', kind, ...data }); }

async function qatTick() {
  if (!qat || qat.state !== 'running') return;
  const q = qat;
  let point;
  try {
    point = q.t.step();
  } catch (e) {
    // The weights are those before the failed step; the kept step becomes the INT8 model.
    await finishQat('failed', { error: e?.message ?? String(e), code: e?.code });
    return;
  }
  q.step = point.step;
  // wasm memory only grows: a run that frees what each step made plateaus (the QAT test checks).
  event('qat-step', { point, memory: (await ready).memory.buffer.byteLength });
  if (point.held_out_sqnr_db != null && !q.t.done()) {
    // The INT8 pane runs the newest weights (the kept step is only final at the end).
    try {
      replaceInt8(new WasmDetector(q.t.currentOnnx(), profileJson()), q.score, q.iou);
      await follow(int8);
      event('qat-update', { step: point.step, int8Version });
    } catch (e) {
      await finishQat('failed', { error: e?.message ?? String(e), code: e?.code });
      return;
    }
  }
  if (point.held_out_sqnr_db != null) await keepBest(q);
  if (q.t.done()) { await finishQat('done'); return; }
  pump();
}

/** Saves the run's best step in the browser when a check found a better one. */
async function keepBest(q) {
  try {
    const [step, sqnr] = q.t.bestStep();
    if (step <= q.kept) return;
    q.kept = step;
    const bytes = q.t.bestOnnx();
    await saveRun({ model: q.modelName ?? 'model', step, steps: q.steps, ptqSqnr: q.ptqSqnr, sqnr, weightBits: q.weightBits, savedAt: Date.now(), bytes: bytes.buffer });
  } catch (e) {
    console.warn('could not keep the best step:', e?.message ?? e);
  }
}

/** Ends fine-tuning (done, stopped or failed): the kept step becomes the INT8 model. */
async function finishQat(how, failure = null) {
  const q = qat;
  q.state = 'ended';
  let ended;
  try {
    const result = q.t.result();
    const bytes = q.t.bestOnnx();
    replaceInt8(new WasmDetector(bytes, profileJson()), q.score, q.iou);
    int8Bytes = bytes;
    await follow(int8);
    ended = { how, result, bytes: bytes.buffer, int8Version, ...failure };
    // The result is on the page now (and downloadable): the saved copy is no longer needed.
    await clearRun();
  } catch (e) {
    ended = { how: 'failed', error: failure?.error ?? e?.message ?? String(e), code: failure?.code ?? e?.code, int8Version };
  }
  q.t.free();
  qat = null;
  event('qat-end', ended);
  return ended;
}

/** A new model or quantization ends a fine-tuning run without a result. */
function endQat() {
  if (!qat) return;
  try { qat.t.free(); } catch { /* freed */ }
  const wasRunning = qat.state !== 'ended';
  qat = null;
  if (wasRunning) {
    clearRun();
    event('qat-end', { how: 'abandoned', int8Version });
  }
}

async function runBoth(width, height, px) {
  const fp32 = await runOne(detector, width, height, px);
  return { ...fp32, int8: int8 ? await runOne(int8, width, height, px) : null };
}

async function runOne(d, width, height, px) {
  if (backend === 'webgpu' && d.hasGpu()) {
    // The frame goes to the GPU as RGBA and is pre-processed there, in the model's command
    // encoder: "preprocess" is the CPU's share (the resize plan, the copy into wasm), the GPU's
    // is inside "inference".
    const t0 = performance.now();
    const p = d.inferGpuFrame(width, height, px);
    const t1 = performance.now();
    const preOn = await p;
    const t2 = performance.now();
    const detections = d.decode();
    const t3 = performance.now();
    // A model's first frame on this device includes compiling its kernels: a warm-up.
    const warmup = !warmed.has(d);
    warmed.add(d);
    return { detections, scoreWarning: d.scoreWarning() ?? null, on: 'webgpu', preOn, warmup, timings: { preprocess: t1 - t0, inference: t2 - t1, decode: t3 - t2 } };
  }
  const t0 = performance.now();
  d.preprocess(width, height, px);
  const t1 = performance.now();
  d.infer();
  const t2 = performance.now();
  const detections = d.decode();
  const t3 = performance.now();
  return { detections, scoreWarning: d.scoreWarning() ?? null, on: 'cpu', preOn: 'cpu', warmup: false, timings: { preprocess: t1 - t0, inference: t2 - t1, decode: t3 - t2 } };
}

// One request at a time, in arrival order.
let queue = Promise.resolve();
onmessage = (ev) => {
  const msg = ev.data;
  queue = queue.then(async () => {
    try {
      await ready;
      const h = handlers[msg.type];
      if (!h) throw new Error(`unknown request ${msg.type}`);
      postMessage({ id: msg.id, type: 'result', ...(await h(msg)) });
    } catch (e) {
      postMessage({ id: msg.id, type: 'result', ok: false, error: e?.message ?? String(e), code: e?.code });
    }
  });
};
