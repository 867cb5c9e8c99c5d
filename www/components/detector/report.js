// The detector's quantization report: summary, worst layers (with "Keep FP32"), the charts
// (report-charts.js), before → after a "Keep FP32" re-run, the command, and the downloads.
import { fmt } from '../../qplay.js';
import { METRICS, exportChart, fmtPct, histogramChart, methodLines, pairBars, sortLayers, sqnrBars, truncate } from '../report-charts.js';
import { fileStem } from './model-source.js';
import { shellWord } from './quantize.js';
import { threadsText } from './threads.js';
import { db, esc } from './util.js';

/** "8-bit weights" for a layer whose weights have fewer bits (mixed precision: the layer's weights at 8 bits, the rest as chosen). */
function bits8Button(l, wb, tail = '') {
  return (l.weight_bits ?? wb) < 8
    ? ` <button type="button" data-bits="8" data-node="${esc(l.node)}" title="give this layer 8-bit weights (the others keep ${l.weight_bits ?? wb}) and quantize again">8-bit weights${tail}</button>`
    : '';
}

/** "2 at 8 bits, 1 at 6 bits" for layers at their own width. */
function bitsSummary(layers) {
  const by = new Map();
  for (const l of layers) by.set(l.weight_bits, (by.get(l.weight_bits) ?? 0) + 1);
  return [...by].sort((a, b) => b[0] - a[0]).map(([b, k]) => `${k} at ${b} bits`).join(', ');
}

