// `npm run bench -- MODEL [--threads N] [--int8 Q.onnx | --no-int8] [--size WxH | --shape 1,3,H,W]
//                       [--iters N] [--warmup N] [--seed N] [--gpu-iters N] [--gpu-warmup N]
//                       [--no-webgpu] [--no-relaxed] [--gap MS] [--block N] [--json OUT.json] [--timeout SECONDS]`
// qplay (wasm FP32 and INT8) vs onnxruntime-web (wasm FP32), N threads each (default 1), on one ONNX model
// in headless Chromium: serves the repo, opens tests/bench/index.html, prints the table and the
// ratios. Without --int8, the page quantizes MODEL itself from the sample photos (defaults).
// Then the WebGPU engines (qplay FP32 and INT8, onnxruntime-web webgpu FP32) on the browser's
// adapter — in headless Chromium here, SwiftShader, a CPU emulation.
// MODEL is a path in the repo, or any .onnx file (copied under tests/artifacts/bench/ to serve).
import { chromium } from 'playwright-core';
import { copyFileSync, existsSync, mkdirSync, readdirSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { basename, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { serve } from './serve.mjs';
import { CHROMIUM_FLAGS } from '../tests/browser.mjs';

const ROOT = realpathSync(fileURLToPath(new URL('..', import.meta.url)));
const USAGE = `usage: npm run bench -- MODEL [--threads N] [--int8 Q.onnx | --no-int8] [--size WxH | --shape 1,3,H,W] [--iters N] [--warmup N] [--seed N] [--gpu-iters N] [--gpu-warmup N] [--no-webgpu] [--no-relaxed] [--gap MS] [--block N] [--json OUT.json] [--timeout SECONDS]
  MODEL      an .onnx file: a path in the repo (www/models/person_ssdlite.onnx) or anywhere else
  --threads  wasm threads for both engines (default 1): qplay's threaded module with a pool of N
             (www/pkg-threads/), onnxruntime-web with ort.env.wasm.numThreads = N
  --int8     a quantized (QDQ or QOperator) version of MODEL to time as qplay INT8; without it the
             page quantizes MODEL from the sample photos with qplay's defaults (--no-int8: skip)
  --size     input width×height (default: the model's static input shape; needed for dynamic dims)
  --shape    the full input shape, comma-separated (instead of --size)
  --iters    timed runs per engine (default 10); --warmup: untimed runs per engine (default 3)
  --gpu-iters, --gpu-warmup  timed and untimed runs per WebGPU engine (default 3 and 1: the
             headless browser's adapter is SwiftShader, seconds per run on the person detector)
  --no-webgpu  skip the WebGPU engines
  --gap      milliseconds of idle time after each wasm run (default 0), as between a camera's
             frames: with several threads each, one engine's pool still spinning after its run
             otherwise shares the cores with the next engine's run
  --block    timed runs per engine in a row (default 1: interleaved run by run): each turn
             starts with one untimed run, so the timed ones run as a page runs the engine alone
             (with several threads, no other engine's threads still spinning), turns alternating
  --no-relaxed qplay's plain modules (www/pkg/, www/pkg-threads/) even where the browser has
             relaxed SIMD (by default the page's choice: their relaxed SIMD twins)
  --json     also write {"results": [...], "agreement": {...}, ...} to this file
  --timeout  give up after this many seconds (default 900)`;

function die(msg, code = 1) {
  console.error(`bench: ${msg}`);
  process.exit(code);
}

let args;
try {
  args = parseArgs({
    allowPositionals: true,
    options: {
      size: { type: 'string' }, shape: { type: 'string' }, iters: { type: 'string', default: '10' }, threads: { type: 'string', default: '1' },
      warmup: { type: 'string', default: '3' }, seed: { type: 'string', default: '1' }, json: { type: 'string' },
      timeout: { type: 'string', default: '900' }, help: { type: 'boolean', short: 'h' },
      int8: { type: 'string' }, 'no-int8': { type: 'boolean' },
      'gpu-iters': { type: 'string', default: '3' }, 'gpu-warmup': { type: 'string', default: '1' }, 'no-webgpu': { type: 'boolean' }, 'no-relaxed': { type: 'boolean' }, gap: { type: 'string', default: '0' }, block: { type: 'string', default: '1' },
    },
  });
} catch (e) {
  die(`${e.message}\n${USAGE}`, 2);
}
const { values: opt, positionals } = args;
if (opt.help) { console.log(USAGE); process.exit(0); }
if (positionals.length !== 1) die(`expected one MODEL, got ${positionals.length}\n${USAGE}`, 2);
for (const k of ['iters', 'warmup', 'seed', 'timeout', 'gpu-iters', 'gpu-warmup', 'threads', 'gap', 'block']) {
  const min = k === 'iters' || k === 'timeout' || k === 'gpu-iters' || k === 'threads' || k === 'block' ? 1 : 0;
  if (!/^\d+$/.test(opt[k]) || Number(opt[k]) < min) die(`--${k} must be an integer ≥ ${min}, got "${opt[k]}"`, 2);
}
if (opt.size && !/^\d+[x×]\d+$/.test(opt.size)) die(`--size must be WxH, like 320x240, got "${opt.size}"`, 2);
if (opt.size && opt.shape) die('give --size or --shape, not both', 2);

// A model: served from where it is when it lies in the repo, else from a copy.
function served(path) {
  const given = resolve(path);
  if (!existsSync(given)) die(`no such file: ${path}`);
  if (!statSync(given).isFile()) die(`not a file: ${path}`);
  const real = realpathSync(given);
  let r = relative(ROOT, real);
  if (r.startsWith('..') || r.startsWith(sep) || /^[a-zA-Z]:/.test(r)) {
    const dir = resolve(ROOT, 'tests/artifacts/bench');
    mkdirSync(dir, { recursive: true });
    copyFileSync(real, resolve(dir, basename(real)));
    r = relative(ROOT, resolve(dir, basename(real)));
    console.log(`bench: ${path} is outside the repo; serving a copy at ${r}`);
  }
  return r;
}
const rel = served(positionals[0]);
const modelUrl = rel.split(sep).map(encodeURIComponent).join('/');

const q = new URLSearchParams({ model: modelUrl, iters: opt.iters, warmup: opt.warmup, seed: opt.seed, threads: opt.threads, giters: opt['gpu-iters'], gwarmup: opt['gpu-warmup'] });
if (opt['no-webgpu']) q.set('webgpu', '0');
if (opt['no-relaxed']) q.set('relaxed', '0');
if (opt.gap !== '0') q.set('gap', opt.gap);
if (opt.block !== '1') q.set('block', opt.block);
if (opt.size) q.set('size', opt.size);
if (opt.int8 && opt['no-int8']) die('give --int8 or --no-int8, not both', 2);
if (opt.int8) {
  q.set('int8', served(opt.int8).split(sep).map(encodeURIComponent).join('/'));
} else if (!opt['no-int8']) {
  const samples = readdirSync(resolve(ROOT, 'www/samples')).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort();
  q.set('calib', samples.join(','));
  const profile = rel.replace(/\.onnx$/i, '.json');
  if (profile !== rel && existsSync(resolve(ROOT, profile))) q.set('profile', profile.split(sep).map(encodeURIComponent).join('/'));
}
if (opt.shape) q.set('shape', opt.shape);

const { server, url } = await serve({ port: 0, quiet: true });
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_FLAGS });
const problems = [];
let exitCode = 0;
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
  await page.goto(`${url}tests/bench/index.html?${q}`);

  // Poll, printing the page's progress, until it posts a result or the time is up.
  const deadline = Date.now() + Number(opt.timeout) * 1000;
  let bench = null, last = '';
  while (!bench) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${opt.timeout} s (page status: "${last || 'not started'}")`
        + `${problems.length ? `\n  ${problems.join('\n  ')}` : ''}\n  raise --timeout, or lower --iters`);
    }
    await new Promise((r) => setTimeout(r, 500));
    [bench, last] = await page.evaluate(() => [window.__bench ?? null, window.__benchStatus ?? '']).catch(() => [null, last]);
    if (last && !bench && process.stderr.isTTY) process.stderr.write(`\r\x1b[K${last}`);
  }
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
  if (bench.error) {
    throw new Error(`${bench.error}\n  (while ${bench.stage}; model ${rel})${problems.length ? `\n  ${problems.join('\n  ')}` : ''}`);
  }
  bench.chromium = browser.version();
  print(bench, rel);
  if (opt.json) {
    writeFileSync(opt.json, `${JSON.stringify({ ...bench, model: rel }, null, 2)}\n`);
    console.log(`wrote ${opt.json}`);
  }
} catch (e) {
  console.error(`bench: ${e.message}`);
  exitCode = 1;
} finally {
  await browser.close();
  await new Promise((r) => server.close(r));
}
process.exit(exitCode);

function print(b, model) {
  const a = b.agreement;
  const rows = [['engine', 'backend', 'precision', 'median ms', 'min ms']]
    .concat(b.results.map((r) => [r.engine, r.backend, r.precision, r.median_ms.toFixed(2), r.min_ms.toFixed(2)]));
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => (i >= 3 ? String(c).padStart(w[i]) : String(c).padEnd(w[i]))).join('  ');
  const [qp, ort] = b.results;
  console.log(`model ${model}  input ${b.input} [${b.shape.join('×')}]  ${b.iters} timed runs per engine (+${b.warmup} warm-up, excluded), interleaved`);
  console.log(`Chromium ${b.chromium}  qplay ${b.versions.qplay}  onnxruntime-web ${b.versions['onnxruntime-web']}  (${b.threads} thread${b.threads > 1 ? 's' : ''} each; ${b.hardware_concurrency} hardware threads; qplay's int8 on ${b.simd ?? 'simd128'}${b.gap_ms ? `; ${b.gap_ms} ms idle after each run` : ''}${b.block > 1 ? `; ${b.block} runs in a row per engine` : ''})\n`);
  console.log(line(rows[0]));
  console.log(w.map((n) => '-'.repeat(n)).join('  '));
  for (const r of rows.slice(1)) console.log(line(r));
  console.log(`\nqplay/ORT: ${(qp.median_ms / ort.median_ms).toFixed(2)}× (median), ${(qp.min_ms / ort.min_ms).toFixed(2)}× (min), `
    + `${b.ratio_paired_median_qplay_over_ort.toFixed(2)}× (median of per-run ratios; run i of each engine back to back)`);
  if (b.int8) {
    console.log(`qplay INT8 / onnxruntime-web FP32: ${b.ratio_median_int8_over_ort_fp32.toFixed(2)}× (median), `
      + `${b.ratio_min_int8_over_ort_fp32.toFixed(2)}× (min), ${b.ratio_paired_median_int8_over_ort_fp32.toFixed(2)}× (median of per-run ratios); `
      + `qplay INT8 / qplay FP32: ${b.ratio_median_int8_over_qplay_fp32.toFixed(2)}× (median), ${b.ratio_min_int8_over_qplay_fp32.toFixed(2)}× (min)`);
    console.log(`INT8 model: ${b.int8.source}; SQNR of its ${b.int8.output} vs qplay FP32 on the bench input: ${b.int8.sqnr_db_vs_fp32} dB`);
  }
  const g = b.webgpu;
  if (g?.skipped) console.log(`WebGPU: skipped (${g.skipped})`);
  else if (g) {
    console.log(`WebGPU adapter: ${g.adapter}${g.fallback_adapter ? ' (fallback adapter)' : ''}; dot4I8Packed ${g.dot4I8Packed ? 'yes' : 'no'}; ${g.iters} timed runs per engine (+${g.warmup} warm-up), interleaved`);
    console.log(`  qplay FP32 placement: ${g.qplay_fp32_placement}`);
    if (g.qplay_int8_placement) console.log(`  qplay INT8 placement: ${g.qplay_int8_placement}`);
    console.log(`  qplay FP32 WebGPU vs its CPU output: ${g.qplay_fp32_vs_cpu.max_abs_diff_over_range.toExponential(2)} of range;`
      + (g.qplay_int8_vs_cpu_values_differing !== undefined ? ` qplay INT8 WebGPU vs CPU: ${g.qplay_int8_vs_cpu_values_differing} values differ;` : '')
      + (g.ort_webgpu_vs_qplay_cpu ? ` onnxruntime-web webgpu vs qplay CPU: ${g.ort_webgpu_vs_qplay_cpu.max_abs_diff_over_range.toExponential(2)} of range` : ` onnxruntime-web webgpu failed: ${g.ort_webgpu_error}`));
    const r = [];
    if (b.ratio_median_webgpu_int8_over_ort_webgpu_fp32) r.push(`qplay INT8 / onnxruntime-web FP32 ${b.ratio_median_webgpu_int8_over_ort_webgpu_fp32.toFixed(2)}×`);
    if (b.ratio_median_webgpu_fp32_over_ort_webgpu_fp32) r.push(`qplay FP32 / onnxruntime-web FP32 ${b.ratio_median_webgpu_fp32_over_ort_webgpu_fp32.toFixed(2)}×`);
    if (b.ratio_median_webgpu_int8_over_webgpu_fp32) r.push(`qplay INT8 / qplay FP32 ${b.ratio_median_webgpu_int8_over_webgpu_fp32.toFixed(2)}×`);
    if (r.length) console.log(`  WebGPU medians: ${r.join(', ')}`);
  }
  for (const [k, t] of Object.entries(b.profile_ms_by_op ?? {})) {
    const top = Object.entries(t).sort((x, y) => y[1] - x[1]).slice(0, 6).map(([op, ms]) => `${op} ${ms.toFixed(1)}`);
    console.log(`${k} per op type, one profiled run (ms): ${top.join(', ')}`);
  }
  console.log(`agreement (${a.output} [${a.output_shape.join('×')}], ${a.elements} values): max |Δ| ${a.max_abs_diff.toExponential(2)}`
    + ` over output range ${a.output_range.toPrecision(4)} = ${a.max_abs_diff_over_range.toExponential(2)} of range;`
    + ` mean |Δ| ${a.mean_abs_diff.toExponential(2)}`);
}
