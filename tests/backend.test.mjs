// Switching the backend never contradicts itself (issue #13, item 3), from the user's side, on one
// page load with the face detector (SwiftShader, headless Chromium's WebGPU adapter, is a slow CPU
// emulation: the face model keeps each switch to a few seconds). While a switch to WebGPU is in
// progress the image shows without the CPU's boxes and a line with a spinner and Cancel sits beside
// the Backend picker; the first WebGPU frame is labelled as a warm-up; the picker and the note under
// it always agree; Cancel goes back to the CPU and says so; a photo picked during a switch gets its
// own result. Every state the detector shows is recorded as it changes (a MutationObserver), so a
// contradiction that lasts a single frame is caught. Screenshots in tests/artifacts/backend-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { open, ARTIFACTS } from './browser.mjs';

const SWITCHING = 'Switching to WebGPU: compiling the kernels…';
const WARMUP = /inference [\d.]+ ms \(first frame on WebGPU: includes compiling the kernels\)/;
let s;
before(async () => {
  s = await open('index.html?embed=detector&model=face&image=www/samples/astronaut.png', { viewport: { width: 1280, height: 1000 } });
  await s.page.evaluate(async () => {
    await customElements.whenDefined('qplay-detector');
    window.shown = [];
    const el = document.querySelector('qplay-detector');
    const snap = () => {
      const q = (sel) => el.shadowRoot.querySelector(sel);
      const note = q('.backend-note');
      const line = q('.backend-switch');
      window.shown.push({
        caption: q('canvas.fp32').getAttribute('aria-label'), list: q('ol.dets').textContent, timings: q('.timings').textContent,
        pick: q('select[name=backend]').value, note: note.hidden ? null : note.textContent,
        line: line && !line.hidden ? line.textContent.trim() : null,
        result: el.result ? { image: el.result.image, on: el.result.ranOn ?? el.result.on } : null,
      });
    };
    new MutationObserver(snap).observe(el.shadowRoot, { subtree: true, childList: true, attributes: true, characterData: true });
    await el.ready; // the face model and astronaut.png are loaded, and the first result is in
  });
});
after(async () => s && s.close());

const det = () => s.page.locator('qplay-detector');
const pick = () => det().locator('select[name=backend]');
/** What the user sees now: the caption, list, timings, picker, note and switch line. */
const now = () => det().evaluate((el) => {
  const q = (sel) => el.shadowRoot.querySelector(sel);
  const line = q('.backend-switch');
  const cancel = q('button[name=bcancel]');
  const r = (sel) => { const b = q(sel).getBoundingClientRect(); return { x: b.x, y: b.y, width: b.width, height: b.height }; };
  return {
    // Measured in the same task as the state above, so a switch that ends a moment later cannot
    // make the layout disagree with it.
    boxes: { pick: r('select[name=backend]'), line: r('.backend-switch'), cancel: r('button[name=bcancel]'), spin: r('.backend-switch .spin') },
    caption: q('canvas.fp32').getAttribute('aria-label'), list: q('ol.dets').textContent, timings: q('.timings').textContent,
    pick: q('select[name=backend]').value, note: q('.backend-note').hidden ? null : q('.backend-note').textContent,
    line: line && !line.hidden ? line.textContent.trim() : null, cancel: !!cancel && !cancel.hidden && cancel.getClientRects().length > 0,
  };
});
/** Waits until the detector shows its own result for `image`, computed on `on` ('cpu' | 'webgpu') after the
 * result `after` (an id: results are numbered in the order they were asked for), with no switch in progress. */
