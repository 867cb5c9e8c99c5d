// The benchmark page (tests/bench/) on the small face model, two timed runs: the result has the
// shape scripts/bench.mjs reads, qplay and onnxruntime-web agree on the output, ORT loads under
// the server's CSP from our own origin. No timing assertions (the real runs: `npm run bench`).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { open } from './browser.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
let s;
before(async () => { s = await open('tests/bench/index.html?model=www/models/blazeface_short.onnx&iters=2&warmup=1&webgpu=0'); });
after(async () => s && s.close());

test('bench page: blazeface_short, both engines, outputs agree', async () => {
  await s.page.waitForFunction(() => window.__bench, null, { timeout: 180_000 });
  const b = await s.page.evaluate(() => window.__bench);
  assert.equal(b.error, undefined, `bench failed: ${b.error} (while ${b.stage})`);
  assert.deepEqual(b.shape, [1, 3, 128, 128]);
  assert.deepEqual(b.results.map((r) => r.engine), ['qplay', 'onnxruntime-web']);
  for (const r of b.results) {
    assert.equal(r.backend, 'wasm');
    assert.equal(r.precision, 'fp32');
    assert.equal(r.runs.length, 2);
    assert.equal(r.warmup_runs_excluded.length, 1);
    for (const t of [...r.runs, r.median_ms, r.min_ms]) assert.ok(Number.isFinite(t) && t > 0, `time ${t}`);
    assert.ok(r.min_ms <= r.median_ms);
  }
  assert.match(b.userAgent, /Chrom/);
  assert.equal(b.versions['onnxruntime-web'], '1.30.0');

  const a = b.agreement;
  assert.equal(a.reference, 'onnxruntime-web');
  assert.ok(a.elements > 0 && a.elements === a.output_shape.reduce((x, y) => x * y, 1), JSON.stringify(a));
  assert.ok(a.output_range > 0, `output range ${a.output_range}`);
  assert.equal(a.mismatched_non_finite, 0);
  assert.ok(a.max_abs_diff <= 1e-4 * a.output_range, `max |Δ| ${a.max_abs_diff} vs range ${a.output_range}`);

  const table = await s.page.locator('#results tbody tr').allTextContents();
  assert.equal(table.length, 2);
  assert.match(await s.page.locator('#ratio').textContent(), /qplay \/ onnxruntime-web \(median\): [\d.]+×/);
  // onnxruntime-web's module and wasm come from our origin; no worker, no other origin.
  assert.ok(s.requests.some((u) => u.endsWith('/node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm')), s.requests.join('\n'));
  for (const u of s.requests) assert.ok(u.startsWith(s.url), `request to another origin: ${u}`);
  assert.deepEqual(s.errors, []);
});

test('bench page: INT8 quantized in the page from a sample photo, timed beside FP32, in blocks of runs', async () => {
  await s.page.goto(`${s.url}tests/bench/index.html?model=www/models/blazeface_short.onnx&iters=3&block=2&warmup=1&webgpu=0`
    + '&calib=person.jpg&profile=www/models/blazeface_short.json');
  await s.page.waitForFunction(() => window.__bench, null, { timeout: 180_000 });
  const b = await s.page.evaluate(() => window.__bench);
  assert.equal(b.error, undefined, `bench failed: ${b.error} (while ${b.stage})`);
  assert.deepEqual(b.results.map((r) => `${r.engine} ${r.precision}`), ['qplay fp32', 'onnxruntime-web fp32', 'qplay int8']);
  // Three timed runs each in turns of two (2 + 1), every turn after one untimed run.
  assert.equal(b.block, 2);
  for (const r of b.results) {
    assert.equal(r.runs.length, 3);
    assert.equal(r.block_first_runs_excluded.length, 2);
    assert.equal(r.warmup_runs_excluded.length, 1);
  }
  assert.match(b.int8.source, /quantized in this page from 1 sample photos/);
  assert.ok(Number.isFinite(b.int8.sqnr_db_vs_fp32) && b.int8.sqnr_db_vs_fp32 > 10, `INT8 SQNR ${b.int8.sqnr_db_vs_fp32}`);
  for (const k of ['ratio_median_int8_over_ort_fp32', 'ratio_median_int8_over_qplay_fp32']) assert.ok(b[k] > 0, k);
  // The INT8 plan runs on the integer kernels: its profile has QLinearConv and no float Conv.
  assert.ok(b.profile_ms_by_op.qplay_int8.QLinearConv > 0, JSON.stringify(b.profile_ms_by_op));
  assert.equal(b.profile_ms_by_op.qplay_int8.Conv, undefined);
  assert.deepEqual(s.errors, []);
});

test('bench page: the WebGPU engines (SwiftShader) beside the wasm ones, outputs checked', async () => {
  await s.page.goto(`${s.url}tests/bench/index.html?model=www/models/blazeface_short.onnx&iters=1&warmup=0&giters=1&gwarmup=0`
    + '&calib=person.jpg&profile=www/models/blazeface_short.json');
  await s.page.waitForFunction(() => window.__bench, null, { timeout: 300_000 });
  const b = await s.page.evaluate(() => window.__bench);
  assert.equal(b.error, undefined, `bench failed: ${b.error} (while ${b.stage})`);
  assert.deepEqual(b.results.map((r) => `${r.engine} ${r.backend} ${r.precision}`), [
    'qplay wasm fp32', 'onnxruntime-web wasm fp32', 'qplay wasm int8',
    'qplay webgpu fp32', 'qplay webgpu int8', 'onnxruntime-web webgpu fp32',
  ], JSON.stringify(b.webgpu));
  const g = b.webgpu;
  assert.match(g.adapter, /swiftshader/i);
  assert.match(g.qplay_fp32_placement, /^93 of 93 steps on the GPU/);
  assert.match(g.qplay_int8_placement, /^111 of 111 steps on the GPU/);
  assert.equal(g.qplay_int8_vs_cpu_values_differing, 0, 'qplay INT8 on WebGPU differs from its CPU output');
  assert.ok(g.qplay_fp32_vs_cpu.max_abs_diff_over_range <= 1e-4, JSON.stringify(g.qplay_fp32_vs_cpu));
  assert.ok(g.ort_webgpu_vs_qplay_cpu.max_abs_diff_over_range <= 1e-4, JSON.stringify(g.ort_webgpu_vs_qplay_cpu));
  for (const k of ['ratio_median_webgpu_int8_over_ort_webgpu_fp32', 'ratio_median_webgpu_fp32_over_ort_webgpu_fp32']) assert.ok(b[k] > 0, k);
  for (const u of s.requests) assert.ok(u.startsWith(s.url), `request to another origin: ${u}`);
  assert.deepEqual(s.errors, []);
});

test('bench page: a missing model is a clear error', async () => {
  await s.page.goto(`${s.url}tests/bench/index.html?model=www/models/nope.onnx`);
  await s.page.waitForFunction(() => window.__bench, null, { timeout: 30_000 });
  const b = await s.page.evaluate(() => window.__bench);
  assert.match(b.error, /HTTP 404/);
  assert.match(await s.page.locator('#status').textContent(), /error while fetching the model/);
});

test('npm run bench: a missing file exits 1 with a message', () => {
  const r = spawnSync(process.execPath, ['scripts/bench.mjs', 'www/models/nope.onnx'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /bench: no such file: www\/models\/nope\.onnx/);
});
