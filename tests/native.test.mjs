// The page's wasm kernels against the native CLI's: the plain single-thread module (www/pkg/, what
// a browser without relaxed SIMD runs) and `qplay infer` must give the same bits for the same int8
// model and input. The wasm module has vector paths of its own (SIMD128) for QuantizeLinear, the
// direct 3×3 depthwise convolution and the int8 GEMM; natively they are tested against plain
// integer references (crate/core/tests/int8.rs, avx2.rs), so equality here checks the browser's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from './browser.mjs';
import { readNpy } from './npy.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const QPLAY = `${ROOT}target/debug/qplay`;

/** A float32 .npy file (format 1.0) of `shape`. */
function writeNpyF32(path, shape, data) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}, ), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head.writeUInt8(1, 6);
  head.writeUInt8(0, 7);
  head.writeUInt16LE(header.length, 8);
  writeFileSync(path, Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(new Float32Array(data).buffer)]));
}

test('plain wasm module: an int8 person detector gives the native CLI\'s outputs bit for bit, NaN and ±inf inputs included', async () => {
  if (!existsSync(QPLAY)) execFileSync('cargo', ['build', '-q', '-p', 'qplay-cli'], { cwd: ROOT, stdio: 'inherit' });
  const s = await open('tests/fixtures/README.md', { webgpu: false });
  const dir = mkdtempSync(join(tmpdir(), 'qplay-native-'));
  try {
    const r = await s.page.evaluate(async () => {
      const plain = await import('/www/pkg/qplay_wasm.js');
      await plain.default();
      const bytes = new Uint8Array(await (await fetch('/www/models/person_ssdlite.onnx')).arrayBuffer());
      const profile = await (await fetch('/www/models/person_ssdlite.json')).text();
      const bmp = await createImageBitmap(await (await fetch('/www/samples/person.jpg')).blob());
      const c = new OffscreenCanvas(bmp.width, bmp.height).getContext('2d');
      c.drawImage(bmp, 0, 0);
      const rgba = c.getImageData(0, 0, bmp.width, bmp.height).data;
      const q = new plain.WasmQuantizer(bytes, profile);
      q.addImage(bmp.width, bmp.height, rgba);
      q.run({ method: 'minmax', originalBytes: bytes.byteLength });
      const int8 = q.onnxBytes();
      q.free();
      // The photo's top-left 300×300 pixels scaled to −1…1 (with the min-max input range, the
      // input scale is 2/255 and every pixel value lies halfway between two codes: ties), then
      // values QuantizeLinear must clamp or zero.
      const x = new Float32Array(3 * 300 * 300);
      for (let y = 0; y < 300; y++) for (let xx = 0; xx < 300; xx++) for (let ch = 0; ch < 3; ch++) {
        x[ch * 90000 + y * 300 + xx] = rgba[4 * (y * bmp.width + xx) + ch] / 127.5 - 1;
      }
      [NaN, Infinity, -Infinity, 1e30, -1e30, 3e9, -0].forEach((v, i) => { x[150 * 300 + 7 * i] = v; });
      const m = new plain.WasmModel(int8, [1, 3, 300, 300]);
      // Warm runs first: the engine's optimizing tier must give the same bits as its first.
      for (let i = 0; i < 3; i++) m.run(x);
      const out = m.run(x);
      m.free();
      return { simd: plain.simdName(), int8: Array.from(int8), x: Array.from(x), out: Array.from(out) };
    });
    assert.equal(r.simd, 'simd128');
    const model = join(dir, 'int8.onnx');
    writeFileSync(model, Uint8Array.from(r.int8));
    writeNpyF32(join(dir, 'x.npy'), [1, 3, 300, 300], r.x);
    execFileSync(QPLAY, ['infer', model, '--input', join(dir, 'x.npy'), '--out', join(dir, 'out'), '--threads', '1'], { stdio: 'pipe' });
    const native = readNpy(join(dir, 'out', '0.npy')).data;
    const page = new Float32Array(r.out);
    assert.equal(page.length, native.length);
    const [a, b] = [new Uint32Array(page.buffer), new Uint32Array(native.buffer, native.byteOffset, native.length)];
    let differ = 0;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) differ++;
    assert.equal(differ, 0, `${differ} of ${a.length} output values differ between the page and the CLI`);
    // A test that cannot fail proves nothing: the outputs are not all one value.
    assert.ok(new Set(r.out.slice(0, 400)).size > 10);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await s.close();
  }
});
