// Live video for the detector: the camera (getUserMedia) or a video file, frames captured into
// ImageData for the worker, and the failures a user can hit mapped to plain recovery text.
//
// Nothing here starts on its own: the camera opens only from a click (`Camera.start`).

/** The most pixels on a captured frame's longer side; larger frames are scaled down before detection. */
export const MAX_SIDE = 640;

/** A camera failure with a stable `code` (camera-denied, camera-missing, camera-busy, insecure-context, camera-failed) and text that says what to do. */
export class CameraError extends Error {
  constructor(code, message) { super(message); this.code = code; }
}

/** Maps a getUserMedia failure (a DOMException) to a CameraError. */
export function cameraError(e) {
  const name = e?.name ?? '';
  const then = ' Images and video files still work: choose one in the Image panel.';
  if (name === 'NotAllowedError' || name === 'SecurityError' || name === 'PermissionDeniedError') {
    return new CameraError('camera-denied', `Camera permission was denied. Allow the camera for this site (the camera icon in the address bar or the site settings) and press Start camera again.${then}`);
  }
  if (name === 'NotFoundError' || name === 'OverconstrainedError' || name === 'DevicesNotFoundError') {
    return new CameraError('camera-missing', `No camera was found${name === 'OverconstrainedError' ? ' that matches the chosen one' : ''}. Connect a camera (or pick another in the list) and press Start camera again.${then}`);
  }
  if (name === 'NotReadableError' || name === 'AbortError' || name === 'TrackStartError') {
    return new CameraError('camera-busy', `The camera is busy: another application or browser tab is using it. Close that one and press Start camera again.${then}`);
  }
  return new CameraError('camera-failed', `The camera could not start (${name || 'error'}: ${e?.message ?? e}).${then}`);
}

/** The CameraError that explains why this page cannot ask for a camera at all (insecure context, no API), or null. */
export function checkCameraAvailable(win = globalThis) {
  if (!win.isSecureContext) {
    return new CameraError('insecure-context', 'The camera needs a secure page: open qplay over https:// or from http://localhost. Images and video files still work: choose one in the Image panel.');
  }
  if (!win.navigator?.mediaDevices?.getUserMedia) {
    return new CameraError('camera-missing', 'This browser gives pages no camera access (no navigator.mediaDevices.getUserMedia). Images and video files still work: choose one in the Image panel.');
  }
  return null;
}

/** The cameras the browser lists (labels appear once permission was granted). */
export async function listCameras() {
  if (!navigator.mediaDevices?.enumerateDevices) return [];
  const all = await navigator.mediaDevices.enumerateDevices();
  return all.filter((d) => d.kind === 'videoinput').map((d, i) => ({ id: d.deviceId, label: d.label || `Camera ${i + 1}` }));
}

/** A video source — camera or file — playing into a hidden <video>, with frame capture. */
export class VideoSource {
  constructor(video) {
    this.video = video;
    this.stream = null;
    this.fileUrl = null;
    this.canvas = null;
  }

  /** Opens the camera (deviceId optional); resolves once the first frame can be drawn. */
  async startCamera(deviceId) {
    const unavailable = checkCameraAvailable();
    if (unavailable) throw unavailable;
    this.stop();
    const narrow = matchMedia?.('(max-width: 700px)').matches;
    const video = { width: { ideal: narrow ? 480 : 640 }, height: { ideal: narrow ? 360 : 480 } };
    if (deviceId) video.deviceId = { exact: deviceId };
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ video, audio: false });
    } catch (e) { throw cameraError(e); }
    this.kind = 'camera';
    this.video.srcObject = this.stream;
    await this.play();
    return this.stream.getVideoTracks()[0]?.getSettings?.().deviceId ?? deviceId ?? null;
  }

  /** Plays a video file (a File or Blob) in a loop. */
  async startFile(file) {
    this.stop();
    this.fileUrl = URL.createObjectURL(file);
    this.kind = 'file';
    this.video.loop = true;
    this.video.src = this.fileUrl;
    try { await this.play(); } catch (e) {
      this.stop();
      throw new CameraError('bad-video', `Cannot play ${file.name ?? 'this file'} as a video (${e.message}): use an MP4 (H.264) or WebM file.`);
    }
  }

  async play() {
    const v = this.video;
    v.muted = true;
    v.playsInline = true;
    await v.play();
    if (!v.videoWidth) await new Promise((resolve, reject) => {
      v.addEventListener('loadeddata', resolve, { once: true });
      v.addEventListener('error', () => reject(new Error(v.error?.message || 'the video cannot be decoded')), { once: true });
    });
  }

  get live() { return !!(this.stream || this.fileUrl); }

  /** The current frame as {data: ImageData, bitmap: canvas}, scaled to MAX_SIDE, mirrored if asked.
   * Draws into `canvas` (a new one when absent): the caller alternates two, so that the frame shown
   * with its boxes is the one that was detected while the next one is captured. */
  capture(mirror = false, canvas = document.createElement('canvas')) {
    const v = this.video;
    if (!v.videoWidth || !v.videoHeight) return null;
    const s = Math.min(1, MAX_SIDE / Math.max(v.videoWidth, v.videoHeight));
    const w = Math.round(v.videoWidth * s), h = Math.round(v.videoHeight * s);
    const c = canvas;
    if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
    const ctx = c.getContext('2d', { willReadFrequently: true });
    ctx.setTransform(mirror ? -1 : 1, 0, 0, 1, mirror ? w : 0, 0);
    ctx.drawImage(v, 0, 0, w, h);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    return { data: ctx.getImageData(0, 0, w, h), bitmap: c };
  }

  pause() { this.video.pause(); }
  resume() { return this.video.play(); }

  stop() {
    for (const t of this.stream?.getTracks() ?? []) t.stop();
    this.stream = null;
    if (this.fileUrl) URL.revokeObjectURL(this.fileUrl);
    this.fileUrl = null;
    this.video.removeAttribute('src');
    this.video.srcObject = null;
    this.kind = null;
  }
}

/** Rolling statistics of a live run: display FPS over the last 10 frames (at most 5 s), mean stage latencies
 * after a labelled warm-up (the first WARMUP frames are left out). */
export class LiveStats {
  static WARMUP = 3;
  constructor() { this.reset(); }
  reset() { this.frames = 0; this.shown = []; this.sums = null; this.counted = 0; }
  /** Records one detected frame's timings ({preprocess, inference, decode} and int8's). */
  add(timings, int8Timings, now = performance.now()) {
    this.frames += 1;
    this.shown.push(now);
    // The last 10 frames, within 5 s: steady at high rates, and still a number at 1 frame/s.
    while (this.shown.length > 10 || (this.shown.length && now - this.shown[0] > 5000)) this.shown.shift();
    if (this.frames <= LiveStats.WARMUP) return;
    const t = { ...prefix(timings, 'fp32_'), ...(int8Timings ? prefix(int8Timings, 'int8_') : {}) };
    this.sums ??= {};
    for (const [k, v] of Object.entries(t)) this.sums[k] = (this.sums[k] ?? 0) + v;
    this.counted += 1;
  }
  get warmingUp() { return this.frames <= LiveStats.WARMUP; }
  get fps() { return this.shown.length > 1 ? (this.shown.length - 1) / ((this.shown.at(-1) - this.shown[0]) / 1000) : 0; }
  mean(key) { return this.counted ? (this.sums[key] ?? NaN) / this.counted : NaN; }
}

function prefix(o, p) { return Object.fromEntries(Object.entries(o).map(([k, v]) => [p + k, v])); }
