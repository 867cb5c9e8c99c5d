// <qplay-explorer>: an interactive explorer of affine quantization.
//
// Attributes (all optional, they set the initial state):
//   min, max, value        the float range and the value to follow (numbers)
//   bits                   2..8 or 16
//   signed, symmetric, restricted   "true" / "false"
//   decimals               Δ rounding for the "by hand" column (default 4)
//   sample                 uniform | gaussian | outliers | relu (the tensor panel)
//   preset                 "seed" starts on the worked seed example
//   hide                   control names to hide, separated by spaces or commas (HIDEABLE below):
//                          min max bits signed symmetric restricted value decimals seed sample logy tensor
//   loading                "lazy" (default): the wasm module loads when the element comes within
//                          200px of the viewport (lazy.js); "eager": at once
// Events (bubbling, composed): `qplay-ready`, `qplay-change` (detail: the state).
// `ready`: a promise of the element once it has started and shows its numbers; `start()` starts it now.
// Property `settings`: the state as attribute values ({min, max, value, bits, signed, …, sample}).
// Every number comes from the wasm crate (explain, analyzeTensor, sampleTensor).
import { fmt, loadWasm } from '../qplay.js';
import { METHOD_COLORS, METHOD_LEGEND, METHOD_NAMES } from '../options.js';
import { deferred, startWhenNear } from './lazy.js';

const LEGEND = METHOD_LEGEND;
const MODEL_URL = new URL('../models/person_ssdlite.onnx', import.meta.url).href;
const WEIGHTS = {
  'w:expand': { label: 'real weights: person detector, 1×1 conv (384×64)', name: 'FeatureExtractor/MobilenetV2/expanded_conv_9/expand/Conv2D_weights_fused_bn' },
  'w:depthwise': { label: 'real weights: person detector, depthwise 3×3 (384 ch)', name: 'FeatureExtractor/MobilenetV2/expanded_conv_9/depthwise/depthwise_weights_fused_bn' },
};
/** Controls the `hide` attribute can hide: name → what is hidden (in the shadow root). */
export const HIDEABLE = {
  min: 'label:has(> [name=min])', max: 'label:has(> [name=max])', bits: 'label:has(> [name=bits])',
  signed: 'label:has(> [name=signed])', symmetric: 'label:has(> [name=symmetric])', restricted: 'label:has(> [name=restricted])',
  value: 'label:has(> [name=value])', decimals: 'label:has(> [name=decimals])', seed: 'button[name=seed]',
  sample: 'label:has(> [name=sample])', logy: 'label:has(> [name=logy])', tensor: '.tensor-h, .tensor',
};
const SEED = { min: -2, max: 2, bits: 8, signed: true, symmetric: false, restricted: false, value: 1.3, decimals: 4 };

