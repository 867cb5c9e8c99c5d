// The model summary (inputs, outputs, op histogram, unsupported ops) and the profile editor.
import { esc } from './util.js';

/** A model's summary: producer, opset, size, unsupported ops, inputs and outputs, op histogram. */
export function summaryHtml(s) {
  const dims = (d) => `[${d.map((x) => (x === null ? '?' : x)).join(', ')}]`;
  const io = [...s.inputs.map((i) => ['input', i]), ...s.outputs.map((o) => ['output', o])]
    .map(([k, v]) => `<tr><td>${k}</td><td>${esc(v.name)}</td><td>${v.dtype}</td><td>${dims(v.shape)}</td></tr>`).join('');
  const unsupported = new Set(s.unsupported.map(([op]) => op));
  const ops = Object.entries(s.ops).map(([op, n]) => `<tr><td class="${unsupported.has(op) ? 'bad' : ''}">${esc(op)}${unsupported.has(op) ? ' (unsupported)' : ''}</td><td class="n">${n}</td></tr>`).join('');
  return `
      <p>${esc(s.producer || 'unknown producer')} · opset ${s.opset} · ${s.nodes} nodes · ${s.parameters.toLocaleString('en')} parameters (${(s.parameter_bytes / 1e6).toFixed(2)} MB)</p>
      ${(s.notes || []).map((n) => `<p class="note">${esc(n)}</p>`).join('')}
      ${s.unsupported.length ? `<p class="bad">Unsupported: ${s.unsupported.map(([op, node]) => `${esc(op)} (node ${esc(node)})`).join(', ')}</p>` : '<p>Every op is supported.</p>'}
      <div class="table-wrap"><table><thead><tr><th></th><th>name</th><th>type</th><th>shape</th></tr></thead><tbody>${io}</tbody></table></div>
      <table class="ops"><thead><tr><th>op</th><th class="n">nodes</th></tr></thead><tbody>${ops}</tbody></table>`;
}

/** Methods of <qplay-detector> (assigned to its prototype). */
export const infoMethods = {
  /** The model summary and profile of the model in use. */
  renderInfo(info) {
    this.$('.summary').innerHTML = info ? summaryHtml(info.summary) : '';
    if (!info) return;
    const assumed = this.$('ul.assumed');
    if (info.profile) {
      this.$('textarea[name=profile-json]').value = JSON.stringify(info.profile, null, 2);
      assumed.innerHTML = info.assumed?.length
        ? `<li><b>No profile was given; qplay assumed:</b></li>${info.assumed.map((a) => `<li>${esc(a)}</li>`).join('')}`
        : `<li>Decoder <b>${esc(info.profile.decoder.type)}</b>, input ${info.profile.size.join('×')}, from the profile file.</li>`;
      if (info.assumed?.length) this.$('details.profile-edit').open = true;
    }
  },
};
