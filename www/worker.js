// The Web Worker that owns the wasm detector: loading, planning and inference run here so the
// page never freezes. Messages in: {id, type: 'load'|'detect'|'thresholds'}; out: {id, ok, ...}
// plus {type: 'progress', stage} while loading.
import init, { WasmDetector, inspectModel } from './pkg/qplay_wasm.js';

const ready = init();
let detector = null;

function progress(id, stage) { postMessage({ id, type: 'progress', stage }); }

const handlers = {
  async load({ id, bytes, profile }) {
    progress(id, 'parsing the ONNX file');
    let summary = null;
    try { summary = inspectModel(new Uint8Array(bytes)); } catch (e) { throw e; }
    progress(id, 'planning (shape inference, constant folding)');
    detector?.free();
    detector = null;
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
    const t0 = performance.now();
    detector.preprocess(width, height, new Uint8Array(rgba));
    const t1 = performance.now();
    detector.infer();
    const t2 = performance.now();
    const detections = detector.decode();
    const t3 = performance.now();
    return { ok: true, detections, timings: { preprocess: t1 - t0, inference: t2 - t1, decode: t3 - t2 } };
  },
  async thresholds({ score, iou }) {
    detector?.setThresholds(score, iou);
    return { ok: true };
  },
};

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
