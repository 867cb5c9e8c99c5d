// Hand-written SVG charts for the quantization report: per-layer SQNR bars, histograms with
// each calibration method's clip range, FP32-vs-INT8 pair bars; and their export as SVG / PNG.
// Every chart is a self-contained SVG string (presentation attributes inline, text in
// currentColor), so what is exported looks like what is shown. No library, no network.
import { fmt } from '../qplay.js';
import { METHOD_COLORS, METHOD_NAMES } from '../options.js';

export { METHOD_COLORS, METHOD_NAMES };

export const FP32 = '#0072B2';
export const INT8 = '#D55E00';
// Colours (Okabe–Ito) and names from options.js; each method also has its own dash pattern
// (colour never alone).
export const METHOD_DASH = { minmax: '', ema: '6 3', percentile: '2 2', entropy: '8 2 2 2', mse: '4 4' };
const FONT = 'font-family="system-ui, -apple-system, \'Segoe UI\', Roboto, \'DejaVu Sans\', sans-serif" font-size="11"';

/** The per-layer numbers the SQNR chart can sort by. */
export const METRICS = {
  output: { label: 'layer output SQNR, INT8 model vs FP32 (dB)', get: (l) => l.output_sqnr_db },
  weight: { label: 'weight SQNR (dB)', get: (l) => l.weight_sqnr_db },
  sensitivity: { label: 'sensitivity: model output SQNR with only this layer INT8 (dB)', get: (l) => l.sensitivity_sqnr_db },
};

export function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

/** Keeps the end of a long layer name (the informative part): "…conv_15/expand/Conv2D". */
export function truncate(name, max = 40) {
  return name.length <= max ? name : `…${name.slice(name.length - max + 1)}`;
}

const num = (v) => (typeof v === 'number' && !Number.isNaN(v) ? v : null);

/** Layers sorted worst first by `metric` (unmeasured ones last, exact ones — +∞ dB — just before). */
export function sortLayers(layers, metric) {
  const get = METRICS[metric].get;
  const key = (l) => num(get(l)) ?? Number.MAX_VALUE;
  return [...layers].sort((a, b) => key(a) - key(b));
}

/** Horizontal bars, one per layer, worst first; each row is a focusable button (data-node). */
export function sqnrBars(layers, { metric = 'output', selected = null } = {}) {
  const get = METRICS[metric].get;
  const rows = sortLayers(layers, metric);
  const W = 760, LABEL = 280, ROW = 16, T = 34, VAL = 46;
  const H = T + rows.length * ROW + 26;
  const finite = rows.map(get).map(num).filter((v) => v !== null && Number.isFinite(v));
  const max = Math.max(10, Math.ceil(Math.max(0, ...finite) / 10) * 10);
  const X = (v) => LABEL + (Math.min(Math.max(0, v), max) / max) * (W - LABEL - VAL);
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" ${FONT} role="group" aria-label="${esc(METRICS[metric].label)}, worst first">`,
    `<text x="4" y="14" font-size="12.5" font-weight="600" fill="currentColor">${esc(METRICS[metric].label)}, worst first (${rows.length} layers)</text>`];
  for (let t = 0; t <= max; t += max > 60 ? 20 : 10) {
    out.push(`<line x1="${X(t)}" y1="${T - 6}" x2="${X(t)}" y2="${T + rows.length * ROW}" stroke="currentColor" stroke-opacity="0.15"/>`,
      `<text x="${X(t)}" y="${T - 9}" text-anchor="middle" fill="currentColor" fill-opacity="0.7">${t}</text>`);
  }
  rows.forEach((l, i) => {
    const v = num(get(l));
    const y = T + i * ROW;
    const sel = l.node === selected;
    const shown = v === null ? 'not measured' : `${fmt(v, 3)} dB`;
    out.push(`<g class="bar" data-node="${esc(l.node)}" tabindex="0" role="button" aria-pressed="${sel}" aria-label="${esc(l.node)}: ${esc(shown)}" style="cursor:pointer">`,
      `<title>${esc(l.node)} (${esc(l.op)}): ${esc(shown)}</title>`,
      `<rect class="bg" x="0" y="${y}" width="${W}" height="${ROW}" fill="${sel ? FP32 : 'transparent'}" fill-opacity="${sel ? 0.14 : 0}"/>`,
      `<text x="${LABEL - 6}" y="${y + 12}" text-anchor="end" fill="currentColor"${sel ? ' font-weight="700"' : ''}>${esc(truncate(l.node, 38))}</text>`);
    if (v !== null) {
      const w = Math.max(1, X(v) - LABEL);
      out.push(`<rect x="${LABEL}" y="${y + 2}" width="${w}" height="${ROW - 4}" fill="${INT8}" fill-opacity="${sel ? 1 : 0.8}"${sel ? ` stroke="${FP32}" stroke-width="2"` : ''}/>`,
        `<text x="${LABEL + w + 4}" y="${y + 12}" fill="currentColor">${Number.isFinite(v) ? v.toFixed(1) : '∞'}</text>`);
    } else {
      out.push(`<text x="${LABEL + 4}" y="${y + 12}" fill="currentColor" fill-opacity="0.6">not measured</text>`);
    }
    out.push('</g>');
  });
  out.push(`<line x1="${LABEL}" y1="${T - 6}" x2="${LABEL}" y2="${T + rows.length * ROW}" stroke="currentColor"/>`,
    `<text x="${W - VAL}" y="${H - 8}" text-anchor="end" fill="currentColor" fill-opacity="0.7">dB (higher is better)</text></svg>`);
  return out.join('');
}

