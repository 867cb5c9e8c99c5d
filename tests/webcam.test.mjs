// Live detection in a real browser on a fake webcam (a y4m video of the sample photos):
// the camera starts on a click only, boxes land on the person (mirrored or not), FPS and
// per-stage latency are shown, FP32 and INT8 both run on the same frames, pause/resume, a
// frame joins the calibration set, a recorded video file plays as input, and each camera
// failure (denied, none, busy, insecure page) gets its own message while images keep working;
// every request of the session stays on the page's origin.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { open, ARTIFACTS } from './browser.mjs';
import { fakeWebcam, fakeCameraFlags } from './webcam.mjs';

let s;
before(async () => { s = await open('index.html?embed=detector', { args: fakeCameraFlags(fakeWebcam(['person'])) }); });
after(async () => s && s.close());

const det = () => s.page.locator('qplay-detector');
const frameNo = () => det().evaluate((el) => el.frameNo ?? 0);
/** Waits until `n` more live frames were detected and returns the latest result. */
async function frames(n) {
  const start = await frameNo();
  await s.page.waitForFunction(([a, k]) => (document.querySelector('qplay-detector').frameNo ?? 0) >= a + k, [start, n], { timeout: 180_000 });
  return det().evaluate((el) => ({ r: el.result, live: el.shadowRoot.querySelector('.live').innerText, w: el.shadowRoot.querySelector('canvas.fp32').width }));
}
const people = (dets) => dets.filter((d) => d.label === 'person' && d.score > 0.9);

test('the camera starts on a click, never on load', async () => {
  await s.page.waitForFunction(() => document.querySelector('qplay-detector')?.result, null, { timeout: 120_000 });
  assert.equal(await det().evaluate((el) => el.video.live || !!el.shadowRoot.querySelector('video').srcObject), false);
  await det().locator('button[name=camera]').click();
  const { r, live, w } = await frames(5);
  assert.equal(w, 640, 'the frame is the camera frame (640×424)');
  assert.match(live, /Live · camera · frame \d+ · [\d.]+ FPS displayed/);
  assert.match(live, /FP32: pre-process [\d.]+ · inference [\d.]+ · decode [\d.]+ ms/);
  const p = people(r.detections);
  assert.equal(p.length, 1, JSON.stringify(r.detections));
  // Mirrored (selfie view): the person at x ≈ 183…275 in the photo is at 640 − x.
  assert.ok(Math.abs(p[0].bbox[0] - (640 - 275)) < 8 && Math.abs(p[0].bbox[2] - (640 - 183)) < 8, `mirrored box ${p[0].bbox}`);
  await det().locator('input[name=mirror]').uncheck();
  await frames(2);
  const { r: r2 } = await frames(1);
  const q = people(r2.detections);
  assert.ok(q.length === 1 && Math.abs(q[0].bbox[0] - 183) < 8 && Math.abs(q[0].bbox[2] - 275) < 8, `unmirrored box ${JSON.stringify(q)}`);
  await s.page.screenshot({ path: `${ARTIFACTS}webcam-fp32.png` });
  assert.deepEqual(s.errors, []);
});

test('FP32 and INT8 side by side on the live frames, and overlaid', async () => {
  await det().locator('button[name=quantize]').click();
  await s.page.waitForFunction(() => document.querySelector('qplay-detector').result?.int8, null, { timeout: 300_000 });
  const { r, live } = await frames(3);
  assert.ok(r.int8, 'both panes run');
  assert.equal(people(r.int8.detections).length, 1, JSON.stringify(r.int8.detections));
  assert.match(live, /INT8: pre-process [\d.]+ · inference [\d.]+ · decode [\d.]+ ms/);
  const agreement = await det().evaluate((el) => el.shadowRoot.querySelector('.agreement').textContent);
  assert.match(agreement, /1 of 1 FP32 boxes matched by INT8/);
  await s.page.screenshot({ path: `${ARTIFACTS}webcam-int8.png` });
  await det().locator('input[name=overlay]').check();
  await frames(2);
  assert.equal(await det().evaluate((el) => getComputedStyle(el.shadowRoot.querySelector('canvas.int8').parentElement).display), 'none');
  await s.page.locator('qplay-detector').screenshot({ path: `${ARTIFACTS}webcam-overlay.png` });
  await det().locator('input[name=overlay]').uncheck();
  // The quantized model downloads from memory (part of the privacy session below).
  const [download] = await Promise.all([s.page.waitForEvent('download'), det().locator('a.dl').first().click()]);
  assert.match(download.suggestedFilename(), /_int8_qdq\.onnx$/);
  assert.deepEqual(s.errors, []);
});

