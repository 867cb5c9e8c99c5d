// A fake webcam for the browser tests: Chromium's --use-file-for-fake-video-capture plays a y4m
// file as the camera. The video is made here from the checked-in RGBA photos (no ffmpeg needed):
// 4:2:0 full-range BT.601, `framesEach` frames of each photo, cropped to a common even size.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ARTIFACTS } from './browser.mjs';

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

/** Writes a y4m video of the named fixtures (tests/fixtures/images.json) and returns its path. */
export function fakeWebcam(names = ['person'], { width = 640, height = 424, fps = 10, framesEach = 10 } = {}) {
  const meta = JSON.parse(readFileSync(`${FIXTURES}images.json`, 'utf8'));
  const frames = names.map((n) => i420(readFileSync(FIXTURES + meta[n].file), meta[n].width, meta[n].height, width, height));
  const parts = [Buffer.from(`YUV4MPEG2 W${width} H${height} F${fps}:1 Ip A1:1 C420jpeg XYSCSS=420JPEG\n`)];
  for (const f of frames) for (let i = 0; i < framesEach; i++) parts.push(Buffer.from('FRAME\n'), f);
  const path = `${ARTIFACTS}fake-webcam-${names.join('-')}.y4m`;
  writeFileSync(path, Buffer.concat(parts));
  return path;
}

/** RGBA (sw×sh) → I420 planes of w×h, the top-left crop (padded with grey where the photo is smaller). */
function i420(rgba, sw, sh, w, h) {
  const out = Buffer.alloc(w * h * 3 / 2);
  const px = (x, y) => (x < sw && y < sh ? [rgba[(y * sw + x) * 4], rgba[(y * sw + x) * 4 + 1], rgba[(y * sw + x) * 4 + 2]] : [128, 128, 128]);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const [r, g, b] = px(x, y);
    out[y * w + x] = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
  }
  const u0 = w * h, v0 = u0 + (w / 2) * (h / 2);
  for (let y = 0; y < h / 2; y++) for (let x = 0; x < w / 2; x++) {
    let r = 0, g = 0, b = 0;
    for (const [dx, dy] of [[0, 0], [1, 0], [0, 1], [1, 1]]) { const p = px(2 * x + dx, 2 * y + dy); r += p[0] / 4; g += p[1] / 4; b += p[2] / 4; }
    const clamp = (v) => Math.max(0, Math.min(255, Math.round(v)));
    out[u0 + y * (w / 2) + x] = clamp(-0.168736 * r - 0.331264 * g + 0.5 * b + 128);
    out[v0 + y * (w / 2) + x] = clamp(0.5 * r - 0.418688 * g - 0.081312 * b + 128);
  }
  return out;
}

/** Chromium flags that make getUserMedia return the y4m file without a permission prompt. */
export const fakeCameraFlags = (y4m) => ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-video-capture=${y4m}`];
