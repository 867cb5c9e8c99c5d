// The Web Worker that owns the wasm detector: loading, planning and inference run here so the
// page never freezes. Messages in: {id, type: 'load'|'detect'|'thresholds'}; out: {id, ok, ...}
// plus {type: 'progress', stage} while loading.
import init, { WasmDetector, WasmQuantizer, inspectModel } from './pkg/qplay_wasm.js';

const ready = init();
let detector = null;
let int8 = null; // the quantized model, when the user has made one
let model = null; // { bytes, profile } of the FP32 model, for quantization

function progress(id, stage) { postMessage({ id, type: 'progress', stage }); }

const handlers = {
  async load({ id, bytes, profile }) {
    progress(id, 'parsing the ONNX file');
    let summary = null;
    try { summary = inspectModel(new Uint8Array(bytes)); } catch (e) { throw e; }
    progress(id, 'planning (shape inference, constant folding)');
    detector?.free();
    int8?.free();
    detector = null;
    int8 = null;
    model = { bytes, profile };
    try {
      detector = new WasmDetector(new Uint8Array(bytes), profile ?? undefined);
    } catch (e) {
      // Keep the summary: the page shows what the model is even when it cannot run.
      return { ok: false, error: e.message, summary };
    }
    return { ok: true, ...detector.info() };
  },
  async detect({ width, height, rgba }) {
    if (!detector) throw new Error('no model is loaded');
    const px = new Uint8Array(rgba);
    const fp32 = runOne(detector, width, height, px);
    // wasm linear memory only grows; the soak test watches it (with the JS heaps) for leaks.
    return { ok: true, ...fp32, int8: int8 ? runOne(int8, width, height, px) : null, memory: (await ready).memory.buffer.byteLength };
  },
  async thresholds({ score, iou }) {
    detector?.setThresholds(score, iou);
    int8?.setThresholds(score, iou);
    return { ok: true };
  },
  async quantize({ id, images, method, perChannel, keepFp32, autoMixed, score, iou }) {
    if (!model) throw new Error('load a model first');
    const t0 = performance.now();
    const q = new WasmQuantizer(new Uint8Array(model.bytes), model.profile ?? undefined);
    try {
      images.forEach((im, i) => {
        progress(id, `calibration image ${i + 1} of ${images.length} (${im.name})`);
        q.addImage(im.width, im.height, new Uint8Array(im.rgba));
      });
      const how = `${method}, ${perChannel ? 'per-channel' : 'per-tensor'} weights`;
      const report = q.run(method, perChannel, model.bytes.byteLength, keepFp32 ?? [], autoMixed ?? 0, (stage) => progress(id, `quantizing (${how}): ${stage}`));
      const bytes = q.onnxBytes();
      progress(id, 'loading the INT8 model');
      int8?.free();
      int8 = new WasmDetector(bytes, detector.info().profile ? JSON.stringify(detector.info().profile) : undefined);
      int8.setThresholds(score, iou);
      const seconds = (performance.now() - t0) / 1000;
      return { ok: true, report, seconds, bytes: bytes.buffer };
    } finally {
      q.free();
    }
  },
};

function runOne(d, width, height, px) {
  const t0 = performance.now();
  d.preprocess(width, height, px);
  const t1 = performance.now();
  d.infer();
  const t2 = performance.now();
  const detections = d.decode();
  const t3 = performance.now();
  return { detections, timings: { preprocess: t1 - t0, inference: t2 - t1, decode: t3 - t2 } };
}

onmessage = async (ev) => {
  const msg = ev.data;
  try {
    await ready;
    const h = handlers[msg.type];
    if (!h) throw new Error(`unknown request ${msg.type}`);
    postMessage({ id: msg.id, type: 'result', ...(await h(msg)) });
  } catch (e) {
    postMessage({ id: msg.id, type: 'result', ok: false, error: e?.message ?? String(e) });
  }
};
