// The WebGPU backend in a real browser: headless Chromium's SwiftShader adapter (a CPU emulation
// of a GPU, so no timing here means anything for real GPUs). The face detector runs entirely on
// the GPU; its INT8 detections equal the CPU's exactly (the int8 kernels are bit-exact), its FP32
// ones agree to rounding; a lost device is re-created and detection goes on; full-integer
// TFLite models (int8 and 16x8) run in the TFLite kernels with LiteRT's codes; without an
// adapter the page stays on the CPU and says why.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { open, ARTIFACTS } from './browser.mjs';
import { readNpy } from './npy.mjs';
import { uploadModel } from './upload.mjs';
import { fakeWebcam, fakeCameraFlags } from './webcam.mjs';

let s;
after(async () => s && s.close());

const det = () => s.page.locator('qplay-detector');
/** Waits for a finished result newer than `prev` (and, with `int8`, one that has the INT8 pane). */
async function next(prev, { int8 = false } = {}) {
  await s.page.waitForFunction(([p, i8]) => {
    const el = document.querySelector('qplay-detector');
    return el.result && !el.running && el.result.id !== p && (!i8 || el.result.int8);
  }, [prev, int8], { timeout: 240_000 });
  return det().evaluate((el) => ({
    id: el.result.id, on: el.result.on, int8on: el.result.int8?.on ?? null, recovered: el.result.recovered ?? null,
    fp32: el.result.detections, int8: el.result.int8?.detections ?? null,
    note: el.shadowRoot.querySelector('.backend-note').textContent,
    timings: el.shadowRoot.querySelector('.timings').textContent,
  }));
}
const boxes = (ds) => ds.map((d) => `${d.label} ${d.score.toFixed(4)} ${d.bbox.map((v) => v.toFixed(2)).join(',')}`);

test('face detector on WebGPU: FP32 and INT8 entirely on the GPU, equal to the CPU, device loss recovered', async () => {
  s = await open('index.html?embed=detector&model=face&backend=webgpu&image=www/samples/astronaut.png', { viewport: { width: 1100, height: 1000 } });
  const gpu = await next(null);
  assert.equal(gpu.on, 'webgpu', gpu.note);
  assert.match(gpu.note, /In use: WebGPU — .*swiftshader/i);
  assert.match(gpu.note, /FP32: 93 of 93 steps on the GPU/);
  assert.match(gpu.note, /software emulation/);
  assert.match(gpu.timings, /WebGPU: the frame is pre-processed on the GPU/);
  assert.equal(await det().locator('select[name=backend]').inputValue(), 'webgpu');
  assert.ok(gpu.fp32.some((d) => d.label === 'face'), JSON.stringify(gpu.fp32));

  // Quantize: the INT8 model is placed on the GPU too.
  await det().locator('button[name=quantize]').click();
  const q = await next(gpu.id, { int8: true });
  assert.equal(q.int8on, 'webgpu');
  assert.match(q.note, /INT8: 111 of 111 steps on the GPU/);
  assert.ok(q.int8.some((d) => d.label === 'face'));
  await s.page.screenshot({ path: `${ARTIFACTS}webgpu-face.png` });

  // The device is lost (as in a driver reset): the next frame re-creates it and goes on.
  await det().evaluate((el) => el.engine.loseDevice());
  await det().evaluate((el) => el.run());
  const r = await next(q.id, { int8: true });
  assert.equal(r.on, 'webgpu');
  assert.match(r.recovered ?? '', /GPU device was lost .*Destroyed.*a new one was created/, JSON.stringify(r.recovered));
  assert.match(r.note, /a new one was created and detection went on/);
  assert.deepEqual(boxes(r.int8), boxes(q.int8));

  // Back on the CPU: INT8 identical (bit-exact kernels), FP32 the same boxes to rounding.
  await det().locator('select[name=backend]').selectOption('cpu');
  const cpu = await next(r.id, { int8: true });
  assert.equal(cpu.on, 'cpu');
  assert.equal(cpu.int8on, 'cpu');
  assert.match(cpu.note, /In use: CPU/);
  assert.deepEqual(cpu.int8, r.int8, 'INT8 detections on the GPU and the CPU differ');
  assert.equal(cpu.fp32.length, r.fp32.length);
  for (const [a, b] of cpu.fp32.map((d, i) => [d, r.fp32[i]])) {
    assert.equal(a.label, b.label);
    assert.ok(Math.abs(a.score - b.score) < 1e-4, `${a.score} vs ${b.score}`);
    a.bbox.forEach((v, k) => assert.ok(Math.abs(v - b.bbox[k]) < 0.05, `${a.bbox} vs ${b.bbox}`));
  }
  assert.deepEqual(s.errors, []);
  await s.close();
  s = null;
});