/**
 * A histogram ({lo, hi, counts}) with vertical lines: [{lo, hi, color, dash, label, chosen}].
 * `logY` plots log10(1 + count).
 */
export function histogramChart(h, { title, lines = [], logY = false, note = '' } = {}) {
  const W = 430, L = 44, R = 418, T = 28, B = 170;
  const legendRows = lines.length;
  const H = B + 34 + legendRows * 16 + (note ? 16 : 0);
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" ${FONT} role="img" aria-label="${esc(title)}">`,
    `<text x="4" y="14" font-size="12.5" font-weight="600" fill="currentColor">${esc(title)}</text>`];
  if (!h || !h.counts?.length) {
    out.push('<text x="40" y="80" fill="currentColor">no histogram</text></svg>');
    return out.join('');
  }
  const lo = Math.min(h.lo, ...lines.map((m) => m.lo)), hi = Math.max(h.hi, ...lines.map((m) => m.hi));
  const X = (x) => L + ((x - lo) / (hi - lo || 1)) * (R - L);
  const ymax = Math.max(1, ...h.counts);
  const Yv = (c) => (logY ? Math.log10(c + 1) / Math.log10(ymax + 1) : c / ymax);
  const bw = (h.hi - h.lo) / h.counts.length;
  h.counts.forEach((c, i) => {
    if (!c) return;
    const x0 = X(h.lo + i * bw), x1 = X(h.lo + (i + 1) * bw), y = B - Yv(c) * (B - T);
    out.push(`<rect x="${x0.toFixed(2)}" y="${y.toFixed(2)}" width="${Math.max(0.6, x1 - x0 - 0.6).toFixed(2)}" height="${(B - y).toFixed(2)}" fill="currentColor" fill-opacity="0.35"><title>[${esc(fmt(h.lo + i * bw, 4))}, ${esc(fmt(h.lo + (i + 1) * bw, 4))}): ${c.toLocaleString('en')}</title></rect>`);
  });
  out.push(`<line x1="${L}" y1="${B}" x2="${R}" y2="${B}" stroke="currentColor"/><line x1="${L}" y1="${T}" x2="${L}" y2="${B}" stroke="currentColor"/>`,
    `<text x="${L - 4}" y="${T + 4}" text-anchor="end" fill="currentColor" fill-opacity="0.7">${esc(compact(ymax))}</text>`,
    `<text x="${L - 4}" y="${B}" text-anchor="end" fill="currentColor" fill-opacity="0.7">0</text>`,
    `<text x="${L - 30}" y="${(T + B) / 2}" transform="rotate(-90 ${L - 30} ${(T + B) / 2})" text-anchor="middle" fill="currentColor" fill-opacity="0.7">count${logY ? ' (log)' : ''}</text>`,
    `<text x="${L}" y="${B + 14}" text-anchor="start" fill="currentColor">${esc(fmt(lo, 4))}</text>`,
    `<text x="${R}" y="${B + 14}" text-anchor="end" fill="currentColor">${esc(fmt(hi, 4))}</text>`);
  if (lo < 0 && hi > 0 && X(0) - L > 40 && R - X(0) > 40) out.push(`<text x="${X(0)}" y="${B + 14}" text-anchor="middle" fill="currentColor">0</text>`);
  // Clip lines: the chosen one drawn last and thickest; a short label at the top of each pair.
  const order = [...lines.keys()].sort((a, b) => Number(lines[a].chosen ?? false) - Number(lines[b].chosen ?? false));
  for (const i of order) {
    const m = lines[i];
    const sw = m.chosen ? 3 : 1.6;
    for (const x of [m.lo, m.hi]) {
      out.push(`<line class="clip" x1="${X(x).toFixed(2)}" y1="${T - 4}" x2="${X(x).toFixed(2)}" y2="${B}" stroke="${m.color}" stroke-width="${sw}" stroke-dasharray="${m.dash}"/>`);
    }
    const ty = T + 8 + i * 11;
    const xh = X(m.hi);
    const right = xh > R - 70;
    out.push(`<text x="${(right ? xh - 3 : xh + 3).toFixed(2)}" y="${ty}" text-anchor="${right ? 'end' : 'start'}" fill="${m.color}" font-size="10"${m.chosen ? ' font-weight="700"' : ''}>${esc(m.short ?? m.label)}</text>`);
  }
  lines.forEach((m, i) => {
    const y = B + 32 + i * 16;
    out.push(`<line x1="${L}" y1="${y - 4}" x2="${L + 24}" y2="${y - 4}" stroke="${m.color}" stroke-width="${m.chosen ? 3 : 1.6}" stroke-dasharray="${m.dash}"/>`,
      `<text x="${L + 30}" y="${y}" fill="currentColor"${m.chosen ? ' font-weight="700"' : ''}>${esc(m.label)}</text>`);
  });
  if (note) out.push(`<text x="${L}" y="${H - 6}" fill="currentColor" fill-opacity="0.7">${esc(note)}</text>`);
  out.push('</svg>');
  return out.join('');
}