test('pause freezes the frame, resume goes on; a frame joins the calibration set; stop releases the camera', async () => {
  await det().locator('button[name=pause]').click();
  await s.page.waitForTimeout(300);
  const a = await frameNo();
  await s.page.waitForTimeout(1500);
  assert.ok(await frameNo() <= a + 1, 'no frames while paused');
  assert.match(await det().evaluate((el) => el.shadowRoot.querySelector('.live').innerText), /Paused on frame/);
  await det().locator('button[name=use-frame]').click();
  assert.match(await det().evaluate((el) => el.shadowRoot.querySelector('.calib-note').textContent), /7 sample photos \+ 1 of yours/);
  await det().locator('button[name=pause]').click();
  await frames(2);
  await det().locator('button[name=stop]').click();
  await s.page.waitForFunction(() => !document.querySelector('qplay-detector').looping);
  assert.equal(await det().evaluate((el) => el.video.live || !!el.shadowRoot.querySelector('video').srcObject), false);
  assert.match(await det().evaluate((el) => el.shadowRoot.querySelector('.live').innerText), /Stopped after \d+ frames/);
});

test('live: the <video> stays rendered (1 px, transparent), inference pauses off screen and in a hidden tab, Stop is said', async () => {
  await det().locator('button[name=camera]').click();
  await frames(2);
  // iOS stops a video that is display:none or hidden: it stays rendered, off the layout, 1 px and transparent.
  const v = await det().evaluate((el) => {
    const video = el.shadowRoot.querySelector('video.source');
    const cs = getComputedStyle(video);
    const r = video.getBoundingClientRect();
    return { hidden: video.hidden, display: cs.display, visibility: cs.visibility, opacity: cs.opacity, w: r.width, h: r.height, paused: video.paused };
  });
  assert.notEqual(v.display, 'none');
  assert.deepEqual({ ...v, display: undefined, w: v.w > 0 && v.w <= 1, h: v.h > 0 && v.h <= 1 }, { hidden: false, display: undefined, visibility: 'visible', opacity: '0', w: true, h: true, paused: false });
  const liveText = () => det().evaluate((el) => el.shadowRoot.querySelector('.live').innerText);
  const still = async () => { const a = await frameNo(); await s.page.waitForTimeout(1500); return (await frameNo()) <= a + 1; };
  // Off screen: scrolled away below a tall spacer.
  await s.page.evaluate(() => {
    const spacer = Object.assign(document.createElement('div'), { id: 'spacer' });
    spacer.style.height = '5000px';
    document.body.prepend(spacer);
    scrollTo(0, 0);
  });
  await s.page.waitForFunction(() => /Paused while the detector is off screen/.test(document.querySelector('qplay-detector').shadowRoot.querySelector('.live').innerText));
  assert.ok(await still(), 'no frames while off screen');
  await det().scrollIntoViewIfNeeded();
  await frames(2);
  assert.match(await liveText(), /Live · camera/);
  // A hidden tab.
  const setHidden = (h) => s.page.evaluate((x) => {
    Object.defineProperty(document, 'hidden', { value: x, configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  }, h);
  await setHidden(true);
  await s.page.waitForFunction(() => /Paused while the tab is hidden/.test(document.querySelector('qplay-detector').shadowRoot.querySelector('.live').innerText));
  assert.ok(await still(), 'no frames while the tab is hidden');
  await setHidden(false);
  await frames(2);
  await s.page.evaluate(() => document.getElementById('spacer').remove());
  // Stop: the status no longer says it is live.
  await det().locator('button[name=stop]').click();
  await s.page.waitForFunction(() => !document.querySelector('qplay-detector').looping);
  const status = await det().evaluate((el) => el.shadowRoot.querySelector('.status').textContent);
  assert.doesNotMatch(status, /live from/);
  assert.match(status, /camera is stopped/);
  assert.deepEqual(s.errors, []);
});

test('a video file plays as input', async () => {
  // A real WebM, recorded from the (fake) camera by the browser's own MediaRecorder.
  const b64 = await s.page.evaluate(async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true });
    const rec = new MediaRecorder(stream, { mimeType: 'video/webm' });
    const chunks = [];
    rec.ondataavailable = (e) => chunks.push(e.data);
    const done = new Promise((r) => { rec.onstop = r; });
    rec.start();
    await new Promise((r) => setTimeout(r, 1500));
    rec.stop();
    await done;
    stream.getTracks().forEach((t) => t.stop());
    const bytes = new Uint8Array(await new Blob(chunks).arrayBuffer());
    let bin = '';
    for (const x of bytes) bin += String.fromCharCode(x);
    return btoa(bin);
  });
  await det().locator('input[name=video]').setInputFiles({ name: 'clip.webm', mimeType: 'video/webm', buffer: Buffer.from(b64, 'base64') });
  const { r, live } = await frames(3);
  assert.match(live, /Live · video file/);
  assert.equal(people(r.detections).length, 1, JSON.stringify(r.detections));
  // Choosing a photo ends the live input.
  await det().locator('select[name=sample]').selectOption('horses.jpg');
  await s.page.waitForFunction(() => !document.querySelector('qplay-detector').video.live);
  assert.deepEqual(s.errors, []);
});