const TEMPLATE = document.createElement('template');
TEMPLATE.innerHTML = `
<style>
  :host { display: block; container-type: inline-size; --qp-accent: #0072B2; --qp-accent2: #D55E00; --qp-card: var(--card, #f4f6f8);
          --qp-border: var(--border, #d5dbe1); --qp-muted: var(--muted, #5b6570); --qp-err: var(--err, #b3261e);
          font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: inherit; }
  * { box-sizing: border-box; }
  .grid { display: grid; grid-template-columns: minmax(280px, 340px) minmax(0, 1fr); gap: 16px; }
  /* Grid items may shrink below their content's width (the methods table, the selects). */
  .grid > * { min-width: 0; }
  /* The element's own width, not the viewport's: an embedded explorer often sits in a narrow column. */
  @container (max-width: 960px) { .grid { grid-template-columns: minmax(0, 1fr); } .tensor-controls { max-width: 560px; } }
  @container (min-width: 600px) and (max-width: 960px) {
    .controls { display: grid; grid-template-columns: 1fr 1fr; column-gap: 12px; align-items: start; }
    .controls > button { grid-column: 1 / -1; justify-self: start; margin-bottom: 12px; }
  }
  fieldset { border: 1px solid var(--qp-border); border-radius: 8px; padding: 10px 12px; margin: 0 0 12px; }
  legend { font-weight: 600; padding: 0 4px; }
  label { display: flex; align-items: center; justify-content: space-between; gap: 8px; margin: 6px 0; }
  label.check { justify-content: flex-start; }
  label > input[type=text], label > select { flex: 0 1 auto; min-width: 0; }
  select[name=sample] { width: 14em; }
  input[type=text], select { width: 9em; font: inherit; padding: 3px 6px; border: 1px solid var(--qp-border); border-radius: 4px; background: transparent; color: inherit; }
  button { font: inherit; padding: 4px 10px; border: 1px solid var(--qp-border); border-radius: 6px; background: var(--qp-card); color: inherit; cursor: pointer; }
  button:focus-visible, input:focus-visible, select:focus-visible { outline: 2px solid var(--qp-accent); outline-offset: 1px; }
  .cards { display: grid; grid-template-columns: repeat(5, 1fr); gap: 8px; }
  .card { background: var(--qp-card); border-radius: 8px; padding: 8px 10px; min-width: 0; }
  .card .k { color: var(--qp-muted); font-size: 12px; }
  .card output { display: block; font: 600 18px/1.3 ui-monospace, "DejaVu Sans Mono", monospace; overflow-wrap: anywhere; }
  @container (min-width: 961px) and (max-width: 1120px) { .card output { font-size: 15px; } }
  @container (max-width: 560px) { .cards { grid-template-columns: repeat(auto-fill, minmax(140px, 1fr)); } }
  .error { color: var(--qp-err); border: 1px solid var(--qp-err); border-radius: 6px; padding: 6px 10px; margin: 0 0 10px; }
  .error[hidden] { display: none; }
  [hidden] { display: none !important; }
  .dim { opacity: .35; }
  svg { display: block; width: 100%; height: auto; }
  svg text { fill: currentColor; font: 11px system-ui, sans-serif; }
  .steps { font: 12.5px/1.5 ui-monospace, "DejaVu Sans Mono", monospace; padding-left: 0; list-style: none; margin: 6px 0; }
  /* Before the wasm module has loaded (lazy start): room for the numbers, so the page does not jump when they come. */
  .card output:empty::before { content: "\\00a0"; }
  .steps:empty { min-height: 15em; }
  table.methods:has(tbody:empty) { margin-bottom: 180px; }
  .steps li { margin: 2px 0; overflow-wrap: anywhere; }
  .cmp { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
  .cmp h4 { margin: 6px 0 2px; font-size: 13px; }
  .note { color: var(--qp-muted); font-size: 13px; }
  .seed-note { background: var(--qp-card); border-left: 3px solid var(--qp-accent2); padding: 6px 10px; border-radius: 4px; }
  .seed-note[hidden] { display: none; }
  table { border-collapse: collapse; width: 100%; font-size: 13px; }
  th, td { text-align: right; padding: 3px 6px; border-bottom: 1px solid var(--qp-border); white-space: nowrap; }
  th:first-child, td:first-child { text-align: left; }
  /* Narrow (a docs column, a phone, a 420 px iframe): each method is a block, its name and "Use"
     on the first line, the figures below with their labels, so nothing runs off the side. */
  @container (max-width: 600px) {
    table.methods thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
    table.methods, table.methods tbody { display: block; }
    table.methods tr { display: grid; grid-template-columns: repeat(auto-fill, minmax(92px, 1fr)); gap: 2px 10px; padding: 6px 0; border-bottom: 1px solid var(--qp-border); }
    table.methods td { border: 0; padding: 0; text-align: left; white-space: normal; min-width: 0; }
    table.methods td:first-child { grid-column: 1 / -1; grid-row: 1; align-self: center; font-weight: 600; padding-right: 64px; }
    table.methods td:last-child:not(:first-child) { grid-column: 1 / -1; grid-row: 1; justify-self: end; }
    table.methods td[data-label=range] { grid-column: span 2; }
    table.methods td[data-label]::before { content: attr(data-label); display: block; color: var(--qp-muted); font-size: 11.5px; }
  }
  .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
  h3 { font-size: 15px; margin: 14px 0 6px; }
  code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
  @media (prefers-reduced-motion: no-preference) { .marker { transition: transform .15s ease-out; } }
</style>
<div class="grid">
  <form part="controls" class="controls" autocomplete="off">
    <fieldset>
      <legend>Range and type</legend>
      <label>min <input type="text" inputmode="decimal" name="min" aria-label="range minimum"></label>
      <label>max <input type="text" inputmode="decimal" name="max" aria-label="range maximum"></label>
      <label>bits <select name="bits" aria-label="bit width">
        ${[2, 3, 4, 5, 6, 7, 8, 16].map((b) => `<option value="${b}">${b}</option>`).join('')}
      </select></label>
      <label class="check"><input type="checkbox" name="signed"> signed (int) — off: unsigned (uint)</label>
      <label class="check"><input type="checkbox" name="symmetric"> symmetric (±max|x|)</label>
      <label class="check"><input type="checkbox" name="restricted"> restricted range (−127..127)</label>
    </fieldset>
    <fieldset>
      <legend>Follow one value</legend>
      <label>x <input type="text" inputmode="decimal" name="value" aria-label="value to quantize"></label>
      <label>“by hand”: Δ rounded to <select name="decimals" aria-label="decimals for by-hand rounding">
        ${[1, 2, 3, 4, 5, 6].map((d) => `<option value="${d}">${d} decimals</option>`).join('')}
      </select></label>
    </fieldset>
    <button type="button" name="seed">Seed example: [−2, 2] → int8, x = 1.3</button>
  </form>
  <div class="out">
    <div class="error" role="alert" hidden></div>
    <div class="cards" part="values">
      <div class="card"><div class="k">scale Δ</div><output data-k="scale"></output></div>
      <div class="card"><div class="k">zero-point Z</div><output data-k="zero_point"></output></div>
      <div class="card"><div class="k">q = quantize(x)</div><output data-k="q"></output></div>
      <div class="card"><div class="k">x̂ = dequantize(q)</div><output data-k="dequantized"></output></div>
      <div class="card"><div class="k">error x̂ − x</div><output data-k="error"></output></div>
    </div>
    <svg class="numberline" part="chart" viewBox="0 0 760 120" role="img" aria-label="number line with the quantization grid"></svg>
    <div class="seed-note" hidden></div>
    <div class="cmp">
      <div><h4>Exact Δ (what qplay and ONNX compute)</h4><ol class="steps exact"></ol></div>
      <div><h4 class="textbook-h">By hand: Δ rounded first</h4><ol class="steps textbook"></ol></div>
    </div>
  </div>
</div>
<h3 class="tensor-h">A tensor: where would each calibration method clip?</h3>
<div class="grid tensor">
  <form class="tensor-controls" autocomplete="off">
    <fieldset>
      <legend>Tensor</legend>
      <label>kind <select name="sample" aria-label="sample tensor">
        <option value="gaussian">gaussian</option><option value="uniform">uniform [−1, 1]</option>
        <option value="outliers">gaussian + 0.5 % outliers</option><option value="relu">ReLU output</option>
        ${Object.entries(WEIGHTS).map(([k, w]) => `<option value="${k}">${w.label}</option>`).join('')}
      </select></label>
      <label class="check"><input type="checkbox" name="logy"> log-scale counts</label>
      <p class="note">Uses the bits / signed / symmetric settings above. “Use” copies a method's range into min/max.</p>
    </fieldset>
  </form>
  <div>
    <svg class="hist" part="chart" viewBox="0 0 760 220" role="img" aria-label="histogram with clipping ranges"></svg>
    <table class="methods"><thead><tr><th>method</th><th>range</th><th>Δ</th><th>Z</th><th>clipped</th><th>MSE</th><th>SQNR dB</th><th>cosine</th><th></th></tr></thead><tbody></tbody></table>
  </div>
</div>`;

