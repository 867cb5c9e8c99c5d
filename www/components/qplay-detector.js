// <qplay-detector>: run a real ONNX detector on an image, in a Web Worker.
//
// Attributes: model (URL of an .onnx, or `person` / `face` for a built-in one; default the built-in
// person detector), profile (URL of a profile JSON for a model URL; inferred from the outputs when
// absent), image (URL), score (threshold), backend (`cpu`, the default, or `webgpu`: inference on the
// GPU through WebGPU, falling back to the CPU with a note saying why when it cannot), hide (control names to hide, separated by spaces or
// commas: model upload image image-upload score quantize method perchannel profile summary camera), loading
// ("lazy", the default: the worker starts and the model downloads when the element comes within
// 200px of the viewport, see lazy.js; "eager": at once).
// `ready`: a promise, resolved once the element has started and its first model and image are
// loaded (or failed to); `start()` starts it now.
// Events (bubbling, composed): qplay-progress {stage}, qplay-ready {info}, qplay-frame
// {detections, timings, int8, live, memory, gpuBuffers, backend, recovered}, qplay-quantized {report, seconds}, qplay-error
// {code, message}, qplay-change {settings} after a user changes a setting. Property `settings`
// (get/set): {model, image, score, backend, method, perChannel, keepFp32}; `dispose()` stops the camera
// and the worker. A user can drop or choose an .onnx, a profile .json, or an image anywhere on the
// component; the camera (www/camera.js) starts on a click only, and a video file plays as input.
import { Engine, imageData } from '../engine.js';
import { LiveStats, VideoSource, checkCameraAvailable, listCameras } from '../camera.js';
import { fmt } from '../qplay.js';
import { METRICS, exportChart, fmtPct, histogramChart, methodLines, pairBars, sortLayers, sqnrBars, truncate } from './report-charts.js';
import { deferred, startWhenNear } from './lazy.js';

const BASE = new URL('../', import.meta.url).href;
const BUILTIN = {
  person: { label: 'Person detector — SSDLite MobileNetV2, 300×300 (default)', model: `${BASE}models/person_ssdlite.onnx`, profile: `${BASE}models/person_ssdlite.json` },
  face: { label: 'Face detector — BlazeFace short range, 128×128', model: `${BASE}models/blazeface_short.onnx`, profile: `${BASE}models/blazeface_short.json` },
};
export const SAMPLES = ['person.jpg', 'horses.jpg', 'kite.jpg', 'dog.jpg', 'astronaut.png', 'coffee.png', 'camera.png'];
export const BUILTIN_MODELS = Object.keys(BUILTIN);
export const METHODS = ['mse', 'percentile', 'minmax', 'entropy', 'ema'];
/** Controls the `hide` attribute can hide: name → what is hidden (in the shadow root). */
export const HIDEABLE = {
  model: 'label:has(> [name=builtin])', upload: 'label:has(> [name=model]), label:has(> [name=profile])',
  image: 'label:has(> [name=sample])', 'image-upload': 'label:has(> [name=image])', score: 'label:has(> [name=score])',
  quantize: 'fieldset.quant', method: 'label:has(> [name=method])', perchannel: 'label:has(> [name=perChannel])',
  profile: 'details.profile-edit', summary: 'details.model-info', camera: '.live-controls',
};
const BOX = '#0072B2';
const INT8 = '#D55E00';

