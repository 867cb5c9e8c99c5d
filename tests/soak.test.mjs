// Soak: 2,000 live webcam frames (fake webcam; face model, FP32 and INT8 on every frame) in
// headless Chromium. After a warm-up, the page's JS heap (after a forced GC), its DOM node and
// listener counts, and the worker's wasm memory must not grow. SOAK_FRAMES overrides the count;
// the figures are printed and written to tests/artifacts/soak.json.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { open, ARTIFACTS } from './browser.mjs';
import { fakeWebcam, fakeCameraFlags } from './webcam.mjs';

const FRAMES = Number(process.env.SOAK_FRAMES ?? 2000);
const WARMUP = 200;
let s;
after(async () => s && s.close());

test(`${FRAMES} webcam frames: no growth in JS heap, DOM or wasm memory after warm-up`, { timeout: 1_800_000 }, async () => {
  s = await open('index.html?embed=detector&model=face', { args: fakeCameraFlags(fakeWebcam(['person', 'astronaut'], { framesEach: 15 })) });
  const det = s.page.locator('qplay-detector');
  await s.page.waitForFunction(() => document.querySelector('qplay-detector')?.result, null, { timeout: 120_000 });
  await det.locator('button[name=quantize]').click();
  await s.page.waitForFunction(() => document.querySelector('qplay-detector').result?.int8, null, { timeout: 300_000 });
  const cdp = await s.page.context().newCDPSession(s.page);
  // The heap after a forced GC still holds whatever the frame in flight has allocated (its result,
  // strings, the report's latency chart), so each sample is the least of three readings 300 ms
  // apart; a leak raises that minimum too.
  const leastHeap = async () => {
    let least = Infinity;
    for (let k = 0; k < 3; k++) {
      if (k) await new Promise((r) => setTimeout(r, 300));
      await cdp.send('HeapProfiler.collectGarbage');
      least = Math.min(least, (await cdp.send('Runtime.getHeapUsage')).usedSize);
    }
    return { usedSize: least };
  };
  const sample = async () => {
    const heap = await leastHeap();
    const dom = await cdp.send('Memory.getDOMCounters');
    const { frame, wasm } = await det.evaluate((el) => ({ frame: el.frameNo, wasm: el.result.memory }));
    return { frame, heap_bytes: heap.usedSize, dom_nodes: dom.nodes, js_listeners: dom.jsEventListeners, wasm_bytes: wasm };
  };
  const waitFrame = (n) => s.page.waitForFunction((k) => document.querySelector('qplay-detector').frameNo >= k, n, { timeout: 1_500_000, polling: 500 });
  const t0 = Date.now();
  await det.locator('button[name=camera]').click();
  await waitFrame(WARMUP);
  const samples = [await sample()];
  for (const at of [0.25, 0.5, 0.75, 1].map((f) => Math.round(WARMUP + f * (FRAMES - WARMUP)))) { await waitFrame(at); samples.push(await sample()); }
  const seconds = (Date.now() - t0) / 1000;
  const live = await det.evaluate((el) => el.shadowRoot.querySelector('.live').innerText);
  await det.locator('button[name=stop]').click();
  const first = samples[0], last = samples.at(-1);
  const result = {
    frames: last.frame, seconds, fps: last.frame / seconds, samples, live,
    heap_growth_bytes: last.heap_bytes - first.heap_bytes, heap_growth_second_half_bytes: last.heap_bytes - samples[2].heap_bytes,
    // The list and the canvases' labels follow each frame's detections (person and astronaut
    // frames alternate), so the count swings by ~50 nodes from sample to sample; a leak raises
    // every later sample, so the least of the second half is what must not grow.
    dom_growth: Math.min(...samples.slice(2).map((x) => x.dom_nodes)) - first.dom_nodes,
    listener_growth: last.js_listeners - first.js_listeners, wasm_growth_bytes: last.wasm_bytes - first.wasm_bytes,
  };
  writeFileSync(`${ARTIFACTS}soak.json`, JSON.stringify(result, null, 2));
  console.log(JSON.stringify(result, null, 1));
  assert.ok(last.frame >= FRAMES);
  assert.ok(/INT8/.test(live), 'INT8 ran on every frame too');
  // V8 settles over the first few hundred frames (optimised code, inline caches: ~0.1–0.2 MB
  // once, measured); a leak keeps growing: one result object (~1 KB) per frame would add ~1 MB
  // over the second half alone.
  assert.ok(result.heap_growth_bytes < 512 * 1024, `JS heap grew ${result.heap_growth_bytes} bytes`);
  assert.ok(result.heap_growth_second_half_bytes < 96 * 1024, `JS heap grew ${result.heap_growth_second_half_bytes} bytes over the second half`);
  assert.ok(result.dom_growth <= 50, `DOM grew by ${result.dom_growth} nodes`);
  assert.ok(result.listener_growth <= 5, `listeners grew by ${result.listener_growth}`);
  assert.equal(result.wasm_growth_bytes, 0, 'wasm memory grew');
  assert.deepEqual(s.errors, []);
});
