// <qplay-playground>: the whole playground as one element — the explorer (the quantization
// math) and the detector (models, quantization in the page, the report) — for a documentation
// page that wants everything in one place.
//
// Attributes: `model`, `image`, `score`, `backend`, `threads` (handed to the detector as its own
// attributes; `score` and `backend` can change later), `hide` ("explorer" or "detector", space- or comma-separated, leaves
// that part out) and `loading` (handed to both parts: each starts when it comes within 200px of
// the viewport, or with "eager" at once). `ready` resolves when the parts have started and are
// ready; `start()` starts them now; `dispose()` removes them (the detector's worker ends). The
// parts' events (qplay-ready, qplay-change, qplay-progress, qplay-frame, qplay-quantized,
// qplay-error) are composed, so they bubble out of this element unchanged. Styling:
// `::part(explorer)`, `::part(detector)`, and the parts' own custom properties.
import './qplay-explorer.js';
import './qplay-detector.js';

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export class QplayPlayground extends HTMLElement {
  static observedAttributes = ['model', 'image', 'score', 'backend', 'hide'];

  constructor() {
    super();
    this.attachShadow({ mode: 'open' });
    this.ready = new Promise((resolve) => { this.resolveReady = resolve; });
  }

  connectedCallback() {
    if (this.shadowRoot.childElementCount) return;
    const hide = new Set((this.getAttribute('hide') ?? '').split(/[\s,]+/).filter(Boolean));
    const loading = this.startNow ? ' loading="eager"' : this.hasAttribute('loading') ? ` loading="${esc(this.getAttribute('loading'))}"` : '';
    const pass = ['model', 'image', 'score', 'backend', 'threads'].filter((a) => this.hasAttribute(a))
      .map((a) => ` ${a}="${esc(this.getAttribute(a))}"`).join('') + loading;
    this.shadowRoot.innerHTML = `<style>
        :host { display: block; }
        section { margin: 0 0 28px; }
        h2 { font: 600 1.15rem system-ui, sans-serif; margin: 0 0 10px; }
      </style>
      ${hide.has('explorer') ? '' : '<section part="explorer"><h2>The math: q = clamp(round(x / Δ) + Z)</h2><qplay-explorer preset="seed"${loading}></qplay-explorer></section>'}
      ${hide.has('detector') ? '' : `<section part="detector"><h2>A real detector, FP32 and INT8</h2><qplay-detector${pass}></qplay-detector></section>`}`;
    const parts = [...this.shadowRoot.querySelectorAll('qplay-explorer, qplay-detector')];
    Promise.all(parts.map((p) => p.ready)).then(() => this.resolveReady(), () => this.resolveReady());
  }

  attributeChangedCallback(name, _old, value) {
    const det = this.shadowRoot.querySelector('qplay-detector');
    if (!det || (name !== 'score' && name !== 'backend')) return;
    if (value === null) det.removeAttribute(name); else det.setAttribute(name, value);
  }

  /** Starts both parts now instead of when they come near the viewport. */
  start() {
    this.startNow = true;
    for (const p of this.shadowRoot.querySelectorAll('qplay-explorer, qplay-detector')) p.start();
    return this.ready;
  }

  dispose() {
    for (const p of this.shadowRoot.querySelectorAll('qplay-explorer, qplay-detector')) p.remove();
  }
}

if (!customElements.get('qplay-playground')) customElements.define('qplay-playground', QplayPlayground);
