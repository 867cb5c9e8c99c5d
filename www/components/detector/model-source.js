// Where the detector's model comes from: the built-in models, downloads with byte progress that
// can be cancelled (AbortController), and the names a model goes by (in messages, in download
// file names, and as the path in a `qplay` command).

/** The `www/` folder (the built-in models and photos live under it). */
export const BASE = new URL('../../', import.meta.url).href;

/** The built-in models: `path` is the file in the repository (what a `qplay` command names). */
export const BUILTIN = {
  person: {
    label: 'Person detector — SSDLite MobileNetV2, 300×300 (default)', short: 'Person detector',
    model: `${BASE}models/person_ssdlite.onnx`, profile: `${BASE}models/person_ssdlite.json`, path: 'www/models/person_ssdlite.onnx',
  },
  face: {
    label: 'Face detector — BlazeFace short range, 128×128', short: 'Face detector',
    model: `${BASE}models/blazeface_short.onnx`, profile: `${BASE}models/blazeface_short.json`, path: 'www/models/blazeface_short.onnx',
  },
};
export const SAMPLES = ['person.jpg', 'horses.jpg', 'kite.jpg', 'dog.jpg', 'astronaut.png', 'coffee.png', 'camera.png'];

/** A short name for messages ("Person detector" rather than the picker's long label). */
export function shortName(name) {
  const b = Object.values(BUILTIN).find((x) => x.label === name);
  return b ? b.short : name ?? 'model';
}

/** The model file's name without `.onnx` / `.tflite`, safe for a download name: `person_ssdlite`, `my_model`. */
export function fileStem(path) {
  const last = String(path ?? 'model').split(/[\\/]/).pop().split(/[?#]/)[0];
  return last.replace(/\.(onnx|tflite)$/i, '').replace(/[^\w.-]+/g, '_').replace(/^_+|_+$/g, '') || 'model';
}

/**
 * Fetches a URL with byte progress: `onprogress(received, total)` (total 0 when the server does not
 * say). `signal` (an AbortSignal) cancels it; the promise then rejects with an AbortError.
 * Resolves to {bytes: ArrayBuffer, total, cached} (`cached`: the browser's cache answered, nothing
 * or only headers came over the network). Errors name the HTTP status.
 */
export async function download(url, { signal, onprogress = () => {} } = {}) {
  const r = await fetch(url, { signal });
  if (!r.ok) throw new Error(`HTTP ${r.status} for ${url}`);
  // A compressed response's Content-Length counts the compressed bytes, not the ones the body yields.
  const total = r.headers.get('content-encoding') ? 0 : Number(r.headers.get('content-length')) || 0;
  let bytes;
  if (!r.body) bytes = await r.arrayBuffer();
  else {
    const reader = r.body.getReader();
    const chunks = [];
    let got = 0;
    onprogress(0, total);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      got += value.length;
      onprogress(got, total);
    }
    const out = new Uint8Array(got);
    let o = 0;
    for (const c of chunks) { out.set(c, o); o += c.length; }
    bytes = out.buffer;
  }
  return { bytes, total: total || bytes.byteLength, cached: fromCache(r.url || url) };
}

/** Whether the last fetch of `url` was answered by the browser's cache (Resource Timing). */
function fromCache(url) {
  const e = performance.getEntriesByName?.(new URL(url, document.baseURI).href).at?.(-1);
  if (!e || !e.encodedBodySize) return false;
  // 0: from the memory or disk cache; a few hundred bytes for a large file: a 304 revalidation.
  return e.transferSize === 0 || e.transferSize < e.encodedBodySize / 2;
}

/** "3.1 of 12.2 MB (25 %)", or "3.1 MB" without a total. */
export function progressText(got, total) {
  const mb = (b) => (b / 1e6).toFixed(1);
  return total ? `${mb(got)} of ${mb(total)} MB (${Math.floor((100 * got) / total)} %)` : `${mb(got)} MB`;
}
