// Detector families beyond Ultralytics, dropped into the page with zero configuration (issue #12):
// NanoDet-Plus (GFL/DFL bins), RT-DETR (deformable attention: GridSample, LayerNormalization),
// YOLOv7 (anchor grid), D-FINE (a second input, orig_target_sizes), and a tf2onnx export with TensorFlow's boxes/scores/classes/count outputs
// and uint8 pixels. The files come from each family's own code and exporter
// (tests/fixtures/make_*_fixtures.py; random weights, so the boxes mean nothing — the decoding is
// checked against each family's own post-processing in crate/core/tests/).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { open, ARTIFACTS } from './browser.mjs';
import { uploadModel } from './upload.mjs';

const FIX = fileURLToPath(new URL('./fixtures/', import.meta.url));
let s;
before(async () => { s = await open('index.html'); });
after(async () => s && s.close());

const det = () => s.page.locator('qplay-detector');
/** Uploads tests/fixtures/<path> and waits for its first result (or an error); returns what the page shows. */
const load = (path) => uploadModel(s, FIX + path, { orError: true });

const families = [
  ['nanodet/nanodet_plus_m.onnx', /raw NanoDet-Plus \/ GFL head/],
  ['rtdetr/rtdetr_tiny.onnx', /RT-DETR's 100 query predictions/],
  ['yolov67/yolov7_tiny.onnx', /YOLOv5-style output: objectness and 80 classes/],
  // D-FINE's second input `orig_target_sizes` is fed the input's own size (aux_inputs).
  ['dfine/dfine_n_tiny.onnx', /orig_target_sizes/],
  // Last: the test after the loop reads this model's summary.
  ['tf_detections/ssd_tf.onnx', /boxes \(y1, x1, y2, x2 as fractions of the input, TensorFlow's convention\)/],
];

for (const [path, reading] of families) {
  test(`${path}: decodes with zero configuration`, async () => {
    const r = await load(path);
    assert.equal(r.error, '');
    assert.match(r.assumed, reading);
    assert.match(r.summary, /Every op is supported/);
    assert.ok(Array.isArray(r.result.detections));
    if (!path.startsWith('tf_')) assert.ok(r.result.detections.length > 0, 'random weights still give boxes');
    await det().locator('canvas.fp32').screenshot({ path: `${ARTIFACTS}family-${path.split('/')[0]}.png` });
  });
}

test('the uint8-input TensorFlow export says how its pixels are fed', async () => {
  const summary = await det().evaluate((el) => el.shadowRoot.querySelector('.summary').textContent);
  assert.match(summary, /takes uint8 pixels/);
});

test('no page errors', () => assert.deepEqual(s.errors, []));
