// <qplay-detector>: run a real ONNX detector on an image, in a Web Worker.
//
// Attributes: model (URL of an .onnx, or `person` / `face` for a built-in one; default the built-in
// person detector), profile (URL of a profile JSON for a model URL; inferred from the outputs when
// absent), image (URL), score (threshold), backend (`cpu`, the default, or `webgpu`: inference on the
// GPU through WebGPU, falling back to the CPU with a note saying why when it cannot), threads (the CPU's threads: detector/threads.js), hide (control names to hide, separated by spaces or
// commas: model upload image image-upload score quantize method perchannel profile summary camera qat threads), loading
// ("lazy", the default: the worker starts and the model downloads when the element comes within
// 200px of the viewport, see lazy.js; "eager": at once).
// `ready`: a promise, resolved once the element has started and its first model and image are
// loaded (or failed to); `start()` starts it now.
// Events (bubbling, composed): qplay-progress {stage}, qplay-ready {info, threads, threadsNote}, qplay-frame
// {detections, timings, int8, live, memory, gpuBuffers, backend, recovered}, qplay-quantized {report, seconds}, qplay-error
// {code, message}, qplay-change {settings} after a user changes a setting. Property `settings`
// (get/set): {model, image, score, backend, threads, method, perChannel, weightBits, rounding, keepFp32}; `dispose()` stops the camera
// and the worker. A user can drop or choose an .onnx, a profile .json, or an image anywhere on the
// component; the camera (www/camera.js) starts on a click only, and a video file plays as input.
//
// What it shows is a function of one state (detector/state.js): the active model (a failed load
// never replaces it), the active image or frame, and the last result with the model and image it
// was computed for. Its parts: detector/template.js (markup, styles), model-source.js (built-in
// models, downloads with progress and Cancel), quantize.js (the Quantize box, the command),
// report.js (the report, charts, downloads), live.js (camera and video file), backend.js (CPU or
// WebGPU), summary.js (the model summary and profile).
import { Engine, imageData } from '../engine.js';
import { DETECTOR_METHODS } from '../hash.js';
import { LiveStats, VideoSource } from '../camera.js';
import { deferred, startWhenNear } from './lazy.js';
import { BASE, BUILTIN, SAMPLES, download, progressText, shortName } from './detector/model-source.js';
import { BOX, INT8, TEMPLATE } from './detector/template.js';
import { display } from './detector/state.js';
import { quantizeMethods } from './detector/quantize.js';
import { agreement, agreementStats, reportMethods } from './detector/report.js';
import { liveMethods } from './detector/live.js';
import { backendMethods, timingsText } from './detector/backend.js';
import { infoMethods, modelTag, paneName, summaryHtml } from './detector/summary.js';
import { qatMethods } from './detector/qat.js';
import { esc, drawKeypoints, scoreText } from './detector/util.js';
import { fileMethods } from './detector/files.js';

export { SAMPLES };
export const BUILTIN_MODELS = Object.keys(BUILTIN);
// The picker's methods (the URL codec's list, checked against the core).
export const METHODS = DETECTOR_METHODS;
/** Controls the `hide` attribute can hide: name → what is hidden (in the shadow root). */
export const HIDEABLE = {
  model: 'label:has(> [name=builtin])', upload: 'label:has(> [name=model]), label:has(> [name=profile])',
  image: 'label:has(> [name=sample])', 'image-upload': 'label:has(> [name=image])', score: 'label:has(> [name=score])',
  quantize: 'fieldset.quant', method: 'label:has(> [name=method])', perchannel: 'label:has(> [name=perChannel])', weightbits: 'label:has(> [name=weightBits])',
  profile: 'details.profile-edit', summary: 'details.model-info', camera: '.live-controls', qat: 'fieldset.qat', threads: 'label:has(> [name=threads])',
};

export class QplayDetector extends HTMLElement {
  static observedAttributes = ['score', 'hide', 'backend', 'threads'];