/** The lines for an activation's calibration methods, with clip range and % clipped. */
export function methodLines(activation) {
  return (activation.methods ?? []).map((m) => ({
    lo: m.lo, hi: m.hi, color: METHOD_COLORS[m.method] ?? '#000', dash: METHOD_DASH[m.method] ?? '', chosen: m.chosen,
    short: METHOD_NAMES[m.method]?.split(' ')[0] ?? m.method,
    label: `${METHOD_NAMES[m.method] ?? m.method}${m.chosen ? ' (used)' : ''}: [${fmt(m.lo, 4)}, ${fmt(m.hi, 4)}], ${fmtPct(m.clipped_pct)} clipped`,
  }));
}

/** 740k, 1.2M: a count short enough for an axis label. */
export function compact(n) {
  if (n >= 1e6) return `${fmt(n / 1e6, 2)}M`;
  if (n >= 1e4) return `${fmt(n / 1e3, 3)}k`;
  return String(n);
}

export function fmtPct(p) {
  if (p === null || p === undefined) return '–';
  if (p === 0) return '0 %';
  return p < 0.001 ? '<0.001 %' : `${fmt(p, 2)} %`;
}

/** Two horizontal bars, FP32 (blue, solid) and INT8 (vermillion, dashed outline). */
export function pairBars({ title, fp32, int8, unit, format = (v) => fmt(v, 3), note = '' }) {
  const W = 380, L = 52, R = 300, T = 28, ROW = 30;
  const H = T + 2 * ROW + (note ? 26 : 10);
  const max = Math.max(fp32 ?? 0, int8 ?? 0) || 1;
  const X = (v) => L + (v / max) * (R - L);
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" ${FONT} role="img" aria-label="${esc(title)}">`,
    `<text x="4" y="14" font-size="12.5" font-weight="600" fill="currentColor">${esc(title)}</text>`];
  [['FP32', fp32, `fill="${FP32}"`], ['INT8', int8, `fill="${INT8}" fill-opacity="0.35" stroke="${INT8}" stroke-width="2" stroke-dasharray="6 3"`]].forEach(([name, v, style], i) => {
    const y = T + i * ROW;
    out.push(`<text x="${L - 8}" y="${y + 15}" text-anchor="end" fill="currentColor" font-weight="600">${name}</text>`);
    if (typeof v === 'number') {
      out.push(`<rect x="${L}" y="${y + 2}" width="${Math.max(1, X(v) - L).toFixed(2)}" height="${ROW - 10}" ${style}/>`,
        `<text x="${(X(v) + 6).toFixed(2)}" y="${y + 15}" fill="currentColor">${esc(format(v))} ${esc(unit)}</text>`);
    } else {
      out.push(`<text x="${L + 4}" y="${y + 15}" fill="currentColor" fill-opacity="0.6">not measured yet</text>`);
    }
  });
  if (note) out.push(`<text x="4" y="${H - 8}" fill="currentColor" fill-opacity="0.7">${esc(note)}</text>`);
  out.push('</svg>');
  return out.join('');
}

/** A standalone SVG document for an on-page chart: black text on white. */
export function svgDocument(svg) {
  const c = svg.cloneNode(true);
  c.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  c.setAttribute('style', 'color:#1b1f24;background:#ffffff');
  const [, , w, h] = (c.getAttribute('viewBox') ?? '0 0 600 300').split(/\s+/).map(Number);
  c.setAttribute('width', String(w));
  c.setAttribute('height', String(h));
  const bg = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
  for (const [k, v] of Object.entries({ x: 0, y: 0, width: w, height: h, fill: '#ffffff' })) bg.setAttribute(k, String(v));
  c.insertBefore(bg, c.firstChild);
  for (const g of c.querySelectorAll('[tabindex]')) g.removeAttribute('tabindex');
  return { text: `<?xml version="1.0" encoding="UTF-8"?>\n${new XMLSerializer().serializeToString(c)}`, width: w, height: h };
}

/** Downloads a chart as .svg or (rendered at 2×) .png. */
export async function exportChart(svg, name, kind) {
  const { text, width, height } = svgDocument(svg);
  const blob = new Blob([text], { type: 'image/svg+xml' });
  if (kind === 'svg') { save(blob, `${name}.svg`); return; }
  const url = URL.createObjectURL(blob);
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    const scale = 2;
    const canvas = document.createElement('canvas');
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    const png = await new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('the PNG could not be encoded'))), 'image/png'));
    save(png, `${name}.png`);
  } finally {
    URL.revokeObjectURL(url);
  }
}

function save(blob, filename) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 30_000);
}