const TEMPLATE = document.createElement('template');
TEMPLATE.innerHTML = `
<style>
  :host { display: block; container-type: inline-size; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
          --qp-border: var(--border, #d5dbe1); --qp-card: var(--card, #f4f6f8); --qp-muted: var(--muted, #5b6570); --qp-err: var(--err, #b3261e); }
  * { box-sizing: border-box; }
  .grid { display: grid; grid-template-columns: minmax(280px, 340px) 1fr; gap: 16px; }
  @container (max-width: 820px) { .grid { grid-template-columns: 1fr; } }
  fieldset { border: 1px solid var(--qp-border); border-radius: 8px; padding: 10px 12px; margin: 0 0 12px; }
  legend { font-weight: 600; padding: 0 4px; }
  label { display: block; margin: 6px 0; }
  select, input[type=file] { font: inherit; max-width: 100%; }
  select { width: 100%; padding: 3px 4px; border: 1px solid var(--qp-border); border-radius: 4px; background: transparent; color: inherit; }
  input[type=range] { width: 100%; }
  button { font: inherit; padding: 4px 10px; border: 1px solid var(--qp-border); border-radius: 6px; background: var(--qp-card); color: inherit; cursor: pointer; }
  button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible { outline: 2px solid ${BOX}; outline-offset: 1px; }
  .status { font-size: 13px; color: var(--qp-muted); min-height: 1.5em; display: flex; gap: 8px; align-items: center; }
  .status[data-busy] .spin { display: inline-block; }
  .spin { display: none; width: 12px; height: 12px; border: 2px solid var(--qp-border); border-top-color: ${BOX}; border-radius: 50%; }
  @media (prefers-reduced-motion: no-preference) { .spin { animation: r 0.8s linear infinite; } }
  @keyframes r { to { transform: rotate(360deg); } }
  .error { color: var(--qp-err); border: 1px solid var(--qp-err); border-radius: 6px; padding: 6px 10px; margin: 0 0 10px; white-space: pre-wrap; }
  .error[hidden] { display: none; }
  .stage { position: relative; background: var(--qp-card); border-radius: 8px; min-height: 300px; display: flex; align-items: center; justify-content: center; }
  canvas { max-width: 100%; height: auto; display: block; border-radius: 6px; }
  .drop { position: absolute; inset: 0; border: 3px dashed ${BOX}; border-radius: 8px; display: none; align-items: center; justify-content: center; background: rgba(0,114,178,.08); font-weight: 600; }
  :host([data-dragging]) .drop { display: flex; }
  .timings { font: 13px ui-monospace, "DejaVu Sans Mono", monospace; margin: 8px 0; }
  ol.dets { margin: 4px 0; padding-left: 20px; font-size: 13px; }
  table { border-collapse: collapse; font-size: 12.5px; width: 100%; }
  td, th { text-align: left; padding: 2px 6px; border-bottom: 1px solid var(--qp-border); vertical-align: top; }
  td.n, th.n { text-align: right; }
  table.ops { width: auto; min-width: 45%; margin-top: 10px; }
  .bad { color: var(--qp-err); font-weight: 600; }
  details { margin: 8px 0; }
  summary { cursor: pointer; font-weight: 600; }
  textarea { width: 100%; min-height: 180px; font: 12px ui-monospace, monospace; background: transparent; color: inherit; border: 1px solid var(--qp-border); border-radius: 4px; }
  .note { color: var(--qp-muted); font-size: 13px; }
  ul.assumed { margin: 4px 0; padding-left: 18px; font-size: 13px; }
  .panes { display: grid; grid-template-columns: 1fr; gap: 12px; }
  :host([data-int8]) .panes { grid-template-columns: 1fr 1fr; }
  .pane-h { font-weight: 600; font-size: 13px; margin-bottom: 4px; }
  .key { display: inline-block; width: 28px; height: 0; vertical-align: middle; margin-left: 6px; }
  .key.solid { border-top: 3px solid ${BOX}; } .key.dashed { border-top: 3px dashed ${INT8}; }
  [hidden] { display: none !important; }
  .agreement { font-size: 13px; margin: 6px 0; }
  .row { display: flex; flex-wrap: wrap; gap: 6px; margin: 6px 0; }
  .live-controls { border-top: 1px solid var(--qp-border); border-bottom: 1px solid var(--qp-border); padding: 4px 0; margin: 8px 0; }
  .view-row { display: flex; flex-wrap: wrap; gap: 4px 16px; align-items: center; font-size: 13px; margin: 6px 0; }
  .view-row label { margin: 0; }
  .view-row select { width: auto; }
  .live { font: 13px ui-monospace, "DejaVu Sans Mono", monospace; margin: 6px 0; padding: 6px 8px; border-radius: 6px; background: var(--qp-card); }
  .live b { font-family: system-ui, sans-serif; }
  :host([data-overlay]) .int8-pane .stage { display: none; }
  :host([data-int8][data-overlay]) .panes { grid-template-columns: 1fr; }
  a.dl { margin-right: 12px; }
  button[data-keep] { white-space: nowrap; font-size: 12px; padding: 2px 6px; }
  .charts { display: grid; gap: 12px; margin: 10px 0; }
  figure.chart { margin: 0; border: 1px solid var(--qp-border); border-radius: 8px; padding: 8px 10px; min-width: 0; }
  figure.chart svg { display: block; max-width: 100%; height: auto; }
  .chart-h { display: flex; flex-wrap: wrap; gap: 6px 12px; align-items: center; font-size: 13px; margin-bottom: 6px; }
  .chart-h .grow { flex: 1; }
  .chart-h select { width: auto; }
  .chart-h label { margin: 0; display: inline-flex; gap: 4px; align-items: center; }
  button[data-export] { font-size: 12px; padding: 1px 7px; }
  .scroll { overflow: auto; max-height: 360px; border-top: 1px solid var(--qp-border); }
  .scroll.channels { max-height: 260px; }
  .scroll.channels table { width: auto; min-width: 60%; }
  .scroll.channels thead th { position: sticky; top: 0; background: var(--qp-card); }
  g.bar:focus { outline: none; }
  g.bar:focus-visible rect.bg { fill: ${BOX}; fill-opacity: 0.22; }
  g.bar[aria-pressed=false]:hover rect.bg { fill: ${BOX}; fill-opacity: 0.08; }
  .layer-h { display: flex; flex-wrap: wrap; gap: 8px 14px; align-items: baseline; font-size: 13px; }
  .layer-h code { font-weight: 600; word-break: break-all; }
  .hists, .pairs { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 12px; }
  table.layers td { white-space: nowrap; }
  .formula { font: 12.5px ui-monospace, "DejaVu Sans Mono", monospace; }
</style>
<div class="grid">
  <div part="toolbar">
    <fieldset>
      <legend>Model</legend>
      <label>Built-in <select name="builtin" aria-label="built-in model">
        ${Object.entries(BUILTIN).map(([k, v]) => `<option value="${k}">${v.label}</option>`).join('')}
        <option value="custom" hidden>Your file</option>
      </select></label>
      <label>…or your own ONNX file <input type="file" name="model" accept=".onnx,application/octet-stream"></label>
      <label>Profile JSON (optional) <input type="file" name="profile" accept=".json,application/json"></label>
      <div class="status" part="status" aria-live="polite"><span class="spin"></span><span class="stage-text">loading…</span>
        <button type="button" name="cancel" hidden>Cancel</button></div>
    </fieldset>
    <fieldset>
      <legend>Image</legend>
      <label>Sample photo <select name="sample" aria-label="sample photo">
        ${SAMPLES.map((s) => `<option value="${s}">${s}</option>`).join('')}
        <option value="custom" hidden>Your image</option>
      </select></label>
      <label>…or your own <input type="file" name="image" accept="image/*"></label>
      <div class="live-controls" part="camera">
        <div class="row"><button type="button" name="camera">Start camera</button>
          <button type="button" name="pause" hidden aria-pressed="false">Pause (freeze frame)</button>
          <button type="button" name="stop" hidden>Stop</button></div>
        <label class="camera-pick" hidden>Camera <select name="camera-device" aria-label="camera"></select></label>
        <label><input type="checkbox" name="mirror" checked> mirror the camera (selfie view)</label>
        <label>…or a video file <input type="file" name="video" accept="video/*"></label>
        <button type="button" name="use-frame" hidden>Use this frame for calibration</button>
      </div>
      <label>Score threshold <output name="scoreOut"></output>
        <input type="range" name="score" min="0.05" max="0.95" step="0.05" aria-label="score threshold"></label>
      <p class="note">Drop an .onnx, a profile .json or an image anywhere on this panel.</p>
    </fieldset>
    <fieldset class="quant">
      <legend>Quantize to INT8</legend>
      <label>Calibration method <select name="method" aria-label="calibration method">
        <option value="mse">MSE (default)</option><option value="percentile">Percentile 99.99</option><option value="minmax">MinMax</option>
        <option value="entropy">Entropy (KL)</option><option value="ema">Moving-average MinMax</option>
      </select></label>
      <label><input type="checkbox" name="perChannel" checked> per-channel weights (off: per tensor)</label>
      <label>Keep the <input type="number" name="autoMixed" min="0" max="20" step="1" value="0" aria-label="number of most sensitive layers to keep FP32" style="width:4em">
        most sensitive layers FP32 (automatic mixed precision; each layer's sensitivity is measured, which takes a while)</label>
      <p class="note keep-note" hidden></p>
      <label><input type="checkbox" name="use-samples" checked> calibrate with the ${SAMPLES.length} sample photos</label>
      <label>…and your images <input type="file" name="calib" accept="image/*" multiple aria-label="calibration images"></label>
      <p class="calib-note note" aria-live="polite"></p>
      <button type="button" name="clear-calib" hidden>Clear my calibration images</button>
      <button type="button" name="quantize">Quantize</button>
      <p class="note">Post-training quantization in this tab: int8 weights, uint8 activations, QDQ ONNX that onnxruntime loads.</p>
    </fieldset>
  </div>
  <div>
    <div class="error" role="alert" hidden></div>
    <div class="panes">
      <div><div class="pane-h fp32-h">FP32 <span class="key solid"></span></div>
        <div class="stage" part="overlay"><canvas class="fp32" width="640" height="424" aria-label="image with FP32 detections"></canvas><div class="drop">Drop to load</div></div>
        <div class="timings" part="timings"></div>
        <ol class="dets"></ol></div>
      <div class="int8-pane" hidden><div class="pane-h">INT8 (int8 kernels) <span class="key dashed"></span></div>
        <div class="stage"><canvas class="int8" aria-label="image with INT8 detections"></canvas></div>
        <div class="timings int8-timings"></div>
        <ol class="dets int8-dets"></ol></div>
    </div>
    <div class="view-row"><label><input type="checkbox" name="overlay"> overlay INT8 on the FP32 pane</label>
      <label>Backend <select name="backend" aria-label="backend"><option value="cpu">CPU (wasm SIMD128)</option><option value="webgpu">WebGPU</option></select></label>
      <span class="backend-note note"></span></div>
    <div class="live" part="live" aria-live="off" hidden></div>
    <div class="agreement"></div>
    <video class="source" muted playsinline hidden></video>
    <details class="qreport" hidden open><summary>Quantization report</summary><div class="qreport-body"></div></details>
    <details class="model-info" open><summary>Model summary</summary><div class="summary"></div></details>
    <details class="profile-edit"><summary>Detection profile (edit to override)</summary>
      <ul class="assumed"></ul>
      <textarea name="profile-json" spellcheck="false" aria-label="profile JSON"></textarea>
      <button type="button" name="apply">Apply profile</button></details>
  </div>
</div>`;

export class QplayDetector extends HTMLElement {
  static observedAttributes = ['score', 'hide', 'backend'];

  constructor() {
    super();
    this.attachShadow({ mode: 'open' }).appendChild(TEMPLATE.content.cloneNode(true));
    this.engine = null;
    this.image = null;
    this.info = null;
    this.result = null;
    this.score = 0.5;
    this.modelBytes = null;
    this.view = { metric: 'output', selected: null, logY: false };
    this.whenReady = deferred();
    this.ready = this.whenReady.promise;
  }

