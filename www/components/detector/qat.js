// The detector's Fine-tune (QAT) box: after Quantize, quantization-aware training of the INT8
// model against the FP32 one on the calibration images (every fourth held out), live. Steps run in
// the worker between frames; the chart is in the seed's form — FP32 (solid blue, flat: it agrees
// with itself) and INT8 (dashed vermillion) detection agreement with FP32 per check, with the
// held-out SQNR and the distillation loss below. The INT8 pane runs the newest weights after each
// check; at the end (done, Stop, or an error) the best held-out step is kept and downloadable.
import { BOX, INT8 } from './template.js';
import { fileStem } from './model-source.js';
import { loadRun, clearRun } from '../../saved-run.js';
import { esc } from './util.js';
import { mixedFlags, roundingFlag } from './quantize.js';

/** Said when the FP32 model detects nothing on any training image: the heads then learn only
 * the background, and detections elsewhere can get lost. */
const NO_OBJECTS = 'the FP32 model finds no objects on the training images, so fine-tuning sees only background and may lose detections elsewhere: add images (or webcam frames) with the objects you detect';

/** The fine-tuning settings' bounds (the page refuses others with a message saying so). */
export const QAT_LIMITS = { steps: [1, 1000], batch: [1, 16], evalEvery: [1, 100], lr: [1e-7, 1e-2] };

/** Reads and checks the settings; returns {opts} or {error} (a sentence saying what to change). */
export function qatSettings({ steps, lr, batch, evalEvery, layers = true }) {
  const n = (v) => (String(v).trim() === '' ? NaN : Number(v));
  const o = { steps: n(steps), lr: n(lr), batch: n(batch), evalEvery: n(evalEvery), featureWeight: layers ? 1 : 0 };
  const int = (k, what) => {
    const [lo, hi] = QAT_LIMITS[k];
    return Number.isInteger(o[k]) && o[k] >= lo && o[k] <= hi ? null : `${what} must be a whole number from ${lo} to ${hi}`;
  };
  const errors = [int('steps', 'Steps'), int('batch', 'Batch'), int('evalEvery', 'Check every')];
  const [lo, hi] = QAT_LIMITS.lr;
  if (!(Number.isFinite(o.lr) && o.lr >= lo && o.lr <= hi)) errors.push(`Learning rate must be a number from ${lo} to ${hi} (e.g. 1e-4)`);
  const bad = errors.filter(Boolean);
  return bad.length ? { error: `${bad.join('; ')}.` } : { opts: o };
}

/** What to try when training only lowered the held-out SQNR (shared wording with `qplay qat`),
 * after a start of `bits`-bit weights rounded by `rounding` ('gptq' / 'nearest'). Below 8 bits
 * GPTQ's codes leave fine-tuning little to find: from the default rate down, a smaller one fell
 * too (docs/measurements.md). */
export function fellHint(lr, layers, bits = 8, rounding = 'nearest') {
  if (bits < 8 && rounding === 'gptq' && lr <= Number(qatDefaultLr(bits, rounding))) return `The held-out SQNR fell as it trained: GPTQ's ${bits}-bit rounding leaves fine-tuning little to find (on the sample photos a learning rate ten times smaller fell too), so the model from Quantize is the one to use; more images with the objects may give fine-tuning more to learn from.`;
  return `The held-out SQNR fell as it trained: try a smaller learning rate (e.g. ${(lr / 3).toExponential(0)})${layers ? ' or untick “match every layer”' : ''}, or more images with the objects.`;
}

/** The CLI's default learning rate (as the page writes it) for `bits`-bit weights rounded by `rounding` ('gptq' / 'nearest'). */
export function qatDefaultLr(bits, rounding) {
  if (bits < 8) return '1e-3';
  return rounding === 'gptq' ? '3e-5' : '1e-4';
}