function parseBool(v, dflt) {
  if (v === null || v === undefined) return dflt;
  return !(v === 'false' || v === '0' || v === 'no');
}

export class QplayExplorer extends HTMLElement {
  static observedAttributes = ['min', 'max', 'bits', 'signed', 'symmetric', 'restricted', 'value', 'decimals', 'sample', 'logy', 'preset', 'hide'];

  constructor() {
    super();
    this.attachShadow({ mode: 'open' }).appendChild(TEMPLATE.content.cloneNode(true));
    this.state = { ...SEED, sample: 'gaussian', logy: false };
    this.text = { min: '-2', max: '2', value: '1.3' };
    this.wasm = null;
    // Resolves (to the element) once it has started and the wasm module is loaded.
    this.whenReady = deferred();
    this.ready = this.whenReady.promise;
  }

  /** Loads the wasm module and shows the numbers; called when the element comes near the viewport (lazy.js), or by hand. */
  start() {
    if (this.started) return this.ready;
    this.started = true;
    this.stopWatching?.();
    loadWasm().then((w) => {
      this.wasm = w;
      this.render();
      this.dispatchEvent(new CustomEvent('qplay-ready', { bubbles: true, composed: true }));
      this.whenReady.resolve(this);
    }, this.whenReady.reject);
    return this.ready;
  }

