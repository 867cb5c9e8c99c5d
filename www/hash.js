// The playground's settings in the URL fragment, so that a setup can be shared as a link.
//
//   index.html#explorer.min=-2&explorer.max=2&explorer.bits=8&detector.model=face&detector.score=0.6
//
// The fragment is URL-encoded `key=value` pairs (URLSearchParams), each key `component.setting`:
//   explorer.min, explorer.max, explorer.value   numbers (as typed)
//   explorer.bits                                2…8 or 16
//   explorer.signed, .symmetric, .restricted     true / false
//   explorer.decimals                            1…6 (Δ rounding of the "by hand" column)
//   explorer.sample                              gaussian, uniform, outliers, relu, w:expand, w:depthwise
//   explorer.logy                                true / false (log-scale counts in the tensor histogram)
//   detector.model                               person, face, or uploaded (the file must be chosen again)
//   detector.image                               a sample photo's file name (person.jpg …), or uploaded
//   detector.score                               0…1
//   detector.backend                             cpu, webgpu
//   detector.threads                             1…64: the CPU's threads (left out: min(hardware threads, 8))
//   detector.overlay                             true / false (INT8 boxes overlaid on the FP32 pane)
//   detector.logy                                true / false (log-y of the report's histograms)
//   detector.method                              auto, mse, percentile, minmax, entropy, ema
//   detector.perchannel                          true / false
//   detector.wbits                               weight bits: 8, 6, 5, 4, 3, 2 (8 is left out)
//   detector.rounding                            gptq, nearest (auto, the default, is left out)
//   detector.keep                                a layer kept FP32 at the next Quantize (repeated, one per layer)
//   detector.lbits                               LAYER=N: a layer's own weight bits, 2…8, at the next Quantize (repeated)
//   detector.mixed                               1…20: the most sensitive layers moved at the next Quantize (0 is left out)
//   detector.mixedto                             16, w8: what they become (fp32, the default, is left out)
// Keys may come in any order and any may be left out (the component's default is used). A value that
// does not validate is left out with a note saying why; nothing in a link is ever fetched except the
// built-in models and sample photos. This module has no DOM code: parse and serialize are pure.

export const EXPLORER_SAMPLES = ['gaussian', 'uniform', 'outliers', 'relu', 'w:expand', 'w:depthwise'];
// The same lists as the detector's (tests/hash.test.mjs checks): imported here without loading the
// component, whose attributes must be set before it starts.
export const DETECTOR_MODELS = ['person', 'face'];
export const DETECTOR_IMAGES = ['person.jpg', 'horses.jpg', 'kite.jpg', 'dog.jpg', 'astronaut.png', 'coffee.png', 'camera.png'];
export const DETECTOR_METHODS = ['auto', 'mse', 'percentile', 'minmax', 'entropy', 'ema'];

const number = (s) => {
  const t = s.trim().replace('−', '-');
  return t !== '' && Number.isFinite(Number(t)) ? t : null;
};
const bool = (s) => (s === 'true' || s === 'false' ? s : null);
const oneOf = (list) => (s) => (list.includes(s) ? s : null);

/** key → [validate (string → normalized string or null), what a valid value is]. */
export const KEYS = {
  'explorer.min': [number, 'a number'],
  'explorer.max': [number, 'a number'],
  'explorer.value': [number, 'a number'],
  'explorer.bits': [oneOf(['2', '3', '4', '5', '6', '7', '8', '16']), '2 to 8 or 16'],
  'explorer.signed': [bool, 'true or false'],
  'explorer.symmetric': [bool, 'true or false'],
  'explorer.restricted': [bool, 'true or false'],
  'explorer.decimals': [oneOf(['1', '2', '3', '4', '5', '6']), '1 to 6'],
  'explorer.sample': [oneOf(EXPLORER_SAMPLES), EXPLORER_SAMPLES.join(', ')],
  'explorer.logy': [bool, 'true or false'],
  'detector.model': [oneOf([...DETECTOR_MODELS, 'uploaded']), `${DETECTOR_MODELS.join(', ')} or uploaded`],
  'detector.image': [oneOf([...DETECTOR_IMAGES, 'uploaded']), `a sample photo (${DETECTOR_IMAGES.join(', ')}) or uploaded`],
  'detector.score': [(s) => { const t = number(s); return t !== null && Number(t) >= 0 && Number(t) <= 1 ? String(Number(Number(t).toFixed(4))) : null; }, 'a number from 0 to 1'],
  'detector.backend': [oneOf(['cpu', 'webgpu']), 'cpu or webgpu'],
  'detector.threads': [(s) => (/^\d+$/.test(s.trim()) && Number(s) >= 1 && Number(s) <= 64 ? String(Number(s)) : null), 'a whole number from 1 to 64'],
  'detector.overlay': [bool, 'true or false'],
  'detector.logy': [bool, 'true or false'],
  'detector.method': [oneOf(DETECTOR_METHODS), DETECTOR_METHODS.join(', ')],
  'detector.perchannel': [bool, 'true or false'],
  'detector.wbits': [oneOf(['2', '3', '4', '5', '6', '8']), '8, 6, 5, 4, 3 or 2'],
  'detector.rounding': [oneOf(['auto', 'gptq', 'nearest']), 'auto, gptq or nearest'],
  'detector.keep': [(s) => (s.trim() ? s.trim() : null), 'a layer name'],
  'detector.mixed': [(s) => (/^\d+$/.test(s.trim()) && Number(s) >= 1 && Number(s) <= 20 ? String(Number(s)) : null), 'a whole number from 1 to 20'],
  'detector.mixedto': [oneOf(['fp32', '16', 'w8']), 'fp32, 16 or w8'],
  'detector.lbits': [(s) => { const m = /^(.+)=([2-8])$/.exec(s.trim()); return m ? `${m[1]}=${m[2]}` : null; }, 'LAYER=N with N from 2 to 8'],
};