/** The `qplay qat` command for these settings (the CLI's defaults left out). */
export function qatCommand({ model, calib, profile = null, weightBits = 8, rounding = 'auto', keepFp32 = [], layerBits = [], autoMixed = 0, mixedTo = 'fp32', steps, lr, batch, evalEvery, featureWeight = 1 }) {
  const parts = ['qplay', 'qat', model, '--calib', calib];
  if (weightBits !== 8) parts.push('--weight-bits', String(weightBits));
  parts.push(...roundingFlag(rounding, weightBits));
  parts.push(...mixedFlags({ keepFp32, layerBits, autoMixed, mixedTo }));
  if (steps !== 100) parts.push('--steps', String(steps));
  if (lr !== Number(qatDefaultLr(weightBits, rounding === 'auto' ? (weightBits < 8 ? 'gptq' : 'nearest') : rounding))) parts.push('--lr', String(lr));
  if (batch !== 4) parts.push('--batch', String(batch));
  if (evalEvery !== 10) parts.push('--eval-every', String(evalEvery));
  if (featureWeight !== (weightBits < 8 ? 0 : 1)) parts.push('--feature-weight', String(featureWeight));
  if (profile) parts.push('--profile', profile);
  parts.push('-o', `${fileStem(model)}_qat_qdq.onnx`, '--curve', 'curve.csv');
  return parts.join(' ');
}

const W = 560;
const PAD = { l: 52, r: 12, t: 22, b: 22 };

