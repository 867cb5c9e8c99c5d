// The Web Worker that owns the wasm detector: loading, planning and inference run here so the
// page never freezes. Messages in: {id, type: 'load'|'detect'|'thresholds'|'quantize'|'backend'};
// out: {id, ok, ...} plus {type: 'progress', stage} while loading. Requests run one at a time, in
// order (a GPU run awaits the device between its steps; nothing else may touch the models then).
import init, { WasmDetector, WasmGpu, WasmQuantizer, inspectModel, version } from './pkg/qplay_wasm.js';

const ready = init();
let detector = null;
let int8 = null; // the quantized model, when the user has made one
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

function backendInfo(placed) {
  return {
    backend, note: gpuNote,
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

const handlers = {
  async load({ id, bytes, profile }) {
    progress(id, 'parsing the ONNX file');
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
    detector = next;
    int8 = null;
    probed = false;
    model = { bytes, profile };
    if (backend === 'webgpu') progress(id, 'preparing the WebGPU kernels');
    const placement = await follow(detector);
    return { ok: true, ...detector.info(), version: version(), backend: backendInfo(placement ? { fp32: placement } : null) };
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
    return { ok: true, ...r, recovered, probe, backend: backendInfo(), memory: (await ready).memory.buffer.byteLength, gpuBuffers };
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
  async quantize({ id, images, method, perChannel, keepFp32, autoMixed, mixed16, score, iou }) {
    if (!model) throw new Error('load a model first');
    const t0 = performance.now();
    const q = new WasmQuantizer(new Uint8Array(model.bytes), model.profile ?? undefined);
    try {
      images.forEach((im, i) => {
        progress(id, `calibration image ${i + 1} of ${images.length} (${im.name})`);
        q.addImage(im.width, im.height, new Uint8Array(im.rgba));
      });
      const how = `${method}, ${perChannel ? 'per-channel' : 'per-tensor'} weights`;
      const report = q.run(method, perChannel, model.bytes.byteLength, keepFp32 ?? [], autoMixed ?? 0, Boolean(mixed16), (stage) => progress(id, `quantizing (${how}): ${stage}`));
      const bytes = q.onnxBytes();
      progress(id, 'loading the INT8 model');
      int8?.free();
      int8 = new WasmDetector(bytes, detector.info().profile ? JSON.stringify(detector.info().profile) : undefined);
      int8.setThresholds(score, iou);
      const seconds = (performance.now() - t0) / 1000;
      if (backend === 'webgpu') progress(id, 'preparing the WebGPU kernels for the INT8 model');
      const placement = await follow(int8);
      return { ok: true, report, seconds, bytes: bytes.buffer, backend: backendInfo(placement ? { int8: placement } : null) };
    } finally {
      q.free();
    }
  },
};

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
    return { detections, on: 'webgpu', preOn, warmup, timings: { preprocess: t1 - t0, inference: t2 - t1, decode: t3 - t2 } };
  }
  const t0 = performance.now();
  d.preprocess(width, height, px);
  const t1 = performance.now();
  d.infer();
  const t2 = performance.now();
  const detections = d.decode();
  const t3 = performance.now();
  return { detections, on: 'cpu', preOn: 'cpu', warmup: false, timings: { preprocess: t1 - t0, inference: t2 - t1, decode: t3 - t2 } };
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
