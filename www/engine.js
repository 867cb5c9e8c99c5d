// The page's handle on the worker: promise-based requests, progress callbacks, and two ways to
// stop work. `stopWork` asks a quantization to stop at its next stage through a flag shared with
// the worker (a SharedArrayBuffer: only in a cross-origin-isolated page), so the worker and its
// models stay; `cancel` terminates the worker and starts a fresh one, the only way to stop any
// other running wasm call (or when the page is not isolated).
// `threads`: how many threads the worker's wasm uses (null: the default). threads.js picks the
// module and starts its pool; every new worker (after a cancel too) starts it again.
import { workerUrl } from './threads.js';

export class Engine {
  constructor({ threads = null } = {}) { this.seq = 0; this.pending = new Map(); this.onevent = null; this.threads = threads; this.spawn(); }

  spawn() {
    this.worker = new Worker(workerUrl(this.threads), { type: 'module' });
    // Holds the id of the request to stop (0: none); the worker reads it between stages.
    this.stopFlag = globalThis.crossOriginIsolated && typeof SharedArrayBuffer === 'function'
      ? new Int32Array(new SharedArrayBuffer(4)) : null;
    this.stoppable = 0; // the request stopWork may stop (a quantization)
    if (this.stopFlag) this.worker.postMessage({ type: 'stop-flag', flag: this.stopFlag.buffer });
    this.worker.onmessage = (ev) => {
      const m = ev.data;
      // Unrequested news from the worker (fine-tuning steps): to the one listener.
      if (m.type === 'event') { this.onevent?.(m); return; }
      const p = this.pending.get(m.id);
      if (!p) return;
      if (m.type === 'progress') { p.onprogress?.(m.stage); return; }
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m); else p.reject(Object.assign(new Error(m.error), { code: m.code, summary: m.summary, cancelled: m.code === 'cancelled' }));
    };
    this.worker.onerror = (e) => {
      for (const p of this.pending.values()) p.reject(new Error(`the worker failed: ${e.message}`));
      this.pending.clear();
    };
  }

  request(msg, transfer = [], onprogress) {
    const id = ++this.seq;
    const promise = new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onprogress });
      this.worker.postMessage({ ...msg, id }, transfer);
    });
    this.pending.get(id).settled = promise.then(() => true, () => true);
    return Object.assign(promise, { id });
  }

  /** Asks the running quantization to stop at its next stage (its request then fails with code
   * `cancelled`, and the worker keeps its models); resolves to whether it stopped within `ms`.
   * False when the page is not cross-origin isolated or nothing stoppable runs: call cancel(). */
  async stopWork(ms = 10_000) {
    const p = this.pending.get(this.stoppable);
    if (!this.stopFlag || !p) return false;
    Atomics.store(this.stopFlag, 0, this.stoppable);
    let timer;
    const stopped = await Promise.race([p.settled, new Promise((r) => { timer = setTimeout(() => r(false), ms); })]);
    clearTimeout(timer);
    return stopped;
  }

  /** Loads ONNX bytes (ArrayBuffer) with an optional profile JSON string. */
  load(bytes, profile, onprogress) { return this.request({ type: 'load', bytes, profile }, [], onprogress); }

  /** Detects on an ImageData; resolves to {detections, timings}. */
  /** An ONNX model's weights kept in files beside it, put inside it from `files` ([{name, bytes}]):
   * resolves to {needed, missing, bytes} (`bytes` the self-contained model, when any were needed and given). */
  externalData(bytes, files) { return this.request({ type: 'external-data', bytes, files }); }

  /** The model in use as ONNX bytes, with what the export gate checked. */
  toOnnx(form, onprogress) { return this.request({ type: 'to-onnx', form }, [], onprogress); }

  detect(img) {
    const rgba = img.data.buffer.slice(0);
    return this.request({ type: 'detect', width: img.width, height: img.height, rgba }, [rgba]);
  }

  /** Detections on an ImageData under another profile (JSON) of the loaded model; resolves to {detections}. */
  preview(profile, img) {
    const rgba = img.data.buffer.slice(0);
    return this.request({ type: 'preview', profile, width: img.width, height: img.height, rgba }, [rgba]);
  }

  /** The user's own INT8 model (bytes: ArrayBuffer) in use, compared with the FP32 model on images [{name, data: ImageData}]. */
  loadInt8(bytes, images, { score, iou }, onprogress) {
    const msg = images.map(({ name, data }) => ({ name, width: data.width, height: data.height, rgba: data.data.buffer.slice(0) }));
    const r = this.request({ type: 'load-int8', bytes, images: msg, score, iou }, [bytes, ...msg.map((m) => m.rgba)], onprogress);
    this.stoppable = r.id;
    return r;
  }

  /** Quantizes the loaded model with calibration images [{name, data: ImageData}]; `layerBits`: [[layer, weight bits]] for
   * layers that do not take `weightBits` (mixed precision). */
  quantize(images, { method, perChannel, keepFp32 = [], layerBits = [], autoMixed = 0, mixedTo = 'fp32', weightBits = 8, rounding = 'auto', score, iou }, onprogress) {
    const msg = images.map(({ name, data }) => ({ name, width: data.width, height: data.height, rgba: data.data.buffer.slice(0) }));
    const r = this.request({ type: 'quantize', images: msg, method, perChannel, keepFp32, layerBits, autoMixed, mixedTo, weightBits, rounding, score, iou }, msg.map((m) => m.rgba), onprogress);
    this.stoppable = r.id;
    return r;
  }

  /** Starts fine-tuning the INT8 model (after `quantize`) against the FP32 one on the calibration
   * images: {steps, lr, batch, evalEvery, featureWeight, score, iou}; resolves to {point, train, heldOut} (step 0).
   * Progress comes as events to `onevent`: qat-step {point}, qat-update {step, int8Version},
   * qat-end {how: 'done' | 'stopped' | 'failed' | 'abandoned', result, bytes, error}. */
  startQat(opts, onprogress) { return this.request({ type: 'qat-start', ...opts }, [], onprogress); }

  /** Pauses, resumes or stops (keeping the best step) a fine-tuning run, between its steps. */
  pauseQat() { return this.request({ type: 'qat-pause' }); }
  resumeQat() { return this.request({ type: 'qat-resume' }); }
  stopQat() { return this.request({ type: 'qat-stop' }); }

  setThresholds(score, iou) { return this.request({ type: 'thresholds', score, iou }); }

  /** Switches inference to 'webgpu' or 'cpu'; resolves to {backend, note, adapter, packedDot, placement}
   * (backend 'cpu' with a note when WebGPU was asked for and failed). */
  setBackend(backend) { return this.request({ type: 'backend', backend }); }

  /** Destroys the worker's GPU device, as a driver reset would (to check the recovery). */
  loseDevice() { return this.request({ type: 'lose-device' }); }

  /** Another number of threads (null: the default): a new worker starts with them (a wasm thread
   * pool cannot be resized), so, as after cancel(), the model must be loaded again. */
  setThreads(threads) {
    this.threads = threads;
    this.cancel();
  }

  /** Stops whatever is running; the model must be loaded again. */
  cancel() {
    this.worker.terminate();
    for (const p of this.pending.values()) p.reject(Object.assign(new Error('cancelled'), { cancelled: true }));
    this.pending.clear();
    this.spawn();
  }
}

/** Decodes an image Blob/File/URL into ImageData (the browser's decoder; RGBA bytes). */
export async function imageData(src) {
  const blob = typeof src === 'string' ? await (await fetch(src)).blob() : src;
  let bmp;
  try { bmp = await createImageBitmap(blob); } catch {
    throw new Error(`cannot decode ${src.name ?? src} as an image: use a PNG, JPEG, WebP or GIF file`);
  }
  const c = new OffscreenCanvas(bmp.width, bmp.height);
  const ctx = c.getContext('2d');
  ctx.drawImage(bmp, 0, 0);
  return { data: ctx.getImageData(0, 0, bmp.width, bmp.height), bitmap: bmp };
}
