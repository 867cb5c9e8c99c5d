// A user's own Ultralytics exports, dropped into the page with zero configuration (issue #12):
// the class names come from the file's metadata, a pose model's keypoints are drawn, a float16
// export loads and says it was converted. The files are real Ultralytics exports
// (tests/fixtures/make_ultralytics_fixtures.py; random weights, so the boxes mean nothing — the
// decoding itself is checked against Ultralytics' post-processing in crate/core/tests/ultralytics.rs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { open, ARTIFACTS } from './browser.mjs';
import { uploadModel } from './upload.mjs';
import { readNpy } from './npy.mjs';

const FIX = fileURLToPath(new URL('./fixtures/ultralytics/', import.meta.url));
let s;
before(async () => { s = await open('index.html'); });
after(async () => s && s.close());

const det = () => s.page.locator('qplay-detector');
const HEAT = fileURLToPath(new URL('./fixtures/heatmap/', import.meta.url));
/** Uploads a model and waits for its first result on the current photo; returns {result, assumed, summary, error}. */
const load = (name, dir = FIX) => uploadModel(s, dir + name);

test('a YOLOv8 export with 18 custom classes: labels from its metadata, not `class N`', async () => {
  const r = await load('yolov8_custom18.onnx');
  assert.equal(r.error, '');
  assert.match(r.assumed, /18 class names from the model's metadata/);
  assert.doesNotMatch(r.assumed, /pixel scaling probed/, 'Ultralytics files state their scaling');
  assert.ok(r.result.detections.length > 0, 'random weights still give boxes at the default threshold');
  const names = JSON.parse(readFileSync(FIX + 'yolov8_custom18/expected.json')).names;
  for (const d of r.result.detections) {
    assert.ok(Object.values(names).includes(d.label), `label ${d.label}`);
    assert.doesNotMatch(d.label, /^class \d+$/);
  }
  const list = await det().evaluate((el) => el.shadowRoot.querySelector('ol.dets').textContent);
  assert.ok(Object.values(names).some((n) => list.includes(n)), list);
  assert.ok(await det().locator('.fp32-score-note').isHidden(), 'a float model with scores of at most 1: no warning');
});

test('a YOLOv8-pose export: 17 keypoints per box, drawn', async () => {
  const r = await load('yolov8_pose.onnx');
  assert.equal(r.error, '');
  assert.match(r.assumed, /Ultralytics `pose` model/);
  assert.match(r.assumed, /17 keypoints × 3/);
  assert.ok(r.result.detections.length > 0);
  for (const d of r.result.detections) {
    assert.equal(d.keypoints.length, 17);
    assert.equal(d.keypoint_scores.length, 17);
  }
  await det().locator('canvas.fp32').screenshot({ path: `${ARTIFACTS}upload-pose.png` });
});

test('a float16 export (Ultralytics half=True) loads and the summary says it was converted', async () => {
  const r = await load('yolov8_half.onnx');
  assert.equal(r.error, '');
  assert.match(r.summary, /float16 tensors .* were converted to float32/);
  assert.match(r.summary, /Every op is supported/);
  assert.ok(Array.isArray(r.result.detections));
});

test('a YOLO11 export with NMS inside (nms=True): runs, its rows are drawn, and it quantizes', async () => {
  const r = await load('yolo11_nms.onnx');
  assert.equal(r.error, '');
  assert.match(r.summary, /Every op is supported/);
  assert.match(r.assumed, /already selected/);
  assert.ok(r.result.detections.length > 0);
  // Quantize with the defaults (the recipe chosen by measurement): the INT8 side gets a result.
  await det().locator('button[name=quantize]').click();
  await s.page.waitForFunction(() => /Quantized in/.test(document.querySelector('qplay-detector').shadowRoot.querySelector('.qresult').textContent), null, { timeout: 300_000 });
  await s.page.waitForFunction(() => document.querySelector('qplay-detector').result?.int8 && !document.querySelector('qplay-detector').running, null, { timeout: 120_000 });
  const err = await det().evaluate((el) => (el.shadowRoot.querySelector('.error').hidden ? '' : el.shadowRoot.querySelector('.error').textContent));
  assert.equal(err, '');
});

test('a CenterFace-style export: read as faces with 5 landmarks each, drawn', async () => {
  const r = await load('centerface.onnx', HEAT);
  assert.equal(r.error, '');
  assert.match(r.assumed, /read as CenterFace/);
  // No metadata says how pixels are scaled: the first photo settled it, and the list says so.
  assert.match(r.assumed, /pixel scaling probed on the photo .*: (kept the family's default|using )/);
  assert.ok(r.result.detections.length > 0);
  for (const d of r.result.detections) {
    assert.equal(d.label, 'face');
    assert.equal(d.keypoints.length, 5);
  }
  await det().locator('canvas.fp32').screenshot({ path: `${ARTIFACTS}upload-centerface.png` });
  // The profile editor links to a page that explains every field (www/profile.html).
  const href = await det().evaluate((el) => el.shadowRoot.querySelector('a.profile-doc').href);
  const doc = await s.browser.newPage();
  assert.equal((await doc.goto(href)).status(), 200);
  const fields = await doc.locator('main').textContent();
  for (const f of ['box_encoding', 'log_hw', 'grid_strides', 'top_left']) assert.ok(fields.includes(f), f);
  await doc.setViewportSize({ width: 900, height: 1400 });
  await doc.screenshot({ path: `${ARTIFACTS}profile-doc.png` });
  await doc.close();
});

test('an export without metadata whose shapes fit two readings: both shown with their boxes on the photo, one click switches', async () => {
  const r = await load('yolov8_pose_nometa.onnx');
  assert.equal(r.error, '');
  assert.match(r.assumed, /taken as a YOLOv8\/YOLO11 pose output/);
  const alt = () => det().evaluate((el) => ({ hidden: el.shadowRoot.querySelector('.alternatives').hidden, text: el.shadowRoot.querySelector('.alternatives').textContent }));
  assert.equal((await alt()).hidden, false);
  assert.match((await alt()).text, /52 classes and no keypoints/);
  // The other reading's detections on the photo shown, before choosing it.
  await s.page.waitForFunction(() => /on person\.jpg: \d+ box/.test(document.querySelector('qplay-detector').shadowRoot.querySelector('[data-alt-preview="0"]')?.textContent ?? ''), null, { timeout: 60_000 });
  await det().locator('.alternatives').screenshot({ path: `${ARTIFACTS}upload-alternatives.png` });
  await det().locator('button[data-alt="0"]').click();
  await s.page.waitForFunction(() => {
    const el = document.querySelector('qplay-detector');
    return !el.running && el.info?.profile?.decoder?.keypoints === undefined && el.result?.modelId === el.modelId;
  }, null, { timeout: 60_000 });
  const now = await det().evaluate((el) => ({ decoder: el.info.profile.decoder, dets: el.result.detections }));
  assert.equal(now.decoder.type, 'yolov8');
  assert.ok(now.dets.every((d) => d.keypoints.length === 0));
});

test('a torchvision SSDLite export (an `If` inside, no batch axis) and PaddleDetection NMS rows decode with zero configuration', async () => {
  // Random weights (tests/fixtures/make_torchvision_ssd_fixtures.py, make_paddle_nms_fixtures.py):
  // the decoding is checked against torchvision's forward in crate/core/tests/postprocessed_exports.rs.
  const tv = await load('ssdlite_tiny.onnx', fileURLToPath(new URL('./fixtures/torchvision_ssd/', import.meta.url)));
  assert.equal(tv.error, '');
  assert.match(tv.summary, /Every op is supported/);
  assert.match(tv.assumed, /no batch axis/);
  assert.ok(tv.result.detections.length > 0);
  const pd = await load('paddle_nms_synthetic.onnx', fileURLToPath(new URL('./fixtures/paddle_nms/', import.meta.url)));
  assert.equal(pd.error, '');
  assert.match(pd.assumed, /PaddleDetection's NMS rows/);
  assert.ok(pd.result.detections.length > 0);
});

test('torchvision\'s Faster R-CNN (RoiAlign, ScatterElements), Mask R-CNN (a Loop), Keypoint R-CNN (cubic Resize) and PyTorch layers face detectors use (PRelu) load and run', async () => {
  // Checked against onnxruntime and torchvision in crate/core/tests/torch_exports.rs.
  const TORCH = fileURLToPath(new URL('./fixtures/torch_ops/', import.meta.url));
  const fr = await load('faster_rcnn.onnx', TORCH);
  assert.equal(fr.error, '');
  assert.match(fr.summary, /Every op is supported/);
  assert.match(fr.summary, /RoiAlign/);
  assert.match(fr.assumed, /no batch axis/);
  assert.match(fr.assumed, /detections the model selected itself/);
  // An earlier model was quantized in this page (the YOLO11 above): its "Quantized in …" line
  // went with it (it once stayed under the Quantize button for every later model).
  assert.equal(await det().evaluate((el) => el.shadowRoot.querySelector('.qresult').textContent), '');
  await det().screenshot({ path: `${ARTIFACTS}faster-rcnn.png` });
  // Mask R-CNN: its masks are pasted back in a Loop (run in the worker); the page says they are not drawn.
  const mr = await load('mask_rcnn.onnx', TORCH);
  assert.equal(mr.error, '');
  assert.match(mr.summary, /Loop/);
  assert.match(mr.assumed, /one instance mask per detection \(Mask R-CNN\): not drawn/);
  // Keypoint R-CNN: its keypoint heatmaps are upsampled by a cubic Resize; its keypoints come
  // with each box and are drawn.
  const kr = await load('keypoint_rcnn.onnx', TORCH);
  assert.equal(kr.error, '');
  assert.doesNotMatch(kr.summary, /unsupported op/i);
  assert.match(kr.assumed, /keypoints \(x, y, visibility\) per detection \(Keypoint R-CNN\), drawn/);
  // The profile's score threshold is qplay detect's; the page says its slider decides here.
  assert.match(kr.assumed, /score threshold 0\.4 [^\n]*\(qplay detect's; this page uses the Score threshold slider\)/);
  await det().screenshot({ path: `${ARTIFACTS}keypoint-rcnn.png` });
  // Hugging Face's YOLOS, exported at opset 23 (Attention): its `logits` and `pred_boxes` are
  // read as a DETR-style set prediction, with COCO's names, and drawn without NMS.
  const hy = await load('hf_yolos.onnx', TORCH);
  assert.equal(hy.error, '');
  assert.doesNotMatch(hy.summary, /unsupported op/i);
  assert.match(hy.assumed, /`pred_boxes` \[1, 10, 4\] and `logits` \[1, 10, 92\] are a DETR-style set prediction/);
  assert.match(hy.assumed, /COCO category ids/);
  assert.ok(hy.result.detections.length > 0, 'random heads still score some queries above the slider');
  for (const d of hy.result.detections) assert.doesNotMatch(d.label, /^class \d+$/);
  await det().screenshot({ path: `${ARTIFACTS}hf-yolos.png` });
  // A PRelu face-detector-shaped export with no detector layout: it loads (every op supported)
  // and the page says what its outputs need.
  const pf = await uploadModel(s, TORCH + 'prelu_face.onnx', { orError: true });
  assert.match(pf.summary, /PRelu/);
  assert.doesNotMatch(pf.summary + pf.error, /unsupported op/i);
});

test('a PyTorch export with its weights in model.onnx.data (the exporter\'s default): alone it names the file to add; that file chosen next, or both together, load it', async () => {
  // tests/fixtures/torch_ops/external_data: torch.onnx.export(..., dynamo=True) with its defaults.
  const EXT = fileURLToPath(new URL('./fixtures/torch_ops/external_data/', import.meta.url));
  const file = (name, buffer = readFileSync(EXT + name)) => ({ name, mimeType: 'application/octet-stream', buffer });
  const [model, data] = [file('model.onnx'), file('model.onnx.data')];
  const input = det().locator('input[name=model]');
  // A model in use (the built-in one, or the test before's) and nothing running.
  const idle = () => s.page.waitForFunction(() => { const el = document.querySelector('qplay-detector'); return el?.result && !el.running && !el.loading; }, null, { timeout: 180_000 });
  const errorShown = (re) => s.page.waitForFunction((src) => new RegExp(src).test(document.querySelector('qplay-detector').shadowRoot.querySelector('.error').textContent), re.source, { timeout: 60_000 });
  // A model loaded after the one numbered `id`, and its first result shown.
  const modelId = () => det().evaluate((el) => el.modelId);
  const loaded = (id) => s.page.waitForFunction((id) => {
    const el = document.querySelector('qplay-detector');
    return !el.running && el.modelId > id && el.modelName === 'model.onnx' && el.shadowRoot.querySelector('.error').hidden
      && (el.shadowRoot.querySelector('canvas.fp32').getAttribute('aria-label') ?? '').includes('by model.onnx (FP32)');
  }, id, { timeout: 180_000 });
  await idle();
  const before = await det().evaluate((el) => el.modelName);
  assert.notEqual(before, 'model.onnx');
  // Alone: the page names the missing file, and the model in use stays.
  await input.setInputFiles(model);
  await errorShown(/its weights are in a separate file/);
  const alone = await det().evaluate((el) => ({ text: el.shadowRoot.querySelector('.error').textContent, code: el.errorCode, name: el.modelName }));
  assert.match(alone.text, /^Could not load model\.onnx: its weights are in a separate file, “model\.onnx\.data”, which was not given: choose the model and that file together, or drop “model\.onnx\.data” now — still using: /);
  assert.equal(alone.code, 'external-data');
  assert.equal(alone.name, before);
  await det().screenshot({ path: `${ARTIFACTS}external-data-missing.png` });
  // The data file chosen next completes that model.
  let id = await modelId();
  await input.setInputFiles(data);
  await loaded(id);
  const info = await det().evaluate((el) => ({ summary: el.shadowRoot.querySelector('.summary').textContent, assumed: el.shadowRoot.querySelector('ul.assumed').textContent }));
  assert.match(info.summary, /Attention/);
  assert.match(info.assumed, /DETR-style set prediction/);
  await det().screenshot({ path: `${ARTIFACTS}external-data-loaded.png` });
  // A truncated data file: a clear error, and the model in use stays.
  await input.setInputFiles([model, file('model.onnx.data', data.buffer.subarray(0, 1000))]);
  await errorShown(/truncated or not this model's/);
  assert.match(await det().evaluate((el) => el.shadowRoot.querySelector('.error').textContent), /^Could not load model\.onnx: tensor `[^`]+`: its data lies at bytes \d+…\d+ of `model\.onnx\.data`, which has 1000 bytes: the file is truncated or not this model's — still using: model\.onnx/);
  // Both files together load at once.
  id = await modelId();
  await input.setInputFiles([data, model]);
  await loaded(id);
  // From a URL (an embed's `model=`): the weights file is downloaded from beside the model.
  const u = await open('index.html?embed=detector&model=tests/fixtures/torch_ops/external_data/model.onnx&image=www/samples/person.jpg');
  try {
    await u.page.waitForFunction(() => { const el = document.querySelector('qplay-detector'); return el?.result && !el.running; }, null, { timeout: 180_000 });
    const r = await u.page.locator('qplay-detector').evaluate((el) => ({
      label: el.shadowRoot.querySelector('canvas.fp32').getAttribute('aria-label'),
      error: el.shadowRoot.querySelector('.error').hidden ? '' : el.shadowRoot.querySelector('.error').textContent,
    }));
    assert.equal(r.error, '');
    assert.match(r.label, /by model\.onnx \(FP32\)/);
    assert.deepEqual(u.errors, []);
  } finally {
    await u.close();
  }
});

test('TFLite files: a float detector loads through the file input and the page says what its outputs need; int8 and 16x8 models load, unsupported ops say what to do; SSDs with the detection op (float and TF1 uint8) detect', async () => {
  const TFL = fileURLToPath(new URL('./fixtures/tflite/', import.meta.url));
  // Random weights and outputs no built-in decoder reads: loaded and summarised, and the error
  // says what to fix (a profile), instead of stale boxes from the previous model.
  const r = await uploadModel(s, TFL + 'det.tflite', { orError: true });
  assert.match(r.summary, /TFLite/);
  assert.match(r.summary, /Every op is supported/);
  assert.match(r.error, /decoder|profile/i, r.error);
  assert.equal(r.result?.model === 'det.tflite' ? r.result.detections.length : 0, 0, 'no boxes from another model');
  assert.match(await det().locator('canvas.fp32').getAttribute('aria-label'), /Detection with det\.tflite on person\.jpg failed/);
  await det().screenshot({ path: `${ARTIFACTS}upload-tflite.png` });
  // A full-integer model loads into TFLite's integer ops (bit for bit with LiteRT in the core's
  // tests); like det.tflite, its random outputs need a profile.
  const int8 = await uploadModel(s, TFL + 'det_int8.tflite', { orError: true });
  assert.match(int8.summary, /qplay\.tfl\.Conv2D/);
  assert.match(int8.summary, /Every op is supported/);
  // …and shows the file's own quantization, layer by layer (TFLite's scales and zero points).
  assert.match(int8.summary, /The file's quantization: \d+ layers with their own scale and zero point/);
  await det().locator('details.file-quant summary').click();
  assert.ok(await det().locator('details.file-quant tbody tr').count() >= 10);
  await det().locator('details.file-quant').screenshot({ path: `${ARTIFACTS}upload-tflite-int8-quantization.png` });
  assert.match(int8.error, /decoder|profile/i, int8.error);
  // A 16x8 model (int16 activations): the same ops with TFLite's int16 arithmetic; the summary
  // says what it is, and it downloads as QDQ ONNX (int16 activations in com.microsoft Q/DQ).
  const x16 = await uploadModel(s, TFL + 'det_16x8.tflite', { orError: true });
  assert.match(x16.summary, /qplay\.tfl\.Conv2D/);
  assert.match(x16.summary, /Every op is supported/);
  assert.match(x16.summary, /A 16x8 model \(int16 activations/);
  assert.match(x16.error, /decoder|profile/i, x16.error);
  const [dl16] = await Promise.all([s.page.waitForEvent('download'), det().locator('.summary .to-onnx button[name=to-onnx]').click()]);
  assert.equal(dl16.suggestedFilename(), 'det_16x8.onnx');
  assert.match(await det().locator('.summary .to-onnx .note').textContent(), /^det_16x8\.onnx \([\d.]+ MB\): written in QDQ form .*% within one step/);
  await det().locator('.summary').screenshot({ path: `${ARTIFACTS}upload-tflite-16x8.png` });
  // Its integer form does not exist (int16 codes): said, with what to do; nothing downloads.
  await det().locator('.summary .to-onnx select[name=onnx-form]').selectOption('integer');
  await det().locator('.summary .to-onnx button[name=to-onnx]').click();
  await s.page.waitForFunction(() => /was not written/.test(document.querySelector('qplay-detector').shadowRoot.querySelector('.summary .to-onnx .note').textContent), null, { timeout: 60_000 });
  const e16 = await det().locator('.summary .to-onnx .note').textContent();
  assert.match(e16, /^det_16x8\.integer\.onnx was not written: .*integer form.*int16.*QDQ form instead/, e16);
  // The page's error line still says what it said about the model (no decoder fits it).
  assert.match(await det().locator('.error').textContent(), /decoder|profile/i);
  assert.equal(await det().locator('.summary .to-onnx button[name=to-onnx]').isDisabled(), false);
  await det().screenshot({ path: `${ARTIFACTS}upload-tflite-16x8-no-integer-form.png` });
  const ops = await uploadModel(s, TFL + 'unsupported.tflite', { orError: true });
  assert.match(ops.error, /CUMSUM.*REVERSE_V2/, ops.error);
  // A float classifier (no detector) is not a detection model: said, nothing stale.
  const cnn = await uploadModel(s, TFL + 'cnn.tflite', { orError: true });
  assert.notEqual(cnn.error, '');
  // An SSD ending in TFLite's TFLite_Detection_PostProcess op: detected with no configuration;
  // the summary names the format, not an ONNX opset.
  const ssd = await uploadModel(s, fileURLToPath(new URL('./fixtures/tflite_ssd/', import.meta.url)) + 'ssd_fast.tflite');
  assert.equal(ssd.error, '');
  assert.match(ssd.summary, /TFLite v3/);
  assert.doesNotMatch(ssd.summary, /opset/);
  assert.match(ssd.assumed, /TFLite_Detection_PostProcess/);
  assert.ok(ssd.result.detections.length > 0);
  // The TF1 Object Detection API's quantized export (uint8 activations and weights, the op on
  // uint8 inputs; the form of TFLite's example detect.tflite): detected the same way.
  const u8 = await uploadModel(s, fileURLToPath(new URL('./fixtures/tflite_ssd/', import.meta.url)) + 'ssd_uint8.tflite');
  assert.equal(u8.error, '');
  assert.match(u8.summary, /qplay\.tfl\.Conv2D/);
  assert.match(u8.assumed, /TFLite_Detection_PostProcess/);
  assert.ok(u8.result.detections.length > 0);
  await det().screenshot({ path: `${ARTIFACTS}upload-tflite-uint8-ssd.png` });
  // It is integer already: Quantize says so and what to do, and makes no INT8 model.
  await det().locator('button[name=quantize]').click();
  await s.page.waitForFunction(() => /Quantization failed/.test(document.querySelector('qplay-detector').shadowRoot.querySelector('.qresult').textContent), null, { timeout: 120_000 });
  const q = await det().locator('.qresult').textContent();
  assert.match(q, /integer already.*qplay compare/, q);
  await det().screenshot({ path: `${ARTIFACTS}upload-tflite-quantize-integer.png` });
  assert.equal(await det().evaluate((el) => el.int8 ?? null), null);
});

/** The downloaded ONNX file run by onnxruntime-web in the page: [{ dims, data }] per output. */
async function runInOrtWeb(onnx, x, shape) {
  return s.page.evaluate(async ({ onnx, x, shape }) => {
    const dist = '/node_modules/onnxruntime-web/dist/';
    const ort = await import(`${dist}ort.wasm.min.mjs`);
    ort.env.wasm.wasmPaths = new URL(dist, location.origin).href;
    ort.env.wasm.numThreads = 1;
    // Graph optimizations off: onnxruntime-web 1.30's Pad fusion folds a zero Pad into the
    // MaxPool after it, where padding counts as −∞, not 0 (det's output then differs by 13 % of
    // its range; onnxruntime 1.32 native gives LiteRT's numbers with every optimization on).
    const session = await ort.InferenceSession.create(new Uint8Array(onnx), { executionProviders: ['wasm'], graphOptimizationLevel: 'disabled' });
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', new Float32Array(x), shape) });
    return session.outputNames.map((n) => ({ dims: [...out[n].dims], data: [...out[n].data] }));
  }, { onnx: [...onnx], x: [...x], shape });
}

test('a TFLite model downloads as ONNX: onnxruntime-web runs the file and gives LiteRT\'s outputs', async () => {
  const TFL = fileURLToPath(new URL('./fixtures/tflite/', import.meta.url));
  await uploadModel(s, TFL + 'det.tflite', { orError: true });
  const button = det().locator('.summary .to-onnx button[name=to-onnx]');
  const [download] = await Promise.all([s.page.waitForEvent('download'), button.click()]);
  assert.equal(download.suggestedFilename(), 'det.onnx');
  const onnx = readFileSync(await download.path());
  const note = await det().locator('.summary .to-onnx .note').textContent();
  assert.match(note, /^det\.onnx \([\d.]+ MB\): loaded back and run on a seeded input: its 2 output\(s\) equal the source model's bit for bit\.$/, note);
  await det().locator('.summary .to-onnx').screenshot({ path: `${ARTIFACTS}upload-tflite-to-onnx.png` });
  // The downloaded file in onnxruntime-web, on the fixture's input, against LiteRT's outputs.
  const x = readNpy(TFL + 'det/input.npy');
  const want = [0, 1].map((k) => readNpy(TFL + `det/output_${k}.npy`));
  const got = await runInOrtWeb(onnx, x.data, x.shape);
  assert.equal(got.length, 2);
  for (const [k, w] of want.entries()) {
    assert.deepEqual(got[k].dims, w.shape, `output ${k}`);
    let [lo, hi, err] = [Infinity, -Infinity, 0];
    for (const v of w.data) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    w.data.forEach((v, i) => { err = Math.max(err, Math.abs(v - got[k].data[i])); });
    assert.ok(err <= 1e-4 * (hi - lo), `output ${k}: max |onnxruntime-web − LiteRT| ${err} of the range ${hi - lo}`);
  }
  // An ONNX model has no such button.
  await det().locator('select[name=builtin]').selectOption('person');
  await s.page.waitForFunction(() => {
    const root = document.querySelector('qplay-detector').shadowRoot;
    const summary = root.querySelector('.summary').textContent;
    return /Person detector.*: ready/.test(root.querySelector('.status .stage-text').textContent) && /Every op is supported/.test(summary) && /opset/.test(summary);
  }, null, { timeout: 120_000 });
  assert.equal(await det().locator('.summary .to-onnx').count(), 0);
});

test('a full-integer TFLite model downloads as QDQ ONNX (onnxruntime-web within one step of LiteRT) and in integer form (LiteRT\'s codes in every value)', async () => {
  const TFL = fileURLToPath(new URL('./fixtures/tflite/', import.meta.url));
  await uploadModel(s, TFL + 'det_int8.tflite', { orError: true });
  assert.match(await det().locator('.summary .to-onnx select[name=onnx-form]').textContent(), /QDQ form.*integer form/);
  const button = det().locator('.summary .to-onnx button[name=to-onnx]');
  const [download] = await Promise.all([s.page.waitForEvent('download'), button.click()]);
  assert.equal(download.suggestedFilename(), 'det_int8.onnx');
  const onnx = readFileSync(await download.path());
  const note = await det().locator('.summary .to-onnx .note').textContent();
  assert.match(note, /^det_int8\.onnx \([\d.]+ MB\): written in QDQ form .*equal the QDQ graph's bit for bit; on that input \d+ of 4480 output values equal TFLite's integer arithmetic .*% within one step/, note);
  await det().locator('.summary .to-onnx').screenshot({ path: `${ARTIFACTS}upload-tflite-int8-to-onnx.png` });
  // LiteRT's int8 input fed as the float it stands for (the file's QuantizeLinear gives the
  // codes back); each output read back as codes with the file's scale and zero point.
  const meta = JSON.parse(readFileSync(TFL + 'det_int8/meta.json', 'utf8'));
  const xq = readNpy(TFL + 'det_int8/input_q.npy');
  const [xs, xz] = meta.input.quantization;
  const got = await runInOrtWeb(onnx, Float32Array.from(xq.data, (q) => xs * (q - xz)), xq.shape);
  let [total, within] = [0, 0];
  for (const [k, o] of meta.outputs.entries()) {
    const want = readNpy(TFL + `det_int8/output_${k}.npy`);
    const [ys, yz] = o.quantization;
    assert.deepEqual(got[k].dims, want.shape, `output ${k}`);
    want.data.forEach((w, i) => {
      const code = Math.max(-128, Math.min(127, Math.round(got[k].data[i] / ys) + yz));
      total += 1;
      within += Math.abs(code - w) <= 1 ? 1 : 0;
    });
  }
  assert.equal(total, 4480);
  assert.ok(within >= 0.999 * total, `${within} of ${total} within one step of LiteRT`);
  // The integer form: TFLite's arithmetic in ONNX's integer ops, LiteRT's codes in every value.
  await det().locator('.summary .to-onnx select[name=onnx-form]').selectOption('integer');
  const [dlInt] = await Promise.all([s.page.waitForEvent('download'), button.click()]);
  assert.equal(dlInt.suggestedFilename(), 'det_int8.integer.onnx');
  const noteInt = await det().locator('.summary .to-onnx .note').textContent();
  assert.match(noteInt, /^det_int8\.integer\.onnx \([\d.]+ MB\): written in integer form .*all 4480 output values equal TFLite's integer arithmetic/, noteInt);
  await det().locator('.summary .to-onnx').screenshot({ path: `${ARTIFACTS}upload-tflite-int8-to-integer-onnx.png` });
  const gotInt = await runInOrtWeb(readFileSync(await dlInt.path()), Float32Array.from(xq.data, (q) => xs * (q - xz)), xq.shape);
  let equal = 0;
  for (const [k, o] of meta.outputs.entries()) {
    const want = readNpy(TFL + `det_int8/output_${k}.npy`);
    const [ys, yz] = o.quantization;
    want.data.forEach((w, i) => { equal += Math.max(-128, Math.min(127, Math.round(gotInt[k].data[i] / ys) + yz)) === w ? 1 : 0; });
  }
  assert.equal(equal, 4480, `${equal} of 4480 output codes equal LiteRT's`);
});

/** Sets the "your own INT8 model" file and waits for the outcome under the Quantize button. */
async function own(path) {
  const name = path.split('/').pop();
  await det().locator('input[name=own-int8]').setInputFiles({ name, mimeType: 'application/octet-stream', buffer: readFileSync(path) });
  await s.page.waitForFunction((n) => {
    const el = document.querySelector('qplay-detector');
    const r = el.shadowRoot.querySelector('.qresult').textContent;
    return !el.quantizing && !el.running && (r.includes(`${n} is in use`) || r.includes(`${n} was not loaded`));
  }, name, { timeout: 180_000 });
  return det().evaluate((el) => ({
    result: el.shadowRoot.querySelector('.qresult').textContent,
    report: el.shadowRoot.querySelector('.qreport-body').textContent,
    error: el.shadowRoot.querySelector('.error').hidden ? '' : el.shadowRoot.querySelector('.error').textContent,
    qatHidden: el.shadowRoot.querySelector('fieldset.qat').hidden,
    int8Dets: el.result?.int8?.detections?.length ?? null,
  }));
}

test('your own INT8 model: a quantized .tflite twin is compared with its float model; a file that does not fit says so and the INT8 model in use stays', async () => {
  const SSD = fileURLToPath(new URL('./fixtures/tflite_ssd/', import.meta.url));
  const fp = await uploadModel(s, SSD + 'ssd_fast.tflite');
  assert.equal(fp.error, '');
  const r = await own(SSD + 'ssd_fast_int8.tflite');
  assert.match(r.result, /Your INT8 model ssd_fast_int8\.tflite is in use: agreement with FP32 mAP@0\.5 \d\.\d{3} on 7 images/, r.result);
  assert.match(r.report, /mAP@0\.5 \d\.\d{3}/);
  assert.match(r.report, /size: FP32 0\.07 MB → 0\.03 MB \(0\.44×\)/, r.report);
  assert.match(r.report, /qplay compare .*ssd_fast_int8\.tflite --images www\/samples/);
  assert.doesNotMatch(r.report, /Warning:/, 'a twin with fine scores gets no score warning');
  assert.equal(r.error, '');
  assert.equal(r.qatHidden, true, 'no fine-tuning of a model qplay did not quantize');
  assert.ok(r.int8Dets > 0, 'the INT8 pane runs the twin');
  await det().screenshot({ path: `${ARTIFACTS}own-int8.png` });
  // A file whose outputs do not fit the FP32 model's profile: refused with the reason; the twin
  // stays the INT8 model in use, and the page says so.
  const bad = await own(fileURLToPath(new URL('./fixtures/tflite/', import.meta.url)) + 'det_int8.tflite');
  assert.match(bad.result, /det_int8\.tflite was not loaded as the INT8 model: .*The INT8 model in use is still your ssd_fast_int8\.tflite\./, bad.result);
  assert.match(bad.error, /det_int8\.tflite/);
  assert.match(bad.report, /ssd_fast_int8\.tflite/);
  assert.ok(bad.int8Dets > 0);
  // Not a model at all.
  const junk = `${ARTIFACTS}junk_int8.onnx`;
  (await import('node:fs')).writeFileSync(junk, 'not a model');
  const j = await own(junk);
  assert.match(j.result, /junk_int8\.onnx was not loaded as the INT8 model/, j.result);
});

test('your own INT8 model: a YOLOv8 export quantized by onnxruntime (QOperator: QLinearSigmoid, QLinearMul, QLinearSoftmax) runs beside its FP32 export', async () => {
  // The page had another model's own INT8 model in use (the test above): a new FP32 model loads
  // and the old report goes with it (it once threw here, and the load never finished).
  const fp = await load('yolov8_custom18.onnx');
  assert.equal(fp.error, '');
  assert.deepEqual(await det().evaluate((el) => [el.shadowRoot.querySelector('.qreport').hidden, el.shadowRoot.querySelector('.qreport-body').textContent]), [true, '']);
  const r = await own(FIX + 'yolov8_custom18_qop.onnx');
  assert.equal(r.error, '');
  assert.match(r.result, /Your INT8 model yolov8_custom18_qop\.onnx is in use: agreement with FP32 mAP@0\.5 \d\.\d{3} on 7 images/, r.result);
  assert.match(r.report, /size: FP32 1\.53 MB → 0\.54 MB \(0\.35×\)/, r.report);
  // onnxruntime quantized boxes and scores as one tensor: the page says why the scores pass 100 %.
  assert.match(r.report, /Warning: the INT8 model's detection scores take \d+ distinct value\(s\).*above 1.*nodes_to_exclude/, r.report);
  assert.ok(r.int8Dets > 0, 'the INT8 pane runs the QOperator model');
  await det().screenshot({ path: `${ARTIFACTS}own-int8-qoperator.png` });
});

test('your own INT8 model: the same export quantized by onnxruntime\'s quantize_dynamic (DynamicQuantizeLinear + ConvInteger) runs beside it', async () => {
  const TORCH = fileURLToPath(new URL('./fixtures/torch_ops/', import.meta.url));
  const r = await own(TORCH + 'dynamic_yolov8.onnx');
  assert.equal(r.error, '');
  assert.match(r.result, /Your INT8 model dynamic_yolov8\.onnx is in use: agreement with FP32 mAP@0\.5 1\.000 on 7 images/, r.result);
  assert.match(r.report, /size: FP32 1\.53 MB → 0\.55 MB \(0\.36×\)/, r.report);
  assert.ok(r.int8Dets > 0, 'the INT8 pane runs the dynamically quantized model');
  // Both panes ran in one worker on the same threads, and each timings line says so (the INT8
  // line once said "1 thread" whatever the pool).
  const where = await det().evaluate((el) => ['.timings', '.int8-timings'].map((q) => el.shadowRoot.querySelector(q).textContent.match(/\(wasm, CPU, \d+ threads?\)/)?.[0]));
  assert.ok(where[0], where);
  assert.equal(where[1], where[0]);
  await det().screenshot({ path: `${ARTIFACTS}own-int8-dynamic.png` });
});

test('an ONNX INT8 export loaded as the model: its pane says it is quantized, and Quantize says why it cannot quantize it again and what to do', async () => {
  const r = await load('yolov8_custom18_qop.onnx');
  assert.equal(r.error, '');
  assert.match(await det().locator('canvas.fp32').getAttribute('aria-label'), /by yolov8_custom18_qop\.onnx \(quantized\)/);
  assert.equal((await det().locator('.fp32-h').textContent()).trim().split(/\s+/).slice(0, 3).join(' '), 'Your quantized model');
  // onnxruntime put its boxes (pixels) and scores (0–1) on one scale: every score is 1.882. The
  // list shows the number, not "188 %", and the pane says why, with no FP32 model beside it.
  assert.ok(r.result.detections.every((d) => d.score > 1), JSON.stringify(r.result.detections.slice(0, 2)));
  assert.match(await det().locator('ol.dets li').first().textContent(), / score 1\.88 — \[/);
  const note = await det().locator('.fp32-score-note').textContent();
  assert.match(note, /^Warning: scores above 1 \(up to 1\.882; .* runs on quantized values.*nodes_to_exclude/);
  await det().screenshot({ path: `${ARTIFACTS}upload-onnx-int8-scores.png` });
  await det().locator('button[name=quantize]').click();
  await s.page.waitForFunction(() => {
    const el = document.querySelector('qplay-detector');
    const e = el.shadowRoot.querySelector('.error');
    return !el.running && !e.hidden && /quantized already/.test(e.textContent);
  }, null, { timeout: 120_000 });
  const err = await det().locator('.error').textContent();
  assert.match(err, /QLinearConv/);
  assert.match(err, /compare with your own INT8 model/);
  assert.equal(await det().evaluate((el) => el.int8), null, 'no INT8 model came of it');
  await det().screenshot({ path: `${ARTIFACTS}upload-onnx-int8-quantize.png` });
});

test('no page errors', () => assert.deepEqual(s.errors, []));