test('a full-integer TFLite SSD on WebGPU: its convolutions run in the TFLite kernels, detections equal the CPU\'s', async () => {
  // ssd_fast_int8.tflite: the converter's int8 twin of an SSD, ending in TFLite_Detection_PostProcess.
  // Its int8 convolutions run on the GPU with TFLite's fixed-point requantization (tflconv.wgsl);
  // the CPU gives LiteRT's codes, so the GPU's detections must equal the CPU's exactly.
  s = await open('index.html?embed=detector&model=face&backend=webgpu&image=www/samples/person.jpg', { viewport: { width: 1100, height: 1000 } });
  const first = await next(null);
  const up = await uploadModel(s, fileURLToPath(new URL('./fixtures/tflite_ssd/', import.meta.url)) + 'ssd_fast_int8.tflite');
  assert.equal(up.error, '');
  const gpu = await next(first.id);
  assert.equal(gpu.on, 'webgpu', gpu.note);
  const [, onGpu, steps] = gpu.note.match(/(\d+) of (\d+) steps on the GPU/) ?? [];
  assert.ok(Number(onGpu) >= 10, `TFLite steps on the GPU: ${gpu.note}`);
  // The model is integer already: its pane and placement say so, not "FP32".
  assert.match(gpu.note, /Full-integer model: \d+ of \d+ steps on the GPU/, gpu.note);
  assert.match(await det().evaluate((el) => el.shadowRoot.querySelector('.fp32-h').textContent), /Your full-integer model/);
  assert.match(await det().locator('canvas.fp32').getAttribute('aria-label'), /by ssd_fast_int8\.tflite \(full-integer\)/);
  assert.ok(gpu.fp32.length > 0, 'detections on person.jpg');
  await s.page.screenshot({ path: `${ARTIFACTS}webgpu-tflite-int8.png` });
  await det().locator('select[name=backend]').selectOption('cpu');
  const cpu = await next(gpu.id);
  assert.equal(cpu.on, 'cpu');
  assert.deepEqual(cpu.fp32, gpu.fp32, `detections on the GPU (${onGpu} of ${steps} steps) and the CPU differ`);
  assert.deepEqual(s.errors, []);
  await s.close();
  s = null;
});

test('16x8 TFLite models on WebGPU: their int16 layers run in the TFLite kernels, every output code LiteRT\'s', async () => {
  // int16 activations (Flat16 on the GPU), int8 weights, int64 biases summed in 64 bits: the
  // convolutions, ADD/SUB/MUL, pools, MEAN, resizes, activation tables, requantizations, data movement
  // on the GPU; a 16x8 FULLY_CONNECTED, int16 SOFTMAX and the float interface on
  // the CPU. The outputs must be LiteRT's reference kernels' codes (tests/fixtures/tflite/*_16x8).
  s = await open('tests/fixtures/README.md');
  const FIX = new URL('./fixtures/tflite/', import.meta.url);
  for (const [name, least] of [['det_16x8', 30], ['cnn_16x8', 8]]) {
    const meta = JSON.parse(readFileSync(new URL(`${name}/meta.json`, FIX), 'utf8'));
    const [inScale, inZp] = meta.input.quantization;
    const [outScale, outZp] = meta.outputs[0].quantization;
    const xq = readNpy(new URL(`${name}/input_q.npy`, FIX));
    const want = readNpy(new URL(`${name}/output_0.npy`, FIX));
    const x = Array.from(xq.data, (q) => Math.fround((q - inZp) * Math.fround(inScale)));
    const out = await s.page.evaluate(async ({ name, shape, x }) => {
      const m = await import('/www/pkg/qplay_wasm.js');
      await m.default();
      const bytes = new Uint8Array(await (await fetch(`/tests/fixtures/tflite/${name}.tflite`)).arrayBuffer());
      const model = new m.WasmModel(bytes, shape);
      const gpu = await m.WasmGpu.create();
      const summary = await model.useGpu(gpu);
      return { summary, y: Array.from(await model.runGpu(new Float32Array(x))) };
    }, { name, shape: meta.input.shape, x });
    const [, onGpu] = out.summary.match(/(\d+) of \d+ steps on the GPU/) ?? [];
    assert.ok(Number(onGpu) >= least, `${name}: ${out.summary}`);
    assert.match(out.summary, /qplay\.tfl\.Conv2D ×\d+.*on the CPU/, out.summary);
    const codes = out.y.map((v) => Math.round(v / outScale) + outZp);
    assert.equal(codes.length, want.data.length, `${name}: output size`);
    const differ = codes.filter((c, i) => c !== want.data[i]).length;
    assert.equal(differ, 0, `${name} on WebGPU: ${differ} of ${codes.length} output codes differ from LiteRT's (${out.summary})`);
    assert.ok(new Set(codes).size > 3, `${name}: ${new Set(codes).size} distinct codes`);
  }
  assert.deepEqual(s.errors.filter((e) => !/status of 404/.test(e)), []);
  await s.close();
  s = null;
});

