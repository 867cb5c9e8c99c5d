// The detector's live input: the camera or a video file, one frame in flight at a time, with
// display FPS and mean stage timings; paused while off screen or in a hidden tab.
import { LiveStats, checkCameraAvailable, listCameras } from '../../camera.js';
import { esc, nextPaint, sleep } from './util.js';

/** Methods of <qplay-detector> (assigned to its prototype). */
export const liveMethods = {
  /** Starts the camera (only ever from a click), or switches to the camera `deviceId`. */
  async startCamera(deviceId) {
    this.clearError();
    const why = checkCameraAvailable();
    if (why) { this.showError(why.message, why.code); return; }
    this.status('starting the camera…', false);
    try {
      const id = await this.video.startCamera(deviceId);
      const cams = await listCameras();
      const pick = this.$('select[name=camera-device]');
      pick.innerHTML = cams.map((c) => `<option value="${esc(c.id)}">${esc(c.label)}</option>`).join('');
      if (id) pick.value = id;
      this.$('.camera-pick').hidden = cams.length < 2;
      this.beginLive('camera');
      this.status(`${this.modelName ?? 'model'}: live from the camera`);
    } catch (e) {
      this.status(this.info ? `${this.modelName}: ready` : 'not loaded');
      this.showError(e.message, e.code ?? 'camera-failed');
      this.stopLive();
    }
  },

  async startVideo(file) {
    this.clearError();
    try {
      await this.video.startFile(file);
      this.beginLive('video');
      this.status(`${this.modelName ?? 'model'}: live from ${file.name ?? 'the video file'}`);
    } catch (e) { this.showError(e.message, e.code ?? 'bad-video'); this.stopLive(); }
  },

  beginLive(kind) {
    this.liveKind = kind;
    this.paused = false;
    this.stats.reset();
    this.frameNo = 0;
    this.$('select[name=sample]').value = 'custom';
    this.imageSource = kind;
    for (const n of ['pause', 'stop', 'use-frame']) this.$(`button[name=${n}]`).hidden = false;
    this.$('button[name=camera]').textContent = kind === 'camera' ? 'Restart camera' : 'Start camera';
    this.setPaused(false);
    this.$('.live').hidden = false;
    this.liveLoop();
  },

  /** Detects on video frames for as long as the source is live: one frame in flight at a time
   * (frames that arrive meanwhile are dropped), boxes drawn on the very frame that was detected. */
  async liveLoop() {
    if (this.looping) return;
    this.looping = true;
    const canvases = [document.createElement('canvas'), document.createElement('canvas')];
    let which = 0;
    try {
      while (this.video.live && !this.paused && this.isConnected) {
        // Off screen or in a hidden tab: no inference until it is back (watchVisibility).
        if (!this.info || this.running || this.suspended) { await sleep(this.suspended ? 200 : 50); continue; }
        const mirror = this.liveKind === 'camera' && this.$('input[name=mirror]').checked;
        const frame = this.video.capture(mirror, canvases[which]);
        if (!frame) { await nextPaint(); continue; }
        which ^= 1;
        this.image = { ...frame, id: ++this.imageSeq, name: `${this.liveKind === 'camera' ? 'camera' : 'video'} frame ${this.frameNo + 1}` };
        const r = await this.run({ live: true });
        if (r && this.video.live) {
          this.frameNo += 1;
          this.stats.add(r.timings, r.int8?.timings);
          this.showLive(r);
        }
        await nextPaint();
      }
    } finally { this.looping = false; }
  },

  showLive(r) {
    const s = this.stats;
    const ms = (k) => (Number.isFinite(s.mean(k)) ? s.mean(k).toFixed(1) : '–');
    const src = this.liveKind === 'camera' ? 'camera' : 'video file';
    const head = this.suspended && !this.paused ? `<b>Paused</b> while ${this.suspended}; detection resumes when it is back (frame ${this.frameNo}, ${src}).` : this.paused ? `<b>Paused</b> on frame ${this.frameNo} (${src}): change the threshold or quantize on this frame, or Resume.`
      : `<b>Live</b> · ${src} · frame ${this.frameNo} · <span class="fps">${s.fps.toFixed(1)}</span> FPS displayed`;
    const warm = s.warmingUp ? `warming up: frame ${s.frames} of ${LiveStats.WARMUP}, left out of the timings` : `mean of ${s.counted} frames after a ${LiveStats.WARMUP}-frame warm-up`;
    const line = (p, name) => `${name}: pre-process ${ms(`${p}preprocess`)} · inference <b class="${p}inf">${ms(`${p}inference`)}</b> · decode ${ms(`${p}decode`)} ms`;
    this.$('.live').innerHTML = `${head}<br>${warm}<br>${line('fp32_', 'FP32')}${r?.int8 ? `<br>${line('int8_', 'INT8')}` : ''}`;
  },

  togglePause() { this.setPaused(!this.paused); if (!this.paused) this.liveLoop(); },

  setPaused(p) {
    this.paused = p;
    const b = this.$('button[name=pause]');
    b.textContent = p ? 'Resume' : 'Pause (freeze frame)';
    b.setAttribute('aria-pressed', String(p));
    if (p) this.video.pause(); else this.video.resume()?.catch?.(() => {});
    if (this.video.live) this.showLive(this.result);
  },

  /** Stops the camera or video; the last frame stays as the current image. */
  stopLive(why) {
    this.stoppedKind = this.liveKind;
    this.video?.stop();
    this.paused = false;
    this.liveKind = null;
    if (!this.shadowRoot) return;
    for (const n of ['pause', 'stop', 'use-frame']) this.$(`button[name=${n}]`).hidden = true;
    this.$('button[name=camera]').textContent = 'Start camera';
    if (why) {
      this.$('.live').innerHTML = `<b>Stopped</b> after ${this.frameNo ?? 0} frames; the last frame stays.`;
      this.status(this.info ? `${this.modelName}: ready (the ${this.stoppedKind === 'camera' ? 'camera' : 'video'} is stopped; the last frame stays)` : 'not loaded');
    }
  },

  /** Adds the frame on screen to the calibration images. */
  useFrame() {
    if (!this.image) return;
    const d = this.image.data;
    this.calib.push({ name: `frame ${this.frameNo}`, data: new ImageData(new Uint8ClampedArray(d.data), d.width, d.height) });
    this.showCalibration();
  },

  /** Pauses live inference while the detector is off screen (IntersectionObserver) or the tab is
   * hidden (visibilitychange), and resumes it on return; the camera stays open meanwhile. */
  watchVisibility() {
    if (this.visibilityWatched) return;
    this.visibilityWatched = true;
    let offscreen = false;
    const update = () => {
      const why = document.hidden ? 'the tab is hidden' : offscreen ? 'the detector is off screen' : null;
      if (why === (this.suspended ?? null)) return;
      this.suspended = why;
      if (this.video?.live && !this.paused) {
        if (why) this.video.pause(); else this.video.resume()?.catch?.(() => {});
        this.showLive(this.result);
      }
    };
    this.onVisibility = update;
    document.addEventListener('visibilitychange', update);
    if (typeof IntersectionObserver === 'function') {
      this.io = new IntersectionObserver((entries) => { offscreen = !entries.at(-1).isIntersecting; update(); });
      this.io.observe(this);
    }
  },

  unwatchVisibility() {
    if (!this.visibilityWatched) return;
    this.visibilityWatched = false;
    document.removeEventListener('visibilitychange', this.onVisibility);
    this.io?.disconnect();
    this.io = null;
    this.suspended = null;
  },
};