async function shows(image, on, after = 0) {
  await s.page.waitForFunction(([i, b, a]) => {
    const el = document.querySelector('qplay-detector');
    const r = el.result;
    const c = el.shadowRoot.querySelector('canvas.fp32').getAttribute('aria-label') ?? '';
    return r && r.id > a && !el.running && !el.switching && r.image === i && (r.ranOn ?? r.on) === b && c.startsWith(`${i}: `) && / by Face detector/.test(c);
  }, [image, on, after], { timeout: 60_000 });
}
const lastId = () => det().evaluate((el) => el.result?.id ?? 0);
/** Brings the page to `image` on `backend` (each test starts from a known state, whatever the one before did). */
async function at(image, backend) {
  if (await det().locator('select[name=sample]').inputValue() !== image) await det().locator('select[name=sample]').selectOption(image);
  if (await pick().inputValue() !== backend) await pick().selectOption(backend);
  await shows(image, backend);
}
const recorded = () => s.page.evaluate(() => window.shown.splice(0));
/** The picker and the line beside it agree in a recorded or current state. */
function agree(v) {
  if (v.line) return v.line.includes(v.pick === 'webgpu' ? 'Switching to WebGPU' : 'Switching to the CPU') && v.note === null;
  return v.note !== null && v.note.startsWith(v.pick === 'webgpu' ? 'In use: WebGPU' : 'In use: CPU');
}
/** The smallest distance in px between two boxes (0 when they touch or overlap). */
function gap(a, b) {
  const dx = Math.max(0, a.x - (b.x + b.width), b.x - (a.x + a.width));
  const dy = Math.max(0, a.y - (b.y + b.height), b.y - (a.y + a.height));
  return Math.hypot(dx, dy);
}

test('during a switch to WebGPU: the image without the CPU boxes, and a pending line with a spinner and Cancel beside the picker', async () => {
  await at('astronaut.png', 'cpu');
  assert.match(await det().evaluate((el) => el.shadowRoot.querySelector('.timings').textContent), /wasm, CPU, \d+ threads?\)/);
  const id0 = await lastId();
  await recorded();
  await pick().selectOption('webgpu');
  const v = await now();
  await s.page.screenshot({ path: `${ARTIFACTS}backend-switching.png` });
  assert.equal(v.list, '', `the CPU's detections are still listed during the switch: ${JSON.stringify(v)}`);
  assert.doesNotMatch(v.timings, /wasm, CPU/, 'the CPU timings are still shown during the switch');
  assert.equal(v.timings, SWITCHING);
  assert.equal(v.caption, `astronaut.png: ${SWITCHING}`);
  assert.equal(v.line?.replace(/\s*Cancel$/, ''), SWITCHING, JSON.stringify(v));
  assert.ok(v.cancel, 'a Cancel button beside the picker');
  assert.equal(v.pick, 'webgpu');
  // Beside the picker: the line, its spinner and Cancel touch the picker's row.
  const boxes = v.boxes;
  assert.ok(gap(boxes.pick, boxes.line) < 24, `the switch line is ${gap(boxes.pick, boxes.line)} px from the picker: ${JSON.stringify(boxes)}`);
  assert.ok(gap(boxes.pick, boxes.cancel) < 400 && boxes.spin.width > 0, JSON.stringify(boxes));

  await shows('astronaut.png', 'webgpu', id0);
  const seen = await recorded();
  for (const x of seen) {
    assert.doesNotMatch(x.timings, /wasm, CPU/, `a CPU result was shown after WebGPU was chosen: ${JSON.stringify(x)}`);
    if (x.line) assert.equal(x.list, '', `boxes listed during the switch: ${JSON.stringify(x)}`);
  }
  assert.ok(seen.some((x) => x.line && x.timings === SWITCHING), 'the pending line was shown');
  const end = await now();
  assert.equal(end.line, null, 'the switch line is gone once the first frame ran');
  assert.match(end.note, /^In use: WebGPU — .*swiftshader/i);
  assert.match(end.timings, /WebGPU: the frame is pre-processed on the GPU/);
});

test('the first frame on WebGPU is labelled as a warm-up in the timings; the next one is not', async () => {
  await shows('astronaut.png', 'webgpu'); // the switch of the test before
  const first = await now();
  assert.match(first.timings, WARMUP, first.timings);
  await s.page.screenshot({ path: `${ARTIFACTS}backend-warmup.png` });
  const id0 = await lastId();
  await det().locator('select[name=sample]').selectOption('person.jpg');
  await shows('person.jpg', 'webgpu', id0);
  const second = await now();
  assert.match(second.timings, /inference [\d.]+ ms · decode/);
  assert.doesNotMatch(second.timings, /first frame/);
});