  constructor() {
    super();
    this.attachShadow({ mode: 'open' }).appendChild(TEMPLATE.content.cloneNode(true));
    this.engine = null;
    this.image = null;
    this.info = null;
    this.result = null;
    this.score = 0.5;
    this.modelBytes = null;
    this.modelId = 0; // bumped each time a model loads (results carry the id they were computed with)
    this.imageSeq = 0; // the same for images and video frames
    this.imageToken = 0; // the latest image asked for (an earlier one that decodes later is dropped)
    this.backendGen = 0; // bumped by each switch of backend and each new worker (frames carry the one they were asked for in)
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
    this.engine = new Engine({ threads: this.threadsWanted() });
    this.engine.onevent = (m) => this.onQatEvent(m);
    // Asked for before the model loads, so the model is placed on the GPU as it loads.
    if (this.backend === 'webgpu') this.setBackend('webgpu');
    const model = this.getAttribute('model');
    (model && !BUILTIN[model] ? this.loadUrl(model, this.getAttribute('profile'), null, model) : this.loadBuiltin(BUILTIN[model] ? model : 'person'))
      .then(() => this.setImage(this.getAttribute('image') ?? `${BASE}samples/person.jpg`))
      .then(() => { whenReady.done = true; whenReady.resolve(); });
    return this.ready;
  }

  get $() { return (sel) => this.shadowRoot.querySelector(sel); }