/** Opens the detector with `args`, clicks Start camera, returns the error shown; images still detect. */
async function cameraFailure(args, init) {
  const t = await open('tests/bench/index.html', { args });
  try {
    if (init) await t.page.addInitScript(init);
    await t.page.goto(`${t.url}index.html?embed=detector&model=face`);
    const d = t.page.locator('qplay-detector');
    await t.page.waitForFunction(() => document.querySelector('qplay-detector')?.result, null, { timeout: 120_000 });
    const codes = [];
    await t.page.exposeFunction('onQplayError', (c) => codes.push(c));
    await t.page.evaluate(() => document.addEventListener('qplay-error', (e) => window.onQplayError(e.detail.code)));
    await d.locator('button[name=camera]').click();
    await t.page.waitForFunction(() => !document.querySelector('qplay-detector').shadowRoot.querySelector('.error').hidden, null, { timeout: 30_000 });
    const text = await d.evaluate((el) => el.shadowRoot.querySelector('.error').textContent);
    const stillWorks = await d.evaluate((el) => !!el.result && !el.video.live);
    return { text, codes, stillWorks, t };
  } catch (e) { await t.close(); throw e; }
}

test('camera denied, no camera, insecure page: a specific message each, and images keep working', async () => {
  const cases = [
    [['--use-fake-device-for-media-stream', '--deny-permission-prompts'], null, 'camera-denied', /permission was denied.*Allow the camera/],
    [['--use-fake-ui-for-media-stream'], null, 'camera-missing', /No camera was found/],
    [[], () => Object.defineProperty(window, 'isSecureContext', { value: false }), 'insecure-context', /needs a secure page: open qplay over https/],
  ];
  for (const [args, init, code, re] of cases) {
    const { text, codes, stillWorks, t } = await cameraFailure(args, init);
    try {
      assert.match(text, re);
      assert.match(text, /Images and video files still work/);
      assert.deepEqual(codes, [code]);
      assert.ok(stillWorks, 'the image result stays');
      assert.deepEqual(t.errors, []);
      if (code === 'camera-denied') await t.page.locator('qplay-detector').screenshot({ path: `${ARTIFACTS}webcam-denied.png` });
    } finally { await t.close(); }
  }
  // A camera another application holds: the browser says NotReadableError.
  const busy = await s.page.evaluate(async () => {
    const e = (await import('./www/camera.js')).cameraError({ name: 'NotReadableError', message: 'Could not start video source' });
    return { code: e.code, message: e.message };
  });
  assert.equal(busy.code, 'camera-busy');
  assert.match(busy.message, /busy: another application or browser tab is using it/);
});

test('privacy: the whole webcam session (load, camera, quantize, download, video file) stays on the origin', async () => {
  const origin = new URL(s.url).origin;
  const foreign = s.requests.filter((u) => !u.startsWith(origin) && !/^(data|blob):/.test(u));
  assert.deepEqual(foreign, []);
  assert.ok(s.requests.some((u) => u.endsWith('person_ssdlite.onnx')), 'the session did load the model');
});