  attributeChangedCallback(name, _old, v) {
    if (name === 'preset') { if (v === 'seed') this.applySeed(); return; }
    if (name === 'hide') { this.applyHide(v); return; }
    if (['min', 'max', 'value'].includes(name)) { this.text[name] = v ?? ''; }
    else if (['signed', 'symmetric', 'restricted'].includes(name)) this.state[name] = parseBool(v, name === 'signed');
    else if (name === 'bits' || name === 'decimals') this.state[name] = Number(v);
    else if (name === 'sample') this.state.sample = v;
    else if (name === 'logy') this.state.logy = parseBool(v, false);
    this.syncForm();
    this.render();
  }

  connectedCallback() {
    if (!this.started) this.stopWatching = startWhenNear(this, () => this.start(), this.getAttribute('loading') === 'eager');
    if (this.wired) return;
    this.wired = true;
    const root = this.shadowRoot;
    this.watchWidth();
    this.syncForm();
    root.querySelector('.controls').addEventListener('input', (e) => this.onInput(e.target));
    root.querySelector('.tensor-controls').addEventListener('input', (e) => this.onInput(e.target));
    for (const f of root.querySelectorAll('form')) f.addEventListener('submit', (e) => e.preventDefault());
    root.querySelector('button[name=seed]').addEventListener('click', () => this.applySeed());
    root.querySelector('.methods').addEventListener('click', (e) => {
      const b = e.target.closest('button[data-lo]');
      if (!b) return;
      this.text.min = b.dataset.lo; this.text.max = b.dataset.hi;
      this.showSeedNote = false;
      this.syncForm(); this.render();
    });
  }

  disconnectedCallback() {
    this.stopWatching?.();
    this.weightWorker?.terminate();
    this.weightWorker = null;
    this.pendingWeights?.clear();
  }

  /** Redraws the charts when the element's width changes (they are drawn at their own width). */
  watchWidth() {
    if (typeof ResizeObserver === 'undefined') return;
    let last = 0;
    new ResizeObserver(() => {
      const w = chartWidth(this.shadowRoot.querySelector('.numberline'));
      if (w === last) return;
      last = w;
      // Before the wasm module loads, the empty charts already take the height they will have.
      this.shadowRoot.querySelector('.numberline').setAttribute('viewBox', `0 0 ${w} 120`);
      this.shadowRoot.querySelector('.hist').setAttribute('viewBox', `0 0 ${w} ${histHeight(w)}`);
      if (this.wasm) { this.drawNumberLine(this.exact); this.renderTensor(); }
    }).observe(this);
  }

  /** Hides the named controls (HIDEABLE); unknown names are ignored. */
  applyHide(v) {
    const names = new Set((v ?? '').split(/[\s,]+/).filter(Boolean));
    for (const [name, sel] of Object.entries(HIDEABLE)) {
      for (const el of this.shadowRoot.querySelectorAll(sel)) el.hidden = names.has(name);
    }
  }