test('no WebGPU adapter: the page stays on the CPU and says why', async () => {
  s = await open('index.html?embed=detector&model=face&backend=webgpu&image=www/samples/astronaut.png', { webgpu: false });
  const r = await next(null);
  assert.equal(r.on, 'cpu');
  assert.match(r.note, /In use: CPU — .*(WebGPU failed: the browser has WebGPU but offers no GPU adapter|WebGPU is not available)/, r.note);
  assert.equal(await det().locator('select[name=backend]').inputValue(), 'cpu');
  assert.ok(r.fp32.some((d) => d.label === 'face'));
  await s.page.screenshot({ path: `${ARTIFACTS}webgpu-none.png` });
  await s.close();
  s = null;
});

test('live webcam frames on WebGPU: boxes on every frame, no GPU buffer or wasm memory growth', { timeout: 900_000 }, async () => {
  // A short soak on SwiftShader (about a second per frame pair here): GPU_SOAK_FRAMES overrides.
  const frames = Number(process.env.GPU_SOAK_FRAMES ?? 12);
  s = await open('index.html?embed=detector&model=face&backend=webgpu', { args: fakeCameraFlags(fakeWebcam(['astronaut'], { framesEach: 15 })) });
  const first = await next(null);
  assert.equal(first.on, 'webgpu');
  await det().locator('button[name=quantize]').click();
  await next(first.id, { int8: true });
  const frameEvents = [];
  await s.page.exposeFunction('qplayFrame', (d) => frameEvents.push(d));
  await s.page.evaluate(() => document.addEventListener('qplay-frame', (e) => window.qplayFrame({
    live: e.detail.live, backend: e.detail.backend, int8: e.detail.int8?.on, faces: e.detail.detections.length, gpu: e.detail.gpuBuffers, wasm: e.detail.memory,
  })));
  const t0 = Date.now();
  await det().locator('button[name=camera]').click();
  await s.page.waitForFunction((k) => document.querySelector('qplay-detector').frameNo >= k, frames, { timeout: 840_000, polling: 500 });
  const seconds = (Date.now() - t0) / 1000;
  const live = await det().evaluate((el) => el.shadowRoot.querySelector('.live').innerText);
  await det().locator('button[name=stop]').click();
  const ev = frameEvents.filter((e) => e.live);
  assert.ok(ev.length >= frames, `${ev.length} live frames`);
  assert.ok(ev.every((e) => e.backend === 'webgpu' && e.int8 === 'webgpu'), 'every frame ran FP32 and INT8 on WebGPU');
  assert.ok(ev.filter((e) => e.faces > 0).length >= ev.length * 0.9, 'faces found on the frames');
  // Warm-up: the first 3 frames; after that nothing may be created on the GPU or grow in wasm.
  const [a, b] = [ev[3], ev.at(-1)];
  const result = { frames: ev.length, seconds, fps: ev.length / seconds, gpu_buffers: a.gpu, gpu_buffers_growth: b.gpu[0] - a.gpu[0], gpu_bytes_growth: b.gpu[1] - a.gpu[1], wasm_growth_bytes: b.wasm - a.wasm, live };
  console.log(JSON.stringify(result, null, 1));
  writeFileSync(`${ARTIFACTS}webgpu-live.json`, JSON.stringify(result, null, 2));
  assert.match(live, /FPS displayed/);
  assert.equal(result.gpu_buffers_growth, 0, 'GPU buffers were created during live frames');
  assert.equal(result.wasm_growth_bytes, 0, 'wasm memory grew');
  assert.deepEqual(s.errors, []);
  await det().evaluate((el) => el.dispose());
});
