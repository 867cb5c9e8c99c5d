// The model summary (inputs, outputs, op histogram, unsupported ops) and the profile editor.
import { esc, scoreText } from './util.js';
import { fileStem } from './model-source.js';

/** The profile's score threshold is the CLI's (`qplay detect`); this page shows what its Score threshold slider lets through. */
const scoreNote = (line) => (/^score threshold \d/.test(line) ? ' <span class="note">(<code>qplay detect</code>\'s; this page uses the Score threshold slider)</span>' : '');

/** Whether model bytes are a TFLite FlatBuffer (its `TFL3` file identifier at bytes 4–7). */
export function isTflite(bytes) {
  if (!bytes || bytes.byteLength < 8) return false;
  const b = new Uint8Array(bytes.buffer ?? bytes, bytes.byteOffset ?? 0, 8);
  return String.fromCharCode(...b.subarray(4, 8)) === 'TFL3';
}

/** What a loaded model computes in, as the core decides it (`summary.arithmetic`): `FP32`;
 * `full-integer` for a file whose ops are integer already (a full-integer TFLite model runs
 * TFLite's integer kernels, not a float graph); or `quantized` for an ONNX INT8 export (QDQ,
 * QOperator or dynamic quantization), whose layers run on quantized values. The last two have
 * no float layers for Quantize. */
export function modelTag(info) {
  const a = info?.summary?.arithmetic;
  return a === 'full-integer' || a === 'quantized' ? a : 'FP32';
}

/** A model of tag `tag` ([`modelTag`]) in words: `FP32`, `Full-integer model`, `Quantized model`. */
export function tagName(tag) {
  return { 'full-integer': 'Full-integer model', quantized: 'Quantized model' }[tag] ?? 'FP32';
}

/** The first pane's heading for a model of tag `tag`: `FP32`, or `Your … model`. */
export function paneName(tag) {
  return tag === 'FP32' ? 'FP32' : `Your ${tagName(tag).toLowerCase()}`;
}

/** A model's summary: producer, format (ONNX opset / TFLite version), size, unsupported ops, inputs and outputs, op histogram. */
export function summaryHtml(s) {
  const dims = (d) => `[${d.map((x) => (x === null ? '?' : x)).join(', ')}]`;
  const io = [...s.inputs.map((i) => ['input', i]), ...s.outputs.map((o) => ['output', o])]
    .map(([k, v]) => `<tr><td>${k}</td><td>${esc(v.name)}</td><td>${v.dtype}</td><td>${dims(v.shape)}</td></tr>`).join('');
  const unsupported = new Set(s.unsupported.map(([op]) => op));
  const ops = Object.entries(s.ops).map(([op, n]) => `<tr><td class="${unsupported.has(op) ? 'bad' : ''}">${esc(op)}${unsupported.has(op) ? ' (unsupported)' : ''}</td><td class="n">${n}</td></tr>`).join('');
  return `
      <p>${esc(s.producer || 'unknown producer')} · ${esc(s.format || `opset ${s.opset}`)} · ${s.nodes} nodes · ${s.parameters.toLocaleString('en')} parameters (${(s.parameter_bytes / 1e6).toFixed(2)} MB)</p>
      ${(s.notes || []).map((n) => `<p class="note">${esc(n)}</p>`).join('')}
      ${s.unsupported.length ? `<p class="bad">Unsupported: ${s.unsupported.map(([op, node]) => `${esc(op)} (node ${esc(node)})`).join(', ')}</p>` : '<p>Every op is supported.</p>'}
      <div class="table-wrap"><table><thead><tr><th></th><th>name</th><th>type</th><th>shape</th></tr></thead><tbody>${io}</tbody></table></div>
      <table class="ops"><thead><tr><th>op</th><th class="n">nodes</th></tr></thead><tbody>${ops}</tbody></table>
      ${quantizedHtml(s.quantized ?? [])}`;
}

/** An integer model's own quantization (a full-integer TFLite file's scales and zero points), layer by layer. */
function quantizedHtml(q) {
  if (!q.length) return '';
  const e = (v) => esc(Number(v).toExponential(3));
  const rows = q.map((t) => `<tr><td title="${esc(t.tensor)}">${esc(t.tensor.length > 48 ? `…${t.tensor.slice(-47)}` : t.tensor)}</td><td>${esc(t.op.replace(/^qplay\.tfl\./, ''))}</td>
    <td class="n">${e(t.scale)}</td><td class="n">${t.zero_point}</td>
    <td class="n">${t.weight_scale_range ? (t.weight_scales > 1 ? `${t.weight_scales}: ${e(t.weight_scale_range[0])} … ${e(t.weight_scale_range[1])}` : e(t.weight_scale_range[0])) : ''}</td></tr>`).join('');
  return `<details class="file-quant"><summary>The file's quantization: ${q.length} layers with their own scale and zero point</summary>
    <p class="note">x̂ = (q − Z) · Δ for each layer's output, as the file sets it (TFLite's integer kernels requantize to it); weights per output channel where the file has one scale per channel.</p>
    <div class="table-wrap"><table><thead><tr><th>output tensor</th><th>op</th><th class="n">Δ (scale)</th><th class="n">Z</th><th class="n">weight scales</th></tr></thead><tbody>${rows}</tbody></table></div></details>`;
}