  /** Starts the worker and loads the model and image the attributes name; called when the element comes near the viewport (lazy.js), or by hand. */
  start() {
    if (this.engine) return this.ready;
    this.stopWatching?.();
    // Started again after being removed from the page: a new `ready` for the new load.
    if (this.whenReady.done) { this.whenReady = deferred(); this.ready = this.whenReady.promise; }
    const whenReady = this.whenReady;
    this.engine = new Engine();
    // Asked for before the model loads, so the model is placed on the GPU as it loads.
    if (this.backend === 'webgpu') this.setBackend('webgpu');
    const model = this.getAttribute('model');
    (model && !BUILTIN[model] ? (this.source = model, this.loadUrl(model, this.getAttribute('profile'))) : this.loadBuiltin(BUILTIN[model] ? model : 'person'))
      .then(() => this.setImage(this.getAttribute('image') ?? `${BASE}samples/person.jpg`))
      .then(() => { whenReady.done = true; whenReady.resolve(); });
    return this.ready;
  }

  get $() { return (sel) => this.shadowRoot.querySelector(sel); }

  attributeChangedCallback(name, _o, v) {
    if (name === 'score' && Number.isFinite(Number(v))) this.score = Number(v);
    if (name === 'backend' && (v === 'cpu' || v === 'webgpu') && v !== this.backend) {
      if (this.engine) this.setBackend(v); else { this.backend = v; this.$('select[name=backend]').value = v; }
    }
    if (name === 'hide') {
      const names = new Set((v ?? '').split(/[\s,]+/).filter(Boolean));
      for (const [n, sel] of Object.entries(HIDEABLE)) for (const el of this.shadowRoot.querySelectorAll(sel)) el.hidden = names.has(n);
    }
  }

  /** The settings a link can restore: model (`person`, `face`, `uploaded`, or the model URL), image (a sample
   * photo's file name, `uploaded`, or the image URL), score, method, perChannel, keepFp32 (layer names). */
  get settings() {
    const $ = this.$;
    const sample = $('select[name=sample]').value;
    return {
      model: this.source ?? 'person', image: sample === 'custom' ? this.imageSource ?? 'uploaded' : sample, score: this.score, backend: this.backend ?? 'cpu',
      method: $('select[name=method]').value, perChannel: $('input[name=perChannel]').checked, keepFp32: [...(this.keepFp32 ?? [])],
    };
  }

  /** Applies the given settings (any subset). A new model or image loads; the quantize settings take effect at the next Quantize. */
  set settings(v) {
    const $ = this.$;
    if (v.method !== undefined && METHODS.includes(v.method)) $('select[name=method]').value = v.method;
    if (v.perChannel !== undefined) $('input[name=perChannel]').checked = !!v.perChannel;
    if (v.keepFp32 !== undefined) { this.keepFp32 = new Set(v.keepFp32); this.showKeep(); }
    if (v.score !== undefined && Number.isFinite(Number(v.score))) {
      this.score = Number(v.score);
      $('input[name=score]').value = String(this.score);
      $('output[name=scoreOut]').textContent = this.score.toFixed(2);
      this.applyThresholds();
    }
    if (v.backend === 'cpu' || v.backend === 'webgpu') {
      if (this.engine) { if (v.backend !== this.backend) this.setBackend(v.backend); } else { this.backend = v.backend; $('select[name=backend]').value = v.backend; }
    }
    if (!this.engine) {
      // Not started yet: the model and image it will load when it starts.
      if (v.model !== undefined && BUILTIN[v.model]) this.setAttribute('model', v.model);
      if (v.image !== undefined && SAMPLES.includes(v.image)) this.setAttribute('image', `${BASE}samples/${v.image}`);
      return;
    }
    if (v.model !== undefined && BUILTIN[v.model] && v.model !== this.source) this.loadBuiltin(v.model);
    if (v.image !== undefined && SAMPLES.includes(v.image)) this.setImage(`${BASE}samples/${v.image}`);
  }

  changed() { this.emit('qplay-change', this.settings); }

  /** The layers kept FP32 at the next Quantize, under the Quantize button's fieldset. */
  showKeep() {
    const note = this.$('.keep-note');
    const keep = [...(this.keepFp32 ?? [])];
    note.hidden = !keep.length;
    note.textContent = keep.length ? `Layers kept FP32 when quantizing: ${keep.join(', ')}` : '';
  }