  /** The current settings, as the values the attributes of the same names take. */
  get settings() {
    const s = this.state;
    return { min: this.text.min, max: this.text.max, value: this.text.value, bits: s.bits, signed: s.signed,
      symmetric: s.symmetric, restricted: s.restricted, decimals: s.decimals, sample: s.sample, logy: s.logy };
  }

  applySeed() {
    Object.assign(this.state, SEED);
    this.text = { min: '-2', max: '2', value: '1.3' };
    this.showSeedNote = true;
    this.syncForm();
    this.render();
  }

  onInput(el) {
    const n = el.name;
    if (['min', 'max', 'value'].includes(n)) this.text[n] = el.value;
    else if (el.type === 'checkbox') this.state[n] = el.checked;
    else if (n === 'bits' || n === 'decimals') this.state[n] = Number(el.value);
    else if (n === 'sample') this.state.sample = el.value;
    if (n !== 'sample' && n !== 'logy') this.showSeedNote = false;
    this.render();
  }

  syncForm() {
    const f = this.shadowRoot.querySelector('.controls');
    const t = this.shadowRoot.querySelector('.tensor-controls');
    for (const k of ['min', 'max', 'value']) f.elements[k].value = this.text[k];
    f.elements.bits.value = String(this.state.bits);
    f.elements.decimals.value = String(this.state.decimals);
    for (const k of ['signed', 'symmetric', 'restricted']) f.elements[k].checked = this.state[k];
    f.elements.restricted.disabled = !this.state.signed;
    t.elements.sample.value = this.state.sample;
    t.elements.logy.checked = this.state.logy;
  }

  /** Parses a typed number; returns [value, error]. */
  num(name) {
    const s = (this.text[name] ?? '').trim().replace('−', '-');
    if (s === '') return [NaN, `${name} is empty: type a number such as ${name === 'value' ? '1.3' : name === 'min' ? '-2' : '2'}`];
    const v = Number(s);
    if (Number.isNaN(v) && !/^nan$/i.test(s)) return [NaN, `${name} “${this.text[name]}” is not a number: type a number such as -2 or 0.5`];
    return [v, null];
  }

  render() {
    if (!this.wasm) return;
    const root = this.shadowRoot;
    const s = this.state;
    root.querySelector('.controls').elements.restricted.disabled = !s.signed;
    const err = root.querySelector('.error');
    const cards = root.querySelector('.cards');
    const parsed = ['min', 'max', 'value'].map((k) => this.num(k));
    const bad = parsed.find(([, e]) => e);
    let exact = null;
    let textbook = null;
    let message = bad ? bad[1] : null;
    if (!message) {
      const req = { min: parsed[0][0], max: parsed[1][0], value: parsed[2][0], bits: s.bits, signed: s.signed,
        symmetric: s.symmetric, restricted: s.restricted && s.signed, scale_decimals: null };
      try {
        exact = this.wasm.explain(req);
        textbook = this.wasm.explain({ ...req, scale_decimals: s.decimals });
      } catch (e) {
        message = e.message;
        if (exact && !textbook) textbook = null;
      }
    }
    err.hidden = !message;
    err.textContent = message ? `Cannot quantize: ${message}` : '';
    cards.classList.toggle('dim', !exact);
    for (const o of cards.querySelectorAll('output')) {
      const k = o.dataset.k;
      o.textContent = exact ? (k === 'scale' ? fmt(exact.scale, 8) : k === 'zero_point' || k === 'q' ? String(exact[k]) : fmt(exact[k], 7)) : '—';
      o.dataset.value = exact ? String(exact[k]) : '';
    }
    root.querySelector('.steps.exact').innerHTML = exact ? exact.steps.map((t) => `<li>${esc(t)}</li>`).join('') : '';
    root.querySelector('.textbook-h').textContent = `By hand: Δ rounded to ${s.decimals} decimals first`;
    root.querySelector('.steps.textbook').innerHTML = textbook ? textbook.steps.map((t) => `<li>${esc(t)}</li>`).join('') : '';
    const note = root.querySelector('.seed-note');
    note.hidden = !(this.showSeedNote && exact && textbook);
    if (!note.hidden) {
      note.innerHTML = `<b>The seed example.</b> The source text quantizes [−2, 2] to int8 and reports Δ ≈ 0.0157, Z = −1,
        q(1.3) = 82, x̂ ≈ 1.3031. Those numbers come from rounding Δ to 0.0157 <i>before</i> computing Z (right column: Z = ${textbook.zero_point},
        q = ${textbook.q}, x̂ = ${fmt(textbook.dequantized)}). With exact arithmetic Δ = 4/255, −min/Δ = 127.5 exactly, so
        Z = round_half_even(−128 + 127.5) = ${exact.zero_point}, q(1.3) = ${exact.q} and x̂ ≈ ${fmt(exact.dequantized, 6)} (left column).
        Its formula for Z also has a sign slip: it writes “− min_int” but computes “+ min_int”; the correct form is Z = qmin − min/Δ.`;
    }
    this.exact = exact;
    this.drawNumberLine(exact);
    this.renderTensor();
    this.dispatchEvent(new CustomEvent('qplay-change', { bubbles: true, composed: true, detail: { ...s, ...this.text, result: exact } }));
  }