/** Methods of <qplay-detector> (assigned to its prototype). */
export const infoMethods = {
  /** The model summary and profile of the model in use. */
  renderInfo(info) {
    this.$('.summary').innerHTML = info ? summaryHtml(info.summary) : '';
    if (!info) return;
    if (isTflite(this.modelBytes)) {
      const p = document.createElement('p');
      p.className = 'to-onnx';
      const integer = Object.keys(info.summary.ops).some((op) => op.startsWith('qplay.tfl.'));
      const what = integer
        ? 'this full-integer model for onnxruntime, Netron or qplay\'s CLI'
        : 'the graph qplay runs this TFLite file as, for onnxruntime, Netron or qplay\'s CLI';
      const form = integer
        ? ` <label>in <select name="onnx-form" title="QDQ: int8 weights, float ops between QuantizeLinear / DequantizeLinear, which onnxruntime fuses into its int8 kernels; each layer within a step of TFLite's rounding, drifting with depth. Integer: TFLite's fixed-point arithmetic in ONNX integer ops; LiteRT's codes in every value, a larger graph that runs slower."><option value="qdq">QDQ form (fast; within a step or two of TFLite)</option><option value="integer">integer form (TFLite's arithmetic exactly)</option></select></label>`
        : '';
      p.innerHTML = `<button type="button" name="to-onnx">Download as ONNX</button>${form} <span class="note">${what}</span>`;
      p.querySelector('button').addEventListener('click', () => this.downloadOnnx(p));
      this.$('.summary').prepend(p);
    }
    const assumed = this.$('ul.assumed');
    if (info.profile) {
      this.$('textarea[name=profile-json]').value = JSON.stringify(info.profile, null, 2);
      assumed.innerHTML = info.assumed?.length
        ? `<li><b>No profile was given; qplay assumed:</b></li>${info.assumed.map((a) => `<li>${esc(a)}${scoreNote(a)}</li>`).join('')}`
        : `<li>Decoder <b>${esc(info.profile.decoder.type)}</b>, input ${info.profile.size.join('×')}, from the profile file.</li>`;
      if (info.assumed?.length) this.$('details.profile-edit').open = true;
    }
    const alts = info.alternatives ?? [];
    const box = this.$('.alternatives');
    box.hidden = !alts.length;
    box.innerHTML = alts.length ? `<p><b>The outputs also fit another reading</b> — check the boxes, and pick the one that is right:</p><ul>${alts.map((a, i) =>
      `<li>${esc(a.reading)} <span class="alt-preview note" data-alt-preview="${i}"></span> <button type="button" data-alt="${i}">Use this reading</button></li>`).join('')}</ul>` : '';
    this.previewed = null;
  },

  /** An alternative's profile with the input settings in use (the pixel scaling may have been probed since). */
  alternativeProfile(i) {
    const a = this.info?.alternatives?.[i];
    if (!a) return null;
    const p = this.info.profile;
    return { ...a.profile, mean: p.mean, std: p.std, color: p.color, resize: p.resize, score_threshold: p.score_threshold };
  },

  /** Each alternative reading's detections on the photo shown, once per model: "on this photo: 3 boxes (person 91 %, …)". */
  async previewAlternatives() {
    const alts = this.info?.alternatives ?? [];
    const image = this.image;
    if (!alts.length || !image || this.previewed === this.modelId) return;
    this.previewed = this.modelId;
    const modelId = this.modelId;
    for (let i = 0; i < alts.length; i++) {
      const span = this.$(`[data-alt-preview="${i}"]`);
      try {
        const r = await this.engine.preview(JSON.stringify(this.alternativeProfile(i)), image.data);
        if (modelId !== this.modelId || !span) return;
        const top = r.detections.slice(0, 3).map((d) => `${d.label} ${scoreText(d.score)}`).join(', ');
        const odd = r.detections.some((d) => d.score > 1) ? ' — scores above 1 are not probabilities: this reading is unlikely' : '';
        span.textContent = `— on ${image.name}: ${r.detections.length} box${r.detections.length === 1 ? '' : 'es'}${top ? ` (${top}${r.detections.length > 3 ? ', …' : ''})` : ''}${odd}`;
      } catch (e) {
        if (span) span.textContent = `— does not decode: ${e.message}`;
      }
    }
  },

  /** "Download as ONNX": the worker writes the model in use as ONNX and runs it back (the export
   * gate); the file downloads and the note says what was checked. */
  async downloadOnnx(p) {
    const [btn, note] = [p.querySelector('button'), p.querySelector('.note')];
    const [modelId, name] = [this.modelId, this.modelName];
    const form = p.querySelector('select[name=onnx-form]')?.value ?? 'qdq';
    const file = `${fileStem(name)}${form === 'integer' ? '.integer' : ''}.onnx`;
    btn.disabled = true;
    note.classList.remove('failed');
    note.textContent = 'writing it as ONNX and running it back…';
    try {
      const r = await this.engine.toOnnx(form);
      if (modelId !== this.modelId) return;
      const url = URL.createObjectURL(new Blob([r.bytes], { type: 'application/octet-stream' }));
      const a = Object.assign(document.createElement('a'), { href: url, download: file });
      p.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      note.textContent = `${file} (${(r.bytes.byteLength / 1e6).toFixed(2)} MB): ${r.check}.`;
    } catch (e) {
      if (modelId !== this.modelId) return;
      // Said here, beside the button, not in the page's error line: that line keeps what it says
      // about the model (a detection that failed, for one).
      note.textContent = `${file} was not written: ${e.message}`;
      note.classList.add('failed');
    } finally { btn.disabled = false; }
  },

  /** "Use this reading": the alternative's profile goes into the editor and is applied. */
  useAlternative(i) {
    const p = this.alternativeProfile(i);
    if (!p) return;
    this.$('textarea[name=profile-json]').value = JSON.stringify(p, null, 2);
    this.applyProfileText();
  },
};
