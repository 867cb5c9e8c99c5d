// The explorer's weight loader, off the main thread: parsing the person detector (megabytes of
// protobuf, in wasm) to pull out one weight tensor would stall the page for the length of it.
// Message {id, url, name} → {id, ok: true, data: Float32Array} or {id, ok: false, error, code}.
// The model file is fetched once per URL.
import { loadBindings } from './threads.js';

const ready = loadBindings();
const files = new Map();

function file(url) {
  if (!files.has(url)) {
    const p = fetch(url).then((r) => {
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      return r.arrayBuffer();
    });
    files.set(url, p.then((b) => new Uint8Array(b)));
    p.catch(() => files.delete(url)); // a failed download is tried again next time
  }
  return files.get(url);
}

onmessage = async ({ data: { id, url, name } }) => {
  try {
    const { modelWeight } = await ready;
    const data = modelWeight(await file(url), name);
    postMessage({ id, ok: true, data }, [data.buffer]);
  } catch (e) {
    postMessage({ id, ok: false, error: e?.message ?? String(e), code: e?.code });
  }
};
