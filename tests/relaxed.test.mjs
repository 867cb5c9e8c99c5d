// The relaxed SIMD modules (www/pkg-relaxed/, www/pkg-threads-relaxed/: scripts/build-wasm.sh) run
// the int8 GEMM on four-byte dot products where the engine computes them exactly, and must give the
// plain modules' bits. Here: a model quantized in the page by the plain module, run by both on
// photos, every output value compared; the page picks the relaxed twin where the browser compiles
// relaxed SIMD and says so in the backend line and in `qplay-ready`. (The TFLite int8 fixtures,
// whose convolutions read B transposed and whose activations are int8, run in both modules in
// tflite.test.mjs; the packing and the zero-point flips of both exact forms are unit-tested
// natively in crate/core/src/ops/quant/qgemm.rs.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { open } from './browser.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BUILT = existsSync(`${ROOT}www/pkg-relaxed/qplay_wasm_bg.wasm`);

test('relaxed SIMD module: the int8 person detector\'s outputs equal the plain module\'s bit for bit', { skip: !BUILT && 'www/pkg-relaxed/ not built (QPLAY_WASM_RELAXED=0)' }, async (t) => {
  const s = await open('tests/fixtures/README.md', { webgpu: false });
  try {
    if (!await s.page.evaluate(async () => (await import('/www/threads.js')).hasRelaxedSimd())) {
      t.skip('this browser does not compile relaxed SIMD (the page loads the plain modules)');
      return;
    }
    const r = await s.page.evaluate(async () => {
      const [plain, relaxed] = [await import('/www/pkg/qplay_wasm.js'), await import('/www/pkg-relaxed/qplay_wasm.js')];
      await plain.default();
      await relaxed.default();
      const bytes = new Uint8Array(await (await fetch('/www/models/person_ssdlite.onnx')).arrayBuffer());
      const profile = await (await fetch('/www/models/person_ssdlite.json')).text();
      const pixels = async (name) => {
        const bmp = await createImageBitmap(await (await fetch(`/www/samples/${name}`)).blob());
        const c = new OffscreenCanvas(bmp.width, bmp.height).getContext('2d');
        c.drawImage(bmp, 0, 0);
        return { w: bmp.width, h: bmp.height, rgba: c.getImageData(0, 0, bmp.width, bmp.height).data };
      };
      const q = new plain.WasmQuantizer(bytes, profile);
      const cal = await pixels('camera.png');
      q.addImage(cal.w, cal.h, cal.rgba);
      q.run({ method: 'mse', originalBytes: bytes.byteLength });
      const int8 = q.onnxBytes();
      q.free();
      const shape = [1, 3, 300, 300];
      const [a, b] = [new plain.WasmModel(int8, shape), new relaxed.WasmModel(int8, shape)];
      const outs = [];
      for (const name of ['person.jpg', 'dog.jpg']) {
        const p = await pixels(name);
        // The photo's top-left 300×300 pixels, scaled to −1…1 as the profile says.
        const x = new Float32Array(3 * 300 * 300);
        for (let y = 0; y < 300; y++) for (let xx = 0; xx < 300; xx++) for (let ch = 0; ch < 3; ch++) {
          x[ch * 90000 + y * 300 + xx] = p.rgba[4 * (y * p.w + xx) + ch] / 127.5 - 1;
        }
        // Warm runs first: the engine's optimizing tier must give the same bits as its first.
        for (let i = 0; i < 3; i++) { a.run(x); b.run(x); }
        outs.push([Array.from(a.run(x)), Array.from(b.run(x))]);
      }
      return { simd: [plain.simdName(), relaxed.simdName()], outs };
    });
    assert.equal(r.simd[0], 'simd128');
    assert.match(r.simd[1], /^(relaxed-simd|simd128)$/);
    t.diagnostic(`this engine's relaxed module runs its int8 GEMM on ${r.simd[1] === 'relaxed-simd' ? 'exact four-byte dot products' : 'i16 pairs (its relaxed dot product is not exact)'}`);
    for (const [i, [plain, relaxed]] of r.outs.entries()) {
      assert.ok(plain.length > 1000 && new Set(plain).size > 100, `photo ${i}: ${plain.length} values, ${new Set(plain).size} distinct`);
      const differ = plain.filter((v, j) => !Object.is(v, relaxed[j])).length;
      assert.equal(differ, 0, `photo ${i}: ${differ} of ${plain.length} values differ`);
    }
    assert.deepEqual(s.errors.filter((e) => !/status of 404/.test(e)), []);
  } finally {
    await s.close();
  }
});