/**
 * Parses a fragment (with or without the leading `#`).
 * Returns { explorer: {attr: value}, detector: {model, image, score, backend, threads, method, perchannel, wbits, overlay, logy, keep: [], lbits: {layer: bits}}, notes: [text] }.
 * Explorer values are attribute strings; every value returned is valid.
 */
export function parseHash(hash) {
  const out = { explorer: {}, detector: {}, notes: [] };
  const text = hash.replace(/^#/, '');
  if (!text) return out;
  let params;
  try { params = new URLSearchParams(text); } catch { out.notes.push('the link’s settings could not be read'); return out; }
  for (const [key, raw] of params) {
    const spec = KEYS[key];
    if (!spec) { out.notes.push(`${key}: not a setting`); continue; }
    const v = spec[0](raw);
    const shown = raw.length > 40 ? `${raw.slice(0, 40)}…` : raw;
    if (v === null) { out.notes.push(`${key}=${shown}: expected ${spec[1]}`); continue; }
    const [component, name] = key.split('.');
    if (name === 'keep') (out.detector.keep ??= []).push(v);
    else if (name === 'lbits') { const i = v.lastIndexOf('='); (out.detector.lbits ??= {})[v.slice(0, i)] = Number(v.slice(i + 1)); }
    else out[component][name] = v;
  }
  return out;
}

/** The fragment (without `#`) for the two components' `settings`; either may be null (left out). */
export function serializeHash(explorer, detector) {
  const p = new URLSearchParams();
  const put = (key, v) => {
    const n = v === undefined || v === null ? null : KEYS[key][0](String(v));
    if (n !== null) p.append(key, n);
  };
  if (explorer) {
    for (const k of ['min', 'max', 'value', 'bits', 'signed', 'symmetric', 'restricted', 'decimals', 'sample']) put(`explorer.${k}`, explorer[k]);
    if (explorer.logy) put('explorer.logy', true);
  }
  if (detector) {
    put('detector.model', detector.model);
    put('detector.image', detector.image);
    put('detector.score', detector.score);
    if (detector.backend && detector.backend !== 'cpu') put('detector.backend', detector.backend);
    if (detector.threads) put('detector.threads', detector.threads); // null: the default
    put('detector.method', detector.method);
    put('detector.perchannel', detector.perChannel);
    if (detector.weightBits && Number(detector.weightBits) !== 8) put('detector.wbits', detector.weightBits);
    if (detector.rounding && detector.rounding !== 'auto') put('detector.rounding', detector.rounding);
    if (detector.overlay) put('detector.overlay', true);
    if (detector.logY) put('detector.logy', true);
    for (const layer of detector.keepFp32 ?? []) put('detector.keep', layer);
    for (const [layer, bits] of Object.entries(detector.layerBits ?? {})) put('detector.lbits', `${layer}=${bits}`);
    if (detector.autoMixed) put('detector.mixed', detector.autoMixed);
    if (detector.mixedTo && detector.mixedTo !== 'fp32') put('detector.mixedto', detector.mixedTo);
  }
  // Readable links: `:` and `,` need no escaping in a fragment.
  return p.toString().replace(/%3A/gi, ':').replace(/%2C/gi, ',');
}