  drawNumberLine(e) {
    const svg = this.shadowRoot.querySelector('.numberline');
    if (!e) { svg.innerHTML = ''; return; }
    // Drawn at the chart's own width (760 at most), so its 11px labels stay 11px in a narrow column.
    const W = chartWidth(svg), L = 30, R = W - 30, Y = 58;
    svg.setAttribute('viewBox', `0 0 ${W} 120`);
    const repLo = (e.qmin - e.zero_point) * e.scale, repHi = (e.qmax - e.zero_point) * e.scale;
    const [v] = this.num('value');
    let lo = Math.min(repLo, v, e.range[0]), hi = Math.max(repHi, v, e.range[1]);
    const pad = (hi - lo) * 0.04 || 1; lo -= pad; hi += pad;
    const X = (x) => L + ((x - lo) / (hi - lo)) * (R - L);
    const parts = [];
    parts.push(`<rect x="${X(repLo)}" y="${Y - 14}" width="${Math.max(1, X(repHi) - X(repLo))}" height="28" fill="${METHOD_COLORS.minmax}" opacity="0.08"/>`);
    parts.push(`<line x1="${L}" y1="${Y}" x2="${R}" y2="${Y}" stroke="currentColor" stroke-width="1"/>`);
    if (e.grid.length) {
      const every = Math.max(1, Math.ceil(e.grid.length / Math.floor((R - L) / 5)));
      e.grid.forEach((g, i) => { if (i % every === 0 || i === e.grid.length - 1) parts.push(`<line x1="${X(g)}" y1="${Y - 6}" x2="${X(g)}" y2="${Y + 6}" stroke="currentColor" stroke-width="0.6" opacity="0.55"/>`); });
    }
    const tick = (x, label, anchor, y = Y + 28) => parts.push(`<text x="${X(x)}" y="${y}" text-anchor="${anchor}">${esc(label)}</text>`);
    const loLabel = `qmin=${e.qmin} → ${fmt(repLo, 4)}`, hiLabel = `qmax=${e.qmax} → ${fmt(repHi, 4)}`;
    // In a narrow chart the two end labels would overlap: the qmax one then goes a line lower.
    const crowded = X(repLo) + 6.5 * (loLabel.length + hiLabel.length) + 10 > X(repHi);
    tick(repLo, loLabel, 'start');
    tick(repHi, hiLabel, 'end', crowded ? Y + 42 : Y + 28);
    if (!crowded && X(0) - X(repLo) > 110 && X(repHi) - X(0) > 110) tick(0, `Z=${e.zero_point} → 0`, 'middle');
    const xv = X(v), xh = X(e.dequantized);
    parts.push(`<path d="M${xv},${Y - 22} Q${(xv + xh) / 2},${Y - 44} ${xh},${Y - 22}" fill="none" stroke="${METHOD_COLORS.entropy}" stroke-width="1.5" stroke-dasharray="4 3" marker-end="url(#arr)"/>`);
    parts.push(`<circle class="marker" cx="${xv}" cy="${Y}" r="5" fill="${METHOD_COLORS.minmax}"/>`);
    parts.push(`<rect class="marker" x="${xh - 5}" y="${Y - 5}" width="10" height="10" transform="rotate(45 ${xh} ${Y})" fill="none" stroke="${METHOD_COLORS.entropy}" stroke-width="2"/>`);
    parts.push(`<text x="${xv}" y="${Y - 26}" text-anchor="${xv > W / 2 ? 'end' : 'start'}" fill="${METHOD_COLORS.minmax}">x = ${esc(fmt(v, 6))}</text>`);
    parts.push(`<text x="${xh}" y="${crowded ? Y + 58 : Y + 46}" text-anchor="${xh < L + 80 ? 'start' : xh > R - 80 ? 'end' : 'middle'}">x̂ = ${esc(fmt(e.dequantized, 6))} (q = ${e.q}${e.clamped ? ', clamped' : ''})</text>`);
    svg.innerHTML = `<defs><marker id="arr" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="${METHOD_COLORS.entropy}"/></marker></defs>${parts.join('')}`;
  }