  connectedCallback() {
    if (!this.engine) this.stopWatching = startWhenNear(this, () => this.start(), this.getAttribute('loading') === 'eager');
    if (this.wired) return;
    this.wired = true;
    // A reader who reaches for it before it is near the viewport (say, with the keyboard) starts it.
    for (const type of ['focusin', 'pointerdown', 'dragenter']) this.addEventListener(type, () => this.start());
    const $ = this.$;
    $('input[name=score]').value = String(this.score);
    $('output[name=scoreOut]').textContent = this.score.toFixed(2);
    $('select[name=builtin]').addEventListener('change', (e) => { this.loadBuiltin(e.target.value); this.changed(); });
    $('input[name=model]').addEventListener('change', (e) => { if (e.target.files[0]) { this.loadFile(e.target.files[0]); this.changed(); } });
    $('input[name=profile]').addEventListener('change', (e) => e.target.files[0] && this.loadProfileFile(e.target.files[0]));
    $('select[name=sample]').addEventListener('change', (e) => { this.setImage(`${BASE}samples/${e.target.value}`); this.changed(); });
    $('input[name=image]').addEventListener('change', (e) => { if (e.target.files[0]) { this.setImage(e.target.files[0]); this.changed(); } });
    $('input[name=score]').addEventListener('input', (e) => {
      this.score = Number(e.target.value);
      $('output[name=scoreOut]').textContent = this.score.toFixed(2);
      this.applyThresholds();
      this.changed();
    });
    $('select[name=method]').addEventListener('change', () => this.changed());
    $('input[name=perChannel]').addEventListener('change', () => this.changed());
    $('button[name=cancel]').addEventListener('click', () => this.cancel());
    $('button[name=apply]').addEventListener('click', () => this.applyProfileText());
    $('button[name=quantize]').addEventListener('click', () => this.quantize());
    $('button[name=camera]').addEventListener('click', () => this.startCamera());
    $('select[name=camera-device]').addEventListener('change', (e) => this.startCamera(e.target.value));
    $('input[name=video]').addEventListener('change', (e) => e.target.files[0] && this.startVideo(e.target.files[0]));
    $('button[name=pause]').addEventListener('click', () => this.togglePause());
    $('button[name=stop]').addEventListener('click', () => this.stopLive('stopped'));
    $('button[name=use-frame]').addEventListener('click', () => this.useFrame());
    $('input[name=calib]').addEventListener('change', (e) => this.addCalibrationFiles([...e.target.files]));
    $('button[name=clear-calib]').addEventListener('click', () => { this.calib = []; this.showCalibration(); });
    $('input[name=use-samples]').addEventListener('change', () => this.showCalibration());
    $('select[name=backend]').addEventListener('change', (e) => { this.start(); this.setBackend(e.target.value); this.changed(); });
    $('input[name=overlay]').addEventListener('change', (e) => {
      if (e.target.checked) this.dataset.overlay = ''; else delete this.dataset.overlay;
      if (this.result && this.image) this.show(this.result);
    });
    this.video = new VideoSource($('video.source'));
    this.stats = new LiveStats();
    this.calib = [];
    this.showCalibration();
    this.showBackend();
    $('.qreport').addEventListener('click', (e) => {
      const keep = e.target.closest('button[data-keep]');
      if (keep) { (this.keepFp32 ??= new Set()).add(keep.dataset.keep); this.showKeep(); this.changed(); this.quantize(); return; }
      if (e.target.closest('button[name=copy-config]')) navigator.clipboard?.writeText(this.configCommand()).catch(() => {});
      const bar = e.target.closest('g.bar[data-node]');
      if (bar) this.selectLayer(bar.dataset.node);
      const exp = e.target.closest('button[data-export]');
      if (exp) this.exportChart(exp.closest('figure[data-chart]'), exp.dataset.export);
    });
    $('.qreport').addEventListener('keydown', (e) => {
      const bar = e.target.closest?.('g.bar[data-node]');
      if (!bar) return;
      if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); this.selectLayer(bar.dataset.node, true); }
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        const next = e.key === 'ArrowDown' ? bar.nextElementSibling : bar.previousElementSibling;
        if (next?.matches('g.bar')) next.focus();
      }
    });
    $('.qreport').addEventListener('change', (e) => {
      if (e.target.name === 'metric') { this.view.metric = e.target.value; this.renderSqnr(); }
      if (e.target.name === 'logy') { this.view.logY = e.target.checked; this.renderLayer(); }
    });
    this.addEventListener('dragover', (e) => { e.preventDefault(); this.dataset.dragging = ''; });
    this.addEventListener('dragleave', () => delete this.dataset.dragging);
    this.addEventListener('drop', (e) => { e.preventDefault(); delete this.dataset.dragging; this.onDrop([...e.dataTransfer.files]); });
    this.showKeep();
  }

  disconnectedCallback() { this.stopWatching?.(); this.stopLive(); this.engine?.worker.terminate(); this.engine = null; }

  /** Releases the worker and the camera; the element can be connected again later. */
  dispose() { this.disconnectedCallback(); }

  // ---- live input: camera or video file ----

  /** Starts the camera (only ever from a click), or switches to the camera `deviceId`. */
  async startCamera(deviceId) {
    this.showError(null);
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
  }

  async startVideo(file) {
    this.showError(null);
    try {
      await this.video.startFile(file);
      this.beginLive('video');
      this.status(`${this.modelName ?? 'model'}: live from ${file.name ?? 'the video file'}`);
    } catch (e) { this.showError(e.message, e.code ?? 'bad-video'); this.stopLive(); }
  }

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
  }

  /** Detects on video frames for as long as the source is live: one frame in flight at a time
   * (frames that arrive meanwhile are dropped), boxes drawn on the very frame that was detected. */
  async liveLoop() {
    if (this.looping) return;
    this.looping = true;
    const canvases = [document.createElement('canvas'), document.createElement('canvas')];
    let which = 0;
    try {
      while (this.video.live && !this.paused && this.isConnected) {
        if (!this.info || this.running) { await sleep(50); continue; }
        const mirror = this.liveKind === 'camera' && this.$('input[name=mirror]').checked;
        const frame = this.video.capture(mirror, canvases[which]);
        if (!frame) { await nextPaint(); continue; }
        which ^= 1;
        this.image = frame;
        const r = await this.run({ live: true });
        if (r && this.video.live) {
          this.frameNo += 1;
          this.stats.add(r.timings, r.int8?.timings);
          this.showLive(r);
        }
        await nextPaint();
      }
    } finally { this.looping = false; }
  }

  showLive(r) {
    const s = this.stats;
    const ms = (k) => (Number.isFinite(s.mean(k)) ? s.mean(k).toFixed(1) : '–');
    const src = this.liveKind === 'camera' ? 'camera' : 'video file';
    const head = this.paused ? `<b>Paused</b> on frame ${this.frameNo} (${src}): change the threshold or quantize on this frame, or Resume.`
      : `<b>Live</b> · ${src} · frame ${this.frameNo} · <span class="fps">${s.fps.toFixed(1)}</span> FPS displayed`;
    const warm = s.warmingUp ? `warming up: frame ${s.frames} of ${LiveStats.WARMUP}, left out of the timings` : `mean of ${s.counted} frames after a ${LiveStats.WARMUP}-frame warm-up`;
    const line = (p, name) => `${name}: pre-process ${ms(`${p}preprocess`)} · inference <b class="${p}inf">${ms(`${p}inference`)}</b> · decode ${ms(`${p}decode`)} ms`;
    this.$('.live').innerHTML = `${head}<br>${warm}<br>${line('fp32_', 'FP32')}${r?.int8 ? `<br>${line('int8_', 'INT8')}` : ''}`;
  }

  togglePause() { this.setPaused(!this.paused); if (!this.paused) this.liveLoop(); }

  setPaused(p) {
    this.paused = p;
    const b = this.$('button[name=pause]');
    b.textContent = p ? 'Resume' : 'Pause (freeze frame)';
    b.setAttribute('aria-pressed', String(p));
    if (p) this.video.pause(); else this.video.resume()?.catch?.(() => {});
    if (this.video.live) this.showLive(this.result);
  }

  /** Stops the camera or video; the last frame stays as the current image. */
  stopLive(why) {
    this.video?.stop();
    this.paused = false;
    this.liveKind = null;
    if (!this.shadowRoot) return;
    for (const n of ['pause', 'stop', 'use-frame']) this.$(`button[name=${n}]`).hidden = true;
    this.$('button[name=camera]').textContent = 'Start camera';
    if (why) this.$('.live').innerHTML = `<b>Stopped</b> after ${this.frameNo ?? 0} frames; the last frame stays.`;
  }

  /** Adds the frame on screen to the calibration images. */
  useFrame() {
    if (!this.image) return;
    const d = this.image.data;
    this.calib.push({ name: `frame ${this.frameNo}`, data: new ImageData(new Uint8ClampedArray(d.data), d.width, d.height) });
    this.showCalibration();
  }

  async addCalibrationFiles(files) {
    for (const f of files) {
      try { this.calib.push({ name: f.name, data: (await imageData(f)).data }); } catch (e) { this.showError(e.message, 'bad-image'); }
    }
    this.showCalibration();
  }

  showCalibration() {
    const mine = this.calib?.length ?? 0;
    const samples = this.$('input[name=use-samples]').checked ? SAMPLES.length : 0;
    this.$('.calib-note').textContent = `Calibration set: ${samples} sample photos + ${mine} of yours (frames and images) = ${samples + mine}.`;
    this.$('button[name=clear-calib]').hidden = !mine;
  }

  /** Switches inference between the CPU and WebGPU (in the worker); shows what is actually in use and why. */
  async setBackend(want) {
    this.backend = want;
    this.$('select[name=backend]').value = want;
    if (!this.engine) { this.showBackend(); return; }
    if (want === 'webgpu' && !hasWebGpu()) {
      this.backendInfo = { backend: 'cpu', note: 'WebGPU is not available in this browser (no navigator.gpu)' };
      this.$('select[name=backend]').value = 'cpu';
      this.showBackend();
      return;
    }
    const name = this.modelName ?? 'model';
    this.status(want === 'webgpu' ? `${name}: opening WebGPU and compiling the kernels…` : `${name}: switching to the CPU…`, true);
    try {
      this.backendInfo = await this.engine.setBackend(want);
      if (this.backendInfo.backend !== want) this.$('select[name=backend]').value = this.backendInfo.backend;
      this.status(`${name}: ${this.backendInfo.backend === 'webgpu' ? 'on WebGPU' : 'on the CPU'}`);
      this.showBackend();
      if (this.backendInfo.note) this.emit('qplay-error', { code: 'webgpu-unavailable', message: this.backendInfo.note });
      if (this.info && this.image && !this.video?.live) await this.run();
    } catch (e) {
      if (!e.cancelled) this.showError(`Switching the backend failed: ${e.message}`, 'backend');
    }
  }

  /** The backend line: what runs inference now, on which adapter, how much of the model is on the GPU, and why not WebGPU when it is not. */
  showBackend() {
    const b = this.backendInfo ?? { backend: 'cpu', note: null };
    if (b.placement) this.placement = { ...(this.placement ?? {}), ...Object.fromEntries(Object.entries(b.placement).filter(([, v]) => v)) };
    const el = this.$('.backend-note');
    if (b.backend === 'webgpu') {
      const steps = (s) => s?.match(/^\d+ of \d+ steps on the GPU/)?.[0];
      const soft = /swiftshader|llvmpipe|software|cpu/i.test(b.adapter ?? '');
      const parts = [`In use: WebGPU — ${b.adapter || 'adapter'}; int8 dot products ${b.packedDot ? 'with dot4I8Packed' : 'unpacked (no packed_4x8_integer_dot_product)'}.`];
      if (steps(this.placement?.fp32)) parts.push(`FP32: ${steps(this.placement.fp32)}.`);
      if (this.int8 && steps(this.placement?.int8)) parts.push(`INT8: ${steps(this.placement.int8)}.`);
      parts.push('Frames are pre-processed on the GPU (resize, normalisation) and decoded on the CPU.');
      if (soft) parts.push('This adapter is a software emulation of a GPU on the CPU (no GPU, or a headless browser): expect it to be slower than the CPU backend.');
      if (b.note) parts.push(b.note);
      el.textContent = parts.join(' ');
      el.title = [this.placement?.fp32 && `FP32: ${this.placement.fp32}`, this.int8 && this.placement?.int8 && `INT8: ${this.placement.int8}`].filter(Boolean).join('\n');
    } else {
      const why = b.note ?? (hasWebGpu() ? 'Choose WebGPU to run inference on the GPU.' : 'WebGPU is not available in this browser (no navigator.gpu), so the CPU is used.');
      el.textContent = `In use: CPU — wasm SIMD128, 1 thread, in a Web Worker. ${why}`;
      el.title = '';
    }
    el.dataset.backend = b.backend;
    const opt = this.$('select[name=backend] option[value=webgpu]');
    opt.disabled = !hasWebGpu();
  }

  status(text, busy = false) {
    const s = this.$('.status');
    s.querySelector('.stage-text').textContent = text;
    if (busy) s.dataset.busy = ''; else delete s.dataset.busy;
    this.$('button[name=cancel]').hidden = !busy;
    if (busy) this.emit('qplay-progress', { stage: text });
  }

  showError(message, code = 'error') {
    const e = this.$('.error');
    e.hidden = !message;
    e.textContent = message ?? '';
    if (message) this.emit('qplay-error', { code, message });
  }

  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { bubbles: true, composed: true, detail })); }

  async onDrop(files) {
    for (const f of files) {
      if (/\.onnx$/i.test(f.name)) await this.loadFile(f);
      else if (/\.json$/i.test(f.name)) await this.loadProfileFile(f);
      else if (f.type.startsWith('image/')) await this.setImage(f);
      else this.showError(`${f.name}: drop an .onnx model, a profile .json or an image`, 'bad-file');
    }
  }

  async loadBuiltin(key) {
    const b = BUILTIN[key];
    this.source = key;
    this.$('select[name=builtin]').value = key;
    await this.loadUrl(b.model, b.profile, b.label);
  }

  async loadUrl(model, profileUrl, label) {
    try {
      const bytes = await download(model, (got, total) => this.status(
        `downloading ${label ?? model}: ${(got / 1e6).toFixed(1)}${total ? ` of ${(total / 1e6).toFixed(1)}` : ''} MB`, true));
      const profile = profileUrl ? new TextDecoder().decode(await download(profileUrl, () => {})) : null;
      await this.loadBytes(bytes, profile, label ?? model.split('/').pop());
      this.modelUrl = new URL(model, document.baseURI).href;
    } catch (e) {
      if (!e.cancelled) { this.status('not loaded'); this.showError(`Could not load ${model}: ${e.message}`, 'model-load'); }
    }
  }

  async loadFile(file) {
    this.$('select[name=builtin]').value = 'custom';
    this.source = 'uploaded';
    this.customProfile = null;
    await this.loadBytes(await file.arrayBuffer(), null, file.name);
  }

  async loadProfileFile(file) {
    const text = await file.text();
    if (!this.modelBytes) { this.showError('Load a model first, then its profile.', 'no-model'); return; }
    await this.loadBytes(this.modelBytes, text, this.modelName);
  }

  async applyProfileText() {
    if (!this.modelBytes) return;
    await this.loadBytes(this.modelBytes, this.$('textarea[name=profile-json]').value, this.modelName);
  }

  async loadBytes(bytes, profile, name) {
    this.showError(null);
    // Another model drops the kept layers (not the first model: a restored link may have set them).
    if (this.modelName !== undefined && name !== this.modelName) { this.keepFp32 = new Set(); this.showKeep(); }
    this.modelBytes = bytes;
    this.modelUrl = null; // set by loadUrl once loaded from a URL
    this.modelName = name;
    this.info = null; // no detection with a stale model while this one loads
    this.resetInt8();
    const t0 = performance.now();
    try {
      this.status(`loading ${name}…`, true);
      this.info = await this.engine.load(bytes.slice(0), profile, (stage) => this.status(`${name}: ${stage}…`, true));
      this.placement = null;
      if (this.info.backend) { this.backendInfo = this.info.backend; this.showBackend(); }
      this.status(`${name}: ready (${(bytes.byteLength / 1e6).toFixed(2)} MB, loaded in ${Math.round(performance.now() - t0)} ms)`);
      await this.engine.setThresholds(this.score, this.info.profile.iou_threshold);
      this.renderInfo(this.info, null);
      this.emit('qplay-ready', { info: this.info });
      if (this.image) await this.run();
    } catch (e) {
      if (e.cancelled) { this.status('cancelled'); return; }
      this.info = null;
      this.status(`${name}: cannot run`);
      this.renderInfo(e.summary ? { summary: e.summary } : null, e.message);
      const code = /unsupported op/.test(e.message) ? 'unsupported-op' : 'model-load';
      this.showError(`${name}: ${e.message}`, code);
    }
  }

  cancel() {
    this.engine.cancel();
    this.info = null;
    this.status('cancelled — choose a model to load');
  }

  async setImage(src) {
    if (this.video?.live) this.stopLive();
    try {
      // The picker shows the sample photo when the image is one of them (an `image` attribute may name one).
      const sample = typeof src === 'string' ? SAMPLES.find((n) => new URL(src, document.baseURI).href === `${BASE}samples/${n}`) : null;
      this.$('select[name=sample]').value = sample ?? 'custom';
      this.imageSource = typeof src === 'string' ? src : 'uploaded';
      const { data, bitmap } = await imageData(src);
      this.image = { data, bitmap };
      this.showError(null);
      this.draw(null);
      if (this.info) await this.run();
    } catch (e) { this.showError(e.message, 'bad-image'); }
  }

  async applyThresholds() {
    if (!this.info) return;
    await this.engine.setThresholds(this.score, this.info.profile.iou_threshold);
    await this.run();
  }

  /** Detects on the current image and shows the result; resolves to it (null when nothing ran). */
  async run({ live = false } = {}) {
    if (!this.image || !this.info) return null;
    if (this.running) { if (!live) this.rerun = true; return null; }
    this.running = true;
    // A slow frame (a software GPU adapter takes seconds) says what it is doing.
    const text = this.$('.status .stage-text');
    const before = text.textContent;
    const slow = live ? null : setTimeout(() => {
      text.textContent = `${this.modelName ?? 'model'}: detecting on ${this.backendInfo?.backend === 'webgpu' ? 'WebGPU' : 'the CPU'}…`;
    }, 500);
    try {
      const score = this.score;
      const image = this.image;
      const r = await this.engine.detect(image.data);
      r.score = score;
      r.model = this.modelName;
      this.result = r;
      this.show(r, image);
      if (r.recovered || (r.backend && r.backend.backend !== this.backendInfo?.backend)) {
        this.backendInfo = { ...r.backend, note: r.recovered ?? r.backend.note };
        this.$('select[name=backend]').value = r.backend.backend;
        this.showBackend();
      }
      this.emit('qplay-frame', { detections: r.detections, timings: r.timings, int8: r.int8, live, memory: r.memory, gpuBuffers: r.gpuBuffers, backend: r.on, recovered: r.recovered });
      return r;
    } catch (e) {
      if (!e.cancelled) this.showError(`Detection failed: ${e.message}`, 'inference');
      return null;
    } finally {
      clearTimeout(slow);
      if (/: detecting on /.test(text.textContent)) text.textContent = before;
      this.running = false;
      if (this.rerun) { this.rerun = false; this.run(); }
    }
  }

  /** Draws a result on its frame: FP32 solid blue, INT8 dashed vermillion (in its own pane, or overlaid). */
  show(r, image = this.image) {
    const overlay = this.$('input[name=overlay]').checked && r.int8;
    this.draw(r.detections, 'canvas.fp32', BOX, [], image);
    if (overlay) this.draw(r.int8.detections, 'canvas.fp32', INT8, [8, 5], image, false);
    this.showResult(r, '.timings', 'ol.dets');
    if (r.int8) {
      if (!overlay) this.draw(r.int8.detections, 'canvas.int8', INT8, [8, 5], image);
      this.showResult(r.int8, '.int8-timings', 'ol.int8-dets');
      this.$('.agreement').textContent = agreement(r.detections, r.int8.detections);
      this.renderLatency();
    }
  }

  showResult(r, timingsSel, listSel) {
    const t = r.timings;
    this.$(timingsSel).textContent = `${r.detections.length} detection(s) · pre-process ${t.preprocess.toFixed(1)} ms · inference ${t.inference.toFixed(1)} ms · decode ${t.decode.toFixed(1)} ms (${r.on !== 'webgpu' ? 'wasm, CPU, 1 thread'
      : r.preOn === 'gpu' ? 'WebGPU: the frame is pre-processed on the GPU, within inference; decoding on the CPU' : 'inference on WebGPU, pre-processing and decoding on the CPU'})`;
    this.$(listSel).innerHTML = r.detections.map((d) => `<li data-label="${esc(d.label)}" data-score="${d.score}">${esc(d.label)} ${(d.score * 100).toFixed(1)} % — [${d.bbox.map((v) => v.toFixed(0)).join(', ')}]</li>`).join('');
  }

  resetInt8() {
    this.int8 = null;
    delete this.dataset.int8;
    this.$('.int8-pane').hidden = true;
    this.$('.qreport').hidden = true;
    this.$('.agreement').textContent = '';
    if (this.downloadUrl) URL.revokeObjectURL(this.downloadUrl);
  }

  async quantize() {
    if (!this.info) { this.showError('Load a model first.', 'no-model'); return; }
    const method = this.$('select[name=method]').value;
    const perChannel = this.$('input[name=perChannel]').checked;
    this.showError(null);
    try {
      this.status('decoding the calibration photos…', true);
      const images = [];
      if (this.$('input[name=use-samples]').checked) for (const name of SAMPLES) images.push({ name, data: (await imageData(`${BASE}samples/${name}`)).data });
      images.push(...this.calib);
      if (!images.length) throw new Error('the calibration set is empty: tick "calibrate with the sample photos", add images, or use camera frames');
      const keepFp32 = [...(this.keepFp32 ?? [])];
      const autoMixed = this.autoMixed();
      const r = await this.engine.quantize(images, { method, perChannel, keepFp32, autoMixed, score: this.score, iou: this.info.profile.iou_threshold },
        (stage) => this.status(stage, true));
      this.int8 = r;
      if (r.backend) { this.backendInfo = r.backend; this.showBackend(); }
      this.quantizations = (this.quantizations ?? 0) + 1;
      this.status(`${this.modelName}: quantized in ${r.seconds.toFixed(1)} s`);
      this.dataset.int8 = '';
      this.$('.int8-pane').hidden = false;
      this.renderReport(r);
      this.emit('qplay-quantized', { report: r.report, seconds: r.seconds });
      await this.run();
    } catch (e) {
      if (e.cancelled) { this.status('cancelled — reloading the model'); await this.loadBytes(this.modelBytes, this.info?.profile ? JSON.stringify(this.info.profile) : null, this.modelName); return; }
      this.status(`${this.modelName}: quantization failed`);
      this.showError(`Quantization failed: ${e.message}`, 'quantize');
    }
  }

  /** The automatic mixed-precision count (0–20; anything else counts as 0). */
  autoMixed() {
    const k = Math.trunc(Number(this.$('input[name=autoMixed]').value));
    return Number.isFinite(k) && k > 0 ? Math.min(k, 20) : 0;
  }

  /** The current quantization settings as the equivalent CLI command. */
  configCommand() {
    const method = this.$('select[name=method]').value;
    const parts = ['qplay quantize', JSON.stringify(this.modelName ?? 'model.onnx'), '--calib DIR', `--method ${method}`];
    if (!this.$('input[name=perChannel]').checked) parts.push('--per-tensor');
    if (this.keepFp32?.size) parts.push(`--keep-fp32 ${JSON.stringify([...this.keepFp32].join(','))}`);
    if (this.autoMixed()) parts.push(`--auto-mixed ${this.autoMixed()}`);
    parts.push('-o int8.onnx');
    return parts.join(' ');
  }

  renderReport(r) {
    const rep = r.report;
    const mb = (b) => (b / 1e6).toFixed(2);
    if (this.downloadUrl) URL.revokeObjectURL(this.downloadUrl);
    this.downloadUrl = URL.createObjectURL(new Blob([r.bytes], { type: 'application/octet-stream' }));
    const reportUrl = URL.createObjectURL(new Blob([JSON.stringify({ ...rep, quantize_seconds: r.seconds, userAgent: navigator.userAgent }, null, 2)], { type: 'application/json' }));
    const base = (this.modelName || 'model').replace(/\.onnx$/i, '').replace(/[^\w.-]+/g, '_');
    const worst = sortLayers(rep.layers, 'output').slice(0, 8);
    this.$('.qreport').hidden = false;
    this.$('.qreport-body').innerHTML = `
      <p>Size: FP32 ${mb(rep.fp32_bytes)} MB → INT8 ${mb(rep.int8_bytes)} MB (${(rep.int8_bytes / rep.fp32_bytes).toFixed(2)}×) ·
        ${rep.layers.length} layers int8, ${rep.kept_fp32.length} kept FP32 · ${rep.method}, ${rep.per_channel ? 'per-channel' : 'per-tensor'} weights,
        ${rep.activation_type} activations · ${rep.calibration_inputs} calibration images · ${r.seconds.toFixed(1)} s</p>
      <p>Output SQNR vs FP32 (calibration images): ${Object.entries(rep.output_sqnr_db).map(([k, v]) => `${esc(k)} ${v.toFixed(1)} dB`).join(' · ')}</p>
      ${rep.notes.map((n) => `<p class="note">${esc(n)}</p>`).join('')}
      ${rep.kept_fp32.length ? `<p>Kept FP32: ${rep.kept_fp32.map((n) => `<code>${esc(n)}</code>`).join(', ')}</p>` : ''}
      <table class="layers"><thead><tr><th>layer (worst output SQNR first)</th><th class="n">output SQNR dB</th><th class="n">weight SQNR dB</th><th class="n">scales</th><th>activation clip range</th><th class="n">clipped</th><th class="n">Δ</th><th class="n">Z</th><th></th></tr></thead><tbody>
      ${worst.map((l) => `<tr><td title="${esc(l.node)}">${esc(truncate(l.node, 40))}</td><td class="n">${db(l.output_sqnr_db)}</td><td class="n">${db(l.weight_sqnr_db)}</td><td class="n">${l.weight_scales}</td>
        <td>[${l.activation.clip[0].toFixed(3)}, ${l.activation.clip[1].toFixed(3)}]</td><td class="n">${fmtPct(l.activation.clipped_pct)}</td><td class="n">${l.activation.scale.toPrecision(4)}</td><td class="n">${l.activation.zero_point}</td>
        <td><button type="button" data-keep="${esc(l.node)}" title="keep this layer in FP32 and quantize again">Keep FP32</button></td></tr>`).join('')}
      </tbody></table>
      <div class="charts">
        <figure class="chart" data-chart="sqnr"><div class="chart-h"><b class="grow">Per-layer SQNR, worst first</b>
          <label>sort by <select name="metric" aria-label="SQNR metric">${Object.entries(METRICS).filter(([k]) => k !== 'sensitivity' || rep.layers.some((l) => typeof l.sensitivity_sqnr_db === 'number'))
            .map(([k, m]) => `<option value="${k}"${k === this.view.metric ? ' selected' : ''}>${esc(m.label)}</option>`).join('')}</select></label>
          ${exportButtons('per-layer SQNR')}</div>
          <div class="scroll sqnr" part="chart"></div>
          <p class="note">Click a bar (or focus it with Tab and press Enter; arrow keys move) to see that layer's histograms and per-channel scales below.</p></figure>
        <figure class="chart layer" data-chart="layer"><div class="layer-h"></div>
          <div class="hists">
            <figure class="chart" data-chart="weights"><div class="chart-h"><b class="grow">Weights</b>${exportButtons('weight histogram')}</div><div class="svg weights"></div></figure>
            <figure class="chart" data-chart="activations"><div class="chart-h"><b class="grow">Activations (calibration)</b>
              <label><input type="checkbox" name="logy"${this.view.logY ? ' checked' : ''}> log-y</label>${exportButtons('activation histogram')}</div><div class="svg activations"></div></figure>
          </div>
          <p class="formula">x̂ = (q − Z) · Δ, q = clamp(round(x / Δ) + Z, −128, 127): Δ (scale) and Z (zero-point) per output channel of the weights; Z = 0 (symmetric).</p>
          <div class="scroll channels"></div></figure>
        <div class="pairs">
          <figure class="chart" data-chart="size"><div class="chart-h"><b class="grow">Model size</b>${exportButtons('size')}</div><div class="svg size"></div></figure>
          <figure class="chart" data-chart="latency"><div class="chart-h"><b class="grow">Latency (this frame)</b>${exportButtons('latency')}</div><div class="svg latency"></div></figure>
        </div>
      </div>
      <p><button type="button" name="copy-config">Copy settings as a qplay command</button></p>
      <p><a class="dl" download="${esc(base)}_int8_qdq.onnx" href="${this.downloadUrl}">Download the INT8 model (.onnx)</a>
         <a class="dl" download="${esc(base)}_int8_report.json" href="${reportUrl}">Download the report (.json)</a></p>
      <p class="note">The INT8 pane runs the exported QDQ file after reloading it (what you download is what ran). Its convolutions
        run on qplay's int8 kernels (the QDQ pattern lowered to integer convolutions, exact int32 sums, SIMD128).</p>`;
    this.chartBase = base;
    if (!rep.layers.some((l) => l.node === this.view.selected)) this.view.selected = worst[0]?.node ?? null;
    if (this.view.metric === 'sensitivity' && !rep.layers.some((l) => typeof l.sensitivity_sqnr_db === 'number')) this.view.metric = 'output';
    this.renderSqnr();
    this.renderLayer();
    this.$('.svg.size').innerHTML = pairBars({ title: 'Model file size', fp32: rep.fp32_bytes / 1e6, int8: rep.int8_bytes / 1e6, unit: 'MB',
      note: `INT8 is ${(rep.int8_bytes / rep.fp32_bytes).toFixed(2)}× the FP32 file (int8 weights, int32 biases, Q/DQ nodes)` });
    this.renderLatency();
  }

  /** The SQNR bars, sorted worst first by the chosen metric. */
  renderSqnr(focus = false) {
    const rep = this.int8?.report;
    const box = this.$('.scroll.sqnr');
    if (!rep || !box) return;
    const top = box.scrollTop;
    box.innerHTML = sqnrBars(rep.layers, { metric: this.view.metric, selected: this.view.selected });
    box.scrollTop = top;
    if (focus) box.querySelector(`g.bar[data-node="${CSS.escape(this.view.selected)}"]`)?.focus();
  }

  selectLayer(node, focus = false) {
    this.view.selected = node;
    this.renderSqnr(focus);
    this.renderLayer();
  }

  /** The selected layer: weight and activation histograms, per-channel scales. */
  renderLayer() {
    const rep = this.int8?.report;
    const l = rep?.layers.find((x) => x.node === this.view.selected);
    if (!l) return;
    const a = l.activation;
    const amax = Math.max(Math.abs(l.weight_range[0]), Math.abs(l.weight_range[1]));
    this.$('.layer-h').innerHTML = `<span>Layer <code title="${esc(l.node)}">${esc(l.node)}</code> (${esc(l.op)})</span>
      <span>output SQNR <b>${db(l.output_sqnr_db)} dB</b> · weight SQNR ${db(l.weight_sqnr_db)} dB${typeof l.sensitivity_sqnr_db === 'number' ? ` · sensitivity ${db(l.sensitivity_sqnr_db)} dB` : ''}
        · activation <code>${esc(truncate(a.tensor, 40))}</code> Δ ${esc(fmt(a.scale, 4))}, Z ${a.zero_point}, ${fmtPct(a.clipped_pct)} clipped</span>
      <button type="button" data-keep="${esc(l.node)}" title="keep this layer in FP32 and quantize again">Keep this layer FP32 and re-run</button>`;
    this.$('.svg.weights').innerHTML = histogramChart(l.weight_histogram, {
      title: `weights: ${truncate(l.node, 46)}`, logY: this.view.logY,
      lines: [{ lo: -amax, hi: amax, color: '#0072B2', dash: '', chosen: true, short: '±max|w|',
        label: `±max|w| = ±${fmt(amax, 4)}: int8 range, symmetric, no clipping` }],
      note: l.weight_scales > 1 ? `per channel: ${l.weight_scales} channels, each its own ±max|w| (table below)` : 'per tensor: one scale',
    });
    this.$('.svg.activations').innerHTML = histogramChart(a.histogram, {
      title: `input: ${truncate(a.tensor, 46)}`, logY: this.view.logY, lines: methodLines(a),
      note: `${rep.calibration_inputs} calibration images · observed [${fmt(a.observed[0], 4)}, ${fmt(a.observed[1], 4)}]`,
    });
    const scales = l.channel_scales ?? [];
    this.$('.scroll.channels').innerHTML = `<table class="channels"><thead><tr><th class="n">channel</th><th class="n">Δ (scale)</th><th class="n">Z (zero-point)</th><th>covers [−128·Δ, 127·Δ]</th></tr></thead><tbody>
      ${scales.map((sc, c) => `<tr><td class="n">${scales.length > 1 ? c : 'all'}</td><td class="n">${esc(fmt(sc, 5))}</td><td class="n">0</td><td>[${esc(fmt(-128 * sc, 4))}, ${esc(fmt(127 * sc, 4))}]</td></tr>`).join('')}
      </tbody></table>`;
  }

  /** FP32 vs INT8 inference time on the current frame. */
  renderLatency() {
    const box = this.$('.svg.latency');
    if (!box || !this.int8) return;
    const r = this.result;
    box.innerHTML = pairBars({ title: 'Inference time, this frame (wasm, 1 thread)', fp32: r?.int8 ? r.timings.inference : undefined,
      int8: r?.int8?.timings.inference, unit: 'ms', format: (v) => v.toFixed(1),
      note: 'one frame each; INT8 on the int8 kernels' });
  }

  exportChart(figure, kind) {
    const svg = figure?.querySelector('svg');
    if (!svg) return;
    const name = `${this.chartBase ?? 'model'}_${figure.dataset.chart}${figure.dataset.chart === 'sqnr' ? `_${this.view.metric}` : ''}`;
    exportChart(svg, name, kind).catch((e) => this.showError(`Export failed: ${e.message}`, 'export'));
  }

  draw(dets, sel = 'canvas.fp32', color = BOX, dash = [], image = this.image, clear = true) {
    const c = this.$(sel);
    const { bitmap } = image;
    const ctx = c.getContext('2d');
    if (clear) {
      if (c.width !== bitmap.width || c.height !== bitmap.height) { c.width = bitmap.width; c.height = bitmap.height; }
      ctx.drawImage(bitmap, 0, 0);
    }
    if (!dets) return;
    const lw = Math.max(2, Math.round(Math.min(c.width, c.height) / 200));
    ctx.font = `${Math.max(12, lw * 6)}px system-ui, sans-serif`;
    for (const d of dets) {
      const [x1, y1, x2, y2] = d.bbox;
      ctx.strokeStyle = color; ctx.lineWidth = lw; ctx.setLineDash(dash.map((v) => v * lw / 2));
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      ctx.setLineDash([]);
      const text = `${d.label} ${(d.score * 100).toFixed(0)}%`;
      const tw = ctx.measureText(text).width + 8, th = lw * 6 + 6;
      // Overlaid (INT8 over FP32): the label goes under the box, so both labels stay readable.
      const ty = !clear ? Math.min(y2, c.height - th) : y1 - th >= 0 ? y1 - th : y1;
      ctx.fillStyle = color; ctx.fillRect(x1 - lw / 2, ty, tw, th);
      ctx.fillStyle = '#fff'; ctx.fillText(text, x1 + 4 - lw / 2, ty + th - 5);
      ctx.fillStyle = '#E69F00';
      for (const [kx, ky] of d.keypoints) { ctx.beginPath(); ctx.arc(kx, ky, lw, 0, 2 * Math.PI); ctx.fill(); }
    }
  }

  renderInfo(info, error) {
    const el = this.$('.summary');
    if (!info) { el.innerHTML = error ? `<p class="bad">${esc(error)}</p>` : ''; return; }
    const s = info.summary;
    const dims = (d) => `[${d.map((x) => (x === null ? '?' : x)).join(', ')}]`;
    const io = [...s.inputs.map((i) => ['input', i]), ...s.outputs.map((o) => ['output', o])]
      .map(([k, v]) => `<tr><td>${k}</td><td>${esc(v.name)}</td><td>${v.dtype}</td><td>${dims(v.shape)}</td></tr>`).join('');
    const unsupported = new Set(s.unsupported.map(([op]) => op));
    const ops = Object.entries(s.ops).map(([op, n]) => `<tr><td class="${unsupported.has(op) ? 'bad' : ''}">${esc(op)}${unsupported.has(op) ? ' (unsupported)' : ''}</td><td class="n">${n}</td></tr>`).join('');
    el.innerHTML = `
      <p>${esc(s.producer || 'unknown producer')} · opset ${s.opset} · ${s.nodes} nodes · ${s.parameters.toLocaleString('en')} parameters (${(s.parameter_bytes / 1e6).toFixed(2)} MB)</p>
      ${s.unsupported.length ? `<p class="bad">Unsupported: ${s.unsupported.map(([op, node]) => `${esc(op)} (node ${esc(node)})`).join(', ')}</p>` : '<p>Every op is supported.</p>'}
      <table><thead><tr><th></th><th>name</th><th>type</th><th>shape</th></tr></thead><tbody>${io}</tbody></table>
      <table class="ops"><thead><tr><th>op</th><th class="n">nodes</th></tr></thead><tbody>${ops}</tbody></table>`;
    const assumed = this.$('ul.assumed');
    if (info.profile) {
      this.$('textarea[name=profile-json]').value = JSON.stringify(info.profile, null, 2);
      assumed.innerHTML = info.assumed?.length
        ? `<li><b>No profile was given; qplay assumed:</b></li>${info.assumed.map((a) => `<li>${esc(a)}</li>`).join('')}`
        : `<li>Decoder <b>${esc(info.profile.decoder.type)}</b>, input ${info.profile.size.join('×')}, from the profile file.</li>`;
      if (info.assumed?.length) this.$('details.profile-edit').open = true;
    }
  }
}