  attributeChangedCallback(name, _o, v) {
    if (name === 'score' && Number.isFinite(Number(v))) this.score = Number(v); else if (name === 'threads') this.setThreads(v);
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
      model: this.source ?? this.pendingSource ?? 'person', image: sample === 'custom' ? this.imageSource ?? 'uploaded' : sample, score: this.score, backend: this.backend ?? 'cpu', threads: this.threadsWanted(),
      method: $('select[name=method]').value, perChannel: $('input[name=perChannel]').checked, weightBits: this.weightBits(), rounding: $('select[name=rounding]').value, keepFp32: [...(this.keepFp32 ?? [])],
      layerBits: Object.fromEntries(this.layerBits ?? []), autoMixed: this.autoMixed(), mixedTo: $('select[name=mixedTo]').value, overlay: $('input[name=overlay]').checked, logY: !!this.view.logY,
    };
  }

  /** Applies the given settings (any subset). A new model or image loads; the quantize settings take effect at the next Quantize. */
  set settings(v) {
    const $ = this.$;
    if (v.method !== undefined && METHODS.includes(v.method)) $('select[name=method]').value = v.method;
    if (v.perChannel !== undefined) $('input[name=perChannel]').checked = !!v.perChannel;
    if (v.weightBits !== undefined && [2, 3, 4, 5, 6, 8].includes(Number(v.weightBits))) $('select[name=weightBits]').value = String(Number(v.weightBits));
    if (['auto', 'gptq', 'nearest'].includes(v.rounding)) $('select[name=rounding]').value = v.rounding;
    if (v.keepFp32 !== undefined) { this.keepFp32 = new Set(v.keepFp32); this.showKeep(); }
    if (Number.isInteger(v.autoMixed) && v.autoMixed >= 0 && v.autoMixed <= 20) $('input[name=autoMixed]').value = String(v.autoMixed);
    if (['fp32', '16', 'w8'].includes(v.mixedTo)) $('select[name=mixedTo]').value = v.mixedTo;
    if (v.layerBits !== undefined) { this.layerBits = new Map(Object.entries(v.layerBits ?? {}).filter(([, b]) => Number.isInteger(b) && b >= 2 && b <= 8)); this.showKeep(); }
    if (v.overlay !== undefined) this.setOverlay(!!v.overlay); if (v.threads !== undefined) this.setThreads(v.threads); // threads: a new worker
    if (v.logY !== undefined) { this.view.logY = !!v.logY; const box = this.$('.qreport input[name=logy]'); if (box) { box.checked = this.view.logY; this.renderLayer(); } }
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

  connectedCallback() {
    if (!this.engine) this.stopWatching = startWhenNear(this, () => this.start(), this.getAttribute('loading') === 'eager');
    this.watchVisibility();
    if (this.wired) return;
    this.wired = true;
    // A reader who reaches for it before it is near the viewport (say, with the keyboard) starts it.
    for (const type of ['focusin', 'pointerdown', 'dragenter']) this.addEventListener(type, () => this.start());
    const $ = this.$;
    $('input[name=score]').value = String(this.score);
    $('output[name=scoreOut]').textContent = this.score.toFixed(2);
    $('select[name=builtin]').addEventListener('change', (e) => { this.loadBuiltin(e.target.value); this.changed(); });
    $('input[name=model]').addEventListener('change', async (e) => { if (e.target.files.length) { await this.onDrop([...e.target.files]); this.changed(); } });
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
    $('.alternatives').addEventListener('click', (e) => { const b = e.target.closest('button[data-alt]'); if (b) this.useAlternative(Number(b.dataset.alt)); });
    $('button[name=quantize]').addEventListener('click', () => this.quantize());
    $('input[name=own-int8]').addEventListener('change', (e) => this.loadOwnInt8(e.target.files[0]));
    $('button[name=qcancel]').addEventListener('click', () => this.cancel());
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
    $('button[name=bcancel]').addEventListener('click', () => this.cancelSwitch());
    $('input[name=overlay]').addEventListener('change', (e) => { this.setOverlay(e.target.checked); this.changed(); });
    $('button[name=fix-lost]').addEventListener('click', () => this.fixLost());
    $('button[name=clear-mixed]').addEventListener('click', () => this.clearMixed());
    this.wireQat(); this.wireThreads();
    this.video = new VideoSource($('video.source'));
    this.stats = new LiveStats();
    this.calib = [];
    this.showCalibration();
    this.showBackend();
    $('.qreport').addEventListener('click', (e) => {
      const keep = e.target.closest('button[data-keep], button[data-bits]');
      if (keep) { this.rerunWith(keep.dataset.keep ?? keep.dataset.node, keep.dataset.keep ? 'fp32' : Number(keep.dataset.bits)); return; }
      if (e.target.closest('button[name=copy-config]')) this.copyCommand();
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
      if (e.target.name === 'logy') { this.view.logY = e.target.checked; this.renderLayer(); this.changed(); }
    });
    this.addEventListener('dragover', (e) => { e.preventDefault(); this.dataset.dragging = ''; });
    this.addEventListener('dragleave', () => delete this.dataset.dragging);
    this.addEventListener('drop', (e) => { e.preventDefault(); delete this.dataset.dragging; this.onDrop([...e.dataTransfer.files]); });
    for (const n of ['method', 'perChannel', 'weightBits', 'rounding', 'use-samples', 'autoMixed', 'mixedTo']) $(`[name=${n}]`).addEventListener('change', () => this.showCommand());
    for (const n of ['weightBits', 'rounding', 'mixedTo']) $(`select[name=${n}]`).addEventListener('change', () => this.changed());
    $('input[name=autoMixed]').addEventListener('change', () => this.changed());
    this.showKeep();
    this.render();
  }

  disconnectedCallback() { this.stopWatching?.(); this.stopLive(); this.unwatchVisibility(); this.engine?.worker.terminate(); this.engine = null; }

  setOverlay(on) {
    this.$('input[name=overlay]').checked = on;
    if (on) this.dataset.overlay = ''; else delete this.dataset.overlay;
    this.render();
  }

  /** Copies the `qplay quantize` command and says so beside the button. */
  async copyCommand() {
    const cmd = this.configCommand();
    const said = this.$('.qreport .copied');
    try { await navigator.clipboard.writeText(cmd); if (said) said.textContent = 'Copied:'; } catch { if (said) said.textContent = 'Select and copy:'; }
  }

  /** Releases the worker and the camera; the element can be connected again later. */
  dispose() { this.disconnectedCallback(); }

  // Live input (camera, video file): detector/live.js. Quantize: detector/quantize.js. Report: detector/report.js.

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
    this.showCommand();
  }

  /** The Model box's status line; `busy` shows the spinner and Cancel (and fires qplay-progress). */
  status(text, busy = false) {
    const s = this.$('.status');
    s.querySelector('.stage-text').textContent = text;
    if (busy) s.dataset.busy = ''; else delete s.dataset.busy;
    this.$('button[name=cancel]').hidden = !busy;
    this.$('.dl-bar').hidden = true; // downloadProgress shows it
    if (busy) this.emit('qplay-progress', { stage: text });
  }

  /** A download's byte progress in the Model box: a bar with the total and the percentage. */
  downloadProgress(name, got, total) {
    const bar = this.$('.dl-bar');
    bar.hidden = false;
    if (total) { bar.max = total; bar.value = got; } else bar.removeAttribute('value');
    this.status(`downloading ${name}: ${progressText(got, total)}`, true);
    this.$('.dl-bar').hidden = false;
  }

  /** The red error line (`message` null hides it); `details` (a DOM node) goes under the message. */
  showError(message, code = 'error', details = null) {
    const e = this.$('.error');
    e.hidden = !message;
    e.replaceChildren(message ?? '');
    if (details) e.append(details);
    e.dataset.code = message ? code : '';
    this.errorCode = message ? code : null;
    if (message) this.emit('qplay-error', { code, message });
  }

  /** Hides the error line, or only an error with one of `codes` (an image error goes when an image loads; a model's stays). */
  clearError(codes = null) {
    if (!codes || codes.includes(this.errorCode)) this.showError(null);
  }

  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { bubbles: true, composed: true, detail })); }

  async loadBuiltin(key) {
    const b = BUILTIN[key];
    this.$('select[name=builtin]').value = key;
    // A built-in model replaces the file picked before: the file inputs no longer name it.
    this.$('input[name=model]').value = '';
    this.$('input[name=profile]').value = '';
    await this.loadUrl(b.model, b.profile, b.label, key, b.path);
  }

  /** Downloads a model (and its profile) and loads it; Cancel aborts the download. `source` is what
   * `settings.model` says once it is in use; `path` the file a `qplay` command names. */
  async loadUrl(model, profileUrl, label, source = model, path = null) {
    this.abortDownload?.abort();
    const ctl = new AbortController();
    this.abortDownload = ctl;
    if (!this.info) this.pendingSource = source; // what settings.model says until a model is in use
    const name = label ?? model.split('/').pop();
    this.clearError();
    this.loading = shortName(name);
    try {
      const got = await download(model, { signal: ctl.signal, onprogress: (n, total) => this.downloadProgress(name, n, total) });
      got.bytes = await this.withExternalData(got.bytes, model, source, ctl.signal);
      const profile = profileUrl ? new TextDecoder().decode((await download(profileUrl, { signal: ctl.signal })).bytes) : null;
      if (this.abortDownload === ctl) this.abortDownload = null;
      await this.loadBytes(got.bytes, profile, name, {
        source, path: path ?? new URL(model, document.baseURI).pathname.split('/').pop(), url: new URL(model, document.baseURI).href,
        how: `${(got.bytes.byteLength / 1e6).toFixed(2)} MB ${got.cached ? 'from the browser cache' : 'downloaded'}`,
      });
    } catch (e) {
      if (this.abortDownload === ctl) this.abortDownload = null;
      this.loading = null;
      if (e.name === 'AbortError' || e.cancelled) return; // cancel() said so
      this.loadFailed(name, e.message, 'model-load');
    }
  }

  async loadProfileFile(file) {
    const text = await file.text();
    if (!this.modelBytes) { this.showError('Load a model first, then its profile.', 'no-model'); return; }
    await this.loadBytes(this.modelBytes, text, this.modelName, { ...this.modelMeta, profileFile: file.name });
  }

  async applyProfileText() {
    if (!this.modelBytes) return;
    await this.loadBytes(this.modelBytes, this.$('textarea[name=profile-json]').value, this.modelName, this.modelMeta);
  }

  /** Loads a model into the worker. Only a model that loads becomes the active one; until then
   * (and when it fails) the model in use stays, with its result, summary and picker entry. */
  async loadBytes(bytes, profile, name, meta = {}) {
    this.clearError();
    const t0 = performance.now();
    this.loading = shortName(name);
    let info;
    try {
      this.status(`loading ${name}…`, true);
      info = await this.engine.load(bytes.slice(0), profile, (stage) => this.status(`${name}: ${stage}…`, true));
    } catch (e) {
      if (e.cancelled) return; // cancel() said so
      // The core's error kind (ModelError::code), carried from the worker: never the message text.
      // An op type qplay lacks and a node asking for what qplay does not do are both a model it cannot run.
      const code = e.code === 'unsupported-op' || e.code === 'unsupported-feature' ? 'unsupported-op' : 'model-load';
      this.loadFailed(name, e.message, code, e.summary);
      return;
    } finally { this.loading = null; }
    // Another model drops the kept layers (not the first model: a restored link may have set them).
    if (this.modelName !== undefined && name !== this.modelName) { this.keepFp32 = new Set(); this.layerBits = new Map(); this.showKeep(); }
    this.modelBytes = bytes;
    this.pendingModel = null; // a model that waited for its weights file is no longer awaited
    this.modelProfile = profile;
    this.modelName = name;
    this.modelMeta = meta;
    this.source = meta.source ?? this.source;
    this.modelPath = meta.path ?? name;
    this.profileFile = meta.profileFile ?? null;
    this.modelUrl = meta.url ?? null;
    this.info = info;
    this.modelId += 1;
    this.resetInt8();
    this.$('.qreport-body').innerHTML = ''; // the previous model's report, hidden, goes too
    this.$('.qresult').textContent = ''; // and the line about quantizing it
    this.placement = null;
    this.showModelChoice();
    if (info.backend) { this.backendInfo = info.backend; this.showBackend(); }
    const loadedMs = Math.round(performance.now() - t0);
    // The worker's thresholds first: from "ready" on, nothing awaits before the run starts (no
    // window in which the previous model's or worker's result shows as current).
    await this.engine.setThresholds(this.score, info.profile.iou_threshold);
    this.status(`${name}: ready (${meta.how ?? `${(bytes.byteLength / 1e6).toFixed(2)} MB`}, loaded in ${loadedMs} ms)`);
    this.renderInfo(info);
    this.showCommand();
    this.emit('qplay-ready', { info, ...this.threadsDetail(info) });
    this.render();
    if (this.image) await this.run();
  }

  /** A model that did not load: says why and which model is still in use, and puts the picker back on it. */
  loadFailed(name, message, code, summary = null) {
    const still = this.info ? `still using: ${shortName(this.modelName)}` : 'no model is loaded';
    this.showModelChoice();
    this.status(this.info ? `${this.modelName}: ready (${name} could not be loaded)` : `not loaded: ${name} could not be loaded`);
    let details = null;
    if (summary) {
      details = document.createElement('details');
      details.innerHTML = `<summary>What qplay read from ${esc(name)}</summary>${summaryHtml(summary)}`;
    }
    this.showError(`Could not load ${name}: ${message} — ${still}.`, code, details);
    this.render();
  }

  /** The model picker and file inputs show the model in use. */
  showModelChoice() {
    const pick = this.$('select[name=builtin]');
    pick.value = BUILTIN[this.source] ? this.source : this.info ? 'custom' : pick.value;
    if (this.source !== 'uploaded') this.$('input[name=model]').value = '';
  }

  async setImage(src) {
    if (this.video?.live) this.stopLive();
    const token = ++this.imageToken;
    // The picker shows the sample photo when the image is one of them (an `image` attribute may name one).
    const sample = typeof src === 'string' ? SAMPLES.find((n) => new URL(src, document.baseURI).href === `${BASE}samples/${n}`) : null;
    let decoded;
    try { decoded = await imageData(src); } catch (e) {
      if (token !== this.imageToken) return;
      // The image in use stays, and the picker says so.
      this.$('select[name=sample]').value = this.image?.sample ?? 'custom';
      this.showError(`${e.message} — the image shown is still ${this.image?.name ?? 'none'}.`, 'bad-image');
      return;
    }
    if (token !== this.imageToken) return; // another image was chosen meanwhile
    this.$('select[name=sample]').value = sample ?? 'custom';
    // A sample photo replaces the file chosen before: the file input no longer names it.
    if (sample) this.$('input[name=image]').value = '';
    this.imageSource = typeof src === 'string' ? src : 'uploaded';
    const name = sample ?? (typeof src === 'string' ? src.split('/').pop() : src.name ?? 'your image');
    this.image = { ...decoded, id: ++this.imageSeq, name, sample };
    this.clearError(['bad-image']);
    this.render();
    if (this.info) await this.run();
  }

  async applyThresholds() {
    if (!this.info) return;
    await this.engine.setThresholds(this.score, this.info.profile.iou_threshold);
    await this.run();
  }

  /** Detects on the current image and shows the result; resolves to it (null when nothing ran, or
   * when the model or image changed meanwhile: such a result is never shown). */
  async run({ live = false } = {}) {
    if (!this.image || !this.info) { this.render(); return null; }
    if (this.running) { if (!live) this.rerun = true; return null; }
    this.running = true;
    this.failed = null;
    const score = this.score;
    const image = this.image;
    const modelId = this.modelId;
    const int8Seq = this.int8?.seq ?? null; // the INT8 model the worker holds when it gets to this request
    const gen = this.runGen = this.backendGen; // the backend generation (a switch asked for earlier has reached the worker first)
    // A still image shows "Detecting…" in place of a result that is not its own (a live frame keeps the last one until the next).
    if (!live) this.render();
    try {
      const r = await this.engine.detect(image.data);
      this.frameBackend(gen, r); // ends a switch of backend this frame came after; a recovered device is shown
      // The first photo settled the pixel scaling of an inferred profile: show the new assumptions.
      if (r.probe && modelId === this.modelId) { Object.assign(this.info, { profile: r.probe.info.profile, assumed: r.probe.info.assumed }); this.renderInfo(this.info); }
      if (modelId !== this.modelId || image !== this.image) return null;
      // The worker says which INT8 model ran (fine-tuning replaces it between requests).
      Object.assign(r, { score, model: this.modelName, modelId, imageId: image.id, image: image.name, int8Seq: r.int8Version ?? int8Seq, ranOn: r.backend?.backend ?? r.on });
      this.result = r;
      this.render();
      if (!live && this.info.alternatives?.length && this.previewed !== modelId) queueMicrotask(() => this.previewAlternatives());
      this.emit('qplay-frame', { detections: r.detections, timings: r.timings, int8: r.int8, live, memory: r.memory, gpuBuffers: r.gpuBuffers, backend: r.on, recovered: r.recovered });
      return r;
    } catch (e) {
      if (!e.cancelled) {
        this.frameBackend(gen, null); this.showError(`Detection failed: ${e.message}`, 'inference');
        this.failed = { modelId, image }; this.render(); // the pending line says it failed, not "Detecting…"
      }
      return null;
    } finally {
      this.running = false;
      if (this.rerun) { this.rerun = false; this.run(); }
    }
  }

  /** Puts the state on screen (detector/state.js decides what): the image, the boxes and lists of the
   * result computed for this model and image (FP32 solid blue, INT8 dashed vermillion, in its own
   * pane or overlaid), or the image alone with a line saying what is pending. */
  render() {
    const v = display({
      model: this.info ? { id: this.modelId, name: shortName(this.modelName), tag: modelTag(this.info) } : null, image: this.image,
      result: this.result, int8: this.int8 ? { modelId: this.int8.modelId, seq: this.int8.seq } : null, loading: this.loading,
      backend: this.displayBackend(), failed: this.failed?.modelId === this.modelId && this.failed.image === this.image,
    });
    const image = this.image;
    const overlay = this.$('input[name=overlay]').checked && v.int8;
    const fp32 = this.$('canvas.fp32');
    fp32.setAttribute('aria-label', v.caption);
    // The first pane shows the model as loaded: FP32, a full-integer file's own integer arithmetic, or an ONNX INT8 export's.
    this.$('.fp32-h').firstChild.textContent = `${paneName(modelTag(this.info))} `;
    fp32.dataset.shows = v.fp32 ? `${v.fp32.modelId}:${v.fp32.imageId}` : 'image';
    if (image) {
      this.draw(v.fp32?.detections ?? null, 'canvas.fp32', BOX, [], image);
      if (overlay) this.draw(v.int8.detections, 'canvas.fp32', INT8, [8, 5], image, false);
      if (this.int8 && !overlay) this.draw(v.int8?.detections ?? null, 'canvas.int8', INT8, [8, 5], image);
    }
    this.showResult(v.fp32, v.pending, '.timings', 'ol.dets', '.fp32-score-note');
    this.showResult(v.int8, this.int8 ? v.int8Pending : null, '.int8-timings', 'ol.int8-dets', '.int8-score-note');
    this.$('.agreement').textContent = v.int8 ? agreement(v.fp32.detections, v.int8.detections) : '';
    const stats = v.int8 ? agreementStats(v.fp32.detections, v.int8.detections) : null;
    this.showLost(stats);
    if (v.int8) {
      this.renderLatency();
      this.showBeforeAfter(stats);
    }
  }

  /** One pane's timings, detection list and the core's note on odd scores (above 1), or its pending line. */
  showResult(r, pending, timingsSel, listSel, noteSel) {
    const [timings, note] = [this.$(timingsSel), this.$(noteSel)];
    timings.classList.toggle('pending', !r);
    note.hidden = !r?.scoreWarning;
    note.textContent = r?.scoreWarning ? `Warning: ${r.scoreWarning}.` : '';
    if (!r) { timings.textContent = pending ?? ''; this.$(listSel).innerHTML = ''; return; }
    timings.textContent = timingsText(r);
    this.$(listSel).innerHTML = r.detections.map((d) => `<li data-label="${esc(d.label)}" data-score="${d.score}">${esc(d.label)} ${scoreText(d.score, 1)} — [${d.bbox.map((v) => v.toFixed(0)).join(', ')}]</li>`).join('');
  }

  resetInt8() {
    this.int8 = null;
    this.resetQat();
    delete this.dataset.int8;
    this.$('.int8-pane').hidden = true;
    this.$('.qreport').hidden = true;
    this.$('.agreement').textContent = '';
    if (this.downloadUrl) URL.revokeObjectURL(this.downloadUrl);
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
      const text = `${d.label} ${scoreText(d.score)}`;
      const tw = ctx.measureText(text).width + 8, th = lw * 6 + 6;
      // Overlaid (INT8 over FP32): the label goes under the box, so both labels stay readable.
      const ty = !clear ? Math.min(y2, c.height - th) : y1 - th >= 0 ? y1 - th : y1;
      ctx.fillStyle = color; ctx.fillRect(x1 - lw / 2, ty, tw, th);
      ctx.fillStyle = '#fff'; ctx.fillText(text, x1 + 4 - lw / 2, ty + th - 5);
      drawKeypoints(ctx, d, lw);
    }
  }
}

Object.assign(QplayDetector.prototype, fileMethods, liveMethods, quantizeMethods, qatMethods, reportMethods, backendMethods, infoMethods);

if (!customElements.get('qplay-detector')) customElements.define('qplay-detector', QplayDetector);