/** One panel of the curve: `series` [{points: [[x, y]], color, dash, label, dots}] over steps 0..`steps`. */
function panel(series, { steps, height, yLabel, yMin = null, yMax = null, fmt = (v) => v.toFixed(1), xAxis = false }) {
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite);
  let lo = yMin ?? Math.min(...ys);
  let hi = yMax ?? Math.max(...ys);
  if (!ys.length) { lo = 0; hi = 1; }
  if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
  const h = height;
  const x = (s) => PAD.l + (s / Math.max(1, steps)) * (W - PAD.l - PAD.r);
  const y = (v) => PAD.t + (1 - (v - lo) / (hi - lo)) * (h - PAD.t - PAD.b);
  const path = (pts) => pts.filter((p) => Number.isFinite(p[1])).map((p, i) => `${i ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join('');
  const ticks = [lo, (lo + hi) / 2, hi];
  return `<svg viewBox="0 0 ${W} ${h}" width="${W}" height="${h}" role="img" aria-label="${esc(yLabel)} per step">
    ${ticks.map((t) => `<line x1="${PAD.l}" x2="${W - PAD.r}" y1="${y(t)}" y2="${y(t)}" stroke="currentColor" stroke-opacity="0.12"/>
      <text x="${PAD.l - 4}" y="${y(t) + 4}" font-size="10" text-anchor="end" fill="currentColor">${fmt(t)}</text>`).join('')}
    <text x="${PAD.l}" y="12" font-size="11" font-weight="600" fill="currentColor">${esc(yLabel)}</text>
    ${xAxis ? `<text x="${W - PAD.r}" y="${h - 4}" font-size="10" text-anchor="end" fill="currentColor">step ${steps}</text><text x="${PAD.l}" y="${h - 4}" font-size="10" fill="currentColor">0</text>` : ''}
    ${series.map((s) => `<path d="${path(s.points)}" fill="none" stroke="${s.color}" stroke-width="2" ${s.dash ? `stroke-dasharray="${s.dash}"` : ''}><title>${esc(s.label)}</title></path>
      ${s.dots ? s.points.filter((p) => Number.isFinite(p[1])).map((p) => `<circle cx="${x(p[0])}" cy="${y(p[1])}" r="2.5" fill="${s.color}"><title>${esc(s.label)}, step ${p[0]}: ${fmt(p[1])}</title></circle>`).join('') : ''}`).join('')}
  </svg>`;
}

/** The training curve as SVG: agreement (FP32 flat, INT8 per check), held-out SQNR, loss. */
export function qatChart(curve, steps) {
  const checks = curve.filter((p) => p.held_out_sqnr_db != null);
  const agree = checks.filter((p) => p.agreement != null).map((p) => [p.step, p.agreement]);
  const last = curve.at(-1)?.step ?? 0;
  const lowAgree = Math.min(0.9, ...agree.map((p) => p[1]));
  const top = agree.length
    ? panel([
      { points: [[0, 1], [Math.max(last, 1), 1]], color: BOX, label: 'FP32 (agrees with itself)' },
      { points: agree, color: INT8, dash: '6 4', dots: true, label: 'INT8 agreement mAP@0.5 with FP32' },
    ], { steps, height: 140, yLabel: 'agreement mAP@0.5 with FP32', yMin: Math.max(0, Math.floor(lowAgree * 20) / 20), yMax: 1, fmt: (v) => v.toFixed(2) })
    : '<p class="note">Agreement: the FP32 model finds nothing on the held-out images, so there is no detection to agree on; the SQNR below still measures the outputs.</p>';
  const sqnr = panel([{ points: checks.map((p) => [p.step, p.held_out_sqnr_db]), color: INT8, dash: '6 4', dots: true, label: 'INT8 held-out output SQNR vs FP32, dB' }],
    { steps, height: 120, yLabel: 'held-out output SQNR vs FP32 (dB)' });
  const loss = panel([{ points: curve.filter((p) => p.loss != null).map((p) => [p.step, p.loss]), color: 'currentColor', label: 'distillation loss (training batch)' }],
    { steps, height: 120, yLabel: 'distillation loss (training batch)', fmt: (v) => v.toPrecision(2), xAxis: true });
  return `${top}${sqnr}${loss}`;
}

/** "What changed" of a result: each layer's SQNR before and after, the weights whose codes moved most, and the scales. */
export function changesHtml(changes, layers = []) {
  const w = changes.filter((c) => c.kind === 'weight');
  const a = changes.filter((c) => c.kind === 'activation');
  if (!w.length && !a.length && !layers.length) return '';
  const mean = (xs) => (xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : 0);
  const pct = (v) => (v >= 0.1 ? v.toFixed(1) : v > 0 ? v.toFixed(3) : '0');
  // The weight's own name: without the suffixes quantization and training add, its last path parts.
  const short = (t) => {
    const n = t.replace(/(_fused_bn)?(_quantized)?(_qat)?$/, '');
    return n.length > 48 ? `…${n.slice(-47)}` : n;
  };
  const top = [...w].sort((x, y) => y.codes_changed_pct - x.codes_changed_pct || y.scale_change_pct - x.scale_change_pct).slice(0, 10);
  const db = (v) => v.toFixed(2);
  const median = (xs) => { const v = [...xs].sort((x, y) => x - y); return v.length ? (v[(v.length - 1) >> 1] + v[v.length >> 1]) / 2 : 0; };
  const delta = (l) => l.qat_sqnr_db - l.ptq_sqnr_db;
  const moved = [...layers].sort((x, y) => Math.abs(delta(y)) - Math.abs(delta(x))).slice(0, 10);
  const perLayer = layers.length ? `<p>Per layer, on the held-out images (each quantized activation against the FP32 model's tensor of the same name):
      median SQNR ${db(median(layers.map((l) => l.ptq_sqnr_db)))} → ${db(median(layers.map((l) => l.qat_sqnr_db)))} dB, higher in ${layers.filter((l) => delta(l) > 0).length} of ${layers.length} layers.</p>
    <div class="table-wrap"><table class="qat-layers"><thead><tr><th>activation (largest change first)</th><th class="n">SQNR after Quantize</th><th class="n">after fine-tuning</th><th class="n">change</th></tr></thead><tbody>
    ${moved.map((l) => `<tr><td title="${esc(l.tensor)}">${esc(short(l.tensor))}</td><td class="n">${db(l.ptq_sqnr_db)} dB</td><td class="n">${db(l.qat_sqnr_db)} dB</td><td class="n">${delta(l) >= 0 ? '+' : ''}${db(delta(l))} dB</td></tr>`).join('')}
    </tbody></table></div>` : '';
  if (!w.length && !a.length) return perLayer;
  return `${perLayer}<p>${w.length} weight tensors: ${pct(mean(w.map((c) => c.codes_changed_pct)))} % of their codes moved on average (rounding decisions the training changed),
      scales by ${pct(mean(w.map((c) => c.scale_change_pct)))} %; ${a.length ? `${a.length} activation scales changed by ${pct(mean(a.map((c) => c.scale_change_pct)))} % on average` : 'the activation scales kept their values from Quantize'}.</p>
    <div class="table-wrap"><table class="qat-changes"><thead><tr><th>weight (most codes moved first)</th><th class="n">codes moved</th><th class="n">largest move</th><th class="n">scale change</th></tr></thead><tbody>
    ${top.map((c) => `<tr><td title="${esc(c.tensor)}">${esc(short(c.tensor))}</td><td class="n">${pct(c.codes_changed_pct)} %</td><td class="n">${c.max_code_move}</td><td class="n">${pct(c.scale_change_pct)} %</td></tr>`).join('')}
    </tbody></table></div>`;
}

/** The stage line for a curve point. */
export function stepText(p, steps) {
  const parts = [`step ${p.step} of ${steps}`];
  if (p.loss != null) parts.push(`loss ${p.loss.toPrecision(3)}`);
  if (p.held_out_sqnr_db != null) parts.push(`held-out SQNR ${p.held_out_sqnr_db.toFixed(2)} dB`);
  if (p.agreement != null) parts.push(`agreement ${p.agreement.toFixed(3)}`);
  if (p.step > 0) parts.push(`${(p.seconds / p.step).toFixed(1)} s/step`);
  return parts.join(' · ');
}

/** Methods of <qplay-detector> (assigned to its prototype). */
export const qatMethods = {
  wireQat() {
    const $ = this.$;
    $('button[name=qat-start]').addEventListener('click', () => this.startQat());
    $('button[name=qat-pause]').addEventListener('click', () => this.pauseQat());
    $('button[name=qat-stop]').addEventListener('click', () => this.stopQat());
    for (const n of ['qatSteps', 'qatLr', 'qatBatch', 'qatEvery', 'qatLayers']) $(`input[name=${n}]`).addEventListener('input', () => this.showQatCommand());
    $('button[name=qat-discard]').addEventListener('click', () => { clearRun(); this.showSavedRun(null); });
    loadRun().then((run) => this.showSavedRun(run));
  },

  /** A run whose page closed before it ended: its best step, saved as it went, to download. */
  showSavedRun(run) {
    const p = this.$('p.qat-saved');
    if (this.savedUrl) URL.revokeObjectURL(this.savedUrl);
    this.savedUrl = null;
    p.hidden = !run?.bytes;
    if (p.hidden) return;
    const gain = run.sqnr - run.ptqSqnr;
    const when = new Date(run.savedAt).toLocaleString();
    this.$('.qat-saved-text').textContent = `A fine-tuning run of ${run.model} was cut off (its page closed) before step ${run.steps}; its best step, ${run.step}` +
      (Number.isFinite(gain) ? ` (held-out SQNR ${run.ptqSqnr.toFixed(2)} → ${run.sqnr.toFixed(2)} dB, ${gain >= 0 ? '+' : ''}${gain.toFixed(2)} dB)` : '') +
      `, was kept in this browser (${when}). `;
    this.savedUrl = URL.createObjectURL(new Blob([run.bytes], { type: 'application/octet-stream' }));
    const a = this.$('a.qat-saved-dl');
    a.href = this.savedUrl;
    a.download = `${run.model}_qat_step${run.step}_qdq.onnx`;
    a.textContent = `Download it (${(run.bytes.byteLength / 1e6).toFixed(2)} MB)`;
  },

  /** The box is offered once there is an INT8 model of the model in use. */
  showQatBox() {
    // Fine-tuning starts from a model qplay quantized (not the user's own INT8 file).
    this.$('fieldset.qat').hidden = !this.int8 || Boolean(this.int8.own);
    this.showQatCommand();
  },

  qatInputs() {
    const v = (n) => this.$(`input[name=${n}]`).value;
    return { steps: v('qatSteps'), lr: v('qatLr'), batch: v('qatBatch'), evalEvery: v('qatEvery'), layers: this.$('input[name=qatLayers]').checked };
  },

  showQatCommand() {
    const s = qatSettings(this.qatInputs());
    const own = this.calib?.length ?? 0;
    const calib = this.$('input[name=use-samples]').checked && !own ? 'www/samples' : 'calibration_images';
    const weightBits = this.int8?.report?.weight_bits ?? 8;
    // The PTQ start's rounding, as the report says it was done.
    const rounding = this.int8?.report?.weight_rounding ?? 'auto';
    // The PTQ start's mixed precision: the layers chosen by hand that its report shows so, and
    // the automatic choice (measured again by the CLI).
    const rep = this.int8?.report;
    const keepFp32 = [...(this.keepFp32 ?? [])].filter((n) => rep?.kept_fp32?.includes(n));
    const layerBits = [...(this.layerBits ?? [])].filter(([n, b]) => rep?.layers.some((l) => l.node === n && l.weight_bits === b));
    const { autoMixed = 0, mixedTo = 'fp32' } = this.int8?.mix ?? {};
    this.$('.qat-command').textContent = s.opts ? qatCommand({ model: this.modelPath ?? 'model.onnx', calib, profile: this.profileFile ?? null, weightBits, rounding, keepFp32, layerBits, autoMixed, mixedTo, ...s.opts }) : '';
  },

  async startQat() {
    if (this.qat?.running || this.quantizing) return;
    if (!this.int8 || this.int8.own) { this.showError('Quantize first: fine-tuning starts from the INT8 model qplay makes.', 'no-model'); return; }
    const s = qatSettings(this.qatInputs());
    if (s.error) { this.qatDone(s.error, 'failed'); return; }
    this.clearError(['qat']);
    const qat = this.qat = { running: true, paused: false, steps: s.opts.steps, lr: s.opts.lr, layers: s.opts.featureWeight > 0, bits: this.int8?.report?.weight_bits ?? 8, rounding: this.int8?.report?.weight_rounding, curve: [], modelId: this.modelId, t0: performance.now() };
    this.setQatBusy(true);
    this.qatStage('starting…');
    try {
      const r = await this.engine.startQat({ ...s.opts, score: this.score, iou: this.info.profile.iou_threshold, modelName: fileStem(this.modelPath ?? this.modelName ?? 'model'), weightBits: this.int8?.report?.weight_bits ?? 8 }, (stage) => this.qatStage(stage));
      if (qat !== this.qat) return;
      qat.curve = [r.point];
      qat.split = `${r.train} training image${r.train === 1 ? '' : 's'}, ${r.heldOut} held out`;
      // Training images the FP32 model finds nothing on teach the heads only the background.
      qat.noObjects = r.trainWithObjects === 0;
      if (qat.noObjects) qat.split += ` — ${NO_OBJECTS}`;
      this.qatStage(`${stepText(r.point, qat.steps)} (the INT8 model from Quantize) · ${qat.split}`);
      this.renderQatChart();
    } catch (e) {
      if (qat !== this.qat) return;
      qat.running = false;
      this.setQatBusy(false);
      this.qatDone(`Fine-tuning could not start: ${e.message}`, 'failed');
      this.showError(`Fine-tuning could not start: ${e.message}`, 'qat');
    }
  },

  async pauseQat() {
    const q = this.qat;
    if (!q?.running) return;
    q.paused = !q.paused;
    const b = this.$('button[name=qat-pause]');
    b.textContent = q.paused ? 'Resume' : 'Pause';
    b.setAttribute('aria-pressed', String(q.paused));
    this.$('.qat-progress').toggleAttribute('data-paused', q.paused);
    if (q.paused) {
      await this.engine.pauseQat();
      this.qatStage(`paused after step ${q.curve.at(-1)?.step ?? 0} of ${q.steps} — the INT8 pane runs its weights; Resume goes on, Stop keeps the best step`);
    } else {
      await this.engine.resumeQat();
      this.qatStage(`resumed after step ${q.curve.at(-1)?.step ?? 0} of ${q.steps}`);
    }
  },

  async stopQat() {
    if (!this.qat?.running) return;
    this.qatStage('stopping after this step…');
    this.$('button[name=qat-stop]').disabled = true;
    await this.engine.stopQat();
  },

  /** News from the worker: a step, the INT8 pane's new weights, the end. */
  onQatEvent(m) {
    const q = this.qat;
    if (!q) return;
    if (m.kind === 'qat-step') {
      q.curve.push(m.point);
      if (!q.paused) this.qatStage(stepText(m.point, q.steps));
      this.$('.qat-bar').max = q.steps;
      this.$('.qat-bar').value = m.point.step;
      this.renderQatChart();
      this.emit('qplay-qat-step', { point: m.point, memory: m.memory });
    } else if (m.kind === 'qat-update') {
      if (this.int8) this.int8 = { ...this.int8, seq: m.int8Version };
      if (!this.video?.live) this.run();
    } else if (m.kind === 'qat-end') {
      this.endQat(m);
    }
  },

  endQat(m) {
    const q = this.qat;
    q.running = false;
    this.setQatBusy(false);
    if (m.how === 'abandoned') { this.qatDone('Fine-tuning ended: the model or its INT8 model was replaced.', 'cancelled'); return; }
    if (this.int8 && m.int8Version != null) this.int8 = { ...this.int8, seq: m.int8Version };
    const r = m.result;
    if (r && m.bytes) {
      if (this.qatUrl) URL.revokeObjectURL(this.qatUrl);
      this.qatUrl = URL.createObjectURL(new Blob([m.bytes], { type: 'application/octet-stream' }));
      q.result = r;
      const gain = r.qat_sqnr_db - r.ptq_sqnr_db;
      const best = r.curve.find((p) => p.step === r.best_step);
      const first = r.curve[0];
      const agree = best?.agreement != null && first?.agreement != null ? `; agreement ${first.agreement.toFixed(3)} → ${best.agreement.toFixed(3)}` : '';
      const how = m.how === 'done' ? `Fine-tuned ${r.curve.length - 1} steps` : m.how === 'stopped' ? `Stopped after ${r.curve.length - 1} of ${q.steps} steps` : `Fine-tuning failed at step ${r.curve.length} (${m.error}); the weights before it are safe`;
      const kept = r.best_step === 0
        ? 'no step beat the INT8 model from Quantize on the held-out images, so it is kept unchanged'
        : `kept step ${r.best_step}: held-out SQNR ${r.ptq_sqnr_db.toFixed(2)} → ${r.qat_sqnr_db.toFixed(2)} dB (${gain >= 0 ? '+' : ''}${gain.toFixed(2)} dB)${agree}`;
      const fell = r.best_step === 0 && r.curve.some((p) => p.step > 0 && p.held_out_sqnr_db != null && p.held_out_sqnr_db < r.ptq_sqnr_db);
      const raw = r.targets?.replaced?.length
        ? ` The loss and the held-out SQNR compared the raw tensors ${r.targets.extra.join(', ')} in place of ${r.targets.replaced.join(', ')}, which the model's own post-processing selects from them.`
        : '';
      const frozen = r.frozen_at?.length ? ` The layers reached only through ${r.frozen_at.join(', ')} kept their quantized values (no backward there yet).` : '';
      const warn = raw + frozen + (q.noObjects ? ` Note: ${NO_OBJECTS}.` : '') + (fell ? ` ${fellHint(q.lr, q.layers, q.bits, q.rounding)}` : '');
      this.qatDone(`${how} in ${((performance.now() - q.t0) / 1000).toFixed(0)} s (${r.seconds_per_step.toFixed(1)} s/step); ${kept}. The INT8 pane runs the kept step.${warn}`, m.how === 'failed' ? 'failed' : 'done');
      const a = this.$('a.qat-dl');
      a.href = this.qatUrl;
      a.download = `${fileStem(this.modelPath ?? this.modelName)}_qat_qdq.onnx`;
      a.textContent = `Download the fine-tuned INT8 model (${(m.bytes.byteLength / 1e6).toFixed(2)} MB)`;
      a.hidden = false;
      const d = this.$('details.qat-changed');
      d.hidden = r.best_step === 0;
      this.$('.qat-changed-body').innerHTML = r.best_step === 0 ? '' : changesHtml(r.changes ?? [], r.layers ?? []);
      this.emit('qplay-qat-end', { how: m.how, result: r });
    } else {
      this.qatDone(`Fine-tuning failed: ${m.error}. The INT8 model from Quantize stays in use.`, 'failed');
      this.showError(`Fine-tuning failed: ${m.error}`, 'qat');
    }
    this.renderQatChart();
    if (!this.video?.live) this.run();
  },

  setQatBusy(busy) {
    const $ = this.$;
    $('button[name=qat-start]').disabled = busy;
    $('button[name=quantize]').disabled = busy || this.quantizing;
    $('button[name=qat-pause]').hidden = !busy;
    $('button[name=qat-pause]').textContent = 'Pause';
    $('button[name=qat-pause]').setAttribute('aria-pressed', 'false');
    $('button[name=qat-stop]').hidden = !busy;
    $('button[name=qat-stop]').disabled = false;
    $('.qat-progress').hidden = !busy;
    if (busy) { $('.qat-result').textContent = ''; $('a.qat-dl').hidden = true; $('details.qat-changed').hidden = true; }
  },

  qatStage(text) {
    this.$('.qat-stage').textContent = text;
    this.emit('qplay-progress', { stage: `fine-tuning: ${text}` });
  },

  qatDone(text, kind) {
    const p = this.$('.qat-result');
    p.textContent = text;
    p.className = `qat-result note ${kind}`;
    p.dataset.outcome = kind;
  },

  renderQatChart() {
    const q = this.qat;
    const fig = this.$('figure.qat-chart');
    fig.hidden = !q?.curve.length;
    if (!q?.curve.length) return;
    this.$('.qat-svg').innerHTML = qatChart(q.curve, q.steps);
  },

  /** A new model or a new INT8 model: the fine-tuning box and chart start over (the learning
   * rate and "match every layer" at their defaults for the INT8 model's weight width and
   * rounding, as in the CLI: 1e-4 (3e-5 after GPTQ) and on at 8 bits, 1e-3 and off below). */
  resetQat() {
    this.qat = null;
    const $ = this.$;
    const low = (this.int8?.report?.weight_bits ?? 8) < 8;
    $('input[name=qatLr]').value = qatDefaultLr(this.int8?.report?.weight_bits ?? 8, this.int8?.report?.weight_rounding);
    $('input[name=qatLayers]').checked = !low;
    this.setQatBusy(false);
    $('.qat-result').textContent = '';
    $('figure.qat-chart').hidden = true;
    $('details.qat-changed').hidden = true;
    this.showQatBox();
  },
};
