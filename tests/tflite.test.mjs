// Full-integer TFLite models in the browser's wasm module give LiteRT's reference kernels' output
// codes exactly (issue #17), as the native build does (crate/core/tests/tflite_int8.rs): the
// page's module has its own vector path for TFLite's fixed-point requantization (wasm SIMD128),
// and this is its check. The fixtures are tests/fixtures/tflite/*_int8, the 16x8 models *_16x8
// (int16 activations), TF1's uint8 det_uint8 and layers_int8 (TRANSPOSE_CONV with a bias, PRELU) (LiteRT's input codes and outputs); the model is loaded as the page
// loads an upload (float in, QUANTIZE, the integer ops, DEQUANTIZE, float out), fed the input
// codes' exact float values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { open } from './browser.mjs';
import { readNpy } from './npy.mjs';

const FIX = new URL('./fixtures/tflite/', import.meta.url);
// The plain module, and its relaxed SIMD twin where it was built (int8 GEMM on four-byte dot
// products: relaxed.test.mjs).
const MODULES = ['pkg', 'pkg-relaxed'].filter((d) => existsSync(new URL(`../www/${d}/qplay_wasm_bg.wasm`, import.meta.url)));

test('int8, 16x8 and uint8 TFLite fixtures in the page: every output code equals the LiteRT reference kernels', async () => {
  const s = await open('tests/fixtures/README.md');
  try {
    const relaxed = await s.page.evaluate(async () => (await import('/www/threads.js')).hasRelaxedSimd());
    for (const pkg of MODULES.filter((d) => relaxed || !d.endsWith('-relaxed'))) for (const name of ['det_int8', 'cnn_int8', 'det_16x8', 'cnn_16x8', 'det_uint8', 'concat_uint8', 'layers_int8']) {
      const meta = JSON.parse(readFileSync(new URL(`${name}/meta.json`, FIX), 'utf8'));
      const [inScale, inZp] = meta.input.quantization;
      const [outScale, outZp] = meta.outputs[0].quantization;
      const xq = readNpy(new URL(`${name}/input_q.npy`, FIX));
      const want = readNpy(new URL(`${name}/output_0.npy`, FIX));
      const Codes = name.endsWith('16x8') ? Int16Array : name.endsWith('uint8') ? Uint8Array : Int8Array;
      assert.ok(xq.data instanceof Codes && want.data instanceof Codes, `${name}: ${Codes.name} fixtures`);
      // The float whose quantization is the code (no ties: it sits on the grid).
      const x = Array.from(xq.data, (q) => Math.fround((q - inZp) * Math.fround(inScale)));
      const out = await s.page.evaluate(async ({ pkg, name, shape, x }) => {
        const m = await import(`/www/${pkg}/qplay_wasm.js`);
        await m.default();
        const bytes = new Uint8Array(await (await fetch(`/tests/fixtures/tflite/${name}.tflite`)).arrayBuffer());
        const model = new m.WasmModel(bytes, shape);
        return { y: Array.from(model.run(new Float32Array(x))) };
      }, { pkg, name, shape: meta.input.shape, x });
      assert.equal(out.y.length, want.data.length, `${pkg} ${name}: output size`);
      const codes = out.y.map((v) => Math.round(v / outScale) + outZp);
      const differ = codes.filter((c, i) => c !== want.data[i]).length;
      assert.equal(differ, 0, `${pkg} ${name}: ${differ} of ${codes.length} output codes differ from LiteRT's`);
      // Not a constant output: the check can fail.
      assert.ok(new Set(codes).size > 3, `${name}: ${new Set(codes).size} distinct codes`);
    }
    // (A text page has no favicon: its 404 is the only console error allowed.)
    assert.deepEqual(s.errors.filter((e) => !/status of 404/.test(e)), []);
  } finally {
    await s.close();
  }
});