/** Methods of <qplay-detector> (assigned to its prototype). */
export const reportMethods = {
  renderReport(r) {
    const rep = r.report;
    const mb = (b) => (b / 1e6).toFixed(2);
    if (this.downloadUrl) URL.revokeObjectURL(this.downloadUrl);
    this.downloadUrl = URL.createObjectURL(new Blob([r.bytes], { type: 'application/octet-stream' }));
    // Download names from the model's file: person_ssdlite_int8_qdq.onnx, my_model_int8_report.json.
    const base = fileStem(this.modelPath ?? this.modelName);
    const before = this.compare && this.compare.modelId === r.modelId ? this.compare : null;
    // Most sensitive first when the sensitivity was measured (--auto-mixed): the layers whose
    // quantization alone hurts the outputs most, the ones to keep FP32 or give 8-bit weights.
    const sens = rep.layers.length > 0 && rep.layers.every((l) => typeof l.sensitivity_sqnr_db === 'number');
    const worst = sortLayers(rep.layers, sens ? 'sensitivity' : 'output').slice(0, 8);
    // Weight widths per layer (mixed precision): a column, and "8-bit weights" on the layers below 8.
    const wb = rep.weight_bits ?? 8;
    const own = rep.layers.filter((l) => (l.weight_bits ?? wb) !== wb);
    const bitsCol = wb < 8 || own.length > 0;
    this.$('.qreport').hidden = false;
    this.$('.qreport-body').innerHTML = `
      <p>Size: FP32 ${mb(rep.fp32_bytes)} MB → INT8 ${mb(rep.int8_bytes)} MB (${(rep.int8_bytes / rep.fp32_bytes).toFixed(2)}×) ·
        ${rep.layers.length} layers ${wb === 8 ? 'int8' : `with ${wb}-bit weights (stored ${esc(rep.weight_storage)})`}${own.length ? ` (${own.length} at their own width: ${bitsSummary(own)})` : ''}, ${rep.kept_fp32.length} kept FP32 · ${rep.method}, ${rep.per_channel ? 'per-channel' : 'per-tensor'} weights${rep.weight_rounding === 'gptq' ? ' rounded by GPTQ' : ''},
        ${rep.activation_type} activations · ${rep.calibration_inputs} calibration images · ${r.seconds.toFixed(1)} s</p>
      <p class="sqnr-line">Output SQNR vs FP32 (calibration images): ${Object.entries(rep.output_sqnr_db).map(([k, v]) => `${esc(k)} ${before && typeof before.sqnr[k] === 'number' ? `${before.sqnr[k].toFixed(1)} → ` : ''}${v.toFixed(1)} dB`).join(' · ')}
        ${before ? `<span class="note">(before → after keeping ${esc(before.kept)})</span>` : ''}</p>
      <p class="before-after" ${before ? '' : 'hidden'}></p>
      ${rep.notes.map((n) => `<p class="note">${esc(n)}</p>`).join('')}
      ${rep.kept_fp32.length ? `<p>Kept FP32: ${rep.kept_fp32.map((n) => `<code>${esc(n)}</code>`).join(', ')}</p>` : ''}
      ${rep.act16?.length ? `<p>16-bit activations (weights ${(rep.weight_bits ?? 8) === 8 ? 'int8' : `${rep.weight_bits}-bit`}): ${rep.act16.map((n) => `<code>${esc(n)}</code>`).join(', ')}</p>` : ''}
      <div class="table-wrap"><table class="layers"><thead><tr><th>layer (${sens ? 'most sensitive' : 'worst output SQNR'} first)</th>${sens ? '<th class="n" title="output SQNR when only this layer is quantized">sensitivity dB</th>' : ''}<th class="n">output SQNR dB</th><th class="n">weight SQNR dB${bitsCol ? ' (bits)' : ''}</th><th class="n">scales</th><th>activation clip range</th><th class="n">clipped</th><th class="n">Δ</th><th class="n">Z</th><th></th></tr></thead><tbody>
      ${worst.map((l) => `<tr><td title="${esc(l.node)}">${esc(truncate(l.node, 40))}</td>${sens ? `<td class="n">${db(l.sensitivity_sqnr_db)}</td>` : ''}<td class="n">${db(l.output_sqnr_db)}</td><td class="n">${db(l.weight_sqnr_db)}${bitsCol ? ` (${l.weight_bits ?? wb})` : ''}</td><td class="n">${l.weight_scales}</td>
        <td>[${l.activation.clip[0].toFixed(3)}, ${l.activation.clip[1].toFixed(3)}]</td><td class="n">${fmtPct(l.activation.clipped_pct)}</td><td class="n">${l.activation.scale.toPrecision(4)}</td><td class="n">${l.activation.zero_point}</td>
        <td><div class="acts"><button type="button" data-keep="${esc(l.node)}" title="keep this layer in FP32 and quantize again">Keep FP32</button>${bits8Button(l, wb)}</div></td></tr>`).join('')}
      </tbody></table></div>
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
          <p class="formula"></p>
          <div class="scroll channels"></div></figure>
        <div class="pairs">
          <figure class="chart" data-chart="size"><div class="chart-h"><b class="grow">Model size</b>${exportButtons('size')}</div><div class="svg size"></div></figure>
          <figure class="chart" data-chart="latency"><div class="chart-h"><b class="grow">Latency (this frame)</b>${exportButtons('latency')}</div><div class="svg latency"></div></figure>
        </div>
      </div>
      <p><button type="button" name="copy-config">Copy settings as a qplay command</button> <span class="copied note" aria-live="polite"></span><br>
        <code class="command"></code> <span class="command-note note"></span></p>
      <p><a class="dl" download="${esc(base)}_int8_qdq.onnx" href="${this.downloadUrl}">Download the INT8 model (.onnx)</a>
         <a class="dl report-dl" download="${esc(base)}_int8_report.json">Download the report (.json)</a></p>
      <p class="note">The INT8 pane runs the exported QDQ file after reloading it (what you download is what ran). Its convolutions
        run on qplay's int8 kernels (the QDQ pattern lowered to integer convolutions, exact int32 sums, SIMD128).</p>`;
    this.chartBase = base;
    if (!rep.layers.some((l) => l.node === this.view.selected)) this.view.selected = worst[0]?.node ?? null;
    if (this.view.metric === 'sensitivity' && !rep.layers.some((l) => typeof l.sensitivity_sqnr_db === 'number')) this.view.metric = 'output';
    this.renderSqnr();
    this.renderLayer();
    this.$('.svg.size').innerHTML = pairBars({ title: 'Model file size', fp32: rep.fp32_bytes / 1e6, int8: rep.int8_bytes / 1e6, unit: 'MB',
      note: `INT8 is ${(rep.int8_bytes / rep.fp32_bytes).toFixed(2)}× the FP32 file (${(rep.weight_bits ?? 8) === 8 ? 'int8' : `${rep.weight_bits}-bit, stored ${rep.weight_storage},`} weights, int32 biases, Q/DQ nodes)` });
    this.renderLatency();
    this.showCommand();
  },

  /** The report of the user's own INT8 model: what it is, its agreement with FP32 and output SQNR
   * on the calibration set, size and this frame's latency, and the same measurement as a CLI command. */
  renderOwnReport(r) {
    const { name, bytes, comparison: c } = r.own;
    const mb = (b) => (b / 1e6).toFixed(2);
    const fp32Bytes = this.modelBytes?.byteLength ?? null;
    const sqnr = Object.entries(c.output_sqnr_db).map(([k, v]) => `${esc(k)} ${typeof v === 'number' && Number.isFinite(v) ? `${v.toFixed(1)} dB` : 'equal'}`).join(' · ');
    const cmd = ['qplay', 'compare', shellWord(this.modelPath ?? this.modelName ?? 'model'), shellWord(name), '--images', 'www/samples'].join(' ');
    this.$('.qreport').hidden = false;
    this.$('.qreport-body').innerHTML = `
      <p>Your INT8 model <code>${esc(name)}</code>, read with the FP32 model's profile${fp32Bytes ? ` · size: FP32 ${mb(fp32Bytes)} MB → ${mb(bytes)} MB (${(bytes / fp32Bytes).toFixed(2)}×)` : ''}</p>
      <p class="own-agreement">Agreement with FP32 on ${c.images} calibration images: mAP@0.5 <b>${c.map50 == null ? 'undefined (FP32 found nothing)' : c.map50.toFixed(3)}</b>
        (${c.candidate_detections} INT8 detections against ${c.reference_detections} FP32 ones as ground truth)</p>
      ${c.score_warning ? `<p class="warn score-warning">Warning: ${esc(c.score_warning)}.</p>` : ''}
      <p class="sqnr-line">Output SQNR vs FP32 (calibration images): ${sqnr}</p>
      <p class="note">qplay did not quantize this model, so there is no per-layer report and no fine-tuning: quantize with qplay for those.
        The same measurement from the command line (with your own images folder for --images):</p>
      <p><code class="command">${esc(cmd)}</code></p>
      <div class="charts"><div class="pairs">
        <figure class="chart" data-chart="latency"><div class="chart-h"><b class="grow">Latency (this frame)</b>${exportButtons('latency')}</div><div class="svg latency"></div></figure>
      </div></div>`;
    this.chartBase = fileStem(name);
    this.renderLatency();
  },

  /** The command "Copy settings" copies, shown under the button (it follows the settings): in
   * qplay's own quantization report only (a user's own INT8 model's report shows its compare
   * command, which the settings do not change). */
  showCommand() {
    const code = this.$('.qreport .command');
    const note = this.$('.qreport .command-note');
    if (!code || !note) return;
    const cmd = this.configCommand();
    code.textContent = cmd;
    note.textContent = / --calib calibration_images /.test(cmd)
      ? 'calibration_images: a folder with your calibration images (and the photos of www/samples when "calibrate with the sample photos" is ticked).' : '';
  },

  /** The report JSON to download: the quantization report plus where and how it ran (backend,
   * adapter, threads, this image's latency, the browser, qplay's version). */
  reportJson() {
    const r = this.int8;
    const b = this.backendInfo ?? { backend: 'cpu' };
    const res = this.result?.int8 ? this.result : null;
    return {
      ...r.report, quantize_seconds: r.seconds,
      model: { name: this.modelName, file: this.modelPath ?? null },
      environment: {
        qplay_version: this.info?.version ?? null, user_agent: navigator.userAgent,
        backend: b.backend, adapter: b.backend === 'webgpu' ? b.adapter ?? null : null, threads: this.threadsInUse?.count ?? 1,
      },
      latency_ms: res ? { image: this.image?.name ?? null, fp32: res.timings, int8: res.int8.timings } : null,
    };
  },

  /** Points the report link at the current report JSON (its latency changes with each frame). */
  updateReportLink() {
    // The report JSON (hundreds of kB with its histograms) is serialised when the link is about to
    // be used, not on every frame: live frames only mark it stale (serialising it per frame cost
    // 20 % of the frame rate and kept ~0.6 MB of blobs alive in the soak test).
    this.reportStale = true;
    const a = this.$('.qreport a.report-dl');
    if (!a || !this.int8) return;
    const refresh = () => {
      if (!this.reportStale && a.href === this.reportUrl) return;
      if (this.reportUrl) URL.revokeObjectURL(this.reportUrl);
      this.reportUrl = URL.createObjectURL(new Blob([JSON.stringify(this.reportJson(), null, 2)], { type: 'application/json' }));
      a.href = this.reportUrl;
      this.reportStale = false;
    };
    if (!a.dataset.lazy) {
      a.dataset.lazy = '1';
      for (const type of ['pointerdown', 'focus', 'click']) a.addEventListener(type, refresh);
      refresh();
    }
  },

  /** Before → after a "Keep FP32" re-run, on the same image: agreement with FP32. */
  showBeforeAfter(now) {
    const p = this.$('.qreport .before-after');
    const c = this.compare;
    if (!p || !c || c.modelId !== this.modelId || !c.agree || c.imageId !== this.image?.id || !now) return;
    const f = (a) => `${a.matched} of ${a.total} matched${a.matched ? `, mean IoU ${a.meanIou.toFixed(3)}` : ''}, ${a.missed} missed, ${a.extra} extra`;
    p.hidden = false;
    p.textContent = `Agreement on ${this.image.name}: ${f(c.agree)} → ${f(now)} (before → after keeping ${c.kept}).`;
  },

  /** The SQNR bars, sorted worst first by the chosen metric. */
  renderSqnr(focus = false) {
    const rep = this.int8?.report;
    const box = this.$('.scroll.sqnr');
    if (!rep || !box) return;
    const top = box.scrollTop;
    box.innerHTML = sqnrBars(rep.layers, { metric: this.view.metric, selected: this.view.selected });
    box.scrollTop = top;
    if (focus) box.querySelector(`g.bar[data-node="${CSS.escape(this.view.selected)}"]`)?.focus();
  },

  selectLayer(node, focus = false) {
    this.view.selected = node;
    this.renderSqnr(focus);
    this.renderLayer();
  },

  /** The selected layer: weight and activation histograms, per-channel scales. */
  renderLayer() {
    const rep = this.int8?.report;
    const l = rep?.layers.find((x) => x.node === this.view.selected);
    if (!l) return;
    const a = l.activation;
    const amax = Math.max(Math.abs(l.weight_range[0]), Math.abs(l.weight_range[1]));
    // The layer's own code range: −128..127 at 8 bits, −8..7 at 4.
    const bits = l.weight_bits ?? rep.weight_bits ?? 8;
    const [qlo, qhi] = [`−${2 ** (bits - 1)}`, 2 ** (bits - 1) - 1];
    this.$('.qreport .formula').textContent = `x̂ = (q − Z) · Δ, q = clamp(round(x / Δ) + Z, ${qlo}, ${qhi}): ${bits}-bit weights; Δ (scale) and Z (zero-point) per output channel; Z = 0 (symmetric).`;
    this.$('.layer-h').innerHTML = `<span>Layer <code title="${esc(l.node)}">${esc(l.node)}</code> (${esc(l.op)})</span>
      <span>output SQNR <b>${db(l.output_sqnr_db)} dB</b> · weight SQNR ${db(l.weight_sqnr_db)} dB${typeof l.sensitivity_sqnr_db === 'number' ? ` · sensitivity ${db(l.sensitivity_sqnr_db)} dB` : ''}
        · activation <code>${esc(truncate(a.tensor, 40))}</code> Δ ${esc(fmt(a.scale, 4))}, Z ${a.zero_point}, ${fmtPct(a.clipped_pct)} clipped</span>
      <button type="button" data-keep="${esc(l.node)}" title="keep this layer in FP32 and quantize again">Keep this layer FP32 and re-run</button>${bits8Button(l, rep.weight_bits ?? 8, ' and re-run')}`;
    this.$('.svg.weights').innerHTML = histogramChart(l.weight_histogram, {
      title: `weights: ${truncate(l.node, 46)}`, logY: this.view.logY,
      lines: [{ lo: -amax, hi: amax, color: '#0072B2', dash: '', chosen: true, short: '±max|w|',
        label: `±max|w| = ±${fmt(amax, 4)}: ${bits}-bit range, symmetric, no clipping` }],
      note: l.weight_scales > 1 ? `per channel: ${l.weight_scales} channels, each its own ±max|w| (table below)` : 'per tensor: one scale',
    });
    this.$('.svg.activations').innerHTML = histogramChart(a.histogram, {
      title: `input: ${truncate(a.tensor, 46)}`, logY: this.view.logY, lines: methodLines(a),
      note: `${rep.calibration_inputs} calibration images · observed [${fmt(a.observed[0], 4)}, ${fmt(a.observed[1], 4)}]`,
    });
    const scales = l.channel_scales ?? [];
    this.$('.scroll.channels').innerHTML = `<table class="channels"><thead><tr><th class="n">channel</th><th class="n">Δ (scale)</th><th class="n">Z (zero-point)</th><th>covers [${qlo}·Δ, ${qhi}·Δ]</th></tr></thead><tbody>
      ${scales.map((sc, c) => `<tr><td class="n">${scales.length > 1 ? c : 'all'}</td><td class="n">${esc(fmt(sc, 5))}</td><td class="n">0</td><td>[${esc(fmt(-(2 ** (bits - 1)) * sc, 4))}, ${esc(fmt(qhi * sc, 4))}]</td></tr>`).join('')}
      </tbody></table>`;
  },

  /** FP32 vs INT8 inference time on the current frame. */
  renderLatency() {
    const box = this.$('.svg.latency');
    if (!box || !this.int8) return;
    const r = this.result;
    this.updateReportLink();
    box.innerHTML = pairBars({ title: `Inference time, this frame (${r?.on === 'webgpu' ? 'WebGPU' : `wasm, ${threadsText(r?.backend?.threads ?? 1)}`})`, fp32: r?.int8 ? r.timings.inference : undefined,
      int8: r?.int8?.timings.inference, unit: 'ms', format: (v) => v.toFixed(1),
      note: 'one frame each; INT8 on the int8 kernels' });
  },

  exportChart(figure, kind) {
    const svg = figure?.querySelector('svg');
    if (!svg) return;
    const name = `${this.chartBase ?? 'model'}_${figure.dataset.chart}${figure.dataset.chart === 'sqnr' ? `_${this.view.metric}` : ''}`;
    exportChart(svg, name, kind).catch((e) => this.showError(`Export failed: ${e.message}`, 'export'));
  },
};

/** Per-frame agreement of INT8 with FP32: greedy matching at IoU ≥ 0.5, same class. */
export function agreementStats(fp, q) {
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
  return { matched: matches.length, total: fp.length, missed, extra, meanIou: mean(matches.map((m) => m[0])), meanScore: mean(matches.map((m) => m[1])), matches };
}

/** The agreement line: "Agreement: 1 of 1 FP32 boxes matched by INT8 (mean IoU …) · 0 missed · 0 extra". */
export function agreement(fp, q) {
  const { matches, missed, extra } = agreementStats(fp, q);
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  return `Agreement: ${matches.length} of ${fp.length} FP32 boxes matched by INT8` +
    (matches.length ? ` (mean IoU ${mean(matches.map((m) => m[0])).toFixed(3)}, mean score change ${mean(matches.map((m) => m[1])) >= 0 ? '+' : ''}${mean(matches.map((m) => m[1])).toFixed(3)})` : '') +
    ` · ${missed} missed · ${extra} extra`;
}

function exportButtons(what) {
  return `<span><button type="button" data-export="png" aria-label="download the ${what} chart as PNG">PNG</button>
    <button type="button" data-export="svg" aria-label="download the ${what} chart as SVG">SVG</button></span>`;
}