  /** Extracts one weight tensor of the person detector in a worker (weights-worker.js), so that
   * parsing the model never stalls the page; the worker fetches the file once. */
  async loadWeight(key) {
    this.pendingWeights ??= new Set();
    if (this.pendingWeights.has(key)) return; // renders while it loads ask again: one request
    this.pendingWeights.add(key);
    try {
      (this.weights ??= {})[key] = await this.weightFromWorker(MODEL_URL, WEIGHTS[key].name);
    } catch (e) {
      this.shadowRoot.querySelector('.methods tbody').innerHTML = `<tr><td colspan="9">Could not load the model weights: ${esc(e.message)}</td></tr>`;
      return;
    } finally {
      this.pendingWeights.delete(key);
    }
    this.render();
  }

  weightFromWorker(url, name) {
    this.weightWorker ??= new Worker(new URL('../weights-worker.js', import.meta.url), { type: 'module' });
    const w = this.weightWorker;
    const id = (this.weightSeq = (this.weightSeq ?? 0) + 1);
    return new Promise((resolve, reject) => {
      const done = () => { w.removeEventListener('message', onMessage); w.removeEventListener('error', onError); };
      const onMessage = ({ data }) => {
        if (data.id !== id) return;
        done();
        if (data.ok) resolve(data.data); else reject(Object.assign(new Error(data.error), { code: data.code }));
      };
      const onError = (e) => { done(); reject(new Error(`the weight loader failed: ${e.message ?? 'could not start'}`)); };
      w.addEventListener('message', onMessage);
      w.addEventListener('error', onError);
      w.postMessage({ id, url, name });
    });
  }