/** Fetches a URL with byte progress; errors name the HTTP status. */
async function download(url, onprogress) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`HTTP ${r.status} for ${url}`);
  const total = Number(r.headers.get('content-length')) || 0;
  if (!r.body) return r.arrayBuffer();
  const reader = r.body.getReader();
  const chunks = [];
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    got += value.length;
    onprogress(got, total);
  }
  const out = new Uint8Array(got);
  let o = 0;
  for (const c of chunks) { out.set(c, o); o += c.length; }
  return out.buffer;
}

/** Per-frame agreement of INT8 with FP32: greedy matching at IoU ≥ 0.5, same class. */
function agreement(fp, q) {
  const iou = (a, b) => {
    const iw = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0])), ih = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
    const i = iw * ih;
    return i / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - i);
  };
  const used = new Set();
  const matches = [];
  for (const f of fp) {
    let best = -1, bi = 0.5;
    q.forEach((d, j) => { const v = iou(f.bbox, d.bbox); if (!used.has(j) && d.class === f.class && v >= bi) { bi = v; best = j; } });
    if (best >= 0) { used.add(best); matches.push([bi, q[best].score - f.score]); }
  }
  const missed = fp.length - matches.length, extra = q.length - matches.length;
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  return `Agreement: ${matches.length} of ${fp.length} FP32 boxes matched by INT8` +
    (matches.length ? ` (mean IoU ${mean(matches.map((m) => m[0])).toFixed(3)}, mean score change ${mean(matches.map((m) => m[1])) >= 0 ? '+' : ''}${mean(matches.map((m) => m[1])).toFixed(3)})` : '') +
    ` · ${missed} missed · ${extra} extra`;
}

function exportButtons(what) {
  return `<span><button type="button" data-export="png" aria-label="download the ${what} chart as PNG">PNG</button>
    <button type="button" data-export="svg" aria-label="download the ${what} chart as SVG">SVG</button></span>`;
}

const db = (v) => (typeof v === 'number' ? (Number.isFinite(v) ? v.toFixed(1) : '∞') : '–');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Resolves after the next paint (a timer where the page is hidden and animation frames stop). */
const nextPaint = () => new Promise((r) => { const t = setTimeout(r, 100); requestAnimationFrame(() => { clearTimeout(t); r(); }); });

function hasWebGpu() { return typeof navigator !== 'undefined' && 'gpu' in navigator; }

function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));
}

if (!customElements.get('qplay-detector')) customElements.define('qplay-detector', QplayDetector);
