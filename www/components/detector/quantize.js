// The detector's Quantize box: one run at a time, its stage, progress and Cancel beside the
// button that started it (the button disabled meanwhile), what happened said there when it ends
// (done, cancelled, failed), and the settings as a runnable `qplay quantize` command.
import { agreementStats } from './report.js';
import { imageData } from '../../engine.js';
import { BASE, SAMPLES, fileStem, shortName } from './model-source.js';

/** The CLI's defaults (README, "The CLI"): options equal to them are left out of the command. */
export const CLI_DEFAULTS = { method: 'auto', perChannel: true };

/** A word for a POSIX shell: as it is when it needs no quoting, else in single quotes. */
export function shellWord(s) {
  const t = String(s);
  return /^[\w@%+=:,./-]+$/.test(t) ? t : `'${t.replace(/'/g, `'\\''`)}'`;
}

/** What automatic mixed precision (the "most sensitive layers" select) makes of its layers, as the page says it. */
const MIXED_LABEL = { fp32: 'FP32', 16: 'at 16-bit activations', w8: 'at 8-bit weights' };

/**
 * The `qplay quantize` command for these settings: `model` (a path: the built-in model's file in
 * the repository, or the user's file name), `calib` (a folder), `profile` (a profile file, or
 * null when the CLI finds MODEL.json beside the model or infers it), every option that differs
 * from the CLI's default, and `-o` the file the page's download is called.
 */
export function quantizeCommand({ model, calib, profile = null, method, perChannel, keepFp32 = [], layerBits = [], autoMixed = 0, mixedTo = 'fp32', weightBits = 8, rounding = 'auto' }) {
  const parts = ['qplay', 'quantize', shellWord(model), '--calib', shellWord(calib)];
  if (method && method !== CLI_DEFAULTS.method) parts.push('--method', method);
  if (!perChannel) parts.push('--per-tensor');
  if (weightBits !== 8) parts.push('--weight-bits', String(weightBits));
  parts.push(...roundingFlag(rounding, weightBits));
  parts.push(...mixedFlags({ keepFp32, layerBits, autoMixed, mixedTo }));
  if (profile) parts.push('--profile', shellWord(profile));
  parts.push('-o', shellWord(`${fileStem(model)}_int8_qdq.onnx`));
  return parts.join(' ');
}

/** The mixed-precision flags `qplay quantize` and `qplay qat` share: layers kept FP32, layers' own weight widths
 * ([[layer, bits]]), and the automatic choice of the most sensitive layers and what they become. */
export function mixedFlags({ keepFp32 = [], layerBits = [], autoMixed = 0, mixedTo = 'fp32' }) {
  const parts = [];
  if (keepFp32.length) parts.push('--keep-fp32', shellWord(keepFp32.join(',')));
  if (layerBits.length) parts.push('--layer-bits', shellWord(layerBits.map(([n, b]) => `${n}=${b}`).join(',')));
  if (autoMixed) parts.push('--auto-mixed', String(autoMixed), ...({ 16: ['--mixed-16bit'], w8: ['--mixed-8bit-weights'] }[mixedTo] ?? []));
  return parts;
}

/** The CLI flag for a weight rounding ('auto', 'gptq', 'nearest') at `bits`: none where it is the default (GPTQ below 8 bits). */
export function roundingFlag(rounding, bits) {
  if (rounding === 'gptq' && bits === 8) return ['--gptq'];
  if (rounding === 'nearest' && bits < 8) return ['--no-gptq'];
  return [];
}

/** The share of the work a stage says is done ("… 3 of 7 …" → 3/7), or null when it does not say.
 * Nested stages count within the outer one: "recipe 2 of 4: input 3 of 6" → (1 + 3/6) / 4. */
export function stageFraction(stage) {
  let f = null;
  for (const m of [...String(stage).matchAll(/(\d+) of (\d+)/g)].reverse()) {
    const [k, n] = [Number(m[1]), Number(m[2])];
    if (n > 0) f = f === null ? k / n : (k - 1 + f) / n;
  }
  return f === null ? null : Math.min(1, Math.max(0, f));
}

/** Methods of <qplay-detector> (assigned to its prototype). */
export const quantizeMethods = {
  async quantize() {
    // One run at a time: the button is disabled while one runs, and a second start is ignored.
    if (this.quantizing || this.qat?.running) return;
    if (!this.info) { this.showError('Load a model first.', 'no-model'); return; }
    const method = this.$('select[name=method]').value;
    const perChannel = this.$('input[name=perChannel]').checked;
    const modelId = this.modelId;
    const name = shortName(this.modelName);
    this.clearError();
    // Before → after belongs to the run a "Keep FP32" / "8-bit weights" / one-click fix asked for, not to later ones.
    if (this.compare?.pending) this.compare.pending = false; else this.compare = null;
    this.quantizing = true;
    this.quantCancelled = false; // set by cancel(), which may come before the worker has the job
    this.setQuantBusy(true);
    this.quantStage('decoding the calibration photos…');
    const t0 = performance.now();
    try {
      const images = await this.calibrationImages();
      const keepFp32 = [...(this.keepFp32 ?? [])];
      const layerBits = [...(this.layerBits ?? [])];
      const autoMixed = this.autoMixed();
      const mixedTo = this.mixedTo();
      const weightBits = this.weightBits();
      const rounding = this.$('select[name=rounding]').value;
      const r = await this.engine.quantize(images, { method, perChannel, keepFp32, layerBits, autoMixed, mixedTo, weightBits, rounding, score: this.score, iou: this.info.profile.iou_threshold },
        (stage) => this.quantStage(stage));
      // Another model was loaded meanwhile: this INT8 model is not of the model in use.
      if (modelId !== this.modelId) { this.quantDone(`The ${name} was replaced while it was quantized; quantize again.`, 'cancelled'); return; }
      this.quantizations = (this.quantizations ?? 0) + 1;
      this.int8 = { ...r, modelId, seq: r.int8Version, mix: { autoMixed, mixedTo } };
      this.resetQat();
      if (r.backend) { this.backendInfo = r.backend; this.showBackend(); }
      this.status(`${this.modelName}: ready; INT8 model made in ${r.seconds.toFixed(1)} s`);
      const wb = r.report.weight_bits ?? 8;
      const own = r.report.layers.filter((l) => (l.weight_bits ?? wb) !== wb).length;
      this.quantDone(`Quantized in ${r.seconds.toFixed(1)} s: ${r.report.layers.length} layers ${wb === 8 ? 'int8' : `with ${wb}-bit weights (stored ${r.report.weight_storage})`}${own ? `, ${own} at their own width` : ''}${r.report.act16?.length ? ` (${r.report.act16.length} with 16-bit activations)` : ''}, ${r.report.kept_fp32.length} kept FP32 (report below).`, 'done');
      this.dataset.int8 = '';
      this.$('.int8-pane').hidden = false;
      this.renderReport(this.int8);
      this.emit('qplay-quantized', { report: r.report, seconds: r.seconds });
      this.render();
      await this.run();
    } catch (e) {
      if (e.cancelled) {
        // A stopped run keeps what was there (the worker stayed); a replaced worker lost the INT8 model.
        const before = this.int8 ? ' and the INT8 model made before stay' : ' stays';
        this.quantDone(`Quantization cancelled after ${((performance.now() - t0) / 1000).toFixed(1)} s; no new INT8 model was made, the ${name} (FP32)${before} in use.`, 'cancelled');
        return;
      }
      this.quantDone(`Quantization failed: ${e.message}`, 'failed');
      this.showError(`Quantization failed: ${e.message}`, 'quantize');
    } finally {
      this.quantizing = false;
      this.setQuantBusy(false);
    }
  },

  /** The calibration set: the sample photos (when ticked) and the user's images, decoded. */
  async calibrationImages() {
    const images = [];
    if (this.$('input[name=use-samples]').checked) for (const n of SAMPLES) images.push({ name: n, data: (await imageData(`${BASE}samples/${n}`)).data });
    images.push(...this.calib);
    if (this.quantCancelled) throw Object.assign(new Error('cancelled'), { cancelled: true });
    if (!images.length) throw new Error('the calibration set is empty: tick "calibrate with the sample photos", add images, or use camera frames');
    return images;
  },

  /** "…or compare with your own INT8 model": the file (an ONNX QDQ model, a quantized .tflite)
   * becomes the INT8 model, read with the FP32 model's profile, and is compared with the FP32
   * model on the calibration set (agreement, output SQNR); a file that fails leaves the INT8
   * model in use as it was, and the page says which that is. */
  async loadOwnInt8(file) {
    if (!file || this.quantizing || this.qat?.running) return;
    if (!this.info) { this.showError('Load a model first: your INT8 model is compared with it.', 'no-model'); return; }
    const modelId = this.modelId;
    const name = shortName(this.modelName);
    this.clearError();
    // Before → after belongs to the run a "Keep FP32" / "8-bit weights" / one-click fix asked for, not to later ones.
    if (this.compare?.pending) this.compare.pending = false; else this.compare = null;
    this.quantizing = true;
    this.quantCancelled = false;
    this.setQuantBusy(true);
    this.quantStage(`reading ${file.name}…`);
    try {
      const bytes = await file.arrayBuffer();
      const size = bytes.byteLength; // (the buffer moves to the worker)
      const images = await this.calibrationImages();
      const r = await this.engine.loadInt8(bytes, images, { score: this.score, iou: this.info.profile.iou_threshold }, (stage) => this.quantStage(stage));
      if (modelId !== this.modelId) { this.quantDone(`The ${name} was replaced meanwhile; load your INT8 model again.`, 'cancelled'); return; }
      this.int8 = { own: { name: file.name, bytes: size, comparison: r.comparison }, modelId, seq: r.int8Version };
      this.resetQat();
      if (r.backend) { this.backendInfo = r.backend; this.showBackend(); }
      const c = r.comparison;
      this.quantDone(`Your INT8 model ${file.name} is in use: agreement with FP32 mAP@0.5 ${c.map50 == null ? 'undefined (FP32 found nothing)' : c.map50.toFixed(3)} on ${c.images} images (report below).`, 'done');
      this.status(`${this.modelName}: ready; INT8: ${file.name}`);
      this.dataset.int8 = '';
      this.$('.int8-pane').hidden = false;
      this.renderOwnReport(this.int8);
      this.render();
      await this.run();
    } catch (e) {
      const now = this.int8 ? (this.int8.own ? `your ${this.int8.own.name}` : 'the one made by Quantize') : 'none';
      if (e.cancelled) { this.quantDone(`Stopped; the INT8 model in use is still ${now}.`, 'cancelled'); return; }
      this.quantDone(`${file.name} was not loaded as the INT8 model: ${e.message} The INT8 model in use is still ${now}.`, 'failed');
      this.showError(`Your INT8 model ${file.name}: ${e.message}`, e.code ?? 'load-int8');
    } finally {
      this.quantizing = false;
      this.setQuantBusy(false);
      this.$('input[name=own-int8]').value = '';
    }
  },

  /** While a run is on: the Quantize and "Keep FP32" buttons disabled, the stage, bar and Cancel shown beside it. */
  setQuantBusy(busy) {
    const $ = this.$;
    $('button[name=quantize]').disabled = busy;
    $('input[name=own-int8]').disabled = busy;
    $('button[name=quantize]').textContent = busy ? 'Quantizing…' : 'Quantize';
    for (const b of this.shadowRoot.querySelectorAll('button[data-keep], button[data-bits], button[name=clear-mixed]')) b.disabled = busy;
    $('.qprogress').hidden = !busy;
    if (busy) { $('.qresult').textContent = ''; $('.qresult').className = 'qresult note'; }
  },

  /** A stage of the run: beside the button (with a bar when the stage says how far it is), and as a qplay-progress event. */
  quantStage(stage) {
    this.$('.qstage').textContent = stage;
    const bar = this.$('.qbar');
    const f = stageFraction(stage);
    if (f === null) bar.removeAttribute('value'); else { bar.max = 1; bar.value = f; }
    this.emit('qplay-progress', { stage });
  },

  /** What the run ended with, said under the button: done, cancelled or failed. */
  quantDone(text, kind) {
    const p = this.$('.qresult');
    p.textContent = text;
    p.className = `qresult note ${kind}`;
    p.dataset.outcome = kind;
  },

  /** When INT8 misses detections FP32 finds on this photo: says so, and offers the fix in one click. */
  showLost(stats) {
    const p = this.$('.lost');
    const lost = stats && stats.missed > 0 && !this.quantizing;
    p.hidden = !lost;
    if (!lost) return;
    const k = this.autoMixed();
    this.$('.lost-text').textContent = `INT8 misses ${stats.missed} of the ${stats.total} detections FP32 finds on this photo.` +
      (k >= 20 ? ' Already keeping the 20 most sensitive layers out of int8: try another calibration method or more calibration images.' : '');
    const b = this.$('button[name=fix-lost]');
    b.hidden = k >= 20 || Boolean(this.int8?.own);
    b.textContent = `Keep the ${Math.min(20, k + 3)} most sensitive layers ${MIXED_LABEL[this.mixedTo()]} and quantize again`;
  },

  /** The one-click fix: measure each layer's sensitivity and keep 3 more of the worst FP32; before → after is shown. */
  fixLost() {
    if (this.quantizing) return;
    const k = Math.min(20, this.autoMixed() + 3);
    const r = this.result;
    this.compare = {
      modelId: this.modelId, pending: true, kept: `the ${k} most sensitive layers ${MIXED_LABEL[this.mixedTo()]}`, sqnr: { ...(this.int8?.report?.output_sqnr_db ?? {}) },
      agree: r?.int8 && r.imageId === this.image?.id ? agreementStats(r.detections, r.int8.detections) : null, imageId: this.image?.id,
    };
    this.$('input[name=autoMixed]').value = String(k);
    this.$('.lost').hidden = true;
    this.changed();
    this.quantize();
  },

  /** "Keep FP32" (`change` 'fp32') or "8-bit weights" (`change` 8) on a layer: remembers this run's numbers (shown
   * before → after) and quantizes again with that layer changed. */
  rerunWith(node, change) {
    if (this.quantizing) return;
    const r = this.result;
    this.compare = {
      modelId: this.modelId, pending: true, kept: change === 'fp32' ? `${node} FP32` : `${node} at ${change}-bit weights`, sqnr: { ...(this.int8?.report?.output_sqnr_db ?? {}) },
      agree: r?.int8 && r.imageId === this.image?.id ? agreementStats(r.detections, r.int8.detections) : null, imageId: this.image?.id,
    };
    if (change === 'fp32') (this.keepFp32 ??= new Set()).add(node);
    else (this.layerBits ??= new Map()).set(node, change);
    this.showKeep();
    this.changed();
    this.quantize();
  },

  /** The layers kept FP32 or given their own weight width at the next Quantize, under the Quantize button's fieldset, with a Clear. */
  showKeep() {
    const note = this.$('.keep-note');
    const keep = [...(this.keepFp32 ?? [])];
    const bits = [...(this.layerBits ?? [])];
    note.hidden = !keep.length && !bits.length;
    this.$('.keep-text').textContent = [
      keep.length ? `Layers kept FP32 when quantizing: ${keep.join(', ')}.` : '',
      bits.length ? `Layers with their own weight bits: ${bits.map(([n, b]) => `${n} (${b}-bit)`).join(', ')}.` : '',
    ].filter(Boolean).join(' ');
  },

  /** Clears the per-layer choices ("Keep FP32", "8-bit weights"); the next Quantize treats every layer alike. */
  clearMixed() {
    this.keepFp32 = new Set();
    this.layerBits = new Map();
    this.showKeep();
    this.showCommand();
    this.changed();
  },

  /** The weight width chosen (2–8; 8 unless another is picked). */
  weightBits() {
    const b = Number(this.$('select[name=weightBits]').value);
    return Number.isInteger(b) && b >= 2 && b <= 8 ? b : 8;
  },

  /** What automatic mixed precision moves its layers to: fp32, 16 (16-bit activations) or w8 (8-bit weights). */
  mixedTo() {
    const v = this.$('select[name=mixedTo]').value;
    // 8-bit weights only move layers whose weights are narrower: at 8 bits, FP32.
    return v === 'w8' && this.weightBits() === 8 ? 'fp32' : v;
  },

  /** The automatic mixed-precision count (0–20; anything else counts as 0). */
  autoMixed() {
    const k = Math.trunc(Number(this.$('input[name=autoMixed]').value));
    return Number.isFinite(k) && k > 0 ? Math.min(k, 20) : 0;
  },

  /** The current quantization settings as a `qplay quantize` command that runs from the repository's root. */
  configCommand() {
    const own = this.calib?.length ?? 0;
    const samples = this.$('input[name=use-samples]').checked;
    return quantizeCommand({
      model: this.modelPath ?? 'model.onnx',
      // The sample photos are www/samples in the repository; the user's own images are in a folder of theirs.
      calib: samples && !own ? 'www/samples' : 'calibration_images',
      profile: this.profileFile ?? null,
      method: this.$('select[name=method]').value, perChannel: this.$('input[name=perChannel]').checked,
      keepFp32: [...(this.keepFp32 ?? [])], layerBits: [...(this.layerBits ?? [])], autoMixed: this.autoMixed(), mixedTo: this.mixedTo(), weightBits: this.weightBits(),
      rounding: this.$('select[name=rounding]').value,
    });
  },
};