  renderTensor() {
    const s = this.state;
    const svg = this.shadowRoot.querySelector('.hist');
    const tbody = this.shadowRoot.querySelector('.methods tbody');
    let a;
    try {
      const key = s.sample;
      if (this.sampleKey !== key) {
        if (WEIGHTS[key]) {
          if (!this.weights?.[key]) { this.loadWeight(key); svg.innerHTML = '<text x="40" y="100">loading the model weights…</text>'; tbody.innerHTML = ''; return; }
          this.sample = this.weights[key];
        } else {
          this.sample = this.wasm.sampleTensor(key, 4096, 42);
        }
        this.sampleKey = key;
      }
      a = this.wasm.analyzeTensor(this.sample, s.bits, s.signed, s.symmetric, s.restricted && s.signed, 80);
    } catch (e) {
      svg.innerHTML = ''; tbody.innerHTML = `<tr><td colspan="9">${esc(e.message)}</td></tr>`;
      return;
    }
    const W = chartWidth(svg), L = 40, R = W - 20, T = 10, B = 170;
    const { step, perRow } = legendLayout(W);
    svg.setAttribute('viewBox', `0 0 ${W} ${histHeight(W, a.methods.length)}`);
    const h = a.histogram;
    const lo = Math.min(h.lo, ...a.methods.map((m) => m.lo)), hi = Math.max(h.hi, ...a.methods.map((m) => m.hi));
    const X = (x) => L + ((x - lo) / (hi - lo || 1)) * (R - L);
    const ymax = Math.max(...h.counts);
    const Yv = (c) => (s.logy ? (c > 0 ? Math.log10(c + 1) / Math.log10(ymax + 1) : 0) : c / ymax);
    const bw = (h.hi - h.lo) / h.counts.length;
    const parts = [];
    h.counts.forEach((c, i) => {
      if (!c) return;
      const x0 = X(h.lo + i * bw), x1 = X(h.lo + (i + 1) * bw), y = B - Yv(c) * (B - T);
      parts.push(`<rect x="${x0}" y="${y}" width="${Math.max(0.5, x1 - x0 - 0.5)}" height="${B - y}" fill="currentColor" opacity="0.35"/>`);
    });
    parts.push(`<line x1="${L}" y1="${B}" x2="${R}" y2="${B}" stroke="currentColor"/>`);
    a.methods.forEach((m, i) => {
      const c = METHOD_COLORS[m.method];
      const dash = ['', '6 3', '2 2', '8 2 2 2', '4 4'][i];
      for (const x of [m.lo, m.hi]) parts.push(`<line x1="${X(x)}" y1="${T}" x2="${X(x)}" y2="${B}" stroke="${c}" stroke-width="2" stroke-dasharray="${dash}"/>`);
      const lx = L + (i % perRow) * step, ly = B + 30 + 20 * Math.floor(i / perRow);
      parts.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 22}" y2="${ly}" stroke="${c}" stroke-width="2" stroke-dasharray="${dash}"/><text x="${lx + 26}" y="${ly + 4}">${LEGEND[m.method]}</text>`);
    });
    parts.push(`<text x="${L}" y="${B + 14}" text-anchor="middle">${esc(fmt(lo, 3))}</text><text x="${R}" y="${B + 14}" text-anchor="middle">${esc(fmt(hi, 3))}</text>`);
    if (lo < 0 && hi > 0) parts.push(`<text x="${X(0)}" y="${B + 14}" text-anchor="middle">0</text>`);
    svg.innerHTML = parts.join('');
    tbody.innerHTML = a.methods.map((m) => `<tr data-method="${m.method}">
      <td><span class="swatch" style="background:${METHOD_COLORS[m.method]}"></span>${METHOD_NAMES[m.method]}</td>
      <td data-label="range">[${esc(fmt(m.lo, 4))}, ${esc(fmt(m.hi, 4))}]</td><td data-label="Δ">${esc(fmt(m.scale, 4))}</td><td data-label="Z">${m.zero_point}</td>
      <td data-label="clipped">${(m.clipped_fraction * 100).toFixed(2)} %</td><td data-label="MSE">${esc(fmt(m.metrics.mse, 3))}</td>
      <td data-label="SQNR dB">${esc(fmt(m.metrics.sqnr_db, 4))}</td><td data-label="cosine">${m.metrics.cosine.toFixed(5)}</td>
      <td><button type="button" data-lo="${m.lo}" data-hi="${m.hi}" aria-label="use the ${METHOD_NAMES[m.method]} range">Use</button></td></tr>`).join('');
  }
}

/** The histogram's legend: 142px per method (112px in a narrow chart), as many per row as fit. */
function legendLayout(W) {
  const step = W < 720 ? 112 : 142;
  return { step, perRow: Math.max(1, Math.floor((W - 40) / step)) };
}

/** The histogram's height: the bars and axis (190), then one 20px legend row per `perRow` methods. */
function histHeight(W, methods = 5) {
  return 200 + 20 * Math.ceil(methods / legendLayout(W).perRow);
}

/** The width to draw a chart at: its rendered width in CSS pixels, between 300 and 760. */
function chartWidth(svg) {
  const w = Math.round(svg.getBoundingClientRect().width);
  return w > 0 ? Math.max(300, Math.min(760, w)) : 760;
}

function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));
}

if (!customElements.get('qplay-explorer')) customElements.define('qplay-explorer', QplayExplorer);