test('switching back to the CPU (after a switch, and during one): the note always agrees with the picker', async () => {
  await at('person.jpg', 'webgpu');
  const id0 = await lastId();
  await recorded();
  await pick().selectOption('cpu');
  await shows('person.jpg', 'cpu', id0);
  assert.ok(agree(await now()), JSON.stringify(await now()));
  // Back to the CPU while the switch to WebGPU is still in progress.
  const id1 = await lastId();
  await pick().selectOption('webgpu');
  await pick().selectOption('cpu');
  await shows('person.jpg', 'cpu', id1);
  const seen = await recorded();
  const bad = seen.filter((x) => !agree(x));
  assert.deepEqual(bad, [], 'the picker and the note disagreed');
  const end = await now();
  assert.equal(end.pick, 'cpu');
  assert.match(end.note, /^In use: CPU/);
  assert.match(end.timings, /wasm, CPU, \d+ threads?\)/);
  await s.page.screenshot({ path: `${ARTIFACTS}backend-back-to-cpu.png` });
});

test('Cancel during the switch: back on the CPU, said so, and the next photo gets a CPU result', async () => {
  await at('person.jpg', 'cpu');
  const id0 = await lastId();
  await recorded();
  await pick().selectOption('webgpu');
  await det().locator('button[name=bcancel]').click({ timeout: 5_000 });
  await shows('person.jpg', 'cpu', id0);
  const v = await now();
  assert.equal(v.pick, 'cpu');
  assert.equal(v.line, null);
  assert.match(v.note, /^In use: CPU — .*Switching to WebGPU was cancelled: back on the CPU/);
  assert.equal(await det().evaluate((el) => el.settings.backend), 'cpu', 'settings (and the link) say the CPU');
  await s.page.screenshot({ path: `${ARTIFACTS}backend-cancelled.png` });
  const id1 = await lastId();
  await det().locator('select[name=sample]').selectOption('dog.jpg');
  await shows('dog.jpg', 'cpu', id1);
  assert.match((await now()).timings, /wasm, CPU, \d+ threads?\)/);
  const seen = await recorded();
  assert.deepEqual(seen.filter((x) => !agree(x)), [], 'the picker and the note disagreed');
  assert.ok(!seen.some((x) => /WebGPU: the frame/.test(x.timings)), 'no WebGPU result was shown after Cancel');
});

test('a photo picked during the switch: shown without boxes while the switch goes on, then its own WebGPU result', async () => {
  await at('dog.jpg', 'cpu');
  const before = await det().evaluate((el) => el.shadowRoot.querySelector('ol.dets').textContent);
  const id0 = await lastId();
  await recorded();
  await pick().selectOption('webgpu');
  await det().locator('select[name=sample]').selectOption('astronaut.png');
  await s.page.waitForFunction(() => (document.querySelector('qplay-detector').shadowRoot.querySelector('canvas.fp32').getAttribute('aria-label') ?? '').startsWith('astronaut.png: '));
  const v = await now();
  if (v.line) {
    assert.equal(v.caption, `astronaut.png: ${SWITCHING}`);
    assert.equal(v.list, '');
  }
  await shows('astronaut.png', 'webgpu', id0);
  const seen = await recorded();
  assert.ok(seen.some((x) => x.caption === `astronaut.png: ${SWITCHING}` && x.list === ''), 'the photo was shown pending the switch');
  for (const x of seen.filter((y) => /^astronaut\.png: \d+ detection/.test(y.caption))) {
    assert.equal(x.result?.image, 'astronaut.png', `another photo's result under astronaut.png: ${JSON.stringify(x)}`);
    assert.equal(x.result?.on, 'webgpu', `a CPU result shown as WebGPU's: ${JSON.stringify(x)}`);
    assert.notEqual(x.list, before);
  }
  assert.deepEqual(seen.filter((x) => !agree(x)), [], 'the picker and the note disagreed');
  const r = await det().evaluate((el) => ({ image: el.result.image, labels: el.result.detections.map((d) => d.label) }));
  assert.equal(r.image, 'astronaut.png');
  assert.ok(r.labels.includes('face'), JSON.stringify(r));
  await s.page.screenshot({ path: `${ARTIFACTS}backend-photo-during-switch.png` });
  assert.deepEqual(s.errors, []);
});
